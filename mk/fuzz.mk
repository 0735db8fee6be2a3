# Fuzzing (issue 11): `make fuzz SECONDS=60` runs every cargo-fuzz target in fuzz/ for SECONDS
# each on the nightly toolchain, corpora seeded from tests/fixtures and from the minimized
# corpus kept in the repo (fuzz/corpus.tar.gz: what earlier runs found, seeds and inputs over
# 64 KiB left out; `make fuzz-corpus` rebuilds it from fuzz/corpus). A crash stops the run
# (non-zero exit); libFuzzer leaves the input in fuzz/artifacts/<target>/.
# fuzz/ is its own workspace with network access to crates.io (see fuzz/.cargo/config.toml).
SECONDS ?= 60
FUZZ_TARGETS = $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs)))
FUZZ_SEEDS = fuzz/corpus

.PHONY: fuzz fuzz-seed fuzz-tool fuzz-corpus
fuzz-tool:
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz

# Seed each target's corpus with the fixtures of its input kind (copied, never linked).
fuzz-seed:
	@mkdir -p $(FUZZ_SEEDS); tar -xzf fuzz/corpus.tar.gz -C $(FUZZ_SEEDS) --skip-old-files
	@seed() { t=$$1; shift; mkdir -p $(FUZZ_SEEDS)/$$t; \
	  for f in $$(find "$$@" -type f -size -1M 2>/dev/null | head -200); do \
	    cp -f "$$f" $(FUZZ_SEEDS)/$$t/seed-$$(echo "$$f" | md5sum | cut -c1-16); done; }; \
	seed config_json tests/fixtures/api/mock-config.json tests/fixtures/sysroots/pi4-balenaos/mnt; \
	seed api_json tests/fixtures/api/replies; \
	seed backup_yaml tests/fixtures/backup; \
	seed nm_keyfile tests/fixtures/net/nm tests/fixtures/net/golden; \
	seed wpa tests/fixtures/net/wpa; \
	seed connman tests/fixtures/net/connman; \
	seed os_release $$(find tests/fixtures/sysroots -name os-release); \
	seed mountinfo $$(find tests/fixtures/sysroots -name mountinfo -o -name swaps -o -name meminfo); \
	mkdir -p $(FUZZ_SEEDS)/versions; for v in 5.1.20+rev1 6.0.1-rc1 '~5.1' '^5.1' default 2.113.4 5.1.20.prod; do \
	  printf '%s' "$$v" > $(FUZZ_SEEDS)/versions/seed-$$(printf '%s' "$$v" | md5sum | cut -c1-16); done; \
	mkdir -p $(FUZZ_SEEDS)/partition $(FUZZ_SEEDS)/gzip $(FUZZ_SEEDS)/fat $(FUZZ_SEEDS)/fslabel $(FUZZ_SEEDS)/zip $(FUZZ_SEEDS)/tar; \
	if [ ! -f $(FUZZ_SEEDS)/partition/seed-mbr ]; then \
	  tmp=$$(mktemp -d); truncate -s 4M $$tmp/d.img; printf 'start=2048,size=2048,type=c\nstart=4096,type=83\n' | sfdisk -q $$tmp/d.img; \
	  head -c 65536 $$tmp/d.img > $(FUZZ_SEEDS)/partition/seed-mbr; \
	  truncate -s 4M $$tmp/g.img; printf 'label: gpt\nstart=2048,size=2048\n' | sfdisk -q $$tmp/g.img; \
	  head -c 65536 $$tmp/g.img > $(FUZZ_SEEDS)/partition/seed-gpt; \
	  truncate -s 1M $$tmp/fat.img; mkfs.vfat -n RESIN-BOOT $$tmp/fat.img >/dev/null; \
	  echo '{"slug":"raspberrypi4-64"}' > $$tmp/device-type.json; mcopy -i $$tmp/fat.img $$tmp/device-type.json ::/; \
	  cp $$tmp/fat.img $(FUZZ_SEEDS)/fat/seed-fat; head -c 4096 $$tmp/fat.img > $(FUZZ_SEEDS)/fslabel/seed-fat; \
	  truncate -s 1M $$tmp/e.img; mkfs.ext4 -q -F -L resin-rootA $$tmp/e.img >/dev/null 2>&1; \
	  cp $$tmp/e.img $(FUZZ_SEEDS)/fslabel/seed-ext4; \
	  head -c 200000 /dev/zero | gzip -c > $(FUZZ_SEEDS)/gzip/seed-zeros.gz; gzip -c tests/fixtures/backup/13-bad-filter.yml > $(FUZZ_SEEDS)/gzip/seed-text.gz; \
	  (cd $$tmp && cp device-type.json a.img && (command -v zip >/dev/null && zip -q z.zip a.img && cp z.zip $(CURDIR)/$(FUZZ_SEEDS)/zip/seed-zip || true)); \
	  tar -cf $(FUZZ_SEEDS)/tar/seed.tar -C tests/fixtures backup; \
	  rm -rf $$tmp; fi

fuzz: fuzz-tool fuzz-seed
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(SECONDS) s)"; \
	  (cd fuzz && cargo +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(SECONDS) -rss_limit_mb=2048 -max_len=1048576 2>&1 | tail -n 3); \
	  test -z "$$(ls fuzz/artifacts/$$t 2>/dev/null)" || { echo "fuzz $$t: crash, see fuzz/artifacts/$$t"; exit 1; }; \
	done; echo "fuzz: $(words $(FUZZ_TARGETS)) targets, $(SECONDS) s each, no crash"

# Minimizes every target's corpus in place (libFuzzer merge) and stores what is not a seed and
# at most 64 KiB in fuzz/corpus.tar.gz (reproducible: sorted, no owners, mtime 0).
fuzz-corpus: fuzz-tool
	@set -e; for t in $(FUZZ_TARGETS); do \
	  (cd fuzz && cargo +nightly fuzz cmin $$t corpus/$$t -- -rss_limit_mb=2048 -max_len=1048576 >/dev/null 2>&1); done; \
	tmp=$$(mktemp -d); cp -a $(FUZZ_SEEDS)/. $$tmp/; find $$tmp -type f \( -name 'seed*' -o -size +64k \) -delete; \
	(cd $$tmp && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - .) | gzip -9n > fuzz/corpus.tar.gz; \
	rm -rf $$tmp; echo "fuzz/corpus.tar.gz: $$(stat -c %s fuzz/corpus.tar.gz) bytes"
