//! Stage 1: runs as an ordinary root process on the old OS.
//!
//! Flow: options → probe and checks → image (download or given, then verified) → network,
//! hostname and backup prepared → (dry-run: staged and reported, stop) → RAM root prepared →
//! PID 1 handed over to stage 2.
#![forbid(unsafe_code)]

pub mod download;

use crate::cli::{Mode, Options};
use crate::error::{Error, Result};
use crate::report::Report;

/// Runs the mode the options ask for, filling `report` as it goes.
pub fn run(opts: &Options, report: &mut Report) -> Result<()> {
    match opts.mode() {
        Mode::DryRun => Err(Error::not_implemented("--dry-run", "the dry-run plan")),
        Mode::DownloadOnly => Err(Error::not_implemented(
            "--download-only",
            "downloading images",
        )),
        Mode::WriteOnly => Err(Error::not_implemented("--write-only", "writing images")),
        Mode::Pretend => Err(Error::not_implemented("--pretend", "the takeover")),
        Mode::Migrate => Err(Error::not_implemented("migration", "the takeover")),
        Mode::Stage2Worker => Err(Error::not_implemented("--stage2", "the stage 2 worker")),
    }
    .inspect_err(|e| report.error = Some(e.message()))
}
