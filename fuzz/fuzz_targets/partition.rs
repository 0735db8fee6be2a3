#![no_main]
//! Fuzz target: MBR/GPT partition table reader (formats/partition.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = std::io::Cursor::new(data);
    let _ = takeover::formats::partition::read_table(&mut c);
});
