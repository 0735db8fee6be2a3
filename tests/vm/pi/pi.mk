# Raspberry Pi boards in the VM test bed (issue 17). Included from tests/vm/vm.mk.
#   make pi-guests          both Pi guests (cached under $VM_CACHE/pi)
#   make pi-fault-binary    aarch64 release build with the cargo feature fault-injection
#   make e2e                also runs the Pi scenarios (VM_PI=ci: only the two migrations, as
#                           make e2e-ci / make test do; VM_PI=0: none) with the `make release`
#                           binaries in dist/
#   make demo BOARD=pi3     a Pi 3 migration on its serial console
PI_DIR          := tests/vm/pi
PI_FAULT_TARGET := aarch64-unknown-linux-musl

.PHONY: pi-deps pi-guests pi-fault-binary pi-e2e-deps pi-demo pi-release

pi-deps:
	$(PI_DIR)/deps.sh

pi-guests: vm-deps pi-deps
	tests/vm/build-pi-guest.sh pi3
	tests/vm/build-pi-guest.sh pi2

pi-fault-binary:
	cargo build --offline --release --target $(PI_FAULT_TARGET) --features fault-injection \
		--target-dir $(VM_FAULT_DIR)

# The Pi scenarios run the binaries `make release` ships (dist/takeover-<version>-<target>).
# VM_PI=ci (make e2e-ci, make test) needs only the two Pi migrations: the same release recipe
# for the two Pi targets alone, into target/pi-dist (dist/ stays as it is), and no
# fault-injection build.
PI_TARGETS := aarch64-unknown-linux-musl $(ARMV7_TARGET)
ifeq ($(VM_PI),ci)
export PI_DIST := $(CURDIR)/target/pi-dist
endif

pi-release:
	@$(MAKE) --no-print-directory release RELEASE_TARGETS="$(PI_TARGETS)" DIST=$(PI_DIST)

pi-e2e-deps: $(if $(filter 0,$(VM_PI)),,pi-guests $(if $(filter ci,$(VM_PI)),pi-release,release pi-fault-binary))

e2e: pi-e2e-deps

pi-demo: vm-deps pi-deps release
	tests/vm/build-pi-guest.sh $(BOARD)
	$(VM_PYTHON) $(PI_DIR)/demo_pi.py --board $(BOARD) $(DEMO_ARGS)
