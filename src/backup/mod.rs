//! Backup of application data into `backup.tgz` (one top-level folder per balena volume).
//!
//! `--backup-cfg FILE` names a YAML list of volumes and items ([`config`]). [`create`] plans
//! the archive ([`walk`]), writes `<work_dir>/backup.tgz` (mode 0600) through a temporary name,
//! reads the whole archive back with our own gzip and tar readers and compares every entry with
//! the plan (path, type, size, link target, CRC-32 of the content), and only then renames it
//! into place. The balena supervisor restores each top-level folder into the volume of the same
//! name (reference §8.5).
//!
//! Internal tar always: the reference's external path (a temp tree of symlinks archived with
//! `tar -h`) dereferences every symlink, cannot keep empty directories apart from filtered ones,
//! and wrote into the current directory (§15.3 #20). Reproducing `target` renames and filters
//! with the system tar would need GNU-only `--transform` expressions per item (busybox tar on
//! many devices has none) and would still follow or not follow symlinks differently. So both
//! `--tar-internal` and the default use the internal writer; the option is accepted for
//! compatibility. The archive lands in the work dir either way.
#![forbid(unsafe_code)]

pub mod config;
pub mod walk;

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Context, Error, Result};
use crate::formats::crc32::Crc32;
use crate::formats::gzip::{GzDecoder, GzEncoder};
use crate::formats::tar;

/// File name of the archive in the work dir (and at the root of the data partition).
pub const ARCHIVE_NAME: &str = "backup.tgz";

const BUF: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, Default)]
pub struct BackupOptions {
    /// `--tar-internal`. The internal writer is used in every case (see module docs).
    pub tar_internal: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupSummary {
    /// `<work_dir>/backup.tgz`.
    pub path: PathBuf,
    /// Size of the compressed archive.
    pub bytes: u64,
    /// Files, symlinks and hard links archived (directories not counted).
    pub files: u64,
    /// Bytes of file content archived (each inode once).
    pub content_bytes: u64,
    pub volumes: Vec<String>,
    pub warnings: Vec<String>,
}

impl BackupSummary {
    pub fn to_report(&self) -> crate::report::Backup {
        crate::report::Backup {
            bytes: self.bytes,
            files: self.files,
            volumes: self.volumes.clone(),
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An upper bound of the size of `backup.tgz` for the configuration, for the early RAM-budget
/// check: the exact uncompressed tar size (headers, content, padding) plus deflate's worst case
/// for incompressible data (stored blocks: 5 bytes per block of at most 64 KiB; we allow 0.1 %)
/// plus 64 KiB slack for the gzip framing. Walks the sources like [`create`] (so every error
/// `create` would give about the configuration or an unreadable file comes here already).
/// `work_dir` is excluded from the walk as in [`create`].
pub fn estimate(cfg_path: &Path, work_dir: &Path) -> Result<u64> {
    let cfg = config::load(cfg_path)?;
    let plan = walk::manifest(&cfg, now(), Some(work_dir))?;
    Ok(archive_upper_bound(plan.tar_bytes()))
}

fn archive_upper_bound(tar_bytes: u64) -> u64 {
    tar_bytes + tar_bytes / 1000 + 64 * 1024
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Refuses a backup that does not fit the RAM left for it in stage 2.
pub fn check_budget(archive_bytes: u64, available: u64) -> Result<()> {
    if archive_bytes <= available {
        return Ok(());
    }
    Err(Error::new(
        "checking the backup against the RAM budget",
        ARCHIVE_NAME,
        format!(
            "the backup needs {} ({archive_bytes} bytes) but only {} ({available} bytes) of RAM \
             are left for it in stage 2",
            mib(archive_bytes),
            mib(available)
        ),
    )
    .hint(
        "stage 2 holds the image and the backup in RAM: back up less (narrow the items or add \
         a filter) and move the rest off the device before migrating",
    ))
}

/// Builds `<work_dir>/backup.tgz` from the configuration at `cfg_path` and verifies it.
pub fn create(cfg_path: &Path, work_dir: &Path, opts: &BackupOptions) -> Result<BackupSummary> {
    let cfg = config::load(cfg_path)?;
    if !opts.tar_internal {
        crate::debug!("building the backup with the internal tar writer (used in every case)");
    }
    let plan = walk::manifest(&cfg, now(), Some(work_dir))?;
    for w in &plan.warnings {
        crate::warn!("backup: {w}");
    }
    let dest = work_dir.join(ARCHIVE_NAME);
    let tmp = work_dir.join(format!(".{ARCHIVE_NAME}.tmp{}", std::process::id()));
    crate::info!(
        "writing backup {} ({} volumes, {} files, {} of content)",
        dest.display(),
        plan.volumes.len(),
        plan.files(),
        mib(plan.content_bytes())
    );
    let result = write_and_verify(&plan, &tmp);
    let (bytes, grew) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = fs::rename(&tmp, &dest).ctx_path("renaming the backup to", &dest) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename durable: the work dir is on the disk stage 2 reads it from.
    if let Ok(d) = File::open(work_dir) {
        let _ = d.sync_all();
    }
    let mut warnings = plan.warnings.clone();
    for g in grew {
        let w = format!("{g} grew while it was archived; the first part (as planned) was stored");
        crate::warn!("backup: {w}");
        warnings.push(w);
    }
    crate::info!(
        "backup {} written and verified: {} ({bytes} bytes)",
        dest.display(),
        mib(bytes)
    );
    Ok(BackupSummary {
        path: dest,
        bytes,
        files: plan.files(),
        content_bytes: plan.content_bytes(),
        volumes: plan.volumes.clone(),
        warnings,
    })
}

/// Writes the archive to `tmp` (0600), syncs it, verifies it; returns its size and the files
/// that grew while being read.
fn write_and_verify(plan: &walk::Manifest, tmp: &Path) -> Result<(u64, Vec<String>)> {
    let step = "writing the backup";
    // A new file only: a leftover (or a symlink planted in the work dir) is removed first,
    // never followed or written through.
    let f = crate::files::create_new(tmp, 0o600).ctx_path(step, tmp)?;
    let counted = Counting {
        inner: BufWriter::with_capacity(BUF, f),
        bytes: 0,
    };
    let gzw = GzEncoder::new(counted, 6).ctx_path(step, tmp)?;
    let mut tw = tar::Writer::new(gzw);
    let mut crcs: Vec<Option<u32>> = Vec::with_capacity(plan.entries.len());
    let mut grew = Vec::new();
    let mut buf = vec![0u8; BUF];
    for e in &plan.entries {
        tw.begin(&e.header()).ctx_path(step, tmp)?;
        if e.kind == walk::Kind::File {
            let (crc, more) = copy_file(e, &mut tw, &mut buf, tmp)?;
            crcs.push(Some(crc));
            if more {
                grew.push(
                    e.source
                        .as_deref()
                        .unwrap_or(Path::new("?"))
                        .display()
                        .to_string(),
                );
            }
        } else {
            crcs.push(None);
        }
        tw.end().ctx_path(step, tmp)?;
    }
    let gzw = tw.finish().ctx_path(step, tmp)?;
    let Counting { inner: bw, bytes } = gzw.finish().ctx_path(step, tmp)?;
    let f = bw
        .into_inner()
        .map_err(|e| Error::io(step, tmp.display(), e.into_error()))?;
    f.sync_all().ctx_path(step, tmp)?;
    drop(f);
    let on_disk = fs::metadata(tmp).ctx_path(step, tmp)?.len();
    if on_disk != bytes {
        return Err(Error::new(
            "verifying the backup",
            tmp.display(),
            format!("{bytes} bytes were written but the file has {on_disk}"),
        ));
    }
    verify(plan, &crcs, tmp)?;
    Ok((bytes, grew))
}

/// Copies exactly `e.size` bytes of the entry's source into the archive; returns the CRC-32
/// of what was stored and whether the file had more data than planned.
fn copy_file<W: io::Write>(
    e: &walk::Entry,
    tw: &mut tar::Writer<W>,
    buf: &mut [u8],
    tmp: &Path,
) -> Result<(u32, bool)> {
    let src = e.source.as_deref().unwrap_or(Path::new(""));
    let step = "reading backup source";
    let mut f = open_planned(e, src)?;
    let mut crc = Crc32::new();
    let mut left = e.size;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = match f.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Error::new(
                    step,
                    src.display(),
                    format!(
                        "the file shrank by {left} bytes while it was archived (planned {} bytes)",
                        e.size
                    ),
                )
                .hint("stop the application writing it, then run takeover again"))
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(Error::io(step, src.display(), err)),
        };
        crc.update(&buf[..n]);
        tw.data(&buf[..n]).ctx_path("writing the backup", tmp)?;
        left -= n as u64;
    }
    let mut probe = [0u8; 1];
    let more = matches!(f.read(&mut probe), Ok(n) if n > 0);
    Ok((crc.finish(), more))
}

/// Opens a planned file without following a symlink at its last component (O_NOFOLLOW) and
/// checks that it is still the inode the plan saw: a path swapped for a symlink or another
/// file after planning is refused, never archived.
fn open_planned(e: &walk::Entry, src: &Path) -> Result<File> {
    use std::os::unix::fs::MetadataExt;
    let step = "reading backup source";
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(src)
        .map_err(|err| {
            if err.raw_os_error() == Some(libc::ELOOP) {
                Error::new(
                    step,
                    src.display(),
                    "it was replaced by a symlink after planning",
                )
                .hint("something is changing the backup sources: stop it, then run takeover again")
            } else {
                Error::io(step, src.display(), err)
            }
        })?;
    let md = f.metadata().ctx_path(step, src)?;
    if let Some((dev, ino)) = e.inode() {
        if (md.dev(), md.ino()) != (dev, ino) || !md.is_file() {
            return Err(Error::new(
                step,
                src.display(),
                format!(
                    "it is no longer the planned file (device {dev} inode {ino}; now device {} inode {})",
                    md.dev(),
                    md.ino()
                ),
            )
            .hint("something is changing the backup sources: stop it, then run takeover again"));
        }
    }
    Ok(f)
}

/// Reads the archive back and compares it entry by entry with the plan.
fn verify(plan: &walk::Manifest, crcs: &[Option<u32>], path: &Path) -> Result<()> {
    let step = "verifying the backup";
    let f = File::open(path).ctx_path(step, path)?;
    let gzr = GzDecoder::new(io::BufReader::with_capacity(BUF, f));
    let mut r = tar::Reader::new(gzr);
    let mut n = 0usize;
    let mismatch = |entry: &walk::Entry, what: String| {
        Error::new(
            step,
            path.display(),
            format!("entry {:?}: {what}", entry.display_path()),
        )
        .hint("the archive does not read back as written: check the disk of the work dir")
    };
    while let Some(got) = r.next() {
        let got = got.ctx_path(step, path)?;
        let Some(want) = plan.entries.get(n) else {
            return Err(Error::new(
                step,
                path.display(),
                format!("more entries than the {} written", plan.entries.len()),
            ));
        };
        let h = want.header();
        let mut want_path = h.path.to_vec();
        if h.kind == tar::Kind::Dir {
            want_path.push(b'/');
        }
        if got.path != want_path {
            return Err(mismatch(
                want,
                format!("read back as {:?}", String::from_utf8_lossy(&got.path)),
            ));
        }
        if got.kind != h.kind || got.size != h.size || got.link != h.link {
            return Err(mismatch(
                want,
                format!(
                    "read back as {:?} of {} bytes linking to {:?}",
                    got.kind,
                    got.size,
                    String::from_utf8_lossy(&got.link)
                ),
            ));
        }
        if got.mode != h.mode || got.mtime != h.mtime || got.uid != h.uid || got.gid != h.gid {
            return Err(mismatch(want, "mode, owner or mtime differ".into()));
        }
        let mut sink = CrcSink(Crc32::new());
        let len = r.read_data(&mut sink).ctx_path(step, path)?;
        if len != h.size {
            return Err(mismatch(want, format!("{len} bytes of data read back")));
        }
        if let Some(Some(crc)) = crcs.get(n) {
            if sink.0.finish() != *crc {
                return Err(mismatch(
                    want,
                    "content differs from what was written".into(),
                ));
            }
        }
        n += 1;
    }
    // Read to the end of the gzip stream so that its CRC-32 and ISIZE are checked too.
    io::copy(&mut r.into_inner(), &mut io::sink()).ctx_path(step, path)?;
    if n != plan.entries.len() {
        return Err(Error::new(
            step,
            path.display(),
            format!("{n} entries read back, {} written", plan.entries.len()),
        ));
    }
    Ok(())
}

struct CrcSink(Crc32);

impl io::Write for CrcSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts the bytes written through it (the archive size, checked against the file).
struct Counting<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
