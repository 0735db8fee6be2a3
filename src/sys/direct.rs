//! Aligned buffers and O_DIRECT files: the disk side of the flash pipeline.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Alignment of every O_DIRECT buffer, offset and length (covers 512 and 4096-byte sectors).
pub const ALIGN: usize = 4096;

#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Block([u8; ALIGN]);

/// A heap buffer whose start is aligned to [`ALIGN`] and whose capacity is a multiple of it.
pub struct AlignedBuf {
    blocks: Vec<Block>,
    /// Bytes in use, from the start.
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer of at least `size` bytes (rounded up to [`ALIGN`]).
    pub fn new(size: usize) -> AlignedBuf {
        let n = size.div_ceil(ALIGN).max(1);
        AlignedBuf {
            blocks: vec![Block([0; ALIGN]); n],
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.blocks.len() * ALIGN
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets the bytes in use (clamped to the capacity).
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.capacity());
    }

    /// The whole capacity, for filling.
    pub fn spare(&mut self) -> &mut [u8] {
        let cap = self.capacity();
        // SAFETY: `blocks` is a contiguous Vec of `Block`s, each exactly ALIGN initialised
        // bytes with no padding (repr(C) around a byte array), so the allocation holds `cap`
        // initialised bytes; the &mut borrow of self keeps the Vec alive and unaliased.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast::<u8>(), cap) }
    }

    /// The bytes in use.
    pub fn data(&self) -> &[u8] {
        // SAFETY: as in `spare`: contiguous initialised bytes; `len <= capacity` is kept by
        // `set_len`; the shared borrow of self keeps the Vec alive.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<u8>(), self.len) }
    }
}

/// Opens `path` for writing with O_DIRECT (no page cache). Fails with EINVAL on filesystems
/// without O_DIRECT support (tmpfs); callers fall back to buffered I/O plus fsync.
pub fn open_direct_write(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

/// Opens `path` for reading with O_DIRECT.
pub fn open_direct_read(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

/// The first `len` bytes of `path` as the device holds them, not as the page cache does:
/// read with O_DIRECT; where O_DIRECT is refused (EINVAL: tmpfs, some character devices),
/// the file's cached pages are dropped first (`posix_fadvise(POSIX_FADV_DONTNEED)`, after
/// an fsync, so clean pages only) and the read is buffered. Short when the file is.
pub fn read_uncached(path: &Path, len: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    match open_direct_read(path) {
        Ok(mut f) => {
            let mut buf = AlignedBuf::new(len.max(1));
            let want = buf.capacity();
            while buf.len() < len {
                let at = buf.len();
                let n = f.read(&mut buf.spare()[..want - at])?;
                if n == 0 {
                    break;
                }
                buf.set_len(at + n);
            }
            let mut v = buf.data().to_vec();
            v.truncate(len);
            Ok(v)
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let f = OpenOptions::new().read(true).open(path)?;
            f.sync_all()?;
            drop_cache(&f)?;
            let mut v = Vec::with_capacity(len);
            f.take(len as u64).read_to_end(&mut v)?;
            Ok(v)
        }
        Err(e) => Err(e),
    }
}

/// Drops the clean cached pages of the open file (the whole range).
fn drop_cache(f: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fadvise only reads its integer arguments; the fd is open for the
    // lifetime of the borrow of `f`.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block device's buffered read returns the page cache; `read_uncached` returns what the
    /// device holds. A loop device over a file this test created stands in for the eMMC: the
    /// bytes written through it are replaced underneath (in the backing file), as a device
    /// that lost the write would. Root only.
    #[test]
    fn read_uncached_sees_the_device_not_the_page_cache() {
        use std::io::{Read, Seek, SeekFrom, Write};
        let p = std::env::temp_dir().join(format!("takeover-uncached-{}", std::process::id()));
        std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
        let Some(mut l) = super::super::loopdev::test_loop(&p, 0, 0) else {
            let _ = std::fs::remove_file(&p);
            return;
        };
        let blob = vec![0xA5u8; 6000];
        let mut dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(l.path())
            .unwrap();
        dev.write_all(&blob).unwrap();
        dev.sync_all().unwrap();
        // The "device" loses the write: the backing file gets other bytes.
        let mut back = OpenOptions::new().write(true).open(&p).unwrap();
        back.write_all(&[0x5Au8; 6000]).unwrap();
        back.sync_all().unwrap();
        // The buffered read (the old read-back) still sees the blob in the page cache.
        let mut cached = vec![0u8; blob.len()];
        dev.seek(SeekFrom::Start(0)).unwrap();
        dev.read_exact(&mut cached).unwrap();
        let got = read_uncached(l.path(), blob.len());
        l.detach().unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(
            cached, blob,
            "control: the buffered read comes from the page cache"
        );
        assert_eq!(got.unwrap(), vec![0x5Au8; 6000]);
    }

    #[test]
    fn buffers_are_aligned() {
        let mut b = AlignedBuf::new(10_000);
        assert_eq!(b.capacity(), 3 * ALIGN);
        assert_eq!(b.spare().as_ptr() as usize % ALIGN, 0);
        b.spare()[..3].copy_from_slice(b"abc");
        b.set_len(3);
        assert_eq!(b.data(), b"abc");
        b.set_len(usize::MAX);
        assert_eq!(b.len(), b.capacity());
    }
}
