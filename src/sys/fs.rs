//! Filesystem queries: free space (`statvfs(3)`).

use std::io;
use std::mem::MaybeUninit;
use std::path::Path;

use super::{cstr, cvt_r};

/// Space on the filesystem holding a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSpace {
    /// Bytes an unprivileged process may still allocate (`f_bavail * f_frsize`).
    pub avail_bytes: u64,
    /// Size of the filesystem (`f_blocks * f_frsize`).
    pub total_bytes: u64,
}

/// `statvfs(path, &buf)`: free and total space of the filesystem holding `path`.
pub fn statvfs(path: &Path) -> io::Result<FsSpace> {
    let c = cstr(path)?;
    let mut buf = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated string that outlives the call, and `buf` points to
    // writable memory of the size of `struct statvfs`, which the kernel fills on success.
    cvt_r(|| unsafe { libc::statvfs(c.as_ptr(), buf.as_mut_ptr()) })?;
    // SAFETY: statvfs returned 0, so it initialised every field of `buf`.
    let st = unsafe { buf.assume_init() };
    // The field types are u32 or u64 depending on the target; widening is lossless.
    #[allow(clippy::unnecessary_cast)]
    let (bavail, blocks, frsize) = (st.f_bavail as u64, st.f_blocks as u64, st.f_frsize as u64);
    Ok(FsSpace {
        avail_bytes: bavail.saturating_mul(frsize),
        total_bytes: blocks.saturating_mul(frsize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statvfs_of_tmp_and_missing() {
        let s = statvfs(&std::env::temp_dir()).unwrap();
        assert!(s.total_bytes > 0 && s.avail_bytes <= s.total_bytes, "{s:?}");
        let e = statvfs(Path::new("/nonexistent/takeover")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
