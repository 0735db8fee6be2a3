//! Block devices from `/sys/block` (read through [`Root`]; no device node is opened).
//!
//! Read per disk: `dev` (major:minor), `size` (512-byte sectors, whatever the logical block
//! size), `removable`, `ro`, `queue/logical_block_size`; for device-mapper `dm/name`; for
//! stacked devices (dm, md) `slaves/`. Partitions are the sub-directories holding a
//! `partition` file, with `dev`, `partition` (number), `start` and `size` (512-byte sectors).
#![forbid(unsafe_code)]

use super::Root;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskKind {
    /// SD card or eMMC user area (`mmcblkN`).
    Mmc,
    /// eMMC hardware boot partitions and RPMB (`mmcblkNboot0`, `mmcblkNrpmb`): never a target.
    MmcHwPart,
    Nvme,
    /// SCSI/SATA/USB (`sdX`).
    Scsi,
    /// virtio (`vdX`).
    Virtio,
    /// Xen (`xvdX`).
    Xen,
    /// Old IDE (`hdX`).
    Ide,
    /// device-mapper: LVM, LUKS (`dm-N`).
    DeviceMapper,
    /// Software RAID (`mdN`).
    Md,
    Loop,
    /// zram, ram disks, nbd, optical drives, MTD and anything else.
    Other,
}

impl DiskKind {
    pub fn from_name(name: &str) -> DiskKind {
        let rest_is_digits = |p: &str| {
            name.strip_prefix(p)
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        };
        if name.starts_with("mmcblk") {
            if name.contains("boot") || name.contains("rpmb") {
                DiskKind::MmcHwPart
            } else {
                DiskKind::Mmc
            }
        } else if name.starts_with("nvme") {
            DiskKind::Nvme
        } else if name.starts_with("sd") {
            DiskKind::Scsi
        } else if name.starts_with("vd") {
            DiskKind::Virtio
        } else if name.starts_with("xvd") {
            DiskKind::Xen
        } else if name.starts_with("hd") {
            DiskKind::Ide
        } else if rest_is_digits("dm-") {
            DiskKind::DeviceMapper
        } else if rest_is_digits("md") {
            DiskKind::Md
        } else if rest_is_digits("loop") {
            DiskKind::Loop
        } else {
            DiskKind::Other
        }
    }

    /// A disk kind balenaOS can be installed on.
    pub fn is_installable(self) -> bool {
        matches!(
            self,
            DiskKind::Mmc
                | DiskKind::Nvme
                | DiskKind::Scsi
                | DiskKind::Virtio
                | DiskKind::Xen
                | DiskKind::Ide
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    pub major: u32,
    pub minor: u32,
    pub number: Option<u32>,
    /// Start and size in 512-byte sectors.
    pub start: Option<u64>,
    pub size_sectors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDev {
    pub name: String,
    pub kind: DiskKind,
    pub major: u32,
    pub minor: u32,
    /// Size in 512-byte sectors (sysfs `size` always counts 512-byte units).
    pub size_sectors: u64,
    pub removable: bool,
    pub ro: bool,
    pub logical_block_size: u32,
    pub partitions: Vec<Partition>,
    /// device-mapper name (`dm/name`), e.g. "ubuntu--vg-ubuntu--lv".
    pub dm_name: Option<String>,
    /// Devices below a stacked device (`slaves/`), e.g. ["sda3"].
    pub slaves: Vec<String>,
}

impl BlockDev {
    pub fn size_bytes(&self) -> u64 {
        self.size_sectors.saturating_mul(512)
    }
    pub fn dev_path(&self) -> String {
        format!("/dev/{}", self.name)
    }
}

fn read_trim(root: &Root, rel: &str) -> Option<String> {
    root.read_string(rel).ok().map(|s| s.trim().to_string())
}

fn read_num<T: std::str::FromStr>(root: &Root, rel: &str) -> Option<T> {
    read_trim(root, rel)?.parse().ok()
}

fn read_dev(root: &Root, rel: &str) -> Option<(u32, u32)> {
    let s = read_trim(root, rel)?;
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Scans `sys/block`. Entries whose `dev` cannot be read are skipped with a note.
pub fn scan(root: &Root, notes: &mut Vec<String>) -> Vec<BlockDev> {
    let mut disks = Vec::new();
    for name in root.list("sys/block") {
        let base = format!("sys/block/{name}");
        let Some((major, minor)) = read_dev(root, &format!("{base}/dev")) else {
            notes.push(format!("{base}/dev is unreadable; {name} ignored"));
            continue;
        };
        let mut partitions = Vec::new();
        for entry in root.list(&base) {
            let pbase = format!("{base}/{entry}");
            if !root.exists(format!("{pbase}/partition")) {
                continue;
            }
            let Some((pmaj, pmin)) = read_dev(root, &format!("{pbase}/dev")) else {
                notes.push(format!("{pbase}/dev is unreadable; partition ignored"));
                continue;
            };
            partitions.push(Partition {
                name: entry.clone(),
                major: pmaj,
                minor: pmin,
                number: read_num(root, &format!("{pbase}/partition")),
                start: read_num(root, &format!("{pbase}/start")),
                size_sectors: read_num(root, &format!("{pbase}/size")).unwrap_or(0),
            });
        }
        partitions.sort_by_key(|p| (p.number.unwrap_or(u32::MAX), p.name.clone()));
        disks.push(BlockDev {
            kind: DiskKind::from_name(&name),
            major,
            minor,
            size_sectors: read_num(root, &format!("{base}/size")).unwrap_or(0),
            removable: read_num::<u8>(root, &format!("{base}/removable")) == Some(1),
            ro: read_num::<u8>(root, &format!("{base}/ro")) == Some(1),
            logical_block_size: read_num(root, &format!("{base}/queue/logical_block_size"))
                .unwrap_or(512),
            partitions,
            dm_name: read_trim(root, &format!("{base}/dm/name")),
            slaves: root.list(format!("{base}/slaves")),
            name,
        });
    }
    disks
}

/// Where a block device sits in the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevRef {
    /// Index into the disk list.
    Disk(usize),
    /// Disk index, partition index.
    Partition(usize, usize),
}

/// Finds a device by major:minor.
pub fn find_by_devno(disks: &[BlockDev], major: u32, minor: u32) -> Option<DevRef> {
    for (i, d) in disks.iter().enumerate() {
        if (d.major, d.minor) == (major, minor) {
            return Some(DevRef::Disk(i));
        }
        if let Some(j) = d
            .partitions
            .iter()
            .position(|p| (p.major, p.minor) == (major, minor))
        {
            return Some(DevRef::Partition(i, j));
        }
    }
    None
}

/// The `/dev` path of the block device `major:minor` as the kernel names it in `sys/block`
/// (mountinfo may say `/dev/root`, a name the fresh devtmpfs of stage 2 does not have).
pub fn dev_path_of(disks: &[BlockDev], major: u32, minor: u32) -> Option<String> {
    match find_by_devno(disks, major, minor)? {
        DevRef::Disk(i) => Some(disks[i].dev_path()),
        DevRef::Partition(i, j) => Some(format!("/dev/{}", disks[i].partitions[j].name)),
    }
}

/// Finds a device by kernel name ("mmcblk0p2", "sda") or device-mapper name.
pub fn find_by_name(disks: &[BlockDev], name: &str) -> Option<DevRef> {
    for (i, d) in disks.iter().enumerate() {
        if d.name == name || d.dm_name.as_deref() == Some(name) {
            return Some(DevRef::Disk(i));
        }
        if let Some(j) = d.partitions.iter().position(|p| p.name == name) {
            return Some(DevRef::Partition(i, j));
        }
    }
    None
}

/// The kernel names at the bottom of a stacked device (dm over dm over sda3 → ["sda3"]).
pub fn underlying(disks: &[BlockDev], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(name.to_string(), 0)];
    while let Some((n, depth)) = stack.pop() {
        let d = disks.iter().find(|d| d.name == n);
        match d {
            Some(d) if !d.slaves.is_empty() && depth < 8 => {
                stack.extend(d.slaves.iter().map(|s| (s.clone(), depth + 1)))
            }
            _ if n != name => out.push(n),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The stacked devices built on `d` or on one of its partitions (device-mapper: LVM, LUKS;
/// md RAID), and those built on them in turn: what `/sys/block/<d>/holders/` and each
/// partition's `holders/` list, followed upwards. Read from the stacked devices' `slaves/`,
/// which name the same links from the other end.
pub fn holders<'a>(disks: &'a [BlockDev], d: &BlockDev) -> Vec<&'a BlockDev> {
    let mut below: Vec<&str> = std::iter::once(d.name.as_str())
        .chain(d.partitions.iter().map(|p| p.name.as_str()))
        .collect();
    let mut out: Vec<&BlockDev> = Vec::new();
    // Each pass adds at least one device or ends; a cycle cannot add one twice.
    loop {
        let before = out.len();
        for e in disks {
            let on_below = e.slaves.iter().any(|s| below.contains(&s.as_str()));
            if on_below && e.name != d.name && !out.iter().any(|o| o.name == e.name) {
                out.push(e);
                below.push(e.name.as_str());
                below.extend(e.partitions.iter().map(|p| p.name.as_str()));
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        for (n, k) in [
            ("mmcblk0", DiskKind::Mmc),
            ("mmcblk0boot0", DiskKind::MmcHwPart),
            ("mmcblk0rpmb", DiskKind::MmcHwPart),
            ("nvme0n1", DiskKind::Nvme),
            ("sda", DiskKind::Scsi),
            ("vda", DiskKind::Virtio),
            ("xvda", DiskKind::Xen),
            ("dm-0", DiskKind::DeviceMapper),
            ("md127", DiskKind::Md),
            ("loop3", DiskKind::Loop),
            ("zram0", DiskKind::Other),
            ("mdx", DiskKind::Other),
        ] {
            assert_eq!(DiskKind::from_name(n), k, "{n}");
        }
        assert!(DiskKind::Virtio.is_installable());
        assert!(!DiskKind::DeviceMapper.is_installable());
    }

    #[test]
    fn stacked_devices_resolve_to_their_slaves() {
        let d = |name: &str, slaves: &[&str]| BlockDev {
            name: name.into(),
            kind: DiskKind::from_name(name),
            major: 0,
            minor: 0,
            size_sectors: 0,
            removable: false,
            ro: false,
            logical_block_size: 512,
            partitions: vec![],
            dm_name: None,
            slaves: slaves.iter().map(|s| s.to_string()).collect(),
        };
        let disks = vec![
            d("dm-1", &["dm-0"]),
            d("dm-0", &["sda3", "sdb1"]),
            d("sda", &[]),
        ];
        assert_eq!(underlying(&disks, "dm-1"), vec!["sda3", "sdb1"]);
        assert!(underlying(&disks, "sda").is_empty());
        let mut sda = d("sda", &[]);
        sda.partitions.push(Partition {
            name: "sda3".into(),
            major: 8,
            minor: 3,
            number: Some(3),
            start: None,
            size_sectors: 0,
        });
        let names = |v: Vec<&BlockDev>| v.iter().map(|d| d.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(holders(&disks, &sda)), ["dm-0", "dm-1"]);
        assert!(holders(&disks, &d("sdc", &[])).is_empty());
    }
}
