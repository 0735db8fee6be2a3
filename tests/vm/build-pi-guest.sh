#!/bin/bash
# Build (or reuse from the cache) an emulated Raspberry Pi guest for the VM test bed (issue 17).
#
#   tests/vm/build-pi-guest.sh pi3|pi2
#
#   pi3  QEMU raspi3b (aarch64), Debian 12 arm64 shaped like 64-bit Raspberry Pi OS Bookworm:
#        systemd, NetworkManager, boot partition mmcblk0p1 (vfat) on /boot/firmware
#   pi2  QEMU raspi2b (armv7), Debian 11 armhf shaped like 32-bit Raspberry Pi OS Bullseye:
#        systemd, dhcpcd with a static address, wpa_supplicant, boot partition on /boot
#
# Result, under $VM_CACHE/pi/guest-<board>/:
#   sd.img       raw SD card (1 GiB: QEMU wants a power of two): p1 bootfs vfat 64 MiB,
#                p2 rootfs ext4, p3 PAYLOAD (256 MiB, written per run by tests/vm/pi/run_pi.py)
#   kernel       Debian's kernel (arm64: the gunzipped Image; armmp: zImage), board.dtb,
#   initrd.img   a busybox initramfs that loads the SD card driver and ext4, then switch_root
#   cmdline, machine, info.json (what was built, build times in seconds)
#
# The Pi's own watchdog is left out: QEMU 7.2's bcm2835 watchdog resets the machine the moment
# it is opened. softdog stands in (loaded at boot, /dev/watchdog). Without bcm2835_wdt the
# kernel has no restart handler on this machine: a reboot prints "reboot: Restarting system"
# and halts; the runner ends QEMU on that line.
#
# Root filesystem, built without running foreign binaries (but for the guest's static ldconfig,
# once, through qemu-user when the host has it): mmdebstrap --variant=extract
# resolves and downloads the Essential and Priority: required packages plus the board's
# packages for the foreign architecture with the host's apt and unpacks them (no maintainer
# scripts); configure_tree then does natively what those scripts would have done for this
# guest (accounts, alternatives, PAM, enabled units; see there). Running debootstrap's second
# stage under qemu-user instead took 1005 s (pi3) and 2584 s (pi2) on 2 shared cores; this
# takes 47 s and 28 s. The unpacked and configured tree is cached as a tar.
set -euo pipefail

# configure_tree ROOT: what the maintainer scripts of the unpacked packages would have done,
# as far as this guest needs it, done on the host. $ENABLE (units), $HOST come from main.
configure_tree() {
    local r=$1 u
    # Accounts: base-passwd's masters, then every sysusers.d entry (systemd-journal,
    # systemd-network, messagebus, polkitd, udev's groups) with the host's systemd-sysusers.
    cp "$r/usr/share/base-passwd/passwd.master" "$r/etc/passwd"
    cp "$r/usr/share/base-passwd/group.master" "$r/etc/group"
    sed -e 's/^\([^:]*\):.*/\1:*:19000:0:99999:7:::/' -e 's/^root:\*:/root::/' "$r/etc/passwd" >"$r/etc/shadow"
    sed -e 's/^\([^:]*\):.*/\1:*::/' "$r/etc/group" >"$r/etc/gshadow"
    chmod 640 "$r/etc/shadow" "$r/etc/gshadow"
    chgrp 42 "$r/etc/shadow" "$r/etc/gshadow"  # group shadow in group.master
    systemd-sysusers --root="$r" >/dev/null
    grep -q '^netdev:' "$r/etc/group" || { echo 'netdev:x:106:' >>"$r/etc/group"; echo 'netdev:!::' >>"$r/etc/gshadow"; }
    if ! grep -q '^messagebus:' "$r/etc/passwd"; then
        echo 'messagebus:x:103:104::/nonexistent:/usr/sbin/nologin' >>"$r/etc/passwd"
        echo 'messagebus:*:19000:0:99999:7:::' >>"$r/etc/shadow"
        grep -q '^messagebus:' "$r/etc/group" || { echo 'messagebus:x:104:' >>"$r/etc/group"; echo 'messagebus:!::' >>"$r/etc/gshadow"; }
    fi
    # update-alternatives links of the essential set (awk is used by the payload scripts).
    mkdir -p "$r/etc/alternatives"
    for u in awk:mawk nawk:mawk which:which.debianutils pager:more; do
        if [ -e "$r/usr/bin/${u#*:}" ]; then
            ln -sfn "/usr/bin/${u#*:}" "$r/etc/alternatives/${u%%:*}"
            ln -sfn "/etc/alternatives/${u%%:*}" "$r/usr/bin/${u%%:*}"
        fi
    done
    # base-files, libc-bin, libpam-runtime, tzdata: files their postinst scripts copy into /etc.
    cp "$r/usr/share/base-files/profile" "$r/etc/profile"
    cp "$r/usr/share/base-files/dot.bashrc" "$r/root/.bashrc"
    cp "$r/usr/share/base-files/dot.profile" "$r/root/.profile"
    cp "$r/usr/share/base-files/motd" "$r/etc/motd"
    [ -f "$r/usr/share/libc-bin/nsswitch.conf" ] && cp "$r/usr/share/libc-bin/nsswitch.conf" "$r/etc/"
    [ -f "$r/etc/nsswitch.conf" ] || printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' >"$r/etc/nsswitch.conf"
    for u in common-auth common-account common-password common-session common-session-noninteractive; do
        [ -f "$r/usr/share/pam/$u" ] && cp "$r/usr/share/pam/$u" "$r/etc/pam.d/$u"
    done
    printf '/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n/bin/dash\n/usr/bin/dash\n' >"$r/etc/shells"
    ln -sfn /usr/share/zoneinfo/Etc/UTC "$r/etc/localtime"
    echo Etc/UTC >"$r/etc/timezone"
    ln -sfn ../proc/self/mounts "$r/etc/mtab"
    mkdir -p "$r"/{media,mnt,opt,srv,var/mail,var/opt,var/lib/dbus} \
        "$r"/usr/local/{bin,etc,games,include,lib,man,sbin,share,src}
    # The shared library cache: the guest's own ldconfig (a static binary) run by qemu-user
    # when the host has it; otherwise ldconfig.service writes it at the first boot.
    if command -v "qemu-$QARCH-static" >/dev/null; then
        "qemu-$QARCH-static" "$r/sbin/ldconfig" -r "$r" || echo "build-pi-guest: ldconfig failed; the guest writes its cache at boot"
    fi
    # Services the packages enable in their postinst (deb-systemd-helper).
    systemctl --root="$r" enable $ENABLE >/dev/null 2>&1
}

main() {
BOARD=${1:?usage: build-pi-guest.sh pi3|pi2}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"
CACHE=${VM_CACHE:-$HERE/cache}/pi
OUT=$CACHE/guest-$BOARD
COMMON=systemd-sysv,libpam-systemd,dbus,wpasupplicant,kmod,udev,iproute2,procps,ca-certificates,gzip,dosfstools
case $BOARD in
    pi3) ARCH=arm64; KFLAV=arm64; SUITE=bookworm; QARCH=aarch64; QMACHINE=raspi3b
         DTB=broadcom/bcm2837-rpi-3-b.dtb; HOST=takeover-pi3; BOOTDIR=/boot/firmware
         PKGS=$COMMON,network-manager,curl; ENABLE="NetworkManager.service wpa_supplicant.service" ;;
    pi2) ARCH=armhf; KFLAV=armmp; SUITE=bullseye; QARCH=arm; QMACHINE=raspi2b
         DTB=bcm2836-rpi-2-b.dtb; HOST=takeover-pi2; BOOTDIR=/boot
         PKGS=$COMMON,dhcpcd5,wget; ENABLE="dhcpcd.service wpa_supplicant.service" ;;
    *) echo "build-pi-guest: unknown board '$BOARD' (pi3|pi2)" >&2; exit 2 ;;
esac
# The kernel ABI the mirror has now (a Debian point release replaces 6.1.0-N with N+1 and the
# old package leaves the mirror); PI_KERNEL_ABI pins one.
KPKG_VER=${PI_KERNEL_ABI:-$(apt-cache depends "linux-image-$KFLAV:$ARCH" 2>/dev/null |
    sed -n "s/.*Depends: linux-image-\(6\.1\.0-[0-9]*\)-$KFLAV.*/\1/p" | head -n1 || true)}
KPKG_VER=${KPKG_VER:-6.1.0-57}
KVER=$KPKG_VER-$KFLAV
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SD_MB=1024 BOOT_MB=64 PAYLOAD_MB=256

[ "$(id -u)" = 0 ] || { echo "build-pi-guest: must run as root (mmdebstrap, file ownership)" >&2; exit 1; }

SCRIPT_KEY=$(cat "$0" "$HERE/pi/init" "$HERE/guest-lib.sh" | sha256sum | cut -c1-16)
TREE_KEY=$(printf '%s %s %s %s %s %s' "$SUITE" "$MIRROR" "$ARCH" "$PKGS" "$BOARD" "$(declare -f configure_tree)" |
    sha256sum | cut -c1-16)
if [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$SCRIPT_KEY-$TREE_KEY" ] && [ -f "$OUT/sd.img" ] \
    && [ -f "$OUT/kernel" ] && [ -f "$OUT/initrd.img" ] && [ -f "$OUT/info.json" ]; then
    echo "build-pi-guest: $BOARD guest is cached ($OUT)"
    exit 0
fi

for t in mmdebstrap qemu-system-$QARCH mkfs.vfat mcopy mkfs.ext4 sfdisk depmod cpio apt-get \
    dpkg-deb systemctl systemd-sysusers; do
    command -v "$t" >/dev/null || { echo "build-pi-guest: $t not found (make pi-deps)" >&2; exit 1; }
done

T0=$(date +%s)
WORK=$CACHE/build-$BOARD
R=$WORK/rootfs
mkdir -p "$CACHE/debs-$ARCH" "$CACHE/kdebs" "$OUT"
cleanup() { unmount_below "$R"; }
trap cleanup EXIT
cleanup
rm -rf "$WORK"
mkdir -p "$R" "$WORK/k"

# ------------------------------------------------------------------------------ kernel
# Debian's kernel package for the board: image, device tree and modules.
(cd "$CACHE/kdebs" && { ls linux-image-"${KVER}"_*_"$ARCH".deb >/dev/null 2>&1 ||
    apt-get download "linux-image-$KVER:$ARCH" "busybox-static:$ARCH" >/dev/null; })
dpkg-deb -x "$(ls "$CACHE"/kdebs/linux-image-"$KVER"_*_"$ARCH".deb | tail -n1)" "$WORK/k"
KM=$WORK/k/lib/modules/$KVER
depmod -b "$WORK/k" "$KVER"
# Some arm64 vmlinuz files are a gzipped Image, which QEMU's -kernel does not unpack.
if [ "$(head -c2 "$WORK/k/boot/vmlinuz-$KVER" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
    gunzip -c "$WORK/k/boot/vmlinuz-$KVER" >"$OUT/kernel.tmp"
else
    cp "$WORK/k/boot/vmlinuz-$KVER" "$OUT/kernel.tmp"
fi
cp "$WORK/k/usr/lib/linux-image-$KVER/$DTB" "$OUT/board.dtb"

# modules_closure NAME...: the .ko paths (relative to $KM) of NAME and everything it depends on.
modules_closure() {
    python3 - "$KM/modules.dep" "$@" <<'PY'
import os, sys
dep = {}
for line in open(sys.argv[1]):
    path, _, deps = line.partition(":")
    dep[path] = deps.split()
byname = {os.path.basename(p).split(".ko")[0].replace("-", "_"): p for p in dep}
todo = [byname[n.replace("-", "_")] for n in sys.argv[2:]]
seen = set()
while todo:
    p = todo.pop()
    if p not in seen:
        seen.add(p)
        todo += dep[p]
print("\n".join(sorted(seen)))
PY
}
copy_modules() { # DEST_ROOT NAME...
    local root=$1 dest=$1/lib/modules/$KVER p
    shift
    mkdir -p "$dest"
    modules_closure "$@" | while read -r p; do
        mkdir -p "$dest/$(dirname "$p")"
        cp "$KM/$p" "$dest/$p"
    done
    cp "$KM/modules.order" "$KM/modules.builtin" "$KM/modules.builtin.modinfo" "$dest/"
    depmod -b "$root" "$KVER"
}

# SD card host, ext4 and softdog for the initramfs; the root gets the file systems takeover
# and a Pi OS use (vfat for the boot partition, loop) and softdog. Never bcm2835_wdt (see the
# header). No USB host (dwc2) and no USB network: the guests have no network, and udev loading
# dwc2 and probing its root hub cost 10-15 s of every boot.
INITRD_MODS="sdhci-iproc bcm2835 crc32c_generic ext4 softdog"
ROOT_MODS="$INITRD_MODS libcrc32c vfat nls_cp437 nls_ascii nls_iso8859_1 nls_utf8 loop"

# ------------------------------------------------------------------------------ initramfs
IR=$WORK/initramfs
mkdir -p "$IR"/{bin,dev,proc,sys,newroot}
dpkg-deb -x "$(ls "$CACHE"/kdebs/busybox-static_*_"$ARCH".deb | tail -n1)" "$WORK/bb"
cp "$WORK/bb/bin/busybox" "$IR/bin/busybox"
for a in sh mount umount sleep modprobe switch_root mkdir cat echo ls poweroff; do ln -s busybox "$IR/bin/$a"; done
copy_modules "$IR" $INITRD_MODS
install -m 0755 "$HERE/pi/init" "$IR/init"
(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT/initrd.img.tmp"
T1=$(date +%s)

# ------------------------------------------------------------------------------ root file system
TAR=$CACHE/rootfs-$BOARD-$TREE_KEY.tar
if [ -f "$TAR" ]; then
    echo "build-pi-guest: unpacking cached tree $TAR"
    tar -C "$R" --numeric-owner --xattrs -xf "$TAR"
else
    echo "build-pi-guest: mmdebstrap --variant=extract $SUITE $ARCH from $MIRROR"
    # Merged /usr (as debootstrap and Raspberry Pi OS lay it out): the directory links exist
    # before anything is unpacked.
    mmdebstrap --mode=root --variant=extract --arch="$ARCH" --quiet \
        --setup-hook='for d in bin sbin lib; do ln -s usr/$d "$1/$d"; mkdir -p "$1/usr/$d"; done' \
        --include='?essential' --include='?priority(required)' --include="$PKGS" \
        "$SUITE" "$R" "$MIRROR"
    configure_tree "$R"
    rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/cache/apt/*.bin "$R"/var/lib/apt/lists/*
    rm -f "$CACHE"/rootfs-"$BOARD"-*.tar
    tar -C "$R" --numeric-owner --xattrs -cf "$TAR.tmp" .
    mv "$TAR.tmp" "$TAR"
fi
T2=$(date +%s)

copy_modules "$R" $ROOT_MODS
echo softdog >"$R/etc/modules-load.d/watchdog.conf"
echo "blacklist bcm2835_wdt" >"$R/etc/modprobe.d/no-bcm2835-wdt.conf"

# Raspberry Pi OS shapes: os-release, hostname, fstab, boot partition contents.
if [ "$BOARD" = pi3 ]; then
    cat >"$R/usr/lib/os-release" <<'OS'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
OS
else
    cat >"$R/usr/lib/os-release" <<'OS'
PRETTY_NAME="Raspbian GNU/Linux 11 (bullseye)"
NAME="Raspbian GNU/Linux"
VERSION_ID="11"
VERSION="11 (bullseye)"
VERSION_CODENAME=bullseye
ID=raspbian
ID_LIKE=debian
HOME_URL="http://www.raspbian.org/"
SUPPORT_URL="http://www.raspbian.org/RaspbianForums"
BUG_REPORT_URL="http://www.raspbian.org/RaspbianBugs"
OS
fi
ln -sf ../usr/lib/os-release "$R/etc/os-release"
echo "$HOST" >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$HOST" >"$R/etc/hosts"
cat >"$R/etc/fstab" <<FSTAB
proc            /proc           proc    defaults          0       0
/dev/mmcblk0p1  $BOOTDIR  vfat    defaults,x-systemd.device-timeout=600  0       2
/dev/mmcblk0p2  /               ext4    defaults,noatime  0       1
FSTAB
mkdir -p "$R$BOOTDIR" "$R/payload" "$R/usr/local/sbin"
printf '%s\n' "$(printf '%s' "$HOST" | sha256sum | cut -c1-32)" >"$R/etc/machine-id"

# Application data and a backup definition, as on the x86 guests.
D=$R/srv/app/data
mkdir -p "$D/sub dir/deeper" "$R/srv/app/config"
echo "hello from the old Pi" >"$D/readme.txt"
echo "a file whose name has spaces" >"$D/file with spaces.txt"
printf 'id,value\n1,one\n' >"$D/sub dir/table.csv"
echo "nested" >"$D/sub dir/deeper/nested.txt"
head -c 65536 /dev/urandom >"$D/blob.bin"
echo "mode=production" >"$R/srv/app/config/app.conf"
cat >"$R/srv/app/backup.yml" <<'YML'
- volume: app-data
  items:
    - source: /srv/app/data
- volume: app-config
  items:
    - source: /srv/app/config/app.conf
      target: app.conf
YML

# Networks (test values only).
mkdir -p "$R/etc/wpa_supplicant"
if [ "$BOARD" = pi3 ]; then
    NMC=$R/etc/NetworkManager/system-connections
    mkdir -p "$NMC"
    cat >"$NMC/preconfigured.nmconnection" <<'NM'
[connection]
id=preconfigured
uuid=3a5b9c2e-6f1d-4c8a-9b7e-2d4f6a8c0e11
type=wifi

[wifi]
mode=infrastructure
ssid=PiHome

[wifi-security]
key-mgmt=wpa-psk
psk=pi-home-secret-3

[ipv4]
method=auto

[ipv6]
method=auto
NM
    cat >"$NMC/Workshop.nmconnection" <<'NM'
[connection]
id=Workshop
uuid=7c1e0d4a-2b3f-4e5d-8a9b-0c1d2e3f4a5b
type=wifi

[wifi]
ssid=Workshop 5G
hidden=true

[wifi-security]
key-mgmt=wpa-psk
psk=workshop-pass-77

[ipv4]
method=auto
NM
    cat >"$NMC/Wired connection 1.nmconnection" <<'NM'
[connection]
id=Wired connection 1
uuid=0b4c2d6e-8f0a-4b1c-9d2e-3f4a5b6c7d8e
type=ethernet
interface-name=eth0

[ethernet]

[ipv4]
address1=192.168.50.17/24,192.168.50.1
dns=192.168.50.1;
method=manual

[ipv6]
method=auto
NM
    chmod 600 "$NMC"/*
else
    cat >"$R/etc/wpa_supplicant/wpa_supplicant.conf" <<'WPA'
ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev
update_config=1
country=GB

network={
	ssid="PiHome"
	psk="pi-home-secret-3"
	key_mgmt=WPA-PSK
}

network={
	ssid="Shed Net"
	psk="shed-secret-2020"
	key_mgmt=WPA-PSK
	scan_ssid=1
}
WPA
    chmod 600 "$R/etc/wpa_supplicant/wpa_supplicant.conf"
    cat >>"$R/etc/dhcpcd.conf" <<'DHCPCD'

# Static address, the way Raspberry Pi OS documents it.
interface eth0
static ip_address=192.168.1.42/24
static routers=192.168.1.1
static domain_name_servers=192.168.1.1 8.8.8.8
DHCPCD
fi

# The payload hook: the same contract as the x86 guests (tests/vm/README.md), on mmcblk0p3.
install -m 0755 "$HERE/pi/payload-hook" "$R/usr/local/sbin/payload-hook"
cat >"$R/etc/systemd/system/takeover-payload.service" <<'UNIT'
[Unit]
Description=Run the test payload from the partition labelled PAYLOAD
After=local-fs.target systemd-modules-load.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/payload-hook
StandardInput=null
StandardOutput=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/takeover-payload.service \
    "$R/etc/systemd/system/multi-user.target.wants/takeover-payload.service"
# A getty on the serial console would vhangup() the console the payload writes to; timers add
# noise and CPU load under TCG.
for u in serial-getty@ttyAMA0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer systemd-timesyncd.service \
    modprobe@drm.service modprobe@efi_pstore.service modprobe@dm_mod.service \
    modprobe@configfs.service modprobe@fuse.service; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
done
# Boot time under TCG: every process systemd starts costs seconds. Off: the generators this
# guest has nothing for (fstab's stays), file system checks (the card is fresh from mkfs for
# each run; fsckd alone took 110 s of CPU, and on the Pi 2 the ext4 root read back directory
# blocks that failed their checksums right after the fsck of the boot partition): fsck.mode=skip
# on the kernel command line (fstab keeps Raspberry Pi OS's pass numbers, so boot.mount still
# wants systemd-fsck@), sysctl, pstore, kernel debug mounts.
for u in systemd-fsck-root.service systemd-fsckd.service systemd-fsckd.socket systemd-sysctl.service \
    systemd-pstore.service sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount \
    systemd-update-utmp.service systemd-update-utmp-runlevel.service; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
done
mkdir -p "$R/etc/systemd/system-generators"
for u in "$R"/usr/lib/systemd/system-generators/*; do
    case ${u##*/} in systemd-fstab-generator) ;; *) ln -sf /dev/null "$R/etc/systemd/system-generators/${u##*/}" ;; esac
done
# An emulated Pi under TCG on a loaded host can take minutes to boot: no 90 s unit timeouts
# (the device timeout of the boot partition is set in fstab).
mkdir -p "$R/etc/systemd/system.conf.d"
printf '[Manager]\nDefaultTimeoutStartSec=600\n' >"$R/etc/systemd/system.conf.d/testbed.conf"

# The units with ConditionNeedsUpdate= (hwdb, journal catalog, ldconfig, sysusers) have
# nothing to do: /etc and /var are as new as /usr.
for d in etc var; do
    echo "TIMESTAMP_NSEC=$(stat -c %.9Y "$R/usr" | tr -d .)" >"$R/$d/.updated"
done

# ------------------------------------------------------------------------------ the SD card
BOOT=$WORK/boot
mkdir -p "$BOOT"
cp "$OUT/board.dtb" "$BOOT/$(basename "$DTB")"
if [ "$ARCH" = arm64 ]; then cp "$OUT/kernel.tmp" "$BOOT/kernel8.img"; else cp "$OUT/kernel.tmp" "$BOOT/kernel7.img"; fi
cp "$OUT/initrd.img.tmp" "$BOOT/initramfs"
printf 'bootloader stand-in (QEMU boots with -kernel)\n' >"$BOOT/bootcode.bin"
printf 'firmware stand-in\n' >"$BOOT/start.elf"
cat >"$BOOT/config.txt" <<CFG
# For more options and information see http://rptl.io/configtxt
dtparam=audio=on
camera_auto_detect=1
display_auto_detect=1
$( [ "$ARCH" = arm64 ] && echo "arm_64bit=1" )
initramfs initramfs followkernel
[all]
enable_uart=1
CFG
echo "console=serial0,115200 console=tty1 root=/dev/mmcblk0p2 rootfstype=ext4 fsck.repair=yes rootwait" >"$BOOT/cmdline.txt"
mkfs.vfat -F 32 -n bootfs -i 5eed0001 -C "$WORK/p1.img" $((BOOT_MB * 1024)) >/dev/null 2>&1
mcopy -s -p -i "$WORK/p1.img" "$BOOT"/* ::/
ROOT_MB=$((SD_MB - 4 - BOOT_MB - PAYLOAD_MB))
truncate -s "${ROOT_MB}M" "$WORK/p2.img"
mkfs.ext4 -q -F -L rootfs -E root_owner=0:0 -d "$R" "$WORK/p2.img"
rm -f "$OUT/sd.img.tmp"
truncate -s "${SD_MB}M" "$OUT/sd.img.tmp"
S=2048
sfdisk -q --no-reread --no-tell-kernel "$OUT/sd.img.tmp" >/dev/null <<SF
label: dos
label-id: 0x5eed0$( [ "$BOARD" = pi3 ] && echo 003 || echo 002 )
unit: sectors
start=$((4 * S)), size=$((BOOT_MB * S)), type=c
start=$(((4 + BOOT_MB) * S)), size=$((ROOT_MB * S)), type=83
start=$(((4 + BOOT_MB + ROOT_MB) * S)), size=$((PAYLOAD_MB * S)), type=83
SF
dd if="$WORK/p1.img" of="$OUT/sd.img.tmp" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$WORK/p2.img" of="$OUT/sd.img.tmp" bs=1M seek=$((4 + BOOT_MB)) conv=notrunc,sparse status=none
mv "$OUT/sd.img.tmp" "$OUT/sd.img"
mv "$OUT/kernel.tmp" "$OUT/kernel"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
echo "$QMACHINE" >"$OUT/machine"
echo "console=ttyAMA0,115200 root=/dev/mmcblk0p2 rootwait panic=-1 net.ifnames=0 fsck.mode=skip" >"$OUT/cmdline"
T3=$(date +%s)
cat >"$OUT/info.json" <<J
{"board": "$BOARD", "machine": "$QMACHINE", "qemu": "qemu-system-$QARCH", "arch": "$ARCH",
 "suite": "$SUITE", "kernel": "$KVER", "dtb": "$DTB", "hostname": "$HOST", "boot_dir": "$BOOTDIR",
 "sd_mib": $SD_MB, "payload_offset": $(((4 + BOOT_MB + ROOT_MB) * 1024 * 1024)),
 "payload_mib": $PAYLOAD_MB, "root_mib": $ROOT_MB,
 "seconds": {"kernel_initramfs": $((T1 - T0)), "rootfs": $((T2 - T1)), "disk": $((T3 - T2)),
             "total": $((T3 - T0))}}
J
echo "$SCRIPT_KEY-$TREE_KEY" >"$OUT/stamp"
rm -rf "$WORK"
echo "build-pi-guest: $BOARD guest built in $((T3 - T0)) s ($OUT)"
}

main "$@"
