//! Stage 1: runs as an ordinary root process on the old OS.
//!
//! Flow: options → probe and checks → image (download or given, then verified) → network,
//! hostname and backup prepared → (dry-run: staged and reported, stop) → RAM root prepared →
//! PID 1 handed over to stage 2.
//!
//! Entry points (called by `main.rs`): [`migrate::run`] (`--dry-run`, `--pretend`, a
//! migration), [`write_only::run`], [`download::download_only`]. The payload (networks,
//! config.json, backup) is staged by one function for migrations and `--write-only`
//! ([`payload::stage`]); what stage 2 receives is a [`crate::stage2_plan::Stage2Plan`].
#![forbid(unsafe_code)]

pub mod checks;
pub mod client_bundle;
pub mod download;
pub mod handover;
pub mod leftovers;
pub mod lock;
pub mod migrate;
pub mod payload;
pub mod write_only;

use crate::cli::Options;
use crate::error::Result;

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
