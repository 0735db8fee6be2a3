#!/bin/bash
# Build (or reuse from the cache) the "lvm" guest: the systemd guest with its root filesystem on
# an LVM logical volume (issue 18, scenario lvm-root-migrate).
#
#   tests/vm/lvm-guest.sh
#
# Derived from the systemd guest (built first by build-guest.sh systemd if needed), so the
# existing flavours' package lists and cache keys stay untouched: the systemd guest's root tree
# is read out of its base.qcow2 with debugfs, lvm2 is installed in a chroot (its initramfs hook
# activates the root volume at boot) and the initramfs is rebuilt there. The disk: MBR, one
# partition /dev/vda1 (type 8e) that is an LVM physical volume of the volume group "takeover",
# which holds one logical volume "root" (ext4, label guestroot) over all of it;
# root=/dev/mapper/takeover-root. The LVM metadata is written by the chroot's own lvm tools onto
# a loop device of this script's own image file, restricted to that one device (--devices and a
# filter), with the volume never activated (-an): no device-mapper device is created on this
# machine and no other device is scanned. The filesystem is then copied to the volume's offset.
# Hostname, Wi-Fi networks, app data and swap file are the systemd guest's.
# Result under $VM_CACHE/guest-lvm/ (base.qcow2, vmlinuz, initrd.img, cmdline, info.json).
set -euo pipefail

main() {
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VM_CACHE:-$HERE/cache}
BASE=$CACHE/guest-systemd
OUT=$CACHE/guest-lvm
VG=takeover
LV=root

[ "$(id -u)" = 0 ] || { echo "lvm-guest: must run as root (chroot, loop device)" >&2; exit 1; }
"$HERE/build-guest.sh" systemd

KEY=$( { cat "$0"; cat "$BASE/stamp"; } | sha256sum | cut -c1-16)
if [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$KEY" ] && [ -f "$OUT/base.qcow2" ]; then
    echo "lvm-guest: lvm guest is cached ($OUT)"
    exit 0
fi

T0=$(date +%s)
WORK=$CACHE/build-lvm
R=$WORK/rootfs
LOOP=
cleanup() {
    if [ -d "$R" ]; then
        { findmnt -rn -o TARGET | grep -F "$R/" || true; } | sort -r |
            while read -r m; do umount -l "$m" || true; done
    fi
    if [ -n "$LOOP" ]; then losetup -d "$LOOP" || true; LOOP=; fi
}
trap cleanup EXIT
cleanup
rm -rf "$WORK"
mkdir -p "$R" "$OUT"

# The systemd guest's root partition (MBR, starts at 1 MiB), read out without mounting.
qemu-img convert -f qcow2 -O raw "$BASE/base.qcow2" "$WORK/systemd.raw"
debugfs -R "rdump / $R" "$WORK/systemd.raw?offset=1048576" 2>/dev/null
rm -f "$WORK/systemd.raw"
[ -x "$R/usr/lib/systemd/systemd" ] || { echo "lvm-guest: reading the systemd guest failed" >&2; exit 1; }
rm -rf "$R/lost+found"
# debugfs rdump drops setuid, setgid and sticky bits: take them from the debootstrapped tree.
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
print(f"lvm-guest: {n} setuid/setgid/sticky modes restored")
PY

# lvm2 from the mirror debootstrap used; its initramfs hook and the rebuilt initramfs.
mv "$R/etc/resolv.conf" "$WORK/resolv.conf.guest" 2>/dev/null || true
cp /etc/resolv.conf "$R/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount --bind /dev "$R/dev"
chroot "$R" apt-get -q update
DEBIAN_FRONTEND=noninteractive chroot "$R" apt-get -q -y --no-install-recommends install lvm2
chroot "$R" apt-get clean
sed -i 's|^/dev/vda1 |/dev/mapper/'"$VG-$LV"' |' "$R/etc/fstab"
grep -q "^/dev/mapper/$VG-$LV " "$R/etc/fstab" || { echo "lvm-guest: fstab has no /dev/vda1 root line" >&2; exit 1; }
chroot "$R" update-initramfs -u -k all
K=$(ls "$R"/boot/vmlinuz-* | sort -V | tail -n1)
I=$R/boot/initrd.img-${K##*/vmlinuz-}
# (lvm2's hook puts lvm and its udev rules in; 69-lvm.rules activates the VG once its PV appears)
chroot "$R" lsinitramfs "${I#"$R"}" | grep -c 'lib/udev/rules.d/69-lvm.rules' >/dev/null ||
    { echo "lvm-guest: the rebuilt initramfs has no LVM udev rules" >&2; exit 1; }

# The disk: one partition (type 8e, LVM) from 1 MiB to the end, a PV on it, VG $VG, LV $LV.
RAW=$WORK/disk.raw
truncate -s 2048M "$RAW"
printf 'label: dos\nunit: sectors\nstart=2048, type=8e, bootable\n' | sfdisk -q "$RAW"
LOOP=$(losetup -f --show -o $((1 << 20)) "$RAW")
mkdir -p "$R/run/lock/lvm"
# (LVM_SUPPRESS_FD_WARNINGS: the shell's inherited descriptors are not LVM's concern)
lvmc() {
    LVM_SUPPRESS_FD_WARNINGS=1 \
        chroot "$R" "$@" --devices "$LOOP" --config "devices { filter=[\"a|^$LOOP\$|\",\"r|.*|\"] \
obtain_device_list_from_udev=0 } activation { udev_sync=0 udev_rules=0 monitoring=0 } \
global { use_lvmlockd=0 }"
}
lvmc pvcreate -q "$LOOP"
lvmc vgcreate -q "$VG" "$LOOP"
lvmc lvcreate -q --driverloaded n -an -Zn -y -l 100%FREE -n "$LV" "$VG"
PE_START=$(lvmc pvs --noheadings --units b --nosuffix -o pe_start "$LOOP" | tr -d ' ')
LV_BYTES=$(lvmc lvs --noheadings --units b --nosuffix -o lv_size "$VG/$LV" | tr -d ' ')
SEG=$(lvmc lvs --noheadings -o seg_pe_ranges "$VG/$LV" | tr -d ' ')
losetup -d "$LOOP"
LOOP=
# One linear segment from the first extent: the LV's bytes start pe_start into the partition.
case "$SEG" in *:0-*) ;; *) echo "lvm-guest: unexpected LV layout $SEG" >&2; exit 1 ;; esac
cleanup
rm -rf "$R/run/lock/lvm"
rm -f "$R/usr/sbin/policy-rc.d" "$R/etc/resolv.conf"
[ -e "$WORK/resolv.conf.guest" ] || [ -L "$WORK/resolv.conf.guest" ] && mv "$WORK/resolv.conf.guest" "$R/etc/resolv.conf"

cp "$BASE/vmlinuz" "$OUT/vmlinuz"
cp "$I" "$OUT/initrd.img"
sed "s|root=/dev/vda1|root=/dev/mapper/$VG-$LV|" "$BASE/cmdline" >"$OUT/cmdline"
PART=$WORK/root.ext4
mkfs.ext4 -q -F -L guestroot -d "$R" "$PART" "$((LV_BYTES / 1024))k"
dd if="$PART" of="$RAW" bs=1M seek=$(((1 << 20) + PE_START)) oflag=seek_bytes conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 "$RAW" "$OUT/base.qcow2.tmp"
mv "$OUT/base.qcow2.tmp" "$OUT/base.qcow2"
T1=$(date +%s)
cat >"$OUT/info.json" <<JSON
{"flavour": "lvm", "derived_from": "systemd", "root": "/dev/mapper/$VG-$LV", "pv": "/dev/vda1",
 "pe_start": $PE_START, "lv_bytes": $LV_BYTES, "build_seconds": $((T1 - T0))}
JSON
echo "$KEY" >"$OUT/stamp"
rm -rf "$WORK"
echo "lvm-guest: lvm guest built in $((T1 - T0)) s ($OUT)"
}

main "$@"
