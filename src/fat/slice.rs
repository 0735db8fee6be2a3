//! A `Read + Write + Seek` view of one byte range of a larger device or file: a partition
//! inside a disk image or block device.
#![forbid(unsafe_code)]

use std::io::{self, Read, Seek, SeekFrom, Write};

/// The byte range `[offset, offset + len)` of `inner`, seen as a file of length `len`.
///
/// Reads stop at the end of the range; a write that would go past it fails with
/// `ErrorKind::WriteZero` and writes nothing beyond the range, so a bug above this layer cannot
/// spill into the next partition.
#[derive(Debug)]
pub struct Slice<D> {
    inner: D,
    offset: u64,
    len: u64,
    pos: u64,
}

impl<D: Seek> Slice<D> {
    /// The view of `[offset, offset + len)` of `inner`. Fails when the range does not fit in
    /// `inner` (its length is taken by seeking to its end, which works for files and block
    /// devices).
    pub fn new(mut inner: D, offset: u64, len: u64) -> io::Result<Self> {
        let end = offset.checked_add(len).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("byte range at {offset} of length {len} overflows"),
            )
        })?;
        let size = inner.seek(SeekFrom::End(0))?;
        if end > size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "byte range {offset}..{end} goes past the end of the device ({size} bytes)"
                ),
            ));
        }
        Ok(Slice {
            inner,
            offset,
            len,
            pos: 0,
        })
    }
}

impl<D> Slice<D> {
    /// Gives back the device (its position is unspecified).
    pub fn into_inner(self) -> D {
        self.inner
    }

    /// Length of the range in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the range inside the device.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// How many of `want` bytes fit between the position and the end of the range.
    fn room(&self, want: usize) -> usize {
        let left = self.len.saturating_sub(self.pos);
        usize::try_from(left).map_or(want, |l| l.min(want))
    }
}

impl<D: Read + Seek> Read for Slice<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.room(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.inner.seek(SeekFrom::Start(self.offset + self.pos))?;
        let got = self.inner.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl<D: Write + Seek> Write for Slice<D> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.room(buf.len());
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "write at {} goes past the end of the partition ({} bytes)",
                    self.pos, self.len
                ),
            ));
        }
        self.inner.seek(SeekFrom::Start(self.offset + self.pos))?;
        let put = self.inner.write(&buf[..n])?;
        self.pos += put as u64;
        Ok(put)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<D: Seek> Seek for Slice<D> {
    fn seek(&mut self, from: SeekFrom) -> io::Result<u64> {
        let new = match from {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_writes_and_seeks_inside_the_range_only() {
        let dev = Cursor::new((0u8..100).collect::<Vec<u8>>());
        let mut s = Slice::new(dev, 10, 20).unwrap();
        let mut buf = [0u8; 8];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [10, 11, 12, 13, 14, 15, 16, 17]);
        assert_eq!(s.seek(SeekFrom::End(-2)).unwrap(), 18);
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, vec![28, 29]);
        s.seek(SeekFrom::Start(19)).unwrap();
        // Only one byte fits: a short write, then an error.
        assert_eq!(s.write(&[0xAA, 0xBB]).unwrap(), 1);
        let e = s.write(&[0xBB]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
        assert!(s.write_all(&[1, 2]).is_err());
        assert!(s.seek(SeekFrom::Current(-100)).is_err());
        let v = s.into_inner().into_inner();
        assert_eq!(v[29], 0xAA);
        assert_eq!(v[30], 30);
        assert_eq!(v[9], 9);
    }

    #[test]
    fn range_past_the_device_is_refused() {
        let dev = Cursor::new(vec![0u8; 100]);
        let e = Slice::new(dev, 90, 20).unwrap_err();
        assert!(e.to_string().contains("past the end"), "{e}");
        assert!(Slice::new(Cursor::new(vec![0u8; 1]), u64::MAX, 2).is_err());
    }

    #[test]
    fn read_only_device_works() {
        // Read + Seek only (a &[u8] cursor has no Write).
        let data = [1u8, 2, 3, 4, 5];
        let mut s = Slice::new(Cursor::new(&data[..]), 1, 3).unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        assert_eq!(v, vec![2, 3, 4]);
    }
}
