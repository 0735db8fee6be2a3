//! From the configuration to a [`Manifest`]: the sorted list of archive entries `backup.tgz` will hold.
//!
//! Rules (reference §8.2 unless said otherwise):
//! - Each `source` is canonicalised first (it must exist; symlinks in it are resolved, so a
//!   symlink given directly as the source is FOLLOWED — the operator named it on purpose, and
//!   this is what the reference does). Everything found below it is never followed.
//! - A directory source is walked recursively. Every non-directory entry (regular file,
//!   symlink) is kept when there is no `filter` or when the filter's unanchored search matches
//!   its full absolute path (canonical source path + relative path). Directories are always
//!   descended. Archive path: `<volume>/<target>/<relative path>`, or `<volume>/<relative path>`.
//! - Directories are archived as directory entries, so empty directories are kept. Change from
//!   the reference, which dropped them: without a filter the tree is reproduced exactly. With a
//!   filter, a directory is kept only when something below it was kept (otherwise a filter for
//!   three files would recreate the whole directory skeleton).
//! - A file source is stored as `<volume>/<target>` (target = the new name, may have
//!   directories) or `<volume>/<file name as written in the config>`; a filter is ignored, with
//!   a warning (the reference ignored it silently). A special file as the source is an error.
//! - Symlinks are stored as symlinks with their target unchanged (never followed: nothing
//!   outside the configured tree is read through them). Change from the reference (external tar
//!   dereferenced them, internal tar turned links to directories into empty directories).
//! - FIFOs, sockets and device nodes are skipped with a warning.
//! - A regular file that cannot be opened is an error naming it (checked while planning, so
//!   nothing is written when the backup would be incomplete).
//! - Loops (a bind mount of an ancestor inside the tree) are detected by the (dev, inode) of
//!   the directories on the current path and skipped with a warning.
//! - Hard links: the first path (in archive order) of an inode is stored as a file, later paths
//!   of the same inode in the same volume as hard-link entries to it. Across volumes they are
//!   stored as copies, because the supervisor turns each volume folder into a separate volume.
//! - Order: entries sorted by archive path bytes (parents before children), so the archive is
//!   deterministic for a given tree.
//! - Synthetic directories (the volume folder, the folders of a `target` path) get mode 0755,
//!   owner 0:0 and the time of the backup; a `target` folder of a directory source gets the
//!   mode, owner and mtime of the source directory.
//! - Two items that would store different things at the same archive path are an error.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::config::{BackupConfig, Filter, Item, Place};
use crate::error::{Error, Result};
use crate::formats::tar;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    /// Link target as stored on disk.
    Symlink(Vec<u8>),
    /// Archive path of the first entry of the same inode.
    HardLink(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// Archive path, relative, without a trailing `/` (e.g. `data/app/db.sqlite`).
    pub path: Vec<u8>,
    pub kind: Kind,
    /// The file on disk (for files: what is read); `None` for synthetic directories.
    pub source: Option<PathBuf>,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub volume: usize,
    inode: Option<(u64, u64)>,
    nlink: u64,
}

impl Entry {
    pub fn header(&self) -> tar::Header<'_> {
        let (kind, link): (tar::Kind, &[u8]) = match &self.kind {
            Kind::Dir => (tar::Kind::Dir, b""),
            Kind::File => (tar::Kind::File, b""),
            Kind::Symlink(l) => (tar::Kind::Symlink, l),
            Kind::HardLink(l) => (tar::Kind::HardLink, l),
        };
        tar::Header {
            path: &self.path,
            kind,
            size: if kind == tar::Kind::File {
                self.size
            } else {
                0
            },
            mode: self.mode,
            uid: u64::from(self.uid),
            gid: u64::from(self.gid),
            mtime: self.mtime,
            link,
        }
    }

    /// (dev, inode) of the planned file, for the check that the path still names it.
    pub fn inode(&self) -> Option<(u64, u64)> {
        self.inode
    }

    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// What goes into `backup.tgz`, in archive order, and what was skipped with a warning.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub entries: Vec<Entry>,
    pub volumes: Vec<String>,
    pub warnings: Vec<String>,
}

impl Manifest {
    /// Non-directory entries (files, symlinks, hard links).
    pub fn files(&self) -> u64 {
        self.entries.iter().filter(|e| e.kind != Kind::Dir).count() as u64
    }

    /// Bytes of file content that will be archived (each inode once).
    pub fn content_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.size)
            .sum()
    }

    /// Exact size of the uncompressed tar stream.
    pub fn tar_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| tar::entry_bytes(&e.header()))
            .sum::<u64>()
            + 2 * tar::BLOCK as u64
    }
}

struct Builder {
    map: BTreeMap<Vec<u8>, Entry>,
    warnings: Vec<String>,
    now: i64,
    /// (dev, inode) and path of the work dir, never backed up.
    skip: Option<((u64, u64), PathBuf)>,
}

fn bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

fn walk_err(place: &Place, path: &Path, e: std::io::Error) -> Error {
    let mut err = Error::io("walking the backup source", path.display(), e);
    err.cause = format!("{place}: {}", err.cause);
    err.hint("make the path readable or exclude it with a filter, then run takeover again")
}

impl Builder {
    /// True (with a warning) when `md` is the work dir.
    fn skipped(&mut self, md: &Metadata, path: &Path, place: &Place) -> bool {
        match &self.skip {
            Some((id, wd)) if *id == (md.dev(), md.ino()) => {
                let w = format!(
                    "{place}: skipping {} (it is the work dir {}: image, config.json and \
                     network files are not backed up)",
                    path.display(),
                    wd.display()
                );
                self.warnings.push(w);
                true
            }
            _ => false,
        }
    }

    fn add(&mut self, e: Entry, place: &Place) -> Result<()> {
        use std::collections::btree_map::Entry as Slot;
        match self.map.entry(e.path.clone()) {
            Slot::Vacant(v) => {
                v.insert(e);
            }
            Slot::Occupied(mut o) => {
                let old = o.get();
                if old.kind == Kind::Dir && e.kind == Kind::Dir {
                    // Merging directories: a real one replaces a synthetic one.
                    if old.source.is_none() && e.source.is_some() {
                        o.insert(e);
                    }
                } else {
                    let what = |x: &Entry| {
                        x.source
                            .as_ref()
                            .map(|s| s.display().to_string())
                            .unwrap_or_else(|| "a folder of the volume layout".into())
                    };
                    return Err(Error::new(
                        "planning the backup",
                        String::from_utf8_lossy(&e.path),
                        format!(
                            "{place}: {} would be stored at the same archive path as {}",
                            what(&e),
                            what(old)
                        ),
                    )
                    .hint("give one of the items a different `target`"));
                }
            }
        }
        Ok(())
    }

    /// Synthetic directories for `dir` and every ancestor of it (`dir` is an archive path).
    fn ensure_dirs(&mut self, dir: &Path, volume: usize, place: &Place) -> Result<()> {
        let mut acc = PathBuf::new();
        for c in dir.components() {
            acc.push(c);
            let e = Entry {
                path: bytes(&acc),
                kind: Kind::Dir,
                source: None,
                size: 0,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: self.now,
                volume,
                inode: None,
                nlink: 1,
            };
            self.add(e, place)?;
        }
        Ok(())
    }

    fn entry_from(
        &self,
        path: &Path,
        source: &Path,
        md: &Metadata,
        kind: Kind,
        volume: usize,
    ) -> Entry {
        Entry {
            path: bytes(path),
            size: if kind == Kind::File { md.len() } else { 0 },
            kind,
            source: Some(source.to_path_buf()),
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            volume,
            inode: Some((md.dev(), md.ino())),
            nlink: md.nlink(),
        }
    }

    fn item(&mut self, vol: &str, volume: usize, item: &Item, place: &Place) -> Result<()> {
        let src = fs::canonicalize(&item.source).map_err(|e| {
            Error::new(
                "planning the backup",
                item.source.display(),
                format!("{place}: source cannot be read: {e}"),
            )
            .hint("correct the source path, or remove the item")
        })?;
        let md = fs::symlink_metadata(&src).map_err(|e| walk_err(place, &src, e))?;
        let ft = md.file_type();
        let root = Path::new(vol);
        if ft.is_dir() {
            if self.skipped(&md, &src, place) {
                return Ok(());
            }
            let base = match &item.target {
                Some(t) => root.join(t),
                None => root.to_path_buf(),
            };
            let mut ancestors = vec![(md.dev(), md.ino())];
            let added = self.walk(
                &src,
                &base,
                volume,
                item.filter.as_ref(),
                place,
                &mut ancestors,
            )?;
            if item.filter.is_none() || added > 0 {
                if let Some(parent) = base.parent() {
                    self.ensure_dirs(parent, volume, place)?;
                }
                if item.target.is_some() {
                    let e = self.entry_from(&base, &src, &md, Kind::Dir, volume);
                    self.add(e, place)?;
                } else {
                    self.ensure_dirs(&base, volume, place)?;
                }
            }
            if added == 0 {
                let why = match &item.filter {
                    Some(f) => format!("no file matched the filter {:?}", f.text),
                    None => "the source directory is empty".into(),
                };
                self.warnings.push(format!("{place}: {why}"));
            }
            Ok(())
        } else if ft.is_file() || ft.is_symlink() {
            // canonicalize() resolved symlinks, so this is a regular file.
            if item.filter.is_some() {
                self.warnings.push(format!(
                    "{place}: the filter is ignored for a single-file source"
                ));
            }
            let name = match &item.target {
                Some(t) => root.join(t),
                None => {
                    let n = item
                        .source
                        .file_name()
                        .or_else(|| src.file_name())
                        .unwrap_or(src.as_os_str());
                    root.join(n)
                }
            };
            fs::File::open(&src).map_err(|e| walk_err(place, &src, e))?;
            if let Some(parent) = name.parent() {
                self.ensure_dirs(parent, volume, place)?;
            }
            let e = self.entry_from(&name, &src, &md, Kind::File, volume);
            self.add(e, place)
        } else {
            Err(Error::new(
                "planning the backup",
                src.display(),
                format!(
                    "{place}: the source is a {}, not a file or directory",
                    special_kind(&md)
                ),
            )
            .hint("back up regular files and directories only"))
        }
    }

    /// Walks `dir` (on disk) into `arch` (archive path); returns the entries added below it.
    fn walk(
        &mut self,
        dir: &Path,
        arch: &Path,
        volume: usize,
        filter: Option<&Filter>,
        place: &Place,
        ancestors: &mut Vec<(u64, u64)>,
    ) -> Result<u64> {
        let rd = fs::read_dir(dir).map_err(|e| walk_err(place, dir, e))?;
        let mut names = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| walk_err(place, dir, e))?;
            names.push(ent.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut added = 0;
        for name in names {
            let abs = dir.join(&name);
            let to = arch.join(&name);
            let md = fs::symlink_metadata(&abs).map_err(|e| walk_err(place, &abs, e))?;
            let ft = md.file_type();
            if ft.is_dir() {
                if self.skipped(&md, &abs, place) {
                    continue;
                }
                let id = (md.dev(), md.ino());
                if ancestors.contains(&id) {
                    self.warnings.push(format!(
                        "{place}: skipping {} (a loop: it is the same directory as one of its parents)",
                        abs.display()
                    ));
                    continue;
                }
                ancestors.push(id);
                let below = self.walk(&abs, &to, volume, filter, place, ancestors)?;
                ancestors.pop();
                added += below;
                if filter.is_none() || below > 0 {
                    let e = self.entry_from(&to, &abs, &md, Kind::Dir, volume);
                    self.add(e, place)?;
                    added += 1;
                }
            } else if ft.is_file() || ft.is_symlink() {
                if let Some(f) = filter {
                    if !f.matches(&abs) {
                        continue;
                    }
                }
                let kind = if ft.is_symlink() {
                    let t = fs::read_link(&abs).map_err(|e| walk_err(place, &abs, e))?;
                    Kind::Symlink(bytes(&t))
                } else {
                    fs::File::open(&abs).map_err(|e| walk_err(place, &abs, e))?;
                    Kind::File
                };
                let e = self.entry_from(&to, &abs, &md, kind, volume);
                self.add(e, place)?;
                added += 1;
            } else {
                self.warnings.push(format!(
                    "{place}: skipping {} ({}: only files, directories and symlinks are backed up)",
                    abs.display(),
                    special_kind(&md)
                ));
            }
        }
        Ok(added)
    }
}

fn special_kind(md: &Metadata) -> &'static str {
    let ft = md.file_type();
    if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

/// Builds the manifest (what goes into the archive, in order): walks every item of every volume. `now` dates the synthetic directories.
/// `work_dir`, when given and found inside a source, is skipped with a warning: it holds the
/// image, config.json (API key), network files (PSKs) and the archive being written.
pub fn manifest(cfg: &BackupConfig, now: i64, work_dir: Option<&Path>) -> Result<Manifest> {
    let skip = work_dir.and_then(|w| {
        let md = fs::metadata(w).ok()?;
        Some(((md.dev(), md.ino()), w.to_path_buf()))
    });
    let mut b = Builder {
        map: BTreeMap::new(),
        warnings: Vec::new(),
        now,
        skip,
    };
    for (v, vol) in cfg.volumes.iter().enumerate() {
        let place = Place::volume(v, Some(&vol.name));
        b.ensure_dirs(Path::new(&vol.name), v, &place)?;
        for (i, item) in vol.items.iter().enumerate() {
            let at = place.item(i, Some(&item.source.to_string_lossy()));
            b.item(&vol.name, v, item, &at)?;
        }
    }
    let mut entries: Vec<Entry> = b.map.into_values().collect();
    // Hard links: the first path of an inode (within a volume) keeps the data.
    let mut first: HashMap<(usize, u64, u64), Vec<u8>> = HashMap::new();
    for e in entries.iter_mut() {
        if e.kind != Kind::File || e.nlink < 2 {
            continue;
        }
        let Some((dev, ino)) = e.inode else { continue };
        match first.get(&(e.volume, dev, ino)) {
            Some(p) => {
                e.kind = Kind::HardLink(p.clone());
                e.size = 0;
            }
            None => {
                first.insert((e.volume, dev, ino), e.path.clone());
            }
        }
    }
    Ok(Manifest {
        entries,
        volumes: cfg.volumes.iter().map(|v| v.name.clone()).collect(),
        warnings: b.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::super::config::parse;
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        crate::testutil::temp_dir("walk", tag)
    }

    fn paths(p: &Manifest) -> Vec<String> {
        p.entries.iter().map(|e| e.display_path()).collect()
    }

    #[test]
    fn filter_target_and_single_file() {
        let d = tmp("ft");
        let s = d.join("src");
        fs::create_dir_all(s.join("sub/deeper")).unwrap();
        fs::create_dir_all(s.join("nothing-here")).unwrap();
        fs::write(s.join("balena-a"), b"1").unwrap();
        fs::write(s.join("other"), b"22").unwrap();
        fs::write(s.join("sub/balena-b"), b"333").unwrap();
        fs::write(s.join("sub/deeper/x"), b"4444").unwrap();
        fs::write(d.join("single.conf"), b"55555").unwrap();
        let yml = format!(
            "- volume: v1\n  items:\n  - source: {s}\n    target: t/u\n    filter: 'balena-'\n  - source: {f}\n    target: etc/renamed.conf\n    filter: zzz\n- volume: v2\n  items:\n  - source: {s}/sub\n  - source: {f}\n",
            s = s.display(),
            f = d.join("single.conf").display()
        );
        let cfg = parse(&yml, "t").unwrap();
        let p = manifest(&cfg, 1000, None).unwrap();
        assert_eq!(
            paths(&p),
            [
                "v1",
                "v1/etc",
                "v1/etc/renamed.conf",
                "v1/t",
                "v1/t/u",
                "v1/t/u/balena-a",
                "v1/t/u/sub",
                "v1/t/u/sub/balena-b",
                "v2",
                "v2/balena-b",
                "v2/deeper",
                "v2/deeper/x",
                "v2/single.conf",
            ]
        );
        assert_eq!(p.files(), 6);
        assert_eq!(p.content_bytes(), 1 + 3 + 5 + 3 + 4 + 5);
        assert!(p.warnings.iter().any(|w| w.contains("filter is ignored")));
        // The synthetic folder has the backup time; the target folder the source's mtime.
        assert_eq!(p.entries[1].mtime, 1000);
        assert_ne!(p.entries[4].mtime, 1000);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn filter_is_unanchored_on_the_absolute_path() {
        let d = tmp("abs");
        let s = d.join("logs");
        fs::create_dir_all(&s).unwrap();
        fs::write(s.join("a.txt"), b"").unwrap();
        // The directory name "logs" is matched although it is above the walked file.
        let yml = format!(
            "- volume: v\n  items:\n  - source: {}\n    filter: 'logs/a'\n",
            s.display()
        );
        let p = manifest(&parse(&yml, "t").unwrap(), 0, None).unwrap();
        assert_eq!(paths(&p), ["v", "v/a.txt"]);
        let yml = format!(
            "- volume: v\n  items:\n  - source: {}\n    filter: '^a'\n",
            s.display()
        );
        let p = manifest(&parse(&yml, "t").unwrap(), 0, None).unwrap();
        assert_eq!(paths(&p), ["v"]);
        assert!(
            p.warnings[0].contains("no file matched"),
            "{:?}",
            p.warnings
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn conflicts_specials_hardlinks_and_missing() {
        let d = tmp("conf");
        fs::write(d.join("f"), b"x").unwrap();
        fs::hard_link(d.join("f"), d.join("g")).unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(d.join("fifo"))
            .status()
            .unwrap();
        assert!(st.success());
        let yml = format!(
            "- volume: v\n  items:\n  - source: {d}\n  - source: {d}/f\n    target: g\n",
            d = d.display()
        );
        let e = manifest(&parse(&yml, "t").unwrap(), 0, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("volume 1 \"v\", item 2"), "{e}");
        assert!(e.contains("same archive path"), "{e}");

        fs::create_dir_all(d.join("work")).unwrap();
        fs::write(d.join("work/config.json"), b"{}").unwrap();
        let yml = format!("- volume: v\n  items:\n  - source: {}\n", d.display());
        let p = manifest(&parse(&yml, "t").unwrap(), 0, Some(&d.join("work"))).unwrap();
        assert_eq!(paths(&p), ["v", "v/f", "v/g"]);
        assert!(
            p.warnings.iter().any(|w| w.contains("it is the work dir")),
            "{:?}",
            p.warnings
        );
        assert_eq!(p.entries[2].kind, Kind::HardLink(b"v/f".to_vec()));
        assert_eq!(p.content_bytes(), 1);
        assert!(
            p.warnings.iter().any(|w| w.contains("FIFO")),
            "{:?}",
            p.warnings
        );

        // Across volumes the same inode is stored as a copy in each.
        let yml = format!(
            "- volume: v\n  items:\n  - source: {d}/f\n- volume: w\n  items:\n  - source: {d}/g\n",
            d = d.display()
        );
        let p = manifest(&parse(&yml, "t").unwrap(), 0, None).unwrap();
        assert_eq!(paths(&p), ["v", "v/f", "w", "w/g"]);
        assert_eq!(p.entries[3].kind, Kind::File);
        assert_eq!(p.content_bytes(), 2);

        let yml = format!("- volume: v\n  items:\n  - source: {}/fifo\n", d.display());
        let e = manifest(&parse(&yml, "t").unwrap(), 0, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a FIFO"), "{e}");

        let yml = format!("- volume: v\n  items:\n  - source: {}/nope\n", d.display());
        let e = manifest(&parse(&yml, "t").unwrap(), 0, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("item 1") && e.contains("/nope"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }
}
