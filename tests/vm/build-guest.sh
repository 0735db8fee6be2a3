#!/bin/bash
# Build (or reuse from the cache) a Debian 12 guest for the VM test bed.
#
#   tests/vm/build-guest.sh systemd|sysvinit
#
# Result, under tests/vm/cache/guest-<flavour>/:
#   base.qcow2   MBR disk, one ext4 root partition /dev/vda1 (label "guestroot")
#   vmlinuz      kernel, initrd.img  initramfs (booted with -kernel/-initrd)
#   cmdline      kernel command line
#   info.json    what was built, with the build time in seconds
# Each scenario boots a fresh qcow2 overlay over base.qcow2 (tests/vm/run.py).
#
# Two cache levels: the debootstrapped tree (keyed by suite, mirror and package list) is kept as
# rootfs-<flavour>-<key>.tar; the configured disk is rebuilt when this script changes. Downloaded
# .debs live in tests/vm/cache/debs (debootstrap --cache-dir). No loop device is used.
set -euo pipefail

# The whole script is one function, read by bash before it runs: editing this file while a build
# is running cannot change what that build does.
main() {

FLAVOUR=${1:?usage: build-guest.sh systemd|sysvinit}
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VM_CACHE:-$HERE/cache}
OUT=$CACHE/guest-$FLAVOUR
SUITE=bookworm
DISK_MB=${GUEST_DISK_MB:-2048}
SWAP_MB=64

[ "$(id -u)" = 0 ] || { echo "build-guest: must run as root (debootstrap, chroot)" >&2; exit 1; }

# The mirror apt uses on this machine (deb822 or one-line format), else the Debian CDN.
mirror() {
    local m
    m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
            /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -v -e security -e '\[.*\]' | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+//' |
        awk '{print $1}' | grep -E '^https?://' | head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=${DEBIAN_MIRROR:-$(mirror)}

# takeover speaks HTTP(S) through curl or wget: the systemd guest has curl, the sysvinit one GNU wget.
COMMON=linux-image-cloud-amd64,initramfs-tools,kmod,udev,iproute2,procps,wpasupplicant,ca-certificates,gzip
case $FLAVOUR in
    systemd)  PKGS=$COMMON,systemd-sysv,libpam-systemd,dbus,network-manager,curl ;;
    sysvinit) PKGS=$COMMON,sysvinit-core,sysv-rc,initscripts,insserv,ifupdown,isc-dhcp-client,wget ;;
    *) echo "build-guest: unknown flavour '$FLAVOUR' (systemd|sysvinit)" >&2; exit 2 ;;
esac

SCRIPT_KEY=$(cat "$0" | sha256sum | cut -c1-16)
TREE_KEY=$(printf '%s %s %s %s' "$SUITE" "$MIRROR" "$FLAVOUR" "$PKGS" | sha256sum | cut -c1-16)

if [ -f "$OUT/info.json" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$SCRIPT_KEY-$TREE_KEY" ] \
    && [ -f "$OUT/base.qcow2" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ]; then
    echo "build-guest: $FLAVOUR guest is cached ($OUT)"
    exit 0
fi

T0=$(date +%s)
mkdir -p "$CACHE/debs" "$OUT"
WORK=$CACHE/build-$FLAVOUR
R=$WORK/rootfs

cleanup() {
    # Only mounts debootstrap made inside our own tree; deepest first.
    if [ -d "$R" ]; then
        { findmnt -rn -o TARGET | grep -F "$R/" || true; } | sort -r |
            while read -r m; do umount -l "$m" || true; done
    fi
}
trap cleanup EXIT
cleanup
rm -rf "$WORK"
mkdir -p "$R"

TAR=$CACHE/rootfs-$FLAVOUR-$TREE_KEY.tar
if [ -f "$TAR" ]; then
    echo "build-guest: unpacking cached tree $TAR"
    tar -C "$R" --numeric-owner --xattrs -xf "$TAR"
else
    echo "build-guest: debootstrap $SUITE ($FLAVOUR) from $MIRROR"
    debootstrap --variant=minbase --include="$PKGS" --cache-dir="$CACHE/debs" \
        "$SUITE" "$R" "$MIRROR"
    cleanup
    # Package caches are not needed in the guest (the .debs stay in $CACHE/debs).
    rm -f "$R"/var/cache/apt/archives/*.deb "$R"/var/cache/apt/*.bin
    rm -rf "$R"/var/lib/apt/lists/*
    rm -f "$CACHE"/rootfs-"$FLAVOUR"-*.tar
    tar -C "$R" --numeric-owner --xattrs -cf "$TAR.tmp" .
    mv "$TAR.tmp" "$TAR"
fi
T1=$(date +%s)

# ---------------------------------------------------------------- configuration (file level)
HOST=takeover-guest
[ "$FLAVOUR" = sysvinit ] && HOST=takeover-guest-sysv
echo "$HOST" >"$R/etc/hostname"
cat >"$R/etc/hosts" <<HOSTS
127.0.0.1	localhost
127.0.1.1	$HOST
HOSTS
cat >"$R/etc/fstab" <<'FSTAB'
# <file system> <mount point> <type> <options> <dump> <pass>
/dev/vda1  /  ext4  errors=remount-ro  0  1
/swapfile  none  swap  sw  0  0
FSTAB
# A swap file without holes: mke2fs -d turns all-zero blocks into holes, which swapon refuses,
# so fill it with 0xff before mkswap writes its header.
head -c $((SWAP_MB * 1024 * 1024)) /dev/zero | tr '\0' '\377' >"$R/swapfile"
chmod 600 "$R/swapfile"
mkswap -L guestswap "$R/swapfile" >/dev/null
# A fixed machine id: no "first boot" logic on every fresh overlay.
printf '%s\n' "$(printf '%s' "$HOST" | sha256sum | cut -c1-32)" >"$R/etc/machine-id"
chroot "$R" passwd -d root >/dev/null

# Application data to back up (names with spaces, nesting, a symlink, binary content).
D=$R/srv/app/data
mkdir -p "$D/sub dir/deeper" "$D/empty dir" "$R/srv/app/config"
echo "hello from the old device" >"$D/readme.txt"
echo "a file whose name has spaces" >"$D/file with spaces.txt"
printf 'id,value\n1,one\n2,two\n' >"$D/sub dir/table.csv"
echo "nested" >"$D/sub dir/deeper/nested.txt"
head -c 65536 /dev/urandom >"$D/blob.bin"
ln -s readme.txt "$D/link-to-readme"
echo "mode=production" >"$R/srv/app/config/app.conf"
cat >"$R/srv/app/backup.yml" <<'YML'
# A backup definition for takeover --backup-cfg (the volume names match the app's volumes).
- volume: app-data
  items:
    - source: /srv/app/data
- volume: app-config
  items:
    - source: /srv/app/config/app.conf
      target: app.conf
YML

# Wi-Fi networks known to the old OS (test values only).
mkdir -p "$R/etc/wpa_supplicant"
if [ "$FLAVOUR" = systemd ]; then
    cat >"$R/etc/wpa_supplicant/wpa_supplicant.conf" <<'WPA'
ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev
update_config=1
country=DE

network={
	ssid="LegacyNet"
	psk="legacy-secret-42"
	key_mgmt=WPA-PSK
}
WPA
else
    cat >"$R/etc/wpa_supplicant/wpa_supplicant.conf" <<'WPA'
ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev
update_config=1
country=DE

network={
	ssid="HomeNet"
	psk="correct horse battery"
	key_mgmt=WPA-PSK
}

network={
	ssid="Garage AP"
	psk="garage-secret-77"
	key_mgmt=WPA-PSK
	priority=5
}

network={
	ssid="OpenCafe"
	key_mgmt=NONE
}
WPA
fi
chmod 600 "$R/etc/wpa_supplicant/wpa_supplicant.conf"

# The payload hook: mount the disk labelled PAYLOAD, run its run.sh on the console, power off
# afterwards unless run.sh asked otherwise (exit status 99, or /run/payload-keep-running exists).
mkdir -p "$R/usr/local/sbin" "$R/payload"
cat >"$R/usr/local/sbin/payload-hook" <<'HOOK'
#!/bin/bash
exec </dev/null >/dev/console 2>&1
echo "PAYLOAD-HOOK: start (uptime $(cut -d' ' -f1 /proc/uptime) s)"
dev=
for _ in $(seq 1 50); do
    dev=$(blkid -L PAYLOAD 2>/dev/null || true)
    [ -n "$dev" ] && break
    sleep 0.2
done
if [ -z "$dev" ]; then
    echo "PAYLOAD-HOOK: no disk labelled PAYLOAD; nothing to do (guest stays up)"
    exit 0
fi
mount "$dev" /payload || { echo "PAYLOAD-HOOK: cannot mount $dev"; exit 0; }
echo "PAYLOAD-HOOK: $dev mounted on /payload, running run.sh"
rc=0
( cd /payload && PAYLOAD=/payload PAYLOAD_DEV=$dev bash ./run.sh ) || rc=$?
echo "PAYLOAD-EXIT: $rc"
if [ "$rc" = 99 ] || [ -e /run/payload-keep-running ]; then
    echo "PAYLOAD-HOOK: run.sh asked to keep the guest running"
    exit 0
fi
sync
umount /payload || true
echo "PAYLOAD-HOOK: powering off"
if [ -d /run/systemd/system ]; then
    # --force: no unit stop jobs (the run is over); processes are still killed and every
    # filesystem unmounted or remounted read-only before the power goes.
    systemctl --force poweroff
else
    poweroff
fi
HOOK
chmod 755 "$R/usr/local/sbin/payload-hook"

if [ "$FLAVOUR" = systemd ]; then
    cat >"$R/etc/systemd/system/takeover-payload.service" <<'UNIT'
[Unit]
Description=Run the test payload from the disk labelled PAYLOAD
Wants=network-online.target
After=network-online.target local-fs.target swap.target

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
    # A getty on ttyS0 would vhangup() the console the payload writes to; timers add noise.
    for u in serial-getty@ttyS0.service getty@tty1.service apt-daily.timer \
        apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
        dpkg-db-backup.timer; do
        ln -sf /dev/null "$R/etc/systemd/system/$u"
    done
    mkdir -p "$R/etc/NetworkManager/system-connections"
    nm() { # id ssid psk|-  [hidden]
        local f="$R/etc/NetworkManager/system-connections/$1.nmconnection"
        {
            printf '[connection]\nid=%s\nuuid=%s\ntype=wifi\nautoconnect=true\n\n' "$1" \
                "$(printf '%s' "$1" | md5sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')"
            printf '[wifi]\nmode=infrastructure\nssid=%s\n' "$2"
            [ "${4:-}" = hidden ] && printf 'hidden=true\n'
            if [ "$3" != - ]; then printf '\n[wifi-security]\nkey-mgmt=wpa-psk\npsk=%s\n' "$3"; fi
            printf '\n[ipv4]\nmethod=auto\n\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n'
        } >"$f"
        chmod 600 "$f"
    }
    # The wired link the guest actually uses (DHCP from QEMU's user-mode network). IPv6 off: the
    # restricted user network has no router, and waiting for one delays network-online.target.
    cat >"$R/etc/NetworkManager/system-connections/Wired eth0.nmconnection" <<'NMETH'
[connection]
id=Wired eth0
uuid=5f0c1a52-6f4e-4a51-9d3c-2b8e7b1d0e01
type=ethernet
interface-name=eth0
autoconnect=true

[ipv4]
method=auto

[ipv6]
method=disabled
NMETH
    chmod 600 "$R/etc/NetworkManager/system-connections/Wired eth0.nmconnection"
    nm home-wifi HomeNet "correct horse battery"
    nm "Office WiFi" "Office 5G" "office-pass-1234" hidden
    nm cafe CafeFree -
else
    cat >"$R/etc/network/interfaces" <<'IF'
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
IF
    # Run the hook once the runlevel's rc scripts are done (appended after the l2 "wait" line).
    grep -q payload-hook "$R/etc/inittab" ||
        echo 'tp:2345:once:/usr/local/sbin/payload-hook' >>"$R/etc/inittab"
fi

# ---------------------------------------------------------------- kernel, initrd, disk
K=$(ls "$R"/boot/vmlinuz-* | sort -V | tail -n1)
I=$R/boot/initrd.img-${K##*/vmlinuz-}
cp "$K" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
cp "$I" "$OUT/initrd.img.tmp" && mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
echo "root=/dev/vda1 rw console=ttyS0,115200 panic=-1 net.ifnames=0 systemd.show_status=1" >"$OUT/cmdline"

PART=$WORK/root.ext4
RAW=$WORK/disk.raw
PART_MB=$((DISK_MB - 1))
mkfs.ext4 -q -F -L guestroot -d "$R" "$PART" "${PART_MB}M"
truncate -s "${DISK_MB}M" "$RAW"
printf 'label: dos\nunit: sectors\nstart=2048, type=83, bootable\n' | sfdisk -q "$RAW"
dd if="$PART" of="$RAW" bs=1M seek=1 conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 "$RAW" "$OUT/base.qcow2.tmp"
mv "$OUT/base.qcow2.tmp" "$OUT/base.qcow2"
T2=$(date +%s)

cat >"$OUT/info.json" <<JSON
{"flavour": "$FLAVOUR", "suite": "$SUITE", "mirror": "$MIRROR", "hostname": "$HOST",
 "kernel": "${K##*/}", "disk_mb": $DISK_MB, "swap_mb": $SWAP_MB,
 "tree_seconds": $((T1 - T0)), "configure_and_disk_seconds": $((T2 - T1)), "build_seconds": $((T2 - T0))}
JSON
echo "$SCRIPT_KEY-$TREE_KEY" >"$OUT/stamp"
rm -rf "$WORK"
echo "build-guest: $FLAVOUR guest built in $((T2 - T0)) s ($OUT)"
}

main "$@"
