//! reboot(2).

use std::io;
use std::time::Duration;

/// How long the flush before a reboot or power-off may take: on a failing disk `sync` can
/// block without end, and the reboot matters more than the last dirty pages.
pub const SYNC_LIMIT: Duration = Duration::from_secs(30);

/// Flushes filesystems (at most [`SYNC_LIMIT`]) and reboots the machine. Returns only when
/// the kernel refused.
pub fn reboot() -> io::Error {
    super::sync_bounded(SYNC_LIMIT);
    // SAFETY: reboot(RB_AUTOBOOT) takes a plain integer; on success it does not return.
    unsafe { libc::reboot(libc::RB_AUTOBOOT) };
    io::Error::last_os_error()
}

/// Flushes filesystems (at most [`SYNC_LIMIT`]) and powers the machine off. Returns only when
/// the kernel refused.
pub fn power_off() -> io::Error {
    super::sync_bounded(SYNC_LIMIT);
    // SAFETY: reboot(RB_POWER_OFF) takes a plain integer; on success it does not return.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    io::Error::last_os_error()
}
