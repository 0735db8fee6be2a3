# takeover — build, test and demo. `make help` lists the targets.
#
# Everything runs with plain cargo (no docker). Dependencies come from vendor/ (offline).

CARGO        ?= cargo
TARGET       ?= x86_64-unknown-linux-musl
PROFILE_DIR  := target/$(TARGET)/release
BIN          := $(PROFILE_DIR)/takeover
VERSION      := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: help build static test check lint fmt vendor clean deps

help:
	@echo "takeover $(VERSION)"
	@echo "  make build      debug build for this machine"
	@echo "  make static     the release binary for TARGET (default $(TARGET)) -> $(BIN)"
	@echo "  make test       everything CI runs: lint, unit + integration tests, VM scenarios"
	@echo "  make check      fast subset: fmt check, clippy, unit + integration tests"
	@echo "  make lint       cargo fmt --check and clippy -D warnings"
	@echo "  make demo       one whole migration in a QEMU VM, console streaming (root)"
	@echo "  make e2e        all VM scenarios (root)"
	@echo "  make release    static binaries for every board into dist/ (installs its tools: deps-cross)"
	@echo "  make deps-cross cross linkers, qemu-user, rustup targets and rust-src (root; release does it)"
	@echo "  make test-cross tests for aarch64, armv7, armv6 under qemu-user"
	@echo "  make size       binary sizes and largest contributors"
	@echo "  make bench      flash throughput and memory -> docs/PERFORMANCE.md (root)"
	@echo "  make fuzz       every fuzz target, SECONDS=N each (nightly, cargo-fuzz)"
	@echo "  make vendor     refresh vendor/ from Cargo.lock"
	@echo "  make deps       install the Debian packages and rustup targets the tests need (root)"

build:
	$(CARGO) build --offline

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --offline --all-targets -- -D warnings

check: lint
	$(CARGO) test --offline

fmt:
	$(CARGO) fmt --all

vendor:
	$(CARGO) vendor --locked vendor > /dev/null
	@echo "vendor/ refreshed; .cargo/config.toml already points at it"

clean:
	$(CARGO) clean
	rm -rf dist

deps:
	tools/install-deps.sh

# The full suite. VM scenarios (e2e) and cross tests come from the fragments below when present.
test: check static
	$(MAKE) --no-print-directory e2e
	$(MAKE) --no-print-directory test-extra

-include mk/*.mk
-include tests/vm/vm.mk

# Fragments add their suites to test-extra (e2e, test-cross, size-check).
test-extra:: ; @true
