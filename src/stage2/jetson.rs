//! Jetson Xavier boot flash (as balena's Jetson images expect): after the new image is written, its
//! boot blob goes to the board's boot flash, which the disk image does not cover.
//!
//! | board | blob (in the new image's resin-rootA) | written to |
//! |---|---|---|
//! | `jetson-xavier` (AGX) | `boot0_mmcblk0boot0.img` | `/dev/mmcblk0boot0` (eMMC hardware boot partition), after `0` → `/sys/block/mmcblk0boot0/force_ro`; the switch is put back afterwards |
//! | `jetson-xavier-nx` | `boot0_mtdblock0.img` | `/dev/mtd0` (QSPI): `MEMGETINFO`, `MEMERASE` of the blob's erase blocks, write |
//!
//! The blob is read from the freshly written disk's resin-rootA with the project's own ext4
//! reader (no mount, no loop device): the first regular file of that name, breadth first.
//! Every write is read back and compared; the QSPI is erased and written once more when the
//! comparison fails. Differences from the reference: no `mtd_debug`, the erase covers the blob
//! (not a fixed 32 MiB), the blob must fit the device, errors are errors (never a panic), and
//! `force_ro` is restored.
//!
//! Effects go through paths ([`Paths`]), so tests use regular files standing in for the
//! devices (the erase ioctl is skipped on a regular file).
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};
use crate::formats::ext4::Ext4;
use crate::formats::fslabel;
use crate::formats::partition::{self, Partition, Table};

/// Largest blob accepted (the NX QSPI is 32 MiB; the AGX boot0 partition 4–8 MiB).
pub const MAX_BLOB: u64 = 64 << 20;
/// Most directory entries visited while searching rootA for the blob.
const MAX_VISITS: usize = 200_000;

/// Where the boot flash is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub emmc_boot0: PathBuf,
    pub force_ro: PathBuf,
    pub mtd: PathBuf,
}

impl Paths {
    pub fn system() -> Paths {
        Paths {
            emmc_boot0: "/dev/mmcblk0boot0".into(),
            force_ro: "/sys/block/mmcblk0boot0/force_ro".into(),
            mtd: "/dev/mtd0".into(),
        }
    }
}

/// What to do for a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// AGX: eMMC boot0 hardware partition.
    EmmcBoot0,
    /// NX: QSPI NOR flash through MTD.
    Qspi,
}

/// The boot flash kind and blob name of a board id; `None` for other boards.
pub fn for_board(board: &str) -> Option<(Kind, &'static str)> {
    match board {
        "jetson-xavier" => Some((Kind::EmmcBoot0, "boot0_mmcblk0boot0.img")),
        "jetson-xavier-nx" => Some((Kind::Qspi, "boot0_mtdblock0.img")),
        _ => None,
    }
}

/// Stage 2 entry, after the flash: nothing for other boards.
pub fn after_flash(plan: &crate::stage2_plan::Stage2Plan) -> Result<()> {
    match plan.jetson {
        Some(b) => write_boot_flash(b.id(), &plan.flash_device, &Paths::system()),
        None => Ok(()),
    }
}

/// Reads the board's blob from `disk` (the freshly written image) and writes it to the boot
/// flash named in `paths`.
pub fn write_boot_flash(board: &str, disk: &Path, paths: &Paths) -> Result<()> {
    let Some((kind, name)) = for_board(board) else {
        return Ok(());
    };
    let (found_at, blob) = read_blob(disk, name)?;
    crate::info!(
        "{board}: boot blob {found_at} ({} KiB) from the new image",
        blob.len() >> 10
    );
    match kind {
        Kind::EmmcBoot0 => write_emmc_boot0(&paths.emmc_boot0, &paths.force_ro, &blob)?,
        Kind::Qspi => write_qspi(&paths.mtd, &blob)?,
    }
    crate::info!("{board}: boot flash written and verified");
    Ok(())
}

fn find_root_a(disk: &Path, f: &mut File) -> Result<Partition> {
    let name = disk.display().to_string();
    let table = partition::read_table(f)
        .map_err(|e| Error::new("reading the partition table of", &name, e))?;
    let mut by_label = None;
    for p in &table.partitions {
        if p.name.as_deref() == Some("resin-rootA") {
            return Ok(p.clone());
        }
        let mut first = vec![0u8; fslabel::PROBE_BYTES];
        f.seek(SeekFrom::Start(p.start)).ctx("reading", &name)?;
        let n = read_full(f, &mut first).ctx("reading", &name)?;
        first.truncate(n);
        if by_label.is_none() && fslabel::probe(&first).label.as_deref() == Some("resin-rootA") {
            by_label = Some(p.clone());
        }
    }
    by_label
        .or_else(|| {
            (table.table == Table::Mbr)
                .then(|| table.partitions.iter().find(|p| p.index == 2).cloned())
                .flatten()
        })
        .ok_or_else(|| {
            Error::new(
                "finding resin-rootA on",
                &name,
                "no resin-rootA partition (GPT name, label, or MBR partition 2)",
            )
        })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Finds the first regular file called `name` in resin-rootA of `disk` (breadth first) and
/// returns its path and content.
pub fn read_blob(disk: &Path, name: &str) -> Result<(String, Vec<u8>)> {
    let dname = disk.display().to_string();
    let mut f = File::open(disk).ctx("opening", &dname)?;
    let root_a = find_root_a(disk, &mut f)?;
    let io = |e: std::io::Error| Error::io("reading resin-rootA of", &dname, e);
    let mut fs = Ext4::open(f, root_a.start, root_a.size).map_err(io)?;
    let mut queue = VecDeque::from([(String::new(), fs.inode(2).map_err(io)?)]);
    let mut visits = 0usize;
    while let Some((path, dir)) = queue.pop_front() {
        for e in fs.read_dir(&dir).map_err(io)? {
            visits += 1;
            if visits > MAX_VISITS {
                return Err(Error::new(
                    "searching resin-rootA of",
                    &dname,
                    format!("{name} not found in the first {MAX_VISITS} entries"),
                ));
            }
            if e.name == "." || e.name == ".." || e.name == "lost+found" {
                continue;
            }
            let ino = fs.inode(e.inode).map_err(io)?;
            let p = format!("{path}/{}", e.name);
            if ino.is_file() && e.name == name {
                if ino.size > MAX_BLOB {
                    return Err(Error::new(
                        "reading the boot blob",
                        &p,
                        format!("{} bytes is larger than {MAX_BLOB}", ino.size),
                    ));
                }
                let mut blob = Vec::with_capacity(ino.size as usize);
                fs.open_file(&ino)
                    .map_err(io)?
                    .read_to_end(&mut blob)
                    .map_err(io)?;
                return Ok((p, blob));
            }
            if ino.is_dir() {
                queue.push_back((p, ino));
            }
        }
    }
    Err(Error::new(
        "finding the boot blob in resin-rootA of",
        &dname,
        format!("no file named {name}"),
    )
    .hint("this image does not carry the Jetson boot blob: use a balenaOS image for this board"))
}

/// Writes `blob` at offset 0 of the open `f` (the device `dev`), syncs, reads it back from the
/// device itself (O_DIRECT, else with its cached pages dropped: a buffered read of the same
/// fd would compare the page cache with itself) and compares.
fn write_verify(f: &mut File, dev: &Path, blob: &[u8]) -> Result<()> {
    let what = dev.display().to_string();
    f.seek(SeekFrom::Start(0)).ctx("writing", &what)?;
    f.write_all(blob).ctx("writing", &what)?;
    f.sync_all().ctx("syncing", &what)?;
    let back = crate::sys::direct::read_uncached(dev, blob.len()).ctx("reading back", &what)?;
    let n = back.len();
    if n != blob.len() || back != blob {
        let at = back.iter().zip(blob).position(|(a, b)| a != b).unwrap_or(n);
        return Err(Error::new(
            "verifying",
            what,
            format!("read-back differs from the blob at byte {at}"),
        ));
    }
    Ok(())
}

/// The capacity of a block device, `None` for anything else (a stand-in file grows).
fn capacity(f: &File, p: &Path) -> Result<Option<u64>> {
    let m = f.metadata().ctx("reading", p.display())?;
    if m.file_type().is_block_device() {
        crate::flash::target_size(p).map(Some)
    } else {
        Ok(None)
    }
}

/// AGX: clears `force_ro`, writes and verifies the eMMC boot0 partition, restores `force_ro`.
pub fn write_emmc_boot0(dev: &Path, force_ro: &Path, blob: &[u8]) -> Result<()> {
    let what = dev.display().to_string();
    let old = std::fs::read_to_string(force_ro)
        .map(|s| s.trim().to_string())
        .ctx("reading", force_ro.display())?;
    std::fs::write(force_ro, "0").ctx("writing 0 to", force_ro.display())?;
    let r = (|| {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dev)
            .ctx("opening", &what)?;
        if let Some(cap) = capacity(&f, dev)? {
            if blob.len() as u64 > cap {
                return Err(Error::new(
                    "writing the boot blob to",
                    &what,
                    format!("{} bytes do not fit its {cap} bytes", blob.len()),
                ));
            }
        }
        write_verify(&mut f, dev, blob)
    })();
    if let Err(e) = std::fs::write(force_ro, &old) {
        crate::warn!("could not put {} back to {old}: {e}", force_ro.display());
    }
    r
}

/// NX: erases the erase blocks the blob covers, writes and verifies; once more on a
/// mismatch. On a regular file (tests) the erase is skipped.
pub fn write_qspi(dev: &Path, blob: &[u8]) -> Result<()> {
    let what = dev.display().to_string();
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .ctx("opening", &what)?;
    let is_mtd = f
        .metadata()
        .ctx("reading", &what)?
        .file_type()
        .is_char_device();
    let erase = |f: &File| -> Result<()> {
        if !is_mtd {
            return Ok(());
        }
        use std::os::fd::AsFd;
        let info = crate::sys::mtd::mem_get_info(f.as_fd()).ctx("MEMGETINFO on", &what)?;
        let plan = erase_range(blob.len() as u64, info.size, info.erasesize).map_err(|cause| {
            Error::new("writing the boot blob to", &what, cause)
                .hint("the blob does not match this board's QSPI flash")
        })?;
        crate::info!(
            "erasing {} bytes of {what} ({} blocks of {})",
            plan,
            plan / info.erasesize.max(1),
            info.erasesize
        );
        crate::sys::mtd::mem_erase(f.as_fd(), 0, plan).ctx("MEMERASE on", &what)
    };
    erase(&f)?;
    match write_verify(&mut f, dev, blob) {
        Ok(()) => Ok(()),
        Err(e) => {
            crate::warn!("{e}; erasing and writing once more");
            erase(&f)?;
            write_verify(&mut f, dev, blob)
        }
    }
}

/// Bytes to erase for a blob of `len` on a device of `size` with `erasesize` blocks: `len`
/// rounded up to whole blocks; an error when it does not fit.
pub fn erase_range(len: u64, size: u32, erasesize: u32) -> std::result::Result<u32, String> {
    if erasesize == 0 || size == 0 {
        return Err(format!(
            "the MTD device reports size {size}, erase size {erasesize}"
        ));
    }
    let rounded = len.div_ceil(u64::from(erasesize)) * u64::from(erasesize);
    if rounded > u64::from(size) {
        return Err(format!("{len} bytes do not fit its {size} bytes"));
    }
    Ok(rounded as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn dir(tag: &str) -> PathBuf {
        crate::testutil::temp_dir("jetson", tag)
    }

    /// A disk file: MBR, partition 1 (empty "boot"), partition 2 = ext4 labelled resin-rootA
    /// holding `/opt/tegra-binaries/<name>` (plus a decoy directory entry). `None` without mkfs.ext4.
    fn disk_with_blob(d: &Path, name: &str, blob: &[u8], label: &str) -> Option<PathBuf> {
        let content = d.join("content");
        std::fs::create_dir_all(content.join("opt/tegra-binaries")).unwrap();
        std::fs::create_dir_all(content.join("etc")).unwrap();
        std::fs::write(content.join("etc/boot0_other.img"), b"decoy").unwrap();
        std::fs::write(content.join("opt/tegra-binaries").join(name), blob).unwrap();
        let fsimg = d.join("rootA.ext4");
        let mut a = vec!["-q", "-F", "-t", "ext4", "-d", content.to_str()?];
        if !label.is_empty() {
            a.extend(["-L", label]);
        }
        a.extend([fsimg.to_str()?, "8M"]);
        match Command::new("mkfs.ext4").args(&a).output() {
            Ok(o) if o.status.success() => {}
            _ => {
                eprintln!("skipped: needs mkfs.ext4 (e2fsprogs)");
                return None;
            }
        }
        let fs = std::fs::read(&fsimg).unwrap();
        let mut disk = vec![0u8; (4096 * 512) + fs.len()];
        let entry = |i: usize, t: u8, lba: u32, sectors: u32, disk: &mut Vec<u8>| {
            let o = 446 + 16 * i;
            disk[o + 4] = t;
            disk[o + 8..o + 12].copy_from_slice(&lba.to_le_bytes());
            disk[o + 12..o + 16].copy_from_slice(&sectors.to_le_bytes());
        };
        entry(0, 0x0c, 2048, 2048, &mut disk);
        entry(1, 0x83, 4096, (fs.len() / 512) as u32, &mut disk);
        disk[510] = 0x55;
        disk[511] = 0xaa;
        disk[4096 * 512..].copy_from_slice(&fs);
        let p = d.join("disk.img");
        std::fs::write(&p, disk).unwrap();
        Some(p)
    }

    fn blob(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn agx_blob_lands_on_boot0_and_force_ro_is_restored() {
        let d = dir("agx");
        let b = blob(300_000);
        let Some(disk) = disk_with_blob(&d, "boot0_mmcblk0boot0.img", &b, "resin-rootA") else {
            return;
        };
        let paths = Paths {
            emmc_boot0: d.join("mmcblk0boot0"),
            force_ro: d.join("force_ro"),
            mtd: d.join("mtd0"),
        };
        std::fs::write(&paths.emmc_boot0, vec![0xAAu8; 4 << 20]).unwrap();
        std::fs::write(&paths.force_ro, "1\n").unwrap();
        write_boot_flash("jetson-xavier", &disk, &paths).unwrap();
        let got = std::fs::read(&paths.emmc_boot0).unwrap();
        assert_eq!(&got[..b.len()], &b[..]);
        // The rest of the partition is left as it was.
        assert!(got[b.len()..].iter().all(|&x| x == 0xAA));
        assert_eq!(std::fs::read_to_string(&paths.force_ro).unwrap(), "1");
        assert!(!paths.mtd.exists());
        // Other boards: nothing.
        write_boot_flash("raspberrypi4-64", &disk, &paths).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn nx_blob_lands_on_the_qspi_stand_in() {
        let d = dir("nx");
        let b = blob(1 << 20);
        // No label: found as MBR partition 2.
        let Some(disk) = disk_with_blob(&d, "boot0_mtdblock0.img", &b, "") else {
            return;
        };
        let paths = Paths {
            emmc_boot0: d.join("mmcblk0boot0"),
            force_ro: d.join("force_ro"),
            mtd: d.join("mtd0"),
        };
        std::fs::write(&paths.mtd, vec![0xFFu8; 32 << 20]).unwrap();
        write_boot_flash("jetson-xavier-nx", &disk, &paths).unwrap();
        let got = std::fs::read(&paths.mtd).unwrap();
        assert_eq!(&got[..b.len()], &b[..]);
        assert!(!paths.emmc_boot0.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_blob_and_missing_switch_are_errors() {
        let d = dir("missing");
        let Some(disk) = disk_with_blob(&d, "something-else.img", b"x", "resin-rootA") else {
            return;
        };
        let e = read_blob(&disk, "boot0_mmcblk0boot0.img").unwrap_err();
        assert!(e.to_string().contains("boot0_mmcblk0boot0.img"), "{e}");
        let paths = Paths {
            emmc_boot0: d.join("mmcblk0boot0"),
            force_ro: d.join("no-such-force_ro"),
            mtd: d.join("mtd0"),
        };
        std::fs::write(&paths.emmc_boot0, b"").unwrap();
        let e = write_emmc_boot0(&paths.emmc_boot0, &paths.force_ro, b"blob").unwrap_err();
        assert!(e.to_string().contains("force_ro"), "{e}");
        // Read-back mismatch is detected: /dev/full-like target cannot be simulated on a
        // file, but a read-only target fails to open for writing and force_ro is restored.
        std::fs::write(&paths.force_ro, "1").unwrap();
        let missing = d.join("no-such-boot0");
        assert!(write_emmc_boot0(&missing, &paths.force_ro, b"blob").is_err());
        assert_eq!(std::fs::read_to_string(&paths.force_ro).unwrap(), "1");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn erase_ranges() {
        assert_eq!(erase_range(1, 32 << 20, 65536), Ok(65536));
        assert_eq!(erase_range(65536, 32 << 20, 65536), Ok(65536));
        assert_eq!(erase_range(32 << 20, 32 << 20, 65536), Ok(32 << 20));
        assert!(erase_range((32 << 20) + 1, 32 << 20, 65536).is_err());
        assert!(erase_range(10, 32 << 20, 0).is_err());
        assert_eq!(for_board("jetson-xavier-nx").unwrap().0, Kind::Qspi);
        assert!(for_board("intel-nuc").is_none());
        assert!(crate::stage2_plan::JetsonBoard::ALL
            .iter()
            .all(|b| for_board(b.id()).is_some()));
    }
}
