#![no_main]
//! Fuzz target: balena API JSON replies and HTTP headers (api/balena.rs, api/http.rs, image/verify.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let url = "https://api.example/v6/release";
    let _ = takeover::api::balena::parse_releases(data, url);
    let _ = takeover::api::balena::parse_flasher(data, url, "raspberrypi4-64");
    let _ = takeover::api::balena::parse_device_type_id(data, url, "raspberrypi4-64");
    let _ = takeover::image::verify::parse_device_type(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = takeover::api::http::parse_headers(s, false);
    }
});
