//! The balenaOS image: formats (gzip, raw, zip), partition tables, filesystem labels,
//! verification before anything destructive, version resolution.
//!
//! | piece | module |
//! |---|---|
//! | open a file as a stream of the decoded disk image (gzip, zip, raw by magic bytes) | [`source`] ([`open_image`]) |
//! | gzip decoder/encoder, zip entries, CRC-32, SHA-256 | [`gzip`], [`zip`], [`crc32`], [`sha256`] |
//! | MBR/GPT tables, filesystem type and label | [`partition`], [`fslabel`] |
//! | one streaming verification pass and the policy checks | [`mod@verify`] ([`verify()`], [`prepare`]) |
//! | flasher images: inner image extraction through a read-only ext4 reader | [`flasher`], [`ext4`] |
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
