#!/bin/bash
# Debian packages and host settings for the Raspberry Pi guests (tests/vm/build-pi-guest.sh),
# on top of tests/vm/deps.sh. Idempotent; needs root.
#   qemu-system-arm     qemu-system-aarch64 (raspi3b) and qemu-system-arm (raspi2b)
#   mmdebstrap          the guests' root file systems (--variant=extract: nothing foreign runs)
#   qemu-user-static    the guest's own ldconfig, run once on the host
#   kmod, cpio          depmod for the kernel module subsets, the initramfs archive
# apt-get download of the kernels and busybox needs the foreign architectures in dpkg.
set -euo pipefail
PKGS=(qemu-system-arm qemu-user-static mmdebstrap kmod cpio dosfstools mtools e2fsprogs fdisk)
upd=
for a in arm64 armhf; do
    dpkg --print-foreign-architectures | grep -qx $a || { dpkg --add-architecture $a; upd=1; }
done
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [ -n "$upd" ] || [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq || echo "pi-deps: apt-get update reported errors; continuing"
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "pi-deps: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "pi-deps: ok"
