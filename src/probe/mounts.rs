//! Parsers for `/proc/self/mountinfo`, `/proc/swaps` and `/proc/meminfo`.
//!
//! mountinfo (proc(5)): `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
//! — mount id, parent id, major:minor, root within the filesystem, mount point, mount options,
//! zero or more optional fields ended by `-`, filesystem type, source, super options. Paths
//! escape space, tab, newline and backslash as `\040`, `\011`, `\012`, `\134`.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent: u32,
    pub major: u32,
    pub minor: u32,
    /// Root of the mount within its filesystem ("/" unless a bind mount).
    pub root: String,
    pub mount_point: String,
    pub options: String,
    pub fs_type: String,
    /// Mount source, e.g. "/dev/mmcblk0p2" (may be "/dev/root" or "none").
    pub source: String,
    pub super_options: String,
}

/// Decodes the `\ooo` octal escapes of mountinfo and /proc/swaps paths.
pub fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Parses mountinfo text; `origin` names the file in errors.
pub fn parse_mountinfo(text: &str, origin: &str) -> Result<Vec<Mount>> {
    let mut v = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| {
            Error::new(
                "reading mount table",
                format!("{origin} line {}", n + 1),
                format!("{what}: '{}'", line.chars().take(200).collect::<String>()),
            )
        };
        let f: Vec<&str> = line.split(' ').filter(|s| !s.is_empty()).collect();
        let sep = f
            .iter()
            .position(|x| *x == "-")
            .ok_or_else(|| bad("no ' - ' separator"))?;
        if sep < 6 || f.len() < sep + 3 {
            return Err(bad("too few fields"));
        }
        let (major, minor) = parse_dev(f[2]).ok_or_else(|| bad("bad major:minor"))?;
        v.push(Mount {
            id: f[0].parse().map_err(|_| bad("bad mount id"))?,
            parent: f[1].parse().map_err(|_| bad("bad parent id"))?,
            major,
            minor,
            root: unescape_octal(f[3]),
            mount_point: unescape_octal(f[4]),
            options: f[5].to_string(),
            fs_type: f[sep + 1].to_string(),
            source: unescape_octal(f[sep + 2]),
            super_options: f.get(sep + 3).copied().unwrap_or("").to_string(),
        });
    }
    Ok(v)
}

/// The mount visible at `mount_point` (the last one mounted there wins).
pub fn find_mount<'a>(mounts: &'a [Mount], mount_point: &str) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.mount_point == mount_point)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    pub name: String,
    /// "partition" or "file".
    pub kind: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
}

/// Parses /proc/swaps (sizes in KiB). Lines that do not parse are skipped.
pub fn parse_swaps(text: &str) -> Vec<Swap> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 {
                return None;
            }
            Some(Swap {
                name: unescape_octal(f[0]),
                kind: f[1].to_string(),
                size_bytes: f[2].parse::<u64>().ok()?.saturating_mul(1024),
                used_bytes: f[3].parse::<u64>().ok()?.saturating_mul(1024),
            })
        })
        .collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total_bytes: Option<u64>,
    /// MemAvailable; on kernels before 3.14 estimated as MemFree + Buffers + Cached.
    pub available_bytes: Option<u64>,
    /// True when `available_bytes` is the estimate.
    pub estimated: bool,
}

/// Parses /proc/meminfo ("MemAvailable:   3741212 kB").
pub fn parse_meminfo(text: &str) -> MemInfo {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            if k.trim() != key {
                return None;
            }
            let mut it = v.split_whitespace();
            let n: u64 = it.next()?.parse().ok()?;
            let mult = match it.next() {
                Some("kB") => 1024,
                None => 1,
                Some(_) => return None,
            };
            Some(n.saturating_mul(mult))
        })
    };
    let mut m = MemInfo {
        total_bytes: get("MemTotal"),
        available_bytes: get("MemAvailable"),
        estimated: false,
    };
    if m.available_bytes.is_none() {
        if let (Some(f), Some(b), Some(c)) = (get("MemFree"), get("Buffers"), get("Cached")) {
            m.available_bytes = Some(f + b + c);
            m.estimated = true;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const PI: &str = "\
22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw
23 22 0:5 / /dev rw,relatime shared:2 - devtmpfs udev rw,size=1867796k,nr_inodes=466949,mode=755
38 22 179:1 / /boot/firmware rw,relatime shared:20 - vfat /dev/mmcblk0p1 rw,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro
40 22 8:1 / /media/pi/My\\040Disk rw,nosuid,nodev,relatime shared:30 master:2 - exfat /dev/sda1 rw
";

    #[test]
    fn mountinfo_fields_and_escapes() {
        let m = parse_mountinfo(PI, "mi").unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!((m[0].major, m[0].minor), (179, 2));
        assert_eq!(m[0].source, "/dev/mmcblk0p2");
        assert_eq!(m[0].fs_type, "ext4");
        assert_eq!(m[2].mount_point, "/boot/firmware");
        assert_eq!(m[3].mount_point, "/media/pi/My Disk");
        assert_eq!(m[3].fs_type, "exfat");
        assert_eq!(find_mount(&m, "/").unwrap().id, 22);
        assert_eq!(unescape_octal("a\\011b\\134c\\012"), "a\tb\\c\n");
        assert_eq!(unescape_octal("end\\04"), "end\\04");
    }

    #[test]
    fn mountinfo_errors_name_line() {
        let e = parse_mountinfo("22 1 179:2 / / rw\n", "/proc/self/mountinfo").unwrap_err();
        assert!(e.to_string().contains("/proc/self/mountinfo line 1"), "{e}");
        let e = parse_mountinfo("\nx 1 1:2 / / rw - ext4 /dev/a rw\n", "f").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn swaps_and_meminfo() {
        let s = parse_swaps(
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/var/swap                               file\t\t102396\t\t1024\t\t-2\n",
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "/var/swap");
        assert_eq!(s[0].used_bytes, 1024 * 1024);
        let m = parse_meminfo("MemTotal:        3884328 kB\nMemFree:         2911488 kB\nMemAvailable:    3412508 kB\n");
        assert_eq!(m.total_bytes, Some(3884328 * 1024));
        assert_eq!(m.available_bytes, Some(3412508 * 1024));
        let m = parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 1 kB\nCached: 2 kB\n");
        assert_eq!(m.available_bytes, Some(13 * 1024));
        assert!(m.estimated);
        assert_eq!(parse_meminfo("").available_bytes, None);
    }
}
