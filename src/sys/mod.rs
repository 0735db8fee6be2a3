//! The only module with `unsafe`: thin, policy-free wrappers over libc, one safe function per
//! system call or ioctl, each returning `io::Result`.
//!
//! Conventions:
//! - every `unsafe` block carries a `// SAFETY:` line naming the invariant that makes it sound;
//! - every `unsafe fn` documents its contract under `# Safety`;
//! - C return codes become results through [`cvt`] (and [`cvt_r`] where EINTR is retried);
//! - paths become C strings through [`cstr`], which refuses interior NUL bytes.

pub mod block;
pub mod direct;
pub mod fs;
pub mod lock;
pub mod loopdev;
pub mod mount;
pub mod mtd;
#[cfg(all(
    feature = "no-libunwind",
    target_arch = "x86_64",
    target_env = "musl",
    panic = "abort"
))]
pub mod nounwind;
pub mod power;
pub mod process;
pub mod uname;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Integer return values of libc calls that signal failure with -1 and errno.
pub trait IsMinusOne: Copy {
    fn is_minus_one(self) -> bool;
}

macro_rules! impl_is_minus_one {
    ($($t:ty)*) => ($(impl IsMinusOne for $t {
        fn is_minus_one(self) -> bool { self == -1 }
    })*)
}
impl_is_minus_one! { i8 i16 i32 i64 isize }

/// Turns a "-1 and errno" return value into an `io::Result`.
pub fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`], retrying the call while it fails with EINTR.
pub fn cvt_r<T: IsMinusOne>(mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A path as a C string; a path with a NUL byte is an `InvalidInput` error.
pub fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// `sync(2)`: flush every filesystem.
pub fn sync() {
    // SAFETY: sync takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::sync() }
}

/// [`sync`] on a thread of its own, waited for at most `limit`: on a failing disk sync can
/// block for as long as the kernel retries. Returns false when it had not finished; the
/// thread is left behind (the caller is about to reboot).
pub fn sync_bounded(limit: std::time::Duration) -> bool {
    run_bounded(sync, limit)
}

/// Runs `f` on a thread and waits at most `limit` for it to return.
fn run_bounded(f: fn(), limit: std::time::Duration) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("bounded".into())
        .spawn(move || {
            f();
            let _ = tx.send(());
        });
    match spawned {
        Ok(_) => rx.recv_timeout(limit).is_ok(),
        // No thread (out of memory or tasks): call it here, unbounded, rather than skip it.
        Err(_) => {
            f();
            true
        }
    }
}

/// `geteuid(2)`.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid takes no arguments and always succeeds.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_call_that_never_returns_is_abandoned_after_the_limit() {
        use std::time::{Duration, Instant};
        fn forever() {
            std::thread::sleep(Duration::from_secs(3600));
        }
        let t = Instant::now();
        assert!(!super::run_bounded(forever, Duration::from_millis(200)));
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(super::sync_bounded(Duration::from_secs(60)));
    }

    use super::*;

    #[test]
    fn cvt_maps_minus_one() {
        assert_eq!(cvt(0i32).unwrap(), 0);
        assert!(cvt(-1i32).is_err());
        assert!(cstr(Path::new("a\0b")).is_err());
        assert_eq!(cstr(Path::new("/dev/sda")).unwrap().as_bytes(), b"/dev/sda");
    }
}
