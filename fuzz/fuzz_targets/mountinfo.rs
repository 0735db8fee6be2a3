#![no_main]
//! Fuzz target: /proc/self/mountinfo, swaps, meminfo (probe/mounts.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = takeover::probe::mounts::parse_mountinfo(s, "mountinfo");
        let _ = takeover::probe::mounts::parse_swaps(s);
        let _ = takeover::probe::mounts::parse_meminfo(s);
    }
});
