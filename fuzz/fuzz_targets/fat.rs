#![no_main]
//! Fuzz target: FAT reader: boot sector, directories, files (fat/)
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let c = std::io::Cursor::new(data.to_vec());
    let Ok(s) = takeover::fat::Slice::new(c, 0, len) else {
        return;
    };
    let Ok(mut fat) = takeover::fat::Fat::open(s) else {
        return;
    };
    let _ = fat.label();
    if let Ok(list) = fat.list_dir("/") {
        for e in list.iter().take(16) {
            let _ = fat.read_file(&format!("/{}", e.name), 1 << 20);
        }
    }
    let _ = fat.read_file("/device-type.json", 1 << 20);
});
