//! Just enough ELF to find what a dynamically linked program needs at run time: its program
//! interpreter (`PT_INTERP`), its `DT_NEEDED` libraries and its `DT_RUNPATH`/`DT_RPATH`.
//!
//! Pure: parses bytes, reads nothing. 32- and 64-bit, little- and big-endian. Every offset is
//! bounds-checked; a malformed file is an error naming the file and what is wrong, never a panic.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

/// What the dynamic loader needs to know about one ELF file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// ELFCLASS64.
    pub class64: bool,
    /// `e_machine` (62 x86_64, 183 aarch64, 40 arm, 3 i386).
    pub machine: u16,
    /// `PT_INTERP`: the dynamic loader's path (`None`: static, or a shared library).
    pub interp: Option<String>,
    /// `DT_NEEDED` names, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` entries (`:`-separated in the file).
    pub runpath: Vec<String>,
    /// `DT_RPATH` entries (used by glibc only when there is no `DT_RUNPATH`).
    pub rpath: Vec<String>,
    /// Has a `PT_DYNAMIC` segment.
    pub dynamic: bool,
}

impl ElfInfo {
    /// A program that needs no loader and no library.
    pub fn is_static(&self) -> bool {
        self.interp.is_none() && self.needed.is_empty()
    }
}

struct Reader<'a> {
    b: &'a [u8],
    le: bool,
    origin: &'a str,
}

impl Reader<'_> {
    fn bad(&self, what: impl std::fmt::Display) -> Error {
        Error::new(
            "reading the ELF file",
            self.origin,
            format!("malformed: {what}"),
        )
    }
    /// `a + b` as a file offset; a sum past 64 bits (a crafted header) is an error.
    fn add(&self, a: u64, b: u64) -> Result<u64> {
        a.checked_add(b)
            .ok_or_else(|| self.bad(format!("offset {a:#x} + {b:#x} overflows")))
    }
    fn bytes(&self, off: u64, n: u64) -> Result<&[u8]> {
        let end = off
            .checked_add(n)
            .filter(|&e| e <= self.b.len() as u64)
            .ok_or_else(|| self.bad(format!("{n} bytes at offset {off} are past the end")))?;
        Ok(&self.b[off as usize..end as usize])
    }
    fn u16(&self, off: u64) -> Result<u16> {
        let s = self.bytes(off, 2)?;
        let a = [s[0], s[1]];
        Ok(if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        })
    }
    fn u32(&self, off: u64) -> Result<u32> {
        let s = self.bytes(off, 4)?;
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }
    fn u64(&self, off: u64) -> Result<u64> {
        let s = self.bytes(off, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(if self.le {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        })
    }
    /// A word: 8 bytes in 64-bit files, 4 in 32-bit ones.
    fn word(&self, off: u64, is64: bool) -> Result<u64> {
        if is64 {
            self.u64(off)
        } else {
            self.u32(off).map(u64::from)
        }
    }
    /// A NUL-terminated string starting at `off`, at most `max` bytes.
    fn cstr(&self, off: u64, max: u64) -> Result<String> {
        let avail = (self.b.len() as u64).saturating_sub(off).min(max);
        let s = self.bytes(off, avail)?;
        let end = s
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| self.bad(format!("string at offset {off} is not terminated")))?;
        Ok(String::from_utf8_lossy(&s[..end]).into_owned())
    }
}

struct Phdr {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Parses an ELF file's header, program headers and dynamic section. `origin` names the file
/// in errors.
pub fn parse(bytes: &[u8], origin: &str) -> Result<ElfInfo> {
    if bytes.len() < 52 || &bytes[..4] != b"\x7fELF" {
        return Err(Error::new(
            "reading the ELF file",
            origin,
            "not an ELF file",
        ));
    }
    let is64 = match bytes[4] {
        1 => false,
        2 => true,
        c => {
            return Err(Error::new(
                "reading the ELF file",
                origin,
                format!("unknown ELF class {c}"),
            ))
        }
    };
    let le = match bytes[5] {
        1 => true,
        2 => false,
        d => {
            return Err(Error::new(
                "reading the ELF file",
                origin,
                format!("unknown ELF data encoding {d}"),
            ))
        }
    };
    let r = Reader {
        b: bytes,
        le,
        origin,
    };
    let machine = r.u16(18)?;
    let (phoff, phentsize, phnum) = if is64 {
        (r.u64(32)?, r.u16(54)?, r.u16(56)?)
    } else {
        (u64::from(r.u32(28)?), r.u16(42)?, r.u16(44)?)
    };
    let min_ent = if is64 { 56 } else { 32 };
    if phnum > 0 && u64::from(phentsize) < min_ent {
        return Err(r.bad(format!("program header size {phentsize}")));
    }
    let mut phdrs = Vec::with_capacity(usize::from(phnum));
    for i in 0..u64::from(phnum) {
        let o = phoff
            .checked_add(i * u64::from(phentsize))
            .ok_or_else(|| r.bad("program header offset overflows"))?;
        let kind = r.u32(o)?;
        let p = if is64 {
            Phdr {
                kind,
                offset: r.u64(r.add(o, 8)?)?,
                vaddr: r.u64(r.add(o, 16)?)?,
                filesz: r.u64(r.add(o, 32)?)?,
            }
        } else {
            Phdr {
                kind,
                offset: u64::from(r.u32(r.add(o, 4)?)?),
                vaddr: u64::from(r.u32(r.add(o, 8)?)?),
                filesz: u64::from(r.u32(r.add(o, 16)?)?),
            }
        };
        phdrs.push(p);
    }
    let mut info = ElfInfo {
        class64: is64,
        machine,
        ..Default::default()
    };
    if let Some(p) = phdrs.iter().find(|p| p.kind == PT_INTERP) {
        let s = r.bytes(p.offset, p.filesz)?;
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        info.interp = Some(String::from_utf8_lossy(&s[..end]).into_owned());
    }
    let Some(dynp) = phdrs.iter().find(|p| p.kind == PT_DYNAMIC) else {
        return Ok(info);
    };
    info.dynamic = true;
    let ent = if is64 { 16 } else { 8 };
    let mut strtab = None;
    let mut strsz = None;
    let mut needed = Vec::new();
    let mut runpath = Vec::new();
    let mut rpath = Vec::new();
    for i in 0..dynp.filesz / ent {
        let o = r.add(dynp.offset, i * ent)?;
        let tag = r.word(o, is64)?;
        let val = r.word(r.add(o, ent / 2)?, is64)?;
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed.push(val),
            DT_STRTAB => strtab = Some(val),
            DT_STRSZ => strsz = Some(val),
            DT_RUNPATH => runpath.push(val),
            DT_RPATH => rpath.push(val),
            _ => {}
        }
    }
    if needed.is_empty() && runpath.is_empty() && rpath.is_empty() {
        return Ok(info);
    }
    let strtab = strtab.ok_or_else(|| r.bad("DT_NEEDED without DT_STRTAB"))?;
    // DT_STRTAB is an address: map it to a file offset through the PT_LOAD that holds it.
    let str_off = phdrs
        .iter()
        .filter(|p| p.kind == PT_LOAD)
        .find(|p| strtab >= p.vaddr && strtab - p.vaddr < p.filesz)
        .map(|p| r.add(strtab - p.vaddr, p.offset))
        .ok_or_else(|| r.bad(format!("DT_STRTAB {strtab:#x} is in no loaded segment")))??;
    let max = strsz.unwrap_or(1 << 20);
    let get = |v: u64| -> Result<String> {
        if v >= max {
            return Err(r.bad(format!("string {v} is outside the string table")));
        }
        r.cstr(r.add(str_off, v)?, max - v)
    };
    for v in needed {
        info.needed.push(get(v)?);
    }
    let split = |s: String| -> Vec<String> {
        s.split(':')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    for v in runpath {
        info.runpath.extend(split(get(v)?));
    }
    for v in rpath {
        info.rpath.extend(split(get(v)?));
    }
    Ok(info)
}

/// The Debian-style multiarch directory name for an ELF machine/class.
pub fn multiarch(machine: u16, class64: bool) -> &'static [&'static str] {
    match (machine, class64) {
        (62, true) => &["x86_64-linux-gnu"],
        (62, false) => &["x86_64-linux-gnux32"],
        (3, false) => &["i386-linux-gnu"],
        (183, true) => &["aarch64-linux-gnu"],
        (40, false) => &["arm-linux-gnueabihf", "arm-linux-gnueabi"],
        (8, false) => &["mipsel-linux-gnu", "mips-linux-gnu"],
        (243, true) => &["riscv64-linux-gnu"],
        _ => &[],
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A tiny 64-bit little-endian ELF: one PT_LOAD covering the file, a PT_INTERP and a
    /// PT_DYNAMIC naming `needed` libraries and a DT_RUNPATH.
    pub fn tiny_elf(interp: Option<&str>, needed: &[&str], runpath: Option<&str>) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut add = |s: &str| {
            let o = strtab.len() as u64;
            strtab.extend_from_slice(s.as_bytes());
            strtab.push(0);
            o
        };
        let needed_off: Vec<u64> = needed.iter().map(|n| add(n)).collect();
        let rp = runpath.map(&mut add);
        let interp_bytes = interp.map(|i| {
            let mut v = i.as_bytes().to_vec();
            v.push(0);
            v
        });
        let nph = if interp.is_some() { 3 } else { 2 };
        let phoff = 64u64;
        let interp_off = phoff + 56 * nph;
        let interp_len = interp_bytes.as_ref().map_or(0, |v| v.len() as u64);
        let str_off = interp_off + interp_len;
        let dyn_off = str_off + strtab.len() as u64;
        let mut dynv: Vec<(u64, u64)> = needed_off.iter().map(|&o| (DT_NEEDED, o)).collect();
        // vaddr = file offset + 0x400000
        dynv.push((DT_STRTAB, str_off + 0x400000));
        dynv.push((DT_STRSZ, strtab.len() as u64));
        if let Some(o) = rp {
            dynv.push((DT_RUNPATH, o));
        }
        dynv.push((DT_NULL, 0));
        let dyn_len = 16 * dynv.len() as u64;
        let total = dyn_off + dyn_len;
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&3u16.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[32..40].copy_from_slice(&phoff.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(nph as u16).to_le_bytes());
        let ph = |kind: u32, off: u64, vaddr: u64, len: u64| {
            let mut p = vec![0u8; 56];
            p[..4].copy_from_slice(&kind.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[16..24].copy_from_slice(&vaddr.to_le_bytes());
            p[32..40].copy_from_slice(&len.to_le_bytes());
            p
        };
        b.extend(ph(PT_LOAD, 0, 0x400000, total));
        if interp.is_some() {
            b.extend(ph(PT_INTERP, interp_off, 0x400000 + interp_off, interp_len));
        }
        b.extend(ph(PT_DYNAMIC, dyn_off, 0x400000 + dyn_off, dyn_len));
        if let Some(i) = interp_bytes {
            b.extend(i);
        }
        b.extend(&strtab);
        for (t, v) in dynv {
            b.extend(t.to_le_bytes());
            b.extend(v.to_le_bytes());
        }
        b
    }

    #[test]
    fn tiny_fixture_parses() {
        let b = tiny_elf(
            Some("/lib64/ld-linux-x86-64.so.2"),
            &["libcurl.so.4", "libc.so.6"],
            Some("$ORIGIN/../lib:/opt/x"),
        );
        let i = parse(&b, "tiny").unwrap();
        assert!(i.class64 && i.dynamic);
        assert_eq!(i.machine, 62);
        assert_eq!(i.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(i.needed, ["libcurl.so.4", "libc.so.6"]);
        assert_eq!(i.runpath, ["$ORIGIN/../lib", "/opt/x"]);
        let s = parse(&tiny_elf(None, &[], None), "static").unwrap();
        assert!(s.is_static());
    }

    #[test]
    fn malformed_files_are_errors_naming_the_file() {
        assert!(parse(b"#!/bin/sh\n", "script")
            .unwrap_err()
            .to_string()
            .contains("script"));
        let b = tiny_elf(Some("/lib/ld.so"), &["libc.so.6"], None);
        // Every truncation is an error or a shorter result, never a panic.
        for n in 0..b.len() {
            let _ = parse(&b[..n], "cut");
        }
        let mut bad = b.clone();
        // phoff far past the end
        bad[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&bad, "bad").is_err());
        // A PT_LOAD whose file offset is near 2^64: mapping DT_STRTAB to a file offset
        // overflows (a panic before issue 18's checked arithmetic).
        for off in [u64::MAX, u64::MAX - 0x100] {
            let mut bad = b.clone();
            bad[64 + 8..64 + 16].copy_from_slice(&off.to_le_bytes());
            assert!(parse(&bad, "bad").is_err());
        }
    }

    #[test]
    fn host_binaries_parse_read_only() {
        // The host's own /bin/sh (dynamic on Debian); skipped where it is absent or static.
        let Ok(b) = std::fs::read("/bin/sh") else {
            eprintln!("skipped: no /bin/sh");
            return;
        };
        let i = parse(&b, "/bin/sh").unwrap();
        if i.dynamic {
            assert!(i.interp.is_some());
            assert!(i.needed.iter().any(|n| n.starts_with("libc")), "{i:?}");
        }
    }
}
