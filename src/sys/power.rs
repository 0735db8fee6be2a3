//! reboot(2).

use std::io;

/// Flushes filesystems and reboots the machine. Returns only when the kernel refused.
pub fn reboot() -> io::Error {
    super::sync();
    // SAFETY: reboot(RB_AUTOBOOT) takes a plain integer; on success it does not return.
    unsafe { libc::reboot(libc::RB_AUTOBOOT) };
    io::Error::last_os_error()
}

/// Flushes filesystems and powers the machine off. Returns only when the kernel refused.
pub fn power_off() -> io::Error {
    super::sync();
    // SAFETY: reboot(RB_POWER_OFF) takes a plain integer; on success it does not return.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    io::Error::last_os_error()
}
