//! One takeover at a time: a lock against two concurrent runs, and a guard that removes what a
//! failed run staged.
//!
//! The lock is an `flock(2)` on `<work-dir>/.takeover.lock` (and, for a run that takes over
//! this system, also on `/run/takeover.lock`, so that two runs with different work dirs cannot
//! both take over). The kernel drops an flock when its holder exits, however it exits, so a
//! crashed or killed run never leaves a stale lock: the next run just takes it. The lock file
//! itself stays (an empty file); it is opened close-on-exec, so stage 2 does not inherit it.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cli::{Mode, Options};
use crate::error::{Context, Error, Result};

/// Name of the lock file in the work dir.
pub const LOCK_FILE: &str = ".takeover.lock";
/// The system-wide lock of a run that takes over this system.
pub const SYSTEM_LOCK: &str = "/run/takeover.lock";

/// Held for as long as the run lasts; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _files: Vec<File>,
    pub paths: Vec<PathBuf>,
}

/// Takes the locks `opts` needs: the work dir's always, `/run/takeover.lock` too for
/// `--pretend` and a migration. Fails, naming the lock, when another run holds one.
pub fn acquire(opts: &Options) -> Result<RunLock> {
    // Before anything is created in it: nobody else may be able to write the work dir.
    crate::files::check_trusted_dir(&opts.work_dir())?;
    let mut paths = vec![opts.work_dir().join(LOCK_FILE)];
    if matches!(opts.mode(), Mode::Migrate | Mode::Pretend) && Path::new("/run").is_dir() {
        paths.push(PathBuf::from(SYSTEM_LOCK));
    }
    let mut files = Vec::new();
    for p in &paths {
        files.push(lock_file(p)?);
    }
    Ok(RunLock {
        _files: files,
        paths,
    })
}

/// Opens (creating, mode 0600) and locks one lock file.
pub fn lock_file(path: &Path) -> Result<File> {
    let step = "taking the lock against a second takeover run";
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .ctx_path(step, path)?;
    if !crate::sys::lock::try_lock_exclusive(&f).ctx_path(step, path)? {
        return Err(Error::new(step, path.display(), "another takeover run holds the lock")
            .hint("wait for the other run to finish (or stop it), then try again; a run that died released its lock by itself"));
    }
    crate::debug!("holding the lock {}", path.display());
    Ok(f)
}

/// Removes a directory tree when dropped, unless [`keep`](StagingGuard::keep) was called: what
/// a failed run staged does not stay behind (it may hold config.json with the apiKey).
#[derive(Debug)]
pub struct StagingGuard {
    dir: Option<PathBuf>,
}

impl StagingGuard {
    pub fn new(dir: &Path) -> StagingGuard {
        StagingGuard {
            dir: Some(dir.to_path_buf()),
        }
    }

    /// The run succeeded (or `--no-cleanup`): leave the directory.
    pub fn keep(mut self) {
        self.dir = None;
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            if d.exists() {
                match std::fs::remove_dir_all(&d) {
                    Ok(()) => crate::debug!("removed {} after the failure", d.display()),
                    Err(e) => crate::warn!("could not remove {}: {e}", d.display()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        crate::testutil::temp_dir("lock", tag)
    }

    #[test]
    fn second_lock_is_refused_and_released_on_drop() {
        let d = tmp("a");
        let opts = Options {
            work_dir: Some(d.clone()),
            dry_run: true,
            ..Default::default()
        };
        let l = acquire(&opts).unwrap();
        assert_eq!(l.paths, vec![d.join(LOCK_FILE)]);
        let e = acquire(&opts).unwrap_err().to_string();
        assert!(e.contains("another takeover run holds the lock"), "{e}");
        assert!(e.contains(".takeover.lock") && e.contains("hint:"), "{e}");
        drop(l);
        let l2 = acquire(&opts).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(d.join(LOCK_FILE)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        drop(l2);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn staging_guard_removes_unless_kept() {
        let d = tmp("b");
        let s = d.join("staging");
        std::fs::create_dir_all(s.join("boot")).unwrap();
        drop(StagingGuard::new(&s));
        assert!(!s.exists());
        std::fs::create_dir_all(&s).unwrap();
        StagingGuard::new(&s).keep();
        assert!(s.exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
