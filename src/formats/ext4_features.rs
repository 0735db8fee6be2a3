//! ext2/3/4 feature flags: which ones a Linux kernel needs to mount a filesystem read-write.
//!
//! A superblock carries three feature words. Unknown `compat` features do not stop a mount;
//! an `incompat` feature the kernel lacks makes it refuse the mount; a `ro_compat` feature it
//! lacks allows a read-only mount only. Stage 2 writes the backup into the new image's
//! resin-data through the kernel's ext4, so both must be known to the running kernel. The
//! kernel release that first mounted each feature read-write comes from the Linux sources
//! (`EXT4_FEATURE_INCOMPAT_SUPP` / `EXT4_FEATURE_RO_COMPAT_SUPP` over time); features no
//! kernel supports have no release.
#![forbid(unsafe_code)]

use super::fslabel::ExtFeatures;

/// Which superblock word a feature is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    Incompat,
    RoCompat,
}

/// (word, bit, name, first kernel release (major, minor) that mounts it read-write).
type Feature = (Word, u32, &'static str, Option<(u32, u32)>);

const FEATURES: &[Feature] = &[
    (Word::Incompat, 0x0001, "compression", None),
    (Word::Incompat, 0x0002, "filetype", Some((2, 2))),
    (Word::Incompat, 0x0004, "needs_recovery", Some((2, 4))),
    (Word::Incompat, 0x0008, "journal_dev", None),
    (Word::Incompat, 0x0010, "meta_bg", Some((2, 6))),
    (Word::Incompat, 0x0040, "extent", Some((2, 6))),
    (Word::Incompat, 0x0080, "64bit", Some((2, 6))),
    (Word::Incompat, 0x0100, "mmp", Some((3, 0))),
    (Word::Incompat, 0x0200, "flex_bg", Some((2, 6))),
    (Word::Incompat, 0x0400, "ea_inode", Some((4, 13))),
    (Word::Incompat, 0x1000, "dirdata", None),
    (Word::Incompat, 0x2000, "metadata_csum_seed", Some((4, 4))),
    (Word::Incompat, 0x4000, "large_dir", Some((4, 13))),
    (Word::Incompat, 0x8000, "inline_data", Some((3, 8))),
    (Word::Incompat, 0x10000, "encrypt", Some((4, 1))),
    (Word::Incompat, 0x20000, "casefold", Some((5, 2))),
    (Word::RoCompat, 0x0001, "sparse_super", Some((2, 2))),
    (Word::RoCompat, 0x0002, "large_file", Some((2, 2))),
    (Word::RoCompat, 0x0004, "btree_dir", Some((2, 2))),
    (Word::RoCompat, 0x0008, "huge_file", Some((2, 6))),
    (Word::RoCompat, 0x0010, "uninit_bg", Some((2, 6))),
    (Word::RoCompat, 0x0020, "dir_nlink", Some((2, 6))),
    (Word::RoCompat, 0x0040, "extra_isize", Some((2, 6))),
    (Word::RoCompat, 0x0080, "snapshot", None),
    (Word::RoCompat, 0x0100, "quota", Some((3, 6))),
    (Word::RoCompat, 0x0200, "bigalloc", Some((3, 2))),
    (Word::RoCompat, 0x0400, "metadata_csum", Some((3, 18))),
    (Word::RoCompat, 0x0800, "replica", None),
    (Word::RoCompat, 0x1000, "read-only", None),
    (Word::RoCompat, 0x2000, "project", Some((4, 5))),
    (Word::RoCompat, 0x4000, "shared_blocks", None),
    (Word::RoCompat, 0x8000, "verity", Some((5, 4))),
    (Word::RoCompat, 0x10000, "orphan_present", Some((5, 15))),
];

/// `(major, minor)` of a kernel release string such as `5.10.0-23-amd64` or `6.1.21-v8+`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn missing(value: u32, word: Word, kernel: (u32, u32), kind: &str, out: &mut Vec<String>) {
    let mut rest = value;
    for &(_, bit, name, since) in FEATURES.iter().filter(|f| f.0 == word) {
        if value & bit == 0 {
            continue;
        }
        rest &= !bit;
        match since {
            Some(v) if v <= kernel => {}
            Some((a, b)) => out.push(format!("{name} (needs Linux {a}.{b})")),
            None => out.push(format!("{name} (no Linux kernel writes it)")),
        }
    }
    for i in 0..32 {
        if rest & (1 << i) != 0 {
            out.push(format!("unknown {kind} feature 0x{:x}", 1u32 << i));
        }
    }
}

/// The features of `f` that stop a kernel of release `(major, minor)` from mounting the
/// filesystem read-write (empty: it can).
pub fn not_mountable(f: ExtFeatures, kernel: (u32, u32)) -> Vec<String> {
    let mut out = Vec::new();
    missing(f.incompat, Word::Incompat, kernel, "incompat", &mut out);
    missing(f.ro_compat, Word::RoCompat, kernel, "ro_compat", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The features of a filesystem: these incompat and ro_compat words (compat does not count).
    fn f(incompat: u32, ro_compat: u32) -> ExtFeatures {
        let compat = 0x3c;
        ExtFeatures {
            compat,
            incompat,
            ro_compat,
        }
    }

    #[test]
    fn what_a_kernel_cannot_mount() {
        for (release, want) in [
            ("5.10.0-23-amd64", Some((5, 10))),
            ("6.1.21-v8+", Some((6, 1))),
            ("4.19", Some((4, 19))),
            ("x", None),
        ] {
            assert_eq!(kernel_version(release), want, "{release}");
        }
        // mkfs.ext4 defaults of e2fsprogs 1.46/1.47: extent 64bit flex_bg filetype
        // metadata_csum huge_file dir_nlink extra_isize sparse_super large_file.
        let today = f(0x2c2, 0x47b);
        assert!(not_mountable(today, (5, 10)).is_empty());
        assert_eq!(
            not_mountable(today, (3, 16)),
            ["metadata_csum (needs Linux 3.18)"]
        );
        let cf = not_mountable(f(0x2c2 | 0x20000, 0x47b), (4, 19));
        assert_eq!(cf, ["casefold (needs Linux 5.2)"]);
        let unknown = not_mountable(f(0x2c2 | 0x8000_0000, 0x47b), (6, 8));
        assert_eq!(unknown, ["unknown incompat feature 0x80000000"]);
        let ro = not_mountable(f(0x2c2, 0x47b | 0x1000), (6, 8));
        assert_eq!(ro, ["read-only (no Linux kernel writes it)"]);
    }
}
