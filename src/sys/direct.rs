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

#[cfg(test)]
mod tests {
    use super::*;

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
