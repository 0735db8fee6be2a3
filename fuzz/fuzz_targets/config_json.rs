#![no_main]
//! Fuzz target: config.json (config.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = takeover::config::ConfigJson::parse(data, std::path::Path::new("fuzz/config.json"));
});
