#![no_main]
//! Fuzz target: the zip directory reader and stored/deflate entry (formats/zip.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = std::io::Cursor::new(data);
    let _ = takeover::formats::zip::entries(&mut c);
});
