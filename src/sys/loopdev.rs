//! Loop devices: attach a file (or a byte range of a device) as a block device.
//!
//! Used in stage 2 when the kernel does not (yet) show partition nodes of the freshly written
//! disk: the data partition is reached through a loop device with an offset instead.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::cvt;

// <linux/loop.h>
const LOOP_SET_FD: libc::Ioctl = 0x4C00;
const LOOP_CLR_FD: libc::Ioctl = 0x4C01;
const LOOP_SET_STATUS64: libc::Ioctl = 0x4C04;
const LOOP_CTL_GET_FREE: libc::Ioctl = 0x4C82;
const LO_NAME_SIZE: usize = 64;
const LO_KEY_SIZE: usize = 32;
/// `LO_FLAGS_AUTOCLEAR`: the kernel detaches the loop device when its last user closes it.
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `struct loop_info64` from <linux/loop.h> (same layout on every architecture).
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; LO_KEY_SIZE],
    lo_init: [u64; 2],
}

/// An attached loop device; detached by [`Loop::detach`] (or best effort on drop).
#[derive(Debug)]
pub struct Loop {
    path: PathBuf,
    dev: Option<File>,
}

impl Loop {
    /// Attaches `backing` (read-write) at `offset`, limited to `size` bytes (0 = to the end).
    /// `dev_dir` is where loop nodes live (`/dev`).
    pub fn attach(dev_dir: &Path, backing: &Path, offset: u64, size: u64) -> io::Result<Loop> {
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dev_dir.join("loop-control"))?;
        let file = OpenOptions::new().read(true).write(true).open(backing)?;
        // LOOP_CTL_GET_FREE races with other users of loop devices; retry a few times when the
        // device we were given got taken (EBUSY) between the two calls.
        let mut last = io::Error::from_raw_os_error(libc::EBUSY);
        for _ in 0..5 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument pointer; the fd is valid while `ctl`
            // lives.
            let n = cvt(unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE) })?;
            let path = dev_dir.join(format!("loop{n}"));
            let dev = OpenOptions::new().read(true).write(true).open(&path)?;
            // SAFETY: LOOP_SET_FD takes the backing fd as an integer argument; both fds are
            // valid while `dev` and `file` live.
            match cvt(unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD, file.as_raw_fd()) }) {
                Ok(_) => {
                    let mut l = Loop {
                        path,
                        dev: Some(dev),
                    };
                    if let Err(e) = l.set_status(offset, size) {
                        let _ = l.detach();
                        return Err(e);
                    }
                    return Ok(l);
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    fn set_status(&mut self, offset: u64, size: u64) -> io::Result<()> {
        let Some(dev) = &self.dev else {
            return Err(io::Error::from_raw_os_error(libc::ENXIO));
        };
        let info = LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: offset,
            lo_sizelimit: size,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: LO_FLAGS_AUTOCLEAR,
            lo_file_name: [0; LO_NAME_SIZE],
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; LO_KEY_SIZE],
            lo_init: [0; 2],
        };
        // SAFETY: `info` is a fully initialised loop_info64 with the kernel's layout, alive
        // across the call; the kernel only reads it.
        cvt(unsafe {
            libc::ioctl(
                dev.as_raw_fd(),
                LOOP_SET_STATUS64,
                &info as *const LoopInfo64,
            )
        })?;
        Ok(())
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Detaches the loop device.
    pub fn detach(&mut self) -> io::Result<()> {
        if let Some(dev) = self.dev.take() {
            // SAFETY: LOOP_CLR_FD takes no argument; the fd is valid while `dev` lives.
            cvt(unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CLR_FD, 0) })?;
        }
        Ok(())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // Best effort: LO_FLAGS_AUTOCLEAR also detaches once the last user closes the device.
        let _ = self.detach();
    }
}

/// Tests: a loop device over `backing` (a file the test created) at `offset`, `size` bytes;
/// `None` (said on stderr) when not root or loop devices are unavailable here.
#[cfg(test)]
pub(crate) fn test_loop(backing: &Path, offset: u64, size: u64) -> Option<Loop> {
    if super::geteuid() != 0 || !Path::new("/dev/loop-control").exists() {
        eprintln!("skipped: needs root and /dev/loop-control");
        return None;
    }
    match Loop::attach(Path::new("/dev"), backing, offset, size) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("skipped: loop devices unavailable here: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_info64_has_the_kernel_size() {
        // sizeof(struct loop_info64) is 232 on every Linux architecture.
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
    }

    /// Attaches a file this test created, reads through the loop device, detaches. Root only.
    #[test]
    fn attach_reads_backing_file_at_offset() {
        use std::io::{Read, Write};
        let p = std::env::temp_dir().join(format!("takeover-loop-{}", std::process::id()));
        let mut f = File::create(&p).unwrap();
        let mut data = vec![0u8; 2 * 1024 * 1024];
        data[1024 * 1024..1024 * 1024 + 5].copy_from_slice(b"hello");
        f.write_all(&data).unwrap();
        drop(f);
        let Some(mut l) = test_loop(&p, 1024 * 1024, 1024 * 1024) else {
            let _ = std::fs::remove_file(&p);
            return;
        };
        let mut buf = [0u8; 5];
        File::open(l.path()).unwrap().read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        l.detach().unwrap();
        std::fs::remove_file(&p).unwrap();
    }
}
