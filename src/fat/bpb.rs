//! The boot sector: BIOS parameter block (BPB) of FAT12, FAT16 and FAT32, and the layout
//! derived from it.
#![forbid(unsafe_code)]

use crate::formats::le::{self, le32};

use crate::error::{Error, Result};

/// Which FAT variant a volume is, decided by its cluster count as the specification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatKind {
    Fat12,
    Fat16,
    Fat32,
}

impl FatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FatKind::Fat12 => "FAT12",
            FatKind::Fat16 => "FAT16",
            FatKind::Fat32 => "FAT32",
        }
    }
}

impl std::fmt::Display for FatKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The layout of a FAT volume, in bytes from the start of the partition.
#[derive(Debug, Clone)]
pub struct Layout {
    pub kind: FatKind,
    pub bytes_per_sector: u32,
    pub cluster_size: u32,
    /// Byte offset of the first FAT.
    pub fat_start: u64,
    /// Bytes of one FAT copy on disk.
    pub fat_bytes: u64,
    pub num_fats: u32,
    /// FAT32 with mirroring disabled: the only FAT in use.
    pub active_fat: Option<u32>,
    /// FAT12/16: byte offset and slot count of the fixed root directory.
    pub root_start: u64,
    pub root_entries: u32,
    /// FAT32: first cluster of the root directory.
    pub root_cluster: u32,
    /// Byte offset of cluster 2.
    pub data_start: u64,
    /// Number of data clusters; valid cluster numbers are 2 ..= cluster_count + 1.
    pub cluster_count: u32,
    /// FAT32: byte offset of the FSInfo sector.
    pub fsinfo: Option<u64>,
    /// Volume label from the extended BPB, when it has one.
    pub label: Option<String>,
}

impl Layout {
    pub fn max_cluster(&self) -> u32 {
        self.cluster_count + 1
    }

    pub fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_start + u64::from(cluster - 2) * u64::from(self.cluster_size)
    }
}

/// The 16-bit field at `at`, widened: the BPB's counts are used as `u32`.
fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(le::le16(b, at))
}

/// Parses the first sector of a partition. `object` names it in errors; `dev_len` is the size
/// of the partition, when known, to refuse a volume that claims to be larger.
pub fn parse(sector: &[u8], object: &str, dev_len: Option<u64>) -> Result<Layout> {
    let bad = |cause: String| {
        Error::new("reading the FAT boot sector", object, cause).hint(
            "this is not a FAT12/16/32 filesystem or its boot sector is damaged; check the \
             partition offset and the image",
        )
    };
    check_boot_sector(sector, &bad)?;
    let bps = le16(sector, 11);
    if !matches!(bps, 512 | 1024 | 2048 | 4096) {
        return Err(bad(format!(
            "bytes per sector {bps} is not 512/1024/2048/4096"
        )));
    }
    let spc = u32::from(sector[13]);
    if spc == 0 || !spc.is_power_of_two() {
        return Err(bad(format!(
            "sectors per cluster {spc} is not a power of two"
        )));
    }
    let cluster_size = bps * spc;
    if cluster_size > 256 * 1024 {
        return Err(bad(format!("cluster size {cluster_size} is too large")));
    }
    let reserved = le16(sector, 14);
    if reserved == 0 {
        return Err(bad("no reserved sectors".into()));
    }
    let num_fats = u32::from(sector[16]);
    if num_fats == 0 || num_fats > 4 {
        return Err(bad(format!("{num_fats} FAT copies")));
    }
    let root_entries = le16(sector, 17);
    let total16 = le16(sector, 19);
    let fat16_size = le16(sector, 22);
    let total32 = le32(sector, 32);
    let total = if total16 != 0 { total16 } else { total32 };
    let fat_size = if fat16_size != 0 {
        fat16_size
    } else {
        le32(sector, 36)
    };
    if fat_size == 0 || total == 0 {
        return Err(bad("FAT size or sector count is zero".into()));
    }
    let root_sectors = (root_entries * 32).div_ceil(bps);
    let meta =
        u64::from(reserved) + u64::from(num_fats) * u64::from(fat_size) + u64::from(root_sectors);
    if meta >= u64::from(total) {
        return Err(bad(format!(
            "the FATs and root directory ({meta} sectors) do not fit in {total} sectors"
        )));
    }
    let data_sectors = u64::from(total) - meta;
    let cluster_count = u32::try_from(data_sectors / u64::from(spc))
        .map_err(|_| bad("too many clusters".into()))?;
    let kind = if cluster_count < 4085 {
        FatKind::Fat12
    } else if cluster_count < 65525 {
        FatKind::Fat16
    } else {
        FatKind::Fat32
    };
    if cluster_count == 0 {
        return Err(bad("no data clusters".into()));
    }
    if kind == FatKind::Fat32 {
        if cluster_count > 0x0FFF_FFF5 {
            return Err(bad(format!(
                "{cluster_count} clusters is too many for FAT32"
            )));
        }
        if root_entries != 0 || fat16_size != 0 {
            return Err(bad(
                "a FAT32 cluster count but a FAT16-style BPB (fixed root or 16-bit FAT size)"
                    .into(),
            ));
        }
    } else if root_entries == 0 {
        return Err(bad(format!("{kind} with no root directory entries")));
    }
    let fat_bytes = u64::from(fat_size) * u64::from(bps);
    let needed = match kind {
        FatKind::Fat12 => ((u64::from(cluster_count) + 2) * 3).div_ceil(2),
        FatKind::Fat16 => (u64::from(cluster_count) + 2) * 2,
        FatKind::Fat32 => (u64::from(cluster_count) + 2) * 4,
    };
    if needed > fat_bytes {
        return Err(bad(format!(
            "a FAT of {fat_bytes} bytes cannot map {cluster_count} clusters"
        )));
    }
    let volume_bytes = u64::from(total) * u64::from(bps);
    if let Some(len) = dev_len {
        if volume_bytes > len {
            return Err(bad(format!(
                "the filesystem claims {volume_bytes} bytes but the partition has only {len}"
            )));
        }
    }
    let fat_start = u64::from(reserved) * u64::from(bps);
    let root_start = fat_start + u64::from(num_fats) * fat_bytes;
    let data_start = root_start + u64::from(root_sectors) * u64::from(bps);
    let label = volume_label(sector, kind);
    let mut root_cluster = 0;
    let mut fsinfo = None;
    let mut active_fat = None;
    if kind == FatKind::Fat32 {
        root_cluster = le32(sector, 44);
        if root_cluster < 2 || root_cluster > cluster_count + 1 {
            return Err(bad(format!(
                "root directory cluster {root_cluster} is outside 2..={}",
                cluster_count + 1
            )));
        }
        let ext_flags = le16(sector, 40);
        if ext_flags & 0x80 != 0 {
            let a = ext_flags & 0x0F;
            if a >= num_fats {
                return Err(bad(format!("active FAT {a} of {num_fats}")));
            }
            active_fat = Some(a);
        }
        let fs = le16(sector, 48);
        if fs != 0 && fs != 0xFFFF && fs < reserved {
            fsinfo = Some(u64::from(fs) * u64::from(bps));
        }
    }
    Ok(Layout {
        kind,
        bytes_per_sector: bps,
        cluster_size,
        fat_start,
        fat_bytes,
        num_fats,
        active_fat,
        root_start,
        root_entries,
        root_cluster,
        data_start,
        cluster_count,
        fsinfo,
        label,
    })
}

/// The signatures every FAT boot sector has: 512 bytes, 55 AA, an x86 jump; exFAT and NTFS
/// are named as such.
fn check_boot_sector(sector: &[u8], bad: &dyn Fn(String) -> Error) -> Result<()> {
    if sector.len() < 512 {
        return Err(bad(format!(
            "only {} bytes, a boot sector has 512",
            sector.len()
        )));
    }
    match &sector[3..11] {
        b"EXFAT   " => {
            return Err(bad(
                "this is exFAT, which is not supported (only FAT12, FAT16, FAT32)".into(),
            ))
        }
        b"NTFS    " => return Err(bad("this is NTFS, not FAT".into())),
        _ => {}
    }
    if sector[510] != 0x55 || sector[511] != 0xAA {
        return Err(bad(format!(
            "no boot signature 55 AA at byte 510 (found {:02X} {:02X})",
            sector[510], sector[511]
        )));
    }
    if !(sector[0] == 0xEB || sector[0] == 0xE9) {
        return Err(bad(format!(
            "no x86 jump instruction at byte 0 (found {:02X})",
            sector[0]
        )));
    }
    Ok(())
}

/// The volume label of the extended BPB, when it has one (`NO NAME` is none).
fn volume_label(sector: &[u8], kind: FatKind) -> Option<String> {
    let (label_at, sig_at) = if kind == FatKind::Fat32 {
        (71, 66)
    } else {
        (43, 38)
    };
    if sector[sig_at] == 0x29 {
        let raw = &sector[label_at..label_at + 11];
        let s: String = raw.iter().map(|&b| char::from(b)).collect();
        let s = s.trim_end().to_string();
        (!s.is_empty() && s != "NO NAME").then_some(s)
    } else {
        None
    }
}

/// FSInfo sector signatures.
pub const FSINFO_LEAD: u32 = 0x4161_5252;
pub const FSINFO_STRUC: u32 = 0x6141_7272;
pub const FSINFO_TRAIL: u32 = 0xAA55_0000;

/// True when `s` (one sector) is a valid FSInfo sector.
pub fn fsinfo_valid(s: &[u8]) -> bool {
    s.len() >= 512
        && le32(s, 0) == FSINFO_LEAD
        && le32(s, 484) == FSINFO_STRUC
        && le32(s, 508) == FSINFO_TRAIL
}
