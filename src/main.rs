//! The `takeover` command: PID 1 of stage 2, or an ordinary command that runs one mode.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::process::ExitCode;

use takeover::cli::{self, Mode, Options};
use takeover::error::{Context, Result};
use takeover::report::Report;
use takeover::{log, stage1, stage2, stage2_plan};

fn main() -> ExitCode {
    // As PID 1 this binary is stage 2 init (stage 1 bind-mounted it over the old init, which
    // re-executed itself). Arguments are those of the old init and are ignored. Without a
    // stage 2 plan (e.g. as a container's entry point) it is an ordinary command.
    if std::process::id() == 1 && stage2_plan::plan_present() {
        if !stage2_plan::handover_requested() {
            // Leftovers of an interrupted stage 1 and an unrelated re-exec of init: not ours.
            stage2::init::hand_back();
        }
        stage2::init::run();
    }
    std::panic::set_hook(Box::new(|info| {
        // Built with panic = "abort": say what happened before the process ends.
        takeover::error!("internal error (please report this): {info}");
    }));
    ExitCode::from(run(std::env::args_os().skip(1)))
}

/// Runs takeover with the arguments after the program name; returns the exit status.
fn run(args: impl IntoIterator<Item = OsString>) -> u8 {
    let opts = match cli::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("takeover: {e}");
            return e.exit_code();
        }
    };
    if let Err(e) = cli::validate(&opts) {
        eprintln!("takeover: {e}");
        usage_error_report(&opts, &e);
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
    let mut report = Report::new(opts.mode().as_str());
    let result = open_log_file(&opts).and_then(|()| run_mode(&opts, &mut report));
    let code = match &result {
        Ok(()) => {
            report.result = "ok".into();
            report.error = None;
            0
        }
        Err(e) => {
            report.result = "failed".into();
            report.error = Some(e.message());
            takeover::error!("{e}");
            e.exit_code()
        }
    };
    if let Some(path) = &opts.report {
        if let Err(e) = report.write(path) {
            takeover::error!("{e}");
            return 1;
        }
    }
    code
}

/// The options parsed, so the mode and --report are known: the report says why the run stopped.
fn usage_error_report(opts: &Options, e: &takeover::error::Error) {
    if let Some(path) = &opts.report {
        let mut report = Report::new(opts.mode().as_str());
        report.result = "failed".into();
        report.error = Some(e.message());
        if let Err(w) = report.write(path) {
            eprintln!("takeover: {w}");
        }
    }
}

/// Each mode's entry point; `report` is filled as the mode goes.
fn run_mode(opts: &Options, report: &mut Report) -> Result<()> {
    match opts.mode() {
        Mode::DryRun | Mode::Pretend | Mode::Migrate => stage1::migrate::run(opts, report),
        Mode::DownloadOnly => stage1::download::download_only(opts, report).map(|_| ()),
        Mode::WriteOnly => stage1::write_only::run(opts, report),
        // Started by stage 2's PID 1 inside the RAM root.
        Mode::Stage2Worker => stage2::worker::run(opts.stage2_failed),
    }
}

fn open_log_file(opts: &Options) -> Result<()> {
    if let Some(path) = &opts.log_file {
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
