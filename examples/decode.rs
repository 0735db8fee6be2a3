//! Decode an image to nowhere and print the throughput: the CPU limit of the flash pipeline
//! (`make bench` uses it). Same decoder as `--write-only`: `image::source::open_image`.
//!
//!   decode IMAGE [BUFFER_BYTES]
//!
//! Prints one line: `decoded <bytes> bytes in <secs> s: <MB/s> MB/s` (MB = 10^6 bytes).
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: decode IMAGE [BUFFER_BYTES]");
        return ExitCode::from(2);
    };
    let buf_size = match args.next().map(|a| a.to_string_lossy().parse::<usize>()) {
        None => 1 << 20,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("decode: BUFFER_BYTES must be a positive integer");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let mut reader = match takeover::image::source::open_image(&path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("decode: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut buf = vec![0u8; buf_size];
    let mut total: u64 = 0;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => {
                eprintln!("decode: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "decoded {total} bytes in {secs:.3} s: {:.0} MB/s",
        total as f64 / 1e6 / secs.max(1e-9)
    );
    ExitCode::SUCCESS
}
