# Release builds for every supported board, tests under qemu-user, size report (issue 12).
# Included by the top-level Makefile (`include mk/*.mk`). No docker, no `cross`.
#
#   make deps-cross   Debian cross gcc + musl (armel/armhf) + qemu-user; rustup targets, rust-src
#   make static       the release build of one TARGET (default x86_64-unknown-linux-musl)
#   make release      dist/takeover-<version>-<target> (static, stripped) + dist/SHA256SUMS;
#                     checks `file` says static and runs `--help` on the matching (emulated) CPU;
#                     installs its tools first (deps-cross)
#   make test-cross   unit + integration tests for aarch64, armv7, armv6 under qemu-user
#   make size         size of every release binary + largest contributors (x86_64, unstripped)
#   make size-check   fails when the stripped static x86_64 musl binary exceeds SIZE_BUDGET
#                     (part of `make test`)
#
# Targets:
#   x86_64-unknown-linux-musl     -Zbuild-std                NUC / PC
#   aarch64-unknown-linux-musl    rustup std, rust-lld       Pi 3/4/5 64-bit, Jetson
#   armv7-unknown-linux-musleabihf  -Zbuild-std, Debian armhf musl   Pi 2/3/4 32-bit, BeagleBone
#   arm-unknown-linux-musleabi    -Zbuild-std, Debian armel musl    Pi Zero/1 (ARMv6), every Pi
#
# build-std: rustup has no std for the arm*-musl targets here, so std is built from the rust-src
# component on the stable toolchain with RUSTC_BOOTSTRAP=1 (a nightly with rust-src works as
# well: `make release CARGO='cargo +nightly' RUSTC='rustc +nightly'`). The project's .cargo/config.toml replaces crates.io
# with vendor/, which does not hold std's own dependencies; tools/build-std-vendor makes
# target/build-std-vendor/ (project vendor/ + std's dependencies) and the build-std commands point
# the replacement there. std's dependencies come from rust-src's library/vendor when the
# toolchain ships it, else from `cargo vendor` of library/Cargo.toml (crates.io, once per
# toolchain version; then offline). Set STD_VENDOR=<dir> to use an already vendored copy.

CARGO ?= cargo
RUSTC ?= rustc
DIST ?= dist
# Stripped static x86_64 musl binary must stay at or below this many bytes.
SIZE_BUDGET ?= 1250000

TAKEOVER_VERSION := $(shell sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)

# armv7: musl via build-std is the default: a quarter of the size of the alternative
# armv7-unknown-linux-gnueabihf (rustup std, glibc +crt-static, `make release ARMV7_TARGET=...`
# works too), no glibc NSS at run time, and a 64-bit off_t like every other target.
ARMV7_TARGET ?= armv7-unknown-linux-musleabihf
ARMV6_TARGET := arm-unknown-linux-musleabi
RELEASE_TARGETS := x86_64-unknown-linux-musl aarch64-unknown-linux-musl $(ARMV7_TARGET) $(ARMV6_TARGET)
CROSS_TEST_TARGETS := aarch64-unknown-linux-musl $(ARMV7_TARGET) $(ARMV6_TARGET)
# `make test` (CI, one hour on 2 cores) runs the tests under qemu-user for aarch64 and armv6: the
# armv7 release binary runs end to end as PID 1 on the emulated Pi 2 (pi2-32-migrate) there, and
# armv6 covers 32-bit ARM in the unit tests. `make test-cross` runs all three.
CI_CROSS_TEST_TARGETS := aarch64-unknown-linux-musl $(ARMV6_TARGET)
RUSTUP_TARGETS := x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf

# Targets built with -Zbuild-std: those without a rustup std, and x86_64 for the size budget:
# it drops std's backtrace symbolizer (gimli, addr2line, rustc-demangle, libunwind) and std's
# unwind tables (issue 10: 1,630,608 -> 1,181,688 bytes stripped). aarch64-unknown-linux-musl
# can be added the same way.
BUILD_STD_TARGETS ?= x86_64-unknown-linux-musl \
                     armv7-unknown-linux-musleabihf arm-unknown-linux-musleabi \
                     armv7-unknown-linux-musleabi arm-unknown-linux-musleabihf
# std features for build-std release builds. Not cargo's default set, which adds `backtrace`,
# std's DWARF symbolizer (gimli, addr2line, object, rustc-demangle): dead weight in a stripped
# binary (arm-musleabi 313,948 -> 144,612 bytes). Panic messages stay. x86_64 adds
# `optimize_for_size` (REL_STD_FEATURES_*): -49 KB for 4-6 % more decode CPU, needed for the
# size budget (docs/PERFORMANCE.md "Binary size").
# Tests (test-cross) use cargo's default set: they need panic-unwind.
BUILD_STD_FEATURES ?=

# CPU each binary is smoke-tested on (the same as the runners in .cargo/config.toml).
QEMU_x86_64-unknown-linux-musl :=
QEMU_aarch64-unknown-linux-musl := qemu-aarch64-static -cpu cortex-a53
QEMU_armv7-unknown-linux-musleabihf := qemu-arm-static -cpu cortex-a7
QEMU_armv7-unknown-linux-gnueabihf := qemu-arm-static -cpu cortex-a7
QEMU_arm-unknown-linux-musleabi := qemu-arm-static -cpu arm1176

# Tests skipped on cross targets only (substring match on the test name, libtest --skip).
# Keep this short and say why for each. Everything else, including tests that need root, runs
# under qemu-user as on the host. Integration tests start the takeover binary through
# TAKEOVER_TEST_RUNNER (tests/it/util.rs), since there is no binfmt_misc in containers.
#   throughput: speed printouts (crc32, sha256, image scan of 64 MiB); emulated speed means nothing.
CROSS_TEST_SKIP := throughput
# One test at a time under qemu: qemu-user 7.2 can deadlock a forked child (both threads on a
# futex, never reaching exec) when the guest forks while other guest threads run; seen once on
# arm1176 in an integration test spawning the binary. Serial tests fork from a quiet process.
CROSS_TEST_THREADS ?= 1
# Tests under qemu run optimised: at opt-level 0 the image tests (64 MiB fixtures through
# inflate + sha256) take many minutes each under emulation. Debug assertions and overflow checks
# stay on (dev/test profile); debug info off (faster links, nothing reads it).
CROSS_TEST_PROFILE_ENV := CARGO_PROFILE_DEV_OPT_LEVEL=2 CARGO_PROFILE_TEST_OPT_LEVEL=2 \
                          CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_TEST_DEBUG=0

# Source replacement for build-std (see above).
BUILD_STD_VENDOR := $(CURDIR)/target/build-std-vendor
STD_VENDOR ?=

REL_COMMA := ,
REL_EMPTY :=
REL_SPACE := $(REL_EMPTY) $(REL_EMPTY)
is_build_std = $(filter $(1),$(BUILD_STD_TARGETS))
# $(call build_std_args,<target>,<crates>[,<-Zbuild-std-features=...>])
build_std_args = $(if $(call is_build_std,$(1)),-Zbuild-std=$(2) $(3) \
	--config 'source.vendored-sources.directory="$(BUILD_STD_VENDOR)"')
build_std_env = $(if $(call is_build_std,$(1)),RUSTC_BOOTSTRAP=1)
# $(call cargo_release,<target>): the release build of one target (make release, size-check).
# build-std release builds also compile std without unwind tables (panic=abort, stripped: nothing
# reads them); --config appends to the rustflags of .cargo/config.toml.
cargo_release = $(call build_std_env,$(1)) $(CARGO) build --release --locked --target $(1) $(REL_CARGO_ARGS_$(1)) \
	$(call build_std_args,$(1),std$(REL_COMMA)panic_abort,-Zbuild-std-features=$(subst $(REL_SPACE),$(REL_COMMA),$(strip $(BUILD_STD_FEATURES) $(REL_STD_FEATURES_$(1)))) \
	  --config 'target.$(1).rustflags=["-Cforce-unwind-tables=no"$(REL_RUSTFLAGS_$(1))]')
# Release-only flags per target (appended to the list above; each item starts with a comma).
# x86_64: link with rust-lld (as aarch64 does) and fold identical functions and constants:
# -8,312 and -7,040 bytes. Rust marks functions unnamed_addr (no code relies on two functions
# having different addresses; rustc's own MergeFunctions pass makes the same assumption).
# -Zlocation-detail=none: panic messages keep their text but say `<redacted>` instead of
# file:line:column (~39 KB: every panic location and the code that passes it). The budget does
# not hold without it; the ARM builds keep their locations. The machine outliner: -28 KB,
# +1.5 % decode CPU, needed since the stage 2 API calls and the Jetson code landed.
REL_RUSTFLAGS_x86_64-unknown-linux-musl := ,"-Clinker=rust-lld","-Clink-arg=--icf=all","-Zlocation-detail=none","-Cllvm-args=-enable-machine-outliner"
REL_STD_FEATURES_x86_64-unknown-linux-musl := optimize_for_size
# x86_64: inert libunwind entry points instead of libunwind (and the musl printf it drags in),
# src/sys/nounwind.rs: -59,120 bytes. Needs std built with panic_abort, as here.
REL_CARGO_ARGS_x86_64-unknown-linux-musl := --features no-libunwind

.PHONY: deps-static static deps-cross release release-build release-smoke test-cross size size-check build-std-vendor

# ---------------------------------------------------------------------------------------------
# deps-cross: idempotent; quiet unless something is missing.
DEPS_CROSS_DEB := gcc-arm-linux-gnueabihf gcc-arm-linux-gnueabi gcc-aarch64-linux-gnu \
                  qemu-user-static musl-tools musl-dev:armhf musl-dev:armel file binutils

deps-cross:
	@set -e; \
	for a in armhf armel; do \
	  dpkg --print-foreign-architectures | grep -qx $$a || { dpkg --add-architecture $$a; upd=1; }; \
	done; \
	missing=; \
	for p in $(DEPS_CROSS_DEB); do \
	  dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps-cross: installing$$missing"; \
	  apt-get update -qq || echo "deps-cross: apt-get update reported errors (mirror sync?); installing anyway"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi; \
	have=$$(rustup target list --installed); \
	for t in $(RUSTUP_TARGETS); do \
	  echo "$$have" | grep -qx $$t || rustup -q target add $$t; \
	done; \
	rustup component list --installed | grep -q '^rust-src' || rustup -q component add rust-src; \
	echo "deps-cross: ok"

# ---------------------------------------------------------------------------------------------
# build-std source replacement: project vendor/ + std's dependencies, as symlinks.
build-std-vendor:
	@STD_VENDOR='$(STD_VENDOR)' CARGO='$(CARGO)' RUSTC='$(RUSTC)' \
	  tools/build-std-vendor '$(CURDIR)/vendor' '$(BUILD_STD_VENDOR)'

# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# static: the release recipe for one target (TARGET, default x86_64-unknown-linux-musl), so the
# binary at target/$(TARGET)/release/takeover is byte for byte the one `make release` ships.
# x86_64 needs only its rustup target and rust-src (deps-static); the ARM targets need the
# cross linkers too (deps-cross).
deps-static:
	@set -e; \
	rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup -q target add x86_64-unknown-linux-musl; \
	rustup component list --installed | grep -q '^rust-src' || rustup -q component add rust-src

static: $(if $(filter x86_64-unknown-linux-musl,$(TARGET)),deps-static,deps-cross) \
        $(if $(call is_build_std,$(TARGET)),build-std-vendor)
	@$(call cargo_release,$(TARGET))
	@file target/$(TARGET)/release/takeover
	@echo "size: $$(stat -c %s target/$(TARGET)/release/takeover) bytes"

# ---------------------------------------------------------------------------------------------
# release installs what it needs first (deps-cross: idempotent, quiet when all is there).
release: deps-cross release-build release-smoke
	@$(MAKE) --no-print-directory size-list

release-build: $(if $(filter $(BUILD_STD_TARGETS),$(RELEASE_TARGETS)),build-std-vendor)
	@set -e; \
	mkdir -p '$(DIST)'; rm -f '$(DIST)'/takeover-* '$(DIST)/SHA256SUMS'; \
	$(foreach t,$(RELEASE_TARGETS), \
	  echo "== build $(t)"; \
	  $(call cargo_release,$(t)); \
	  cp target/$(t)/release/takeover '$(DIST)/takeover-$(TAKEOVER_VERSION)-$(t)';) \
	cd '$(DIST)' && sha256sum takeover-$(TAKEOVER_VERSION)-* > SHA256SUMS

# Every binary: static per `file`, stripped, and `--help` runs on the matching CPU. Case
# patterns are written `(pat)` to keep make's parentheses balanced inside $(foreach).
release-smoke:
	@set -e; \
	$(foreach t,$(RELEASE_TARGETS), \
	  b='$(DIST)/takeover-$(TAKEOVER_VERSION)-$(t)'; \
	  f=$$(file -b "$$b"); \
	  case "$$f" in (*"statically linked"*|*"static-pie linked"*) ;; \
	    (*) echo "release: $$b is not static: $$f" >&2; exit 1;; esac; \
	  case "$$f" in (*", stripped"*) ;; \
	    (*) echo "release: $$b is not stripped: $$f" >&2; exit 1;; esac; \
	  $(QEMU_$(t)) "$$b" --help > '$(DIST)/.help' 2>&1 \
	    || { echo "release: $$b --help failed under '$(QEMU_$(t))':" >&2; cat '$(DIST)/.help' >&2; exit 1; }; \
	  grep -q -i 'usage' '$(DIST)/.help' \
	    || { echo "release: $$b --help printed no usage" >&2; exit 1; }; \
	  echo "ok  $(t): --help runs on '$(if $(QEMU_$(t)),$(QEMU_$(t)),native)'";) \
	rm -f '$(DIST)/.help'; \
	cd '$(DIST)' && sha256sum --quiet -c SHA256SUMS

.PHONY: size-list
size-list:
	@cd '$(DIST)' && for b in takeover-$(TAKEOVER_VERSION)-*; do \
	  printf '%9d  %s\n           %s\n' "$$(stat -c %s "$$b")" "$$b" "$$(file -b "$$b")"; \
	done

# ---------------------------------------------------------------------------------------------
# test-cross: tests run under qemu-user through the runners in .cargo/config.toml. Doc tests are
# left out (--tests): they only run on the host. Dev profile, panic=unwind: build-std builds the
# default set (std, panic_unwind, test).
test-cross: $(if $(filter $(BUILD_STD_TARGETS),$(CROSS_TEST_TARGETS)),build-std-vendor)
	@set -e; \
	$(foreach t,$(CROSS_TEST_TARGETS), \
	  echo "== test $(t) on '$(QEMU_$(t))'"; \
	  start=$$(date +%s); \
	  TAKEOVER_TEST_RUNNER='$(QEMU_$(t))' $(CROSS_TEST_PROFILE_ENV) $(call build_std_env,$(t)) \
	    $(CARGO) test --locked --target $(t) --tests $(call build_std_args,$(t),std) \
	    -- --test-threads=$(CROSS_TEST_THREADS) $(foreach s,$(CROSS_TEST_SKIP),--skip $(s)); \
	  echo "== $(t): $$(( $$(date +%s) - start )) s";)

# ---------------------------------------------------------------------------------------------
# size: every release binary, built now with the release recipe (dist/ may hold an older
# `make release`; target/<t>/release is the same build), then the largest
# contributors of the x86_64 musl release build made unstripped (same recipe as size-check;
# separate target dir: the strip setting is part of every crate's fingerprint). Symbols are
# summed per crate (first path segment).
SIZE_TARGET_DIR := target/size

size: $(if $(filter $(BUILD_STD_TARGETS),$(RELEASE_TARGETS)),build-std-vendor)
	@set -e; \
	$(foreach t,$(RELEASE_TARGETS),$(call cargo_release,$(t)) -q;) \
	for t in $(RELEASE_TARGETS); do \
	  printf '%9d  %s\n' "$$(stat -c %s target/$$t/release/takeover)" "$$t"; \
	done
	@CARGO_PROFILE_RELEASE_STRIP=none $(call cargo_release,x86_64-unknown-linux-musl) -q \
	  --target-dir $(SIZE_TARGET_DIR)
	@b=$(SIZE_TARGET_DIR)/x86_64-unknown-linux-musl/release/takeover; \
	echo; echo "x86_64-unknown-linux-musl, unstripped ($$b): sections"; \
	size -A "$$b" | awk '$$2 > 4096 && $$1 ~ /^\./ { printf "%9d  %s\n", $$2, $$1 }' | sort -rn; \
	echo; echo "code+data per crate (nm, demangled; 'other' = C/musl/unnamed)"; \
	nm -S --size-sort -t d -C "$$b" | awk ' \
	  { sz = $$2 + 0; name = ""; for (i = 4; i <= NF; i++) name = name (i > 4 ? " " : "") $$i; \
	    s = name; sub(/^(<|&|\*const |\*mut )+/, "", s); \
	    if (match(s, /^[A-Za-z_][A-Za-z0-9_]*::/)) c = substr(s, 1, RLENGTH - 2); else c = "other"; \
	    tot[c] += sz } \
	  END { for (c in tot) printf "%9d  %s\n", tot[c], c }' | sort -rn | head -15; \
	echo; echo "largest symbols"; \
	nm -S --size-sort -t d -C "$$b" | tail -20 | tac | awk '{ printf "%9d  ", $$2 + 0; \
	  for (i = 4; i <= NF; i++) printf "%s ", $$i; print "" }' | cut -c1-140

size-check: $(if $(call is_build_std,x86_64-unknown-linux-musl),build-std-vendor)
	@$(call cargo_release,x86_64-unknown-linux-musl) -q
	@b=target/x86_64-unknown-linux-musl/release/takeover; n=$$(stat -c %s "$$b"); \
	if [ "$$n" -gt $(SIZE_BUDGET) ]; then \
	  echo "size-check: $$b is $$n bytes > budget $(SIZE_BUDGET)" >&2; exit 1; \
	else echo "size-check: $$b is $$n bytes <= budget $(SIZE_BUDGET)"; fi

# ---------------------------------------------------------------------------------------------
# `make test` (CI) runs test-extra: install the cross tools if missing (rust-src for build-std),
# run the tests under qemu-user (CI_CROSS_TEST_TARGETS), then hold the x86_64 release binary to
# SIZE_BUDGET.
test-extra:: ; @$(MAKE) --no-print-directory deps-cross test-cross CROSS_TEST_TARGETS='$(CI_CROSS_TEST_TARGETS)'
test-extra:: ; @$(MAKE) --no-print-directory deps-cross size-check
