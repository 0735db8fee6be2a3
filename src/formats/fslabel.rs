//! Filesystem type and label from the first sectors of a partition: vfat (FAT12/16/32 boot
//! sector label) and ext2/3/4 (superblock at byte 1024). Needs [`PROBE_BYTES`] bytes.
#![forbid(unsafe_code)]

use super::le::{le16, le32};

/// Bytes of a partition's start that [`probe`] looks at.
pub const PROBE_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsInfo {
    /// "vfat", "ext4", "ext3", "ext2" or "unknown".
    pub fstype: &'static str,
    pub label: Option<String>,
}

fn label_from(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let s = String::from_utf8_lossy(&raw[..end]).trim_end().to_string();
    (!s.is_empty()).then_some(s)
}

fn fat(b: &[u8]) -> Option<FsInfo> {
    if b.len() < 512 || b[510] != 0x55 || b[511] != 0xaa {
        return None;
    }
    let bps = le16(b, 11);
    let spc = b[13];
    let reserved = le16(b, 14);
    let fats = b[16];
    if !(512..=4096).contains(&bps)
        || !bps.is_power_of_two()
        || spc == 0
        || !spc.is_power_of_two()
        || reserved == 0
        || fats == 0
    {
        return None;
    }
    let fat16_size = le16(b, 22);
    let (sig_at, label_at) = if fat16_size == 0 && le32(b, 36) != 0 {
        (66, 71)
    } else {
        (38, 43)
    };
    let label = if b[sig_at] == 0x29 {
        label_from(&b[label_at..label_at + 11])
    } else {
        None
    };
    Some(FsInfo {
        fstype: "vfat",
        label: Some(label.unwrap_or_else(|| "NO NAME".into())),
    })
}

fn ext(b: &[u8]) -> Option<FsInfo> {
    if b.len() < 2048 {
        return None;
    }
    let sb = &b[1024..2048];
    if le16(sb, 56) != 0xEF53 {
        return None;
    }
    let compat = le32(sb, 92);
    let incompat = le32(sb, 96);
    // extents, 64bit, flex_bg → ext4; a journal → ext3.
    let fstype = if incompat & (0x40 | 0x80 | 0x200) != 0 {
        "ext4"
    } else if compat & 0x4 != 0 {
        "ext3"
    } else {
        "ext2"
    };
    Some(FsInfo {
        fstype,
        label: label_from(&sb[120..136]),
    })
}

/// The feature words of an ext2/3/4 superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtFeatures {
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
}

/// The feature words of the ext2/3/4 filesystem whose first bytes are `first`, if it is one.
pub fn ext_features(first: &[u8]) -> Option<ExtFeatures> {
    if first.len() < 2048 || le16(&first[1024..2048], 56) != 0xEF53 {
        return None;
    }
    let sb = &first[1024..2048];
    Some(ExtFeatures {
        compat: le32(sb, 92),
        incompat: le32(sb, 96),
        ro_compat: le32(sb, 100),
    })
}

/// Filesystem type and label of a partition whose first bytes are `first`.
pub fn probe(first: &[u8]) -> FsInfo {
    ext(first).or_else(|| fat(first)).unwrap_or(FsInfo {
        fstype: "unknown",
        label: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat16_and_fat32_labels() {
        let mut b = vec![0u8; 4096];
        b[510] = 0x55;
        b[511] = 0xaa;
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 4;
        b[14] = 1;
        b[16] = 2;
        b[22] = 32;
        b[38] = 0x29;
        b[43..54].copy_from_slice(b"resin-boot ");
        assert_eq!(
            probe(&b),
            FsInfo {
                fstype: "vfat",
                label: Some("resin-boot".into())
            }
        );
        b[22] = 0;
        b[36] = 100;
        b[66] = 0x29;
        b[71..82].copy_from_slice(b"NO NAME    ");
        assert_eq!(probe(&b).label.as_deref(), Some("NO NAME"));
        b[13] = 3; // not a power of two
        assert_eq!(probe(&b).fstype, "unknown");
    }

    #[test]
    fn ext_types_and_label() {
        let mut b = vec![0u8; 4096];
        b[1024 + 56..1024 + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
        b[1024 + 120..1024 + 131].copy_from_slice(b"resin-rootA");
        assert_eq!(probe(&b).fstype, "ext2");
        b[1024 + 92] = 4;
        assert_eq!(probe(&b).fstype, "ext3");
        b[1024 + 96] = 0x40;
        let i = probe(&b);
        assert_eq!(
            (i.fstype, i.label.as_deref()),
            ("ext4", Some("resin-rootA"))
        );
    }
}
