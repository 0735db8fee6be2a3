//! Read-only probe of the running system: device, OS, init, memory, mounts, disks.
//!
//! Every read goes through a [`Root`], so a fixture tree (`--sysroot DIR`) stands in for
//! `/proc`, `/sys`, `/etc` and `/var/lib` in tests. Nothing here writes or opens a device.
#![forbid(unsafe_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The root under which system state is read: `/` on a real run, a fixture tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    base: PathBuf,
}

/// Largest file read through [`Root::read_string`] (sysfs and procfs values are small).
const MAX_READ: u64 = 4 * 1024 * 1024;

impl Root {
    pub fn new(base: impl Into<PathBuf>) -> Root {
        Root { base: base.into() }
    }

    /// The real system.
    pub fn system() -> Root {
        Root::new("/")
    }

    pub fn is_system(&self) -> bool {
        self.base == Path::new("/")
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// `rel` (absolute like "/proc/meminfo" or relative) under the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        self.base.join(rel)
    }

    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.path(rel).exists()
    }

    /// Reads a small text file under the root (lossy UTF-8).
    pub fn read_string(&self, rel: impl AsRef<Path>) -> io::Result<String> {
        use std::io::Read;
        let mut buf = Vec::new();
        fs::File::open(self.path(rel))?
            .take(MAX_READ)
            .read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Reads a small binary file under the root.
    pub fn read_bytes(&self, rel: impl AsRef<Path>) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut buf = Vec::new();
        fs::File::open(self.path(rel))?
            .take(MAX_READ)
            .read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Reads a symlink under the root (e.g. `/proc/1/exe`).
    pub fn read_link(&self, rel: impl AsRef<Path>) -> io::Result<PathBuf> {
        fs::read_link(self.path(rel))
    }

    /// Names of the entries of a directory under the root, sorted; empty when it does not exist.
    pub fn list(&self, rel: impl AsRef<Path>) -> Vec<String> {
        let mut v: Vec<String> = match fs::read_dir(self.path(rel)) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_under_the_root() {
        let r = Root::new("/fixtures/pi4");
        assert_eq!(
            r.path("/proc/meminfo"),
            Path::new("/fixtures/pi4/proc/meminfo")
        );
        assert_eq!(
            r.path("etc/os-release"),
            Path::new("/fixtures/pi4/etc/os-release")
        );
        assert!(Root::system().is_system());
    }
}
