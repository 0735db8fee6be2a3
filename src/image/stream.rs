//! Image verification: one streaming pass over the decoded image, before anything destructive.
//!
//! The pass decodes every byte (gzip CRC-32/ISIZE of every member, or the zip entry's CRC-32),
//! counts the decoded size, parses the partition table from the bytes as they go by, probes
//! each partition's filesystem type and label from its first sectors, and copies the boot
//! partition (at most [`MAX_BOOT_CAPTURE`]) into a temporary file in the work dir, from which
//! `device-type.json` and `os-release` are read with the FAT reader. The SHA-256 of the file as
//! given runs at the same time on a second thread that reads the file itself.
//!
//! [`StreamCheck`] is that pass fed chunk by chunk: [`scan`] drives it over a whole image;
//! `--write-only` drives it from the flash pipeline (one decode for checks and write), and
//! reads the boot partition back from the target instead of copying it.
//! Memory: the decoder's buffers, the first MiB of the image and a few KiB per partition.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::boot::{read_boot, BootInfo};
use super::source::{open_image, ImageReader, HINT_REDOWNLOAD};
use super::verified::*;
use crate::error::{Context, Error, Result};
use crate::formats::fslabel::{self, PROBE_BYTES};
use crate::formats::hex;
use crate::formats::partition::{is_extended, Kind, Partition, PartitionTable, TableScan};
use crate::formats::sha256::Sha256;
use crate::progress::Meter;

/// Largest boot partition copied out for reading `device-type.json`.
pub const MAX_BOOT_CAPTURE: u64 = 128 << 20;
/// The first bytes of the image kept in memory (partition-table structures are read from it).
const HEAD_BYTES: usize = 1 << 20;

/// A byte range of the decoded image to be collected as it streams by.
struct Region {
    off: u64,
    len: usize,
    data: Vec<u8>,
}

impl Region {
    /// Starts collecting; bytes before `pos` come from `head` when they are there.
    fn new(off: u64, len: usize, head: &[u8], pos: u64) -> std::result::Result<Region, String> {
        let mut r = Region {
            off,
            len,
            data: Vec::with_capacity(len),
        };
        if off < pos {
            let h = head.len() as u64;
            if off + len as u64 > h && pos > h {
                return Err(format!(
                    "a partition-table structure at byte {off} lies before data already decoded \
                     (byte {pos}); the table is out of order"
                ));
            }
            let end = (off + len as u64).min(pos).min(h);
            r.data.extend_from_slice(&head[off as usize..end as usize]);
        }
        Ok(r)
    }

    /// Takes what it needs from `chunk` (which starts at image byte `at`); true when complete.
    fn take(&mut self, at: u64, chunk: &[u8]) -> bool {
        let want_from = self.off + self.data.len() as u64;
        let want_to = self.off + self.len as u64;
        let end = at + chunk.len() as u64;
        if want_from < want_to && want_from >= at && want_from < end {
            let s = (want_from - at) as usize;
            let e = (want_to.min(end) - at) as usize;
            self.data.extend_from_slice(&chunk[s..e]);
        }
        self.done()
    }

    fn done(&self) -> bool {
        self.data.len() >= self.len
    }
}

struct Probe {
    part: Partition,
    region: Region,
    info: Option<(&'static str, Option<String>)>,
}

struct Capture {
    part: Partition,
    file: File,
    path: PathBuf,
    written: u64,
    /// Removes the file if the pass ends before the copy is used.
    guard: TempFile,
}

fn is_boot_label(p: &Partition, info: &(&'static str, Option<String>)) -> bool {
    let names = [info.1.as_deref(), p.name.as_deref()];
    info.0 == "vfat"
        && names
            .iter()
            .any(|n| matches!(n, Some("resin-boot") | Some("flash-boot")))
}

/// SHA-256 of a file on a second thread (the page cache makes the second read cheap);
/// `hashed` counts the bytes hashed so far (progress).
fn spawn_sha(
    path: &Path,
    stop: Arc<AtomicBool>,
    hashed: Arc<AtomicU64>,
) -> thread::JoinHandle<std::io::Result<String>> {
    let path = path.to_path_buf();
    thread::spawn(move || {
        let mut f = File::open(&path)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut h = Sha256::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(std::io::Error::other("cancelled"));
            }
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
            hashed.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(hex::encode(&h.finish()))
    })
}

/// Stops the hash thread when the pass fails early.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What the pass learns from the bytes going by: the partition table, filesystem probes and
/// the boot partition copy.
struct Collector {
    obj: String,
    work_dir: PathBuf,
    /// Copy the boot partition into the work dir (else only remember where it is).
    capture_boot: bool,
    /// The boot partition when it is not copied.
    boot_part: Option<Partition>,
    head: Vec<u8>,
    scan: Option<TableScan>,
    region: Option<Region>,
    table: Option<PartitionTable>,
    probes: Vec<Probe>,
    capture: Option<Capture>,
    captured: Option<(Partition, PathBuf, TempFile)>,
    boot_note: Option<String>,
}

impl Collector {
    fn table_err(&self, msg: String) -> Error {
        Error::new("reading the image partition table", &self.obj, msg)
            .hint("download the image again; if it keeps failing, the file is not a balenaOS image")
    }

    /// Processes the decoded bytes `chunk`, which start at image byte `pos`.
    fn chunk(&mut self, pos: u64, chunk: &[u8]) -> Result<()> {
        let n = chunk.len();
        if self.head.len() < HEAD_BYTES {
            let k = (HEAD_BYTES - self.head.len()).min(n);
            self.head.extend_from_slice(&chunk[..k]);
        }
        if self.region.is_none() && self.scan.is_some() && pos == 0 {
            let (off, len) = (0, crate::formats::partition::FIRST_REGION);
            self.region =
                Some(Region::new(off, len, &self.head, pos).map_err(|m| self.table_err(m))?);
        }
        // Partition table structures.
        while let Some(r) = self.region.as_mut() {
            if !r.take(pos, chunk) {
                break;
            }
            let data = std::mem::take(&mut r.data);
            self.region = None;
            self.feed_table(&data, pos)?;
        }
        // Filesystem probes, and the start of the boot partition copy.
        for i in 0..self.probes.len() {
            let p = &mut self.probes[i];
            if p.info.is_some() || !p.region.take(pos, chunk) {
                continue;
            }
            let fs = fslabel::probe(&p.region.data);
            let info = (fs.fstype, fs.label);
            let boot = is_boot_label(&p.part, &info);
            p.info = Some(info);
            let free =
                self.capture.is_none() && self.captured.is_none() && self.boot_part.is_none();
            if boot && free {
                if self.capture_boot {
                    self.start_capture(i, pos)?;
                } else {
                    self.boot_part = Some(self.probes[i].part.clone());
                }
            }
        }
        if let Some(c) = self.capture.as_mut() {
            let from = c.part.start + c.written;
            let to = c.part.end();
            let end = pos + n as u64;
            if from >= pos && from < end {
                let s = (from - pos) as usize;
                let e = (to.min(end) - pos) as usize;
                c.file
                    .write_all(&chunk[s..e])
                    .ctx_path("writing", &c.path)?;
                c.written += (e - s) as u64;
            }
            if c.written >= c.part.size {
                if let Some(c) = self.capture.take() {
                    c.file.sync_all().ok();
                    self.captured = Some((c.part, c.path, c.guard));
                }
            }
        }
        Ok(())
    }

    fn feed_table(&mut self, data: &[u8], pos: u64) -> Result<()> {
        let Some(s) = self.scan.as_mut() else {
            return Ok(());
        };
        if let Err(m) = s.feed(data) {
            return Err(self.table_err(m));
        }
        // Probe every partition as soon as it is known (primaries before the logical chain).
        let known: Vec<Partition> = s.partitions().to_vec();
        let wants = s.wants();
        for p in known {
            if self.probes.iter().any(|q| q.part.index == p.index) {
                continue;
            }
            if matches!(p.kind, Kind::Mbr(t) if is_extended(t)) {
                self.probes.push(Probe {
                    part: p,
                    region: Region {
                        off: 0,
                        len: 0,
                        data: Vec::new(),
                    },
                    info: Some(("extended", None)),
                });
                continue;
            }
            let len = p.size.min(PROBE_BYTES as u64) as usize;
            let reg = Region::new(p.start, len, &self.head, pos).map_err(|m| self.table_err(m))?;
            self.probes.push(Probe {
                part: p,
                region: reg,
                info: None,
            });
        }
        match wants {
            Some((off, len)) => {
                self.region =
                    Some(Region::new(off, len, &self.head, pos).map_err(|m| self.table_err(m))?);
            }
            None => {
                if let Some(s) = self.scan.take() {
                    self.table = Some(s.finish().map_err(|m| self.table_err(m))?);
                }
            }
        }
        Ok(())
    }

    fn start_capture(&mut self, i: usize, pos: u64) -> Result<()> {
        let p = &self.probes[i];
        if p.part.size > MAX_BOOT_CAPTURE {
            self.boot_note = Some(format!(
                "the boot partition is {} bytes, more than the {MAX_BOOT_CAPTURE} read",
                p.part.size
            ));
            return Ok(());
        }
        // Bytes of the partition before `pos` were seen already: they are in the probe.
        let seen = pos.saturating_sub(p.part.start);
        if seen > p.region.data.len() as u64 {
            self.boot_note = Some("the boot partition lies before the partition table".into());
            return Ok(());
        }
        let tmp = self
            .work_dir
            .join(format!(".takeover-boot-{}.img", std::process::id()));
        let mut file =
            File::create(&tmp).ctx_path("creating a temporary file in the work dir", &tmp)?;
        let guard = TempFile(tmp.clone());
        file.write_all(&p.region.data[..seen as usize])
            .ctx_path("writing", &tmp)?;
        self.capture = Some(Capture {
            part: p.part.clone(),
            file,
            path: tmp,
            written: seen,
            guard,
        });
        Ok(())
    }

    /// End of the stream: finishes whatever waits for bytes that never came.
    fn end(&mut self, pos: u64) -> Result<PartitionTable> {
        if let Some(r) = self.region.take() {
            let data = r.data;
            self.feed_table(&data, pos)?;
            if let Some(s) = &self.scan {
                let at = s.wants().map(|w| w.0).unwrap_or(0);
                return Err(self.table_err(format!(
                    "the partition table refers to byte {at} but the image ends at byte {pos}"
                )));
            }
        }
        let cut = self.capture.take().map(|c| c.part);
        let cut = cut.or_else(|| self.boot_part.take_if(|p| p.end() > pos));
        if let Some(p) = cut {
            self.boot_note = Some(format!(
                "the boot partition (p{}) ends at byte {}, after the end of the image ({pos})",
                p.index,
                p.end()
            ));
        }
        self.table
            .take()
            .ok_or_else(|| self.table_err("no partition table found".into()))
    }
}

/// The checks of one streaming pass, fed with the decoded image chunk by chunk: the partition
/// table, filesystem probes, the boot partition (copied to the work dir, or only located so
/// that the caller reads it back from where it wrote the image), the decoded size against the
/// target, and the SHA-256 of the file on a second thread. [`scan`] drives it over a whole
/// image; `--write-only` drives it from the flash pipeline, so the image is decoded once.
pub struct StreamCheck {
    c: Collector,
    t0: Instant,
    format: &'static str,
    compressed_bytes: u64,
    target_size: Option<u64>,
    pos: u64,
    /// A partition-table error: kept while decoding goes on, since a decode error found later
    /// (corrupt data) is the better explanation.
    deferred: Option<Error>,
    sha: Option<Sha>,
    /// When the decoder reached the end of the image (the decode rate leaves out the wait for
    /// the hash thread).
    decoded_in: Option<Duration>,
}

/// The hash thread: its handle, its stop flag, the bytes it hashed so far.
struct Sha {
    handle: thread::JoinHandle<std::io::Result<String>>,
    _stop: StopOnDrop,
    hashed: Arc<AtomicU64>,
}

impl StreamCheck {
    /// Starts the checks of the image `img` (opened, nothing read yet). `capture_boot`: copy
    /// the boot partition into `o.work_dir` (else see [`StreamCheck::finish_reading_boot`]).
    /// `hash_file`: compute the SHA-256 of the file (it is always computed when
    /// `o.expected_sha256` is set). Refuses at once an image whose size, known in advance (zip,
    /// raw), exceeds `o.target_size`.
    pub fn new(
        img: &ImageReader,
        o: &VerifyOptions,
        capture_boot: bool,
        hash_file: bool,
    ) -> Result<StreamCheck> {
        let obj = img.path.display().to_string();
        if let (Some(t), Some(size)) = (o.target_size, img.expected_size) {
            if size > t {
                return Err(too_big(&obj, size, t));
            }
        }
        let sha = (hash_file || o.expected_sha256.is_some()).then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let hashed = Arc::new(AtomicU64::new(0));
            Sha {
                handle: spawn_sha(&img.path, stop.clone(), hashed.clone()),
                _stop: StopOnDrop(stop),
                hashed,
            }
        });
        Ok(StreamCheck {
            c: Collector {
                obj,
                work_dir: o.work_dir.clone(),
                capture_boot,
                boot_part: None,
                head: Vec::with_capacity(HEAD_BYTES),
                scan: Some(TableScan::new()),
                region: None,
                table: None,
                probes: Vec::new(),
                capture: None,
                captured: None,
                boot_note: None,
            },
            t0: Instant::now(),
            format: img.format.as_str(),
            compressed_bytes: img.compressed_bytes,
            target_size: o.target_size,
            pos: 0,
            deferred: None,
            sha,
            decoded_in: None,
        })
    }

    /// Of the file's bytes, how many both the decoder (`file_read` of them so far) and the
    /// hash thread (when there is one) have been through: the progress of the verification.
    pub fn file_bytes_checked(&self, file_read: u64) -> u64 {
        match &self.sha {
            Some(s) => file_read.min(s.hashed.load(Ordering::Relaxed)),
            None => file_read,
        }
    }

    /// The decoder reached the end of the image; returns true while the hash thread still runs.
    pub fn end_of_stream(&mut self) -> bool {
        self.decoded_in.get_or_insert(self.t0.elapsed());
        self.sha.as_ref().is_some_and(|s| !s.handle.is_finished())
    }

    /// Decoded bytes seen so far.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Takes the next decoded bytes. An error is final (the image is larger than the target);
    /// a partition-table error is kept for [`StreamCheck::table_error`] and the end.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        let (pos, n) = (self.pos, chunk.len() as u64);
        if self.deferred.is_none() {
            if let Err(e) = self.c.chunk(pos, chunk) {
                // Keep decoding: the data may be corrupt, which is the better explanation.
                self.c.capture = None;
                self.deferred = Some(e);
            }
        }
        if let Some(t) = self.target_size {
            if pos + n > t {
                return Err(Error::new(
                    SIZE_STEP,
                    &self.c.obj,
                    format!(
                        "the target disk is too small: the image is larger than the target disk, more than {} bytes decoded, the disk has {t} bytes",
                        pos + n
                    ),
                )
                .hint("use a larger disk (-f) or an image for this device"));
            }
        }
        self.pos += n;
        Ok(())
    }

    /// The error for a failed decode (CRC, truncation): it wins over a table error.
    pub fn decode_error(&self, e: std::io::Error) -> Error {
        let mut err = Error::io("decoding the image", &self.c.obj, e).hint(HINT_REDOWNLOAD);
        err.cause
            .push_str(&format!(" ({} bytes decoded before the error)", self.pos));
        err
    }

    /// Takes the partition-table error found so far, if any (a pass that stops early reports
    /// it, unless decoding the rest of the image fails: see [`StreamCheck::decode_error`]).
    pub fn take_table_error(&mut self) -> Option<Error> {
        self.deferred.take()
    }

    /// True once a partition labelled like a flasher image's (flash-boot, flash-rootA) is seen.
    pub fn looks_like_flasher(&self) -> bool {
        self.c.probes.iter().any(|p| {
            let label = p.info.as_ref().and_then(|i| i.1.as_deref());
            [label, p.part.name.as_deref()]
                .iter()
                .any(|l| l.is_some_and(|l| FLASHER_LABELS.contains(&l)))
        })
    }

    /// The size check on the partitions known so far (all primaries once the first MiB is
    /// through): refuses a table that does not fit the target before anything is written.
    pub fn check_known_fit(&self) -> Result<()> {
        let known = match (&self.c.table, &self.c.scan) {
            (Some(t), _) => t.partitions.as_slice(),
            (None, Some(s)) => s.partitions(),
            (None, None) => &[],
        };
        let need = known.iter().map(|p| p.end()).max().unwrap_or(0);
        match self.target_size {
            Some(size) if need > size => Err(too_big(&self.c.obj, need, size)),
            _ => Ok(()),
        }
    }

    /// End of a [`scan`]: the boot partition is read from its copy in the work dir.
    pub fn finish(self) -> Result<Verified> {
        self.finish_with(|c| match &c.captured {
            Some((part, tmp, _guard)) => {
                let f = File::open(tmp).ctx_path("opening", tmp)?;
                read_boot(f, 0, part.size, &tmp.display().to_string()).map(Some)
            }
            None => Ok(None),
        })
    }

    /// End of a pass that wrote the image: the boot partition is read from `dev`, a view of
    /// the decoded image (the target, with whatever was held back overlaid), named `name`.
    pub fn finish_reading_boot<D: Read + Seek>(self, dev: D, name: &str) -> Result<Verified> {
        self.finish_with(|c| match &c.boot_part {
            Some(p) => read_boot(dev, p.start, p.size, name).map(Some),
            None => Ok(None),
        })
    }

    fn finish_with(
        mut self,
        read: impl FnOnce(&Collector) -> Result<Option<BootInfo>>,
    ) -> Result<Verified> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let pos = self.pos;
        let c = &mut self.c;
        let table = c.end(pos)?;
        let partitions: Vec<PartInfo> = table
            .partitions
            .iter()
            .map(|p| {
                let info = c
                    .probes
                    .iter()
                    .find(|q| q.part.index == p.index)
                    .and_then(|q| {
                        q.info.clone().or_else(|| {
                            // Cut short by the end of the image.
                            (!q.region.data.is_empty()).then(|| {
                                let f = fslabel::probe(&q.region.data);
                                (f.fstype, f.label)
                            })
                        })
                    })
                    .unwrap_or(("unknown", None));
                let ext_features = c
                    .probes
                    .iter()
                    .find(|q| q.part.index == p.index)
                    .and_then(|q| fslabel::ext_features(&q.region.data));
                PartInfo {
                    part: p.clone(),
                    fstype: info.0,
                    label: info.1,
                    ext_features,
                }
            })
            .collect();
        let layout = layout_of(&partitions);

        let (mut device_type, mut boot_version, mut boot_note) = (None, None, c.boot_note.take());
        match read(c) {
            Ok(Some((dt, ver, note))) => {
                device_type = dt;
                boot_version = ver;
                if note.is_some() {
                    boot_note = note;
                }
            }
            Ok(None) if boot_note.is_none() => {
                boot_note = Some("no resin-boot (vfat) partition found".into())
            }
            Ok(None) => {}
            Err(e) => boot_note = Some(e.message()),
        }

        let decode_secs = self
            .decoded_in
            .unwrap_or_else(|| self.t0.elapsed())
            .as_secs_f64()
            .max(1e-9);
        let sha256 = match self.sha.take() {
            None => String::new(),
            Some(s) => match s.handle.join() {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => return Err(Error::io("hashing the image", &self.c.obj, e)),
                Err(_) => {
                    return Err(Error::new(
                        "hashing the image",
                        &self.c.obj,
                        "the hashing thread failed",
                    ))
                }
            },
        };
        Ok(Verified {
            format: self.format,
            compressed_bytes: self.compressed_bytes,
            uncompressed_bytes: pos,
            sha256,
            table: table.table.as_str().into(),
            partitions,
            table_end: table.end,
            layout,
            device_type,
            boot_version,
            mb_per_s: pos as f64 / decode_secs / 1e6,
            boot_note,
        })
    }
}

/// The streaming pass: decodes everything, refuses corrupt data, gathers what [`check`] needs.
/// A decode error (CRC, truncation) wins over a partition-table error found earlier in the
/// same stream, since corrupt data explains a broken table.
pub fn scan(path: &Path, o: &VerifyOptions) -> Result<Verified> {
    scan_hashing(path, o, true)
}

/// [`scan`]; `hash_file`: compute the file's SHA-256 even when `o` expects none (for the
/// report).
pub fn scan_hashing(path: &Path, o: &VerifyOptions, hash_file: bool) -> Result<Verified> {
    let mut img = open_image(path)?;
    let mut sc = StreamCheck::new(&img, o, true, hash_file)?;
    crate::info!(
        "verifying image {} ({}, {}; decoded in full)",
        path.display(),
        crate::progress::mib(img.compressed_bytes),
        img.format.as_str()
    );
    let mut meter = Meter::new("verifying", Some(img.compressed_bytes));
    loop {
        meter.update(sc.file_bytes_checked(img.file_bytes_read()));
        let chunk = match img.fill_buf() {
            Ok(ch) => ch,
            Err(e) => return Err(sc.decode_error(e)),
        };
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        sc.feed(chunk)?;
        img.consume(n);
    }
    // The hash thread may still run (a raw image decodes faster than SHA-256): its progress.
    while sc.end_of_stream() {
        meter.update(sc.file_bytes_checked(img.file_bytes_read()));
        thread::sleep(Duration::from_millis(100));
    }
    let v = sc.finish()?;
    meter.finish(img.compressed_bytes);
    Ok(v)
}
