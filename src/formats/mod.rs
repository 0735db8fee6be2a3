//! Byte formats: each module turns bytes into typed values and back, one concept per file.
//! Nothing here opens a path or touches the file system; callers hand in bytes, readers or
//! writers. Stage code sits above this layer, src/sys below it.
//!
//! | concept | module |
//! |---|---|
//! | little-endian reads, hex text | [`le`], [`hex`] |
//! | checksums and hashes | [`crc32`], [`sha256`], [`xxh64`] |
//! | compressed and archived streams | [`gzip`], [`zip`], [`tar`] |
//! | disk layout: MBR/GPT tables, filesystem type and label, read-only ext4 | [`partition`], [`fslabel`], [`ext4`] |
//! | ELF headers and dynamic section (the HTTP client's libraries) | [`elf`] |
#![forbid(unsafe_code)]

pub mod crc32;
pub mod elf;
pub mod ext4;
pub mod ext4_features;
pub mod fslabel;
pub mod gzip;
pub mod hex;
pub mod le;
pub mod partition;
pub mod sha256;
pub mod tar;
pub mod xxh64;
pub mod zip;
