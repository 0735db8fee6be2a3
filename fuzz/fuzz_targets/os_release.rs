#![no_main]
//! Fuzz target: os-release (probe/os.rs, image/verify.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = takeover::probe::os::parse(s, "os-release");
        let _ = takeover::image::verify::parse_os_release_version(s);
    }
});
