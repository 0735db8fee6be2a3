//! MTD (raw flash) ioctls: `MEMGETINFO` and `MEMERASE` (`include/uapi/mtd/mtd-abi.h`).
//!
//! Used in stage 2 on Jetson Xavier NX to rewrite the QSPI boot flash (`/dev/mtd0`) without
//! `mtd_debug`. Writing and reading the data itself is plain `write(2)`/`read(2)` on the
//! character device.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::block::IoctlReq;
use super::cvt;

/// `struct mtd_info_user`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MtdInfo {
    pub kind: u8,
    pub flags: u32,
    /// Total size in bytes.
    pub size: u32,
    /// Erase block size in bytes.
    pub erasesize: u32,
    pub writesize: u32,
    pub oobsize: u32,
    pub padding: u64,
}

/// `struct erase_info_user`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EraseInfo {
    pub start: u32,
    pub length: u32,
}

const IOC_WRITE: u32 = 1;

/// The kernel's `_IOW(ty, nr, size)`.
const fn iow(ty: u8, nr: u8, size: usize) -> u32 {
    (IOC_WRITE << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

/// `MEMGETINFO = _IOR('M', 1, struct mtd_info_user)` = 0x80204d01.
pub const MEMGETINFO: IoctlReq = super::block::ior(b'M', 1, size_of::<MtdInfo>()) as IoctlReq;
/// `MEMERASE = _IOW('M', 2, struct erase_info_user)` = 0x40084d02.
pub const MEMERASE: IoctlReq = iow(b'M', 2, size_of::<EraseInfo>()) as IoctlReq;

/// `ioctl(MEMGETINFO)`: size and erase block size of the MTD device open on `fd`.
pub fn mem_get_info(fd: BorrowedFd<'_>) -> io::Result<MtdInfo> {
    let mut info = MtdInfo::default();
    // SAFETY: `fd` is open for the borrow; MEMGETINFO writes one `struct mtd_info_user`, whose
    // layout `MtdInfo` reproduces (#[repr(C)], 32 bytes), into the live, writable `info`.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), MEMGETINFO, &mut info as *mut MtdInfo) })?;
    Ok(info)
}

/// `ioctl(MEMERASE)`: erases `length` bytes from `start` (both erase-block aligned).
pub fn mem_erase(fd: BorrowedFd<'_>, start: u32, length: u32) -> io::Result<()> {
    let e = EraseInfo { start, length };
    // SAFETY: `fd` is open for the borrow; MEMERASE only reads one `struct erase_info_user`
    // (#[repr(C)], two u32) from `e`, which lives until the call returns.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), MEMERASE, &e as *const EraseInfo) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn request_numbers_match_mtd_abi_h() {
        assert_eq!(size_of::<MtdInfo>(), 32);
        assert_eq!(size_of::<EraseInfo>(), 8);
        assert_eq!(MEMGETINFO as u32, 0x8020_4d01);
        assert_eq!(MEMERASE as u32, 0x4008_4d02);
    }

    #[test]
    fn ioctls_on_a_regular_file_fail_cleanly() {
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(mem_get_info(f.as_fd()).is_err());
        assert!(mem_erase(f.as_fd(), 0, 4096).is_err());
    }
}
