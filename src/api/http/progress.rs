//! Download progress: a live line on a terminal, else a log line every 10 seconds.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How a download shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A live line on a terminal (percent, rate, ETA), else a log line every 10 seconds.
    Auto,
    /// Log lines every 10 seconds only.
    Log,
    Quiet,
}

/// `1.5 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

pub(super) fn duration_text(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs / 60 % 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// One progress line: `412.0 MiB of 1.2 GiB (33%), 5.1 MiB/s, ETA 2m40s`. `session` bytes were
/// received in `elapsed` (the rest came from a resumed file).
pub fn progress_line(done: u64, total: Option<u64>, session: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        session as f64 / secs
    } else {
        0.0
    };
    let mut s = human(done);
    if let Some(t) = total.filter(|t| *t > 0) {
        let pct = (done.min(t) as f64 * 100.0 / t as f64).floor();
        s.push_str(&format!(" of {} ({pct:.0}%)", human(t)));
    }
    s.push_str(&format!(", {}/s", human(rate as u64)));
    if let Some(t) = total {
        if rate >= 1.0 && t > done {
            s.push_str(&format!(
                ", ETA {}",
                duration_text(((t - done) as f64 / rate) as u64)
            ));
        }
    }
    s
}

/// Progress display for one download attempt.
pub(super) struct Meter {
    mode: Progress,
    tty: bool,
    start: Instant,
    last: Instant,
    offset: u64,
    drew: bool,
}

impl Meter {
    pub(super) fn new(mode: Progress, offset: u64) -> Meter {
        let now = Instant::now();
        Meter {
            mode,
            tty: mode == Progress::Auto && std::io::stderr().is_terminal(),
            start: now,
            last: now,
            offset,
            drew: false,
        }
    }

    pub(super) fn update(&mut self, size: u64, total: Option<u64>) {
        let now = Instant::now();
        let every = match (self.mode, self.tty) {
            (Progress::Quiet, _) => return,
            (_, true) => Duration::from_millis(500),
            (_, false) => Duration::from_secs(10),
        };
        if now.duration_since(self.last) < every {
            return;
        }
        self.last = now;
        let line = progress_line(
            size,
            total,
            size.saturating_sub(self.offset),
            now.duration_since(self.start),
        );
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
            self.drew = true;
        } else {
            crate::info!("downloading: {line}");
        }
    }

    pub(super) fn finish(&mut self, size: u64, total: Option<u64>) {
        if self.mode == Progress::Quiet {
            return;
        }
        if self.drew {
            let _ = writeln!(std::io::stderr());
        }
        let line = progress_line(
            size,
            total,
            size.saturating_sub(self.offset),
            self.start.elapsed(),
        );
        crate::info!("download attempt ended: {line}");
    }
}
