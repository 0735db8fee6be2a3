//! Stage 1: runs as an ordinary root process on the old OS.
//!
//! Flow: options → probe and checks → image (download or given, then verified) → network,
//! hostname and backup prepared → (dry-run: staged and reported, stop) → RAM root prepared →
//! PID 1 handed over to stage 2.
#![forbid(unsafe_code)]

pub mod checks;
pub mod client_bundle;
pub mod download;
pub mod handover;
pub mod leftovers;
pub mod lock;
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
        Mode::Stage2Worker => crate::stage2::worker::run(opts.stage2_failed),
    }
    .inspect_err(|e| report.error = Some(e.message()))
}

/// The device type the image must have been built for: `--change-dt-to`, else config.json's
/// `deviceType`; `None` with `--no-dt-check`.
pub fn image_device_type(
    opts: &Options,
    config: &crate::config::ConfigJson,
) -> Result<Option<String>> {
    if opts.no_dt_check {
        return Ok(None);
    }
    match &opts.change_dt_to {
        Some(dt) => Ok(Some(dt.clone())),
        None => config.device_type().map(|d| Some(d.to_string())),
    }
}
