//! Unmounting the old system after the pivot: everything below the old root, deepest first,
//! with retries, a read-only remount as the last resort, and a final check that no writable
//! mount of the target disk is left (then the disk is not written).
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::probe::block::BlockDev;
use crate::probe::mounts::Mount;
use crate::sys::mount as sm;

/// The mounts at or below `prefix`, in the order they must be unmounted: reverse mount order
/// (a mount is always listed after the mount it sits on), so children go before parents.
pub fn unmount_order<'a>(mounts: &'a [Mount], prefix: &str) -> Vec<&'a Mount> {
    let prefix = prefix.trim_end_matches('/');
    let mut v: Vec<&Mount> = mounts
        .iter()
        .filter(|m| m.mount_point == prefix || m.mount_point.starts_with(&format!("{prefix}/")))
        .collect();
    v.reverse();
    v
}

/// Mounts whose device is `disk` or one of its partitions and that are still writable.
pub fn writable_on_disk<'a>(mounts: &'a [Mount], disk: &BlockDev) -> Vec<&'a Mount> {
    mounts
        .iter()
        .filter(|m| {
            (m.major == disk.major && m.minor == disk.minor)
                || disk
                    .partitions
                    .iter()
                    .any(|p| p.major == m.major && p.minor == m.minor)
        })
        .filter(|m| m.options.split(',').any(|o| o == "rw"))
        .collect()
}

/// Filesystems that live in memory or in the kernel only: detaching one lazily cannot let a
/// write reach a disk.
pub fn is_virtual(fs_type: &str) -> bool {
    matches!(
        fs_type,
        "tmpfs"
            | "ramfs"
            | "proc"
            | "sysfs"
            | "devtmpfs"
            | "devpts"
            | "cgroup"
            | "cgroup2"
            | "securityfs"
            | "debugfs"
            | "tracefs"
            | "configfs"
            | "fusectl"
            | "pstore"
            | "efivarfs"
            | "bpf"
            | "mqueue"
            | "hugetlbfs"
            | "autofs"
            | "binfmt_misc"
            | "rpc_pipefs"
    )
}

/// What happened to each mount.
#[derive(Debug, Default)]
pub struct UnmountReport {
    pub unmounted: usize,
    pub read_only: Vec<String>,
    pub failed: Vec<String>,
}

/// Unmounts everything at or below `prefix`, as listed by `read_mounts` (called again after
/// each pass, because unmounting can reveal mounts that were hidden below).
///
/// A busy mount that `on_target` says is not on the target disk (tmpfs, proc, the bind mount
/// of takeover over the old init binary, which PID 1 executes) is detached lazily: nothing it
/// holds can reach the target, and its parent on the target becomes free to unmount. Busy
/// mounts on the target are never detached lazily (open files could still write through);
/// they are remounted read-only as the last resort.
pub fn unmount_below(
    prefix: &str,
    read_mounts: &dyn Fn() -> Result<Vec<Mount>>,
    on_target: &dyn Fn(&Mount) -> bool,
) -> Result<UnmountReport> {
    let mut report = UnmountReport::default();
    // A few passes: a parent busy in pass 1 may become free once its children are gone.
    for pass in 0..3 {
        let mounts = read_mounts()?;
        let order = unmount_order(&mounts, prefix);
        if order.is_empty() {
            break;
        }
        let mut progress = false;
        for m in order {
            let mp = Path::new(&m.mount_point);
            let attempts = if on_target(m) { 10 } else { 1 };
            match umount_retry(mp, attempts) {
                Ok(()) => {
                    crate::debug!("unmounted {}", m.mount_point);
                    report.unmounted += 1;
                    progress = true;
                }
                Err(e) if !on_target(m) => match sm::umount2(mp, libc::MNT_DETACH) {
                    Ok(()) => {
                        crate::debug!("{} busy ({e}), not on the target: detached", m.mount_point);
                        report.unmounted += 1;
                        progress = true;
                    }
                    Err(e2) => {
                        crate::debug!("{}: busy ({e}), detach failed ({e2})", m.mount_point);
                    }
                },
                Err(e) if pass == 2 || !progress => {
                    // Last resort: no more writes can reach the disk through this mount.
                    let flags = sm::MS_REMOUNT | sm::MS_RDONLY;
                    match sm::mount(None, mp, None, flags, None) {
                        Ok(()) => {
                            crate::warn!("{} is busy ({e}); remounted read-only", m.mount_point);
                            if !report.read_only.contains(&m.mount_point) {
                                report.read_only.push(m.mount_point.clone());
                            }
                        }
                        Err(e2) => {
                            crate::warn!(
                                "{}: unmount failed ({e}), read-only remount failed ({e2})",
                                m.mount_point
                            );
                            report.failed.push(m.mount_point.clone());
                        }
                    }
                }
                Err(e) => crate::debug!("{} busy in pass {pass}: {e}", m.mount_point),
            }
        }
        if !progress {
            break;
        }
    }
    Ok(report)
}

/// umount2 with retries: unmounting right after the last user closed the filesystem can fail
/// with EBUSY for a short while.
fn umount_retry(mp: &Path, attempts: u64) -> std::io::Result<()> {
    let mut last = None;
    for attempt in 0..attempts {
        match sm::umount2(mp, 0) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // Not a mount point any more (unmounted with its parent): done.
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EBUSY)))
}

/// An active swap area (`/proc/swaps`) and the device it lives on: its own major:minor for a
/// partition, the filesystem's for a file; `None` when that could not be found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSwap {
    pub name: String,
    pub dev: Option<(u32, u32)>,
}

/// Refuses to go on while the target disk is still in use: a writable mount of the disk, of a
/// partition, or of a stacked device on them (`above`: LVM/dm, LUKS, md — see
/// [`crate::probe::block::holders`]), or an active swap area on any of them (swap writes
/// bypass the filesystem, so a read-only remount does not stop them). A swap whose device is
/// unknown counts as on the target.
pub fn ensure_no_writable(
    mounts: &[Mount],
    disk: &BlockDev,
    above: &[&BlockDev],
    swaps: &[ActiveSwap],
) -> Result<()> {
    let mut busy: Vec<String> = writable_on_disk(mounts, disk)
        .iter()
        .map(|m| format!("mounted read-write at {}", m.mount_point))
        .collect();
    for h in above {
        for m in writable_on_disk(mounts, h) {
            busy.push(format!(
                "mounted read-write at {} through {}",
                m.mount_point,
                h.dev_path()
            ));
        }
    }
    let devs: Vec<(u32, u32)> = std::iter::once(disk)
        .chain(above.iter().copied())
        .flat_map(|d| {
            std::iter::once((d.major, d.minor))
                .chain(d.partitions.iter().map(|p| (p.major, p.minor)))
        })
        .collect();
    for s in swaps {
        if s.dev.map_or(true, |d| devs.contains(&d)) {
            busy.push(format!("active swap {}", s.name));
        }
    }
    if busy.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        "unmounting the old system",
        disk.dev_path(),
        format!("still in use: {}", busy.join(", ")),
    )
    .hint("nothing was written; the device boots the old OS again. Stop what keeps these busy and retry"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::mounts::parse_mountinfo;

    const MI: &str = "\
22 1 0:21 / / rw,relatime - tmpfs none rw
30 22 254:1 / /mnt/old_root rw,relatime - ext4 /dev/vda1 rw
31 30 0:5 / /mnt/old_root/dev rw,nosuid - devtmpfs udev rw
32 31 0:25 / /mnt/old_root/dev/pts rw - devpts devpts rw
33 30 254:2 / /mnt/old_root/boot/firmware rw - vfat /dev/vda2 rw
34 30 0:26 / /mnt/old_root/run rw - tmpfs tmpfs rw
40 22 0:4 / /proc rw - proc proc rw
41 30 254:16 / /mnt/old_root/mnt/usb ro - ext4 /dev/vdb1 ro
";

    fn disk() -> BlockDev {
        use crate::probe::block::{DiskKind, Partition};
        let part = |n: u32| Partition {
            name: format!("vda{n}"),
            major: 254,
            minor: n,
            number: Some(n),
            start: Some(2048),
            size_sectors: 1000,
        };
        BlockDev {
            name: "vda".into(),
            kind: DiskKind::from_name("vda"),
            major: 254,
            minor: 0,
            size_sectors: 1 << 22,
            removable: false,
            ro: false,
            logical_block_size: 512,
            partitions: vec![part(1), part(2)],
            dm_name: None,
            slaves: vec![],
        }
    }

    #[test]
    fn only_kernel_virtual_filesystems_count_as_virtual() {
        for v in [
            "tmpfs", "proc", "sysfs", "devtmpfs", "devpts", "cgroup2", "efivarfs",
        ] {
            assert!(is_virtual(v), "{v}");
        }
        for d in [
            "ext4",
            "vfat",
            "overlay",
            "nfs",
            "fuse.sshfs",
            "btrfs",
            "squashfs",
            "",
        ] {
            assert!(!is_virtual(d), "{d}");
        }
    }

    #[test]
    fn children_before_parents_and_only_below_prefix() {
        let m = parse_mountinfo(MI, "mountinfo").unwrap();
        let order: Vec<&str> = unmount_order(&m, "/mnt/old_root")
            .iter()
            .map(|m| m.mount_point.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "/mnt/old_root/mnt/usb",
                "/mnt/old_root/run",
                "/mnt/old_root/boot/firmware",
                "/mnt/old_root/dev/pts",
                "/mnt/old_root/dev",
                "/mnt/old_root"
            ]
        );
    }

    #[test]
    fn writable_mounts_of_the_target_block_the_flash() {
        let m = parse_mountinfo(MI, "mountinfo").unwrap();
        let w: Vec<&str> = writable_on_disk(&m, &disk())
            .iter()
            .map(|m| m.mount_point.as_str())
            .collect();
        assert_eq!(w, ["/mnt/old_root", "/mnt/old_root/boot/firmware"]);
        let e = ensure_no_writable(&m, &disk(), &[], &[]).unwrap_err();
        assert!(
            e.to_string().contains("/dev/vda") && e.to_string().contains("nothing was written"),
            "{e}"
        );
        let ro = MI
            .replace("254:1 / /mnt/old_root rw", "254:1 / /mnt/old_root ro")
            .replace(
                "254:2 / /mnt/old_root/boot/firmware rw",
                "254:2 / /mnt/old_root/boot/firmware ro",
            );
        let m = parse_mountinfo(&ro, "mountinfo").unwrap();
        assert!(ensure_no_writable(&m, &disk(), &[], &[]).is_ok());
    }

    #[test]
    fn a_volume_on_the_target_and_active_swap_block_the_flash() {
        // The old root on LVM: dm-0 over vda2, mounted read-write; the disk's own
        // partitions are not mounted.
        let mi = "22 1 0:21 / / rw - tmpfs none rw\n\
                  30 22 253:0 / /mnt/old_root rw - ext4 /dev/mapper/vg-root rw\n";
        let m = parse_mountinfo(mi, "mountinfo").unwrap();
        let mut lv = disk();
        lv.name = "dm-0".into();
        lv.major = 253;
        lv.minor = 0;
        lv.partitions.clear();
        lv.slaves = vec!["vda2".into()];
        let e = ensure_no_writable(&m, &disk(), &[&lv], &[]).unwrap_err();
        assert!(
            e.to_string()
                .contains("mounted read-write at /mnt/old_root through /dev/dm-0"),
            "{e}"
        );
        // Unmounted, the volume itself is no obstacle; a swap on it, on a partition, or of
        // an unknown device is.
        let none: Vec<Mount> = vec![];
        assert!(ensure_no_writable(&none, &disk(), &[&lv], &[]).is_ok());
        for (name, dev) in [
            ("/dev/dm-0", Some((253, 0))),
            ("/dev/vda2", Some((254, 2))),
            ("/mnt/old_root/swapfile", None),
        ] {
            let s = [ActiveSwap {
                name: name.into(),
                dev,
            }];
            let e = ensure_no_writable(&none, &disk(), &[&lv], &s).unwrap_err();
            assert!(
                e.to_string().contains(&format!("active swap {name}")),
                "{e}"
            );
        }
        let elsewhere = [ActiveSwap {
            name: "/dev/vdb1".into(),
            dev: Some((254, 17)),
        }];
        assert!(ensure_no_writable(&none, &disk(), &[&lv], &elsewhere).is_ok());
    }
}
