//! Partition tables of a disk image: MBR (with the extended/logical chain) and GPT (header and
//! entry-array CRCs, UTF-16LE names).
//!
//! The parser is a small state machine, [`TableScan`], that asks for byte regions in increasing
//! order where it can: a streaming reader (the decoded image passing by once) and a seekable
//! reader ([`read_table`]) drive the same code. Errors are plain strings naming the byte offset;
//! callers add the file name.
#![forbid(unsafe_code)]

use super::le::{le32, le64};

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};

use super::crc32::crc32;

/// Sector size for MBR images (and the GPT probe's first guess).
pub const SECTOR: u64 = 512;
/// Most logical partitions followed in an extended chain.
const MAX_LOGICAL: usize = 64;
/// Largest GPT entry array accepted.
const MAX_GPT_ENTRIES_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Mbr,
    Gpt,
}

impl Table {
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Mbr => "mbr",
            Table::Gpt => "gpt",
        }
    }
}

/// The partition type: an MBR type byte or a GPT type GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mbr(u8),
    Gpt([u8; 16]),
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Mbr(t) => write!(f, "0x{t:02x}"),
            Kind::Gpt(g) => f.write_str(&guid_string(g)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based like Linux names them: MBR primaries 1–4, logicals from 5; GPT entry number.
    pub index: u32,
    /// Bytes from the start of the disk.
    pub start: u64,
    /// Bytes.
    pub size: u64,
    pub kind: Kind,
    /// GPT partition name.
    pub name: Option<String>,
    pub bootable: bool,
}

impl Partition {
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTable {
    pub table: Table,
    /// Ordered by index.
    pub partitions: Vec<Partition>,
    /// The last byte any table structure or partition covers (for the disk-size check).
    pub end: u64,
}

/// Formats a GPT GUID the usual way (first three fields little-endian).
pub fn guid_string(g: &[u8; 16]) -> String {
    format!(
        "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]
    )
}

/// True for an MBR extended-partition container (its own bytes hold EBRs, not a filesystem).
pub fn is_extended(t: u8) -> bool {
    matches!(t, 0x05 | 0x0f | 0x85)
}

struct MbrEntry {
    boot: bool,
    kind: u8,
    start_lba: u64,
    sectors: u64,
}

/// The four entries of an MBR or EBR sector; checks the 55 AA signature and status bytes.
fn mbr_entries(sector: &[u8], at: u64, what: &str) -> Result<[Option<MbrEntry>; 4], String> {
    if sector.len() < 512 || sector[510] != 0x55 || sector[511] != 0xaa {
        return Err(format!(
            "no {what} at byte {at}: the boot signature 55 AA is missing (not a disk image?)"
        ));
    }
    let mut out: [Option<MbrEntry>; 4] = [None, None, None, None];
    for (i, slot) in out.iter_mut().enumerate() {
        let e = &sector[446 + 16 * i..446 + 16 * (i + 1)];
        let status = e[0];
        let kind = e[4];
        if kind == 0 {
            continue;
        }
        if status != 0 && status != 0x80 {
            return Err(format!(
                "invalid {what} entry {} at byte {}: status byte 0x{status:02x}",
                i + 1,
                at + 446 + 16 * i as u64
            ));
        }
        *slot = Some(MbrEntry {
            boot: status == 0x80,
            kind,
            start_lba: u64::from(le32(e, 8)),
            sectors: u64::from(le32(e, 12)),
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Sectors 0.. (MBR, and a GPT header at 512 or 4096).
    Start,
    /// An EBR: (extended partition start, this EBR's offset).
    Ebr(u64, u64),
    /// The GPT entry array: (sector size, count, entry size, expected CRC).
    GptEntries(u64, u32, u32, u32),
}

/// Partition-table parser that asks for regions of the disk image. Drive it with
/// `while let Some((offset, len)) = scan.wants() { scan.feed(&bytes_at(offset, len))? }`
/// then take [`TableScan::finish`].
pub struct TableScan {
    step: Option<Step>,
    table: Table,
    parts: Vec<Partition>,
    seen_ebr: HashSet<u64>,
    end: u64,
}

/// Bytes of the first region: enough for the MBR and a GPT header with 4096-byte sectors.
pub const FIRST_REGION: usize = 8192;

impl Default for TableScan {
    fn default() -> Self {
        TableScan::new()
    }
}

impl TableScan {
    pub fn new() -> TableScan {
        TableScan {
            step: Some(Step::Start),
            table: Table::Mbr,
            parts: Vec::new(),
            seen_ebr: HashSet::new(),
            end: 0,
        }
    }

    /// The next region needed: (byte offset, length). `None` when the table is complete.
    pub fn wants(&self) -> Option<(u64, usize)> {
        match self.step? {
            Step::Start => Some((0, FIRST_REGION)),
            Step::Ebr(_, at) => Some((at, 512)),
            Step::GptEntries(ss, count, size, _) => {
                // `feed` of the header computed these; the array begins at `end` (set there).
                let _ = ss;
                Some((self.end, count as usize * size as usize))
            }
        }
    }

    /// Gives the bytes asked for by [`TableScan::wants`] (may be shorter at the end of the image).
    pub fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        let Some(step) = self.step.take() else {
            return Ok(());
        };
        match step {
            Step::Start => self.feed_start(data),
            Step::Ebr(ext, at) => self.feed_ebr(data, ext, at),
            Step::GptEntries(ss, count, size, crc) => {
                self.feed_gpt_entries(data, ss, count, size, crc)
            }
        }
    }

    /// Partitions found so far (primaries are known before the logical chain is read).
    pub fn partitions(&self) -> &[Partition] {
        &self.parts
    }

    pub fn finish(mut self) -> Result<PartitionTable, String> {
        if let Some(s) = self.step {
            return Err(format!(
                "the partition table is incomplete ({s:?} not read)"
            ));
        }
        self.parts.sort_by_key(|p| p.index);
        let end = self
            .parts
            .iter()
            .map(|p| p.end())
            .max()
            .unwrap_or(0)
            .max(self.end);
        Ok(PartitionTable {
            table: self.table,
            partitions: self.parts,
            end,
        })
    }

    fn feed_start(&mut self, data: &[u8]) -> Result<(), String> {
        let entries = mbr_entries(data, 0, "partition table (MBR)")?;
        if entries.iter().flatten().any(|e| e.kind == 0xee) {
            for ss in [512u64, 4096] {
                let at = ss as usize;
                if data.len() >= at + 512 && &data[at..at + 8] == b"EFI PART" {
                    return self.feed_gpt_header(&data[at..at + 512.min(ss as usize)], ss);
                }
            }
            return Err(
                "the MBR is a GPT protective MBR but no GPT header (EFI PART) is at byte 512 or 4096"
                    .into(),
            );
        }
        self.end = 512;
        let mut ext = None;
        for (i, e) in entries.iter().enumerate() {
            let Some(e) = e else { continue };
            let start = e.start_lba * SECTOR;
            let size = e.sectors * SECTOR;
            if e.start_lba == 0 || e.sectors == 0 {
                return Err(format!(
                    "MBR entry {} has start sector {} and {} sectors (invalid)",
                    i + 1,
                    e.start_lba,
                    e.sectors
                ));
            }
            if is_extended(e.kind) {
                if ext.is_some() {
                    return Err("the MBR has more than one extended partition".into());
                }
                ext = Some(start);
                self.end = self.end.max(start + size);
            }
            self.parts.push(Partition {
                index: i as u32 + 1,
                start,
                size,
                kind: Kind::Mbr(e.kind),
                name: None,
                bootable: e.boot,
            });
        }
        if let Some(s) = ext {
            self.step = Some(Step::Ebr(s, s));
        }
        Ok(())
    }

    fn feed_ebr(&mut self, data: &[u8], ext: u64, at: u64) -> Result<(), String> {
        if !self.seen_ebr.insert(at) || self.seen_ebr.len() > MAX_LOGICAL {
            return Err(format!(
                "the extended partition's EBR chain loops or is too long (EBR at byte {at})"
            ));
        }
        let entries = mbr_entries(data, at, "extended boot record (EBR)")?;
        self.end = self.end.max(at + 512);
        if let Some(e) = &entries[0] {
            if e.sectors > 0 {
                let index = 4 + self.seen_ebr.len() as u32;
                self.parts.push(Partition {
                    index,
                    start: at + e.start_lba * SECTOR,
                    size: e.sectors * SECTOR,
                    kind: Kind::Mbr(e.kind),
                    name: None,
                    bootable: e.boot,
                });
            }
        }
        if let Some(e) = &entries[1] {
            if is_extended(e.kind) && e.sectors > 0 {
                let next = ext + e.start_lba * SECTOR;
                if e.start_lba == 0 {
                    return Err(format!("the EBR at byte {at} links to itself"));
                }
                self.step = Some(Step::Ebr(ext, next));
            }
        }
        Ok(())
    }

    fn feed_gpt_header(&mut self, h: &[u8], ss: u64) -> Result<(), String> {
        let hsize = le32(h, 12) as usize;
        if !(92..=h.len()).contains(&hsize) {
            return Err(format!(
                "the GPT header at byte {ss} has an invalid size {hsize}"
            ));
        }
        let stored = le32(h, 16);
        let mut copy = h[..hsize].to_vec();
        copy[16..20].fill(0);
        let computed = crc32(0, &copy);
        if stored != computed {
            return Err(format!(
                "the GPT header at byte {ss} is corrupt: its CRC-32 is {stored:08x}, the header gives {computed:08x}"
            ));
        }
        let entries_lba = le64(h, 72);
        let count = le32(h, 80);
        let size = le32(h, 84);
        let crc = le32(h, 88);
        if size < 128 || size % 8 != 0 || count as usize * size as usize > MAX_GPT_ENTRIES_BYTES {
            return Err(format!(
                "the GPT header at byte {ss} describes {count} entries of {size} bytes (not supported)"
            ));
        }
        self.table = Table::Gpt;
        self.end = entries_lba
            .checked_mul(ss)
            .ok_or_else(|| format!("the GPT header at byte {ss} has an invalid entry LBA"))?;
        self.step = Some(Step::GptEntries(ss, count, size, crc));
        Ok(())
    }

    fn feed_gpt_entries(
        &mut self,
        data: &[u8],
        ss: u64,
        count: u32,
        size: u32,
        crc: u32,
    ) -> Result<(), String> {
        let at = self.end;
        let len = count as usize * size as usize;
        if data.len() < len {
            return Err(format!(
                "the GPT entry array at byte {at} is cut short (image truncated?)"
            ));
        }
        let computed = crc32(0, &data[..len]);
        if computed != crc {
            return Err(format!(
                "the GPT entry array at byte {at} is corrupt: the header says CRC-32 {crc:08x}, the entries give {computed:08x}"
            ));
        }
        self.end = at.checked_add(len as u64).ok_or_else(|| {
            format!("the GPT entry array at byte {at} ends beyond any disk (corrupt header)")
        })?;
        for (i, e) in data[..len].chunks_exact(size as usize).enumerate() {
            let mut guid = [0u8; 16];
            guid.copy_from_slice(&e[..16]);
            if guid == [0; 16] {
                continue;
            }
            let first = le64(e, 32);
            let last = le64(e, 40);
            if last < first || first == 0 {
                return Err(format!(
                    "GPT entry {} at byte {} has first LBA {first} and last LBA {last} (invalid)",
                    i + 1,
                    at + (i * size as usize) as u64
                ));
            }
            let (Some(start), Some(size)) =
                (first.checked_mul(ss), (last - first + 1).checked_mul(ss))
            else {
                return Err(format!(
                    "GPT entry {} at byte {} has first LBA {first} (out of range)",
                    i + 1,
                    at + (i * size as usize) as u64
                ));
            };
            // The end of the partition must be a byte offset too (consumers add start + size).
            if start.checked_add(size).is_none() {
                return Err(format!(
                    "GPT entry {} at byte {} has first LBA {first} (out of range)",
                    i + 1,
                    at + (i * size as usize) as u64
                ));
            };
            let attrs = le64(e, 48);
            let units: Vec<u16> = e[56..128]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            let name = String::from_utf16_lossy(&units);
            self.parts.push(Partition {
                index: i as u32 + 1,
                start,
                size,
                kind: Kind::Gpt(guid),
                name: Some(name),
                bootable: attrs & 4 != 0,
            });
        }
        Ok(())
    }
}

/// Reads the partition table of a seekable disk image.
pub fn read_table<R: Read + Seek>(r: &mut R) -> Result<PartitionTable, String> {
    let mut scan = TableScan::new();
    while let Some((off, len)) = scan.wants() {
        let mut buf = vec![0u8; len];
        r.seek(SeekFrom::Start(off))
            .map_err(|e| format!("seeking to byte {off}: {e}"))?;
        let mut got = 0;
        while got < len {
            match r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading byte {}: {e}", off + got as u64)),
            }
        }
        buf.truncate(got);
        scan.feed(&buf)?;
    }
    scan.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn put_entry(s: &mut [u8], i: usize, boot: bool, kind: u8, start: u32, sectors: u32) {
        let e = &mut s[446 + 16 * i..446 + 16 * (i + 1)];
        e[0] = if boot { 0x80 } else { 0 };
        e[4] = kind;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&sectors.to_le_bytes());
    }

    fn sig(s: &mut [u8]) {
        s[510] = 0x55;
        s[511] = 0xaa;
    }

    /// MBR: p1 boot FAT16, p2 Linux, p3 Linux, p4 extended with two logicals.
    fn mbr_disk() -> Vec<u8> {
        let mut d = vec![0u8; 64 << 20];
        let mut m = [0u8; 512];
        put_entry(&mut m, 0, true, 0x0e, 8192, 8192);
        put_entry(&mut m, 1, false, 0x83, 16384, 8192);
        put_entry(&mut m, 2, false, 0x83, 24576, 8192);
        put_entry(&mut m, 3, false, 0x0f, 32768, 65536);
        sig(&mut m);
        d[..512].copy_from_slice(&m);
        // EBR 1 at sector 32768: logical at +8192, next EBR at ext+24576
        let mut e = [0u8; 512];
        put_entry(&mut e, 0, false, 0x83, 8192, 8192);
        put_entry(&mut e, 1, false, 0x05, 24576, 16384);
        sig(&mut e);
        d[32768 * 512..32768 * 512 + 512].copy_from_slice(&e);
        let mut e2 = [0u8; 512];
        put_entry(&mut e2, 0, false, 0x83, 8192, 8192);
        sig(&mut e2);
        let at = (32768 + 24576) * 512;
        d[at..at + 512].copy_from_slice(&e2);
        d
    }

    #[test]
    fn mbr_with_logical_chain() {
        let d = mbr_disk();
        let t = read_table(&mut Cursor::new(&d)).unwrap();
        assert_eq!(t.table, Table::Mbr);
        let got: Vec<(u32, u64, u64)> = t
            .partitions
            .iter()
            .map(|p| (p.index, p.start / 512, p.size / 512))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 8192, 8192),
                (2, 16384, 8192),
                (3, 24576, 8192),
                (4, 32768, 65536),
                (5, 40960, 8192),
                (6, 65536, 8192)
            ]
        );
        assert!(t.partitions[0].bootable);
        assert_eq!(t.partitions[0].kind, Kind::Mbr(0x0e));
    }

    #[test]
    fn ebr_loop_is_refused() {
        let mut d = mbr_disk();
        let at = (32768 + 24576) * 512;
        // The second EBR links back to the first.
        let mut e2 = [0u8; 512];
        put_entry(&mut e2, 0, false, 0x83, 8192, 8192);
        put_entry(&mut e2, 1, false, 0x05, 0x1, 1);
        sig(&mut e2);
        d[at..at + 512].copy_from_slice(&e2);
        // link to ext+1 sector then loop: make the EBR at ext+1 sector link to 24576 again
        let mut e3 = [0u8; 512];
        put_entry(&mut e3, 1, false, 0x05, 24576, 1);
        sig(&mut e3);
        let b = (32768 + 1) * 512;
        d[b..b + 512].copy_from_slice(&e3);
        let e = read_table(&mut Cursor::new(&d)).unwrap_err();
        assert!(e.contains("loops"), "{e}");
    }

    #[test]
    fn no_signature_is_not_a_disk() {
        let e = read_table(&mut Cursor::new(vec![0u8; 8192])).unwrap_err();
        assert!(e.contains("55 AA"), "{e}");
    }

    fn gpt_disk(corrupt_entries: bool) -> Vec<u8> {
        let mut d = vec![0u8; 1 << 20];
        let mut m = [0u8; 512];
        put_entry(&mut m, 0, false, 0xee, 1, 2047);
        sig(&mut m);
        d[..512].copy_from_slice(&m);
        let mut entries = vec![0u8; 128 * 128];
        let names = ["resin-boot", "resin-rootA"];
        for (i, n) in names.iter().enumerate() {
            let e = &mut entries[i * 128..(i + 1) * 128];
            e[0] = 0x28 + i as u8; // any non-zero type GUID
            e[16] = 1;
            e[32..40].copy_from_slice(&(2048u64 + 100 * i as u64).to_le_bytes());
            e[40..48].copy_from_slice(&(2048u64 + 100 * i as u64 + 99).to_le_bytes());
            if i == 0 {
                e[48] = 4;
            }
            for (k, u) in n.encode_utf16().enumerate() {
                e[56 + 2 * k..58 + 2 * k].copy_from_slice(&u.to_le_bytes());
            }
        }
        let ecrc = crc32(0, &entries);
        let mut h = [0u8; 92];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x10000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&1u64.to_le_bytes());
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&ecrc.to_le_bytes());
        let hcrc = crc32(0, &h);
        h[16..20].copy_from_slice(&hcrc.to_le_bytes());
        d[512..604].copy_from_slice(&h);
        if corrupt_entries {
            entries[56] ^= 1;
        }
        d[1024..1024 + entries.len()].copy_from_slice(&entries);
        d
    }

    #[test]
    fn gpt_names_and_crcs() {
        let t = read_table(&mut Cursor::new(gpt_disk(false))).unwrap();
        assert_eq!(t.table, Table::Gpt);
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.partitions[0].name.as_deref(), Some("resin-boot"));
        assert_eq!(t.partitions[1].name.as_deref(), Some("resin-rootA"));
        assert_eq!(t.partitions[1].start, (2048 + 100) * 512);
        assert_eq!(t.partitions[1].size, 100 * 512);
        assert!(t.partitions[0].bootable);
        let e = read_table(&mut Cursor::new(gpt_disk(true))).unwrap_err();
        assert!(e.contains("entry array at byte 1024 is corrupt"), "{e}");
        let mut d = gpt_disk(false);
        d[600] ^= 1;
        let e = read_table(&mut Cursor::new(d)).unwrap_err();
        assert!(e.contains("GPT header at byte 512 is corrupt"), "{e}");
    }

    #[test]
    fn guid_format() {
        // EFI system partition type GUID as stored on disk.
        let g = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
            0xc9, 0x3b,
        ];
        assert_eq!(guid_string(&g), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    }
}
