//! Opening an image file: the format is detected by magic bytes, not by the file name.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Context, Error, Result};
use crate::formats::gzip::GzDecoder;
use crate::formats::zip;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Zip,
    Raw,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Zip => "zip",
            Format::Raw => "raw",
        }
    }
}

/// Counts the bytes read from the file (for progress).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// The decoded disk image of a file, as a stream.
pub struct ImageReader {
    pub path: PathBuf,
    pub format: Format,
    /// Size of the file as given.
    pub compressed_bytes: u64,
    /// For zip: the entry holding the image.
    pub entry: Option<String>,
    /// For zip and raw: the decoded size known in advance.
    pub expected_size: Option<u64>,
    inner: Box<dyn BufRead + Send>,
    read: Arc<AtomicU64>,
}

impl ImageReader {
    /// Bytes of the file read so far (compressed), for progress against `compressed_bytes`.
    pub fn file_bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for ImageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("compressed_bytes", &self.compressed_bytes)
            .field("entry", &self.entry)
            .finish()
    }
}

impl Read for ImageReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl BufRead for ImageReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt)
    }
}

/// Hint for an image file that is broken.
pub const HINT_REDOWNLOAD: &str =
    "download the image again (or check the file given with -i); nothing was changed";

/// Opens an image: gzip (`1f 8b`), zip (`PK 03 04`) or a raw disk image (must start with an
/// MBR or GPT protective MBR, `55 AA` at byte 510).
pub fn open_image(path: &Path) -> Result<ImageReader> {
    let step = "opening image";
    let mut f = File::open(path).ctx_path(step, path)?;
    let len = f.metadata().ctx_path(step, path)?.len();
    let mut head = [0u8; 512];
    let mut got = 0;
    while got < head.len() {
        let n = f.read(&mut head[got..]).ctx_path(step, path)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    f.seek(SeekFrom::Start(0)).ctx_path(step, path)?;
    let head = &head[..got];
    let read = Arc::new(AtomicU64::new(0));
    let mk = |format, entry, expected_size, inner| ImageReader {
        path: path.to_path_buf(),
        format,
        compressed_bytes: len,
        entry,
        expected_size,
        inner,
        read: read.clone(),
    };
    let counted = |f: File| Counting {
        inner: f,
        count: read.clone(),
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(mk(
            Format::Gzip,
            None,
            None,
            Box::new(GzDecoder::new(counted(f))),
        ));
    }
    if head.starts_with(b"PK\x03\x04") {
        let entries = zip::entries(&mut f).map_err(|e| {
            Error::io("reading the zip archive", path.display(), e).hint(HINT_REDOWNLOAD)
        })?;
        let e = zip::pick_image(&f, &entries).map_err(|e| {
            Error::io("choosing the image in the zip archive", path.display(), e)
                .hint("extract the disk image and pass it with -i, or download the image again")
        })?;
        let r = zip::open_entry(counted(f), &e).map_err(|err| {
            Error::io(
                "opening the zip entry",
                format!("{} ({})", path.display(), e.name),
                err,
            )
            .hint(HINT_REDOWNLOAD)
        })?;
        return Ok(mk(Format::Zip, Some(e.name.clone()), Some(e.size), r));
    }
    if got == 512 && head[510] == 0x55 && head[511] == 0xaa {
        return Ok(mk(
            Format::Raw,
            None,
            Some(len),
            Box::new(BufReader::with_capacity(1 << 20, counted(f))),
        ));
    }
    Err(Error::new(
        step,
        path.display(),
        "not a gzip, zip or raw disk image (no gzip or zip magic, and no partition table signature 55 AA at byte 510)",
    )
    .hint("pass the balenaOS image (.img.gz, .zip or .img) downloaded from the dashboard"))
}
