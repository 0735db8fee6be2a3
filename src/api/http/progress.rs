//! Download progress: a live line on a terminal, else a log line every 5 seconds.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How a download shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A live line on a terminal (percent, rate, time left), else a log line every 5 seconds.
    Auto,
    /// Log lines every 5 seconds only.
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

/// One progress line, in the units of every progress line ([`crate::progress`]):
/// `412.0 of 1228.8 MiB (33%), 5.3 MB/s, 2:40 left`. `session` bytes were received in
/// `elapsed` (the rest came from a resumed file).
pub fn progress_line(done: u64, total: Option<u64>, session: u64, elapsed: Duration) -> String {
    crate::progress::line_since(done, total, session, elapsed)
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
            (_, true) => crate::progress::DRAW_EVERY,
            (_, false) => crate::progress::LOG_EVERY,
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
