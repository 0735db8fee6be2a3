#!/bin/bash
# Install the Debian packages the VM test bed needs. Idempotent: only missing packages are
# installed, so a second run costs one dpkg query. Needs root (apt-get).
set -euo pipefail

PKGS=(
    qemu-system-x86   # the emulator (TCG; KVM is used only when it really works)
    qemu-utils        # qemu-img: overlays and qcow2 -> raw for inspection
    debootstrap       # guest root filesystems
    dosfstools        # mkfs.vfat for resin-boot and payload disks
    mtools            # mcopy/mdir/mtype: FAT files without mounting
    e2fsprogs         # mkfs.ext4 -d, debugfs
    fdisk             # sfdisk
    ovmf              # EFI firmware for the EFI scenario
    python3           # runner, inspector, scenarios, relay (stdlib only)
    busybox-static    # tools for payload scripts
    python3-venv      # fleet scenarios: the Ansible controller's venv (contrib/ansible)
    openssh-client    # fleet scenarios: ssh, ssh-keygen
    gzip
    xz-utils
    ca-certificates
)

# Installing Debian's qemu-system-x86 removes a newer preinstalled qemu-utils (a backport some
# machines carry): ask for the whole QEMU pair whenever either is missing, so qemu-img is there
# afterwards in Debian's matching version.
missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
case " ${missing[*]} " in
    *" qemu-system-x86 "*|*" qemu-utils "*) missing+=(qemu-system-x86 qemu-utils) ;;
esac

if [ ${#missing[@]} -eq 0 ]; then
    echo "vm-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "vm-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
fi

echo "vm-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
# One package's install can remove another's (see above): check the whole list once more.
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        echo "vm-deps: $p is still not installed after apt-get install; install it by hand" >&2
        exit 1
    fi
done
