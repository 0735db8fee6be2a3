//! Small file helpers shared by every step: bounded reads, private (0600) writes.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Context, Error, Result};

/// Reads a whole file that must not be larger than `max` bytes (config files, sysfs values).
pub fn read_limited(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let step = format!("reading {what}");
    let f = File::open(path).ctx_path(&step, path)?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .ctx_path(&step, path)?;
    if buf.len() as u64 > max {
        return Err(Error::new(
            step,
            path.display(),
            format!("file is larger than {max} bytes"),
        )
        .hint("check that the path names the right file"));
    }
    Ok(buf)
}

/// Writes `data` to `path` with mode 0600 (the file may hold secrets), replacing it atomically:
/// the data goes to a temporary file in the same directory, is synced, then renamed.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    write_with_mode(path, data, 0o600)
}

/// Like [`write_private`] with an explicit mode.
pub fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let step = "writing";
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .ctx_path(step, &tmp)?;
        // The mode given to open() is reduced by the umask: set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .ctx_path(step, &tmp)?;
        f.write_all(data).ctx_path(step, &tmp)?;
        f.sync_all().ctx_path(step, &tmp)?;
        fs::rename(&tmp, path).ctx_path(step, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates a directory and its parents with mode 0700.
pub fn create_private_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).ctx_path("creating directory", path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).ctx_path("setting mode of", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_write_is_0600_and_bounded_read_refuses_large() {
        let dir = std::env::temp_dir().join(format!("takeover-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("secret.json");
        write_private(&p, b"{\"apiKey\":\"x\"}").unwrap();
        let m = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o600);
        assert_eq!(read_limited(&p, 100, "config").unwrap().len(), 14);
        let e = read_limited(&p, 10, "config").unwrap_err();
        assert!(e.to_string().contains("larger than 10 bytes"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
