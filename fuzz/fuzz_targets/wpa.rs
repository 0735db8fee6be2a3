#![no_main]
//! Fuzz target: wpa_supplicant.conf (net/wpa.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = takeover::net::wpa::parse(data, std::path::Path::new("wpa_supplicant.conf"));
});
