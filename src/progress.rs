//! Progress of the long steps (image verification, the write, the read-back), like
//! `dd status=progress`: done and total in MiB, percent, rate in MB/s (10^6 bytes per second,
//! as docs/PERFORMANCE.md measures), and the time left.
//!
//! On a terminal (the console is stderr and stderr is a tty) one line is redrawn in place
//! about twice a second and ended with a newline; the log file gets a line every
//! [`LOG_EVERY`]. Anywhere else (a log, the serial console of stage 2, a pipe) a log line
//! every [`LOG_EVERY`]. [`Meter::finish`] always logs one closing line.
//!
//! The arithmetic and the timing decisions take the elapsed time as an argument
//! ([`line`], [`Meter::tick`]), so they are tested with an injected clock.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Between log lines (not a terminal, and the log file on a terminal).
pub const LOG_EVERY: Duration = Duration::from_secs(5);
/// Between redraws of the line on a terminal.
pub const DRAW_EVERY: Duration = Duration::from_millis(500);

const MIB: f64 = (1u64 << 20) as f64;

/// `1318.0 MiB`-style size (one decimal), the unit of every size in progress lines.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

/// `0:05`, `12:34`, `1:02:03`.
pub fn clock_text(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// Rate in MB/s (10^6 bytes per second); 0 before any time has passed.
pub fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 {
        bytes as f64 / 1e6 / s
    } else {
        0.0
    }
}

/// One progress line: `923.4 of 1318.0 MiB (70%), 85.3 MB/s, 0:05 left`; without a total
/// `923.4 MiB, 85.3 MB/s`. The rate is the average since the start.
pub fn line(done: u64, total: Option<u64>, elapsed: Duration) -> String {
    line_since(done, total, done, elapsed)
}

/// [`line`] for a step that began with `done - session` bytes already there (a resumed
/// download): the rate and the time left count the `session` bytes of `elapsed` only.
pub fn line_since(done: u64, total: Option<u64>, session: u64, elapsed: Duration) -> String {
    let rate = mb_per_s(session, elapsed);
    let mut s = match total.filter(|t| *t > 0) {
        Some(t) => format!(
            "{:.1} of {} ({}%)",
            done as f64 / MIB,
            mib(t),
            done.min(t) * 100 / t
        ),
        None => mib(done),
    };
    s.push_str(&format!(", {rate:.1} MB/s"));
    if let Some(t) = total {
        if t > done && session > 0 {
            // At the average rate so far.
            let left = (t - done) as f64 * elapsed.as_secs_f64() / session as f64;
            s.push_str(&format!(", {} left", clock_text(left.round() as u64)));
        }
    }
    s
}

/// The closing line: `1318.0 MiB in 15.2 s (86.7 MB/s)` (`in 2:05` from a minute on).
pub fn done_line(done: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let took = if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        clock_text(secs.round() as u64)
    };
    format!(
        "{} in {took} ({:.1} MB/s)",
        mib(done),
        mb_per_s(done, elapsed)
    )
}

/// What a [`Meter::tick`] asks to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    /// Redraw the terminal line.
    Draw(String),
    /// A log line (on a terminal: into the log file only).
    Log(String),
}

/// The progress of one step (`what`: "verifying", "writing", "reading back").
pub struct Meter {
    what: &'static str,
    total: Option<u64>,
    start: Instant,
    tty: bool,
    last_draw: Option<Duration>,
    last_log: Duration,
    drew: bool,
}

impl Meter {
    /// Starts now; in place on a terminal when the console is stderr and a tty.
    pub fn new(what: &'static str, total: Option<u64>) -> Meter {
        let tty = crate::log::console_is_stderr() && std::io::stderr().is_terminal();
        Meter::with(what, total, tty)
    }

    /// As [`Meter::new`], the terminal decision given.
    pub fn with(what: &'static str, total: Option<u64>, tty: bool) -> Meter {
        Meter {
            what,
            total,
            start: Instant::now(),
            tty,
            last_draw: None,
            last_log: Duration::ZERO,
            drew: false,
        }
    }

    pub fn set_total(&mut self, total: Option<u64>) {
        self.total = total;
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// `done` bytes so far, `now` after the start: what to show, if anything. Pure: the
    /// caller's clock decides.
    pub fn tick(&mut self, done: u64, now: Duration) -> Vec<Show> {
        let mut out = Vec::new();
        let draw_due = match self.last_draw {
            None => true,
            Some(t) => now >= t + DRAW_EVERY,
        };
        if self.tty && draw_due {
            self.last_draw = Some(now);
            out.push(Show::Draw(line(done, self.total, now)));
        }
        if now >= self.last_log + LOG_EVERY {
            self.last_log = now;
            out.push(Show::Log(line(done, self.total, now)));
        }
        out
    }

    /// `done` bytes so far (cheap when nothing is due: one clock read).
    pub fn update(&mut self, done: u64) {
        let now = self.start.elapsed();
        for s in self.tick(done, now) {
            self.show(s);
        }
    }

    fn show(&mut self, s: Show) {
        match s {
            Show::Draw(l) => {
                let _ = write!(std::io::stderr(), "\r\x1b[K{}: {l}", self.what);
                self.drew = true;
            }
            Show::Log(l) if self.tty => {
                crate::log::file_only(crate::log::Level::Info, format_args!("{}: {l}", self.what))
            }
            Show::Log(l) => crate::info!("{}: {l}", self.what),
        }
    }

    /// The step ended with `done` bytes: the terminal line is ended and one line logged.
    pub fn finish(&mut self, done: u64) {
        let now = self.start.elapsed();
        if self.drew {
            let _ = writeln!(
                std::io::stderr(),
                "\r\x1b[K{}: {}",
                self.what,
                line(done, self.total, now)
            );
            self.drew = false;
        }
        crate::info!("{}: {}", self.what, done_line(done, now));
    }
}

impl Drop for Meter {
    /// A step that failed leaves no half-drawn line for the error message to follow.
    fn drop(&mut self) {
        if self.drew {
            let _ = writeln!(std::io::stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn lines_give_mib_percent_rate_and_time_left() {
        // 100 MiB of 400 MiB in 2 s: 52.4 MB/s, 300 MiB left = 6.0 s.
        let l = line(100 << 20, Some(400 << 20), S(2));
        assert_eq!(l, "100.0 of 400.0 MiB (25%), 52.4 MB/s, 0:06 left");
        assert_eq!(
            line(0, Some(10 << 20), Duration::ZERO),
            "0.0 of 10.0 MiB (0%), 0.0 MB/s"
        );
        assert_eq!(line(3 << 20, None, S(1)), "3.0 MiB, 3.1 MB/s");
        // Done (or past the total): 100%, no time left shown.
        assert_eq!(
            line(10 << 20, Some(10 << 20), S(1)),
            "10.0 of 10.0 MiB (100%), 10.5 MB/s"
        );
        assert_eq!(clock_text(3725), "1:02:05");
        assert_eq!(clock_text(65), "1:05");
        assert_eq!(
            done_line(1 << 30, S(10)),
            "1024.0 MiB in 10.0 s (107.4 MB/s)"
        );
        assert_eq!(done_line(1 << 30, S(125)), "1024.0 MiB in 2:05 (8.6 MB/s)");
    }

    #[test]
    fn not_a_terminal_logs_every_five_seconds_only() {
        let mut m = Meter::with("writing", Some(100 << 20), false);
        let mut logged = Vec::new();
        for tenth in 0..=130u64 {
            let now = Duration::from_millis(tenth * 100);
            for s in m.tick(tenth << 20, now) {
                match s {
                    Show::Log(l) => logged.push((tenth, l)),
                    Show::Draw(_) => panic!("no drawing off a terminal"),
                }
            }
        }
        let at: Vec<u64> = logged.iter().map(|(t, _)| *t).collect();
        assert_eq!(at, [50, 100]);
        assert_eq!(logged[0].1, "50.0 of 100.0 MiB (50%), 10.5 MB/s, 0:05 left");
    }

    #[test]
    fn a_terminal_redraws_twice_a_second_and_logs_every_five() {
        let mut m = Meter::with("reading back", None, true);
        let (mut draws, mut logs) = (0, 0);
        for tenth in 0..=100u64 {
            for s in m.tick(tenth, Duration::from_millis(tenth * 100)) {
                match s {
                    Show::Draw(_) => draws += 1,
                    Show::Log(_) => logs += 1,
                }
            }
        }
        // At 0, 0.5, ..., 10 s: 21 redraws; logs at 5 and 10 s.
        assert_eq!((draws, logs), (21, 2));
    }
}
