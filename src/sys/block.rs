//! Block-device ioctls.
//!
//! ioctl request numbers are built the kernel's way (`include/uapi/asm-generic/ioctl.h`), so they
//! come out right on 32- and 64-bit targets alike. Two traps this module exists to avoid:
//! - `BLKGETSIZE64` is defined as `_IOR(0x12, 114, size_t)`: the size field of the request is
//!   `sizeof(size_t)` (4 on 32-bit ARM, 8 on 64-bit), but the kernel always writes a `u64`. The
//!   out-parameter is `u64` on every target; a `usize` would be overrun on 32-bit.
//! - The request argument of `ioctl(2)` is `int` in musl and `unsigned long` in glibc:
//!   [`IoctlReq`] is whichever the C library in use declares.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt;

/// The type of the request argument of `libc::ioctl` for the C library in use: `c_int` on musl,
/// `c_ulong` on glibc (the libc crate's `Ioctl`, which its `ioctl` signature uses).
pub type IoctlReq = libc::Ioctl;

// The asm-generic encoding below is the one of x86, ARM, AArch64 and RISC-V. MIPS, PowerPC,
// SPARC and Alpha put the direction bits elsewhere.
#[cfg(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
compile_error!("src/sys/block.rs: ioctl encoding of this architecture is not asm-generic");

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_READ: u32 = 2;

/// The kernel's `_IOR(ty, nr, size)`: a request that reads `size` bytes from the kernel.
/// Evaluated at compile time; a size that does not fit the 14-bit field fails the build.
pub const fn ior(ty: u8, nr: u8, size: usize) -> u32 {
    assert!(
        size < (1 << IOC_SIZEBITS),
        "ioctl argument size exceeds 14 bits"
    );
    (IOC_READ << IOC_DIRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
}

/// `BLKGETSIZE64`: size of a block device in bytes, written as a `u64` on every target.
/// 0x80081272 on 64-bit targets, 0x80041272 on 32-bit ones. (The `as` reinterprets the 32 bits
/// as musl's `int`; the value is the same bit pattern the C headers produce.)
pub const BLKGETSIZE64: IoctlReq = ior(0x12, 114, size_of::<usize>()) as IoctlReq;

/// Size in bytes of the block device open on `fd` (`ioctl(BLKGETSIZE64)`).
/// Fails with `ENOTTY` when `fd` is not a block device.
pub fn block_size(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut size: u64 = 0;
    // The request's size field says sizeof(size_t), but the kernel's put_user is on a u64.
    // SAFETY: `fd` is open for the whole borrow; BLKGETSIZE64 writes exactly one u64 through
    // its argument on every architecture, and `size` is a live, aligned, writable u64.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), BLKGETSIZE64, &mut size as *mut u64) })?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;
    use std::process::Command;

    #[test]
    fn blkgetsize64_matches_the_c_headers() {
        // Values of BLKGETSIZE64 from <linux/fs.h> as compiled by gcc for each word size.
        #[cfg(target_pointer_width = "64")]
        let expected: u32 = 0x8008_1272;
        #[cfg(target_pointer_width = "32")]
        let expected: u32 = 0x8004_1272;
        assert_eq!(BLKGETSIZE64 as u32, expected, "{:#x}", BLKGETSIZE64 as u32);
        // Sign/zero extension must not add bits when the request is widened by the C library.
        // (c_ulong is u32 on 32-bit glibc, u64 on 64-bit: the conversion is not useless there.)
        #[cfg(not(target_env = "musl"))]
        #[allow(clippy::useless_conversion)]
        {
            assert_eq!(u64::from(BLKGETSIZE64), u64::from(expected));
        }
        #[cfg(target_env = "musl")]
        assert_eq!(size_of::<IoctlReq>(), size_of::<libc::c_int>());
        #[cfg(target_env = "gnu")]
        assert_eq!(size_of::<IoctlReq>(), size_of::<libc::c_ulong>());
        assert_eq!(ior(0x12, 114, 8), 0x8008_1272);
        assert_eq!(ior(0x12, 114, 4), 0x8004_1272);
    }

    #[test]
    fn target_word_sizes_are_what_the_release_targets_promise() {
        // The 32-bit ARM builds have a 32-bit usize but 64-bit file offsets: musl's off_t is
        // 64-bit everywhere, so libc::lseek/pread/fallocate take offsets past 4 GiB. (32-bit
        // glibc's off_t is 32-bit: one more reason the release builds use musl.)
        #[cfg(target_env = "musl")]
        assert_eq!(size_of::<libc::off_t>(), 8);
        #[cfg(target_arch = "arm")]
        assert_eq!(size_of::<usize>(), 4);
        #[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
        assert_eq!(size_of::<usize>(), 8);
        // Every supported target is little-endian (the GPT/MBR/FAT parsers read LE fields with
        // from_le_bytes, but nothing should silently assume otherwise).
        assert_eq!(u32::from_ne_bytes([0x78, 0x56, 0x34, 0x12]), 0x1234_5678);
    }

    #[test]
    fn block_size_refuses_a_regular_file() {
        let f = File::open("/proc/self/exe")
            .or_else(|_| File::open("Cargo.toml"))
            .unwrap();
        let err = block_size(f.as_fd()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTTY), "{err}");
    }

    /// Root only: a loop device this test creates over a 3 MiB temporary file reports 3 MiB.
    /// Under qemu-user this also proves the 32-bit request number is the one qemu translates.
    #[test]
    fn block_size_of_a_loop_device_this_test_creates() {
        if super::super::geteuid() != 0 {
            eprintln!("skipped: needs root to attach a loop device");
            return;
        }
        let dir = std::env::temp_dir().join(format!("takeover-blk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let backing = dir.join("disk.img");
        let len: u64 = 3 * 1024 * 1024;
        File::create(&backing).unwrap().set_len(len).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&backing)
            .output();
        let dev = match out {
            Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap().trim().to_string(),
            Ok(o) => {
                eprintln!(
                    "skipped: losetup failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                let _ = std::fs::remove_dir_all(&dir);
                return;
            }
            Err(e) => {
                eprintln!("skipped: cannot run losetup: {e}");
                let _ = std::fs::remove_dir_all(&dir);
                return;
            }
        };
        let got = File::open(&dev).and_then(|f| block_size(f.as_fd()));
        let detached = Command::new("losetup").arg("-d").arg(&dev).status();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got.unwrap(), len, "{dev}");
        assert!(detached.unwrap().success(), "losetup -d {dev}");
    }
}
