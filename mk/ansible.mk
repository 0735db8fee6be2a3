# Fleet rollout with Ansible (contrib/ansible/, issue 22). Included by the top-level Makefile.
#   make ansible-venv     controller venv with the pinned ansible-core and ansible-lint (PyPI)
#   make ansible-lint     ansible-lint on contrib/ansible (production profile)
#   make ansible-test     unit tests of the role's controller code (binary pick, SHA256SUMS, report)
#   make vm-fleet-guest   the VM test bed's "fleet" guest (systemd guest + openssh-server, python3)
# The VM scenarios fleet-survey, fleet-rollout and fleet-stop-on-failure run in `make e2e`
# (tests/vm/fleet.py builds the guest and the venv itself when they are missing).
ANSIBLE_DIR  := contrib/ansible
ANSIBLE_VENV ?= $(ANSIBLE_DIR)/.venv

.PHONY: ansible-venv ansible-lint ansible-test vm-fleet-guest

ansible-venv:
	$(ANSIBLE_DIR)/setup-venv.sh $(abspath $(ANSIBLE_VENV))

ansible-lint: ansible-venv
	cd $(ANSIBLE_DIR) && $(abspath $(ANSIBLE_VENV))/bin/ansible-lint --offline

ansible-test: ansible-venv
	$(ANSIBLE_VENV)/bin/python -m unittest discover -s $(ANSIBLE_DIR)/tests

vm-fleet-guest:
	tests/vm/fleet-guest.sh

test-extra:: ; @$(MAKE) --no-print-directory ansible-lint ansible-test
