//! Minimal gzip (RFC 1952) writer and reader over miniz_oxide, private to the backup.
//!
//! TODO(lead): replace with crate::image::gzip once merged (the `image` branch builds the shared
//! decoder/encoder and `crate::image::crc32`); this copy exists only so that the backup does not
//! wait for it. The writer emits one member (deflate level 6, FLG = 0, MTIME = 0, OS = Unix);
//! the reader accepts multi-member streams, checks reserved flag bits, bounds FNAME/FCOMMENT,
//! and verifies CRC-32 and ISIZE of every member.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};

use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// Buffer size for compressed data in both directions.
const BUF: usize = 256 * 1024;

/// CRC-32 (IEEE 802.3, reflected, as used by gzip), slice-by-8.
#[derive(Clone, Copy, Default)]
pub struct Crc32(u32);

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32(0)
    }

    pub fn update(&mut self, data: &[u8]) {
        let t = &CRC_TABLES;
        let mut c = !self.0;
        let mut chunks = data.chunks_exact(8);
        for b in &mut chunks {
            let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            c = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][b[4] as usize]
                ^ t[2][b[5] as usize]
                ^ t[1][b[6] as usize]
                ^ t[0][b[7] as usize];
        }
        for &b in chunks.remainder() {
            c = t[0][((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = !c;
    }

    pub fn value(&self) -> u32 {
        self.0
    }
}

/// Streaming gzip encoder. Call [`GzWriter::finish`] to write the trailer; dropping it without
/// `finish` leaves a truncated stream (which the reader rejects).
pub struct GzWriter<W: Write> {
    inner: W,
    comp: Box<CompressorOxide>,
    out: Vec<u8>,
    crc: Crc32,
    len: u64,
    written: u64,
}

impl<W: Write> GzWriter<W> {
    /// Writes the gzip header and returns the encoder (deflate level 6).
    pub fn new(mut inner: W) -> io::Result<GzWriter<W>> {
        // ID1 ID2 CM=deflate FLG=0 MTIME=0 (not meaningful for a stream) XFL=0 OS=3 (Unix).
        let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        inner.write_all(&header)?;
        // Negative window bits: raw deflate, no zlib header.
        let flags = create_comp_flags_from_zip_params(6, -15, 0);
        Ok(GzWriter {
            inner,
            comp: Box::new(CompressorOxide::new(flags)),
            out: vec![0; BUF],
            crc: Crc32::new(),
            len: 0,
            written: header.len() as u64,
        })
    }

    fn run(&mut self, mut input: &[u8], flush: TDEFLFlush) -> io::Result<()> {
        loop {
            let (status, consumed, produced) =
                compress(&mut self.comp, input, &mut self.out, flush);
            if produced > 0 {
                self.inner.write_all(&self.out[..produced])?;
                self.written += produced as u64;
            }
            input = &input[consumed..];
            match status {
                TDEFLStatus::Done => return Ok(()),
                TDEFLStatus::Okay => {
                    // Without a flush, compress() stops when the input is consumed and the
                    // output buffer was not filled; with Finish it goes on until Done.
                    if input.is_empty() && produced < self.out.len() && flush == TDEFLFlush::None {
                        return Ok(());
                    }
                }
                TDEFLStatus::BadParam | TDEFLStatus::PutBufFailed => {
                    return Err(io::Error::other(format!(
                        "deflate failed with status {status:?}"
                    )))
                }
            }
        }
    }

    /// Writes the end of the deflate stream and the trailer (CRC-32, ISIZE); returns the inner
    /// writer and the number of compressed bytes written in total.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.run(&[], TDEFLFlush::Finish)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.value().to_le_bytes());
        // ISIZE is the input length modulo 2^32 (RFC 1952).
        trailer[4..].copy_from_slice(&(self.len as u32).to_le_bytes());
        self.inner.write_all(&trailer)?;
        self.inner.flush()?;
        Ok((self.inner, self.written + 8))
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.crc.update(buf);
        self.len += buf.len() as u64;
        self.run(buf, TDEFLFlush::None)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

#[derive(PartialEq)]
enum State {
    Header,
    Body,
    Done,
}

/// Streaming gzip decoder: `Read` of the uncompressed data. Every member's CRC-32 and ISIZE are
/// checked when its end is reached; a truncated stream is an `UnexpectedEof` error.
pub struct GzReader<R: Read> {
    inner: R,
    inflate: Box<InflateState>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    state: State,
    crc: Crc32,
    len: u64,
    /// Offset of the first unread byte of `buf` in the compressed stream (for messages).
    offset: u64,
}

/// Longest FNAME/FCOMMENT accepted (bounded so a corrupt header cannot eat the stream).
const MAX_HEADER_STRING: usize = 64 * 1024;

impl<R: Read> GzReader<R> {
    pub fn new(inner: R) -> GzReader<R> {
        GzReader {
            inner,
            inflate: InflateState::new_boxed(DataFormat::Raw),
            buf: vec![0; BUF],
            pos: 0,
            end: 0,
            eof: false,
            state: State::Header,
            crc: Crc32::new(),
            len: 0,
            offset: 0,
        }
    }

    /// Ensures at least one unread byte is buffered unless the input ended; returns false at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.pos = 0;
        self.end = 0;
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn byte(&mut self, what: &str) -> io::Result<u8> {
        if !self.fill()? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "gzip stream ends inside the {what} at offset {}",
                    self.offset
                ),
            ));
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        self.offset += 1;
        Ok(b)
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> io::Result<[u8; N]> {
        let mut out = [0u8; N];
        for b in out.iter_mut() {
            *b = self.byte(what)?;
        }
        Ok(out)
    }

    fn header(&mut self) -> io::Result<()> {
        let start = self.offset;
        for want in [0x1f, 0x8b] {
            if self.byte("gzip header")? != want {
                return Err(bad(if start == 0 {
                    "not a gzip stream (no gzip magic at offset 0)".to_string()
                } else {
                    format!("unexpected data after the gzip stream at offset {start}")
                }));
            }
        }
        let rest: [u8; 8] = self.bytes("gzip header")?;
        let h = [
            0x1f, 0x8b, rest[0], rest[1], rest[2], rest[3], rest[4], rest[5], rest[6], rest[7],
        ];
        if h[2] != 8 {
            return Err(bad(format!(
                "gzip compression method {} at offset {start} is not deflate",
                h[2]
            )));
        }
        let flg = h[3];
        if flg & 0xe0 != 0 {
            return Err(bad(format!(
                "gzip header at offset {start} sets reserved flag bits ({flg:#04x})"
            )));
        }
        if flg & 0x04 != 0 {
            let xlen = u16::from_le_bytes(self.bytes("gzip extra field")?);
            for _ in 0..xlen {
                self.byte("gzip extra field")?;
            }
        }
        for (bit, what) in [(0x08, "gzip file name"), (0x10, "gzip comment")] {
            if flg & bit != 0 {
                let mut n = 0;
                while self.byte(what)? != 0 {
                    n += 1;
                    if n > MAX_HEADER_STRING {
                        return Err(bad(format!(
                            "{what} at offset {start} is longer than {MAX_HEADER_STRING} bytes"
                        )));
                    }
                }
            }
        }
        if flg & 0x02 != 0 {
            let _hcrc: [u8; 2] = self.bytes("gzip header CRC")?;
        }
        self.inflate = InflateState::new_boxed(DataFormat::Raw);
        self.crc = Crc32::new();
        self.len = 0;
        self.state = State::Body;
        Ok(())
    }

    fn trailer(&mut self) -> io::Result<()> {
        let t: [u8; 8] = self.bytes("gzip trailer")?;
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let isize = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
        if crc != self.crc.value() {
            return Err(bad(format!(
                "gzip CRC-32 mismatch: trailer says {crc:08x}, data gives {:08x}",
                self.crc.value()
            )));
        }
        if isize != self.len as u32 {
            return Err(bad(format!(
                "gzip ISIZE mismatch: trailer says {isize}, data gives {}",
                self.len as u32
            )));
        }
        // Another member may follow; anything else after a member is an error.
        if self.fill()? {
            self.state = State::Header;
        } else {
            self.state = State::Done;
        }
        Ok(())
    }
}

impl<R: Read> Read for GzReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Header => self.header()?,
                State::Body => {
                    let have_input = self.fill()?;
                    let flush = if have_input {
                        MZFlush::None
                    } else {
                        MZFlush::Finish
                    };
                    let r = inflate(&mut self.inflate, &self.buf[self.pos..self.end], out, flush);
                    self.pos += r.bytes_consumed;
                    self.offset += r.bytes_consumed as u64;
                    let produced = &out[..r.bytes_written];
                    self.crc.update(produced);
                    self.len += produced.len() as u64;
                    match r.status {
                        Ok(MZStatus::StreamEnd) => {
                            self.trailer()?;
                            if r.bytes_written > 0 {
                                return Ok(r.bytes_written);
                            }
                        }
                        Ok(_) => {
                            if r.bytes_written > 0 {
                                return Ok(r.bytes_written);
                            }
                            if !have_input {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    format!(
                                        "gzip stream is truncated (ends at offset {})",
                                        self.offset
                                    ),
                                ));
                            }
                        }
                        Err(MZError::Buf) if !have_input => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!(
                                    "gzip stream is truncated (ends at offset {})",
                                    self.offset
                                ),
                            ));
                        }
                        Err(MZError::Buf) if r.bytes_consumed == 0 && r.bytes_written == 0 => {
                            // No progress with input and output space available: corrupt data.
                            return Err(bad(format!(
                                "deflate data makes no progress at offset {}",
                                self.offset
                            )));
                        }
                        Err(MZError::Buf) => {}
                        Err(e) => {
                            return Err(bad(format!(
                                "corrupt deflate data near offset {}: {e:?}",
                                self.offset
                            )))
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut w = GzWriter::new(Vec::new()).unwrap();
        // Odd chunk sizes exercise the streaming path.
        for c in data.chunks(7777) {
            w.write_all(c).unwrap();
        }
        let (v, n) = w.finish().unwrap();
        assert_eq!(n, v.len() as u64);
        v
    }

    fn sample(n: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 {
                    b'a'
                } else {
                    (x >> 24) as u8
                }
            })
            .collect()
    }

    #[test]
    fn crc32_known_values() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xCBF4_3926);
        let mut c = Crc32::new();
        c.update(b"");
        assert_eq!(c.value(), 0);
        // Split updates equal one update.
        let data = sample(1001);
        let mut a = Crc32::new();
        a.update(&data);
        let mut b = Crc32::new();
        b.update(&data[..3]);
        b.update(&data[3..]);
        assert_eq!(a.value(), b.value());
    }

    #[test]
    fn roundtrip_and_system_gzip_agrees() {
        let data = sample(3 * 1024 * 1024 + 17);
        let z = gz(&data);
        let mut back = Vec::new();
        GzReader::new(&z[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        // gzip -t and gzip -dc accept it and produce the same bytes.
        let mut child = Command::new("gzip")
            .arg("-dc")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let z2 = z.clone();
        let t = std::thread::spawn(move || stdin.write_all(&z2).unwrap());
        let out = child.wait_with_output().unwrap();
        t.join().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }

    #[test]
    fn empty_input_and_multi_member() {
        let z = gz(b"");
        let mut back = Vec::new();
        GzReader::new(&z[..]).read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
        let mut two = gz(b"hello ");
        two.extend(gz(b"world"));
        let mut back = Vec::new();
        GzReader::new(&two[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, b"hello world");
    }

    #[test]
    fn corruption_is_detected() {
        let data = sample(100_000);
        let z = gz(&data);
        // Truncated.
        let e = GzReader::new(&z[..z.len() - 3])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        // CRC flipped.
        let mut bad_crc = z.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        let e = GzReader::new(&bad_crc[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(e.to_string().contains("CRC-32 mismatch"), "{e}");
        // Reserved flags.
        let mut flags = z.clone();
        flags[3] = 0x80;
        let e = GzReader::new(&flags[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(e.to_string().contains("reserved flag"), "{e}");
        // Garbage after the member.
        let mut trailing = z.clone();
        trailing.extend_from_slice(b"junk");
        let e = GzReader::new(&trailing[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(e.to_string().contains("unexpected data after"), "{e}");
    }

    #[test]
    fn reads_system_gzip_with_name() {
        let dir = std::env::temp_dir().join(format!("takeover-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("named.txt");
        std::fs::write(&f, b"from gzip with FNAME").unwrap();
        let st = Command::new("gzip").arg("-kf").arg(&f).status().unwrap();
        assert!(st.success());
        let z = std::fs::read(dir.join("named.txt.gz")).unwrap();
        assert_ne!(z[3] & 0x08, 0, "gzip -k writes FNAME");
        let mut back = Vec::new();
        GzReader::new(&z[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, b"from gzip with FNAME");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
