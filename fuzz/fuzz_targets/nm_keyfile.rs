#![no_main]
//! Fuzz target: NetworkManager keyfile (net/keyfile.rs, net/nm.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = takeover::net::keyfile::KeyFile::parse(data, "fuzz.nmconnection");
    let _ = takeover::net::nm::parse(data, std::path::Path::new("fuzz.nmconnection"));
});
