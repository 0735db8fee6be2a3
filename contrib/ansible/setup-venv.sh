#!/bin/sh
# Create (or update) the controller's virtual environment with the pinned ansible-core and
# ansible-lint from PyPI: contrib/ansible/setup-venv.sh [VENV_DIR]  (default contrib/ansible/.venv)
# Needs python3 (3.11 or newer; PYTHON=... picks another) with the venv module (Debian:
# python3-venv) and network access to PyPI.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-${ANSIBLE_VENV:-$HERE/.venv}}
STAMP=$VENV/.requirements.sha256
want=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
if [ -x "$VENV/bin/ansible-playbook" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
    echo "ansible venv is up to date ($VENV)"
    exit 0
fi
${PYTHON:-python3} -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
echo "$want" >"$STAMP"
"$VENV/bin/ansible-playbook" --version | head -n1
"$VENV/bin/ansible-lint" --version | head -n1
