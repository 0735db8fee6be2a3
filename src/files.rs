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
        // A new file only: a leftover (or a planted symlink) is removed, never written through.
        let mut f = create_new(&tmp, mode).ctx_path(step, &tmp)?;
        f.write_all(data).ctx_path(step, &tmp)?;
        f.sync_all().ctx_path(step, &tmp)?;
        fs::rename(&tmp, path).ctx_path(step, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` as a new file with exactly `mode`, for writing: a leftover of an earlier run
/// (or a symlink planted there) is removed first, and the open never follows a symlink
/// (O_CREAT|O_EXCL|O_NOFOLLOW).
pub fn create_new(path: &Path, mode: u32) -> std::io::Result<File> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(mode)
        .open(path)?;
    // The mode given to open() is reduced by the umask: set it exactly.
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(f)
}

/// Refuses a directory that a user other than root, the effective user or the user who ran
/// `sudo` (`SUDO_UID`) can write into, or rename, like sshd's StrictModes: the directory must
/// belong to one of them and not be group- or world-writable, and so must every directory
/// above it (there a sticky bit, as on /tmp, is enough). takeover keeps the image, the
/// staged config.json and the backup there; another user who can write it could swap them.
pub fn check_trusted_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let step = "checking who can write the work directory";
    let abs = fs::canonicalize(dir).ctx_path(step, dir)?;
    let euid = crate::sys::geteuid();
    let sudo = std::env::var("SUDO_UID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    let trusted = |uid: u32| uid == 0 || uid == euid || Some(uid) == sudo;
    for (i, d) in abs.ancestors().enumerate() {
        let md = fs::metadata(d).ctx_path(step, d)?;
        let mode = md.mode() & 0o7777;
        let why = if !trusted(md.uid()) {
            format!(
                "it belongs to user {}, who could change what takeover keeps there",
                md.uid()
            )
        } else if mode & 0o022 != 0 && (i == 0 || mode & 0o1000 == 0) {
            format!("its mode {mode:04o} lets other users write into it")
        } else {
            continue;
        };
        let what = if i == 0 {
            d.display().to_string()
        } else {
            format!(
                "{} (above the work directory {})",
                d.display(),
                abs.display()
            )
        };
        return Err(Error::new(step, what, why).hint(
            "use a work directory (-w) that only root (or you) can write, e.g. `mkdir -m 700 /root/takeover-work`, or fix the mode with `chmod go-w`",
        ));
    }
    Ok(())
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

    #[test]
    fn a_work_dir_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let base = crate::testutil::temp_dir("trust", "test");
        let w = base.join("work");
        fs::create_dir_all(&w).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&w, fs::Permissions::from_mode(0o755)).unwrap();
        let ok = check_trusted_dir(&w);
        fs::set_permissions(&w, fs::Permissions::from_mode(0o777)).unwrap();
        let world = check_trusted_dir(&w).map_err(|e| e.to_string());
        // Sticky (like /tmp) is not enough for the work dir itself...
        fs::set_permissions(&w, fs::Permissions::from_mode(0o1777)).unwrap();
        let sticky = check_trusted_dir(&w).map_err(|e| e.to_string());
        // ...but a group-writable directory above it is refused too, a sticky one is not.
        fs::set_permissions(&w, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o775)).unwrap();
        let above = check_trusted_dir(&w).map_err(|e| e.to_string());
        fs::set_permissions(&base, fs::Permissions::from_mode(0o1777)).unwrap();
        let above_sticky = check_trusted_dir(&w);
        fs::remove_dir_all(&base).unwrap();
        ok.unwrap();
        let e = world.unwrap_err();
        assert!(e.contains("work directory") && e.contains("0777"), "{e}");
        assert!(!e.contains("directory the work directory"), "{e}");
        assert!(sticky.is_err());
        let e = above.unwrap_err();
        assert!(
            e.contains("above the work directory") && e.contains("0775"),
            "{e}"
        );
        above_sticky.unwrap();
    }

    #[test]
    fn private_writes_never_follow_a_planted_temp_symlink() {
        let dir = crate::testutil::temp_dir("plant", "test");
        let victim = dir.join("victim");
        fs::write(&victim, b"keep").unwrap();
        let p = dir.join("config.json");
        let tmp = dir.join(format!(".config.json.tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        write_private(&p, b"{}").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(&p).unwrap(), b"{}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
