//! A small tar writer and reader (POSIX ustar + PAX), enough for `backup.tgz` and its check.
//!
//! Writer: one 512-byte ustar header per entry (magic `ustar\0`, version `00`). A PAX extended
//! header (`x`) goes before an entry whose path or link name does not fit ustar (name 100 bytes,
//! or prefix 155 + name 100 split at a `/`), is not ASCII, or whose size, mtime, uid or gid do not
//! fit the octal fields. Numbers that do not fit octal are ALSO written base-256 into the ustar
//! field (the GNU extension), because busybox tar reads base-256 but ignores PAX `size`, while
//! GNU tar prefers the PAX record. Names that are not valid UTF-8 are stored as raw bytes.
//! `uname`/`gname` stay empty on purpose: GNU tar extracting as root maps owners by NAME when
//! one is present, and the supervisor's container has other users than the old OS; numeric ids
//! are what the application's volume expects.
//!
//! Reader: ustar, old GNU (`ustar  `) and v7 headers, PAX `x` (per entry) and `g` (global)
//! records, GNU long names (`L`) and long link names (`K`), octal and base-256 numbers, header
//! checksums (unsigned, and the signed variant old tars wrote). It is an `Iterator` over entries;
//! the data of the current entry can be read with [`Reader::read_data`], otherwise it is skipped.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};

pub const BLOCK: usize = 512;

/// Largest PAX or GNU long-name payload the reader accepts.
const MAX_META: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    Dir,
    /// Any other type flag (devices, fifos, GNU sparse files, ...): listed, not interpreted.
    Other(u8),
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::Dir => b'5',
            Kind::Other(f) => f,
        }
    }

    fn from_flag(f: u8) -> Kind {
        match f {
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'5' => Kind::Dir,
            other => Kind::Other(other),
        }
    }

    /// True when the entry carries data blocks of `size` bytes.
    fn has_data(self) -> bool {
        !matches!(
            self,
            Kind::HardLink
                | Kind::Symlink
                | Kind::Dir
                | Kind::Other(b'3')
                | Kind::Other(b'4')
                | Kind::Other(b'6')
        )
    }
}

/// What the writer is told about one entry.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// Path inside the archive, without a leading `/` (directories get a trailing `/` added).
    pub path: &'a [u8],
    pub kind: Kind,
    /// Data size (files only; 0 otherwise).
    pub size: u64,
    /// Permission bits incl. setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Symlink target or hard-link target (archive path).
    pub link: &'a [u8],
}

const NAME: (usize, usize) = (0, 100);
const MODE: (usize, usize) = (100, 8);
const UID: (usize, usize) = (108, 8);
const GID: (usize, usize) = (116, 8);
const SIZE: (usize, usize) = (124, 12);
const MTIME: (usize, usize) = (136, 12);
const CHKSUM: (usize, usize) = (148, 8);
const TYPEFLAG: usize = 156;
const LINKNAME: (usize, usize) = (157, 100);
const MAGIC: (usize, usize) = (257, 6);
const VERSION: (usize, usize) = (263, 2);
const PREFIX: (usize, usize) = (345, 155);

fn field(b: &mut [u8; BLOCK], f: (usize, usize)) -> &mut [u8] {
    &mut b[f.0..f.0 + f.1]
}

/// Writes `v` as zero-padded octal with a NUL terminator if it fits, else base-256.
/// Returns false when base-256 was needed (the value must then also go into a PAX record).
fn put_num(dst: &mut [u8], v: i64) -> bool {
    let digits = dst.len() - 1;
    let max_octal: i64 = if digits >= 21 {
        i64::MAX
    } else {
        (1i64 << (3 * digits)) - 1
    };
    if (0..=max_octal).contains(&v) {
        let s = format!("{v:0digits$o}");
        dst[..digits].copy_from_slice(s.as_bytes());
        dst[digits] = 0;
        true
    } else {
        // Base-256: two's complement big-endian, first byte's top bit marks the encoding
        // (0x80 for positive numbers, 0xff for negative ones).
        let n = dst.len();
        let bytes = v.to_be_bytes();
        let fill = if v < 0 { 0xff } else { 0 };
        for b in dst.iter_mut() {
            *b = fill;
        }
        dst[n - 8..].copy_from_slice(&bytes);
        dst[0] = if v < 0 { 0xff } else { 0x80 };
        false
    }
}

/// Splits a path into ustar (prefix, name) if possible.
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= NAME.1 {
        return Some((&[], path));
    }
    if path.len() > PREFIX.1 + 1 + NAME.1 {
        return None;
    }
    // The leftmost '/' that leaves at most 100 bytes for the name.
    let min = path.len() - NAME.1 - 1;
    (min..path.len().min(PREFIX.1 + 1))
        .find(|&i| path[i] == b'/' && i > 0 && i + 1 < path.len())
        .map(|i| (&path[..i], &path[i + 1..]))
}

/// Appends one PAX record `"<len> key=value\n"` (len counts the whole record).
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn is_plain_ascii(s: &[u8]) -> bool {
    s.iter().all(|&b| (0x20..0x7f).contains(&b))
}

fn padding(n: u64) -> usize {
    ((BLOCK as u64 - n % BLOCK as u64) % BLOCK as u64) as usize
}

/// Builds the header block(s) of an entry: optional PAX header + data, then the ustar header.
pub fn encode_header(h: &Header) -> Vec<u8> {
    let mut path = h.path.to_vec();
    if h.kind == Kind::Dir && !path.ends_with(b"/") {
        path.push(b'/');
    }
    let mut b = [0u8; BLOCK];
    let mut pax = Vec::new();

    match split_ustar(&path).filter(|_| is_plain_ascii(&path)) {
        Some((prefix, name)) => {
            field(&mut b, NAME)[..name.len()].copy_from_slice(name);
            field(&mut b, PREFIX)[..prefix.len()].copy_from_slice(prefix);
        }
        None => {
            pax_record(&mut pax, "path", &path);
            // Fallback for readers without PAX: the last 100 bytes.
            let tail = &path[path.len().saturating_sub(NAME.1)..];
            field(&mut b, NAME)[..tail.len()].copy_from_slice(tail);
        }
    }
    if h.link.len() > LINKNAME.1 || !is_plain_ascii(h.link) {
        pax_record(&mut pax, "linkpath", h.link);
    }
    let link = &h.link[..h.link.len().min(LINKNAME.1)];
    field(&mut b, LINKNAME)[..link.len()].copy_from_slice(link);

    put_num(field(&mut b, MODE), i64::from(h.mode & 0o7777));
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    if !put_num(field(&mut b, UID), clamp(h.uid)) {
        pax_record(&mut pax, "uid", h.uid.to_string().as_bytes());
    }
    if !put_num(field(&mut b, GID), clamp(h.gid)) {
        pax_record(&mut pax, "gid", h.gid.to_string().as_bytes());
    }
    let size = if h.kind.has_data() { h.size } else { 0 };
    if !put_num(field(&mut b, SIZE), clamp(size)) {
        pax_record(&mut pax, "size", size.to_string().as_bytes());
    }
    if !put_num(field(&mut b, MTIME), h.mtime) {
        pax_record(&mut pax, "mtime", h.mtime.to_string().as_bytes());
    }
    b[TYPEFLAG] = h.kind.flag();
    field(&mut b, MAGIC).copy_from_slice(b"ustar\0");
    field(&mut b, VERSION).copy_from_slice(b"00");
    set_checksum(&mut b);

    let mut out = Vec::with_capacity(BLOCK * 3);
    if !pax.is_empty() {
        // Names that are not UTF-8 go into the records as raw bytes WITHOUT the POSIX
        // `hdrcharset=BINARY` record: GNU tar 1.34 warns "Ignoring unknown extended header
        // keyword 'hdrcharset'" and both GNU and busybox tar restore the raw bytes anyway.
        let mut x = [0u8; BLOCK];
        let name = b"PaxHeaders/entry";
        field(&mut x, NAME)[..name.len()].copy_from_slice(name);
        put_num(field(&mut x, MODE), 0o644);
        put_num(field(&mut x, UID), 0);
        put_num(field(&mut x, GID), 0);
        put_num(field(&mut x, SIZE), pax.len() as i64);
        put_num(field(&mut x, MTIME), h.mtime.max(0));
        x[TYPEFLAG] = b'x';
        field(&mut x, MAGIC).copy_from_slice(b"ustar\0");
        field(&mut x, VERSION).copy_from_slice(b"00");
        set_checksum(&mut x);
        out.extend_from_slice(&x);
        out.extend_from_slice(&pax);
        out.resize(out.len() + padding(pax.len() as u64), 0);
    }
    out.extend_from_slice(&b);
    out
}

fn set_checksum(b: &mut [u8; BLOCK]) {
    field(b, CHKSUM).copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let s = format!("{sum:06o}\0 ");
    field(b, CHKSUM).copy_from_slice(s.as_bytes());
}

/// Bytes an entry takes in the archive (headers + data + padding).
pub fn entry_bytes(h: &Header) -> u64 {
    let data = if h.kind.has_data() { h.size } else { 0 };
    encode_header(h).len() as u64 + data + padding(data) as u64
}

/// Streaming tar writer: `begin` an entry, write exactly its `size` bytes with `data`, `end` it;
/// `finish` writes the end-of-archive marker (two zero blocks).
pub struct Writer<W: Write> {
    w: W,
    remaining: u64,
    pad: usize,
    open: bool,
    entries: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(w: W) -> Writer<W> {
        Writer {
            w,
            remaining: 0,
            pad: 0,
            open: false,
            entries: 0,
        }
    }

    pub fn begin(&mut self, h: &Header) -> io::Result<()> {
        if self.open {
            return Err(io::Error::other("tar writer: previous entry not ended"));
        }
        self.w.write_all(&encode_header(h))?;
        self.remaining = if h.kind.has_data() { h.size } else { 0 };
        self.pad = padding(self.remaining);
        self.open = true;
        self.entries += 1;
        Ok(())
    }

    pub fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.len() as u64 > self.remaining {
            return Err(io::Error::other(format!(
                "tar writer: {} bytes of data given, {} expected",
                buf.len(),
                self.remaining
            )));
        }
        self.w.write_all(buf)?;
        self.remaining -= buf.len() as u64;
        Ok(())
    }

    /// Bytes of data the current entry still expects.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    pub fn end(&mut self) -> io::Result<()> {
        if self.remaining != 0 {
            return Err(io::Error::other(format!(
                "tar writer: entry ended with {} bytes of data missing",
                self.remaining
            )));
        }
        self.w.write_all(&[0u8; BLOCK][..self.pad])?;
        self.open = false;
        Ok(())
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn finish(mut self) -> io::Result<W> {
        if self.open {
            return Err(io::Error::other("tar writer: last entry not ended"));
        }
        self.w.write_all(&[0u8; 2 * BLOCK])?;
        self.w.flush()?;
        Ok(self.w)
    }
}

/// One entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path as stored (directories keep their trailing `/`).
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    /// Offset of the entry's (ustar) header in the uncompressed archive.
    pub offset: u64,
}

#[derive(Default, Clone)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
}

fn bad(offset: u64, msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("tar header at offset {offset}: {msg}"),
    )
}

/// Parses a numeric header field: octal (space/NUL padded) or base-256.
fn get_num(f: &[u8], what: &str, offset: u64) -> io::Result<i64> {
    if let Some(&first) = f.first() {
        if first & 0x80 != 0 {
            let neg = first & 0x40 != 0;
            let mut v: i128 = if neg { -1 } else { 0 };
            for (i, &b) in f.iter().enumerate() {
                let b = if i == 0 {
                    if neg {
                        b
                    } else {
                        b & 0x7f
                    }
                } else {
                    b
                };
                v = (v << 8) | i128::from(b);
                if v > i128::from(i64::MAX) || v < i128::from(i64::MIN) {
                    return Err(bad(offset, format!("{what} field overflows")));
                }
            }
            return Ok(v as i64);
        }
    }
    let mut v: i64 = 0;
    let mut seen = false;
    for &b in f {
        match b {
            b' ' | 0 if !seen => continue,
            b' ' | 0 => break,
            b'0'..=b'7' => {
                seen = true;
                v = v
                    .checked_mul(8)
                    .and_then(|v| v.checked_add(i64::from(b - b'0')))
                    .ok_or_else(|| bad(offset, format!("{what} field overflows")))?;
            }
            _ => {
                return Err(bad(
                    offset,
                    format!("{what} field {:?} is not octal", String::from_utf8_lossy(f)),
                ))
            }
        }
    }
    Ok(v)
}

fn cstr(f: &[u8]) -> &[u8] {
    let n = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    &f[..n]
}

fn parse_pax(data: &[u8], into: &mut Pax, offset: u64) -> io::Result<()> {
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad(offset, "PAX record without length"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(offset, "PAX record length is not a number"))?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad(offset, "PAX record length is wrong"));
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad(offset, "PAX record without '='"))?;
        let (key, value) = (&rec[..eq], &rec[eq + 1..]);
        let num = |v: &[u8]| -> io::Result<i64> {
            let s = std::str::from_utf8(v).unwrap_or("");
            // Fractional seconds (mtime=1.5) are cut to whole seconds.
            let whole = s.split('.').next().unwrap_or("");
            whole.parse::<i64>().map_err(|_| {
                bad(
                    offset,
                    format!(
                        "PAX {} value {s:?} is not a number",
                        String::from_utf8_lossy(key)
                    ),
                )
            })
        };
        match key {
            b"path" => into.path = Some(value.to_vec()),
            b"linkpath" => into.link = Some(value.to_vec()),
            b"size" => into.size = Some(num(value)?.max(0) as u64),
            b"uid" => into.uid = Some(num(value)?.max(0) as u64),
            b"gid" => into.gid = Some(num(value)?.max(0) as u64),
            b"mtime" => into.mtime = Some(num(value)?),
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(())
}

/// Iterator over the entries of a tar stream.
pub struct Reader<R: Read> {
    r: R,
    offset: u64,
    remaining: u64,
    pad: u64,
    global: Pax,
    done: bool,
    failed: bool,
    buf: Vec<u8>,
}

impl<R: Read> Reader<R> {
    pub fn new(r: R) -> Reader<R> {
        Reader {
            r,
            offset: 0,
            remaining: 0,
            pad: 0,
            global: Pax::default(),
            done: false,
            failed: false,
            buf: vec![0; 64 * 1024],
        }
    }

    fn read_exact_at(&mut self, out: &mut [u8], what: &str) -> io::Result<()> {
        self.r.read_exact(out).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("tar archive ends inside {what} at offset {}", self.offset),
                )
            } else {
                e
            }
        })?;
        self.offset += out.len() as u64;
        Ok(())
    }

    /// The underlying reader (positioned after the end-of-archive marker once iteration ended).
    pub fn into_inner(self) -> R {
        self.r
    }

    /// Reads (into `out`) the rest of the current entry's data; returns the bytes read.
    pub fn read_data(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        let mut total = 0;
        while self.remaining > 0 {
            let n = self.remaining.min(self.buf.len() as u64) as usize;
            let mut chunk = std::mem::take(&mut self.buf);
            let r = self.read_exact_at(&mut chunk[..n], "entry data");
            if r.is_ok() {
                out.write_all(&chunk[..n])?;
            }
            self.buf = chunk;
            r?;
            self.remaining -= n as u64;
            total += n as u64;
        }
        Ok(total)
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        self.read_data(&mut io::sink())?;
        while self.pad > 0 {
            let n = self.pad.min(self.buf.len() as u64) as usize;
            let mut chunk = std::mem::take(&mut self.buf);
            let r = self.read_exact_at(&mut chunk[..n], "entry padding");
            self.buf = chunk;
            r?;
            self.pad -= n as u64;
        }
        Ok(())
    }

    fn read_meta(&mut self, size: u64, header_offset: u64) -> io::Result<Vec<u8>> {
        if size > MAX_META {
            return Err(bad(
                header_offset,
                format!("extended header of {size} bytes is larger than {MAX_META}"),
            ));
        }
        let mut v = vec![0; size as usize];
        self.read_exact_at(&mut v, "an extended header")?;
        let mut pad = vec![0; padding(size)];
        self.read_exact_at(&mut pad, "extended header padding")?;
        Ok(v)
    }

    fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        self.skip_rest()?;
        let mut local = Pax::default();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let at = self.offset;
            let mut b = [0u8; BLOCK];
            // A clean end of input exactly at a block boundary without the end marker is
            // still an error: our own archives always end with two zero blocks.
            self.read_exact_at(&mut b, "a header")?;
            if b.iter().all(|&x| x == 0) {
                let mut second = [0u8; BLOCK];
                self.read_exact_at(&mut second, "the end-of-archive marker")?;
                if second.iter().any(|&x| x != 0) {
                    return Err(bad(at, "single zero block inside the archive"));
                }
                return Ok(None);
            }
            let stored = get_num(&b[CHKSUM.0..CHKSUM.0 + CHKSUM.1], "checksum", at)?;
            let mut unsigned: i64 = 0;
            let mut signed: i64 = 0;
            for (i, &x) in b.iter().enumerate() {
                let x = if (CHKSUM.0..CHKSUM.0 + CHKSUM.1).contains(&i) {
                    b' '
                } else {
                    x
                };
                unsigned += i64::from(x);
                signed += i64::from(x as i8);
            }
            if stored != unsigned && stored != signed {
                return Err(bad(
                    at,
                    format!("checksum {stored:o} does not match {unsigned:o}"),
                ));
            }
            let size_field = get_num(&b[SIZE.0..SIZE.0 + SIZE.1], "size", at)?;
            let size = u64::try_from(size_field).map_err(|_| bad(at, "negative size"))?;
            match b[TYPEFLAG] {
                b'x' => {
                    let data = self.read_meta(size, at)?;
                    parse_pax(&data, &mut local, at)?;
                    continue;
                }
                b'g' => {
                    let data = self.read_meta(size, at)?;
                    parse_pax(&data, &mut self.global, at)?;
                    continue;
                }
                b'L' => {
                    let data = self.read_meta(size, at)?;
                    long_name = Some(cstr(&data).to_vec());
                    continue;
                }
                b'K' => {
                    let data = self.read_meta(size, at)?;
                    long_link = Some(cstr(&data).to_vec());
                    continue;
                }
                _ => {}
            }
            let kind = Kind::from_flag(b[TYPEFLAG]);
            let mut path = cstr(&b[NAME.0..NAME.0 + NAME.1]).to_vec();
            if &b[MAGIC.0..MAGIC.0 + MAGIC.1] == b"ustar\0" {
                let prefix = cstr(&b[PREFIX.0..PREFIX.0 + PREFIX.1]);
                if !prefix.is_empty() {
                    let mut p = prefix.to_vec();
                    p.push(b'/');
                    p.extend_from_slice(&path);
                    path = p;
                }
            }
            let mut link = cstr(&b[LINKNAME.0..LINKNAME.0 + LINKNAME.1]).to_vec();
            if let Some(n) = long_name {
                path = n;
            }
            if let Some(l) = long_link {
                link = l;
            }
            let num = |f: (usize, usize), what: &str| get_num(&b[f.0..f.0 + f.1], what, at);
            let mut e = Entry {
                path,
                link,
                kind,
                size,
                mode: (num(MODE, "mode")? & 0o7777) as u32,
                uid: num(UID, "uid")?.max(0) as u64,
                gid: num(GID, "gid")?.max(0) as u64,
                mtime: num(MTIME, "mtime")?,
                offset: at,
            };
            for p in [&self.global, &local] {
                if let Some(v) = &p.path {
                    e.path.clone_from(v);
                }
                if let Some(v) = &p.link {
                    e.link.clone_from(v);
                }
                if let Some(v) = p.size {
                    e.size = v;
                }
                if let Some(v) = p.uid {
                    e.uid = v;
                }
                if let Some(v) = p.gid {
                    e.gid = v;
                }
                if let Some(v) = p.mtime {
                    e.mtime = v;
                }
            }
            self.remaining = if kind.has_data() { e.size } else { 0 };
            self.pad = padding(self.remaining) as u64;
            return Ok(Some(e));
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<io::Result<Entry>> {
        if self.done || self.failed {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn hdr<'a>(path: &'a [u8], kind: Kind, size: u64, link: &'a [u8]) -> Header<'a> {
        Header {
            path,
            kind,
            size,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            mtime: 1_600_000_000,
            link,
        }
    }

    fn archive(entries: &[(Header, &[u8])]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        for (h, data) in entries {
            w.begin(h).unwrap();
            w.data(data).unwrap();
            w.end().unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn numbers_octal_and_base256() {
        let mut f = [0u8; 12];
        assert!(put_num(&mut f, 0o777));
        assert_eq!(&f, b"00000000777\0");
        assert_eq!(get_num(&f, "size", 0).unwrap(), 0o777);
        let big = 9 * 1024 * 1024 * 1024i64;
        assert!(!put_num(&mut f, big));
        assert_eq!(f[0], 0x80);
        assert_eq!(get_num(&f, "size", 0).unwrap(), big);
        let mut m = [0u8; 12];
        assert!(!put_num(&mut m, -5));
        assert_eq!(get_num(&m, "mtime", 0).unwrap(), -5);
        // Space-padded octal as old tars wrote it.
        assert_eq!(get_num(b"   755 \0", "mode", 0).unwrap(), 0o755);
        assert!(get_num(b"12x4\0", "mode", 0).is_err());
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut v = Vec::new();
        pax_record(&mut v, "path", b"abcdef");
        assert_eq!(v, b"15 path=abcdef\n");
        let mut v = Vec::new();
        pax_record(&mut v, "path", &[b'a'; 93]);
        // 1+4+1+93+1 = 100, plus "103" = 103.
        assert_eq!(&v[..4], b"103 ");
        assert_eq!(v.len(), 103);
    }

    #[test]
    fn ustar_split_and_pax_roundtrip() {
        let long150 = format!("{}/{}", "d".repeat(80), "f".repeat(69));
        let long300 = format!("{}/{}", "x".repeat(200), "y".repeat(99));
        let uni = "vol/ünïcode file.txt".to_string();
        let link300 = "t".repeat(300);
        let entries: Vec<(Header, &[u8])> = vec![
            (hdr(b"vol", Kind::Dir, 0, b""), b""),
            (hdr(long150.as_bytes(), Kind::File, 3, b""), b"abc"),
            (hdr(long300.as_bytes(), Kind::File, 0, b""), b""),
            (hdr(uni.as_bytes(), Kind::File, 2, b""), b"hi"),
            (hdr(b"vol/l", Kind::Symlink, 0, link300.as_bytes()), b""),
            (hdr(b"vol/h", Kind::HardLink, 0, b"vol/x"), b""),
            (hdr(b"vol/\xff\xfe", Kind::File, 1, b""), b"z"),
        ];
        // long150 fits prefix+name: no PAX.
        assert_eq!(encode_header(&entries[1].0).len(), BLOCK);
        assert!(encode_header(&entries[2].0).len() > BLOCK);
        let bin = encode_header(&entries[6].0);
        assert!(bin.windows(11).any(|w| w == b"path=vol/\xff\xfe"));
        let a = archive(&entries);
        let mut r = Reader::new(&a[..]);
        let mut got = Vec::new();
        while let Some(e) = r.next() {
            let e = e.unwrap();
            let mut data = Vec::new();
            r.read_data(&mut data).unwrap();
            got.push((e, data));
        }
        assert_eq!(got.len(), entries.len());
        assert_eq!(got[0].0.path, b"vol/");
        assert_eq!(got[1].0.path, long150.as_bytes());
        assert_eq!(got[1].1, b"abc");
        assert_eq!(got[2].0.path, long300.as_bytes());
        assert_eq!(got[3].0.path, uni.as_bytes());
        assert_eq!(got[4].0.link, link300.as_bytes());
        assert_eq!(got[4].0.kind, Kind::Symlink);
        assert_eq!(got[5].0.kind, Kind::HardLink);
        assert_eq!(got[6].0.path, b"vol/\xff\xfe");
        assert_eq!(got[1].0.uid, 1000);
        assert_eq!(got[1].0.mtime, 1_600_000_000);
        // Sizes computed without writing agree with the archive.
        let sum: u64 = entries.iter().map(|(h, _)| entry_bytes(h)).sum();
        assert_eq!(sum + 2 * BLOCK as u64, a.len() as u64);
    }

    #[test]
    fn global_pax_header_applies_to_later_entries() {
        // Turn the 'x' header of a long-path entry into a 'g' header: its mtime then applies
        // to every later entry that has no own value.
        let h = Header {
            mtime: -3,
            ..hdr(b"a", Kind::File, 0, b"")
        };
        let mut g = encode_header(&h);
        g.truncate(2 * BLOCK);
        g[TYPEFLAG] = b'g';
        let mut first = [0u8; BLOCK];
        first.copy_from_slice(&g[..BLOCK]);
        set_checksum(&mut first);
        g[..BLOCK].copy_from_slice(&first);
        let mut a = g;
        a.extend(archive(&[
            (hdr(b"one", Kind::File, 1, b""), b"1"),
            (hdr(b"two", Kind::Dir, 0, b""), b""),
        ]));
        let got: Vec<Entry> = Reader::new(&a[..]).map(|e| e.unwrap()).collect();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|e| e.mtime == -3), "{got:?}");
        assert_eq!(got[1].path, b"two/");
    }

    #[test]
    fn corrupt_and_truncated_archives_fail() {
        let a = archive(&[(hdr(b"a", Kind::File, 5, b""), b"12345")]);
        let mut c = a.clone();
        c[10] ^= 1;
        let e = Reader::new(&c[..]).next().unwrap().unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        let t = &a[..a.len() - BLOCK];
        let results: Vec<_> = Reader::new(t).collect();
        assert!(results.last().unwrap().is_err());
        let t = &a[..700];
        let results: Vec<_> = Reader::new(t).collect();
        let e = results.last().unwrap().as_ref().unwrap_err();
        assert!(e.to_string().contains("ends inside entry"), "{e}");
    }

    /// GNU tar writes 'L'/'K' (gnu format) and 'x' (posix format) headers; our reader must list
    /// exactly what `tar -tf` lists.
    #[test]
    fn reads_gnu_tar_archives() {
        let dir = std::env::temp_dir().join(format!("takeover-tar-gnu-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let deep = dir.join("src").join("a".repeat(120)).join("b".repeat(150));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("ünï ç.txt"), b"data").unwrap();
        std::os::unix::fs::symlink("l".repeat(150), deep.join("link")).unwrap();
        for format in ["gnu", "posix", "oldgnu"] {
            let out = dir.join(format!("{format}.tar"));
            let st = Command::new("tar")
                .arg(format!("--format={format}"))
                .arg("-cf")
                .arg(&out)
                .arg("-C")
                .arg(dir.join("src"))
                .arg(".")
                .output()
                .unwrap();
            assert!(st.status.success(), "{format}: {st:?}");
            let listed = Command::new("tar").arg("-tf").arg(&out).output().unwrap();
            let expected: Vec<Vec<u8>> = listed
                .stdout
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| l.to_vec())
                .collect();
            let data = std::fs::read(&out).unwrap();
            let got: Vec<Vec<u8>> = Reader::new(&data[..]).map(|e| e.unwrap().path).collect();
            // GNU tar -t may escape non-printable bytes; compare the ASCII-only names exactly
            // and the count overall.
            assert_eq!(got.len(), expected.len(), "{format}");
            for (g, x) in got.iter().zip(&expected) {
                if x.is_ascii() && !x.contains(&b'\\') {
                    assert_eq!(g, x, "{format}");
                }
            }
            assert!(
                got.iter().any(|p| p.ends_with("ünï ç.txt".as_bytes())),
                "{format}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
