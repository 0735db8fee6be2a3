//! Directory entries: 8.3 short entries, long file name (LFN) entries with their checksum,
//! short-name generation with `~N` tails, and DOS timestamps. Pure functions over bytes.
#![forbid(unsafe_code)]

use crate::formats::le::le16;

use crate::error::{Error, Result};

pub const SLOT: usize = 32;
pub const ATTR_READ_ONLY: u8 = 0x01;
pub const ATTR_HIDDEN: u8 = 0x02;
pub const ATTR_SYSTEM: u8 = 0x04;
pub const ATTR_VOLUME: u8 = 0x08;
pub const ATTR_DIR: u8 = 0x10;
pub const ATTR_ARCHIVE: u8 = 0x20;
pub const ATTR_LFN: u8 = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME;
/// NT reserved byte flags: base / extension stored upper case but shown lower case.
const NT_LOWER_BASE: u8 = 0x08;
const NT_LOWER_EXT: u8 = 0x10;
/// Longest long name, in UTF-16 units.
pub const MAX_LFN: usize = 255;
const LFN_CHARS: usize = 13;

/// One directory entry as parsed from a directory's bytes.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The long name, or the short name when there is no (valid) long name.
    pub name: String,
    /// The 8.3 name shown as `NAME.EXT` (case flags applied).
    pub short_name: String,
    pub raw_short: [u8; 11],
    pub attr: u8,
    pub cluster: u32,
    pub size: u32,
    /// First slot of the entry set (the first LFN slot, or the short slot).
    pub first_slot: usize,
    /// Slot of the short entry.
    pub short_slot: usize,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.attr & ATTR_DIR != 0
    }

    pub fn is_dot(&self) -> bool {
        self.raw_short == *b".          " || self.raw_short == *b"..         "
    }

    pub fn matches(&self, name: &str) -> bool {
        names_equal(&self.name, name) || names_equal(&self.short_name, name)
    }
}

/// Case-insensitive name comparison, as FAT does it (upper-casing both).
pub fn names_equal(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

/// The 11-byte name's checksum that ties LFN entries to their short entry.
pub fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short.iter().fold(0u8, |s, &b| {
        ((s & 1) << 7).wrapping_add(s >> 1).wrapping_add(b)
    })
}

/// Short name bytes as text. Bytes above 0x7F are shown as Latin-1 (the OEM code page of the
/// writer is unknown); this only affects how short names of foreign files are displayed.
fn short_display(raw: &[u8; 11], nt: u8) -> String {
    let conv = |bytes: &[u8], lower: bool| -> String {
        let mut s: String = bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| if i == 0 && b == 0x05 { 0xE5 } else { b })
            .map(char::from)
            .collect();
        let t = s.trim_end_matches(' ').len();
        s.truncate(t);
        if lower {
            s.make_ascii_lowercase();
        }
        s
    };
    let base = conv(&raw[..8], nt & NT_LOWER_BASE != 0);
    let ext = conv(&raw[8..], nt & NT_LOWER_EXT != 0);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

/// Short name bytes as `NAME.EXT` in upper case (as stored).
pub fn short_text(raw: &[u8; 11]) -> String {
    short_display(raw, 0)
}

/// What parsing a directory's bytes found.
#[derive(Debug, Default)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub label: Option<String>,
    pub label_raw: Option<[u8; 11]>,
    /// Slot index of the end marker (first byte 0), or the slot count when there is none.
    pub end: usize,
}

/// Parses every slot of a directory. Damaged LFN sequences are ignored (the short name is
/// used), as the specification asks.
pub fn parse(data: &[u8]) -> Parsed {
    let mut out = Parsed {
        end: data.len() / SLOT,
        ..Parsed::default()
    };
    // LFN accumulator: (first slot, checksum, expected next ordinal, units by ordinal)
    let mut lfn: Option<(usize, u8, u8, Vec<[u16; LFN_CHARS]>)> = None;
    for (i, e) in data.chunks_exact(SLOT).enumerate() {
        let b0 = e[0];
        if b0 == 0 {
            out.end = i;
            break;
        }
        if b0 == 0xE5 {
            lfn = None;
            continue;
        }
        let attr = e[11];
        if attr & 0x3F == ATTR_LFN {
            let ord = b0 & 0x1F;
            let chk = e[13];
            let mut units = [0u16; LFN_CHARS];
            for (k, at) in (1..11)
                .step_by(2)
                .chain((14..26).step_by(2))
                .chain((28..32).step_by(2))
                .enumerate()
            {
                units[k] = le16(e, at);
            }
            if ord == 0 || ord as usize > 20 {
                lfn = None;
            } else if b0 & 0x40 != 0 {
                let mut v = vec![[0u16; LFN_CHARS]; ord as usize];
                v[ord as usize - 1] = units;
                lfn = Some((i, chk, ord - 1, v));
            } else {
                match &mut lfn {
                    Some((_, c, expect, v)) if *c == chk && *expect == ord => {
                        v[ord as usize - 1] = units;
                        *expect = ord - 1;
                    }
                    _ => lfn = None,
                }
            }
            continue;
        }
        let mut raw = [0u8; 11];
        raw.copy_from_slice(&e[..11]);
        let acc = lfn.take();
        if attr & ATTR_VOLUME != 0 && attr & ATTR_DIR == 0 {
            if out.label.is_none() {
                out.label_raw = Some(raw);
                let s: String = raw.iter().map(|&b| char::from(b)).collect();
                let s = s.trim_end().to_string();
                if !s.is_empty() {
                    out.label = Some(s);
                }
            }
            continue;
        }
        let short_name = short_display(&raw, e[12]);
        let mut name = short_name.clone();
        let mut first_slot = i;
        if let Some((start, chk, expect, parts)) = acc {
            if expect == 0 && chk == lfn_checksum(&raw) {
                let units: Vec<u16> = parts
                    .iter()
                    .flatten()
                    .copied()
                    .take_while(|&u| u != 0)
                    .collect();
                if !units.is_empty() {
                    name = String::from_utf16_lossy(&units);
                    first_slot = start;
                }
            }
        }
        let cluster = u32::from(le16(e, 26)) | (u32::from(le16(e, 20)) << 16);
        let size = u32::from_le_bytes([e[28], e[29], e[30], e[31]]);
        out.entries.push(Entry {
            name,
            short_name,
            raw_short: raw,
            attr,
            cluster,
            size,
            first_slot,
            short_slot: i,
        });
    }
    out
}

/// Refuses names FAT cannot hold. `path` names the whole path in the error.
pub fn check_name(name: &str, path: &str) -> Result<()> {
    let bad = |cause: String| {
        Error::new("checking the FAT file name", path, cause)
            .hint("use a name without \" * / : < > ? \\ | or control characters, at most 255 characters, not ending in a space or dot")
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(bad(format!("'{name}' is not a file name")));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| (c as u32) < 0x20 || "\"*/:<>?\\|".contains(c))
    {
        return Err(bad(format!("the name contains {c:?}")));
    }
    if name.ends_with(' ') || name.ends_with('.') {
        return Err(bad("the name ends in a space or dot".into()));
    }
    let n = name.encode_utf16().count();
    if n > MAX_LFN {
        return Err(bad(format!(
            "the name is {n} UTF-16 units long, FAT allows {MAX_LFN}"
        )));
    }
    Ok(())
}

fn short_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'()-@^_`{}~".contains(c)
}

/// When `name` fits an 8.3 entry exactly (each part one case), the 11 bytes and NT case
/// flags; then no long name entries are needed.
pub fn exact_short(name: &str) -> Option<([u8; 11], u8)> {
    let (base, ext) = match name.rfind('.') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, ""),
    };
    if base.is_empty()
        || base.len() > 8
        || ext.len() > 3
        || !base.chars().all(short_char_ok)
        || !ext.chars().all(short_char_ok)
    {
        return None;
    }
    let case = |s: &str, flag: u8| -> Option<u8> {
        let lower = s.chars().any(|c| c.is_ascii_lowercase());
        let upper = s.chars().any(|c| c.is_ascii_uppercase());
        match (lower, upper) {
            (true, true) => None,
            (true, false) => Some(flag),
            _ => Some(0),
        }
    };
    let nt = case(base, NT_LOWER_BASE)? | case(ext, NT_LOWER_EXT)?;
    let mut raw = [b' '; 11];
    for (i, b) in base.bytes().enumerate() {
        raw[i] = b.to_ascii_uppercase();
    }
    for (i, b) in ext.bytes().enumerate() {
        raw[8 + i] = b.to_ascii_uppercase();
    }
    Some((raw, nt))
}

/// A unique short name for a long `name`: the basis name (upper case, invalid characters as
/// `_`, spaces and extra dots dropped) with the lowest free `~N` tail. `taken` says whether
/// 11 bytes are already used in the directory.
pub fn generate_short(name: &str, taken: impl Fn(&[u8; 11]) -> bool) -> Option<[u8; 11]> {
    let conv = |s: &str| -> Vec<u8> {
        s.chars()
            .filter(|&c| c != ' ' && c != '.')
            .map(|c| {
                let u = c.to_ascii_uppercase();
                if short_char_ok(u) {
                    u as u8
                } else {
                    b'_'
                }
            })
            .collect()
    };
    let trimmed = name.trim_start_matches(['.', ' ']);
    let (base, ext) = match trimmed.rfind('.') {
        Some(i) => (conv(&trimmed[..i]), conv(&trimmed[i + 1..])),
        None => (conv(trimmed), Vec::new()),
    };
    let base = if base.is_empty() { b"_".to_vec() } else { base };
    let mut raw = [b' '; 11];
    for (i, &b) in ext.iter().take(3).enumerate() {
        raw[8 + i] = b;
    }
    for n in 1u32..1_000_000 {
        let tail = format!("~{n}");
        let keep = base.len().min(8 - tail.len());
        let mut r = raw;
        r[..keep].copy_from_slice(&base[..keep]);
        r[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
        for b in r.iter_mut().take(8).skip(keep + tail.len()) {
            *b = b' ';
        }
        if !taken(&r) {
            return Some(r);
        }
    }
    None
}

/// DOS (date, time, tenths of seconds) for seconds since the epoch (UTC; FAT has no zone).
pub fn dos_time(secs: u64, nanos: u32) -> (u16, u16, u8) {
    let days = (secs / 86_400) as i64;
    let (y, m, d) = crate::log::civil_from_days(days);
    if y < 1980 {
        return ((1 << 5) | 1, 0, 0);
    }
    if y > 2107 {
        return (
            (127 << 9) | (12 << 5) | 31,
            (23 << 11) | (59 << 5) | 29,
            199,
        );
    }
    let rem = secs % 86_400;
    let (h, mi, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    let date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time = ((h as u16) << 11) | ((mi as u16) << 5) | (s / 2) as u16;
    let tenths = ((s % 2) * 100) as u8 + (nanos / 10_000_000) as u8;
    (date, time, tenths)
}

/// Now, from the system clock, as DOS (date, time, tenths).
pub fn dos_now() -> (u16, u16, u8) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    dos_time(d.as_secs(), d.subsec_nanos())
}

/// A 32-byte short entry.
pub fn short_entry(
    raw: &[u8; 11],
    nt: u8,
    attr: u8,
    cluster: u32,
    size: u32,
    now: (u16, u16, u8),
) -> [u8; SLOT] {
    let mut e = [0u8; SLOT];
    e[..11].copy_from_slice(raw);
    e[11] = attr;
    e[12] = nt;
    let (date, time, tenths) = now;
    e[13] = tenths;
    e[14..16].copy_from_slice(&time.to_le_bytes());
    e[16..18].copy_from_slice(&date.to_le_bytes());
    e[18..20].copy_from_slice(&date.to_le_bytes());
    set_cluster(&mut e, cluster);
    e[22..24].copy_from_slice(&time.to_le_bytes());
    e[24..26].copy_from_slice(&date.to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

pub fn set_cluster(e: &mut [u8], cluster: u32) {
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
}

/// Updates size, first cluster, modification and access times of a short entry in place.
pub fn update_short(e: &mut [u8], cluster: u32, size: u32, now: (u16, u16, u8)) {
    set_cluster(e, cluster);
    e[28..32].copy_from_slice(&size.to_le_bytes());
    let (date, time, _) = now;
    e[18..20].copy_from_slice(&date.to_le_bytes());
    e[22..24].copy_from_slice(&time.to_le_bytes());
    e[24..26].copy_from_slice(&date.to_le_bytes());
    e[11] |= ATTR_ARCHIVE;
}

/// The LFN slots for `name`, in on-disk order (highest ordinal first).
pub fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; SLOT]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let n = units.len().div_ceil(LFN_CHARS);
    let chk = lfn_checksum(short);
    let mut out = Vec::with_capacity(n);
    for ord in (1..=n).rev() {
        let mut e = [0u8; SLOT];
        e[0] = ord as u8 | if ord == n { 0x40 } else { 0 };
        e[11] = ATTR_LFN;
        e[13] = chk;
        let at = (ord - 1) * LFN_CHARS;
        for (k, pos) in (1..11)
            .step_by(2)
            .chain((14..26).step_by(2))
            .chain((28..32).step_by(2))
            .enumerate()
        {
            let i = at + k;
            let u = match i.cmp(&units.len()) {
                std::cmp::Ordering::Less => units[i],
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 0xFFFF,
            };
            e[pos..pos + 2].copy_from_slice(&u.to_le_bytes());
        }
        out.push(e);
    }
    out
}

/// The `.` and `..` entries of a new directory (`parent` 0 for the root).
pub fn dot_entries(own: u32, parent: u32, now: (u16, u16, u8)) -> [u8; 2 * SLOT] {
    let mut out = [0u8; 2 * SLOT];
    out[..SLOT].copy_from_slice(&short_entry(b".          ", 0, ATTR_DIR, own, 0, now));
    out[SLOT..].copy_from_slice(&short_entry(b"..         ", 0, ATTR_DIR, parent, 0, now));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_known_value() {
        // Computed by hand from the specification's algorithm for "README  TXT".
        let mut s = 0u8;
        for &b in b"README  TXT" {
            s = (if s & 1 != 0 { 0x80u8 } else { 0 })
                .wrapping_add(s >> 1)
                .wrapping_add(b);
        }
        assert_eq!(lfn_checksum(b"README  TXT"), s);
    }

    #[test]
    fn exact_short_names_and_case_flags() {
        assert_eq!(exact_short("README.TXT"), Some((*b"README  TXT", 0)));
        assert_eq!(
            exact_short("config.json"),
            None,
            "4-char extension needs a long name"
        );
        assert_eq!(
            exact_short("os-rel"),
            Some((*b"OS-REL     ", NT_LOWER_BASE))
        );
        assert_eq!(
            exact_short("abc.TXT"),
            Some((*b"ABC     TXT", NT_LOWER_BASE))
        );
        assert_eq!(exact_short("Abc.txt"), None);
        assert_eq!(exact_short("a b.txt"), None);
        assert_eq!(exact_short(".bashrc"), None);
        assert_eq!(exact_short("a.b.c"), None);
        assert_eq!(exact_short("ABCDEFGHI"), None);
    }

    #[test]
    fn generated_short_names_get_unique_tails() {
        let mut taken: Vec<[u8; 11]> = Vec::new();
        for _ in 0..12 {
            let r = generate_short("device-type.json", |r| taken.contains(r)).unwrap();
            taken.push(r);
        }
        assert_eq!(&taken[0], b"DEVICE~1JSO");
        assert_eq!(&taken[8], b"DEVICE~9JSO");
        assert_eq!(&taken[9], b"DEVIC~10JSO");
        assert_eq!(
            &generate_short(".hidden file.tar.gz", |_| false).unwrap(),
            b"HIDDEN~1GZ "
        );
        assert_eq!(&generate_short("héllo", |_| false).unwrap(), b"H_LLO~1    ");
        assert_eq!(&generate_short("...", |_| false).unwrap(), b"_~1        ");
    }

    #[test]
    fn lfn_round_trip_through_parse() {
        let name = "a long name with ünïcödé and spaces.config.json";
        let short = generate_short(name, |_| false).unwrap();
        let mut data = Vec::new();
        for e in lfn_entries(name, &short) {
            data.extend_from_slice(&e);
        }
        data.extend_from_slice(&short_entry(&short, 0, ATTR_ARCHIVE, 5, 42, dos_now()));
        data.extend_from_slice(&[0u8; 64]);
        let p = parse(&data);
        assert_eq!(p.entries.len(), 1);
        let e = &p.entries[0];
        assert_eq!(e.name, name);
        assert_eq!(e.first_slot, 0);
        assert_eq!(e.short_slot, data.len() / SLOT - 3);
        assert_eq!((e.cluster, e.size), (5, 42));
        assert!(e.matches("A LONG NAME WITH ÜNÏCÖDÉ AND SPACES.CONFIG.JSON"));
        assert_eq!(p.end, e.short_slot + 1);
    }

    #[test]
    fn damaged_lfn_falls_back_to_short_name() {
        let short = *b"FOO~1   TXT";
        let mut data = Vec::new();
        for mut e in lfn_entries("foo long name.txt", &short) {
            e[13] ^= 1; // wrong checksum
            data.extend_from_slice(&e);
        }
        data.extend_from_slice(&short_entry(&short, 0, ATTR_ARCHIVE, 0, 0, dos_now()));
        let p = parse(&data);
        assert_eq!(p.entries[0].name, "FOO~1.TXT");
    }

    #[test]
    fn names_are_checked() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "tab\t",
            "x.",
            "x ",
            &"y".repeat(256),
        ] {
            assert!(check_name(bad, "/p").is_err(), "{bad:?}");
        }
        for good in ["a", "a b", "ü", ".hidden", &"y".repeat(255)] {
            check_name(good, "/p").unwrap();
        }
    }

    #[test]
    fn dos_times() {
        // 2026-11-30 04:41:17.5 UTC
        let (d, t, tenths) = dos_time(1_796_013_677, 500_000_000);
        assert_eq!(d >> 9, 46);
        assert_eq!((d >> 5) & 0xF, 11);
        assert_eq!(d & 0x1F, 30);
        assert_eq!(t >> 11, 4);
        assert_eq!((t >> 5) & 0x3F, 41);
        assert_eq!((t & 0x1F) * 2, 16);
        assert_eq!(tenths, 150);
        assert_eq!(dos_time(0, 0), (33, 0, 0));
    }
}
