//! mount(2), umount2(2), pivot_root(2) and mount propagation.

use std::io;
use std::path::Path;
use std::ptr;

use super::{cstr, cvt};

pub use libc::{
    MNT_DETACH, MNT_FORCE, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC,
    MS_REMOUNT, MS_SLAVE,
};

/// `mount(source, target, fstype, flags, data)`. `None` passes NULL.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cstr).transpose()?;
    let target = cstr(target)?;
    let fstype = fstype.map(|s| cstr(Path::new(s))).transpose()?;
    let data = data.map(|s| cstr(Path::new(s))).transpose()?;
    let p = |c: &Option<std::ffi::CString>| c.as_ref().map_or(ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is either NULL (allowed by mount(2) for source, fstype and data) or
    // comes from a CString that lives until the end of this function, past the call.
    cvt(unsafe {
        libc::mount(
            p(&source),
            target.as_ptr(),
            p(&fstype),
            flags,
            p(&data).cast(),
        )
    })?;
    Ok(())
}

/// `umount2(target, flags)`.
pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let target = cstr(target)?;
    // SAFETY: `target` is a NUL-terminated string alive for the duration of the call.
    cvt(unsafe { libc::umount2(target.as_ptr(), flags) })?;
    Ok(())
}

/// Makes every mount below `/` private, so nothing we mount or unmount propagates to (or from)
/// other namespaces: `mount(NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL)`.
pub fn make_rprivate() -> io::Result<()> {
    mount(None, Path::new("/"), None, MS_REC | MS_PRIVATE, None)
}

/// `pivot_root(new_root, put_old)` through syscall(2): libc has no wrapper.
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let new_root = cstr(new_root)?;
    let put_old = cstr(put_old)?;
    // SAFETY: both pointers come from CStrings alive across the call; SYS_pivot_root takes
    // exactly two path arguments.
    cvt(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })?;
    Ok(())
}

/// `chroot(path)`.
pub fn chroot(path: &Path) -> io::Result<()> {
    let path = cstr(path)?;
    // SAFETY: `path` is a NUL-terminated string alive for the duration of the call.
    cvt(unsafe { libc::chroot(path.as_ptr()) })?;
    Ok(())
}

/// `swapoff(path)`.
pub fn swapoff(path: &Path) -> io::Result<()> {
    let path = cstr(path)?;
    // SAFETY: `path` is a NUL-terminated string alive for the duration of the call.
    cvt(unsafe { libc::swapoff(path.as_ptr()) })?;
    Ok(())
}

/// `swapon(path, 0)`, to undo a swapoff when stage 1 gives up.
pub fn swapon(path: &Path) -> io::Result<()> {
    let path = cstr(path)?;
    // SAFETY: `path` is a NUL-terminated string alive for the duration of the call.
    cvt(unsafe { libc::swapon(path.as_ptr(), 0) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprivileged_or_bad_calls_fail_cleanly() {
        // A path with NUL is refused before any system call.
        assert!(umount2(Path::new("a\0b"), 0).is_err());
        // Unmounting something that is not a mount point fails with EINVAL (or EPERM without
        // root); it never succeeds.
        let dir = std::env::temp_dir();
        assert!(umount2(&dir.join("takeover-not-a-mountpoint-xyz"), 0).is_err());
    }
}
