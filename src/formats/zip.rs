//! The dashboard's `.zip` download: one disk image inside a zip archive.
//!
//! The central directory (found through the end-of-central-directory record, zip64 aware) names
//! the entries; exactly one must be the disk image. Its data is streamed (deflate or stored)
//! with the CRC-32 and size from the central directory checked at the end, so a data descriptor
//! after the data needs no special handling.
#![forbid(unsafe_code)]

use super::le::{le16, le32, le64};

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use super::crc32::crc32;
use super::gzip::{check_entry, GzDecoder};

/// One file in the archive, from the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// 0 stored, 8 deflate.
    pub method: u16,
    pub crc: u32,
    pub compressed: u64,
    pub size: u64,
    pub local_offset: u64,
    pub flags: u16,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn read_at<F: Read + Seek>(f: &mut F, off: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    f.seek(SeekFrom::Start(off))?;
    f.read_exact(&mut b).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                e.kind(),
                format!("the zip archive is truncated: {len} bytes at byte {off} are missing"),
            )
        } else {
            e
        }
    })?;
    Ok(b)
}

/// Reads the central directory.
pub fn entries<F: Read + Seek>(f: &mut F) -> io::Result<Vec<Entry>> {
    let len = f.seek(SeekFrom::End(0))?;
    let tail_len = len.min(65_557) as usize;
    let tail_start = len - tail_len as u64;
    let tail = read_at(f, tail_start, tail_len)?;
    let eocd = (0..tail_len.saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == *b"PK\x05\x06")
        .ok_or_else(|| {
            bad(
                "no end-of-central-directory record: the zip archive is truncated or not a zip"
                    .into(),
            )
        })?;
    let e = &tail[eocd..];
    let mut count = u64::from(le16(e, 10));
    let mut cd_size = u64::from(le32(e, 12));
    let mut cd_off = u64::from(le32(e, 16));
    // zip64: a locator sits just before the EOCD record.
    if eocd >= 20 && tail[eocd - 20..eocd - 16] == *b"PK\x06\x07" {
        let z64_off = le64(&tail, eocd - 20 + 8);
        let r = read_at(f, z64_off, 56)?;
        if r[..4] != *b"PK\x06\x06" {
            return Err(bad(format!(
                "the zip64 end-of-central-directory record at byte {z64_off} is missing"
            )));
        }
        count = le64(&r, 32);
        cd_size = le64(&r, 40);
        cd_off = le64(&r, 48);
    }
    if cd_size > 64 << 20 || count > 100_000 {
        return Err(bad(format!(
            "the zip central directory is implausibly large ({count} entries, {cd_size} bytes)"
        )));
    }
    let cd = read_at(f, cd_off, cd_size as usize)?;
    let mut out = Vec::new();
    let mut p = 0usize;
    for i in 0..count {
        if p + 46 > cd.len() || cd[p..p + 4] != *b"PK\x01\x02" {
            return Err(bad(format!(
                "zip central directory entry {} at byte {} is corrupt",
                i + 1,
                cd_off.saturating_add(p as u64)
            )));
        }
        let h = &cd[p..];
        let n = usize::from(le16(h, 28));
        let x = usize::from(le16(h, 30));
        let c = usize::from(le16(h, 32));
        if p + 46 + n + x + c > cd.len() {
            return Err(bad(format!(
                "zip central directory entry {} at byte {} runs past the directory",
                i + 1,
                cd_off.saturating_add(p as u64)
            )));
        }
        let name = String::from_utf8_lossy(&h[46..46 + n]).into_owned();
        let mut ent = Entry {
            name,
            method: le16(h, 10),
            flags: le16(h, 8),
            crc: le32(h, 16),
            compressed: u64::from(le32(h, 20)),
            size: u64::from(le32(h, 24)),
            local_offset: u64::from(le32(h, 42)),
        };
        // zip64 extended information: only the fields that are 0xFFFFFFFF, in this order.
        let mut extra = &h[46 + n..46 + n + x];
        while extra.len() >= 4 {
            let id = le16(extra, 0);
            let sz = usize::from(le16(extra, 2));
            let body = &extra[4..(4 + sz).min(extra.len())];
            if id == 1 {
                let mut q = 0;
                for field in [&mut ent.size, &mut ent.compressed, &mut ent.local_offset] {
                    if *field == 0xffff_ffff && q + 8 <= body.len() {
                        *field = le64(body, q);
                        q += 8;
                    }
                }
            }
            extra = &extra[(4 + sz).min(extra.len())..];
        }
        out.push(ent);
        p += 46 + n + x + c;
    }
    Ok(out)
}

/// Byte offset of an entry's data (after its local header).
fn data_offset<F: Read + Seek>(f: &mut F, e: &Entry) -> io::Result<u64> {
    let h = read_at(f, e.local_offset, 30)?;
    if h[..4] != *b"PK\x03\x04" {
        return Err(bad(format!(
            "the local header of zip entry {} at byte {} is missing",
            e.name, e.local_offset
        )));
    }
    e.local_offset
        .checked_add(30 + u64::from(le16(&h, 26)) + u64::from(le16(&h, 28)))
        .ok_or_else(|| bad(format!("zip entry {} has an invalid offset", e.name)))
}

/// Stored entry: counts and checks CRC-32 and size at the end.
struct Stored<R> {
    inner: R,
    crc: u32,
    size: u64,
    want: (u32, u64),
    done: bool,
}

impl<R: Read> Read for Stored<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.done = true;
            check_entry(self.want.0, self.want.1, self.crc, self.size)?;
        }
        self.crc = crc32(self.crc, &buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Opens an entry's decoded data.
pub fn open_entry<F: Read + Seek + Send + 'static>(
    mut f: F,
    e: &Entry,
) -> io::Result<Box<dyn BufRead + Send>> {
    if e.flags & 1 != 0 {
        return Err(bad(format!("zip entry {} is encrypted", e.name)));
    }
    let off = data_offset(&mut f, e)?;
    f.seek(SeekFrom::Start(off))?;
    let data = f.take(e.compressed);
    match e.method {
        8 => Ok(Box::new(GzDecoder::raw_deflate(data, e.crc, e.size))),
        0 => {
            if e.compressed != e.size {
                return Err(bad(format!(
                    "stored zip entry {} has {} bytes but says it holds {}",
                    e.name, e.compressed, e.size
                )));
            }
            Ok(Box::new(BufReader::with_capacity(
                1 << 20,
                Stored {
                    inner: data,
                    crc: 0,
                    size: 0,
                    want: (e.crc, e.size),
                    done: false,
                },
            )))
        }
        m => Err(bad(format!(
            "zip entry {} uses compression method {m}; only deflate (8) and stored (0) are supported",
            e.name
        ))),
    }
}

fn looks_like_disk(f: &File, e: &Entry) -> bool {
    let Ok(f) = f.try_clone() else { return false };
    let Ok(mut r) = open_entry(f, e) else {
        return false;
    };
    let mut s = [0u8; 512];
    r.read_exact(&mut s).is_ok() && s[510] == 0x55 && s[511] == 0xaa
}

/// Picks the disk image entry: the only file, else the only `*.img` file, else the only `*.img`
/// file that starts with a partition table. Anything else is an error listing the entries.
pub fn pick_image(f: &File, entries: &[Entry]) -> io::Result<Entry> {
    let files: Vec<&Entry> = entries.iter().filter(|e| !e.is_dir()).collect();
    if files.len() == 1 {
        return Ok(files[0].clone());
    }
    let imgs: Vec<&Entry> = files
        .iter()
        .copied()
        .filter(|e| e.name.to_ascii_lowercase().ends_with(".img"))
        .collect();
    if imgs.len() == 1 {
        return Ok(imgs[0].clone());
    }
    let list = files
        .iter()
        .map(|e| e.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if imgs.is_empty() {
        return Err(bad(format!(
            "the zip archive holds no .img entry (entries: {list})"
        )));
    }
    let disks: Vec<&Entry> = imgs
        .iter()
        .copied()
        .filter(|e| looks_like_disk(f, e))
        .collect();
    if disks.len() == 1 {
        return Ok(disks[0].clone());
    }
    Err(bad(format!(
        "the zip archive holds {} .img entries ({}) and not exactly one of them is a disk image; \
         extract the right one and pass it with -i",
        imgs.len(),
        imgs.iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
