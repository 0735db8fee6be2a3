#![no_main]
//! Fuzz target: backup YAML (backup/config.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = takeover::backup::config::parse(s, "fuzz.yml");
    }
});
