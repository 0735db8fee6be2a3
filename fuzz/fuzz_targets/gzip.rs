#![no_main]
//! Fuzz target: the gzip decoder (formats/gzip.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use std::io::Read;
    let mut d = takeover::formats::gzip::GzDecoder::new(data);
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    while let Ok(n) = d.read(&mut buf) {
        if n == 0 || total > 64 << 20 {
            break;
        }
        total += n;
    }
});
