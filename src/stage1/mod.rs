//! Stage 1: runs as an ordinary root process on the old OS.
//!
//! Flow: options → probe and checks → image (download or given, then verified) → network,
//! hostname and backup prepared → (dry-run: staged and reported, stop) → RAM root prepared →
//! PID 1 handed over to stage 2.
#![forbid(unsafe_code)]

pub mod checks;
pub mod download;
pub mod handover;
pub mod migrate;
pub mod write_only;

use crate::cli::{Mode, Options};
use crate::error::Result;
use crate::report::Report;

/// Runs the mode the options ask for, filling `report` as it goes.
pub fn run(opts: &Options, report: &mut Report) -> Result<()> {
    match opts.mode() {
        Mode::DryRun | Mode::Pretend | Mode::Migrate => migrate::run(opts, report),
        Mode::DownloadOnly => download::download_only(opts, report).map(|_| ()),
        Mode::WriteOnly => write_only::run(opts, report),
        Mode::Stage2Worker => crate::stage2::worker::run(),
    }
    .inspect_err(|e| report.error = Some(e.message()))
}
