#!/bin/bash
# Build a structurally faithful fake balenaOS image, without loop devices or root.
#
#   tests/tools/mkimage.sh [options] OUT_PREFIX
#     --variant mbr|gpt|flasher   partition table / image kind            (default mbr)
#     --device-type SLUG          slug in device-type.json and config.json  (default genericx86-64-ext)
#     --machine NAME              yocto machine name                         (default: from the slug)
#     --version VER               balenaOS version (os-release etc.)         (default 5.1.20+rev1)
#     --size MIB                  image size, 64..256 (flasher: inner image) (default 128)
#     --no-gz                     do not write OUT_PREFIX.img.gz
#
# Writes OUT_PREFIX.img (raw), OUT_PREFIX.img.gz (gzip -n) and OUT_PREFIX.manifest.json:
#   {variant, device_type, machine, version, table: "dos"|"gpt", size_bytes, sha256, gz_sha256,
#    partitions: [{number, name, fs, start, size, sha256}], inner: <manifest of the inner image>|null}
# start/size are in bytes; `name` is the filesystem label (MBR) and also the GPT partition name.
#
# Layout (like meta-balena's image class): 4 MiB alignment; p1 boot (FAT16, boot flag; 40 MiB,
# 16 MiB below 128 MiB images), p2 rootA and p3 rootB (ext4), extended p4 holding p5 state and
# p6 data (ext4), a 4 MiB gap before each logical partition. GPT: the same five partitions as
# p1..p5 with partition names. Flasher: labels flash-boot, flash-rootA, ... and rootA carries
# /opt/balena-image-<machine>.balenaos-img, the raw inner (MBR) image.
# Raspberry Pi device types (raspberry*, e.g. raspberrypi3-64, raspberry-pi2): resin-boot holds
# config.txt, cmdline.txt, bootcode.bin, start.elf, fixup.dat, kernel8.img (64-bit) or
# kernel7.img, device trees and overlays/ instead of EFI/BOOT; device-type.json's arch is
# aarch64 / armv7hf.
set -euo pipefail

VARIANT=mbr
DT=genericx86-64-ext
MACHINE=
VERSION=5.1.20+rev1
SIZE=128
GZ=1
while [ $# -gt 0 ]; do
    case $1 in
        --variant) VARIANT=$2; shift 2 ;;
        --device-type) DT=$2; shift 2 ;;
        --machine) MACHINE=$2; shift 2 ;;
        --version) VERSION=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --no-gz) GZ=0; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        -*) echo "mkimage: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
OUT=${1:?usage: mkimage.sh [options] OUT_PREFIX}
case $VARIANT in mbr|gpt|flasher) ;; *) echo "mkimage: --variant mbr|gpt|flasher" >&2; exit 2 ;; esac
if ! [[ $SIZE =~ ^[0-9]+$ ]] || [ "$SIZE" -lt 64 ] || [ "$SIZE" -gt 256 ]; then
    echo "mkimage: --size must be 64..256 (MiB)" >&2; exit 2
fi
if [ -z "$MACHINE" ]; then
    case $DT in
        genericx86-64-ext|intel-nuc) MACHINE=genericx86-64 ;;
        raspberrypi4-64) MACHINE=raspberrypi4-64 ;;
        raspberrypi3) MACHINE=raspberrypi3 ;;
        raspberry-pi2) MACHINE=raspberrypi2 ;;
        raspberry-pi) MACHINE=raspberrypi ;;
        *) MACHINE=$DT ;;
    esac
fi
# Raspberry Pi types: resin-boot holds the Pi firmware's files (config.txt, cmdline.txt, the
# kernel and device trees) instead of an EFI loader, like balenaOS's Raspberry Pi images.
PI=0 ARCH=amd64
case $DT in
    raspberry*) PI=1; ARCH=armv7hf ;;
esac
case $DT in
    raspberry-pi) ARCH=rpi ;;
    raspberry*-64) ARCH=aarch64 ;;
esac
for t in mkfs.vfat mcopy mmd mkfs.ext4 sfdisk python3; do
    command -v $t >/dev/null || { echo "mkimage: $t not found (tests/vm/deps.sh installs it)" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mkimage.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
MiB=$((1024 * 1024))
SHORTV=${VERSION%%+*}
mkdir -p "$(dirname "$OUT")"

# Deterministic filler: the same (seed, size) always gives the same bytes.
filler() { # file seed bytes
    python3 - "$1" "$2" "$3" <<'PY'
import hashlib, sys
path, seed, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
with open(path, "wb") as f:
    block, i = b"", 0
    while n > 0:
        block = b"".join(hashlib.sha256(seed + (i * 64 + k).to_bytes(8, "little")).digest() for k in range(64))
        f.write(block[:n]); n -= len(block); i += 1
PY
}

# build_image PREFIX LABEL_PREFIX TABLE SIZE_MIB [INNER_IMAGE]  -> PREFIX.img, PREFIX.parts.json
build_image() {
    local prefix=$1 lp=$2 table=$3 size=$4 inner=${5:-}
    local boot_mb=40 x d dir
    [ "$size" -lt 128 ] && boot_mb=16
    x=$(( ( (size - 24 - boot_mb) / 3 ) / 4 * 4 ))
    local min_root=8
    if [ -n "$inner" ]; then
        min_root=$(( ( $(stat -c %s "$inner") / MiB + 12 ) / 4 * 4 + 4 ))
        [ "$x" -lt "$min_root" ] && x=$min_root
        size=$((16 + boot_mb + 2 * x + 16))
    fi
    # MBR: 4 MiB before p1, 4 MiB EBR gap before p5 and p6, 4 MiB state. GPT: 4 MiB before p1,
    # 4 MiB state, 4 MiB left free at the end for the backup GPT.
    d=$((size - 16 - boot_mb - 2 * x))
    [ "$d" -ge 8 ] || { echo "mkimage: $size MiB is too small" >&2; exit 2; }

    # Partition starts in MiB (MBR: gaps of 4 MiB before each logical partition for its EBR).
    local s1=4 s2 s3 s4 s5 s6
    s2=$((s1 + boot_mb)); s3=$((s2 + x)); s4=$((s3 + x))
    if [ "$table" = dos ]; then s5=$((s4 + 4)); s6=$((s5 + 4 + 4)); else s5=$s4; s6=$((s5 + 4)); fi
    local names=("$lp-boot" "$lp-rootA" "$lp-rootB" "$lp-state" "$lp-data")
    local starts=($s1 $s2 $s3 $s5 $s6) sizes=($boot_mb $x $x 4 $d)

    # --- resin-boot (FAT16)
    dir=$TMP/$lp-boot.d; mkdir -p "$dir/system-connections" "$dir/system-proxy" "$dir/splash"
    cat >"$dir/device-type.json" <<J
{
  "slug": "$DT",
  "name": "Fake $DT",
  "arch": "$ARCH",
  "state": "RELEASED",
  "yocto": {"machine": "$MACHINE", "image": "balena-image", "fstype": "balenaos-img", "deployArtifact": "balena-image-$MACHINE.balenaos-img"},
  "options": [],
  "configuration": {"config": {"partition": {"primary": 1}, "path": "/config.json"}}
}
J
    cat >"$dir/os-release" <<J
ID=balena-os
NAME="balenaOS"
VERSION="$VERSION"
VERSION_ID="$SHORTV"
PRETTY_NAME="balenaOS $VERSION"
MACHINE="$MACHINE"
META_BALENA_VERSION="$SHORTV"
BALENA_BOARD_REV="fake"
SLUG="$DT"
J
    printf 'IMAGE_NAME=balena-image-%s\nIMAGE_VERSION=%s\nBUILD_DATE=20260101000000\nFAKE=1\n' \
        "$MACHINE" "$VERSION" >"$dir/image-version-info"
    printf '{"deviceType":"%s","persistentLogging":false}\n' "$DT" >"$dir/config.json"
    printf 'Sample NetworkManager keyfile location (files ending in .ignore are skipped)\n' \
        >"$dir/system-connections/resin-sample.ignore"
    printf 'Proxy configuration for redsocks goes here\n' >"$dir/system-proxy/README.ignore"
    if [ "$PI" = 1 ]; then
        local kimg=kernel7.img
        [ "$ARCH" = aarch64 ] && kimg=kernel8.img
        mkdir -p "$dir/overlays"
        printf '%s\n' "# balenaOS config.txt" "arm_64bit=$([ "$ARCH" = aarch64 ] && echo 1 || echo 0)" \
            "disable_splash=1" "dtparam=i2c_arm=on" "dtparam=spi=on" "dtparam=audio=on" \
            "enable_uart=1" "gpu_mem=16" "avoid_warnings=1" >"$dir/config.txt"
        echo "dwc_otg.lpm_enable=0 rootwait" >"$dir/cmdline.txt"
        filler "$dir/bootcode.bin" "bootcode-$VERSION" 52480
        filler "$dir/start.elf" "start-$VERSION" 131072
        filler "$dir/fixup.dat" "fixup-$VERSION" 7314
        filler "$dir/$kimg" "kernel-$VERSION" 262144
        filler "$dir/bcm2710-rpi-3-b.dtb" "dtb3-$VERSION" 32768
        filler "$dir/bcm2709-rpi-2-b.dtb" "dtb2-$VERSION" 32768
        filler "$dir/overlays/dwc2.dtbo" "dwc2-$VERSION" 1024
    else
        mkdir -p "$dir/EFI/BOOT"
        filler "$dir/EFI/BOOT/bootx64.efi" "efi-$VERSION" 262144
    fi
    filler "$dir/splash/balena-logo.png" "logo" 16384
    (cd "$dir" && find . -type f ! -name '*.fingerprint' | sort | xargs md5sum) >"$dir/balenaos.fingerprint"
    local img=$TMP/$lp-boot.img
    truncate -s "${boot_mb}M" "$img"
    mkfs.vfat -F 16 -n "$lp-boot" -i 1e55b007 "$img" >/dev/null 2>&1
    mcopy -s -p -m -i "$img" "$dir"/* ::/
    # --- ext4 partitions
    mkext() { # name size_mb dir
        truncate -s "${2}M" "$TMP/$1.img"
        mkfs.ext4 -q -F -L "$1" -d "$3" -U "$(printf '%s' "$1$VERSION" | md5sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')" \
            -E root_owner=0:0 "$TMP/$1.img" >/dev/null
    }
    dir=$TMP/$lp-rootA.d; mkdir -p "$dir/etc" "$dir/usr/lib" "$dir/usr/bin" "$dir/opt" "$dir/boot"
    cp "$TMP/$lp-boot.d/os-release" "$dir/etc/os-release"
    cp "$TMP/$lp-boot.d/os-release" "$dir/usr/lib/os-release"
    echo "$MACHINE" >"$dir/etc/hostname"
    filler "$dir/usr/bin/balena-engine" "engine-$VERSION" $((x * MiB / 4))
    filler "$dir/boot/bzImage" "kernel-$VERSION" 1048576
    [ -n "$inner" ] && cp "$inner" "$dir/opt/balena-image-$MACHINE.balenaos-img"
    mkext "$lp-rootA" "$x" "$dir"
    dir=$TMP/$lp-rootB.d; mkdir -p "$dir"; mkext "$lp-rootB" "$x" "$dir"
    dir=$TMP/$lp-state.d; mkdir -p "$dir/root-overlay/etc" "$dir/remove_me_to_reset"
    mkext "$lp-state" 4 "$dir"
    dir=$TMP/$lp-data.d; mkdir -p "$dir/resin-data" "$dir/docker"
    mkext "$lp-data" "$d" "$dir"

    # --- table and assembly
    local raw=$prefix.img.tmp script
    rm -f "$raw"; truncate -s "${size}M" "$raw"
    local S=2048   # sectors per MiB
    if [ "$table" = dos ]; then
        script="label: dos
label-id: 0x1e55b007
unit: sectors
start=$((s1 * S)), size=$((boot_mb * S)), type=e, bootable
start=$((s2 * S)), size=$((x * S)), type=83
start=$((s3 * S)), size=$((x * S)), type=83
start=$((s4 * S)), size=$(((size - s4) * S)), type=f
start=$((s5 * S)), size=$((4 * S)), type=83
start=$((s6 * S)), size=$((d * S)), type=83"
    else
        script="label: gpt
label-id: 1E55B007-0000-4000-8000-000000000001
unit: sectors
start=$((s1 * S)), size=$((boot_mb * S)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"${names[0]}\", attrs=\"LegacyBIOSBootable\"
start=$((s2 * S)), size=$((x * S)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"${names[1]}\"
start=$((s3 * S)), size=$((x * S)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"${names[2]}\"
start=$((s5 * S)), size=$((4 * S)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"${names[3]}\"
start=$((s6 * S)), size=$((d * S)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"${names[4]}\""
    fi
    printf '%s\n' "$script" | sfdisk -q --no-reread --no-tell-kernel "$raw" >/dev/null
    local i
    for i in 0 1 2 3 4; do
        dd if="$TMP/${names[$i]}.img" of="$raw" bs=1M seek="${starts[$i]}" conv=notrunc,sparse status=none
    done
    mv "$raw" "$prefix.img"

    # --- partition list (number as the kernel names it)
    python3 - "$prefix.img" "$table" "${names[*]}" "${starts[*]}" "${sizes[*]}" >"$prefix.parts.json" <<'PY'
import hashlib, json, sys
path, table, names, starts, sizes = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), sys.argv[5].split()
nums = [1, 2, 3, 5, 6] if table == "dos" else [1, 2, 3, 4, 5]
parts = []
with open(path, "rb") as f:
    for num, name, s, n in zip(nums, names, starts, sizes):
        start, size = int(s) << 20, int(n) << 20
        f.seek(start); h = hashlib.sha256(); left = size
        while left:
            b = f.read(min(left, 4 << 20)); h.update(b); left -= len(b)
        parts.append({"number": num, "name": name, "fs": "vfat" if name.endswith("-boot") else "ext4",
                      "start": start, "size": size, "sha256": h.hexdigest()})
print(json.dumps(parts))
PY
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

INNER_MANIFEST=$TMP/inner.manifest.json
echo null >"$INNER_MANIFEST"
if [ "$VARIANT" = flasher ]; then
    build_image "$TMP/inner" resin dos "$SIZE"
    python3 -c 'import json,sys; print(json.dumps({"table":"dos","size_bytes":int(sys.argv[2]),"sha256":sys.argv[3],"partitions":json.load(open(sys.argv[1]))}))' \
        "$TMP/inner.parts.json" "$(stat -c %s "$TMP/inner.img")" "$(sha "$TMP/inner.img")" >"$INNER_MANIFEST"
    build_image "$OUT" flash dos "$SIZE" "$TMP/inner.img"
    TABLE=dos
else
    TABLE=dos; [ "$VARIANT" = gpt ] && TABLE=gpt
    build_image "$OUT" resin "$TABLE" "$SIZE"
fi

GZSHA=
if [ "$GZ" = 1 ]; then
    if command -v pigz >/dev/null; then pigz -n -6 -c "$OUT.img" >"$OUT.img.gz.tmp"; else gzip -n -6 -c "$OUT.img" >"$OUT.img.gz.tmp"; fi
    mv "$OUT.img.gz.tmp" "$OUT.img.gz"
    GZSHA=$(sha "$OUT.img.gz")
fi
python3 - "$OUT.parts.json" "$INNER_MANIFEST" "$GZSHA" <<PY >"$OUT.manifest.json"
import json, sys
m = {"variant": "$VARIANT", "device_type": "$DT", "machine": "$MACHINE", "version": "$VERSION",
     "table": "$TABLE", "size_bytes": $(stat -c %s "$OUT.img"), "sha256": "$(sha "$OUT.img")",
     "gz_sha256": sys.argv[3] or None, "partitions": json.load(open(sys.argv[1])),
     "inner": json.load(open(sys.argv[2]))}
print(json.dumps(m, indent=1))
PY
rm -f "$OUT.parts.json"
echo "mkimage: $OUT.img ($VARIANT, $DT, $VERSION, $(($(stat -c %s "$OUT.img") / MiB)) MiB)"
