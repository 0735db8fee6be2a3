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
pub use super::stream::{scan, scan_hashing, StreamCheck, MAX_BOOT_CAPTURE};
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
#[derive(Debug)]
pub struct Prepared {
    /// The file to flash: the file given, or the inner image extracted from a flasher image.
    pub image: PathBuf,
    pub verified: Verified,
    /// The flasher image the inner image came from, when it was one.
    pub flasher: Option<Verified>,
    /// The extracted inner image (in the work dir): removed when this is dropped, unless kept
    /// ([`Extracted::keep`]), so a run that ends, failed or not, leaves none behind.
    pub extracted: Option<Extracted>,
}

/// An inner image extracted from a flasher image into the work dir
/// (`<name>.from-flasher.img.gz`): removed on drop unless [`Extracted::keep`] is called.
#[derive(Debug)]
pub struct Extracted(Option<PathBuf>);

impl Extracted {
    /// Keeps the file (`-d`: it is what the operator asked for); returns its path.
    pub fn keep(mut self) -> PathBuf {
        let p = self.0.take().unwrap_or_default();
        crate::info!(
            "the inner image extracted from the flasher image is kept as {} (pass it with -i)",
            p.display()
        );
        p
    }
}

impl Drop for Extracted {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            match std::fs::remove_file(&p) {
                Ok(()) => crate::info!(
                    "removed {}, the inner image this run extracted from the flasher image",
                    p.display()
                ),
                Err(e) => crate::warn!("could not remove {}: {e}", p.display()),
            }
        }
    }
}

/// Like [`verify`], except that a flasher image has its inner image extracted into the work
/// dir (gzip level `level`, see [`Extracted`]) and that one verified (device type, size)
/// instead. The SHA-256 check applies to the file as given.
pub fn prepare(path: &Path, o: &VerifyOptions, level: u8) -> Result<Prepared> {
    prepare_hashing(path, o, level, true)
}

/// [`prepare`]; `hash_file`: compute the SHA-256 of the file given even when `o` expects none
/// (the report's `image.sha256`).
pub fn prepare_hashing(
    path: &Path,
    o: &VerifyOptions,
    level: u8,
    hash_file: bool,
) -> Result<Prepared> {
    let v = scan_hashing(path, o, hash_file)?;
    if v.layout != Layout::Flasher {
        check(path, &v, o)?;
        return Ok(Prepared {
            image: path.to_path_buf(),
            verified: v,
            flasher: None,
            extracted: None,
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
    // From here on a failure removes it.
    let extracted = Extracted(Some(inner.clone()));
    let inner_opts = VerifyOptions {
        expected_sha256: None,
        ..o.clone()
    };
    let iv = scan_hashing(&inner, &inner_opts, hash_file)?;
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
        extracted: Some(extracted),
    })
}
