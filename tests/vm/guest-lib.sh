# Shell helpers of the guest builders that came after build-guest.sh (build-pi-guest.sh,
# fleet-guest.sh); sourced, not run. build-guest.sh keeps its own copies: its text is part of
# the x86 guests' cache key.

# unmount_below DIR: lazily unmount whatever is still mounted below DIR, deepest first (a build
# that was interrupted inside a chroot or mmdebstrap), so that `rm -rf DIR` stays inside it.
unmount_below() {
    [ -d "$1" ] || return 0
    { findmnt -rn -o TARGET | grep -F "$1/" || true; } | sort -r |
        while read -r m; do umount -l "$m" || true; done
}
