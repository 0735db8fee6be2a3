//! The disk balenaOS is written to.
//!
//! Default: the whole disk holding `/` (on a balenaOS source: the disk holding `/mnt/data`,
//! since its root is a read-only image). The mount is found in mountinfo, its major:minor
//! (or, when that is a virtual number as on btrfs, its `/dev/<name>` source) is looked up in
//! `/sys/block`, and the parent disk of the partition is taken. Disks may be mmcblk, nvme, sd,
//! vd, xvd or hd; a root on device-mapper (LVM, LUKS) or md RAID is refused with a message
//! asking for `--flash-to`, because which physical disk to overwrite is then a choice.
//!
//! `--flash-to` must name a whole installable disk (`/dev/sda`, or a `/dev/disk/by-*` link to
//! one, resolved by reading the link under the root — never by opening it), not read-only, at
//! least as large as the image. `--log-to` must be a partition on another disk.
#![forbid(unsafe_code)]

use std::path::Path;

use super::block::{self, BlockDev, DevRef, DiskKind};
use super::{Probe, Root};
use crate::error::{Error, Result};

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDisk {
    /// Kernel name, e.g. "mmcblk0".
    pub name: String,
    /// "/dev/mmcblk0".
    pub path: String,
    pub kind: DiskKind,
    pub size_bytes: u64,
    pub logical_block_size: u32,
    pub removable: bool,
    /// "holds /", "holds /mnt/data" or "--flash-to".
    pub chosen_by: String,
    /// Mounted filesystems on the disk: (device, mount point), in mountinfo order.
    pub mounted: Vec<(String, String)>,
    /// Boot partitions mounted from *another* disk: (mount point, device). The firmware may
    /// keep booting from that disk after balenaOS is written to this one.
    pub boot_elsewhere: Vec<(String, String)>,
}

/// Mount points that hold the boot firmware or bootloader.
const BOOT_MOUNTS: &[&str] = &["/boot", "/boot/firmware", "/boot/efi", "/mnt/boot"];

/// Boot partitions whose disk is not `target`.
fn boot_elsewhere(p: &Probe, target: usize) -> Vec<(String, String)> {
    let Some(mounts) = &p.mounts else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for mp in BOOT_MOUNTS {
        let Some(m) = super::mounts::find_mount(mounts, mp) else {
            continue;
        };
        let name = m.source.strip_prefix("/dev/").unwrap_or("");
        let found = block::find_by_devno(&p.disks, m.major, m.minor)
            .or_else(|| block::find_by_name(&p.disks, name));
        if let Some(DevRef::Disk(i) | DevRef::Partition(i, _)) = found {
            if i != target && p.disks[i].kind.is_installable() {
                out.push((mp.to_string(), m.source.clone()));
            }
        }
    }
    out
}

fn step() -> &'static str {
    "choosing the disk to install balenaOS on"
}

fn mib(b: u64) -> u64 {
    b.div_ceil(MIB)
}

/// Describes a stacked device for messages: "dm-0 (ubuntu--vg-ubuntu--lv) over sda3".
fn describe_stacked(disks: &[BlockDev], d: &BlockDev) -> String {
    let mut s = d.name.clone();
    if let Some(n) = &d.dm_name {
        s.push_str(&format!(" ({n})"));
    }
    let under = block::underlying(disks, &d.name);
    if !under.is_empty() {
        s.push_str(&format!(" over {}", under.join(", ")));
    }
    s
}

/// What uses disk `d` besides its mounts, one entry each, naming the user: a stacked device on
/// it or on a partition (LVM/dm, LUKS, md RAID: [`block::holders`]) and an active swap
/// partition of it (`/proc/swaps`). Such a disk is in use even when nothing of it is mounted.
pub fn held_by(p: &Probe, d: &BlockDev) -> Vec<String> {
    let mut out: Vec<String> = block::holders(&p.disks, d)
        .into_iter()
        .map(|h| {
            let what = match h.kind {
                DiskKind::Md => "software RAID",
                _ => "device-mapper (LVM or LUKS)",
            };
            format!("{what} {}", describe_stacked(&p.disks, h))
        })
        .collect();
    let own = |n: &str| n == d.name || d.partitions.iter().any(|q| q.name == n);
    for s in p.swaps.iter().flatten() {
        let name = s.name.strip_prefix("/dev/").unwrap_or(&s.name);
        if s.kind == "partition" && own(name) {
            out.push(format!("active swap {}", s.name));
        }
    }
    out
}

/// The image's partition table counts 512-byte sectors; a disk with another logical block
/// size (4Kn: 4096) would read every partition start and size ×8.
pub fn check_sector_size(d: &BlockDev, step: &str) -> Result<()> {
    if d.logical_block_size == 512 {
        return Ok(());
    }
    Err(Error::new(
        step,
        d.dev_path(),
        format!(
            "the disk has {}-byte logical sectors; balenaOS images are laid out in 512-byte \
             sectors, so its partition table would point to the wrong places on this disk",
            d.logical_block_size
        ),
    )
    .hint("install on a disk with 512-byte logical sectors (512n or 512e; `lsblk -o NAME,LOG-SEC` shows them)"))
}

/// A disk that cannot be overwritten as a whole, with the reason; None when it can.
fn refuse_kind(disks: &[BlockDev], d: &BlockDev) -> Option<String> {
    match d.kind {
        k if k.is_installable() => None,
        DiskKind::MmcHwPart => Some(format!(
            "{} is an eMMC hardware boot or RPMB partition, not the disk",
            d.dev_path()
        )),
        DiskKind::DeviceMapper => Some(format!(
            "{} is a device-mapper volume (LVM or encrypted): {}",
            d.dev_path(),
            describe_stacked(disks, d)
        )),
        DiskKind::Md => Some(format!(
            "{} is a software RAID array: {}",
            d.dev_path(),
            describe_stacked(disks, d)
        )),
        _ => Some(format!("{} is not a physical disk", d.dev_path())),
    }
}

/// The index of the disk holding the root filesystem (see the module documentation).
pub fn root_disk(p: &Probe) -> Result<(usize, String)> {
    let hint = "pass --flash-to /dev/<disk> with the whole disk to install balenaOS on \
                (lsblk lists them)";
    let Some(mounts) = &p.mounts else {
        return Err(Error::new(step(), "/", "the mount table could not be read").hint(hint));
    };
    let mp = if p.balena_os() && super::mounts::find_mount(mounts, "/mnt/data").is_some() {
        "/mnt/data"
    } else {
        "/"
    };
    let Some(m) = super::mounts::find_mount(mounts, mp) else {
        return Err(Error::new(step(), mp, "no filesystem is mounted there").hint(hint));
    };
    let by_name = || {
        let name = m
            .source
            .strip_prefix("/dev/mapper/")
            .or_else(|| m.source.strip_prefix("/dev/"))?;
        block::find_by_name(&p.disks, name)
    };
    let found = block::find_by_devno(&p.disks, m.major, m.minor).or_else(by_name);
    let Some(r) = found else {
        return Err(Error::new(
            step(),
            mp,
            format!(
                "it is on {} ({}, device {}:{}), which is not a disk in /sys/block (network, \
                 overlay or container root?)",
                m.source, m.fs_type, m.major, m.minor
            ),
        )
        .hint(hint));
    };
    let i = match r {
        DevRef::Disk(i) | DevRef::Partition(i, _) => i,
    };
    if let Some(why) = refuse_kind(&p.disks, &p.disks[i]) {
        // Name the physical disks below the stacked device, so the operator can choose.
        let mut below: Vec<String> = block::underlying(&p.disks, &p.disks[i].name)
            .iter()
            .filter_map(|n| match block::find_by_name(&p.disks, n) {
                Some(DevRef::Disk(k)) | Some(DevRef::Partition(k, _)) => {
                    Some(p.disks[k].dev_path())
                }
                None => None,
            })
            .collect();
        below.sort();
        below.dedup();
        let hint = if below.is_empty() {
            hint.to_string()
        } else {
            format!(
                "pass --flash-to with the whole disk to install balenaOS on ({} holds this \
                 volume)",
                below.join(", ")
            )
        };
        return Err(Error::new(
            step(),
            mp,
            format!(
                "the root filesystem is not on a plain disk partition: {why}; takeover will not \
                 guess which physical disk to overwrite"
            ),
        )
        .hint(hint));
    }
    Ok((i, format!("holds {mp}")))
}

/// Resolves a `/dev/...` path to a device of the scan, through symlinks read under `root`.
pub fn resolve_dev(root: &Root, disks: &[BlockDev], path: &Path, option: &str) -> Result<DevRef> {
    let shown = path.display().to_string();
    let err = |cause: String| {
        Error::new(format!("checking {option}"), &shown, cause)
            .hint("name a block device as /dev/<name> (lsblk lists them)")
    };
    if !path.starts_with("/dev") {
        return Err(err("is not a device under /dev".into()));
    }
    let mut cur = path.to_path_buf();
    for _ in 0..8 {
        match root.read_link(&cur) {
            Ok(t) => cur = super::init::join_link(&cur, &t),
            Err(_) => break,
        }
    }
    let dm = cur.parent() == Some(Path::new("/dev/mapper"));
    let name = cur
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let found = if dm {
        disks
            .iter()
            .position(|d| d.dm_name.as_deref() == Some(name.as_str()))
            .map(DevRef::Disk)
    } else {
        block::find_by_name(disks, &name)
    };
    found.ok_or_else(|| err(format!("no block device named {name} in /sys/block")))
}

/// Chooses and validates the target disk. `image_bytes` is the uncompressed image size when
/// known.
pub fn select(
    p: &Probe,
    root: &Root,
    flash_to: Option<&Path>,
    log_to: Option<&Path>,
    image_bytes: Option<u64>,
) -> Result<TargetDisk> {
    let (i, chosen_by) = match flash_to {
        Some(path) => match resolve_dev(root, &p.disks, path, "--flash-to")? {
            DevRef::Disk(i) => {
                if let Some(why) = refuse_kind(&p.disks, &p.disks[i]) {
                    return Err(Error::new("checking --flash-to", path.display(), why)
                        .hint("name the whole physical disk, e.g. /dev/sda or /dev/nvme0n1"));
                }
                (i, "--flash-to".to_string())
            }
            DevRef::Partition(i, j) => {
                let d = &p.disks[i];
                return Err(Error::new(
                    "checking --flash-to",
                    path.display(),
                    format!(
                        "{} is partition {} of {}; balenaOS is written to a whole disk",
                        d.partitions[j].name,
                        d.partitions[j].number.unwrap_or(0),
                        d.dev_path()
                    ),
                )
                .hint(format!("pass --flash-to {}", d.dev_path())));
            }
        },
        None => root_disk(p)?,
    };
    let d = &p.disks[i];
    let object = d.dev_path();
    if d.size_sectors == 0 {
        return Err(
            Error::new(step(), &object, "the disk reports a size of 0 (no medium?)")
                .hint("insert the medium or pass --flash-to with another disk"),
        );
    }
    if d.ro {
        return Err(Error::new(step(), &object, "the disk is read-only").hint(
            "check the write-protect switch of the card, or pass --flash-to with another disk",
        ));
    }
    check_sector_size(d, step())?;
    if let Some(need) = image_bytes {
        if need > d.size_bytes() {
            return Err(Error::new(
                step(),
                &object,
                format!(
                    "the image needs {} MiB but the disk has only {} MiB",
                    mib(need),
                    d.size_bytes() / MIB
                ),
            )
            .hint("use a bigger disk (--flash-to) or an image for a smaller device"));
        }
    }
    if let Some(log) = log_to {
        check_log_to(p, root, log, i)?;
    }
    Ok(TargetDisk {
        name: d.name.clone(),
        path: object,
        kind: d.kind,
        size_bytes: d.size_bytes(),
        logical_block_size: d.logical_block_size,
        removable: d.removable,
        chosen_by,
        mounted: mounted_on(p, d),
        boot_elsewhere: boot_elsewhere(p, i),
    })
}

fn check_log_to(p: &Probe, root: &Root, log: &Path, target: usize) -> Result<()> {
    let r = resolve_dev(root, &p.disks, log, "--log-to")?;
    let hint = "choose a vfat, ext3 or ext4 partition on another disk (e.g. a USB stick)";
    let disk_of = |name: &str| match block::find_by_name(&p.disks, name) {
        Some(DevRef::Disk(i)) | Some(DevRef::Partition(i, _)) => Some(i),
        None => None,
    };
    let disks_below: Vec<usize> = match r {
        DevRef::Partition(i, _) => vec![i],
        DevRef::Disk(i) => {
            let d = &p.disks[i];
            if d.slaves.is_empty() {
                return Err(Error::new(
                    "checking --log-to",
                    log.display(),
                    format!(
                        "{} is a whole disk; the stage 2 log goes to a partition",
                        d.dev_path()
                    ),
                )
                .hint(hint));
            }
            block::underlying(&p.disks, &d.name)
                .iter()
                .filter_map(|n| disk_of(n))
                .collect()
        }
    };
    if disks_below.contains(&target) {
        return Err(Error::new(
            "checking --log-to",
            log.display(),
            format!(
                "it is on {}, the disk balenaOS is written to",
                p.disks[target].dev_path()
            ),
        )
        .hint(hint));
    }
    if let (DevRef::Partition(i, j), Some(mounts)) = (r, &p.mounts) {
        let part = &p.disks[i].partitions[j];
        if let Some(m) = mounts
            .iter()
            .find(|m| (m.major, m.minor) == (part.major, part.minor))
        {
            if !matches!(m.fs_type.as_str(), "vfat" | "ext3" | "ext4") {
                return Err(Error::new(
                    "checking --log-to",
                    log.display(),
                    format!("it holds a {} filesystem", m.fs_type),
                )
                .hint(hint));
            }
        }
    }
    Ok(())
}

/// Mounted filesystems on disk `d` (whole disk or its partitions), matched by major:minor or,
/// for filesystems that report an anonymous device number (btrfs), by source name.
fn mounted_on(p: &Probe, d: &BlockDev) -> Vec<(String, String)> {
    let Some(mounts) = &p.mounts else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in mounts {
        let src = m.source.strip_prefix("/dev/");
        let dev = if (m.major, m.minor) == (d.major, d.minor) || src == Some(d.name.as_str()) {
            Some(d.dev_path())
        } else {
            d.partitions
                .iter()
                .find(|pt| {
                    (pt.major, pt.minor) == (m.major, m.minor) || src == Some(pt.name.as_str())
                })
                .map(|pt| format!("/dev/{}", pt.name))
        };
        if let Some(dev) = dev {
            out.push((dev, m.mount_point.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> (Root, Probe) {
        crate::testutil::sysroot_fixture(name)
    }

    #[test]
    fn virtual_device_numbers_fall_back_to_the_source_name() {
        // btrfs reports an anonymous 0:N device in mountinfo.
        let (root, mut p) = fixture("x86-debian12-bios-virtio");
        let m = p.mounts.as_mut().unwrap();
        m[0].major = 0;
        m[0].minor = 33;
        m[0].fs_type = "btrfs".into();
        let t = select(&p, &root, None, None, None).unwrap();
        assert_eq!(t.path, "/dev/vda");
        assert_eq!(t.mounted, vec![("/dev/vda1".to_string(), "/".to_string())]);
        // An overlay root is no disk at all.
        let m = p.mounts.as_mut().unwrap();
        m[0].source = "overlay".into();
        m[0].fs_type = "overlay".into();
        let e = select(&p, &root, None, None, None).unwrap_err();
        assert!(
            e.to_string().contains("overlay") && e.to_string().contains("--flash-to"),
            "{e}"
        );
    }

    #[test]
    fn a_disk_with_4096_byte_sectors_is_refused() {
        let (root, mut p) = fixture("x86-debian12-bios-virtio");
        assert!(select(&p, &root, None, None, None).is_ok());
        let i = p.disks.iter().position(|d| d.name == "vda").unwrap();
        p.disks[i].logical_block_size = 4096;
        let e = select(&p, &root, None, None, None).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("/dev/vda") && m.contains("4096-byte logical sectors") && m.contains("512"),
            "{m}"
        );
    }

    #[test]
    fn lvm_and_swap_on_a_disk_are_named_as_its_users() {
        let (_, mut p) = fixture("x86-ubuntu-lvm-root");
        let sda = p.disks.iter().find(|d| d.name == "sda").unwrap().clone();
        let held = held_by(&p, &sda);
        assert_eq!(held.len(), 1, "{held:?}");
        assert!(
            held[0].contains("dm-0") && held[0].contains("ubuntu--vg-ubuntu--lv"),
            "{held:?}"
        );
        assert!(held[0].contains("over sda3"), "{held:?}");
        // A swap partition of the disk (the swap file on / is not one).
        p.swaps.as_mut().unwrap().push(crate::probe::mounts::Swap {
            name: "/dev/sda1".into(),
            kind: "partition".into(),
            size_bytes: 1 << 30,
            used_bytes: 0,
        });
        let held = held_by(&p, &sda);
        assert_eq!(
            held.last().map(String::as_str),
            Some("active swap /dev/sda1")
        );
        // The volume itself is held by nothing.
        let dm = p.disks.iter().find(|d| d.name == "dm-0").unwrap().clone();
        assert!(held_by(&p, &dm).is_empty());
    }

    #[test]
    fn flash_to_and_log_to_rules() {
        let (root, p) = fixture("pi400-bookworm");
        let e = select(&p, &root, Some(Path::new("sda")), None, None).unwrap_err();
        assert!(e.to_string().contains("not a device under /dev"), "{e}");
        let e = select(&p, &root, None, Some(Path::new("/dev/sda")), None).unwrap_err();
        assert!(e.to_string().contains("whole disk"), "{e}");
        let e = select(&p, &root, None, Some(Path::new("/dev/mmcblk0p1")), None).unwrap_err();
        assert!(
            e.to_string().contains("the disk balenaOS is written to"),
            "{e}"
        );
        let t = select(&p, &root, None, Some(Path::new("/dev/sda1")), Some(1 << 30)).unwrap();
        assert_eq!(t.path, "/dev/mmcblk0");
        assert_eq!(t.mounted.len(), 2);
        let e = select(&p, &root, None, None, Some(t.size_bytes + 1)).unwrap_err();
        assert!(e.to_string().contains("MiB"), "{e}");
    }
}
