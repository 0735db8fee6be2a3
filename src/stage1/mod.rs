//! Stage 1: runs as an ordinary root process on the old OS.
//!
//! Flow: options → probe and checks → image (download or given, then verified) → network,
//! hostname and backup prepared → (dry-run: staged and reported, stop) → RAM root prepared →
//! PID 1 handed over to stage 2.
#![forbid(unsafe_code)]

pub mod checks;
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
    not_yet(opts).inspect_err(|e| report.error = Some(e.message()))?;
    match opts.mode() {
        Mode::DryRun | Mode::Pretend | Mode::Migrate => migrate::run(opts, report),
        Mode::DownloadOnly => download::download_only(opts, report).map(|_| ()),
        Mode::WriteOnly => write_only::run(opts, report),
        Mode::Stage2Worker => crate::stage2::worker::run(),
    }
    .inspect_err(|e| report.error = Some(e.message()))
}

/// Features that parse but are not built yet: refused up front, before anything is done.
fn not_yet(opts: &Options) -> Result<()> {
    let takes_over = matches!(opts.mode(), Mode::Migrate | Mode::Pretend);
    if opts.report_hup_progress && takes_over {
        return Err(crate::error::Error::not_implemented(
            "--report-hup-progress",
            "reporting progress to the balena API from stage 2",
        ));
    }
    if let (Some(_), Some(path), true) = (&opts.change_dt_to, &opts.config, takes_over) {
        let cfg = crate::config::ConfigJson::load(path)?;
        if cfg.uuid()?.is_some_and(|u| !u.is_empty()) {
            return Err(crate::error::Error::not_implemented(
                "--change-dt-to",
                "changing the device type of an already registered device (config.json has a uuid) in the API",
            )
            .hint(
                "use the fleet's config.json without a uuid (the device registers with the new type), \
                 or change the device type in the dashboard after the migration",
            ));
        }
    }
    Ok(())
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
