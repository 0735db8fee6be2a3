//! Processes and signals: kill, reaping, signal masks, PID 1 helpers.

use std::io;

use super::cvt;

pub use libc::{SIGKILL, SIGTERM};

/// `kill(pid, sig)`.
pub fn kill(pid: i32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes plain integers; it cannot touch our memory.
    cvt(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// What a non-blocking wait found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// A child ended: its pid and raw wait status.
    Child(i32, i32),
    /// Children exist, none has ended.
    Running,
    /// No children at all (ECHILD).
    NoChildren,
}

/// `waitpid(pid, WNOHANG)`; `pid = -1` for any child.
pub fn try_wait(pid: i32) -> io::Result<Reaped> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid, writable c_int for the duration of the call.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    match r {
        0 => Ok(Reaped::Running),
        -1 => {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ECHILD) {
                Ok(Reaped::NoChildren)
            } else {
                Err(e)
            }
        }
        pid => Ok(Reaped::Child(pid, status)),
    }
}

/// Reaps every ended child (SIGCHLD coalesces, so loop until none is left). Returns how many.
pub fn reap_all() -> usize {
    let mut n = 0;
    while let Ok(Reaped::Child(..)) = try_wait(-1) {
        n += 1;
    }
    n
}

/// Exit code of a wait status, or 128 + signal when killed.
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    }
}

/// Blocks every blockable signal in this thread (PID 1 handles none of them asynchronously).
pub fn block_all_signals() -> io::Result<()> {
    set_mask(libc::SIG_BLOCK, true)
}

/// Restores an empty signal mask (for children spawned by PID 1).
pub fn unblock_all_signals() -> io::Result<()> {
    set_mask(libc::SIG_SETMASK, false)
}

fn set_mask(how: libc::c_int, full: bool) -> io::Result<()> {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    if full {
        // SAFETY: sigfillset initialises the whole set it is given; the pointer refers to a
        // local of the right type.
        unsafe { libc::sigfillset(set.as_mut_ptr()) };
    } else {
        // SAFETY: as above, with sigemptyset.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    }
    // SAFETY: the set was initialised just above; the old-set pointer may be NULL.
    let r = unsafe { libc::pthread_sigmask(how, set.as_ptr(), std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// `setsid()`: new session, no controlling terminal.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments.
    cvt(unsafe { libc::setsid() })?;
    Ok(())
}

/// Closes every file descriptor from `first` up (PID 1 after a re-exec inherits the old
/// init's descriptors). Uses close_range(2) and falls back to closing one by one.
pub fn close_fds_from(first: i32) {
    // SAFETY: close_range takes plain integers and only closes descriptors; no Rust object of
    // ours owns a descriptor >= `first` at this point (the caller guarantees it runs first).
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
    if r == 0 {
        return;
    }
    for fd in first..1024 {
        // SAFETY: as above; closing a descriptor that is not open only returns EBADF.
        unsafe { libc::close(fd) };
    }
}

/// Points descriptors 0, 1 and 2 at `file` (PID 1 after the pivot: the inherited ones pin the
/// old root's /dev, which then cannot be unmounted).
pub fn redirect_stdio(file: &std::fs::File) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    for fd in 0..3 {
        // SAFETY: dup2 takes two integers; `file` is open for the duration of the call and
        // descriptors 0-2 are not owned by any Rust object in PID 1 (std never closes them).
        cvt(unsafe { libc::dup2(file.as_raw_fd(), fd) })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_and_exit_codes() {
        let mut c = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let pid = c.id() as i32;
        // Poll until the child ends; bounded.
        let mut got = None;
        for _ in 0..500 {
            if let Reaped::Child(p, st) = try_wait(pid).unwrap() {
                got = Some((p, st));
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let (p, st) = got.expect("child did not end");
        assert_eq!(p, pid);
        assert_eq!(exit_code(st), 3);
        // Already reaped by us: std's wait now fails, which is fine.
        let _ = c.try_wait();
        // Signal 0 to ourselves checks existence without effect.
        kill(std::process::id() as i32, 0).unwrap();
    }
}
