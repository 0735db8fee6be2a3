# Shell helpers of the guest builders that came after build-guest.sh (build-pi-guest.sh,
# fleet-guest.sh, lvm-guest.sh); sourced, not run. build-guest.sh keeps its own copies: its text is part of
# the x86 guests' cache key.

# unmount_below DIR: lazily unmount whatever is still mounted below DIR, deepest first (a build
# that was interrupted inside a chroot or mmdebstrap), so that `rm -rf DIR` stays inside it.
unmount_below() {
    [ -d "$1" ] || return 0
    { findmnt -rn -o TARGET | grep -F "$1/" || true; } | sort -r |
        while read -r m; do umount -l "$m" || true; done
}

# derived_guest_cached NAME SCRIPT: for a guest derived from the systemd guest: needs root,
# sets CACHE ($VM_CACHE or tests/vm/cache), BASE (the systemd guest, built if needed), OUT
# (guest-NAME) and KEY (SCRIPT, this library and BASE's stamp), and exits the calling script
# when OUT already holds a guest built with that key.
derived_guest_cached() {
    local name=$1 script=$2 here
    here=$(cd "$(dirname "$script")" && pwd)
    CACHE=${VM_CACHE:-$here/cache}
    BASE=$CACHE/guest-systemd
    OUT=$CACHE/guest-$name
    [ "$(id -u)" = 0 ] || { echo "$name-guest: must run as root (chroot, loop devices)" >&2; exit 1; }
    "$here/build-guest.sh" systemd
    KEY=$( { cat "$script" "$here/guest-lib.sh"; cat "$BASE/stamp"; } | sha256sum | cut -c1-16)
    if [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$KEY" ] && [ -f "$OUT/base.qcow2" ]; then
        echo "$name-guest: $name guest is cached ($OUT)"
        exit 0
    fi
}
