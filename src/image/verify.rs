//! Image verification, before anything destructive: [`verify`] (one streaming pass, then the
//! policy checks) and [`prepare`] (the same, with a flasher image's inner image extracted and
//! verified instead).
//!
//! | piece | module |
//! |---|---|
//! | the streaming pass ([`StreamCheck`], [`scan`]) | [`super::stream`] |
//! | the policy checks ([`check`]) | [`super::policy`] |
//! | device type and version from the boot partition | [`super::boot`] |
//! | what was found and what to check ([`Verified`], [`VerifyOptions`]) | [`super::verified`] |
//! | a flasher image's inner image | [`super::flasher`] |
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

pub use super::boot::{parse_device_type, parse_os_release_version};
pub use super::policy::check;
pub use super::stream::{scan, StreamCheck, MAX_BOOT_CAPTURE};
pub use super::verified::{
    Layout, PartInfo, Verified, VerifyOptions, BALENA_LABELS, FLASHER_LABELS, SIZE_STEP,
};
use crate::error::{Error, Result};

/// Verifies the image at `path`: [`scan`] then [`check`].
pub fn verify(path: &Path, o: &VerifyOptions) -> Result<Verified> {
    let v = scan(path, o)?;
    check(path, &v, o)?;
    Ok(v)
}

/// The image to flash, proven good.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The file to flash: the file given, or the inner image extracted from a flasher image.
    pub image: PathBuf,
    pub verified: Verified,
    /// The flasher image the inner image came from, when it was one.
    pub flasher: Option<Verified>,
}

/// Like [`verify`], except that a flasher image has its inner image extracted into the work
/// dir (gzip level `level`) and that one verified (device type, size) instead. The SHA-256
/// check applies to the file as given.
pub fn prepare(path: &Path, o: &VerifyOptions, level: u8) -> Result<Prepared> {
    let v = scan(path, o)?;
    if v.layout != Layout::Flasher {
        check(path, &v, o)?;
        return Ok(Prepared {
            image: path.to_path_buf(),
            verified: v,
            flasher: None,
        });
    }
    // The checksum is of the file as given; the rest applies to the inner image.
    let outer = VerifyOptions {
        target_size: None,
        expected_device_type: None,
        ..o.clone()
    };
    let mut as_balena = v.clone();
    as_balena.layout = Layout::Balena;
    check(path, &as_balena, &outer)?;
    crate::info!(
        "{} is a flasher image: extracting its inner image",
        path.display()
    );
    let inner = super::flasher::extract_inner(path, &v, &o.work_dir, level)?;
    let inner_opts = VerifyOptions {
        expected_sha256: None,
        ..o.clone()
    };
    let iv = scan(&inner, &inner_opts)?;
    if iv.layout == Layout::Flasher {
        return Err(Error::new(
            "checking the image layout",
            inner.display(),
            "the flasher image's inner image is itself a flasher image",
        ));
    }
    check(&inner, &iv, &inner_opts)?;
    Ok(Prepared {
        image: inner,
        verified: iv,
        flasher: Some(v),
    })
}
