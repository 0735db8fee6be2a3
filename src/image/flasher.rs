//! Flasher images: the balenaOS installer image whose `flash-rootA` holds the real OS image as
//! `/opt/<name>.balenaos-img`. Flashing the flasher itself onto the disk would install the
//! installer; instead the inner image is extracted into the work dir (gzip-compressed) and then
//! verified like any image.
#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::source::{open_image, Format, HINT_REDOWNLOAD};
use super::verified::{TempFile, Verified};
use crate::error::{Context, Error, Result};
use crate::formats::ext4::Ext4;
use crate::formats::gzip::GzEncoder;

/// Label of the flasher's root partition holding the inner image.
pub const FLASHER_ROOT: &str = "flash-rootA";
/// Inner image name suffixes (current, and resinOS-era).
pub const INNER_SUFFIXES: [&str; 2] = [".balenaos-img", ".resinos-img"];

const BUF: usize = 1 << 20;

/// Copies image bytes `[start, start+len)` of the decoded image at `path` into `dst`, leaving
/// all-zero 4 KiB blocks as holes (the copy is sparse).
fn copy_partition(path: &Path, start: u64, len: u64, dst: &Path) -> Result<()> {
    let mut img = open_image(path)?;
    let mut out = File::create(dst).ctx_path("creating", dst)?;
    out.set_len(len).ctx_path("sizing", dst)?;
    let mut pos = 0u64;
    let end = start + len;
    let obj = path.display().to_string();
    loop {
        let chunk = img
            .fill_buf()
            .map_err(|e| Error::io("decoding the flasher image", &obj, e).hint(HINT_REDOWNLOAD))?;
        if chunk.is_empty() || pos >= end {
            break;
        }
        let n = chunk.len();
        let (c0, c1) = (pos.max(start), (pos + n as u64).min(end));
        if c0 < c1 {
            let data = &chunk[(c0 - pos) as usize..(c1 - pos) as usize];
            let mut at = c0 - start;
            for block in data.chunks(4096) {
                if block.iter().any(|&b| b != 0) {
                    out.seek(SeekFrom::Start(at)).ctx_path("writing", dst)?;
                    out.write_all(block).ctx_path("writing", dst)?;
                }
                at += block.len() as u64;
            }
        }
        pos += n as u64;
        img.consume(n);
    }
    if pos < end {
        return Err(Error::new(
            "extracting the flasher root partition",
            &obj,
            format!("the partition ends at byte {end} but the image ends at byte {pos}"),
        )
        .hint(HINT_REDOWNLOAD));
    }
    Ok(())
}

/// Extracts the inner OS image of the flasher image at `path` (already scanned as `v`) into
/// `work_dir` as `<name>.from-flasher.img.gz` (gzip level `level`) and returns its path.
pub fn extract_inner(path: &Path, v: &Verified, work_dir: &Path, level: u8) -> Result<PathBuf> {
    let obj = path.display().to_string();
    let step = "extracting the inner image of the flasher image";
    let part = v
        .find(FLASHER_ROOT)
        .ok_or_else(|| Error::new(step, &obj, format!("no partition labelled {FLASHER_ROOT}")))?;
    if part.fstype != "ext4" && part.fstype != "ext3" && part.fstype != "ext2" {
        return Err(Error::new(
            step,
            &obj,
            format!("{FLASHER_ROOT} is {}, not ext4", part.fstype),
        ));
    }
    let (start, size) = (part.part.start, part.part.size);
    let mut _guard = None;
    let (dev, base) = if v.format == Format::Raw.as_str() {
        (File::open(path).ctx_path("opening", path)?, start)
    } else {
        let tmp = work_dir.join(format!(".takeover-flasher-root-{}.img", std::process::id()));
        _guard = Some(TempFile(tmp.clone()));
        crate::info!(
            "copying {FLASHER_ROOT} ({size} bytes) of {obj} into {}",
            tmp.display()
        );
        copy_partition(path, start, size, &tmp)?;
        (File::open(&tmp).ctx_path("opening", &tmp)?, 0)
    };
    let ext_err = |e: std::io::Error| {
        Error::io(step, format!("{obj} ({FLASHER_ROOT})"), e)
            .hint("extract the inner image (/opt/*.balenaos-img) by hand and pass it with -i, or let takeover download the raw image")
    };
    let mut fs = Ext4::open(dev, base, size).map_err(ext_err)?;
    let opt = fs.lookup("/opt").map_err(ext_err)?;
    let names: Vec<_> = fs
        .read_dir(&opt)
        .map_err(ext_err)?
        .into_iter()
        .filter(|e| INNER_SUFFIXES.iter().any(|s| e.name.ends_with(s)))
        .collect();
    let entry = match names.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::new(
                step,
                &obj,
                format!("no /opt/*.balenaos-img in {FLASHER_ROOT}"),
            )
            .hint("pass the balenaOS image itself with -i, or let takeover download it"))
        }
        many => {
            return Err(Error::new(
                step,
                &obj,
                format!(
                    "several inner images in /opt: {}",
                    many.iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    };
    let ino = fs.inode(entry.inode).map_err(ext_err)?;
    if !ino.is_file() {
        return Err(Error::new(
            step,
            &obj,
            format!("/opt/{} is not a regular file", entry.name),
        ));
    }
    if ino.size > size {
        return Err(Error::new(
            step,
            &obj,
            format!(
                "/opt/{} says it is {} bytes, more than its {size}-byte partition (corrupt)",
                entry.name, ino.size
            ),
        )
        .hint(HINT_REDOWNLOAD));
    }
    let stem = INNER_SUFFIXES
        .iter()
        .find_map(|s| entry.name.strip_suffix(s))
        .unwrap_or(&entry.name);
    let dst = work_dir.join(format!("{stem}.from-flasher.img.gz"));
    let partial = work_dir.join(format!("{stem}.from-flasher.img.gz.partial"));
    crate::info!(
        "extracting /opt/{} ({} bytes) from the flasher image into {}",
        entry.name,
        ino.size,
        dst.display()
    );
    let result = (|| -> Result<()> {
        let out = File::create(&partial).ctx_path("creating", &partial)?;
        let mut enc = GzEncoder::new(std::io::BufWriter::with_capacity(BUF, out), level)
            .ctx_path("writing", &partial)?;
        let mut r = fs.open_file(&ino).map_err(ext_err)?;
        let mut buf = vec![0u8; BUF];
        let mut total = 0u64;
        let mut meter = crate::progress::Meter::new("extracting", Some(ino.size));
        loop {
            let n = r.read(&mut buf).map_err(ext_err)?;
            if n == 0 {
                break;
            }
            enc.write_all(&buf[..n]).ctx_path("writing", &partial)?;
            total += n as u64;
            meter.update(total);
        }
        meter.finish(total);
        if total != ino.size {
            return Err(Error::new(
                step,
                &obj,
                format!("read {total} of {} bytes", ino.size),
            ));
        }
        let w = enc.finish().ctx_path("writing", &partial)?;
        let f = w
            .into_inner()
            .map_err(|e| Error::io("writing", partial.display(), e.into_error()))?;
        f.sync_all().ctx_path("writing", &partial)?;
        fs::rename(&partial, &dst).ctx_path("renaming", &partial)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result.map(|()| dst)
}
