#![no_main]
//! Fuzz target: balenaOS version strings and ranges (api/version.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = takeover::api::version::Version::parse(s);
        let _ = takeover::api::version::Request::parse(s);
        let list: Vec<String> = s.split(",").map(str::to_string).collect();
        let _ = takeover::api::version::parse_list(&list);
    }
});
