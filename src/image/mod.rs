//! The balenaOS image: formats (gzip, raw, zip), partition tables, filesystem labels,
//! verification before anything destructive, version resolution.
#![forbid(unsafe_code)]

pub mod crc32;
pub mod ext4;
pub mod flasher;
pub mod fslabel;
pub mod gzip;
pub mod partition;
pub mod sha256;
pub mod source;
pub mod zip;

pub use source::{open_image, Format, ImageReader};
pub use verify::{prepare, verify, Layout, PartInfo, Prepared, Verified, VerifyOptions};
pub mod verify;

#[cfg(test)]
mod tests;
