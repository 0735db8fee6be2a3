//! `--write-only`: write an image onto a device or an image file and configure it as stage 2
//! would, without taking over this system. For preparing media offline.
//!
//! Networks come only from `--nwmgr-cfg` (this machine's own wifi networks are not the
//! device's); the hostname only from config.json; the backup from `--backup-cfg`.
//!
//! The whole image is proven before the first byte of the target changes: `verify::prepare`
//! decodes all of it (CRC-32/ISIZE, zip CRC), checks its layout, device type, size against the
//! target and `--image-sha256`, and extracts the inner image of a flasher image. A corrupt or
//! truncated image, or one larger than the target, leaves the target byte-identical. An
//! existing non-empty target file is a fixed size like a disk: a larger image is refused, the
//! file is never grown (an empty or new file grows to the image's size).
//!
//! Then the image is decoded a second time on its way to the target, and the same checks
//! ([`StreamCheck`]) see every byte again (the file could change between the passes): the
//! first MiB (partition table) is read and checked before anything is written and held back
//! by the flash step; the rest is written and read back; then CRC-32/ISIZE, the layout and the
//! device type (read from the boot partition as written, the held-back head overlaid) must all
//! hold before the first MiB is written. On a failure there the target holds no partition
//! table.
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::payload::{self, Payload, Source};
use crate::cli::Options;
use crate::config::ConfigJson;
use crate::configure;
use crate::error::{Context, Error, Result};
use crate::flash::{self, FlashOptions, FlashStats, HEAD};
use crate::image::source::{open_image, ImageReader};
use crate::image::verify::{self, Prepared, StreamCheck, Verified, VerifyOptions};
use crate::probe::{self, Root};
use crate::report::{Report, Target};

/// Runs `--write-only`: image checked while written, payload staged and written, as stage 2
/// would.
pub fn run(opts: &Options, report: &mut Report) -> Result<()> {
    let (Some(image_path), Some(target), Some(cfg_path)) =
        (&opts.image, &opts.flash_to, &opts.config)
    else {
        return Err(Error::usage(
            "--write-only",
            "needs -i IMAGE -f DEVICE_OR_FILE -c CONFIG_JSON",
        ));
    };
    let _lock = super::lock::acquire(opts)?;
    let config = ConfigJson::load(cfg_path)?;
    let is_block = check_target(target)?;
    let target_size = fixed_size(target, is_block)?;
    let vo = VerifyOptions {
        target_size,
        expected_sha256: opts.image_sha256.clone(),
        expected_device_type: super::image_device_type(opts, &config)?,
        work_dir: opts.work_dir(),
    };
    // Kept to the end of the run: an inner image extracted from a flasher image is removed
    // when it is dropped.
    let (prepared, vo) = verify_first(image_path, target, vo)?;
    let pass = with_target_hint(Pass::open(&prepared.image, &vo), target)?;
    // Stage the payload exactly as for a migration.
    let staging = opts.work_dir().join(super::migrate::STAGING_DIR);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).ctx_path("cleaning", &staging)?;
    }
    // A failure from here on leaves no staging dir (it holds config.json) behind.
    let _staged = (!opts.no_cleanup).then(|| super::lock::StagingGuard::new(&staging));
    let (payload, _) = payload::stage(opts, Source::GivenOnly, config, &staging, report)?;
    let created = create_target(target, is_block)?;
    let o = FlashOptions {
        limit: target_size,
        expected_bytes: Some(prepared.verified.uncompressed_bytes),
        ..Default::default()
    };
    let written = write_image(pass, &prepared.image, target, created.is_some(), &o, &vo)?;
    report_written(report, target, written)?;
    report.staged_files = configure_disk(target, &staging, &payload)?;
    std::fs::remove_dir_all(&staging).ctx_path("cleaning", &staging)?;
    if let Some(c) = created {
        std::mem::forget(c);
    }
    crate::info!(
        "{} is ready: balenaOS written, verified and configured",
        target.display()
    );
    Ok(())
}

/// `--flash-to` names a block device not in use (returns true), or a regular file (existing
/// or not, outside /dev).
fn check_target(target: &Path) -> Result<bool> {
    let is_block = std::fs::metadata(target)
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false);
    if is_block {
        refuse_if_in_use(target)?;
    } else if !target.exists() && target.starts_with("/dev") {
        // A mistyped device name would otherwise become a regular file in /dev (RAM).
        return Err(
            Error::new("checking --flash-to", target.display(), "no such device")
                .hint("name an existing whole disk (see `lsblk`), or a regular file outside /dev"),
        );
    } else if target.exists() && !target.is_file() {
        return Err(Error::new(
            "checking --flash-to",
            target.display(),
            "is neither a block device nor a regular file",
        ));
    }
    Ok(is_block)
}

/// The whole image, proven before anything is written (a flasher image's inner image
/// extracted); returns it and the options for the checks of the write pass. No SHA-256
/// unless `--image-sha256` asks for one, as in the write pass.
fn verify_first(
    image_path: &Path,
    target: &Path,
    vo: VerifyOptions,
) -> Result<(Prepared, VerifyOptions)> {
    // The size is checked on the image to write: a flasher image is larger than the image
    // inside it.
    let any_size = VerifyOptions {
        target_size: None,
        ..vo.clone()
    };
    let prepared = verify::prepare_hashing(image_path, &any_size, 6, false)?;
    let vo = VerifyOptions {
        // Of the file given, checked by `prepare`; not of an inner image.
        expected_sha256: vo.expected_sha256.filter(|_| prepared.flasher.is_none()),
        ..vo
    };
    let checked = verify::check(&prepared.image, &prepared.verified, &vo);
    with_target_hint(checked, target)?;
    Ok((prepared, vo))
}

/// The size an image must fit: a block device's, or an existing non-empty file's (written
/// in place like a disk, never grown). `None`: a new or empty file, which grows.
fn fixed_size(target: &Path, is_block: bool) -> Result<Option<u64>> {
    if !is_block && !target.exists() {
        return Ok(None);
    }
    let size = flash::target_size(target)?;
    Ok((is_block || size > 0).then_some(size))
}

/// An image too large for the target: the hint names the target.
fn with_target_hint<T>(r: Result<T>, target: &Path) -> Result<T> {
    r.map_err(|e| {
        if e.step == verify::SIZE_STEP {
            let hint = format!(
                "{} is too small for it: use a larger disk or image file (-f), an empty or new file (it grows), or an image for this device",
                target.display()
            );
            e.hint(hint)
        } else {
            e
        }
    })
}

/// A target file that does not exist yet is created (and removed again unless the run
/// succeeds).
fn create_target(target: &Path, is_block: bool) -> Result<Option<RemoveOnDrop>> {
    let created = (!is_block && !target.exists()).then(|| RemoveOnDrop(target.to_path_buf()));
    if created.is_some() {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(target)
            .ctx_path("creating", target)?;
    }
    Ok(created)
}

/// What was written: the flash statistics, the verified image and the file it came from.
struct Written {
    stats: FlashStats,
    verified: Verified,
    image: PathBuf,
}

/// Writes the proven image (a flasher image's inner image), checking it again as it goes by.
fn write_image(
    pass: Pass,
    image_path: &Path,
    target: &Path,
    created: bool,
    o: &FlashOptions,
    vo: &VerifyOptions,
) -> Result<Written> {
    match pass.write(target, created, o, vo)? {
        Some((stats, verified)) => Ok(Written {
            stats,
            verified,
            image: image_path.to_path_buf(),
        }),
        // `prepare` unwrapped a flasher image already; this one changed since.
        None => Err(Error::new(
            "checking the image layout",
            image_path.display(),
            "the image turned into a flasher image after it was verified (changed while in use?)",
        )
        .hint("check the file given with -i and try again")),
    }
}

fn report_written(report: &mut Report, target: &Path, w: Written) -> Result<()> {
    report.image = Some(w.verified.to_report(&w.image));
    crate::info!(
        "wrote and verified {} MiB at {:.0} MB/s (read-back {:.1} s)",
        w.stats.bytes >> 20,
        w.stats.write_mb_per_s(),
        w.stats.verify_secs.unwrap_or(0.0)
    );
    report.target = Some(Target {
        device: Some(target.display().to_string()),
        size_bytes: Some(flash::target_size(target)?),
        efi: false,
        secure_boot: false,
    });
    Ok(())
}

/// Writes the payload onto the new disk; returns the files written ("boot/config.json", ...).
fn configure_disk(target: &Path, staging: &Path, payload: &Payload) -> Result<Vec<String>> {
    let layout = configure::find_layout(target)?;
    let mut staged = Vec::new();
    for f in configure::write_boot(target, &layout, &payload.boot)? {
        staged.push(format!("boot/{f}"));
    }
    if std::fs::read_dir(&payload.data)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        let mp = staging.join("mnt-data");
        let files =
            configure::with_data_partition(target, &layout, Path::new("/dev"), &mp, |root| {
                configure::copy_data(&payload.data, root)
            })?;
        staged.extend(files.into_iter().map(|f| format!("data/{f}")));
    }
    Ok(staged)
}

/// Removes a target file this run created, unless the run succeeded (then forgotten).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What the decoder thread and the caller share about the pass.
struct Shared {
    check: Option<StreamCheck>,
    /// Why the pass stopped: the image is bad (names the image and the check).
    failed: Option<Error>,
    /// The image is a flasher image: stopped so that the caller extracts the inner one.
    flasher: bool,
}

fn lock(s: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A poisoned lock needs a panic while it is held; with panic=abort there is none, and
    // the data stays consistent either way (plain fields).
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The decoded image on its way to the flash step: every byte read passes the checks first.
/// A failed check ends the stream with an error; the reason is kept in [`Shared`].
struct Tee {
    img: ImageReader,
    shared: Arc<Mutex<Shared>>,
}

impl Tee {
    fn stop(&self, why: &str) -> io::Error {
        io::Error::other(format!("image check: {why}"))
    }
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.img.read(buf);
        let shared = self.shared.clone();
        let mut g = lock(&shared);
        let s = &mut *g;
        let Some(check) = s.check.as_mut() else {
            return Err(self.stop("stopped"));
        };
        let n = match got {
            Ok(n) => n,
            Err(e) => {
                s.failed = Some(check.decode_error(e));
                return Err(self.stop("decode failed"));
            }
        };
        if let Err(e) = check.feed(&buf[..n]) {
            s.failed = Some(e);
            return Err(self.stop("failed"));
        }
        if let Some(e) = check.take_table_error() {
            // Decode the rest (nothing more is written): corrupt data is the better
            // explanation of a broken table, as in `verify::scan`.
            loop {
                match self.img.read(buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(d) if d.kind() == io::ErrorKind::Interrupted => {}
                    Err(d) => {
                        s.failed = Some(check.decode_error(d));
                        return Err(self.stop("decode failed"));
                    }
                }
            }
            s.failed = Some(e);
            return Err(self.stop("bad partition table"));
        }
        if check.looks_like_flasher() {
            s.flasher = true;
            return Err(self.stop("flasher image"));
        }
        Ok(n)
    }
}

/// One pass over an image: opened, its first MiB read and checked, ready to be written.
struct Pass {
    path: PathBuf,
    tee: Tee,
    head: Vec<u8>,
}

impl Pass {
    /// Opens `path` and reads its first MiB through the checks: a broken partition table or
    /// one that does not fit `vo.target_size` is refused here, before anything is written.
    fn open(path: &Path, vo: &VerifyOptions) -> Result<Pass> {
        let img = open_image(path)?;
        crate::info!(
            "writing image {} ({}, {}), checking it again on its way",
            path.display(),
            crate::progress::mib(img.compressed_bytes),
            img.format.as_str()
        );
        let check = StreamCheck::new(&img, vo, false, false)?;
        let shared = Arc::new(Mutex::new(Shared {
            check: Some(check),
            failed: None,
            flasher: false,
        }));
        let mut tee = Tee { img, shared };
        let mut head = vec![0u8; HEAD];
        let mut got = 0;
        while got < HEAD {
            match tee.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let mut s = lock(&tee.shared);
                    return Err(s
                        .failed
                        .take()
                        .unwrap_or_else(|| Error::io("reading image", path.display(), e)));
                }
            }
        }
        head.truncate(got);
        if let Some(c) = lock(&tee.shared).check.as_ref() {
            c.check_known_fit()?;
        }
        Ok(Pass {
            path: path.to_path_buf(),
            tee,
            head,
        })
    }

    /// Writes the image onto `target` (`created`: by this run, removed if it fails); `None`
    /// when it turned out to be a flasher image (the target then holds no partition table).
    fn write(
        self,
        target: &Path,
        created: bool,
        o: &FlashOptions,
        vo: &VerifyOptions,
    ) -> Result<Option<(FlashStats, Verified)>> {
        let Pass { path, tee, head } = self;
        let shared = tee.shared.clone();
        // The progress lines are the flash step's own.
        let mut progress = |_: u64| {};
        let target_name = target.display().to_string();
        let mut verified = None;
        let mut commit = |head: &[u8]| -> Result<()> {
            let check = lock(&shared).check.take();
            let Some(check) = check else {
                return Err(Error::new(
                    "verifying",
                    path.display(),
                    "the checks ended early",
                ));
            };
            let staged = flash::Staged::open(target, head)?;
            let v = check.finish_reading_boot(staged, &target_name)?;
            verify::check(&path, &v, vo)?;
            verified = Some(v);
            Ok(())
        };
        crate::info!("writing {} to {}", path.display(), target.display());
        let src = io::Cursor::new(head).chain(tee);
        let result = flash::flash_with(src, target, o, &mut progress, &mut commit);
        let mut s = lock(&shared);
        match (result, verified) {
            (Ok(st), Some(v)) => Ok(Some((st, v))),
            (Ok(_), None) => Err(Error::new(
                "verifying",
                path.display(),
                "the image was written without being checked",
            )),
            (Err(_), _) if s.flasher => Ok(None),
            (Err(e), _) => {
                let mut e = s.failed.take().unwrap_or(e);
                // The first MiB was never written; zero the last MiB again too: a GPT image's
                // backup header was written at the image's end, which is the end of a target
                // file grown to the image's size.
                if let Err(z) = flash::invalidate_table(target) {
                    crate::warn!("{}: could not zero its ends again: {z}", target.display());
                }
                // The hint of an image error says "nothing was changed": true of the image,
                // not of the target, whose first MiB was zeroed and the rest partly written.
                let note = if created {
                    format!("{} (created by this run) was removed", target.display())
                } else {
                    format!(
                        "{} holds no partition table now (partly written)",
                        target.display()
                    )
                };
                e.hint = Some(match e.hint.take() {
                    Some(h) => format!("{}; {note}", h.trim_end_matches("; nothing was changed")),
                    None => note,
                });
                Err(e)
            }
        }
    }
}

/// Refuses a block device that holds a mounted filesystem (this system's own disk, say).
fn refuse_if_in_use(target: &Path) -> Result<()> {
    refuse_if_used(&probe::probe(&Root::system()), target)
}

/// [`refuse_if_in_use`] on a probe: the target must be a whole disk with 512-byte sectors,
/// with nothing of it mounted, no stacked device (LVM/dm, LUKS, md) on it and no active swap
/// partition.
fn refuse_if_used(p: &probe::Probe, target: &Path) -> Result<()> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(disk) = p.disks.iter().find(|d| d.name == name) else {
        return Err(Error::new(
            "checking --flash-to",
            target.display(),
            "not a whole disk in /sys/block",
        )
        .hint("name a whole disk such as /dev/sdb, not a partition"));
    };
    let mounted: Vec<String> = p
        .mounts
        .iter()
        .flatten()
        .filter(|m| {
            (m.major == disk.major && m.minor == disk.minor)
                || disk
                    .partitions
                    .iter()
                    .any(|q| q.major == m.major && q.minor == m.minor)
        })
        .map(|m| m.mount_point.clone())
        .collect();
    if !mounted.is_empty() {
        return Err(Error::new(
            "checking --flash-to",
            target.display(),
            format!("is in use: mounted at {}", mounted.join(", ")),
        )
        .hint("unmount it first; --write-only never writes a disk that is in use"));
    }
    let held = probe::target::held_by(p, disk);
    if !held.is_empty() {
        return Err(Error::new(
            "checking --flash-to",
            target.display(),
            format!("is in use: {}", held.join("; ")),
        )
        .hint(
            "stop what uses it first (vgchange -an VG, cryptsetup close NAME, mdadm --stop \
             /dev/mdN, swapoff DEVICE); --write-only never writes a disk that is in use",
        ));
    }
    probe::target::check_sector_size(disk, "checking --flash-to")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A directory with fake balenaOS images from tests/tools/mkimage.sh (64 MiB, gzip).
    fn images(tag: &str, variants: &[&str]) -> Option<PathBuf> {
        let dir = std::env::temp_dir().join(format!("takeover-wo-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/mkimage.sh");
        for v in variants {
            let ok = Command::new("bash")
                .arg(&script)
                .args(["--size", "64", "--variant", v])
                .arg(dir.join(v))
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if !ok {
                eprintln!("SKIP: tests/tools/mkimage.sh failed (mkfs.vfat, mkfs.ext4, sfdisk?)");
                return None;
            }
        }
        Some(dir)
    }

    fn vo(dir: &Path, dt: &str) -> VerifyOptions {
        VerifyOptions {
            expected_device_type: Some(dt.into()),
            ..VerifyOptions::new(dir)
        }
    }

    #[test]
    fn a_disk_held_by_lvm_or_swap_is_refused_naming_the_holder() {
        let (_, mut p) = crate::testutil::sysroot_fixture("x86-ubuntu-lvm-root");
        // Nothing of sda mounted directly: only the volume group on sda3 holds it.
        p.mounts
            .as_mut()
            .unwrap()
            .retain(|m| !m.source.starts_with("/dev/sda"));
        let e = refuse_if_used(&p, Path::new("/dev/sda")).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("in use") && m.contains("dm-0 (ubuntu--vg-ubuntu--lv) over sda3"),
            "{m}"
        );
        assert!(m.contains("vgchange"), "{m}");
        // Without the volume, an active swap partition alone is enough.
        p.disks.retain(|d| d.name != "dm-0");
        p.swaps.as_mut().unwrap().push(crate::probe::mounts::Swap {
            name: "/dev/sda1".into(),
            kind: "partition".into(),
            size_bytes: 1 << 30,
            used_bytes: 0,
        });
        let e = refuse_if_used(&p, Path::new("/dev/sda")).unwrap_err();
        assert!(e.to_string().contains("active swap /dev/sda1"), "{e}");
        p.swaps = Some(vec![]);
        assert!(refuse_if_used(&p, Path::new("/dev/sda")).is_ok());
        // 4Kn.
        let i = p.disks.iter().position(|d| d.name == "sda").unwrap();
        p.disks[i].logical_block_size = 4096;
        let e = refuse_if_used(&p, Path::new("/dev/sda")).unwrap_err();
        assert!(e.to_string().contains("4096-byte logical sectors"), "{e}");
    }

    fn has_table(p: &Path) -> bool {
        let b = std::fs::read(p).unwrap();
        b.len() >= 512 && b[510] == 0x55 && b[511] == 0xaa
    }

    fn write(img: &Path, t: &Path, vo: &VerifyOptions) -> Result<Option<(FlashStats, Verified)>> {
        let o = FlashOptions {
            limit: vo.target_size,
            ..Default::default()
        };
        Pass::open(img, vo)?.write(t, false, &o, vo)
    }

    #[test]
    fn one_pass_writes_a_good_image_and_never_commits_a_bad_one() {
        let Some(d) = images("pass", &["mbr", "gpt", "flasher"]) else {
            return;
        };
        let dt = "genericx86-64-ext";
        let good = d.join("mbr.img.gz");
        let t = d.join("target.img");
        std::fs::write(&t, vec![0xEE; 8 << 20]).unwrap();

        // Good: written, table committed, the device type read back from the target.
        let (st, v) = write(&good, &t, &vo(&d, dt)).unwrap().unwrap();
        assert_eq!(st.bytes, 64 << 20);
        assert_eq!(v.device_type.as_deref(), Some(dt));
        assert_eq!(v.layout, verify::Layout::Balena);
        assert!(v.sha256.is_empty(), "no checksum asked for, none computed");
        assert!(has_table(&t));
        let raw = std::fs::read(d.join("mbr.img")).unwrap();
        assert!(std::fs::read(&t).unwrap() == raw);

        // Wrong device type: refused after the write, no partition table left.
        let e = write(&good, &t, &vo(&d, "intel-nuc")).unwrap_err();
        assert!(e.to_string().contains("intel-nuc"), "{e}");
        assert!(e.to_string().contains("mbr.img.gz"), "{e}");
        assert!(!has_table(&t));

        // Wrong checksum: the same.
        let mut o = vo(&d, dt);
        o.expected_sha256 = Some("00".repeat(32));
        let e = write(&good, &t, &o).unwrap_err();
        assert!(e.to_string().contains("SHA-256"), "{e}");
        assert!(!has_table(&t));

        // Corrupt data: the decoder's CRC check, no table.
        let mut gz = std::fs::read(&good).unwrap();
        let mid = gz.len() / 2;
        gz[mid] ^= 0xff;
        let bad = d.join("corrupt.img.gz");
        std::fs::write(&bad, &gz).unwrap();
        let e = write(&bad, &t, &vo(&d, dt)).unwrap_err();
        assert!(e.to_string().contains("corrupt.img.gz"), "{e}");
        assert!(
            e.hint
                .as_deref()
                .unwrap_or("")
                .contains("no partition table"),
            "{e}"
        );
        assert!(!has_table(&t));

        // Too large for the target: refused before anything is written.
        std::fs::write(&t, vec![0xEE; 8 << 20]).unwrap();
        let mut o = vo(&d, dt);
        o.target_size = Some(32 << 20);
        let e = write(&good, &t, &o).unwrap_err();
        assert!(
            e.to_string().contains("the target disk is too small"),
            "{e}"
        );
        assert!(std::fs::read(&t).unwrap().iter().all(|&b| b == 0xEE));

        // GPT, refused, onto a target of the image's size: neither header is left.
        std::fs::write(&t, vec![0xEE; 64 << 20]).unwrap();
        let e = write(&d.join("gpt.img.gz"), &t, &vo(&d, "intel-nuc")).unwrap_err();
        assert!(e.to_string().contains("intel-nuc"), "{e}");
        let b = std::fs::read(&t).unwrap();
        assert!(!has_table(&t));
        assert!(!b[512..].starts_with(b"EFI PART"));
        assert!(
            !b[b.len() - 512..].starts_with(b"EFI PART"),
            "backup GPT left"
        );
        let (_, v) = write(&d.join("gpt.img.gz"), &t, &vo(&d, dt))
            .unwrap()
            .unwrap();
        assert_eq!(v.table, "gpt");
        assert!(std::fs::read(&t).unwrap()[512..].starts_with(b"EFI PART"));

        // A flasher image stops the pass (the caller extracts its inner image).
        assert!(write(&d.join("flasher.img.gz"), &t, &vo(&d, dt))
            .unwrap()
            .is_none());
        assert!(!has_table(&t));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
