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
    gzip
    xz-utils
    ca-certificates
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

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
