//! What a verification pass found ([`Verified`]), what it was asked to check
//! ([`VerifyOptions`]), and the layouts it tells apart.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::formats::partition::Partition;

pub const BALENA_LABELS: [&str; 5] = [
    "resin-boot",
    "resin-rootA",
    "resin-rootB",
    "resin-state",
    "resin-data",
];
pub const FLASHER_LABELS: [&str; 2] = ["flash-boot", "flash-rootA"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Balena,
    Flasher,
    Unknown,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Balena => "balena",
            Layout::Flasher => "flasher",
            Layout::Unknown => "unknown",
        }
    }
}

/// A partition with what its first sectors say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub part: Partition,
    /// "vfat", "ext4", "ext3", "ext2", "unknown" ("extended" for an MBR extended container).
    pub fstype: &'static str,
    pub label: Option<String>,
    /// The superblock's feature words, for an ext2/3/4 filesystem.
    pub ext_features: Option<crate::formats::fslabel::ExtFeatures>,
}

impl PartInfo {
    /// The filesystem label, else the GPT partition name.
    pub fn label_or_name(&self) -> Option<&str> {
        self.label.as_deref().or(self.part.name.as_deref())
    }

    fn is(&self, label: &str) -> bool {
        self.label.as_deref() == Some(label) || self.part.name.as_deref() == Some(label)
    }
}

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Size of the disk the image will be written to; a larger image is refused.
    pub target_size: Option<u64>,
    /// SHA-256 (hex) the file must have (`--image-sha256`).
    pub expected_sha256: Option<String>,
    /// The device type slug the image must be built for; `None` skips the check
    /// (`--no-dt-check`).
    pub expected_device_type: Option<String>,
    /// Where the boot partition copy goes (removed afterwards).
    pub work_dir: PathBuf,
}

impl VerifyOptions {
    /// No checks beyond the image's own integrity; temporary files go to `work_dir`.
    pub fn new(work_dir: impl Into<PathBuf>) -> VerifyOptions {
        VerifyOptions {
            target_size: None,
            expected_sha256: None,
            expected_device_type: None,
            work_dir: work_dir.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Verified {
    /// "gzip", "zip" or "raw".
    pub format: &'static str,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    /// SHA-256 of the file as given; empty when the pass did not compute it (a single pass
    /// without an expected checksum, see [`StreamCheck::new`]).
    pub sha256: String,
    /// "mbr" or "gpt".
    pub table: String,
    pub partitions: Vec<PartInfo>,
    /// The last byte any partition covers (may exceed `uncompressed_bytes`).
    pub table_end: u64,
    pub layout: Layout,
    /// `slug` of `device-type.json` in the boot partition.
    pub device_type: Option<String>,
    /// `VERSION` of `os-release` (or `image-version-info`) in the boot partition.
    pub boot_version: Option<String>,
    /// Decoded megabytes (10^6) per second of the pass.
    pub mb_per_s: f64,
    /// Why the device type or version could not be read, if so.
    pub boot_note: Option<String>,
}

impl Verified {
    /// The `image` object of the JSON report.
    pub fn to_report(&self, path: &Path) -> crate::report::Image {
        crate::report::Image {
            path: Some(path.display().to_string()),
            version: self.boot_version.clone(),
            compressed_bytes: Some(self.compressed_bytes),
            uncompressed_bytes: Some(self.uncompressed_bytes),
            sha256: (!self.sha256.is_empty()).then(|| self.sha256.clone()),
            layout: self.layout.as_str().into(),
            device_type: self.device_type.clone(),
            format: Some(self.format.into()),
            partition_table: Some(self.table.clone()),
            verified: true,
        }
    }

    /// The partition with this label (or GPT name).
    pub fn find(&self, label: &str) -> Option<&PartInfo> {
        self.partitions.iter().find(|p| p.is(label))
    }

    /// Bytes the target disk must have.
    pub fn required_bytes(&self) -> u64 {
        self.uncompressed_bytes.max(self.table_end)
    }
}

pub(super) fn layout_of(parts: &[PartInfo]) -> Layout {
    let has = |l: &str| parts.iter().any(|p| p.is(l));
    let boot_is_fat = parts
        .iter()
        .any(|p| p.is("resin-boot") && p.fstype == "vfat");
    if BALENA_LABELS.iter().all(|l| has(l)) && boot_is_fat {
        Layout::Balena
    } else if FLASHER_LABELS.iter().all(|l| has(l)) {
        Layout::Flasher
    } else {
        Layout::Unknown
    }
}

/// Removes the boot partition copy when verification ends, however it ends.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The step of the size check (callers that know the target's name add it to the hint).
pub const SIZE_STEP: &str = "checking the image size";

/// The image (or its partitions) need `need` bytes, more than the target's `size`.
pub(super) fn too_big(obj: impl std::fmt::Display, need: u64, size: u64) -> Error {
    Error::new(
        SIZE_STEP,
        obj,
        format!(
            "the target disk is too small: the image needs {need} bytes ({} MiB), the disk has {size} bytes ({} MiB)",
            need.div_ceil(1 << 20),
            size >> 20
        ),
    )
    .hint("use a larger disk (-f) or an image for this device")
}
