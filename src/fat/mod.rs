//! FAT12/16/32 reader and writer in user space, over a `Read + Write + Seek` view of one
//! partition. balenaOS's boot partition is written without the kernel's vfat driver.
//!
//! - [`Slice`]: the byte range of one partition inside a disk image or block device.
//! - [`Fat`]: open a volume ([`Fat::open`]), read and list by path, and (when the device is
//!   writable) create or replace files and directories.
//!
//! Paths are `/`-separated from the root (`/system-connections/wifi`); lookups ignore case as
//! FAT does, new names are stored as given (long name entries with a unique 8.3 alias).
//!
//! Memory: the FAT itself is cached (a few MiB at most for a boot partition); directories are
//! read one at a time (at most 2 MiB each, the FAT limit); file contents are never held beyond
//! what the caller reads or writes.
//!
//! Timestamps come from the system clock and are stored as UTC (FAT has no time zone; the
//! devices this runs on keep UTC). Replacing a file keeps its entry, name and creation time.
//!
//! Crash order of every change: file data clusters first, then the FAT (every copy), then the
//! directory entry; clusters of a replaced or removed file are freed only after the entry no
//! longer points at them. A crash leaves at worst lost clusters, never a file pointing at
//! someone else's data.
#![forbid(unsafe_code)]

mod bpb;
mod dir;
mod slice;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};

pub use bpb::FatKind;
pub use slice::Slice;

use crate::error::{Error, Result};
use bpb::Layout;
use dir::{Entry, Parsed, SLOT};
use table::{damaged, Table};

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The long name (or the 8.3 name when the entry has no long name).
    pub name: String,
    /// The 8.3 name, `NAME.EXT`.
    pub short_name: String,
    pub is_dir: bool,
    pub size: u64,
}

/// A FAT volume on `D`.
pub struct Fat<D> {
    dev: D,
    layout: Layout,
    table: Table,
    label: Option<String>,
    fsinfo_dirty: bool,
}

/// Largest directory FAT allows: 65536 entries of 32 bytes.
const MAX_DIR_BYTES: usize = 65536 * SLOT;

/// Where a directory lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirAt {
    /// The fixed root directory of FAT12/16.
    FixedRoot,
    /// A cluster chain starting here (FAT32's root too).
    Chain(u32),
}

/// A directory read into memory.
struct Dir {
    at: DirAt,
    clusters: Vec<u32>,
    data: Vec<u8>,
    parsed: Parsed,
}

impl Dir {
    fn slots(&self) -> usize {
        self.data.len() / SLOT
    }

    fn find(&self, name: &str) -> Option<&Entry> {
        self.parsed
            .entries
            .iter()
            .find(|e| !e.is_dot() && e.matches(name))
    }
}

fn components(path: &str) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::new(
                    "resolving FAT path",
                    path,
                    "'..' is not allowed in a path",
                ))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Puts `path` into an error that does not name it yet.
fn at_path(op: &str, path: &str, e: Error) -> Error {
    if e.object.contains(path) || e.step.contains(path) {
        return e;
    }
    Error {
        step: op.to_string(),
        object: path.to_string(),
        cause: e.message(),
        ..e
    }
}

fn not_found(path: &str, what: &str) -> Error {
    Error::new(
        "looking up",
        path,
        format!("{what} not found on the FAT partition"),
    )
}

impl<D: Read + Seek> Fat<D> {
    /// Opens the FAT volume on `dev` (the whole partition): parses the boot sector, reads the
    /// FAT and the root directory. exFAT, NTFS and anything else are refused with a clear
    /// error.
    pub fn open(mut dev: D) -> Result<Fat<D>> {
        let obj = "FAT partition";
        let len = dev
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io("measuring", obj, e))?;
        let mut boot = vec![0u8; 512];
        if len < 512 {
            return Err(Error::new(
                "reading the FAT boot sector",
                obj,
                format!("the partition has only {len} bytes"),
            ));
        }
        read_at(&mut dev, 0, &mut boot)?;
        let layout = bpb::parse(&boot, obj, Some(len))?;
        let need = Table::needed_bytes(&layout);
        if need > table::MAX_TABLE_BYTES {
            return Err(Error::new(
                "reading the FAT",
                obj,
                format!("the FAT needs {need} bytes of memory, more than this tool allows"),
            )
            .hint("this tool is meant for boot partitions, not large data volumes"));
        }
        let copy = u64::from(layout.active_fat.unwrap_or(0));
        let mut bytes = vec![0u8; need as usize];
        read_at(
            &mut dev,
            layout.fat_start + copy * layout.fat_bytes,
            &mut bytes,
        )?;
        let table = Table::new(&layout, bytes);
        let mut fat = Fat {
            dev,
            layout,
            table,
            label: None,
            fsinfo_dirty: false,
        };
        let root = fat.load_dir(fat.root(), "/")?;
        fat.label = root
            .parsed
            .label
            .clone()
            .or_else(|| fat.layout.label.clone());
        crate::debug!(
            "FAT: {} volume, {} clusters of {} bytes, {} free",
            fat.layout.kind,
            fat.layout.cluster_count,
            fat.layout.cluster_size,
            fat.table.free_count()
        );
        Ok(fat)
    }

    pub fn kind(&self) -> FatKind {
        self.layout.kind
    }

    /// The volume label: the root directory's label entry, else the boot sector's.
    pub fn label(&self) -> Option<String> {
        self.label.clone()
    }

    /// Bytes of one cluster.
    pub fn cluster_size(&self) -> u32 {
        self.layout.cluster_size
    }

    /// Free clusters, as counted in the FAT.
    pub fn free_clusters(&self) -> u32 {
        self.table.free_count()
    }

    /// Free bytes.
    pub fn free_bytes(&self) -> u64 {
        u64::from(self.table.free_count()) * u64::from(self.layout.cluster_size)
    }

    /// Reads the file at `path` (e.g. `/device-type.json`). A file larger than `max` bytes is
    /// an error (nothing is read).
    pub fn read_file(&mut self, path: &str, max: u64) -> Result<Vec<u8>> {
        let op = "reading FAT file";
        self.read_file_inner(path, max)
            .map_err(|e| at_path(op, path, e))
    }

    fn read_file_inner(&mut self, path: &str, max: u64) -> Result<Vec<u8>> {
        let (_, entry, _) = self.resolve(path)?;
        let e = entry.ok_or_else(|| not_found(path, "file"))?;
        if e.is_dir() {
            return Err(Error::new("reading FAT file", path, "is a directory"));
        }
        let size = u64::from(e.size);
        if size > max {
            return Err(Error::new(
                "reading FAT file",
                path,
                format!("the file has {size} bytes, more than the {max} expected"),
            ));
        }
        let cs = u64::from(self.layout.cluster_size);
        let n = size.div_ceil(cs) as usize;
        if n == 0 {
            return Ok(Vec::new());
        }
        let chain = self.table.chain(e.cluster, Some(n), path)?;
        if chain.len() < n {
            return Err(damaged(
                path,
                format!(
                    "the file has {size} bytes but its cluster chain only {} clusters",
                    chain.len()
                ),
            ));
        }
        let mut out = vec![0u8; size as usize];
        self.read_clusters(&chain, &mut out)?;
        Ok(out)
    }

    /// Lists the directory at `path` (`/` for the root), without `.`, `..` and the label.
    pub fn list_dir(&mut self, path: &str) -> Result<Vec<DirEntry>> {
        let op = "listing FAT directory";
        self.list_dir_inner(path).map_err(|e| at_path(op, path, e))
    }

    fn list_dir_inner(&mut self, path: &str) -> Result<Vec<DirEntry>> {
        let d = self.open_dir(path)?;
        Ok(d.parsed
            .entries
            .iter()
            .filter(|e| !e.is_dot())
            .map(|e| DirEntry {
                name: e.name.clone(),
                short_name: e.short_name.clone(),
                is_dir: e.is_dir(),
                size: u64::from(e.size),
            })
            .collect())
    }

    /// True when a file or directory exists at `path`. A missing parent is `false`; a
    /// damaged filesystem is an error.
    pub fn exists(&mut self, path: &str) -> Result<bool> {
        let op = "looking up on the FAT partition";
        let comps = components(path).map_err(|e| at_path(op, path, e))?;
        if comps.is_empty() {
            return Ok(true);
        }
        let mut d = self
            .load_dir(self.root(), "/")
            .map_err(|e| at_path(op, path, e))?;
        for (i, c) in comps.iter().enumerate() {
            let Some(e) = d.find(c).cloned() else {
                return Ok(false);
            };
            if i + 1 == comps.len() {
                return Ok(true);
            }
            if !e.is_dir() {
                return Ok(false);
            }
            d = self
                .load_dir(self.subdir(&e, path)?, path)
                .map_err(|e| at_path(op, path, e))?;
        }
        Ok(true)
    }

    fn root(&self) -> DirAt {
        match self.layout.kind {
            FatKind::Fat32 => DirAt::Chain(self.layout.root_cluster),
            _ => DirAt::FixedRoot,
        }
    }

    /// Where the subdirectory of entry `e` lives. Only `..` may say 0 (the root); a named
    /// directory without clusters is damage, not the root.
    fn subdir(&self, e: &Entry, path: &str) -> Result<DirAt> {
        if e.cluster == 0 {
            return Err(damaged(
                path,
                format!("directory '{}' has no first cluster", e.name),
            ));
        }
        Ok(DirAt::Chain(e.cluster))
    }

    /// The cluster number `..` entries use for `at` (0 for the root).
    fn dotdot_cluster(&self, at: DirAt) -> u32 {
        match at {
            DirAt::FixedRoot => 0,
            DirAt::Chain(c)
                if self.layout.kind == FatKind::Fat32 && c == self.layout.root_cluster =>
            {
                0
            }
            DirAt::Chain(c) => c,
        }
    }

    fn load_dir(&mut self, at: DirAt, path: &str) -> Result<Dir> {
        let (clusters, data) = match at {
            DirAt::FixedRoot => {
                let mut data = vec![0u8; self.layout.root_entries as usize * SLOT];
                read_at(&mut self.dev, self.layout.root_start, &mut data)?;
                (Vec::new(), data)
            }
            DirAt::Chain(first) => {
                if first == 0 {
                    return Err(damaged(path, "a directory with no clusters"));
                }
                let cs = self.layout.cluster_size as usize;
                let most = (MAX_DIR_BYTES / cs).max(1);
                let chain = self.table.chain(first, Some(most + 1), path)?;
                if chain.len() > most {
                    return Err(damaged(
                        path,
                        format!("the directory is longer than {MAX_DIR_BYTES} bytes"),
                    ));
                }
                let mut data = vec![0u8; chain.len() * cs];
                self.read_clusters(&chain, &mut data)?;
                (chain, data)
            }
        };
        let parsed = dir::parse(&data);
        Ok(Dir {
            at,
            clusters,
            data,
            parsed,
        })
    }

    /// The directory `path` names.
    fn open_dir(&mut self, path: &str) -> Result<Dir> {
        let comps = components(path)?;
        let mut d = self.load_dir(self.root(), "/")?;
        for c in comps {
            let e = d
                .find(c)
                .cloned()
                .ok_or_else(|| not_found(path, "directory"))?;
            if !e.is_dir() {
                return Err(Error::new(
                    "opening FAT directory",
                    path,
                    format!("'{c}' is a file"),
                ));
            }
            d = self.load_dir(self.subdir(&e, path)?, path)?;
        }
        Ok(d)
    }

    /// The parent directory of `path`, the entry there (if any) and the last name.
    fn resolve<'p>(&mut self, path: &'p str) -> Result<(Dir, Option<Entry>, &'p str)> {
        let comps = components(path)?;
        let Some((last, parents)) = comps.split_last() else {
            return Err(Error::new(
                "resolving FAT path",
                path,
                "names the root directory, not a file",
            ));
        };
        let mut d = self.load_dir(self.root(), "/")?;
        for c in parents {
            let e = d
                .find(c)
                .cloned()
                .ok_or_else(|| not_found(path, &format!("directory '{c}'")))?;
            if !e.is_dir() {
                return Err(Error::new(
                    "resolving FAT path",
                    path,
                    format!("'{c}' is a file, not a directory"),
                ));
            }
            d = self.load_dir(self.subdir(&e, path)?, path)?;
        }
        let e = d.find(last).cloned();
        Ok((d, e, last))
    }

    fn slot_offset(&self, d: &Dir, slot: usize) -> u64 {
        let byte = slot * SLOT;
        match d.at {
            DirAt::FixedRoot => self.layout.root_start + byte as u64,
            DirAt::Chain(_) => {
                let cs = self.layout.cluster_size as usize;
                self.layout.cluster_offset(d.clusters[byte / cs]) + (byte % cs) as u64
            }
        }
    }

    /// Reads the clusters into `out` (its length says how much), a run of consecutive
    /// clusters at a time.
    fn read_clusters(&mut self, clusters: &[u32], out: &mut [u8]) -> Result<()> {
        let cs = self.layout.cluster_size as usize;
        let mut done = 0;
        let mut i = 0;
        while i < clusters.len() && done < out.len() {
            let mut j = i + 1;
            while j < clusters.len() && clusters[j] == clusters[j - 1] + 1 {
                j += 1;
            }
            let n = ((j - i) * cs).min(out.len() - done);
            read_at(
                &mut self.dev,
                self.layout.cluster_offset(clusters[i]),
                &mut out[done..done + n],
            )?;
            done += n;
            i = j;
        }
        Ok(())
    }
}

fn read_at<D: Read + Seek>(dev: &mut D, off: u64, buf: &mut [u8]) -> Result<()> {
    dev.seek(SeekFrom::Start(off))
        .and_then(|_| dev.read_exact(buf))
        .map_err(|e| Error::io("reading the FAT partition", format!("at byte {off}"), e))
}

fn write_at<D: Write + Seek>(dev: &mut D, off: u64, buf: &[u8]) -> Result<()> {
    dev.seek(SeekFrom::Start(off))
        .and_then(|_| dev.write_all(buf))
        .map_err(|e| Error::io("writing the FAT partition", format!("at byte {off}"), e))
}

/// Where a new entry set goes in a directory.
struct Placement {
    start: usize,
    /// Clusters to add to the directory first.
    grow: usize,
}

impl<D: Read + Write + Seek> Fat<D> {
    /// Creates or replaces the file at `path` with `data`. The parent directory must exist.
    /// Replacing keeps the existing entry (and its name's case); its old clusters are freed
    /// after the entry points at the new ones.
    pub fn write_file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let op = "writing FAT file";
        self.write_file_inner(path, data)
            .map_err(|e| at_path(op, path, e))?;
        self.write_fsinfo().map_err(|e| at_path(op, path, e))
    }

    fn write_file_inner(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let (parent, existing, name) = self.resolve(path)?;
        let size = u32::try_from(data.len()).map_err(|_| {
            Error::new(
                "writing FAT file",
                path,
                format!(
                    "{} bytes is more than FAT's 4 GiB - 1 file size limit",
                    data.len()
                ),
            )
        })?;
        if let Some(e) = &existing {
            if e.is_dir() {
                return Err(Error::new(
                    "writing FAT file",
                    path,
                    "a directory of that name exists",
                ));
            }
        } else {
            dir::check_name(name, path)?;
        }
        // Check the old chain before changing anything: a damaged chain must not be freed.
        let old = match &existing {
            Some(e) if e.cluster != 0 => self.table.chain(e.cluster, None, path)?,
            _ => Vec::new(),
        };
        let cs = self.layout.cluster_size as usize;
        let n = data.len().div_ceil(cs);
        let now = dir::dos_now();
        let (set, place) = match &existing {
            Some(_) => (Vec::new(), None),
            None => {
                let set = self.entry_set(&parent, name, dir::ATTR_ARCHIVE, 0, size, now);
                let place = self.place(&parent, set.len(), path)?;
                (set, Some(place))
            }
        };
        let grow = place.as_ref().map_or(0, |p| p.grow);
        let clusters = self.allocate(n + grow, path).map_err(|mut e| {
            if !old.is_empty() {
                e.cause.push_str(&format!(
                    " (the {} clusters of the old file are freed only after the new data is \
                     written, so a replacement needs room for both)",
                    old.len()
                ));
            }
            e
        })?;
        let (file_cl, dir_cl) = clusters.split_at(n);
        // 1. data
        self.write_data(file_cl, data)?;
        self.zero_clusters(dir_cl)?;
        // 2. FAT
        link_chain(&mut self.table, file_cl);
        if let Some(&last) = parent.clusters.last() {
            if !dir_cl.is_empty() {
                link_chain(&mut self.table, dir_cl);
                self.table.link(last, Some(dir_cl[0]));
            }
        }
        self.commit_fat()?;
        let first = file_cl.first().copied().unwrap_or(0);
        // 3. directory entry
        match (existing, place) {
            (Some(e), _) => {
                let off = self.slot_offset(&parent, e.short_slot);
                let mut slot = [0u8; SLOT];
                slot.copy_from_slice(&parent.data[e.short_slot * SLOT..(e.short_slot + 1) * SLOT]);
                dir::update_short(&mut slot, first, size, now);
                write_at(&mut self.dev, off, &slot)?;
                // 4. the old clusters, now unreferenced
                for c in old {
                    self.table.release(c);
                }
                self.commit_fat()?;
            }
            (None, Some(p)) => {
                let mut set = set;
                if let Some(short) = set.last_mut() {
                    dir::set_cluster(short, first);
                }
                let parent = self.extend_dir(parent, dir_cl);
                self.write_set(&parent, p.start, &set)?;
            }
            (None, None) => {}
        }
        self.fsinfo_dirty = true;
        crate::debug!("FAT: wrote {path} ({size} bytes, {n} clusters)");
        Ok(())
    }

    /// Creates the directory `path` and any missing parents. Existing directories are fine;
    /// a file in the way is an error.
    pub fn create_dir_all(&mut self, path: &str) -> Result<()> {
        let op = "creating FAT directory";
        self.create_dir_all_inner(path)
            .map_err(|e| at_path(op, path, e))?;
        self.write_fsinfo().map_err(|e| at_path(op, path, e))
    }

    fn create_dir_all_inner(&mut self, path: &str) -> Result<()> {
        let comps = components(path)?;
        let mut d = self.load_dir(self.root(), "/")?;
        for c in comps {
            if let Some(e) = d.find(c).cloned() {
                if !e.is_dir() {
                    return Err(Error::new(
                        "creating FAT directory",
                        path,
                        format!("'{c}' is a file"),
                    ));
                }
                d = self.load_dir(self.subdir(&e, path)?, path)?;
                continue;
            }
            dir::check_name(c, path)?;
            let now = dir::dos_now();
            let set = self.entry_set(&d, c, dir::ATTR_DIR, 0, 0, now);
            let place = self.place(&d, set.len(), path)?;
            let clusters = self.allocate(1 + place.grow, path)?;
            let own = clusters[0];
            let grow = &clusters[1..];
            // 1. the new directory's cluster (., .., zeros) and the parent's new clusters
            self.zero_clusters(&clusters)?;
            let dots = dir::dot_entries(own, self.dotdot_cluster(d.at), now);
            write_at(&mut self.dev, self.layout.cluster_offset(own), &dots)?;
            // 2. FAT
            self.table.link(own, None);
            if let Some(&last) = d.clusters.last() {
                if !grow.is_empty() {
                    link_chain(&mut self.table, grow);
                    self.table.link(last, Some(grow[0]));
                }
            }
            self.commit_fat()?;
            // 3. the entry
            let mut set = set;
            if let Some(short) = set.last_mut() {
                dir::set_cluster(short, own);
            }
            let d2 = self.extend_dir(d, grow);
            self.write_set(&d2, place.start, &set)?;
            self.fsinfo_dirty = true;
            crate::debug!("FAT: created directory {c} in {path}");
            d = self.load_dir(DirAt::Chain(own), path)?;
        }
        Ok(())
    }

    /// Removes the file at `path` (not a directory): its entry first, then its clusters.
    pub fn remove_file(&mut self, path: &str) -> Result<()> {
        let op = "removing FAT file";
        self.remove_file_inner(path)
            .map_err(|e| at_path(op, path, e))?;
        self.write_fsinfo().map_err(|e| at_path(op, path, e))
    }

    fn remove_file_inner(&mut self, path: &str) -> Result<()> {
        let (parent, existing, _) = self.resolve(path)?;
        let e = existing.ok_or_else(|| not_found(path, "file"))?;
        if e.is_dir() {
            return Err(Error::new("removing FAT file", path, "is a directory"));
        }
        let chain = if e.cluster != 0 {
            self.table.chain(e.cluster, None, path)?
        } else {
            Vec::new()
        };
        // The short entry first: once it is gone the file is gone.
        for slot in std::iter::once(e.short_slot).chain(e.first_slot..e.short_slot) {
            let off = self.slot_offset(&parent, slot);
            write_at(&mut self.dev, off, &[0xE5])?;
        }
        for c in chain {
            self.table.release(c);
        }
        self.commit_fat()?;
        self.fsinfo_dirty = true;
        crate::debug!("FAT: removed {path}");
        Ok(())
    }

    /// Writes the FSInfo sector (FAT32) and flushes the device.
    pub fn flush(&mut self) -> Result<()> {
        self.commit_fat()?;
        self.write_fsinfo()?;
        self.dev
            .flush()
            .map_err(|e| Error::io("flushing", "FAT partition", e))
    }

    /// Gives back the device. Call [`Fat::flush`] first.
    pub fn into_inner(self) -> D {
        self.dev
    }

    /// Entry slots for a new `name` in `d`: LFN slots (when needed) then the short entry.
    fn entry_set(
        &self,
        d: &Dir,
        name: &str,
        attr: u8,
        cluster: u32,
        size: u32,
        now: (u16, u16, u8),
    ) -> Vec<[u8; SLOT]> {
        // Taken: every short name in the directory (the label too), and long names that read
        // like a short name, so a lookup can never find two entries.
        let mut raws: HashSet<[u8; 11]> = d.parsed.entries.iter().map(|e| e.raw_short).collect();
        raws.extend(d.parsed.label_raw);
        let longs: HashSet<String> = d
            .parsed
            .entries
            .iter()
            .map(|e| e.name.to_uppercase())
            .collect();
        let taken = |r: &[u8; 11]| raws.contains(r) || longs.contains(&dir::short_text(r));
        if let Some((raw, nt)) = dir::exact_short(name) {
            if !taken(&raw) {
                return vec![dir::short_entry(&raw, nt, attr, cluster, size, now)];
            }
        }
        // 999999 tails exceed the 65536 entries a directory can hold, so one is always free.
        let raw = dir::generate_short(name, taken).unwrap_or(*b"_~999999   ");
        let mut set = dir::lfn_entries(name, &raw);
        set.push(dir::short_entry(&raw, 0, attr, cluster, size, now));
        set
    }

    /// Finds `need` consecutive free slots in `d`, or says how many clusters to add.
    fn place(&self, d: &Dir, need: usize, path: &str) -> Result<Placement> {
        let total = d.slots();
        let free = |i: usize| i >= d.parsed.end || d.data[i * SLOT] == 0xE5;
        let mut run = 0;
        for i in 0..total {
            if free(i) {
                run += 1;
                if run == need {
                    return Ok(Placement {
                        start: i + 1 - need,
                        grow: 0,
                    });
                }
            } else {
                run = 0;
            }
        }
        if d.at == DirAt::FixedRoot {
            return Err(Error::new(
                "adding a directory entry",
                path,
                format!(
                    "the root directory is full ({} entries, fixed size on {})",
                    self.layout.root_entries, self.layout.kind
                ),
            )
            .hint("remove files from the root directory of the partition, or use a subdirectory"));
        }
        let cs = self.layout.cluster_size as usize;
        let extra = (need - run) * SLOT;
        let grow = extra.div_ceil(cs);
        if d.data.len() + grow * cs > MAX_DIR_BYTES {
            return Err(Error::new(
                "adding a directory entry",
                path,
                "the directory is full (65536 entries)",
            ));
        }
        Ok(Placement {
            start: total - run,
            grow,
        })
    }

    /// `n` free clusters, or a clear "no space" error. Nothing is claimed yet.
    fn allocate(&mut self, n: usize, path: &str) -> Result<Vec<u32>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let free = self.table.free_count();
        self.table.find_free(n).ok_or_else(|| {
            Error::new(
                "allocating clusters for",
                path,
                format!(
                    "no space left on the FAT partition: {n} clusters of {} bytes needed, {free} free",
                    self.layout.cluster_size
                ),
            )
            .hint("remove files from the partition or write less data")
        })
    }

    fn write_data(&mut self, clusters: &[u32], data: &[u8]) -> Result<()> {
        let cs = self.layout.cluster_size as usize;
        let mut done = 0;
        let mut i = 0;
        while i < clusters.len() {
            let mut j = i + 1;
            while j < clusters.len() && clusters[j] == clusters[j - 1] + 1 {
                j += 1;
            }
            let n = ((j - i) * cs).min(data.len() - done);
            let off = self.layout.cluster_offset(clusters[i]);
            write_at(&mut self.dev, off, &data[done..done + n])?;
            done += n;
            // Zero the tail of the last cluster so no old data lingers in the file's slack.
            let slack = (j - i) * cs - n;
            if slack > 0 {
                write_at(&mut self.dev, off + n as u64, &vec![0u8; slack])?;
            }
            i = j;
        }
        Ok(())
    }

    fn zero_clusters(&mut self, clusters: &[u32]) -> Result<()> {
        if clusters.is_empty() {
            return Ok(());
        }
        let zero = vec![0u8; self.layout.cluster_size as usize];
        for &c in clusters {
            write_at(&mut self.dev, self.layout.cluster_offset(c), &zero)?;
        }
        Ok(())
    }

    /// `d` with its newly linked (zeroed) clusters appended.
    fn extend_dir(&self, mut d: Dir, grow: &[u32]) -> Dir {
        if !grow.is_empty() {
            d.clusters.extend_from_slice(grow);
            d.data.resize(
                d.data.len() + grow.len() * self.layout.cluster_size as usize,
                0,
            );
        }
        d
    }

    /// Writes an entry set at `start`: long name slots, the short entry last, then makes sure
    /// an end marker follows when the set went past the old end of the directory.
    fn write_set(&mut self, d: &Dir, start: usize, set: &[[u8; SLOT]]) -> Result<()> {
        for (k, e) in set.iter().enumerate() {
            let off = self.slot_offset(d, start + k);
            write_at(&mut self.dev, off, e)?;
        }
        let after = start + set.len();
        if after < d.slots() && after >= d.parsed.end && d.data[after * SLOT] != 0 {
            let off = self.slot_offset(d, after);
            write_at(&mut self.dev, off, &[0])?;
        }
        Ok(())
    }

    /// Writes the changed FAT sectors to every FAT copy (only the active one when FAT32
    /// mirroring is off).
    fn commit_fat(&mut self) -> Result<()> {
        let copies: Vec<u64> = match self.layout.active_fat {
            Some(a) => vec![u64::from(a)],
            None => (0..u64::from(self.layout.num_fats)).collect(),
        };
        let base = self.layout.fat_start;
        let size = self.layout.fat_bytes;
        let runs: Vec<(usize, Vec<u8>)> = self
            .table
            .take_dirty()
            .into_iter()
            .map(|(o, b)| (o, b.to_vec()))
            .collect();
        for (off, bytes) in &runs {
            for &k in &copies {
                if let Err(e) = write_at(&mut self.dev, base + k * size + *off as u64, bytes) {
                    self.table.mark_all_dirty();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Updates the free count and next-free hint of the FAT32 FSInfo sector.
    fn write_fsinfo(&mut self) -> Result<()> {
        if !self.fsinfo_dirty {
            return Ok(());
        }
        let Some(off) = self.layout.fsinfo else {
            self.fsinfo_dirty = false;
            return Ok(());
        };
        let mut s = vec![0u8; 512];
        read_at(&mut self.dev, off, &mut s)?;
        if bpb::fsinfo_valid(&s) {
            s[488..492].copy_from_slice(&self.table.free_count().to_le_bytes());
            s[492..496].copy_from_slice(&self.table.next_free_hint().to_le_bytes());
            write_at(&mut self.dev, off, &s)?;
        }
        self.fsinfo_dirty = false;
        Ok(())
    }
}

/// Links `clusters` into one chain ending in an end mark.
fn link_chain(t: &mut Table, clusters: &[u32]) {
    for (i, &c) in clusters.iter().enumerate() {
        t.link(c, clusters.get(i + 1).copied());
    }
}
