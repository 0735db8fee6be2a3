//! `statvfs(3)`: free space of a filesystem.

use std::io;
use std::mem::MaybeUninit;
use std::path::Path;

/// Bytes available to an unprivileged user on the filesystem holding `path`
/// (`f_bavail * f_frsize` of `statvfs(path, &buf)`).
pub fn statvfs_free(path: &Path) -> io::Result<u64> {
    let c = super::cstr(path)?;
    let mut buf = MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a NUL-terminated C string that outlives the call and `buf` points to
    // writable memory of the size of `struct statvfs`.
    super::cvt(unsafe { libc::statvfs(c.as_ptr(), buf.as_mut_ptr()) })?;
    // SAFETY: zero-initialised above and filled by statvfs, which returned success.
    let st = unsafe { buf.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between libc targets
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_of_tmp_and_missing_path() {
        assert!(statvfs_free(Path::new("/")).is_ok());
        let e = statvfs_free(Path::new("/nonexistent/dir")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
