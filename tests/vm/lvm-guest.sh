#!/bin/bash
# Build (or reuse from the cache) the "lvm" guest: the systemd guest with its root filesystem on
# an LVM logical volume (issue 18, scenario lvm-root-migrate).
#
#   tests/vm/lvm-guest.sh
#
# Derived from the systemd guest (built first by build-guest.sh systemd if needed), so the
# existing flavours' package lists and cache keys stay untouched. The systemd guest's root
# filesystem itself is taken (copied out of its base.qcow2, shrunk by resize2fs to the volume's
# size) and loop-mounted from this script's own file; lvm2 is installed into it in a chroot and
# the initramfs rebuilt there (lvm2's udev rules activate the volume group at boot). The disk:
# MBR, one partition /dev/vda1 (type 8e), an LVM physical volume of the volume group "takeover"
# holding one logical volume "root" over all of it; root=/dev/mapper/takeover-root in the
# command line and fstab. The LVM metadata is written by the chroot's own lvm tools onto a loop
# device of this script's own image file, restricted to that one device (--devices and a
# filter) and without device-mapper (-an, --driverloaded n): no volume is activated on this
# machine and no other device is scanned. The filesystem is then copied to the volume's offset.
# Hostname, Wi-Fi networks, app data and swap file are the systemd guest's.
# Result under $VM_CACHE/guest-lvm/ (base.qcow2, vmlinuz, initrd.img, cmdline, info.json).
set -euo pipefail

main() {
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"
VG=takeover
LV=root

derived_guest_cached lvm "$0"

T0=$(date +%s)
WORK=$CACHE/build-lvm
R=$WORK/mnt
PART=$WORK/root.ext4
RAW=$WORK/disk.raw
LOOP=
cleanup() {
    if mountpoint -q "$R"; then umount -R "$R"; fi
    if [ -n "$LOOP" ]; then losetup -d "$LOOP"; LOOP=; fi
}
trap cleanup EXIT
if [ -d "$R" ]; then cleanup; fi
rm -rf "$WORK"
mkdir -p "$R" "$OUT"

# The new disk: one partition (type 8e, LVM) from 1 MiB to the end; PV, VG $VG, LV $LV on it,
# written by the lvm tools of the systemd guest's tree once lvm2 is in it (below).
truncate -s 2048M "$RAW"
printf 'label: dos\nunit: sectors\nstart=2048, type=8e, bootable\n' | sfdisk -q "$RAW"

# The systemd guest's root filesystem (partition 1 from 1 MiB to the end, build-guest.sh).
qemu-img convert -f qcow2 -O raw "$BASE/base.qcow2" "$WORK/systemd.raw"
dd if="$WORK/systemd.raw" of="$PART" bs=1M skip=1 conv=sparse status=none
rm -f "$WORK/systemd.raw"
mount -o loop "$PART" "$R"
[ -x "$R/usr/lib/systemd/systemd" ] || { echo "lvm-guest: $PART is not the systemd guest's root" >&2; exit 1; }

# lvm2 from the mirror debootstrap used (the tree's sources.list), with the machine's resolver
# and no daemons started; then the initramfs again.
GUEST_RESOLV=$(readlink "$R/etc/resolv.conf" || true)
cp -a "$R/etc/resolv.conf" "$WORK/resolv.conf" 2>/dev/null || true
rm -f "$R/etc/resolv.conf"
cp /etc/resolv.conf "$R/etc/resolv.conf"
install -m 755 /dev/stdin "$R/usr/sbin/policy-rc.d" <<<$'#!/bin/sh\nexit 101'
mount --bind /dev "$R/dev"
mount -t sysfs sysfs "$R/sys"
mount -t proc proc "$R/proc"
chroot "$R" apt-get -q update
DEBIAN_FRONTEND=noninteractive chroot "$R" apt-get -q -y --no-install-recommends install lvm2
chroot "$R" apt-get clean
rm -f "$R/usr/sbin/policy-rc.d" "$R/etc/resolv.conf"
if [ -n "$GUEST_RESOLV" ]; then ln -s "$GUEST_RESOLV" "$R/etc/resolv.conf"
elif [ -e "$WORK/resolv.conf" ]; then cp -a "$WORK/resolv.conf" "$R/etc/resolv.conf"; fi
sed -i "s|^/dev/vda1 |/dev/mapper/$VG-$LV |" "$R/etc/fstab"
grep -q "^/dev/mapper/$VG-$LV " "$R/etc/fstab" || { echo "lvm-guest: fstab has no /dev/vda1 root line" >&2; exit 1; }
chroot "$R" update-initramfs -u -k all
INITRD=$(cd "$R/boot" && ls initrd.img-* | sort -V | tail -n1)
# (lvm2's hook puts lvm and its udev rules in; 69-lvm.rules activates the VG once its PV appears)
chroot "$R" lsinitramfs "/boot/$INITRD" | grep -c 'lib/udev/rules.d/69-lvm.rules' >/dev/null ||
    { echo "lvm-guest: the rebuilt initramfs has no LVM udev rules" >&2; exit 1; }
cp "$R/boot/$INITRD" "$OUT/initrd.img"

# LVM metadata onto partition 1 of the new disk, through a loop device of it and nothing else.
# (LVM_SUPPRESS_FD_WARNINGS: the shell's inherited descriptors are not LVM's concern)
LOOP=$(losetup -f --show -o $((1 << 20)) "$RAW")
mkdir -p "$R/run/lock/lvm"
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
rm -rf "$R/run/lock/lvm"
cleanup

# The filesystem, shrunk to the volume's size, at the volume's offset.
e2fsck -f -y "$PART" >/dev/null || [ $? -le 1 ]
resize2fs -f "$PART" "$((LV_BYTES / 1024))K" >/dev/null
dd if="$PART" of="$RAW" bs=1M seek=$(((1 << 20) + PE_START)) oflag=seek_bytes conv=notrunc,sparse status=none
cp "$BASE/vmlinuz" "$OUT/vmlinuz"
sed "s|root=/dev/vda1|root=/dev/mapper/$VG-$LV|" "$BASE/cmdline" >"$OUT/cmdline"
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
