//! `uname(2)`: the running kernel's architecture and release.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;

/// The fields of `struct utsname` takeover uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uname {
    /// e.g. "aarch64", "armv7l", "x86_64".
    pub machine: String,
    /// e.g. "6.6.31+rpt-rpi-v8".
    pub release: String,
}

#[allow(clippy::unnecessary_cast)] // c_char is i8 on x86, u8 on ARM
fn field(buf: &[libc::c_char]) -> String {
    // The kernel NUL-terminates each field within its array; fall back to the whole array
    // (read as bytes) if it ever did not.
    let bytes: Vec<u8> = buf.iter().map(|&c| c as u8).collect();
    match CStr::from_bytes_until_nul(&bytes) {
        Ok(c) => c.to_string_lossy().into_owned(),
        Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `uname(&buf)`.
pub fn uname() -> io::Result<Uname> {
    let mut buf = MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `buf` is a valid, writable utsname (all-zero bytes are a valid value of this
    // plain array-of-c_char struct) that lives for the duration of the call.
    super::cvt(unsafe { libc::uname(buf.as_mut_ptr()) })?;
    // SAFETY: zero-initialised above and filled by uname, which returned success.
    let u = unsafe { buf.assume_init() };
    Ok(Uname {
        machine: field(&u.machine),
        release: field(&u.release),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname_gives_machine_and_release() {
        let u = uname().unwrap();
        assert!(!u.machine.is_empty());
        assert!(!u.release.is_empty());
        if cfg!(target_arch = "x86_64") || cfg!(target_arch = "aarch64") {
            assert_eq!(u.machine, std::env::consts::ARCH);
        }
    }
}
