//! Helpers shared by the unit tests (compiled for tests only).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh, empty directory `takeover-<area>-<pid>-<tag>` under the temp dir; one left by an
/// earlier run of the same test is removed first. The caller removes it (or uses [`TempDir`]).
pub fn temp_dir(area: &str, tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("takeover-{area}-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A [`temp_dir`] of its own (a counter keeps two of the same tag apart), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(area: &str, tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempDir(temp_dir(area, &format!("{tag}-{n}")))
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fixture sysroot of tests/fixtures/sysroots and its probe.
pub fn sysroot_fixture(name: &str) -> (crate::probe::Root, crate::probe::Probe) {
    let root = crate::probe::Root::new(format!(
        "{}/tests/fixtures/sysroots/{name}",
        env!("CARGO_MANIFEST_DIR")
    ));
    let p = crate::probe::probe(&root);
    (root, p)
}
