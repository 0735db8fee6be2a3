//! Configuring a freshly written balenaOS disk (stage 2 and `--write-only`).
//!
//! The payload is a directory with the same layout `--dry-run` stages:
//! `boot/` → files for the resin-boot partition (config.json, system-connections/,
//! system-proxy/), written with the project's own FAT writer straight onto the target, no
//! kernel vfat needed; `data/` → files for resin-data (backup.tgz, takeover/ logs), written
//! through the kernel's ext4 on a loop device with the partition's offset.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};
use crate::fat::{Fat, Slice};
use crate::formats::fslabel;
use crate::formats::partition::{self, Partition, PartitionTable, Table};
use crate::sys::{loopdev::Loop, mount as sm};

/// The partitions of a balenaOS disk that takeover writes to.
#[derive(Debug, Clone)]
pub struct Layout {
    pub table: Table,
    pub boot: Partition,
    pub data: Partition,
}

fn read_at(f: &mut File, off: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(off))?;
    let mut got = 0;
    while got < len {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Finds resin-boot and resin-data on the written disk: by GPT name, else by filesystem
/// label, else by the balenaOS MBR numbering (1 and 6).
pub fn find_layout(target: &Path) -> Result<Layout> {
    let name = target.display().to_string();
    let mut f = File::open(target).ctx("reading the partition table of", &name)?;
    let table: PartitionTable = partition::read_table(&mut f)
        .map_err(|e| Error::new("reading the partition table of", &name, e))?;
    let mut labels = Vec::new();
    for p in &table.partitions {
        let first = read_at(&mut f, p.start, fslabel::PROBE_BYTES).ctx("reading", &name)?;
        labels.push(fslabel::probe(&first).label);
    }
    let find = |want: &str, fallback: u32| -> Option<Partition> {
        let by_name = table
            .partitions
            .iter()
            .find(|p| p.name.as_deref() == Some(want));
        let by_label = || {
            table
                .partitions
                .iter()
                .zip(&labels)
                .find(|(_, l)| l.as_deref() == Some(want))
                .map(|(p, _)| p)
        };
        let by_index = || {
            (table.table == Table::Mbr)
                .then(|| table.partitions.iter().find(|p| p.index == fallback))
                .flatten()
        };
        by_name.or_else(by_label).or_else(by_index).cloned()
    };
    let missing = |what: &str| {
        Error::new(
            "finding partitions on",
            &name,
            format!("no {what} partition"),
        )
        .hint("the image written is not a balenaOS image; write a balenaOS image")
    };
    let boot = find("resin-boot", 1).ok_or_else(|| missing("resin-boot"))?;
    let data = find("resin-data", 6).ok_or_else(|| missing("resin-data"))?;
    Ok(Layout {
        table: table.table,
        boot,
        data,
    })
}

/// Files below `dir`, as (relative path with '/', absolute path), sorted.
fn walk(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((rel, p)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&p)
            .ctx_path("reading payload", &p)?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let n = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                n.clone()
            } else {
                format!("{rel}/{n}")
            };
            let ft = e.file_type().ctx_path("reading payload", &e.path())?;
            if ft.is_dir() {
                stack.push((r, e.path()));
            } else if ft.is_file() {
                out.push((r, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes every file of `payload_boot` into the boot partition of `target`. Returns the
/// paths written (relative to the partition root).
pub fn write_boot(target: &Path, layout: &Layout, payload_boot: &Path) -> Result<Vec<String>> {
    let name = target.display().to_string();
    let files = walk(payload_boot)?;
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(target)
        .ctx("opening", &name)?;
    let slice =
        Slice::new(f, layout.boot.start, layout.boot.size).ctx("opening resin-boot on", &name)?;
    let mut fat = Fat::open(slice)?;
    let mut written = Vec::new();
    for (rel, abs) in &files {
        let data = crate::files::read_limited(abs, 64 << 20, "payload file")?;
        if let Some((dir, _)) = rel.rsplit_once('/') {
            fat.create_dir_all(&format!("/{dir}"))?;
        }
        fat.write_file(&format!("/{rel}"), &data)?;
        crate::info!("wrote {rel} to resin-boot ({} bytes)", data.len());
        written.push(rel.clone());
    }
    fat.flush()?;
    let f = fat.into_inner().into_inner();
    f.sync_all().ctx("syncing", &name)?;
    Ok(written)
}

/// Mounts the data partition of `target` (ext4, through a loop device with the partition's
/// offset) at `mount_point`, runs `f`, then unmounts and detaches, whatever `f` returned.
pub fn with_data_partition<T>(
    target: &Path,
    layout: &Layout,
    dev_dir: &Path,
    mount_point: &Path,
    f: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let name = target.display().to_string();
    let mut lo = Loop::attach(dev_dir, target, layout.data.start, layout.data.size)
        .ctx("attaching resin-data of", &name)
        .map_err(|e| e.hint("the loop driver is needed to write resin-data (modprobe loop)"))?;
    std::fs::create_dir_all(mount_point).ctx_path("creating", mount_point)?;
    let mounted = sm::mount(Some(lo.path()), mount_point, Some("ext4"), 0, None)
        .ctx("mounting resin-data of", &name)
        .map_err(|e| e.hint("the ext4 driver is needed to write resin-data (modprobe ext4)"));
    let result = mounted.and_then(|()| {
        let r = f(mount_point);
        crate::sys::sync();
        let u = sm::umount2(mount_point, 0).ctx("unmounting", mount_point.display());
        r.and_then(|v| u.map(|()| v))
    });
    let d = lo.detach().ctx("detaching", lo.path().display());
    result.and_then(|v| d.map(|()| v))
}

/// Copies every file of `payload_data` into the mounted data partition at `root`.
pub fn copy_data(payload_data: &Path, root: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for (rel, abs) in walk(payload_data)? {
        let dest = root.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).ctx_path("creating", parent)?;
        }
        let n = std::fs::copy(&abs, &dest).ctx_path("copying to resin-data", &dest)?;
        std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .ctx_path("setting mode of", &dest)?;
        crate::info!("wrote {rel} to resin-data ({n} bytes)");
        written.push(rel);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_lists_files_recursively_sorted() {
        let d = std::env::temp_dir().join(format!("takeover-walk-{}", std::process::id()));
        std::fs::create_dir_all(d.join("system-connections")).unwrap();
        std::fs::write(d.join("config.json"), b"{}").unwrap();
        std::fs::write(d.join("system-connections/wifi-a"), b"x").unwrap();
        std::fs::create_dir_all(d.join("system-proxy")).unwrap();
        let got: Vec<String> = walk(&d).unwrap().into_iter().map(|(r, _)| r).collect();
        assert_eq!(got, ["config.json", "system-connections/wifi-a"]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
