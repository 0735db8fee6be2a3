#!/bin/bash
# Flash pipeline benchmark (issue 10), run by `make bench`.
#
#   tests/bench/bench.sh [--runs N] [--doc FILE] TAKEOVER_BIN DECODE_BIN
#
# 1. Makes (once; cached under $BENCH_DIR, default target/bench/) a 1 GiB balenaOS-like image:
#    tests/tools/mkimage.sh's 256 MiB genericx86-64-ext image, grown to 1 GiB (extended and
#    resin-data partitions enlarged in the MBR), the space after the 256 MiB filled with a
#    mix like build-and-baselines §6: a tar of /usr (two regions), /dev/urandom, zeros.
#    Compressed with `gzip -6 -n`.
# 2. Measures, median of N runs (default 3), each after `sync; echo 3 > drop_caches` and one
#    read of the .gz into the page cache:
#    (a) `takeover --write-only -i IMG.gz -f T -c config.json`: the whole command (a full
#        verification pass before the first write, then decode, checks and write; O_DIRECT
#        read-back; partition table; FAT configuration)
#        and, from its log, the flash step alone (write + read-back) and its write
#        throughput; peak RSS
#        (/usr/bin/time, "Maximum resident set size", the same counter as `time -v`);
#    (b) `gzip -dc IMG.gz | dd of=T bs=4M iflag=fullblock oflag=direct conv=fsync`, then
#        `gzip -dc IMG.gz | cmp - T` (the manual write + read-back check);
#    (c) decode to nowhere with the tool's decoder (examples/decode.rs: image::source::open_image).
#    T is one file on the same disk, written in full once before the runs (no unwritten extents).
# 3. Prints MB/s (10^6 bytes of decoded image per second of wall time), the ratios against the
#    targets of issue 10, and writes them with the machine description into --doc (if given).
#
# Needs root (drop_caches; --write-only is run onto a file this script created). Without root
# the caches are not dropped and the report says so.
set -euo pipefail

RUNS=3
DOC=
while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --doc) DOC=$2; shift 2 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        -*) echo "bench: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
TAKEOVER=$(realpath "${1:?usage: bench.sh [--runs N] [--doc FILE] TAKEOVER_BIN DECODE_BIN}")
DECODE=$(realpath "${2:?usage: bench.sh [--runs N] [--doc FILE] TAKEOVER_BIN DECODE_BIN}")
HERE=$(cd "$(dirname "$0")" && pwd)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
ROOT=$(cd "$HERE/../.." && pwd)
D=${BENCH_DIR:-$ROOT/target/bench}
mkdir -p "$D"
D=$(realpath "$D")
MiB=$((1024 * 1024))
IMG_MIB=1024
IMAGE_VERSION=v1   # bump when the image recipe changes
GZ=$D/bench.img.gz
T=$D/target.img
for t in /usr/bin/time gzip dd cmp sfdisk python3 tar; do
    command -v $t >/dev/null || { echo "bench: $t not found" >&2; exit 1; }
done

# ------------------------------------------------------------------------------- the image
make_image() {
    echo "bench: building the 1 GiB test image in $D (once)"
    "$ROOT/tests/tools/mkimage.sh" --size 256 --device-type genericx86-64-ext --no-gz "$D/base" >/dev/null
    local raw=$D/bench.img.tmp
    rm -f "$raw"
    cp --sparse=always "$D/base.img" "$raw"
    truncate -s ${IMG_MIB}M "$raw"
    # Extended (p4) and resin-data (p6) run to the end of the 1 GiB image.
    sfdisk -d "$raw" | python3 -c '
import re, sys
tot = int(sys.argv[1]) * 2048
out = []
for line in sys.stdin:
    m = re.match(r"(\S+?)([0-9]+) : start=\s*([0-9]+), size=\s*([0-9]+),(.*)", line)
    if m and m.group(2) in ("4", "6"):
        start = int(m.group(3))
        line = "%s%s : start=%d, size=%d,%s\n" % (m.group(1), m.group(2), start, tot - start, m.group(5))
    elif line.startswith("last-lba"):
        continue
    out.append(line)
sys.stdout.write("".join(out))
' $IMG_MIB | sfdisk -q --no-reread --no-tell-kernel "$raw" >/dev/null
    # The mix after the first 256 MiB (inside resin-data, after its small ext4): 2 x 175 MiB of
    # a tar of /usr, 2 x 115 MiB random, 2 x 94 MiB zeros (the zeros are already there).
    local at=256
    put() { # MiB source-command...
        local n=$1; shift
        set +o pipefail
        "$@" 2>/dev/null | dd of="$raw" bs=1M seek=$at count="$n" iflag=fullblock conv=notrunc status=none
        set -o pipefail
        at=$((at + n))
    }
    tarusr() { tar cf - -C / usr/bin usr/lib usr/share usr/libexec 2>/dev/null | tail -c +$(($1 * MiB + 1)); }
    put 175 tarusr 0
    put 115 cat /dev/urandom
    at=$((at + 94))
    put 175 tarusr 1200
    put 115 cat /dev/urandom
    at=$((at + 94))
    [ $at -eq $IMG_MIB ] || { echo "bench: image recipe adds up to $at MiB" >&2; exit 1; }
    local t0=$SECONDS
    gzip -6 -n -c "$raw" >"$GZ.tmp"
    local gz_secs=$((SECONDS - t0))
    mv "$GZ.tmp" "$GZ"
    rm -f "$raw" "$D/base.img" "$D/base.manifest.json"
    printf '%s %d %d %d\n' "$IMAGE_VERSION" $((IMG_MIB * MiB)) "$(stat -c %s "$GZ")" "$gz_secs" >"$D/image.info"
}
if [ ! -f "$GZ" ] || [ "$(cut -d' ' -f1 "$D/image.info" 2>/dev/null)" != "$IMAGE_VERSION" ]; then
    make_image
fi
read -r _ RAW_BYTES GZ_BYTES GZ_SECS <"$D/image.info"

cat >"$D/config.json" <<'J'
{"deviceType":"genericx86-64-ext","applicationId":1,"apiKey":"bench0000000000000000000000000000",
 "apiEndpoint":"https://api.balena-cloud.com","hostname":"bench","persistentLogging":false}
J
# The target: written in full once, so no run pays for unwritten extents.
if [ "$(stat -c %s "$T" 2>/dev/null || echo 0)" != "$RAW_BYTES" ]; then
    rm -f "$T"
    dd if=/dev/zero of="$T" bs=4M count=$((RAW_BYTES / 4 / MiB)) oflag=direct conv=fsync status=none
fi

# ------------------------------------------------------------------------------- helpers
CAN_DROP=1
[ -w /proc/sys/vm/drop_caches ] || CAN_DROP=0
prepare_run() {
    sync
    if [ $CAN_DROP = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
    cat "$GZ" >/dev/null
}
# timed FILE cmd...: wall seconds, peak RSS KiB into FILE ("wall user sys maxrss_kib").
timed() {
    local out=$1; shift
    /usr/bin/time -f '%e %U %S %M' -o "$out" "$@"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mbs() { awk -v b="$RAW_BYTES" -v s="$1" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

A_WALL=() A_FLASH=() A_WRITE_MBS=() A_READBACK=() A_RSS=() A_CPU=()
B_WALL=() B_WRITE=() B_CMP=()
C_WALL=() C_MBS=() C_RSS=()
LOG=$D/write-only.log
for i in $(seq 1 "$RUNS"); do
    echo "bench: run $i/$RUNS"
    # (a) the tool
    prepare_run
    rm -rf "$D/work"; mkdir -p "$D/work"
    if ! timed "$D/a.time" "$TAKEOVER" --write-only --no-ack -i "$GZ" -f "$T" -c "$D/config.json" \
        -w "$D/work" >"$LOG" 2>&1; then
        echo "bench: takeover --write-only failed:" >&2; cat "$LOG" >&2; exit 1
    fi
    read -r w u s m <"$D/a.time"
    A_WALL+=("$w"); A_RSS+=("$m"); A_CPU+=("$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')")
    line=$(grep -o 'wrote and verified [0-9]* MiB at [0-9.]* MB/s (read-back [0-9.]* s)' "$LOG" | tail -1)
    [ -n "$line" ] || { echo "bench: no flash record in the log:" >&2; cat "$LOG" >&2; exit 1; }
    wmbs=$(echo "$line" | sed -E 's/.* at ([0-9.]+) MB\/s.*/\1/')
    rb=$(echo "$line" | sed -E 's/.*read-back ([0-9.]+) s.*/\1/')
    A_WRITE_MBS+=("$wmbs"); A_READBACK+=("$rb")
    A_FLASH+=("$(awk -v b="$RAW_BYTES" -v m="$wmbs" -v r="$rb" 'BEGIN { printf "%.3f", b / 1e6 / m + r }')")
    # (b) the manual baseline
    prepare_run
    timed "$D/b1.time" bash -c 'gzip -dc "$1" | dd of="$2" bs=4M iflag=fullblock oflag=direct conv=fsync status=none' _ "$GZ" "$T"
    timed "$D/b2.time" bash -c 'gzip -dc "$1" | cmp - "$2"' _ "$GZ" "$T" \
        || { echo "bench: cmp found a difference after gzip | dd" >&2; exit 1; }
    read -r w1 _ _ _ <"$D/b1.time"; read -r w2 _ _ _ <"$D/b2.time"
    B_WRITE+=("$w1"); B_CMP+=("$w2"); B_WALL+=("$(awk -v a="$w1" -v b="$w2" 'BEGIN { print a + b }')")
    # (c) decode only
    prepare_run
    timed "$D/c.time" "$DECODE" "$GZ" >"$D/decode.out"
    read -r w _ _ m <"$D/c.time"
    C_WALL+=("$w"); C_RSS+=("$m")
    C_MBS+=("$(sed -E 's/.*: ([0-9.]+) MB\/s.*/\1/' "$D/decode.out")")
    grep -q "decoded $RAW_BYTES bytes" "$D/decode.out" \
        || { echo "bench: decode printed $(cat "$D/decode.out"), expected $RAW_BYTES bytes" >&2; exit 1; }
done

a_wall=$(echo "${A_WALL[@]}" | median)
a_flash=$(echo "${A_FLASH[@]}" | median)
a_write=$(echo "${A_WRITE_MBS[@]}" | median)
a_rb=$(echo "${A_READBACK[@]}" | median)
a_rss=$(echo "${A_RSS[@]}" | tr ' ' '\n' | sort -n | tail -1)
a_cpu=$(echo "${A_CPU[@]}" | median)
b_wall=$(echo "${B_WALL[@]}" | median)
b_write=$(echo "${B_WRITE[@]}" | median)
b_cmp=$(echo "${B_CMP[@]}" | median)
c_wall=$(echo "${C_WALL[@]}" | median)
c_mbs=$(echo "${C_MBS[@]}" | median)
c_rss=$(echo "${C_RSS[@]}" | tr ' ' '\n' | sort -n | tail -1)

r_total=$(ratio "$b_wall" "$a_wall")
r_flash=$(ratio "$b_wall" "$a_flash")
r_write=$(ratio "$a_write" "$c_mbs")
rss_mib=$(awk -v k="$a_rss" 'BEGIN { printf "%.1f", k / 1024 }')
pf() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "PASS" : "FAIL" }'; }

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_MODEL=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
MEM=$(free -m | awk '/^Mem:/ { printf "%d MiB", $2 }')
KERNEL=$(uname -r)
NPROC=$(nproc)
FS=$(df -T "$D" | awk 'NR == 2 { print $2 " on " $1 }')
NOW=$(date -u '+%Y-%m-%d %H:%M UTC')
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
DROP=$([ $CAN_DROP = 1 ] && echo "dropped (\`sync; echo 3 > /proc/sys/vm/drop_caches\`) before every run" || echo "NOT dropped (not root)")

report() {
cat <<EOF
Run: $NOW, commit $COMMIT, $RUNS runs per configuration (median), load average before/after: $LOAD_BEFORE / $LOAD.
Machine: $NPROC CPUs ($CPU_MODEL), $MEM RAM, Linux $KERNEL; target file on $FS.
Image: $RAW_BYTES bytes decoded, $GZ_BYTES bytes as .gz ($(awk -v g="$GZ_BYTES" -v r="$RAW_BYTES" 'BEGIN { printf "%.1f", 100 * g / r }')%, gzip -6). Caches $DROP.

| configuration | wall s | MB/s | notes |
|---|---|---|---|
| (a) \`takeover --write-only\`, whole command | $a_wall | $(mbs "$a_wall") | verification pass, then decode + checks + write, read-back, FAT config; CPU $a_cpu s |
| (a) its flash step (write + O_DIRECT read-back) | $a_flash | $(mbs "$a_flash") | write $a_write MB/s, read-back $a_rb s |
| (b) \`gzip -dc \| dd oflag=direct conv=fsync\` + \`gzip -dc \| cmp - T\` | $b_wall | $(mbs "$b_wall") | write $b_write s, cmp $b_cmp s |
| (c) decode to nowhere (examples/decode) | $c_wall | $c_mbs | peak RSS $(awk -v k="$c_rss" 'BEGIN { printf "%.1f", k / 1024 }') MiB |

Single runs: (a) wall ${A_WALL[*]} s, write ${A_WRITE_MBS[*]} MB/s, read-back ${A_READBACK[*]} s;
(b) ${B_WALL[*]} s; (c) ${C_MBS[*]} MB/s.

| target | measured | result |
|---|---|---|
| verified write ≥ 3× gzip\|dd + cmp: whole \`--write-only\` | $r_total× | $(pf "$r_total" 3 ">=") |
| verified write ≥ 3× gzip\|dd + cmp: flash step only | $r_flash× | $(pf "$r_flash" 3 ">=") |
| write throughput ≥ 0.9× decode-only | $a_write / $c_mbs = $r_write× | $(pf "$r_write" 0.9 ">=") |
| peak RSS of (a) ≤ 16 MiB | $rss_mib MiB | $(pf "$rss_mib" 16 "<=") |
EOF
}
report | tee "$D/report.md"
if [ -n "$DOC" ]; then
    mkdir -p "$(dirname "$DOC")"
    python3 - "$DOC" "$D/report.md" <<'PY'
import sys
doc, rep = sys.argv[1], open(sys.argv[2]).read()
begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
try:
    text = open(doc).read()
except FileNotFoundError:
    text = "# Performance\n\n" + begin + "\n" + end + "\n"
if begin not in text or end not in text:
    text += "\n" + begin + "\n" + end + "\n"
a, rest = text.split(begin, 1)
_, b = rest.split(end, 1)
open(doc, "w").write(a + begin + "\n" + rep + end + b)
PY
    echo "bench: results written to $DOC"
fi
