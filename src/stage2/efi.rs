//! The UEFI boot entry for the new balenaOS disk, written in stage 2 through efivarfs (no
//! `efibootmgr`, no libraries of the old OS): a `Boot####` variable holding an
//! `EFI_LOAD_OPTION` (UEFI spec 2.10 §3.1.3) whose device path is
//! `HD(resin-boot)/File(\EFI\BOOT\bootx64.efi)`, put first in `BootOrder`.
//!
//! The encoding is pure and unit-tested; [`add_boot_entry`] does the file work on a directory
//! that stands for `/sys/firmware/efi/efivars`.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Context, Error, Result};
use crate::formats::partition::{Partition, Table};

/// EFI_GLOBAL_VARIABLE, as efivarfs spells it in file names.
pub const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS.
const ATTRS: u32 = 0x7;
const LOAD_OPTION_ACTIVE: u32 = 0x1;
/// The description of the entry takeover creates (and reuses on a second run).
pub const DESCRIPTION: &str = "balenaOS";

/// How the boot partition's disk is identified in the HD() device path node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// MBR disk signature (bytes 440..444).
    Mbr(u32),
    /// GPT unique partition GUID, as stored on disk.
    Gpt([u8; 16]),
}

/// The removable-media loader path of an architecture (`uname -m` spelling).
pub fn loader_path(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" => Some("\\EFI\\BOOT\\bootx64.efi"),
        "i686" | "i586" | "i386" => Some("\\EFI\\BOOT\\bootia32.efi"),
        "aarch64" => Some("\\EFI\\BOOT\\bootaa64.efi"),
        _ => None,
    }
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(|c| c.to_le_bytes())
        .collect()
}

/// The `EFI_LOAD_OPTION` for `part` (512-byte LBAs) on a disk identified by `sig`.
pub fn load_option(description: &str, part: &Partition, sig: Signature, loader: &str) -> Vec<u8> {
    // Hard drive media device path (type 4, subtype 1, length 42).
    let mut hd = vec![4u8, 1, 42, 0];
    hd.extend_from_slice(&part.index.to_le_bytes());
    hd.extend_from_slice(&(part.start / 512).to_le_bytes());
    hd.extend_from_slice(&(part.size / 512).to_le_bytes());
    let (sigbytes, format, sigtype) = match sig {
        Signature::Mbr(s) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&s.to_le_bytes());
            (b, 1u8, 1u8)
        }
        Signature::Gpt(g) => (g, 2, 2),
    };
    hd.extend_from_slice(&sigbytes);
    hd.push(format);
    hd.push(sigtype);
    // File path media device path (type 4, subtype 4).
    let path = utf16z(loader);
    let mut fp = vec![4u8, 4];
    fp.extend_from_slice(&((4 + path.len()) as u16).to_le_bytes());
    fp.extend_from_slice(&path);
    // End of hardware device path.
    let end = [0x7fu8, 0xff, 4, 0];
    let list_len = hd.len() + fp.len() + end.len();
    let mut out = Vec::with_capacity(6 + 2 * description.len() + 2 + list_len);
    out.extend_from_slice(&LOAD_OPTION_ACTIVE.to_le_bytes());
    out.extend_from_slice(&(list_len as u16).to_le_bytes());
    out.extend_from_slice(&utf16z(description));
    out.extend_from_slice(&hd);
    out.extend_from_slice(&fp);
    out.extend_from_slice(&end);
    out
}

/// The description of an `EFI_LOAD_OPTION` (None when malformed).
pub fn option_description(opt: &[u8]) -> Option<String> {
    let rest = opt.get(6..)?;
    let units: Vec<u16> = rest
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16(&units).ok()
}

/// Reads how `disk` identifies the partition `part` (MBR disk signature or GPT unique GUID).
pub fn signature(disk: &Path, table: Table, part: &Partition) -> Result<Signature> {
    let name = disk.display().to_string();
    let mut f = File::open(disk).ctx("opening", &name)?;
    let mut read_at = |off: u64, buf: &mut [u8]| -> Result<()> {
        f.seek(SeekFrom::Start(off))
            .and_then(|_| f.read_exact(buf))
            .ctx("reading the partition table of", &name)
    };
    match table {
        Table::Mbr => {
            let mut b = [0u8; 4];
            read_at(440, &mut b)?;
            Ok(Signature::Mbr(u32::from_le_bytes(b)))
        }
        Table::Gpt => {
            let mut h = [0u8; 92];
            read_at(512, &mut h)?;
            if &h[..8] != b"EFI PART" {
                return Err(Error::new(
                    "reading the GPT header of",
                    &name,
                    "no 'EFI PART' signature at LBA 1",
                ));
            }
            let entries = u64::from_le_bytes(h[72..80].try_into().unwrap_or_default());
            let esize = u32::from_le_bytes(h[84..88].try_into().unwrap_or_default()) as u64;
            if esize < 128 || part.index == 0 {
                return Err(Error::new(
                    "reading the GPT header of",
                    &name,
                    format!("partition entry size {esize} is invalid"),
                ));
            }
            let mut e = [0u8; 32];
            read_at(entries * 512 + (part.index as u64 - 1) * esize, &mut e)?;
            let mut g = [0u8; 16];
            g.copy_from_slice(&e[16..32]);
            Ok(Signature::Gpt(g))
        }
    }
}

fn var_path(efivars: &Path, name: &str) -> std::path::PathBuf {
    efivars.join(format!("{name}-{GLOBAL_GUID}"))
}

/// A variable's data without efivarfs' leading 4 attribute bytes.
fn read_var(efivars: &Path, name: &str) -> Option<Vec<u8>> {
    let b = std::fs::read(var_path(efivars, name)).ok()?;
    (b.len() >= 4).then(|| b[4..].to_vec())
}

fn write_var(efivars: &Path, name: &str, data: &[u8]) -> Result<()> {
    let mut b = Vec::with_capacity(4 + data.len());
    b.extend_from_slice(&ATTRS.to_le_bytes());
    b.extend_from_slice(data);
    let p = var_path(efivars, name);
    // efivarfs takes a variable in one write(2); std::fs::write issues one for a small buffer.
    std::fs::write(&p, &b).ctx_path("writing the EFI variable", &p)
}

/// Creates (or replaces) the `balenaOS` boot entry `option` and puts it first in `BootOrder`.
/// Returns the entry number.
pub fn add_boot_entry(efivars: &Path, option: &[u8]) -> Result<u16> {
    let mut used = Vec::new();
    let mut ours = None;
    for e in std::fs::read_dir(efivars)
        .ctx_path("reading", efivars)?
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(hex) = n
            .strip_prefix("Boot")
            .and_then(|r| r.strip_suffix(&format!("-{GLOBAL_GUID}")))
        else {
            continue;
        };
        let Ok(num) = u16::from_str_radix(hex, 16) else {
            continue;
        };
        if hex.len() != 4 {
            continue;
        }
        used.push(num);
        if ours.is_none()
            && read_var(efivars, &format!("Boot{num:04X}"))
                .and_then(|d| option_description(&d))
                .as_deref()
                == Some(DESCRIPTION)
        {
            ours = Some(num);
        }
    }
    let num = match ours {
        Some(n) => n,
        None => (0..=0xffffu16).find(|n| !used.contains(n)).ok_or_else(|| {
            Error::new(
                "adding the EFI boot entry",
                efivars.display(),
                "no free Boot#### number",
            )
        })?,
    };
    let name = format!("Boot{num:04X}");
    if ours.is_some() {
        // Rewriting an existing variable goes through delete + create on efivarfs.
        let _ = std::fs::remove_file(var_path(efivars, &name));
    }
    write_var(efivars, &name, option)?;
    let old = read_var(efivars, "BootOrder").unwrap_or_default();
    let mut order = vec![num];
    order.extend(
        old.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .filter(|&n| n != num),
    );
    let bytes: Vec<u8> = order.iter().flat_map(|n| n.to_le_bytes()).collect();
    write_var(efivars, "BootOrder", &bytes)?;
    Ok(num)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::partition::Kind;

    fn part() -> Partition {
        Partition {
            index: 1,
            start: 4 << 20,
            size: 40 << 20,
            kind: Kind::Mbr(0x0c),
            name: None,
            bootable: true,
        }
    }

    #[test]
    fn global_variable_guid_is_the_specs() {
        // EFI_GLOBAL_VARIABLE {0x8BE4DF61,0x93CA,0x11d2,{0xAA,0x0D,0x00,0xE0,0x98,0x03,0x2B,0x8C}}
        assert_eq!(GLOBAL_GUID, "8be4df61-93ca-11d2-aa0d-00e098032b8c");
    }

    #[test]
    fn load_option_layout_matches_the_spec() {
        let o = load_option(
            "balenaOS",
            &part(),
            Signature::Mbr(0x1234_5678),
            "\\EFI\\BOOT\\bootx64.efi",
        );
        assert_eq!(&o[..4], &1u32.to_le_bytes());
        let list_len = u16::from_le_bytes([o[4], o[5]]) as usize;
        let desc_len = 2 * ("balenaOS".len() + 1);
        assert_eq!(o.len(), 6 + desc_len + list_len);
        assert_eq!(option_description(&o).as_deref(), Some("balenaOS"));
        let hd = &o[6 + desc_len..];
        assert_eq!(&hd[..4], &[4, 1, 42, 0]);
        assert_eq!(u32::from_le_bytes(hd[4..8].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(hd[8..16].try_into().unwrap()), 8192);
        assert_eq!(u64::from_le_bytes(hd[16..24].try_into().unwrap()), 81920);
        assert_eq!(&hd[24..28], &0x1234_5678u32.to_le_bytes());
        assert_eq!((hd[40], hd[41]), (1, 1));
        let fp = &hd[42..];
        assert_eq!((fp[0], fp[1]), (4, 4));
        assert_eq!(&o[o.len() - 4..], &[0x7f, 0xff, 4, 0]);
    }

    #[test]
    fn entry_is_added_first_in_boot_order_and_reused() {
        let d = std::env::temp_dir().join(format!("takeover-efivars-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let other = load_option("UEFI Misc Device", &part(), Signature::Mbr(1), "\\x.efi");
        write_var(&d, "Boot0000", &other).unwrap();
        write_var(&d, "Boot0001", &other).unwrap();
        write_var(&d, "BootOrder", &[0, 0, 1, 0]).unwrap();
        let o = load_option(
            DESCRIPTION,
            &part(),
            Signature::Mbr(2),
            "\\EFI\\BOOT\\bootx64.efi",
        );
        assert_eq!(add_boot_entry(&d, &o).unwrap(), 2);
        assert_eq!(read_var(&d, "BootOrder").unwrap(), [2, 0, 0, 0, 1, 0]);
        assert_eq!(read_var(&d, "Boot0002").unwrap(), o);
        // A second run reuses its entry and does not repeat it in BootOrder.
        assert_eq!(add_boot_entry(&d, &o).unwrap(), 2);
        assert_eq!(read_var(&d, "BootOrder").unwrap(), [2, 0, 0, 0, 1, 0]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
