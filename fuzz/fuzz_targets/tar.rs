#![no_main]
//! Fuzz target: tar reader (formats/tar.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = takeover::formats::tar::Reader::new(data);
    for _ in 0..256 {
        match r.next() {
            Some(Ok(_)) => {
                let _ = r.read_data(&mut std::io::sink());
            }
            _ => break,
        }
    }
});
