//! gzip (RFC 1952) decoder and encoder over miniz_oxide's raw deflate core.
//!
//! The decoder is a streaming `Read`/`BufRead`: every member of a multi-member file is decoded,
//! each member's CRC-32 and ISIZE are checked, zero bytes after the last member (padding added
//! by some tools and block devices) are accepted, anything else after it is an error naming the
//! byte offset. Header fields FEXTRA/FNAME/FCOMMENT are length-bounded and FHCRC is checked.
//! Memory: a 256 KiB input buffer, a 256 KiB output window (the decoder writes straight into it
//! and resolves back-references with a wrapping mask, so decoded bytes are never copied before
//! the caller sees them), and the inflate state.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, Read, Write};

use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};
use miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

use super::crc32::crc32;

const IN_BUF: usize = 256 << 10;
/// Power of two (the wrapping mask needs it), at least the 32 KiB deflate window. 256 KiB: one
/// inflate call's output stays in a core's L2 for the CRC-32 and the copy to the caller, and
/// peak RSS of a flash drops by 0.75 MiB against 1 MiB (measured 6.0 MiB, `make bench`).
const WINDOW: usize = 256 << 10;
/// Longest FNAME / FCOMMENT accepted.
const MAX_STRING: usize = 64 << 10;

const FTEXT: u8 = 1;
const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;
const FRESERVED: u8 = 0xE0;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn truncated(what: &str, offset: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the gzip stream is truncated at byte {offset} ({what})"),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Body,
    Trailer,
    Done,
}

/// Header fields of the first member, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GzHeader {
    pub name: Option<String>,
    pub comment: Option<String>,
    pub mtime: u32,
    pub text: bool,
    pub extra_len: usize,
}

/// Streaming multi-member gzip decoder.
pub struct GzDecoder<R> {
    inner: R,
    inbuf: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    /// Offset in the compressed stream of `inbuf[0]`.
    in_base: u64,
    in_eof: bool,
    window: Box<[u8]>,
    out_pos: usize,
    avail: (usize, usize),
    inflate: Box<DecompressorOxide>,
    state: State,
    crc: u32,
    member_size: u64,
    member_start: u64,
    members: u32,
    total_out: u64,
    header: Option<GzHeader>,
    /// Raw deflate (a zip entry): the expected CRC-32 and size instead of gzip framing.
    raw: Option<(u32, u64)>,
}

impl<R: Read> GzDecoder<R> {
    pub fn new(inner: R) -> GzDecoder<R> {
        GzDecoder {
            inner,
            inbuf: vec![0u8; IN_BUF].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            in_base: 0,
            in_eof: false,
            window: vec![0u8; WINDOW].into_boxed_slice(),
            out_pos: 0,
            avail: (0, 0),
            inflate: Box::default(),
            state: State::Header,
            crc: 0,
            member_size: 0,
            member_start: 0,
            members: 0,
            total_out: 0,
            header: None,
            raw: None,
        }
    }

    /// A raw deflate stream (no gzip framing), as in a zip entry, whose decoded data must have
    /// CRC-32 `crc` and `size` bytes. `inner` must end where the compressed data ends.
    pub fn raw_deflate(inner: R, crc: u32, size: u64) -> GzDecoder<R> {
        let mut d = GzDecoder::new(inner);
        d.raw = Some((crc, size));
        d.state = State::Body;
        d.members = 1;
        d
    }

    /// Members decoded (or being decoded) so far.
    pub fn members(&self) -> u32 {
        self.members
    }

    /// Decoded bytes produced so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    /// Compressed bytes consumed so far.
    pub fn total_in(&self) -> u64 {
        self.in_base + self.in_pos as u64
    }

    /// The first member's header, once read.
    pub fn header(&self) -> Option<&GzHeader> {
        self.header.as_ref()
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn offset(&self) -> u64 {
        self.in_base + self.in_pos as u64
    }

    /// Moves unread input to the start and reads more. Returns false at end of input.
    fn refill(&mut self) -> io::Result<bool> {
        if self.in_eof {
            return Ok(false);
        }
        if self.in_pos > 0 {
            self.inbuf.copy_within(self.in_pos..self.in_len, 0);
            self.in_base += self.in_pos as u64;
            self.in_len -= self.in_pos;
            self.in_pos = 0;
        }
        if self.in_len == self.inbuf.len() {
            return Ok(true);
        }
        loop {
            match self.inner.read(&mut self.inbuf[self.in_len..]) {
                Ok(0) => {
                    self.in_eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.in_len += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes `n` bytes available at `in_pos` (n <= IN_BUF). False when the input ends first.
    fn need(&mut self, n: usize) -> io::Result<bool> {
        while self.in_len - self.in_pos < n {
            if !self.refill()? {
                return Ok(self.in_len - self.in_pos >= n);
            }
        }
        Ok(true)
    }

    /// Takes `n` header bytes, feeding the header CRC.
    fn take(&mut self, n: usize, hcrc: &mut u32, what: &str) -> io::Result<&[u8]> {
        if !self.need(n)? {
            return Err(truncated(what, self.in_base + self.in_len as u64));
        }
        let s = self.in_pos;
        self.in_pos += n;
        *hcrc = crc32(*hcrc, &self.inbuf[s..s + n]);
        Ok(&self.inbuf[s..s + n])
    }

    /// Takes a NUL-terminated header string (without the NUL).
    fn take_string(&mut self, hcrc: &mut u32, what: &str) -> io::Result<String> {
        let start = self.offset();
        let mut scanned = 0;
        loop {
            let avail = &self.inbuf[self.in_pos + scanned..self.in_len];
            if let Some(z) = avail.iter().position(|&b| b == 0) {
                let len = scanned + z;
                let bytes = self.take(len + 1, hcrc, what)?;
                return Ok(String::from_utf8_lossy(&bytes[..len]).into_owned());
            }
            scanned += avail.len();
            if scanned > MAX_STRING {
                return Err(invalid(format!(
                    "the gzip {what} starting at byte {start} is longer than {MAX_STRING} bytes"
                )));
            }
            if !self.need(scanned + 1)? {
                return Err(truncated(what, self.in_base + self.in_len as u64));
            }
        }
    }

    /// Reads a member header, or finds the end of the stream. Returns false at the end.
    fn read_header(&mut self) -> io::Result<bool> {
        let first = self.members == 0;
        // End of stream: nothing left, or only zero padding after the last member.
        if !first {
            loop {
                if !self.need(1)? {
                    return Ok(false);
                }
                let rest = &self.inbuf[self.in_pos..self.in_len];
                if rest[0] != 0 {
                    break;
                }
                // Skip zeros; any non-zero byte after zeros is garbage.
                match rest.iter().position(|&b| b != 0) {
                    Some(p) => {
                        return Err(invalid(format!(
                            "unexpected data after the last gzip member at byte {} \
                             (after {} bytes of zero padding)",
                            self.offset() + p as u64,
                            p
                        )))
                    }
                    None => self.in_pos = self.in_len,
                }
            }
        }
        let start = self.offset();
        if !self.need(2)? {
            return Err(if first {
                truncated("the file is empty or too short for a gzip header", start)
            } else {
                invalid(format!(
                    "unexpected data after the last gzip member at byte {start}"
                ))
            });
        }
        if self.inbuf[self.in_pos..self.in_pos + 2] != [0x1f, 0x8b] {
            return Err(invalid(if first {
                "not a gzip file (no 1f 8b magic at byte 0)".to_string()
            } else {
                format!("unexpected data after the last gzip member at byte {start}")
            }));
        }
        let mut hcrc = 0u32;
        let h = self.take(10, &mut hcrc, "gzip header")?;
        let (cm, flg) = (h[2], h[3]);
        let mtime = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if cm != 8 {
            return Err(invalid(format!(
                "gzip member at byte {start} uses compression method {cm}, only deflate (8) exists"
            )));
        }
        if flg & FRESERVED != 0 {
            return Err(invalid(format!(
                "gzip member at byte {start} has reserved header flag bits set (flags 0x{flg:02x})"
            )));
        }
        let mut header = GzHeader {
            mtime,
            text: flg & FTEXT != 0,
            ..Default::default()
        };
        if flg & FEXTRA != 0 {
            let x = self.take(2, &mut hcrc, "gzip FEXTRA length")?;
            let xlen = usize::from(u16::from_le_bytes([x[0], x[1]]));
            self.take(xlen, &mut hcrc, "gzip FEXTRA field")?;
            header.extra_len = xlen;
        }
        if flg & FNAME != 0 {
            header.name = Some(self.take_string(&mut hcrc, "file name (FNAME)")?);
        }
        if flg & FCOMMENT != 0 {
            header.comment = Some(self.take_string(&mut hcrc, "comment (FCOMMENT)")?);
        }
        if flg & FHCRC != 0 {
            let at = self.offset();
            let mut ignore = 0;
            let c = self.take(2, &mut ignore, "gzip header CRC")?;
            let stored = u16::from_le_bytes([c[0], c[1]]);
            if stored != (hcrc & 0xffff) as u16 {
                return Err(invalid(format!(
                    "gzip header CRC at byte {at} is 0x{stored:04x}, the header's is 0x{:04x}",
                    hcrc & 0xffff
                )));
            }
        }
        if first {
            self.header = Some(header);
        }
        self.members += 1;
        self.member_start = start;
        self.member_size = 0;
        self.crc = 0;
        self.inflate.init();
        Ok(true)
    }

    fn read_trailer(&mut self) -> io::Result<()> {
        let at = self.offset();
        if !self.need(8)? {
            return Err(truncated(
                "in the CRC-32/size trailer",
                self.in_base + self.in_len as u64,
            ));
        }
        let t = &self.inbuf[self.in_pos..self.in_pos + 8];
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let isize = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
        self.in_pos += 8;
        if crc != self.crc {
            return Err(invalid(format!(
                "CRC-32 mismatch in gzip member {} (starting at byte {}): trailer at byte {at} \
                 says {crc:08x}, the data gives {:08x}; the data is corrupt",
                self.members, self.member_start, self.crc
            )));
        }
        if u64::from(isize) != self.member_size & 0xffff_ffff {
            return Err(invalid(format!(
                "size mismatch in gzip member {} (starting at byte {}): trailer at byte {} says \
                 {isize} (mod 2^32), the data has {} bytes",
                self.members,
                self.member_start,
                at + 4,
                self.member_size
            )));
        }
        Ok(())
    }

    /// Decodes more output into the window. Sets `avail`; returns Ok with an empty avail at the end.
    fn decode_some(&mut self) -> io::Result<()> {
        loop {
            match self.state {
                State::Done => return Ok(()),
                State::Header => {
                    if self.read_header()? {
                        self.state = State::Body;
                    } else {
                        self.state = State::Done;
                    }
                }
                State::Trailer => {
                    if let Some((crc, size)) = self.raw {
                        check_entry(crc, size, self.crc, self.member_size)?;
                        self.state = State::Done;
                        continue;
                    }
                    self.read_trailer()?;
                    self.state = State::Header;
                }
                State::Body => {
                    if self.in_pos == self.in_len && !self.in_eof {
                        self.refill()?;
                    }
                    if self.out_pos == self.window.len() {
                        self.out_pos = 0;
                    }
                    let flags = if self.in_eof {
                        0
                    } else {
                        TINFL_FLAG_HAS_MORE_INPUT
                    };
                    let (status, used, produced) = decompress(
                        &mut self.inflate,
                        &self.inbuf[self.in_pos..self.in_len],
                        &mut self.window,
                        self.out_pos,
                        flags,
                    );
                    let err_at = self.offset();
                    self.in_pos += used;
                    let s = self.out_pos;
                    self.out_pos += produced;
                    if produced > 0 {
                        self.crc = crc32(self.crc, &self.window[s..s + produced]);
                        self.member_size += produced as u64;
                        self.total_out += produced as u64;
                        self.avail = (s, s + produced);
                    }
                    match status {
                        TINFLStatus::Done => self.state = State::Trailer,
                        TINFLStatus::HasMoreOutput => {}
                        TINFLStatus::NeedsMoreInput => {
                            if self.in_eof {
                                return Err(truncated("inside compressed data", self.offset()));
                            }
                            // Normally all input was consumed; if a few bytes were left, move
                            // them to the front and read more behind them.
                            if produced == 0 && self.in_pos < self.in_len {
                                self.refill()?;
                            }
                        }
                        TINFLStatus::FailedCannotMakeProgress => {
                            return Err(truncated("inside compressed data", self.offset()));
                        }
                        other => {
                            return Err(invalid(format!(
                                "corrupt deflate data in gzip member {} near byte {} ({other:?})",
                                self.members,
                                err_at + used as u64
                            )));
                        }
                    }
                    if produced > 0 {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Compares a zip entry's CRC-32 and size from the central directory with the decoded data.
pub(crate) fn check_entry(want_crc: u32, want_size: u64, crc: u32, size: u64) -> io::Result<()> {
    if size != want_size {
        return Err(invalid(format!(
            "the zip entry decodes to {size} bytes, the archive says {want_size}; the archive is corrupt"
        )));
    }
    if crc != want_crc {
        return Err(invalid(format!(
            "CRC-32 mismatch in the zip entry: the archive says {want_crc:08x}, the data gives {crc:08x}; the data is corrupt"
        )));
    }
    Ok(())
}

impl<R: Read> BufRead for GzDecoder<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.avail.0 == self.avail.1 {
            self.avail = (0, 0);
            self.decode_some()?;
        }
        Ok(&self.window[self.avail.0..self.avail.1])
    }

    fn consume(&mut self, amt: usize) {
        self.avail.0 = (self.avail.0 + amt).min(self.avail.1);
    }
}

impl<R: Read> Read for GzDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// gzip encoder: one member, no file name, mtime 0.
pub struct GzEncoder<W: Write> {
    inner: Option<W>,
    deflate: Box<CompressorOxide>,
    out: Vec<u8>,
    crc: u32,
    size: u64,
}

impl<W: Write> GzEncoder<W> {
    /// `level` 0 (stored) to 9 (best); 6 is gzip's default.
    pub fn new(mut inner: W, level: u8) -> io::Result<GzEncoder<W>> {
        let level = level.min(9);
        let xfl = match level {
            9 => 2,
            0 | 1 => 4,
            _ => 0,
        };
        // ID1 ID2 CM FLG MTIME(4) XFL OS(3 = Unix)
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3])?;
        let flags = create_comp_flags_from_zip_params(i32::from(level), 0, 0);
        Ok(GzEncoder {
            inner: Some(inner),
            deflate: Box::new(CompressorOxide::new(flags)),
            out: vec![0u8; 256 << 10],
            crc: 0,
            size: 0,
        })
    }

    fn run(&mut self, mut data: &[u8], flush: TDEFLFlush) -> io::Result<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Err(io::Error::other("gzip encoder already finished"));
        };
        loop {
            let (status, used, produced) = compress(&mut self.deflate, data, &mut self.out, flush);
            data = &data[used..];
            inner.write_all(&self.out[..produced])?;
            match status {
                TDEFLStatus::Done => return Ok(()),
                TDEFLStatus::Okay => {
                    if data.is_empty() && produced < self.out.len() && flush == TDEFLFlush::None {
                        return Ok(());
                    }
                }
                other => return Err(io::Error::other(format!("deflate failed: {other:?}"))),
            }
        }
    }

    /// Ends the member (deflate end block and the CRC-32/ISIZE trailer) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.run(&[], TDEFLFlush::Finish)?;
        let mut inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("gzip encoder already finished"))?;
        inner.write_all(&self.crc.to_le_bytes())?;
        inner.write_all(&((self.size & 0xffff_ffff) as u32).to_le_bytes())?;
        inner.flush()?;
        Ok(inner)
    }
}

impl<W: Write> Write for GzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.crc = crc32(self.crc, buf);
        self.size += buf.len() as u64;
        self.run(buf, TDEFLFlush::None)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        let mut x = 12345u32;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3000 < 1500 {
                    (i % 61) as u8
                } else {
                    (x >> 24) as u8
                }
            })
            .collect()
    }

    fn gz(data: &[u8], level: u8) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), level).unwrap();
        for c in data.chunks(100_000) {
            e.write_all(c).unwrap();
        }
        e.finish().unwrap()
    }

    fn decode(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut d = GzDecoder::new(bytes);
        let mut out = Vec::new();
        d.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_levels_and_sizes() {
        for (n, level) in [(0, 6), (1, 1), (70_000, 0), (3_000_000, 6), (300_000, 9)] {
            let data = sample(n);
            let z = gz(&data, level);
            assert_eq!(decode(&z).unwrap(), data, "n {n} level {level}");
        }
    }

    #[test]
    fn multi_member_and_zero_padding() {
        let a = sample(2_500_000);
        let b = sample(10_000);
        let mut z = gz(&a, 6);
        z.extend(gz(&b, 1));
        let mut want = a.clone();
        want.extend(&b);
        assert_eq!(decode(&z).unwrap(), want);
        z.extend([0u8; 1000]);
        assert_eq!(decode(&z).unwrap(), want);
        let mut d = GzDecoder::new(&z[..]);
        io::copy(&mut d, &mut io::sink()).unwrap();
        assert_eq!(d.members(), 2);
    }

    #[test]
    fn header_fields_and_hcrc() {
        let data = sample(5000);
        let plain = gz(&data, 6);
        // Rebuild with FEXTRA, FNAME, FCOMMENT, FHCRC.
        let mut h = vec![
            0x1f,
            0x8b,
            8,
            FEXTRA | FNAME | FCOMMENT | FHCRC,
            1,
            0,
            0,
            0,
            0,
            3,
        ];
        h.extend([3, 0, b'a', b'b', b'c']);
        h.extend(b"disk.img\0");
        h.extend(b"a comment\0");
        let c = crc32(0, &h);
        h.extend(((c & 0xffff) as u16).to_le_bytes());
        let mut z = h.clone();
        z.extend(&plain[10..]);
        let mut d = GzDecoder::new(&z[..]);
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        let hd = d.header().unwrap();
        assert_eq!(hd.name.as_deref(), Some("disk.img"));
        assert_eq!(hd.comment.as_deref(), Some("a comment"));
        assert_eq!(hd.extra_len, 3);
        // A wrong header CRC is refused.
        let n = h.len();
        z[n - 1] ^= 0xff;
        let e = decode(&z).unwrap_err().to_string();
        assert!(e.contains("header CRC"), "{e}");
    }

    /// A reader that returns at most 7 bytes per call: headers and trailers split anywhere.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(7).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn tiny_reads_split_headers_and_trailers() {
        let a = sample(200_000);
        let mut z = gz(&a, 6);
        let mut h = vec![0x1f, 0x8b, 8, FNAME | FCOMMENT | FHCRC, 0, 0, 0, 0, 0, 3];
        h.extend(b"name\0comment\0");
        let c = crc32(0, &h);
        h.extend(((c & 0xffff) as u16).to_le_bytes());
        let mut second = h;
        second.extend(&gz(&a, 1)[10..]);
        z.extend(&second);
        z.extend([0u8; 20]);
        let mut d = GzDecoder::new(Trickle(&z));
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 400_000);
        assert!(out[..200_000] == a[..] && out[200_000..] == a[..]);
        assert_eq!(d.members(), 2);
        assert_eq!(d.total_in(), z.len() as u64);
    }

    #[test]
    fn refuses_corruption_with_offsets() {
        let data = sample(1_000_000);
        let z = gz(&data, 6);
        // Reserved flag bits.
        let mut r = z.clone();
        r[3] = 0x20;
        assert!(decode(&r).unwrap_err().to_string().contains("reserved"));
        // Trailing garbage.
        let mut g = z.clone();
        g.extend(b"\0\0garbage");
        let e = decode(&g).unwrap_err().to_string();
        assert!(
            e.contains(&format!("byte {}", z.len() + 2)) && e.contains("after the last"),
            "{e}"
        );
        // Truncation, in the data and in the trailer.
        for cut in [z.len() / 2, z.len() - 3, 5] {
            let e = decode(&z[..cut]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "cut {cut}: {e}");
            assert!(e.to_string().contains("truncated at byte"), "{e}");
        }
        // Bad CRC and bad ISIZE.
        let mut c = z.clone();
        let n = c.len();
        c[n - 8] ^= 1;
        assert!(decode(&c)
            .unwrap_err()
            .to_string()
            .contains("CRC-32 mismatch"));
        let mut s = z.clone();
        s[n - 4] ^= 1;
        assert!(decode(&s)
            .unwrap_err()
            .to_string()
            .contains("size mismatch"));
        // Not gzip at all.
        assert!(decode(b"hello")
            .unwrap_err()
            .to_string()
            .contains("not a gzip"));
        assert!(decode(b"").is_err());
    }
}
