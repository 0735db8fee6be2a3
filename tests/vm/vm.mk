# VM test bed (tests/vm/, issue 7). Included from the top-level Makefile:
#   include tests/vm/vm.mk
# Targets (as root, on a Debian 12 machine with network access to the Debian mirror):
#   make vm-deps   install the Debian packages the test bed needs (idempotent)
#   make e2e       static binary + both guests (cached) + every scenario; E2E_ARGS="--only NAME"
#   make demo      one run on the systemd guest with the serial console streaming
#   make vm-clean  remove run directories and built guests (keeps downloaded .debs and trees;
#                  VM_CLEAN_ALL=1 removes the whole cache)
VM_DIR      := tests/vm
VM_TARGET   := x86_64-unknown-linux-musl
VM_BINARY   := target/$(VM_TARGET)/release/takeover
VM_PYTHON   := /usr/bin/python3

.PHONY: vm-deps vm-binary vm-guests vm-images e2e demo vm-clean

vm-deps:
	$(VM_DIR)/deps.sh

vm-binary:
	@if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx $(VM_TARGET); then \
		rustup target add $(VM_TARGET); fi
	cargo build --release --target $(VM_TARGET)

vm-guests: vm-deps
	$(VM_DIR)/build-guest.sh systemd
	$(VM_DIR)/build-guest.sh sysvinit

e2e: vm-deps vm-binary vm-guests
	$(VM_PYTHON) $(VM_DIR)/scenarios.py --binary $(VM_BINARY) $(E2E_ARGS)

demo: vm-deps vm-binary
	$(VM_DIR)/build-guest.sh systemd
	$(VM_PYTHON) $(VM_DIR)/demo.py --binary $(VM_BINARY) $(DEMO_ARGS)

vm-clean:
	rm -rf $(VM_DIR)/out $(VM_DIR)/cache/guest-* $(VM_DIR)/cache/build-*
	@if [ "$(VM_CLEAN_ALL)" = 1 ]; then rm -rf $(VM_DIR)/cache; fi
