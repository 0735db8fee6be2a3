#![no_main]
//! Fuzz target: filesystem label probe and ext4 reader (formats/fslabel.rs, formats/ext4.rs)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = takeover::formats::fslabel::probe(data);
    let c = std::io::Cursor::new(data);
    if let Ok(mut fs) = takeover::formats::ext4::Ext4::open(c, 0, data.len() as u64) {
        if let Ok(ino) = fs.lookup("/etc/os-release") {
            if ino.is_file() {
                if let Ok(mut r) = fs.open_file(&ino) {
                    let mut out = Vec::new();
                    let _ = std::io::Read::read_to_end(
                        &mut std::io::Read::take(&mut r, 1 << 20),
                        &mut out,
                    );
                }
            }
        }
    }
});
