//! The file allocation table, kept in memory (at most a few MiB), with the sectors changed
//! since the last write-back tracked so only those are written to every FAT copy.
#![forbid(unsafe_code)]

use super::bpb::{FatKind, Layout};
use crate::error::{Error, Result};

/// What a FAT entry says about the cluster after this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Free,
    Cluster(u32),
    End,
    Bad,
    /// A value that is no cluster of this volume (1, or beyond the last cluster).
    Invalid(u32),
}

pub struct Table {
    kind: FatKind,
    bytes: Vec<u8>,
    sector: usize,
    dirty: Vec<bool>,
    max_cluster: u32,
    free: u32,
    /// Where the next search for a free cluster starts.
    hint: u32,
}

/// Largest FAT kept in memory: 64 MiB maps 16 Mi clusters (a 64 GiB FAT32 volume with
/// 4 KiB clusters); boot partitions need a few KiB to a few MiB.
pub const MAX_TABLE_BYTES: u64 = 64 << 20;

pub fn damaged(object: impl std::fmt::Display, cause: impl Into<String>) -> Error {
    Error::new("following the FAT cluster chain", object, cause)
        .hint("the FAT filesystem is damaged: run 'fsck.fat' on it, or write the image again")
}

impl Table {
    /// The table from the bytes of one FAT copy (only the part that maps clusters is needed).
    pub fn new(layout: &Layout, bytes: Vec<u8>) -> Table {
        let sector = layout.bytes_per_sector as usize;
        let nsec = bytes.len().div_ceil(sector);
        let mut t = Table {
            kind: layout.kind,
            bytes,
            sector,
            dirty: vec![false; nsec],
            max_cluster: layout.max_cluster(),
            free: 0,
            hint: 2,
        };
        t.free = (2..=t.max_cluster)
            .filter(|&c| t.raw(c) == 0)
            .count()
            .try_into()
            .unwrap_or(u32::MAX);
        t
    }

    /// Bytes of the FAT that map clusters 0 ..= max_cluster.
    pub fn needed_bytes(layout: &Layout) -> u64 {
        let entries = u64::from(layout.max_cluster()) + 1;
        let b = match layout.kind {
            FatKind::Fat12 => (entries * 3).div_ceil(2),
            FatKind::Fat16 => entries * 2,
            FatKind::Fat32 => entries * 4,
        };
        let s = u64::from(layout.bytes_per_sector);
        (b.div_ceil(s) * s).min(layout.fat_bytes)
    }

    pub fn free_count(&self) -> u32 {
        self.free
    }

    pub fn next_free_hint(&self) -> u32 {
        self.hint
    }

    fn raw(&self, c: u32) -> u32 {
        let c = c as usize;
        let b = &self.bytes;
        match self.kind {
            FatKind::Fat12 => {
                let at = c + c / 2;
                let v = u16::from_le_bytes([b[at], b[at + 1]]);
                u32::from(if c & 1 == 1 { v >> 4 } else { v & 0x0FFF })
            }
            FatKind::Fat16 => u32::from(u16::from_le_bytes([b[2 * c], b[2 * c + 1]])),
            FatKind::Fat32 => {
                u32::from_le_bytes([b[4 * c], b[4 * c + 1], b[4 * c + 2], b[4 * c + 3]])
                    & 0x0FFF_FFFF
            }
        }
    }

    fn set_raw(&mut self, c: u32, v: u32) {
        let c = c as usize;
        let (at, len) = match self.kind {
            FatKind::Fat12 => {
                let at = c + c / 2;
                let old = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]);
                let v = v as u16 & 0x0FFF;
                let new = if c & 1 == 1 {
                    (old & 0x000F) | (v << 4)
                } else {
                    (old & 0xF000) | v
                };
                self.bytes[at..at + 2].copy_from_slice(&new.to_le_bytes());
                (at, 2)
            }
            FatKind::Fat16 => {
                self.bytes[2 * c..2 * c + 2].copy_from_slice(&(v as u16).to_le_bytes());
                (2 * c, 2)
            }
            FatKind::Fat32 => {
                let at = 4 * c;
                let old = u32::from_le_bytes([
                    self.bytes[at],
                    self.bytes[at + 1],
                    self.bytes[at + 2],
                    self.bytes[at + 3],
                ]);
                let new = (old & 0xF000_0000) | (v & 0x0FFF_FFFF);
                self.bytes[at..at + 4].copy_from_slice(&new.to_le_bytes());
                (at, 4)
            }
        };
        self.dirty[at / self.sector] = true;
        self.dirty[(at + len - 1) / self.sector] = true;
    }

    /// The entry of cluster `c` (2 ..= max_cluster).
    pub fn next(&self, c: u32) -> Next {
        let v = self.raw(c);
        let (bad, end) = match self.kind {
            FatKind::Fat12 => (0xFF7, 0xFF8),
            FatKind::Fat16 => (0xFFF7, 0xFFF8),
            FatKind::Fat32 => (0x0FFF_FFF7, 0x0FFF_FFF8),
        };
        if v == 0 {
            Next::Free
        } else if v >= end {
            Next::End
        } else if v == bad {
            Next::Bad
        } else if v < 2 || v > self.max_cluster {
            Next::Invalid(v)
        } else {
            Next::Cluster(v)
        }
    }

    fn end_mark(&self) -> u32 {
        match self.kind {
            FatKind::Fat12 => 0xFFF,
            FatKind::Fat16 => 0xFFFF,
            FatKind::Fat32 => 0x0FFF_FFFF,
        }
    }

    /// Sets cluster `c` to point at `next` (`None`: end of chain).
    pub fn link(&mut self, c: u32, next: Option<u32>) {
        let was_free = self.raw(c) == 0;
        let v = next.unwrap_or_else(|| self.end_mark());
        self.set_raw(c, v);
        if was_free {
            self.free = self.free.saturating_sub(1);
        }
    }

    /// Marks cluster `c` free.
    pub fn release(&mut self, c: u32) {
        if self.raw(c) != 0 {
            self.set_raw(c, 0);
            self.free += 1;
            if c < self.hint {
                self.hint = c;
            }
        }
    }

    /// Finds `n` free clusters (without claiming them), searching from the hint and wrapping.
    pub fn find_free(&mut self, n: usize) -> Option<Vec<u32>> {
        if n > self.free as usize {
            return None;
        }
        let mut out = Vec::with_capacity(n);
        let span = self.max_cluster - 1;
        let start = self.hint.clamp(2, self.max_cluster);
        for i in 0..span {
            if out.len() == n {
                break;
            }
            let c = 2 + (start - 2 + i) % span;
            if self.raw(c) == 0 {
                out.push(c);
            }
        }
        if out.len() < n {
            return None;
        }
        if let Some(&last) = out.last() {
            self.hint = if last >= self.max_cluster {
                2
            } else {
                last + 1
            };
        }
        Some(out)
    }

    /// Follows the chain from `first`, returning its clusters. Stops after `limit` clusters
    /// when given (the caller needs no more). A loop, a free or bad cluster inside the chain,
    /// or an out-of-range value is an error naming `object`.
    pub fn chain(&self, first: u32, limit: Option<usize>, object: &str) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        if first == 0 {
            return Ok(out);
        }
        if first < 2 || first > self.max_cluster {
            return Err(damaged(
                object,
                format!("first cluster {first} is outside 2..={}", self.max_cluster),
            ));
        }
        let mut c = first;
        // One bit per cluster: a cluster seen twice is a loop.
        let mut seen = vec![0u64; (self.max_cluster as usize / 64) + 1];
        loop {
            let (w, bit) = (c as usize / 64, 1u64 << (c % 64));
            if seen[w] & bit != 0 {
                return Err(damaged(
                    object,
                    format!("the cluster chain loops at cluster {c}"),
                ));
            }
            seen[w] |= bit;
            out.push(c);
            if limit.is_some_and(|l| out.len() >= l) {
                return Ok(out);
            }
            match self.next(c) {
                Next::End => return Ok(out),
                Next::Cluster(n) => c = n,
                Next::Free => {
                    return Err(damaged(
                        object,
                        format!("cluster {c} in the chain is marked free"),
                    ))
                }
                Next::Bad => {
                    return Err(damaged(
                        object,
                        format!("cluster {c} in the chain is marked bad"),
                    ))
                }
                Next::Invalid(v) => {
                    return Err(damaged(
                        object,
                        format!(
                            "cluster {c} points to {v}, outside 2..={}",
                            self.max_cluster
                        ),
                    ))
                }
            }
        }
    }

    /// Byte ranges (offset within one FAT copy, bytes) of the sectors changed since the last
    /// call, coalesced; clears the marks.
    pub fn take_dirty(&mut self) -> Vec<(usize, &[u8])> {
        let mut runs = Vec::new();
        let mut i = 0;
        let n = self.dirty.len();
        while i < n {
            if !self.dirty[i] {
                i += 1;
                continue;
            }
            let s = i;
            while i < n && self.dirty[i] {
                self.dirty[i] = false;
                i += 1;
            }
            runs.push((s, i));
        }
        let sector = self.sector;
        let bytes = &self.bytes;
        runs.into_iter()
            .map(|(s, e)| {
                let a = s * sector;
                let b = (e * sector).min(bytes.len());
                (a, &bytes[a..b])
            })
            .collect()
    }

    #[cfg(test)]
    pub fn set_for_test(&mut self, c: u32, v: u32) {
        self.set_raw(c, v);
    }

    /// Marks every sector changed again (a write-back failed half way).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.iter_mut().for_each(|d| *d = true);
    }
}
