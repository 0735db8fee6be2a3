# `make bench` (issue 10): the flash pipeline against `gzip -dc | dd` + `cmp` and the decoder's
# own speed, on a cached 1 GiB balenaOS-like image (target/bench/). Writes docs/PERFORMANCE.md.
# Root: drops the page cache between runs. Only files under target/bench/ are written.
#   make bench BENCH_RUNS=5
BENCH_RUNS ?= 3
BENCH_TARGET ?= x86_64-unknown-linux-musl

.PHONY: bench
bench:
	$(call cargo_release,$(BENCH_TARGET)) --bin takeover --example decode
	tests/bench/bench.sh --runs $(BENCH_RUNS) --doc docs/PERFORMANCE.md \
	  target/$(BENCH_TARGET)/release/takeover target/$(BENCH_TARGET)/release/examples/decode
