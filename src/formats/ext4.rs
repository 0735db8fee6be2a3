//! A minimal read-only ext2/3/4 reader: enough to find a file by path and stream it.
//!
//! Supports: 32- and 64-bit group descriptors, inodes of any size, extent trees (any depth,
//! uninitialised extents read as zeros) and the legacy direct/indirect block map, holes, and
//! directories (hashed-tree directories are read linearly: their index blocks look like empty
//! directory blocks). Not supported (refused with a clear error): inline data, encrypted files.
//! Everything read is bounds-checked; errors are strings naming the inode or block.
#![forbid(unsafe_code)]

use super::le::{le16, le32};

use std::io::{self, Read, Seek, SeekFrom};

const MAX_DEPTH: u16 = 5;
const MAX_DIR_BYTES: u64 = 64 << 20;
const MAX_EXTENTS: usize = 1 << 20;

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// `a * b + c`, or an error naming `what` when values from the headers overflow 64 bits.
fn mul_add(a: u64, b: u64, c: u64, what: impl FnOnce() -> String) -> io::Result<u64> {
    a.checked_mul(b)
        .and_then(|x| x.checked_add(c))
        .ok_or_else(|| {
            bad(format!(
                "ext4 {}: offset overflows (corrupt header)",
                what()
            ))
        })
}

/// One contiguous run of a file: `len` blocks from logical block `logical` at physical block
/// `physical` (0 = reads as zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    logical: u64,
    physical: u64,
    len: u64,
}

#[derive(Debug, Clone)]
pub struct Inode {
    pub number: u32,
    pub mode: u16,
    pub size: u64,
    flags: u32,
    block: [u8; 60],
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        self.mode & 0xF000 == 0x4000
    }
    pub fn is_file(&self) -> bool {
        self.mode & 0xF000 == 0x8000
    }
}

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub inode: u32,
}

pub struct Ext4<R> {
    dev: R,
    /// Byte offset of the filesystem inside `dev`.
    base: u64,
    /// Length of the filesystem (bytes), for bounds checks.
    len: u64,
    block_size: u64,
    inodes_per_group: u32,
    inode_size: u64,
    desc_size: u64,
    groups: u64,
    gdt_block: u64,
    inodes_count: u32,
    blocks_count: u64,
}

impl<R: Read + Seek> Ext4<R> {
    /// Opens the filesystem at `base` (bytes) in `dev`, `len` bytes long.
    pub fn open(mut dev: R, base: u64, len: u64) -> io::Result<Ext4<R>> {
        let mut sb = [0u8; 1024];
        dev.seek(SeekFrom::Start(mul_add(1, base, 1024, || {
            "superblock".into()
        })?))?;
        dev.read_exact(&mut sb)?;
        if le16(&sb, 56) != 0xEF53 {
            return Err(bad(
                "no ext2/3/4 superblock (magic 0xEF53) at byte 1024".into()
            ));
        }
        let log = le32(&sb, 24);
        if log > 6 {
            return Err(bad(format!("ext4 block size 1024<<{log} is not supported")));
        }
        let block_size = 1024u64 << log;
        let incompat = le32(&sb, 96);
        let rev = le32(&sb, 76);
        let inode_size = if rev == 0 {
            128
        } else {
            u64::from(le16(&sb, 88))
        };
        let desc_size = if incompat & 0x80 != 0 {
            u64::from(le16(&sb, 254)).max(32)
        } else {
            32
        };
        let blocks_count = u64::from(le32(&sb, 4))
            | if incompat & 0x80 != 0 {
                u64::from(le32(&sb, 0x150)) << 32
            } else {
                0
            };
        let blocks_per_group = u64::from(le32(&sb, 32));
        let inodes_per_group = le32(&sb, 40);
        let first_data_block = u64::from(le32(&sb, 20));
        if blocks_per_group == 0
            || inodes_per_group == 0
            || !(128..=block_size).contains(&inode_size)
            || desc_size > 1024
        {
            return Err(bad("the ext4 superblock is inconsistent".into()));
        }
        if incompat & 0x10000 != 0 {
            return Err(bad("encrypted ext4 filesystems are not supported".into()));
        }
        let groups = (blocks_count - first_data_block.min(blocks_count)).div_ceil(blocks_per_group);
        Ok(Ext4 {
            dev,
            base,
            len,
            block_size,
            inodes_per_group,
            inode_size,
            desc_size,
            groups,
            gdt_block: first_data_block + 1,
            inodes_count: le32(&sb, 0),
            blocks_count,
        })
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        if off
            .checked_add(buf.len() as u64)
            .map_or(true, |e| e > self.len)
        {
            return Err(bad(format!(
                "ext4 structure at byte {off} lies outside the filesystem ({} bytes)",
                self.len
            )));
        }
        self.dev
            .seek(SeekFrom::Start(mul_add(1, self.base, off, || {
                format!("structure at byte {off}")
            })?))?;
        self.dev.read_exact(buf)
    }

    /// Byte offset of a block, checked against the filesystem size.
    fn block_offset(&self, block: u64) -> io::Result<u64> {
        if block >= self.blocks_count {
            return Err(bad(format!("ext4 block {block} is beyond the filesystem")));
        }
        mul_add(block, self.block_size, 0, || format!("block {block}"))
    }

    fn read_block(&mut self, block: u64, buf: &mut [u8]) -> io::Result<()> {
        let at = self.block_offset(block)?;
        self.read_at(at, buf)
    }

    pub fn inode(&mut self, number: u32) -> io::Result<Inode> {
        if number == 0 || number > self.inodes_count {
            return Err(bad(format!("ext4 inode {number} does not exist")));
        }
        let group = u64::from((number - 1) / self.inodes_per_group);
        let index = u64::from((number - 1) % self.inodes_per_group);
        if group >= self.groups {
            return Err(bad(format!(
                "ext4 inode {number} is in a group that does not exist"
            )));
        }
        let mut d = vec![0u8; self.desc_size as usize];
        let gdt = self.block_offset(self.gdt_block)?;
        let at = mul_add(group, self.desc_size, gdt, || {
            format!("group descriptor {group}")
        })?;
        self.read_at(at, &mut d)?;
        let mut table = u64::from(le32(&d, 8));
        if self.desc_size >= 64 {
            table |= u64::from(le32(&d, 0x28)) << 32;
        }
        let mut raw = vec![0u8; 160.min(self.inode_size as usize)];
        let table_at = self.block_offset(table)?;
        let at = mul_add(index, self.inode_size, table_at, || {
            format!("inode {number}")
        })?;
        self.read_at(at, &mut raw)?;
        let mut block = [0u8; 60];
        block.copy_from_slice(&raw[0x28..0x28 + 60]);
        Ok(Inode {
            number,
            mode: le16(&raw, 0),
            size: u64::from(le32(&raw, 4)) | (u64::from(le32(&raw, 0x6C)) << 32),
            flags: le32(&raw, 0x20),
            block,
        })
    }

    /// The runs of an inode's data, sorted by logical block.
    fn runs(&mut self, ino: &Inode) -> io::Result<Vec<Run>> {
        if ino.flags & 0x1000_0000 != 0 {
            return Err(bad(format!(
                "ext4 inode {} stores inline data (not supported)",
                ino.number
            )));
        }
        if ino.flags & 0x800 != 0 {
            return Err(bad(format!("ext4 inode {} is encrypted", ino.number)));
        }
        let mut runs = Vec::new();
        if ino.flags & 0x8_0000 != 0 {
            let node = ino.block.to_vec();
            self.extent_node(ino.number, &node, MAX_DEPTH, &mut runs)?;
        } else {
            self.block_map(ino, &mut runs)?;
        }
        runs.sort_by_key(|r| r.logical);
        for r in &runs {
            let ok = r.physical == 0
                || r.physical
                    .checked_add(r.len)
                    .is_some_and(|e| e <= self.blocks_count);
            if !ok || r.logical.checked_add(r.len).is_none() {
                return Err(bad(format!(
                    "ext4 inode {}: extent at block {} lies outside the filesystem",
                    ino.number, r.physical
                )));
            }
        }
        Ok(runs)
    }

    fn extent_node(
        &mut self,
        inode: u32,
        node: &[u8],
        budget: u16,
        runs: &mut Vec<Run>,
    ) -> io::Result<()> {
        if node.len() < 12 || le16(node, 0) != 0xF30A {
            return Err(bad(format!("ext4 inode {inode}: bad extent header")));
        }
        let entries = usize::from(le16(node, 2));
        let depth = le16(node, 6);
        if depth >= budget || 12 + entries * 12 > node.len() {
            return Err(bad(format!("ext4 inode {inode}: corrupt extent tree")));
        }
        for i in 0..entries {
            let e = &node[12 + 12 * i..24 + 12 * i];
            if depth == 0 {
                let mut len = u64::from(le16(e, 4));
                let uninit = len > 32768;
                if uninit {
                    len -= 32768;
                }
                let start = (u64::from(le16(e, 6)) << 32) | u64::from(le32(e, 8));
                if runs.len() >= MAX_EXTENTS {
                    return Err(bad(format!("ext4 inode {inode}: too many extents")));
                }
                runs.push(Run {
                    logical: u64::from(le32(e, 0)),
                    physical: if uninit { 0 } else { start },
                    len,
                });
            } else {
                let leaf = (u64::from(le16(e, 8)) << 32) | u64::from(le32(e, 4));
                let mut b = vec![0u8; self.block_size as usize];
                self.read_block(leaf, &mut b)?;
                self.extent_node(inode, &b, depth, runs)?;
            }
        }
        Ok(())
    }

    fn block_map(&mut self, ino: &Inode, runs: &mut Vec<Run>) -> io::Result<()> {
        let per = self.block_size / 4;
        let nblocks = ino.size.div_ceil(self.block_size);
        let push = |runs: &mut Vec<Run>, logical: u64, physical: u64| {
            if physical == 0 || logical >= nblocks {
                return;
            }
            match runs.last_mut() {
                Some(r)
                    if r.logical.checked_add(r.len) == Some(logical)
                        && r.physical.checked_add(r.len) == Some(physical) =>
                {
                    r.len += 1
                }
                _ => runs.push(Run {
                    logical,
                    physical,
                    len: 1,
                }),
            }
        };
        for i in 0..12 {
            push(runs, i, u64::from(le32(&ino.block, 4 * i as usize)));
        }
        let mut logical = 12u64;
        for (level, slot) in [(1u32, 12usize), (2, 13), (3, 14)] {
            let span = per.pow(level);
            let root = u64::from(le32(&ino.block, 4 * slot));
            if logical >= nblocks {
                break;
            }
            if root != 0 {
                self.indirect(
                    root,
                    level,
                    logical,
                    nblocks,
                    &mut |r: &mut Vec<Run>, l, p| push(r, l, p),
                    runs,
                )?;
            }
            logical = logical.saturating_add(span);
        }
        Ok(())
    }

    fn indirect(
        &mut self,
        block: u64,
        level: u32,
        first: u64,
        nblocks: u64,
        push: &mut dyn FnMut(&mut Vec<Run>, u64, u64),
        runs: &mut Vec<Run>,
    ) -> io::Result<()> {
        let per = self.block_size / 4;
        let mut b = vec![0u8; self.block_size as usize];
        self.read_block(block, &mut b)?;
        let span = per.pow(level - 1);
        for i in 0..per {
            let p = u64::from(le32(&b, 4 * i as usize));
            if p == 0 {
                continue;
            }
            let l = first + i * span;
            // Pointers past the file's size are garbage: never follow them.
            if l >= nblocks {
                break;
            }
            if level == 1 {
                push(runs, l, p);
            } else {
                self.indirect(p, level - 1, l, nblocks, push, runs)?;
            }
        }
        Ok(())
    }

    /// A reader of the inode's data (holes and uninitialised extents read as zeros).
    pub fn open_file(&mut self, ino: &Inode) -> io::Result<FileReader<'_, R>> {
        let runs = self.runs(ino)?;
        Ok(FileReader {
            fs: self,
            runs,
            size: ino.size,
            pos: 0,
            next_run: 0,
        })
    }

    pub fn read_dir(&mut self, ino: &Inode) -> io::Result<Vec<DirEntry>> {
        if !ino.is_dir() {
            return Err(bad(format!("ext4 inode {} is not a directory", ino.number)));
        }
        if ino.size > MAX_DIR_BYTES {
            return Err(bad(format!(
                "ext4 directory inode {} is too large",
                ino.number
            )));
        }
        let mut data = Vec::new();
        self.open_file(ino)?.read_to_end(&mut data)?;
        let bs = self.block_size as usize;
        let mut out = Vec::new();
        for block in data.chunks(bs) {
            let mut p = 0;
            while p + 8 <= block.len() {
                let inode = le32(block, p);
                let rec_len = usize::from(le16(block, p + 4));
                let name_len = usize::from(block[p + 6]);
                if rec_len < 8 || p + rec_len > block.len() || 8 + name_len > rec_len {
                    return Err(bad(format!(
                        "ext4 directory inode {}: corrupt entry at byte {}",
                        ino.number, p
                    )));
                }
                if inode != 0 && name_len > 0 {
                    out.push(DirEntry {
                        name: String::from_utf8_lossy(&block[p + 8..p + 8 + name_len]).into_owned(),
                        inode,
                    });
                }
                p += rec_len;
            }
        }
        Ok(out)
    }

    /// The inode at an absolute path (`/opt/file`).
    pub fn lookup(&mut self, path: &str) -> io::Result<Inode> {
        let mut ino = self.inode(2)?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let entries = self.read_dir(&ino)?;
            let e = entries.iter().find(|e| e.name == part).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{path} not found"))
            })?;
            ino = self.inode(e.inode)?;
        }
        Ok(ino)
    }
}

/// Streams one file's bytes.
pub struct FileReader<'a, R> {
    fs: &'a mut Ext4<R>,
    runs: Vec<Run>,
    size: u64,
    pos: u64,
    next_run: usize,
}

impl<R: Read + Seek> Read for FileReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let bs = self.fs.block_size;
        let block = self.pos / bs;
        while self.next_run < self.runs.len() {
            let r = self.runs[self.next_run];
            if r.logical + r.len <= block {
                self.next_run += 1;
            } else {
                break;
            }
        }
        let want = (buf.len() as u64).min(self.size - self.pos);
        let n = match self.runs.get(self.next_run) {
            Some(r) if r.logical <= block => {
                // Inside a run: read up to its end (`runs` checked logical + len).
                let run_end = mul_add(r.logical + r.len, bs, 0, || "file run".into())?;
                let n = want.min(run_end - self.pos) as usize;
                if r.physical == 0 {
                    buf[..n].fill(0);
                } else {
                    // `runs` checked physical + len <= blocks_count, and block - logical < len.
                    let off = mul_add(r.physical + block - r.logical, bs, self.pos % bs, || {
                        "file data".into()
                    })?;
                    self.fs.read_at(off, &mut buf[..n])?;
                }
                n
            }
            next => {
                // A hole up to the next run (or the end).
                let hole_end = next.map_or(u64::MAX, |r| r.logical.saturating_mul(bs));
                let n = want.min(hole_end - self.pos) as usize;
                buf[..n].fill(0);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::Ext4;
    use std::io::Cursor;

    fn put16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// A 64-bit ext4 superblock claiming 2^64 blocks, whose group descriptor puts the inode
    /// table at block 2^62: the byte offset overflows (the `fslabel` fuzz crash of issue 18).
    fn huge_table_image() -> Vec<u8> {
        let mut img = vec![0u8; 4096];
        let sb = &mut img[1024..2048];
        put32(sb, 0, 16); // inodes
        put32(sb, 4, u32::MAX); // blocks (low)
        put32(sb, 0x150, u32::MAX); // blocks (high)
        put32(sb, 20, 1); // first data block
        put32(sb, 24, 0); // 1 KiB blocks
        put32(sb, 32, 8192); // blocks per group
        put32(sb, 40, 16); // inodes per group
        put16(sb, 56, 0xEF53);
        put32(sb, 76, 1); // dynamic revision
        put16(sb, 88, 128); // inode size
        put32(sb, 96, 0x80); // 64bit
        put16(sb, 254, 64); // descriptor size
        let gd = &mut img[2048..2112];
        put32(gd, 0x28, 1 << 30); // inode table (high 32 bits): block 2^62
        img
    }

    #[test]
    fn overflowing_offsets_are_errors_not_panics() {
        let img = huge_table_image();
        let len = img.len() as u64;
        let mut fs = Ext4::open(Cursor::new(img), 0, len).expect("superblock parses");
        let e = fs.lookup("/etc/os-release").unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
        // A base offset near u64::MAX cannot wrap either.
        assert!(Ext4::open(Cursor::new(vec![0u8; 16]), u64::MAX - 10, 16).is_err());
    }
}
