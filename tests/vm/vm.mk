# VM test bed (tests/vm/, issue 7). Included from the top-level Makefile:
#   include tests/vm/vm.mk
# Targets (as root, on a Debian 12 machine with network access to the Debian mirror):
#   make vm-deps   install the Debian packages the test bed needs (idempotent)
#   make e2e       static binary + both guests (cached) + every scenario; E2E_ARGS="--only NAME"
#   make e2e-ci    the representative set `make test` runs (see E2E_ONLY in scenarios.py)
#   make demo      a real migration of the systemd guest, serial console streaming, then what
#                  landed on resin-boot/resin-data (DEMO_MODE=dry-run: the dry-run instead)
#   make vm-clean  remove run directories and built guests (keeps downloaded .debs and trees;
#                  VM_CLEAN_ALL=1 removes the whole cache)
VM_DIR      := tests/vm
VM_TARGET   := x86_64-unknown-linux-musl
VM_BINARY   := target/$(VM_TARGET)/release/takeover
# Test-only build with the cargo feature fault-injection (TAKEOVER_FAULT=...), kept apart so
# that the release binary never carries it.
VM_FAULT_DIR    := target/fault-injection
VM_FAULT_BINARY := $(VM_FAULT_DIR)/$(VM_TARGET)/release/takeover
VM_PYTHON   := /usr/bin/python3

.PHONY: vm-deps vm-binary vm-fault-binary vm-guests vm-images e2e e2e-ci demo vm-clean

vm-deps:
	$(VM_DIR)/deps.sh

# The guests run the binary `make release` ships for x86_64 (the same recipe, `make static`).
vm-binary:
	@$(MAKE) --no-print-directory static TARGET=$(VM_TARGET)

vm-fault-binary: vm-binary
	cargo build --release --target $(VM_TARGET) --features fault-injection --target-dir $(VM_FAULT_DIR)

vm-guests: vm-deps
	$(VM_DIR)/build-guest.sh systemd
	$(VM_DIR)/build-guest.sh sysvinit

e2e: vm-deps vm-binary vm-fault-binary vm-guests
	$(VM_PYTHON) $(VM_DIR)/scenarios.py --binary $(VM_BINARY) --fault-binary $(VM_FAULT_BINARY) $(E2E_ARGS)

# make test's share of the VM scenarios: every scenario but scenarios.py's E2E_ONLY, and of the
# Pi boards one migration each (VM_PI=ci: pi3-64-migrate, pi2-32-migrate; their guests build
# in 1-2 min each). `make e2e` runs everything.
e2e-ci:
	@$(MAKE) --no-print-directory e2e VM_PI=ci E2E_ARGS="--ci $(E2E_ARGS)"

ifeq ($(BOARD),)
demo: vm-deps vm-binary
	$(VM_DIR)/build-guest.sh systemd
	$(VM_PYTHON) $(VM_DIR)/demo.py --binary $(VM_BINARY) $(DEMO_ARGS)
else
demo: pi-demo
endif

vm-clean:
	rm -rf $(VM_DIR)/out $(VM_DIR)/cache/guest-* $(VM_DIR)/cache/build-*
	@if [ "$(VM_CLEAN_ALL)" = 1 ]; then rm -rf $(VM_DIR)/cache; fi

# Raspberry Pi boards (issue 17): pi-guests, pi-fault-binary, the Pi scenarios, demo BOARD=pi3.
include $(VM_DIR)/pi/pi.mk
