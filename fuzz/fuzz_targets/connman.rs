#![no_main]
//! Fuzz target: connman settings and .config (net/connman.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = std::path::Path::new("fuzz");
    let _ = takeover::net::connman::parse_settings(data, p, "wifi_0_1_managed_psk");
    let _ = takeover::net::connman::parse_config(data, p);
});
