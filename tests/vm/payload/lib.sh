# Helpers for payload run.sh scripts (sourced; runs inside the guest from /payload).
OUT=/payload/out
mkdir -p "$OUT"

say() { echo "PAYLOAD: $*"; }

# Facts about the guest, for the test bed's own checks.
facts() {
    hostname >"$OUT/hostname"
    cat /proc/swaps >"$OUT/swaps"
    cat /proc/1/comm >"$OUT/init_comm"
    readlink /proc/1/exe >"$OUT/init_exe"
    uname -r >"$OUT/uname"
    ls -1 /etc/NetworkManager/system-connections >"$OUT/nm_profiles" 2>/dev/null || true
    grep -h 'ssid=' /etc/wpa_supplicant/*.conf >"$OUT/wpa_ssids" 2>/dev/null || true
    (cd /srv/app && find data config -printf '%y %p\n' | sort) >"$OUT/appdata"
    [ -d /sys/firmware/efi ] && echo efi >"$OUT/firmware" || echo bios >"$OUT/firmware"
    grep -q efivarfs /proc/mounts && echo yes >"$OUT/efivarfs" || echo no >"$OUT/efivarfs"
    cut -d' ' -f1 /proc/uptime >"$OUT/uptime"
}

# GET /ping from the mock API through QEMU's guestfwd (http://10.0.2.100).
ping_api() {
    local rc=0
    if exec 3<>/dev/tcp/10.0.2.100/80; then
        printf 'GET /ping HTTP/1.0\r\nHost: 10.0.2.100\r\n\r\n' >&3
        timeout 20 cat <&3 >"$OUT/ping.txt" || rc=$?
        exec 3<&-
    else
        rc=7
    fi
    echo "$rc" >"$OUT/ping.rc"
}

# A snapshot of the system state a dry-run must not change.
snap() {
    local d=$OUT/snap-$1
    mkdir -p "$d"
    findmnt -rn -o TARGET,FSTYPE,SOURCE,OPTIONS | grep -v '^/payload' | sort >"$d/mounts"
    tail -n +2 /proc/swaps | awk '{print $1, $2, $3}' | sort >"$d/swaps"
    cut -d' ' -f1 /proc/modules | sort >"$d/modules"
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
        -o -path /var/log -o -path /var/tmp -o -path /var/cache -o -path /var/lib/systemd \
        -o -path /var/lib/NetworkManager -o -path /var/lib/dhcp -o -path /var/backups \
        -o -path /etc/resolv.conf \
        -o -path /payload \) -prune -o -printf '%p %y %s %T@ %m %u %g\n' | sort >"$d/tree"
    find /etc /boot /srv /root /usr/local /swapfile -xdev -type f ! -path /etc/resolv.conf \
        -print0 2>/dev/null | sort -z | xargs -0 sha256sum >"$d/digests" 2>/dev/null
    head -c 1048576 /dev/vda | sha256sum | cut -d' ' -f1 >"$d/vda_first_mib"
}

# Watch every process's argv and environment for the test secrets (/payload/secrets.txt, one
# per line) until argv_watch_stop: hits go to $OUT/argv-hits, the number of scans to
# $OUT/argv-scans. Sampling (every ~50 ms): a process shorter than that can be missed.
argv_watch() {
    : >"$OUT/argv-hits"
    echo 0 >"$OUT/argv-scans"
    touch /run/argv-watch
    (
        n=0
        while [ -e /run/argv-watch ]; do
            cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' |
                grep -F -f /payload/secrets.txt >>"$OUT/argv-hits"
            n=$((n + 1))
            echo "$n" >"$OUT/argv-scans"
            sleep 0.05
        done
    ) &
    ARGV_WATCH_PID=$!
}

argv_watch_stop() {
    rm -f /run/argv-watch
    wait "$ARGV_WATCH_PID" 2>/dev/null || true
}
