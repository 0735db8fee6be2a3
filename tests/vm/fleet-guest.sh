#!/bin/bash
# Build (or reuse from the cache) the "fleet" guest: the systemd guest plus openssh-server and
# python3, what Ansible needs on a managed host (issue 22).
#
#   tests/vm/fleet-guest.sh
#
# It is derived from the systemd guest (built first by build-guest.sh systemd if needed), so the
# two stay alike and the existing flavours' package lists and cache keys are untouched: the
# systemd guest's root filesystem is read out of its base.qcow2 with debugfs (no mount, no loop
# device), the two packages are installed in a chroot from the machine's Debian mirror, the
# hostname becomes takeover-fleet, and the tree is written to a fresh disk of the same layout.
# Result under $VM_CACHE/guest-fleet/ (base.qcow2, vmlinuz, initrd.img, cmdline, info.json).
# sshd keeps Debian's default (root by key only); the test puts its own key in
# /root/.ssh/authorized_keys at boot through the payload disk.
set -euo pipefail

main() {
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"
EXTRA_PKGS="openssh-server python3"
HOST=takeover-fleet

derived_guest_cached fleet "$0"

T0=$(date +%s)
WORK=$CACHE/build-fleet
R=$WORK/rootfs
cleanup() { unmount_below "$R"; }
trap cleanup EXIT
cleanup
rm -rf "$WORK"
mkdir -p "$R" "$OUT"

# The systemd guest's root partition (MBR, starts at 1 MiB), read out without mounting.
qemu-img convert -f qcow2 -O raw "$BASE/base.qcow2" "$WORK/systemd.raw"
debugfs -R "rdump / $R" "$WORK/systemd.raw?offset=1048576" 2>/dev/null
rm -f "$WORK/systemd.raw"
[ -x "$R/usr/lib/systemd/systemd" ] || { echo "fleet-guest: reading the systemd guest failed" >&2; exit 1; }
rm -rf "$R/lost+found"
# debugfs rdump keeps owners and rwx bits but drops setuid, setgid and sticky bits: take them
# from the systemd guest's debootstrapped tree (the tarball build-guest.sh keeps).
TAR=$(ls "$CACHE"/rootfs-systemd-*.tar | head -n1)
python3 - "$TAR" "$R" <<'PY'
import os, sys, tarfile
n = 0
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        p = os.path.join(sys.argv[2], m.name.lstrip("./"))
        if m.mode & 0o7000 and (m.isfile() or m.isdir()) and os.path.lexists(p) and not os.path.islink(p):
            os.chmod(p, m.mode & 0o7777)
            n += 1
print(f"fleet-guest: {n} setuid/setgid/sticky modes restored")
PY

# Packages from the mirror debootstrap used (its sources.list is in the tree).
mv "$R/etc/resolv.conf" "$WORK/resolv.conf.guest" 2>/dev/null || true
cp /etc/resolv.conf "$R/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
chroot "$R" apt-get -q update
DEBIAN_FRONTEND=noninteractive chroot "$R" apt-get -q -y --no-install-recommends install $EXTRA_PKGS
chroot "$R" apt-get clean
cleanup
rm -f "$R/etc/resolv.conf"
[ -e "$WORK/resolv.conf.guest" ] || [ -L "$WORK/resolv.conf.guest" ] && mv "$WORK/resolv.conf.guest" "$R/etc/resolv.conf"
echo "$HOST" >"$R/etc/hostname"
sed -i "s/takeover-guest/$HOST/" "$R/etc/hosts"
printf '%s\n' "$(printf '%s' "$HOST" | sha256sum | cut -c1-32)" >"$R/etc/machine-id"
# No DNS lookups of the client (the restricted user network has no resolver answer).
echo "UseDNS no" >"$R/etc/ssh/sshd_config.d/fleet-test.conf"

cp "$BASE/vmlinuz" "$BASE/initrd.img" "$BASE/cmdline" "$OUT/"
PART=$WORK/root.ext4
RAW=$WORK/disk.raw
mkfs.ext4 -q -F -L guestroot -d "$R" "$PART" 2047M
truncate -s 2048M "$RAW"
printf 'label: dos\nunit: sectors\nstart=2048, type=83, bootable\n' | sfdisk -q "$RAW"
dd if="$PART" of="$RAW" bs=1M seek=1 conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 "$RAW" "$OUT/base.qcow2.tmp"
mv "$OUT/base.qcow2.tmp" "$OUT/base.qcow2"
T1=$(date +%s)
cat >"$OUT/info.json" <<JSON
{"flavour": "fleet", "derived_from": "systemd", "hostname": "$HOST", "extra_packages": "$EXTRA_PKGS",
 "build_seconds": $((T1 - T0))}
JSON
echo "$KEY" >"$OUT/stamp"
rm -rf "$WORK"
echo "fleet-guest: fleet guest built in $((T1 - T0)) s ($OUT)"
}

main "$@"
