//! The balenaOS image: opened as a stream, verified before anything destructive. The byte
//! formats it is made of (gzip, zip, partition tables, filesystem labels, ext4) are in
//! [`crate::formats`].
//!
//! | piece | module |
//! |---|---|
//! | open a file as a stream of the decoded disk image (gzip, zip, raw by magic bytes) | [`source`] ([`open_image`]) |
//! | verification: one streaming pass, then the policy checks; flasher images unwrapped | [`mod@verify`] ([`verify()`], [`prepare`]) |
//! | the streaming pass: decoded size, partition table, filesystem probes, boot partition | [`stream`] |
//! | the policy checks: layout, size, SHA-256, device type | [`policy`] |
//! | device type and version read from the boot partition | [`boot`] |
//! | what a pass found, what it was asked to check | [`verified`] |
//! | flasher images: inner image extraction through a read-only ext4 reader | [`flasher`] |
#![forbid(unsafe_code)]

pub mod boot;
pub mod flasher;
pub mod policy;
pub mod source;
pub mod stream;
pub mod verified;

pub use source::{open_image, Format, ImageReader};
pub use verify::{prepare, verify, Layout, PartInfo, Prepared, Verified, VerifyOptions};
pub mod verify;

#[cfg(test)]
mod tests;
