//! Decode an image to nowhere and print the throughput: the CPU limit of the flash pipeline
//! (`make bench` uses it). Same decoder as `--write-only`: `image::source::open_image`.
//!
//!   decode IMAGE [BUFFER_BYTES]
//!   decode IMAGE --flash-to FILE [BUFFERS [BUFFER_BYTES]]
//!                                  the flash step alone (`flash::flash`, verified) onto an
//!                                  existing regular FILE the caller created (never a device),
//!                                  with a ring of BUFFERS buffers of BUFFER_BYTES (default:
//!                                  `FlashOptions::default()`)
//!
//! Prints one line: `decoded <bytes> bytes in <secs> s: <MB/s> MB/s` (MB = 10^6 bytes), or for
//! --flash-to `flashed <bytes> bytes in <secs> s: write <MB/s> MB/s, read-back <secs> s (...)`
//! with the seconds each thread of the pipeline waited for the other and spent in writes.
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
    let arg = args.next();
    if arg.as_deref() == Some(std::ffi::OsStr::new("--flash-to")) {
        let Some(to) = args.next().map(PathBuf::from) else {
            eprintln!("usage: decode IMAGE --flash-to FILE");
            return ExitCode::from(2);
        };
        let mut o = takeover::flash::FlashOptions::default();
        let nums: Vec<Option<usize>> = args.map(|a| a.to_string_lossy().parse().ok()).collect();
        match nums.as_slice() {
            [] => {}
            [Some(n)] => o.buffers = *n,
            [Some(n), Some(b)] => (o.buffers, o.buffer_size) = (*n, *b),
            _ => {
                eprintln!("usage: decode IMAGE --flash-to FILE [BUFFERS [BUFFER_BYTES]]");
                return ExitCode::from(2);
            }
        }
        return flash_to(&path, &to, &o);
    }
    let buf_size = match arg.map(|a| a.to_string_lossy().parse::<usize>()) {
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

fn flash_to(
    path: &std::path::Path,
    to: &std::path::Path,
    o: &takeover::flash::FlashOptions,
) -> ExitCode {
    if !std::fs::metadata(to).map(|m| m.is_file()).unwrap_or(false) {
        eprintln!("decode: --flash-to needs an existing regular file");
        return ExitCode::from(2);
    }
    let start = Instant::now();
    let run = || -> takeover::error::Result<takeover::flash::FlashStats> {
        let reader = takeover::image::source::open_image(path)?;
        takeover::flash::flash(reader, to, o, &mut |_| {})
    };
    match run() {
        Ok(st) => {
            println!(
                "flashed {} bytes in {:.3} s: write {:.0} MB/s, read-back {:.3} s \
                 (decoder waited {:.2} s, writer waited {:.2} s, writes {:.2} s)",
                st.bytes,
                start.elapsed().as_secs_f64(),
                st.write_mb_per_s(),
                st.verify_secs.unwrap_or(0.0),
                st.decoder_wait_secs,
                st.writer_wait_secs,
                st.write_call_secs
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("decode: {e}");
            ExitCode::FAILURE
        }
    }
}
