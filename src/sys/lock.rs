//! `flock(2)`: advisory whole-file locks, released by the kernel when the last descriptor of
//! the open file closes (so also when the process dies).

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;

/// Tries to take an exclusive lock on `file` without waiting: `Ok(true)` when taken,
/// `Ok(false)` when another open file description holds a lock on the same file.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is a valid open descriptor borrowed from `file` for the duration of the
    // call; flock reads no memory of ours.
    match super::cvt_r(|| unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_file_description_is_refused() {
        let p = std::env::temp_dir().join(format!("takeover-sys-lock-{}", std::process::id()));
        let a = File::create(&p).unwrap();
        let b = File::open(&p).unwrap();
        assert!(try_lock_exclusive(&a).unwrap());
        assert!(!try_lock_exclusive(&b).unwrap());
        drop(a);
        assert!(try_lock_exclusive(&b).unwrap());
        let _ = std::fs::remove_file(&p);
    }
}
