//! CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as used by gzip and zip.
//!
//! Slicing-by-16: sixteen 256-entry tables (16 KiB) computed once at first use — not stored in
//! the binary, which has a size budget; it takes microseconds. The hot loop folds 16
//! input bytes per step with 16 table look-ups. It is on the image decode path (every byte of
//! the decoded disk image passes through it), so it is written for speed.
#![forbid(unsafe_code)]

const POLY: u32 = 0xEDB8_8320;

type Tables = [[u32; 256]; 16];

/// `tables()[k][b]` is the CRC of byte `b` followed by `k` zero bytes.
fn tables() -> &'static Tables {
    static TABLES: std::sync::OnceLock<Box<Tables>> = std::sync::OnceLock::new();
    TABLES.get_or_init(make_tables)
}

fn make_tables() -> Box<Tables> {
    let mut t = Box::new([[0u32; 256]; 16]);
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 16 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

/// Continues a CRC-32: `crc32(0, data)` is the CRC of `data`; `crc32(crc32(0, a), b)` equals
/// `crc32(0, a ++ b)`.
pub fn crc32(init: u32, data: &[u8]) -> u32 {
    let t = tables();
    let mut c = !init;
    let mut chunks = data.chunks_exact(16);
    for b in &mut chunks {
        let w0 = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        c = t[15][(w0 & 0xff) as usize]
            ^ t[14][((w0 >> 8) & 0xff) as usize]
            ^ t[13][((w0 >> 16) & 0xff) as usize]
            ^ t[12][(w0 >> 24) as usize]
            ^ t[11][b[4] as usize]
            ^ t[10][b[5] as usize]
            ^ t[9][b[6] as usize]
            ^ t[8][b[7] as usize]
            ^ t[7][b[8] as usize]
            ^ t[6][b[9] as usize]
            ^ t[5][b[10] as usize]
            ^ t[4][b[11] as usize]
            ^ t[3][b[12] as usize]
            ^ t[2][b[13] as usize]
            ^ t[1][b[14] as usize]
            ^ t[0][b[15] as usize];
    }
    for &b in chunks.remainder() {
        c = (c >> 8) ^ t[0][((c ^ u32::from(b)) & 0xff) as usize];
    }
    !c
}

/// Streaming CRC-32.
#[derive(Debug, Clone, Copy, Default)]
pub struct Crc32 {
    crc: u32,
}

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32 { crc: 0 }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.crc = crc32(self.crc, data);
    }

    pub fn finish(&self) -> u32 {
        self.crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn known_vectors() {
        assert_eq!(crc32(0, b""), 0);
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32(0, b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn slicing_matches_bitwise_at_every_length_and_split() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 100, 999, 1000] {
            assert_eq!(crc32(0, &data[..len]), bitwise(&data[..len]), "len {len}");
        }
        for split in [0, 1, 7, 16, 500, 999] {
            let mut c = Crc32::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.finish(), bitwise(&data), "split {split}");
        }
    }

    #[test]
    fn throughput() {
        let data = vec![0x5au8; 64 << 20];
        let t = std::time::Instant::now();
        let c = crc32(0, &data);
        let s = t.elapsed().as_secs_f64();
        println!(
            "crc32: {:.2} GB/s (crc {c:08x}; debug builds are slower)",
            data.len() as f64 / s / 1e9
        );
    }
}
