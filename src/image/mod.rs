//! The balenaOS image: opened as a stream, verified before anything destructive. The byte
//! formats it is made of (gzip, zip, partition tables, filesystem labels, ext4) are in
//! [`crate::formats`].
//!
//! | piece | module |
//! |---|---|
//! | open a file as a stream of the decoded disk image (gzip, zip, raw by magic bytes) | [`source`] ([`open_image`]) |
//! | one streaming verification pass and the policy checks | [`mod@verify`] ([`verify()`], [`prepare`]) |
//! | flasher images: inner image extraction through a read-only ext4 reader | [`flasher`] |
#![forbid(unsafe_code)]

pub mod flasher;
pub mod source;

pub use source::{open_image, Format, ImageReader};
pub use verify::{prepare, verify, Layout, PartInfo, Prepared, Verified, VerifyOptions};
pub mod verify;

#[cfg(test)]
mod tests;
