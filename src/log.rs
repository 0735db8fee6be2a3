//! The one logger: levels, console, an optional log file, timestamps, and redaction.
//!
//! Use the crate macros `error!`, `warn!`, `info!`, `debug!`, `trace!`. Every line goes through
//! [`redact`] before it reaches any sink, so a secret registered with [`add_secret`] (config.json
//! `apiKey`, `deviceApiKey`, wifi PSKs) never reaches the console, the log file or a report.
//!
//! Sinks: the console (stderr, or `/dev/console` in stage 2), a file (`--log-file`, or the
//! stage 2 log), and a memory buffer that keeps every line until a file sink exists, so the
//! start of stage 2 is not lost when the log device is mounted later.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    pub const NAMES: &'static str = "error, warn, info, debug, trace";

    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            _ => Level::Trace,
        }
    }
}

type Sink = Box<dyn Write + Send>;

struct Logger {
    console_level: AtomicU8,
    file_level: AtomicU8,
    warnings: AtomicUsize,
    errors: AtomicUsize,
    secrets: Mutex<Vec<String>>,
    /// `None` means stderr.
    console: Mutex<Option<Sink>>,
    file: Mutex<Option<Sink>>,
    /// Lines kept while no file sink exists (bounded), replayed into the first file sink.
    pending: Mutex<Vec<String>>,
    capture: Mutex<Option<Vec<String>>>,
}

static LOGGER: Logger = Logger {
    console_level: AtomicU8::new(Level::Info as u8),
    file_level: AtomicU8::new(Level::Debug as u8),
    warnings: AtomicUsize::new(0),
    errors: AtomicUsize::new(0),
    secrets: Mutex::new(Vec::new()),
    console: Mutex::new(None),
    file: Mutex::new(None),
    pending: Mutex::new(Vec::new()),
    capture: Mutex::new(None),
};

/// Most lines kept in memory before a file sink exists.
const PENDING_MAX: usize = 10_000;

/// A poisoned lock only means another thread panicked while logging; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn set_level(level: Level) {
    LOGGER.console_level.store(level as u8, Ordering::Relaxed);
}

pub fn level() -> Level {
    Level::from_u8(LOGGER.console_level.load(Ordering::Relaxed))
}

/// Level for the file sink (at least as verbose as the console).
pub fn set_file_level(level: Level) {
    LOGGER.file_level.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LOGGER.console_level.load(Ordering::Relaxed)
        || level as u8 <= LOGGER.file_level.load(Ordering::Relaxed)
}

/// Registers a secret: from now on it is replaced by `<redacted>` in every line.
/// Strings shorter than 4 bytes are not registered (they would mangle ordinary text).
pub fn add_secret(secret: &str) {
    let s = secret.trim();
    if s.len() < 4 {
        return;
    }
    let mut v = lock(&LOGGER.secrets);
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
        // Longest first, so a secret containing another is replaced whole.
        v.sort_by_key(|x| std::cmp::Reverse(x.len()));
    }
}

/// Replaces every registered secret in `text`.
pub fn redact(text: &str) -> String {
    let secrets = lock(&LOGGER.secrets);
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "<redacted>");
        }
    }
    out
}

/// Sends console output somewhere other than stderr (stage 2: `/dev/console`).
pub fn set_console(sink: Sink) {
    *lock(&LOGGER.console) = Some(sink);
}

/// True while console output goes to stderr (not redirected with [`set_console`]).
pub fn console_is_stderr() -> bool {
    lock(&LOGGER.console).is_none()
}

/// Adds the file sink; lines logged before it are written first.
pub fn set_file(file: File) {
    set_file_sink(Box::new(file));
}

pub fn set_file_sink(mut sink: Sink) {
    let pending = std::mem::take(&mut *lock(&LOGGER.pending));
    for line in pending {
        let _ = sink.write_all(line.as_bytes());
    }
    let _ = sink.flush();
    *lock(&LOGGER.file) = Some(sink);
}

/// Removes the file sink (before the device holding it is unmounted) and returns to buffering.
pub fn close_file() {
    if let Some(mut f) = lock(&LOGGER.file).take() {
        let _ = f.flush();
    }
}

/// Everything logged so far that no file sink has taken (for writing a log somewhere late).
pub fn pending_lines() -> Vec<String> {
    lock(&LOGGER.pending).clone()
}

/// Counts of warnings and errors logged so far.
pub fn counts() -> (usize, usize) {
    (
        LOGGER.warnings.load(Ordering::Relaxed),
        LOGGER.errors.load(Ordering::Relaxed),
    )
}

/// Test aid: keeps every formatted line (after redaction) until [`capture_take`].
pub fn capture_start() {
    *lock(&LOGGER.capture) = Some(Vec::new());
}

pub fn capture_take() -> Vec<String> {
    lock(&LOGGER.capture).take().unwrap_or_default()
}

/// `2026-11-30T04:41:16Z` from the system clock, without a date crate.
pub fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

/// Formats seconds since the epoch as an ISO 8601 UTC time.
pub fn format_utc(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[doc(hidden)]
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    match level {
        Level::Error => LOGGER.errors.fetch_add(1, Ordering::Relaxed),
        Level::Warn => LOGGER.warnings.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
    if !enabled(level) {
        return;
    }
    let msg = redact(&args.to_string());
    let line = format!("{} {:<5} {}\n", timestamp(), level.as_str(), msg);
    if let Some(c) = lock(&LOGGER.capture).as_mut() {
        c.push(line.clone());
    }
    if level as u8 <= LOGGER.console_level.load(Ordering::Relaxed) {
        let mut console = lock(&LOGGER.console);
        match console.as_mut() {
            Some(sink) => {
                let _ = sink.write_all(line.as_bytes());
                let _ = sink.flush();
            }
            None => {
                let _ = std::io::stderr()
                    .write_all(format!("{:<5} {}\n", level.as_str(), msg).as_bytes());
            }
        }
    }
    if level as u8 <= LOGGER.file_level.load(Ordering::Relaxed) {
        to_file(line);
    }
}

/// Into the file sink, or the pending buffer until there is one.
fn to_file(line: String) {
    let mut file = lock(&LOGGER.file);
    match file.as_mut() {
        Some(sink) => {
            let _ = sink.write_all(line.as_bytes());
            let _ = sink.flush();
        }
        None => {
            let mut p = lock(&LOGGER.pending);
            if p.len() < PENDING_MAX {
                p.push(line);
            }
        }
    }
}

/// A line for the file sink (or the pending buffer) only, not the console: progress shown on
/// a terminal in place is logged this way.
pub fn file_only(level: Level, args: fmt::Arguments<'_>) {
    if level as u8 > LOGGER.file_level.load(Ordering::Relaxed) {
        return;
    }
    let msg = redact(&args.to_string());
    to_file(format!("{} {:<5} {}\n", timestamp(), level.as_str(), msg));
}

#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Error, format_args!($($t)*)) } }
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warn, format_args!($($t)*)) } }
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Info, format_args!($($t)*)) } }
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Debug, format_args!($($t)*)) } }
#[macro_export]
macro_rules! trace { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Trace, format_args!($($t)*)) } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse() {
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse("warn"), Some(Level::Warn));
        assert_eq!(Level::parse("loud"), None);
        assert!(Level::Error < Level::Trace);
    }

    #[test]
    fn utc_format() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_796_013_676), "2026-11-30T04:41:16Z");
    }

    #[test]
    fn secrets_are_redacted_in_every_line() {
        add_secret("s3cr3t-api-key-0123456789");
        add_secret("abc"); // too short: ignored
        capture_start();
        crate::info!("config has apiKey s3cr3t-api-key-0123456789 and abc");
        crate::error!("key={}", "s3cr3t-api-key-0123456789");
        let lines = capture_take();
        // Other tests may log concurrently: look only at ours.
        let ours: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("apiKey") || l.contains("key="))
            .collect();
        assert_eq!(ours.len(), 2, "{lines:?}");
        for l in ours {
            assert!(!l.contains("s3cr3t"), "{l}");
            assert!(l.contains("<redacted>"), "{l}");
        }
        assert!(redact("abc").contains("abc"));
    }
}
