//! takeover: migrate a running Linux device to balenaOS in place.
//!
//! The tree follows the flow of a migration:
//!
//! | step | module |
//! |---|---|
//! | command line, errors, log | [`cli`], [`error`], [`log`] |
//! | stage 1: probe the device, OS, disks | [`probe`] |
//! | stage 1: read config.json | [`config`] |
//! | stage 1: get the image and prove it good | [`api`], [`image`] |
//! | stage 1: networks, hostname, backup | [`net`], [`backup`] |
//! | stage 1: checks, plan, report, RAM root, hand-over of PID 1 | [`stage1`], [`report`] |
//! | stage 2: PID 1 in RAM, stop, unmount, flash, configure, reboot | [`stage2`], [`flash`], [`fat`] |
//! | raw system calls (the one module allowed to call libc directly) | [`sys`] |
#![deny(unsafe_code)]

pub mod api;
pub mod backup;
pub mod cli;
pub mod config;
pub mod error;
pub mod fat;
pub mod files;
pub mod flash;
pub mod image;
#[macro_use]
pub mod log;
pub mod net;
pub mod probe;
pub mod report;
pub mod stage1;
pub mod stage2;
#[allow(unsafe_code)]
pub mod sys;

use std::ffi::OsString;

use crate::error::Result;

/// Runs takeover with the arguments after the program name; returns the exit status.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> u8 {
    let opts = match cli::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("takeover: {e}");
            return e.exit_code();
        }
    };
    if let Err(e) = cli::validate(&opts) {
        // The options parsed, so the mode and --report are known: the report says why.
        eprintln!("takeover: {e}");
        if let Some(path) = &opts.report {
            let mut report = report::Report::new(opts.mode().as_str());
            report.result = "failed".into();
            report.error = Some(e.message());
            if let Err(w) = report.write(path) {
                eprintln!("takeover: {w}");
            }
        }
        return e.exit_code();
    }
    if opts.help {
        print!("{}", cli::help_text());
        return 0;
    }
    if opts.show_version {
        println!("takeover {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    log::set_level(opts.log_level);
    let mut report = report::Report::new(opts.mode().as_str());
    let result = open_log_file(&opts).and_then(|()| stage1::run(&opts, &mut report));
    let code = match &result {
        Ok(()) => {
            report.result = "ok".into();
            report.error = None;
            0
        }
        Err(e) => {
            report.result = "failed".into();
            report.error = Some(e.message());
            error!("{e}");
            e.exit_code()
        }
    };
    if let Some(path) = &opts.report {
        if let Err(e) = report.write(path) {
            error!("{e}");
            return 1;
        }
    }
    code
}

fn open_log_file(opts: &cli::Options) -> Result<()> {
    if let Some(path) = &opts.log_file {
        use crate::error::Context;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .ctx_path("opening log file", path)?;
        log::set_file_level(opts.log_level.max(log::Level::Info));
        log::set_file(f);
    }
    Ok(())
}
