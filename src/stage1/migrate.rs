//! Stage 1 of `--dry-run`, `--pretend` and a migration: everything up to the hand-over.
//!
//! 1. probe the device, OS, init, disks (read-only, through a [`Root`]);
//! 2. read config.json;
//! 3. get the image (`-i`, else download) and prove it good: full decode, layout, device type,
//!    size, SHA-256 — before anything is changed;
//! 4. networks, hostname and backup, staged as the exact files stage 2 writes:
//!    `boot/config.json`, `boot/system-connections/*`, `boot/system-proxy/*`, `data/backup.tgz`
//!    (`--dry-run`: in `<work-dir>/takeover-dry-run/`);
//! 5. the checks, in their fixed order, and the plan;
//! 6. `--dry-run` stops here: exit 0 when a migration would go ahead, 1 when not;
//! 7. otherwise: the operator's confirmation, then the hand-over to stage 2.
#![forbid(unsafe_code)]

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use super::checks::{self, CheckInputs};
use super::client_bundle::ClientBundle;
use super::handover;
use super::payload::{self, file_size, tree_size, Payload};
use crate::cli::{Mode, Options};
use crate::config::ConfigJson;
use crate::error::{Context, Error, Result};
use crate::fault;
use crate::image::verify::{self, Layout, Prepared, VerifyOptions};
use crate::probe::{self, target::TargetDisk, Probe, Root};
use crate::report::{Report, Status};
use crate::stage2_plan::{self as s2plan, Stage2Plan};

/// Name of the dry-run staging directory inside the work dir.
pub const DRY_RUN_DIR: &str = "takeover-dry-run";
/// Name of the staging directory of a real run inside the work dir (copied into RAM).
pub const STAGING_DIR: &str = "takeover-staging";

/// What stage 1 prepared.
pub struct Prepared1 {
    pub probe: Probe,
    pub config: ConfigJson,
    /// `deviceType` as written in the given config.json (the staged one carries
    /// `--change-dt-to`).
    pub config_device_type: Option<String>,
    /// The verified image; `None` only in a `--dry-run` that could not get it (the check
    /// "image" says why, and the run ends with that error after reporting the other checks).
    pub image: Option<Prepared>,
    pub staging: PathBuf,
    pub target: Option<TargetDisk>,
    pub payload: Payload,
    /// The HTTP client stage 2 needs for its API calls (none needed: `None`).
    pub client: Option<super::client_bundle::ClientBundle>,
}

/// The config.json to use: `-c`, else on balenaOS the device's own `/mnt/boot/config.json`.
fn load_config(opts: &Options, root: &Root, probe: &Probe) -> Result<ConfigJson> {
    if let Some(c) = &opts.config {
        return ConfigJson::load(c);
    }
    let own = root.path("mnt/boot/config.json");
    if probe.balena_os() && own.exists() {
        crate::info!("using this balenaOS device's own {}", own.display());
        return ConfigJson::load(&own);
    }
    Err(Error::new("reading config.json", "-c", "no config.json given")
        .hint("download config.json from the balena dashboard (Add device > Advanced > Download configuration file only) and pass it with -c"))
}

/// Runs stage 1 for `--dry-run`, `--pretend` or a migration.
pub fn run(opts: &Options, report: &mut Report) -> Result<()> {
    let mode = opts.mode();
    let root = sysroot(opts);
    let euid = check_user(mode)?;
    let work_dir = check_work_dir(opts)?;
    // One run at a time (see stage1::lock); held until this function returns.
    let _lock = super::lock::acquire(opts)?;
    let probe = probe_device(&root, mode, report)?;
    let config = read_config(opts, &root, &probe, report)?;
    let config_device_type = config.device_type().ok().map(str::to_string);
    let staging = work_dir.join(if mode == Mode::DryRun {
        DRY_RUN_DIR
    } else {
        STAGING_DIR
    });
    fresh_dir(&staging)?;
    // A migration's staging (config.json with the apiKey) does not outlive this run.
    let _staged = (mode != Mode::DryRun && !opts.no_cleanup)
        .then(|| super::lock::StagingGuard::new(&staging));
    let (image, image_check, deferred) =
        image_step(opts, &probe, &config, config_device_type.as_deref(), report)?;
    let source = payload::Source::ThisSystem {
        root: &root,
        balena_os: probe.balena_os(),
    };
    let (payload, config) = payload::stage(opts, source, config, &staging, report)?;
    if let Some(image) = &image {
        check_backup_mountable(opts, &probe, &image.verified)?;
    }
    let client = stage2_client(opts, &root, &config)?;
    let p1 = Prepared1 {
        probe,
        config,
        config_device_type,
        image,
        staging,
        target: None,
        payload,
        client: None,
    };
    let p1 = run_checks(opts, euid, &root, p1, image_check, client, report);
    if let Some(e) = deferred {
        return Err(e);
    }
    let p1 = p1?;
    if mode == Mode::DryRun {
        crate::info!(
            "dry run: a migration can go ahead on this device; the files stage 2 would write \
             are in {}",
            p1.staging.display()
        );
        return Ok(());
    }
    if p1.target.is_none() {
        return Err(Error::new(
            "choosing the target disk",
            "this device",
            "no target disk was chosen",
        ));
    }
    if !opts.no_ack && !confirm(&p1, opts)? {
        return Err(Error::new(
            "asking for confirmation",
            "operator",
            "the migration was declined; nothing was changed",
        ));
    }
    fault::stage1_point("after-checks")?;
    take_over(opts, &p1)
}

/// The root the probes read: `--sysroot` (tests), else `/`.
fn sysroot(opts: &Options) -> Root {
    opts.sysroot
        .clone()
        .map(Root::new)
        .unwrap_or_else(Root::system)
}

/// Root is needed for anything but `--dry-run`; returns the effective user id.
fn check_user(mode: Mode) -> Result<u32> {
    let euid = crate::sys::geteuid();
    if mode != Mode::DryRun && euid != 0 {
        return Err(
            Error::new("checking the user", "takeover", "not running as root")
                .hint("run it with sudo (or try --dry-run, which needs no root)"),
        );
    }
    Ok(euid)
}

fn check_work_dir(opts: &Options) -> Result<PathBuf> {
    let work_dir = opts.work_dir();
    if !work_dir.is_dir() {
        return Err(Error::new(
            "checking the work directory",
            work_dir.display(),
            "does not exist",
        )
        .hint("create it, or pass an existing directory with -w"));
    }
    Ok(work_dir)
}

/// Step 1: the device, OS, init and disks; leftovers of an interrupted run are reported
/// (`--dry-run`) or removed.
fn probe_device(root: &Root, mode: Mode, report: &mut Report) -> Result<Probe> {
    let probe = probe::probe(root);
    for n in &probe.notes {
        crate::debug!("probe: {n}");
    }
    let left = super::leftovers::find(probe.mounts.as_deref().unwrap_or(&[])).read_swaps();
    if !left.is_empty() {
        let what = left.describe();
        if mode == Mode::DryRun {
            crate::warn!("an interrupted run left {what}; a real run removes it first");
            report
                .warnings
                .push(format!("an interrupted run left {what}"));
        } else {
            crate::warn!("an interrupted run left {what}: removing it");
            super::leftovers::clean(&left)?;
        }
    }
    crate::info!(
        "device: {} ({}), OS: {}, init: {}",
        probe
            .model_display()
            .unwrap_or_else(|| "unknown model".into()),
        probe.arch.as_deref().unwrap_or("unknown arch"),
        probe
            .os
            .as_ref()
            .map(|o| o.display())
            .unwrap_or_else(|| "unknown".into()),
        probe.init.kind.as_str()
    );
    Ok(probe)
}

/// Step 2: config.json. The report gets the device part first, so that it says what was
/// found even when a later step fails.
fn read_config(
    opts: &Options,
    root: &Root,
    probe: &Probe,
    report: &mut Report,
) -> Result<ConfigJson> {
    let config = load_config(opts, root, probe);
    let cfg_dt = config.as_ref().ok().and_then(|c| c.device_type().ok());
    let parts = probe.to_report_parts(cfg_dt, opts.change_dt_to.as_deref(), None);
    report.device = Some(parts.device);
    report.os = Some(parts.os);
    report.init = Some(parts.init);
    config
}

/// What step 3 left: the image, the check "image", and the error a dry run ends with.
type ImageOutcome = (Option<Prepared>, (Status, String), Option<Error>);

/// Step 3, after the device type: the image (see [`get_image`]). A `--dry-run` that cannot
/// get it goes on without it (the check "image" is not run, and its error ends the run).
fn image_step(
    opts: &Options,
    probe: &Probe,
    config: &ConfigJson,
    cfg_dt: Option<&str>,
    report: &mut Report,
) -> Result<ImageOutcome> {
    // The device type first: a config.json of a fleet for another board is refused before
    // any image is downloaded or compared with it.
    let gate = checks::device_type_gate(probe, cfg_dt, opts, &config.origin);
    let dt_fits = gate.is_ok();
    let image = gate.and_then(|()| get_image(opts, probe, config, report));
    // A dry run that cannot get the image still reports every check that does not need it,
    // then ends with the image's error; any other run stops here.
    match image {
        Ok(i) => {
            let d = image_detail(&i);
            Ok((Some(i), (Status::Pass, d), None))
        }
        Err(e) if opts.mode() == Mode::DryRun => {
            let (what, why) = if dt_fits {
                ("the image could not be got or verified", e.message())
            } else {
                (
                    "the device type does not run on this device",
                    "the device type does not run on this device (see device-type)".to_string(),
                )
            };
            crate::info!(
                "dry run: {what}; going on with the checks that do not need the image (its \
                 error ends the run)"
            );
            Ok((None, (Status::NotRun, why), Some(e)))
        }
        Err(e) => Err(e),
    }
}

/// Step 3: the image (`-i`, else downloaded), proven good and built for an architecture this
/// device runs.
fn get_image(
    opts: &Options,
    probe: &Probe,
    config: &ConfigJson,
    report: &mut Report,
) -> Result<Prepared> {
    let path = image_file(opts, report)?;
    let image = verify_image(opts, config, &path, report)?;
    checks::image_arch_gate(probe, image.verified.device_type.as_deref(), &path)?;
    Ok(image)
}

/// The detail of the check "image".
fn image_detail(i: &Prepared) -> String {
    let v = &i.verified;
    format!(
        "{}: {} {}, {} MiB decoded, built for {}",
        i.image.display(),
        v.format,
        v.table,
        v.uncompressed_bytes >> 20,
        v.device_type.as_deref().unwrap_or("an unknown device type")
    )
}

/// Step 3a: the image file: `-i`, else downloaded.
fn image_file(opts: &Options, report: &mut Report) -> Result<PathBuf> {
    match &opts.image {
        Some(p) => Ok(p.clone()),
        None => {
            crate::info!("no image given: downloading");
            super::download::download_only(opts, report)
        }
    }
}

/// Step 3b: the image proven good (full decode, layout, device type, SHA-256) and reported.
fn verify_image(
    opts: &Options,
    config: &ConfigJson,
    image_path: &Path,
    report: &mut Report,
) -> Result<Prepared> {
    let vo = VerifyOptions {
        target_size: None,
        expected_sha256: opts.image_sha256.clone(),
        expected_device_type: super::image_device_type(opts, config)?,
        work_dir: opts.work_dir(),
    };
    crate::info!(
        "verifying {} (full decode, layout, device type)",
        image_path.display()
    );
    let image = verify::prepare(image_path, &vo, 6)?;
    fault::stage1_point("after-image")?;
    let mut ri = image.verified.to_report(&image.image);
    if let Some(prev) = &report.image {
        ri.version = ri.version.or_else(|| prev.version.clone());
    }
    report.image = Some(ri);
    let v = &image.verified;
    crate::info!(
        "image verified: {} {}, {} MiB decoded at {:.0} MB/s, built for {}",
        v.format,
        v.table,
        v.uncompressed_bytes >> 20,
        v.mb_per_s,
        v.device_type.as_deref().unwrap_or("an unknown device type")
    );
    if v.layout != Layout::Balena {
        return Err(Error::new(
            "checking the image",
            image_path.display(),
            "not a balenaOS disk image",
        ));
    }
    Ok(image)
}

/// Step 3c, with a backup only (after it is staged): stage 2 writes the backup into the new image's resin-data
/// through this kernel's ext4, so this kernel must be able to mount that filesystem
/// read-write. Its superblock's feature flags (read during the verification) are compared
/// with what this kernel release supports; a feature it lacks refuses the migration now,
/// before anything changes, instead of losing the backup in stage 2.
fn check_backup_mountable(opts: &Options, probe: &Probe, v: &verify::Verified) -> Result<()> {
    if opts.backup_cfg.is_none() {
        return Ok(());
    }
    let step = "checking that this kernel can write the backup into the new resin-data";
    let data = v
        .partitions
        .iter()
        .find(|p| p.label_or_name() == Some("resin-data"));
    let Some(features) = data.and_then(|p| p.ext_features) else {
        return Err(Error::new(
            step,
            "the image's resin-data",
            "the image has no ext4 resin-data partition to put the backup in",
        )
        .hint("use a balenaOS image for this device, or run without --backup-cfg"));
    };
    let release = probe.kernel_release.as_deref().unwrap_or("");
    let Some(kernel) = crate::formats::ext4_features::kernel_version(release) else {
        return Err(Error::new(
            step,
            "the running kernel",
            format!("its release {release:?} cannot be read"),
        )
        .hint("run without --backup-cfg, or report this system's `uname -r`"));
    };
    let missing = crate::formats::ext4_features::not_mountable(features, kernel);
    if !missing.is_empty() {
        return Err(Error::new(
            step,
            "the image's resin-data",
            format!(
                "Linux {release} cannot mount it read-write: {}",
                missing.join(", ")
            ),
        )
        .hint("the backup could not be restored into this image: use a balenaOS release this kernel can mount, update the kernel first, or run without --backup-cfg"));
    }
    crate::info!(
        "the image's resin-data is mountable by Linux {release}: the backup can be written into it"
    );
    Ok(())
}

/// Step 4b: stage 2's API calls need their HTTP client made whole in the RAM root. The
/// outcome is the check "stage2-client" (recorded after the others): a client that cannot be
/// made whole fails it, naming the missing file, before anything changes. `None`: no calls.
fn stage2_client(
    opts: &Options,
    root: &Root,
    config: &ConfigJson,
) -> Result<Option<Result<ClientBundle>>> {
    if !super::client_bundle::stage2_api_needed(
        opts.report_hup_progress,
        opts.change_dt_to.as_deref(),
        config,
    )? {
        return Ok(None);
    }
    let https = config.api_endpoint()?.starts_with("https://");
    let forced = std::env::var("TAKEOVER_HTTP_TOOL").ok();
    Ok(Some(super::client_bundle::resolve(
        root,
        https,
        forced.as_deref(),
    )))
}

/// Step 5: the checks, in their fixed order, then "stage2-client"; prints the summary.
/// Fails naming the failed checks; else returns `p` with the target disk and the client.
fn run_checks(
    opts: &Options,
    euid: u32,
    root: &Root,
    mut p: Prepared1,
    image_check: (Status, String),
    client: Option<Result<ClientBundle>>,
    report: &mut Report,
) -> Result<Prepared1> {
    let binary_bytes = std::env::current_exe()
        .map(|p| file_size(&p))
        .unwrap_or(1 << 20)
        + match &client {
            Some(Ok(c)) => c.bytes,
            _ => 0,
        };
    let ping = |ep: &str| -> Result<()> {
        let http = crate::api::http::Http::detect()?
            .bounded(std::time::Duration::from_secs(opts.check_timeout));
        crate::info!("API check: {} ({ep}/ping)", http.attempts_text());
        crate::api::balena::Api::new(&http, ep, None).ping()
    };
    let free = |p: &Path| crate::sys::fs::statvfs(p).map(|s| s.avail_bytes);
    let inputs = CheckInputs {
        probe: &p.probe,
        root,
        euid,
        config: Ok(&p.config),
        config_device_type: p.config_device_type.as_deref(),
        ping: &ping,
        network: Some(p.payload.network_check.clone()),
        image: image_check,
        image_staged_bytes: p.image.as_ref().map(|i| file_size(&i.image)),
        image_disk_bytes: p.image.as_ref().map(|i| i.verified.required_bytes()),
        backup_bytes: p.payload.backup_bytes,
        binary_bytes,
        network_bytes: p.payload.network_bytes,
        work_dir_needed: 0,
        free_space: &free,
    };
    p.target = checks::run_checks(&inputs, opts, report);
    p.client = client_check(client, report);
    report.staged_files = payload::staged_list(&p.staging);
    print_summary(report, &p.staging, opts.mode());
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.name.clone())
        .collect();
    if !failed.is_empty() {
        return Err(Error::new(
            "checking whether a migration can go ahead on",
            "this device",
            format!("failed checks: {}", failed.join(", ")),
        )
        .hint("see each failed check above for what to do; nothing was changed"));
    }
    Ok(p)
}

/// The check "stage2-client": the client stage 2 will use, or why there is none.
fn client_check(client: Option<Result<ClientBundle>>, report: &mut Report) -> Option<ClientBundle> {
    match client {
        Some(Ok(b)) => {
            let d = format!(
                "stage 2 calls the API through {} ({}, {} libraries, {} KiB{})",
                b.kind_name(),
                b.program.display(),
                b.libs.len(),
                b.bytes >> 10,
                if b.ca_bundle.is_some() {
                    ", CA bundle"
                } else {
                    ""
                }
            );
            crate::info!("{d}");
            report.check("stage2-client", Status::Pass, d);
            Some(b)
        }
        Some(Err(e)) => {
            crate::error!("{e}");
            report.check("stage2-client", Status::Fail, e.message());
            None
        }
        None => None,
    }
}

/// Removes and recreates a staging directory (0700). Refuses paths that are not ours.
fn fresh_dir(dir: &Path) -> Result<()> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name != DRY_RUN_DIR && name != STAGING_DIR {
        return Err(Error::new(
            "preparing",
            dir.display(),
            "not a takeover staging directory",
        ));
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).ctx_path("cleaning", dir)?;
    }
    crate::files::create_private_dir(dir)
}

/// Sizes in the plan, rounded as the checks round them (what is needed up, what there is
/// down), so that both give the same figures.
fn mib_up(b: u64) -> String {
    format!("{} MiB", b.div_ceil(1 << 20))
}

fn mib_down(b: u64) -> String {
    format!("{} MiB", b >> 20)
}

/// The summary for the operator (stdout): what was found, what stage 2 would write, the
/// checks.
pub fn summary_text(r: &Report, staging: &Path, mode: Mode) -> String {
    let mut s = String::new();
    let na = || "-".to_string();
    s.push_str(&format!(
        "takeover {} plan ({})\n",
        r.takeover_version,
        mode.as_str()
    ));
    if let Some(d) = &r.device {
        s.push_str(&format!(
            "  device    {} [{}], detected {}, fleet device type {}\n",
            d.model.clone().unwrap_or_else(na),
            d.arch,
            d.detected.clone().unwrap_or_else(na),
            d.target_device_type.clone().unwrap_or_else(na)
        ));
    }
    if let Some(o) = &r.os {
        s.push_str(&format!(
            "  os        {} ({})\n",
            o.pretty_name.clone().unwrap_or_else(na),
            if o.supported {
                "supported"
            } else {
                "not supported"
            }
        ));
    }
    if let Some(i) = &r.init {
        s.push_str(&format!(
            "  init      {} ({})\n",
            i.kind,
            i.path.clone().unwrap_or_else(na)
        ));
    }
    if let Some(t) = &r.target {
        s.push_str(&format!(
            "  disk      {} ({}){}\n",
            t.device.clone().unwrap_or_else(na),
            t.size_bytes.map(mib_down).unwrap_or_else(na),
            if t.efi { ", EFI" } else { "" }
        ));
    }
    if let Some(i) = &r.image {
        s.push_str(&format!(
            "  image     {} ({}, {} decoded, balenaOS {}, for {})\n",
            i.path.clone().unwrap_or_else(na),
            i.format.clone().unwrap_or_else(na),
            i.uncompressed_bytes.map(mib_up).unwrap_or_else(na),
            i.version.clone().unwrap_or_else(na),
            i.device_type.clone().unwrap_or_else(na)
        ));
    }
    summary_payload(r, &mut s);
    summary_checks(r, staging, &mut s);
    crate::log::redact(&s)
}

/// Networks, hostname, backup and RAM of the summary.
fn summary_payload(r: &Report, s: &mut String) {
    if r.network.is_empty() {
        s.push_str("  networks  none\n");
    }
    for n in &r.network {
        s.push_str(&crate::net::plan_line(n));
    }
    if let Some(p) = &r.proxy {
        s.push_str(&format!(
            "  proxy     {} (from {}) → {}\n",
            p.https
                .clone()
                .or(p.http.clone())
                .unwrap_or_else(|| "-".into()),
            p.source.join(", "),
            if p.migrated.is_empty() {
                "not migrated".to_string()
            } else {
                p.migrated.join(", ")
            }
        ));
    }
    s.push_str(&format!(
        "  hostname  {}\n",
        r.hostname.clone().unwrap_or_else(|| "(not changed)".into())
    ));
    match &r.backup {
        Some(b) => s.push_str(&format!(
            "  backup    {} files, {}, volumes {}\n",
            b.files,
            mib_up(b.bytes),
            b.volumes.join(", ")
        )),
        None => s.push_str("  backup    none\n"),
    }
    if let Some(ram) = &r.ram {
        s.push_str(&format!(
            "  RAM       {} needed, {} available\n",
            mib_up(ram.required_bytes),
            mib_down(ram.available_bytes)
        ));
    }
}

/// The checks and the staged files of the summary.
fn summary_checks(r: &Report, staging: &Path, s: &mut String) {
    s.push_str("  checks:\n");
    for c in &r.checks {
        let st = match c.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Warn => "warn",
            Status::Skip => "skip",
            Status::NotRun => "not run",
        };
        s.push_str(&format!("    {st:<7}  {:<15} {}\n", c.name, c.detail));
    }
    s.push_str(&format!(
        "  stage 2 would write (staged in {}):\n",
        staging.display()
    ));
    for f in &r.staged_files {
        s.push_str(&format!("    {f}\n"));
    }
}

fn print_summary(r: &Report, staging: &Path, mode: Mode) {
    print!("{}", summary_text(r, staging, mode));
    let _ = std::io::stdout().flush();
}

/// Asks the operator. `y`/`yes` goes on, `n`/`no` or end of input stops.
fn confirm(p: &Prepared1, _opts: &Options) -> Result<bool> {
    let disk = p
        .target
        .as_ref()
        .map(|t| t.path.clone())
        .unwrap_or_default();
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        print!("takeover will ERASE {disk} and install balenaOS. Go ahead? [y/n] ");
        let _ = std::io::stdout().flush();
        line.clear();
        if stdin
            .lock()
            .read_line(&mut line)
            .ctx("reading the answer", "stdin")?
            == 0
        {
            return Ok(false);
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            _ => println!("please answer y or n"),
        }
    }
}

/// The `--log-to` device and its filesystem type: from the mount table when it is mounted,
/// else from its superblock. Only vfat (our FAT writer) and ext2/3/4 (the kernel) are usable.
pub fn resolve_log_to(dev: &Path, mounts: &[probe::mounts::Mount]) -> Result<s2plan::LogDevice> {
    let real = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.to_path_buf());
    let mounted = mounts
        .iter()
        .find(|m| Path::new(&m.source) == dev || Path::new(&m.source) == real)
        .map(|m| m.fs_type.clone());
    let fs_type = match mounted {
        Some(t) => t,
        None => {
            let first = read_first(&real, crate::formats::fslabel::PROBE_BYTES)
                .ctx("reading the superblock of", real.display())?;
            crate::formats::fslabel::probe(&first).fstype.to_string()
        }
    };
    let fs_type = match fs_type.as_str() {
        "msdos" => s2plan::LogFs::Vfat,
        t => match s2plan::LogFs::from_name(t) {
            Some(fs) => fs,
            None => {
                return Err(Error::new(
                    "checking --log-to",
                    dev.display(),
                    format!("holds a filesystem of type '{t}'"),
                )
                .hint("choose a vfat, ext3 or ext4 partition on another disk (e.g. a USB stick)"))
            }
        },
    };
    crate::info!(
        "stage 2 will leave its log on {} ({fs_type})",
        real.display()
    );
    Ok(s2plan::LogDevice {
        device: real,
        fs_type,
    })
}

fn read_first(p: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(n);
    std::fs::File::open(p)?
        .take(n as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// RAM root, plan, hand-over. Undone on failure unless `--no-cleanup`.
fn take_over(opts: &Options, p: &Prepared1) -> Result<()> {
    let mut undo = handover::Undo::default();
    // From here to the hand-over (or its undo) a Ctrl-C, a hang-up of the ssh session or a
    // TERM must not stop the run half-way: signals wait until it is done. (Children start with
    // an empty mask: std resets it when spawning.)
    if let Err(e) = crate::sys::process::block_all_signals() {
        crate::warn!("could not hold signals during the hand-over: {e}");
    }
    let r = take_over_inner(opts, p, &mut undo);
    if let Err(e) = &r {
        crate::error!("{e}");
        if opts.no_cleanup {
            crate::warn!("--no-cleanup: leaving what was prepared in place");
        } else {
            undo.undo();
        }
        // A signal that arrived meanwhile is delivered now, after the undo.
        let _ = crate::sys::process::unblock_all_signals();
    }
    r
}

fn take_over_inner(opts: &Options, p: &Prepared1, undo: &mut handover::Undo) -> Result<()> {
    let target = p
        .target
        .as_ref()
        .ok_or_else(|| Error::new("taking over", "target", "no target disk"))?;
    // Resolved before anything is changed.
    let log_to = match &opts.log_to {
        Some(dev) => Some(resolve_log_to(
            dev,
            p.probe.mounts.as_deref().unwrap_or(&[]),
        )?),
        None => None,
    };
    handover::load_modules();
    let swaps: Vec<PathBuf> = p
        .probe
        .swaps
        .iter()
        .flatten()
        .map(|s| PathBuf::from(&s.name))
        .collect();
    handover::swaps_off(undo, &swaps)?;
    fault::stage1_point("after-swapoff")?;
    let image = p
        .image
        .as_ref()
        .ok_or_else(|| Error::new("taking over", "the image", "no verified image was prepared"))?;
    let (ram, http_client) = fill_ram_root(opts, p, image, undo)?;
    let plan = stage2_plan(opts, p, image, target, log_to, http_client);
    handover::write_plan(&ram, &plan)?;
    fault::stage1_point("after-plan")?;
    let init_exe = p
        .probe
        .init
        .resolved
        .clone()
        .or_else(|| p.probe.init.path.clone())
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::new(
                "handing over PID 1",
                "/proc/1/exe",
                "cannot tell which binary init runs",
            )
        })?;
    let how = handover::reexec_for(p.probe.init.kind.as_str(), &init_exe, &ram)?;
    handover::hand_over(undo, &ram, &init_exe, &how)?;
    crate::info!(
        "takeover initiated: {} will be written; the device reboots when done (watch the console, or --log-to)",
        target.path
    );
    crate::sys::sync();
    Ok(())
}

/// Mounts the RAM root and copies in this binary, the image, the payload and stage 2's HTTP
/// client; returns the RAM root and where the client is in it.
fn fill_ram_root(
    opts: &Options,
    p: &Prepared1,
    image: &Prepared,
    undo: &mut handover::Undo,
) -> Result<(PathBuf, Option<s2plan::HttpClient>)> {
    let image_bytes = file_size(&image.image);
    let exe = std::env::current_exe().ctx("finding", "this binary")?;
    let client_bytes = p.client.as_ref().map_or(0, |c| c.bytes);
    let size =
        image_bytes + tree_size(&p.staging) + file_size(&exe) + client_bytes + checks::RAM_HEADROOM;
    let ram = handover::mount_ram_root(undo, size)?;
    fault::stage1_point("after-ram-root")?;
    handover::copy_in(&exe, &ram.join(s2plan::BINARY), 0o700)?;
    crate::info!(
        "copying the image into RAM ({} MiB), checking its SHA-256 against the verified one",
        image_bytes >> 20
    );
    payload::fault_change_image(&image.image)?;
    payload::copy_image_verified(
        &image.image,
        &ram.join(s2plan::IMAGE_FILE),
        &image.verified.sha256,
    )?;
    handover::copy_tree(&p.staging, &ram.join(s2plan::PAYLOAD_DIR))?;
    let Some(c) = &p.client else {
        return Ok((ram, None));
    };
    super::client_bundle::install(&sysroot(opts), c, &ram)?;
    let client = s2plan::HttpClient {
        kind: c.kind,
        program: c.program.clone(),
        lib_dirs: c.lib_dirs.clone(),
        ca_bundle: c.ca_bundle.clone(),
        proxy_env: crate::net::proxy::installed_env(),
    };
    Ok((ram, Some(client)))
}

/// The slowest write rate assumed for a target disk, in bytes per second: a slow SD card
/// (class 2 guarantees 2 MB/s). The read-back is assumed no faster.
pub const SLOWEST_WRITE_RATE: u64 = 2 << 20;

/// Stage 2's deadline in seconds: one hour for all but the image (stopping processes,
/// unmounting, configuring, the backup, API calls), plus, for each of the two write attempts,
/// writing and reading back the decoded image at [`SLOWEST_WRITE_RATE`]. From the decoded
/// size: a gzip compresses a balenaOS image about 8:1, so its size says little about the write.
pub fn stage2_deadline_secs(decoded_bytes: u64) -> u64 {
    let per_pass = decoded_bytes.div_ceil(SLOWEST_WRITE_RATE);
    3600 + 2 * 2 * per_pass
}

/// The old root's block device by its kernel name (`sys/block`, found by the major:minor of
/// the `/` mount): Raspberry Pi OS mounts it as `/dev/root`, a node stage 2's devtmpfs lacks,
/// so the failure and pretend logs could not reach its `/var/log`. The mount source is kept
/// when the device is not in `sys/block`.
fn old_root_device(probe: &Probe) -> Option<PathBuf> {
    let m = probe
        .mounts
        .iter()
        .flatten()
        .find(|m| m.mount_point == "/")?;
    let by_devno = probe::block::dev_path_of(&probe.disks, m.major, m.minor);
    Some(PathBuf::from(by_devno.unwrap_or_else(|| m.source.clone())))
}

/// What stage 2 needs, for the RAM root.
fn stage2_plan(
    opts: &Options,
    p: &Prepared1,
    image: &Prepared,
    target: &TargetDisk,
    log_to: Option<s2plan::LogDevice>,
    http_client: Option<s2plan::HttpClient>,
) -> Stage2Plan {
    let root_mount = p
        .probe
        .mounts
        .iter()
        .flatten()
        .find(|m| m.mount_point == "/");
    Stage2Plan {
        version: s2plan::PLAN_VERSION,
        flash_device: PathBuf::from(&target.path),
        image: PathBuf::from("/").join(s2plan::IMAGE_FILE),
        image_bytes: image.verified.uncompressed_bytes,
        image_sha256: image.verified.sha256.clone(),
        payload: PathBuf::from("/").join(s2plan::PAYLOAD_DIR),
        old_root_device: old_root_device(&p.probe),
        old_root_fs_type: root_mount.map(|m| m.fs_type.clone()),
        log_to,
        log_level: opts.stage2_level(),
        pretend: opts.pretend,
        efi_setup: !opts.no_efi_setup,
        fallback_log: opts.fallback_log,
        fallback_log_filename: opts.fallback_log_filename.clone(),
        fallback_log_dir: opts.fallback_log_dir.clone(),
        report_hup_progress: opts.report_hup_progress,
        change_dt_to: opts.change_dt_to.clone(),
        api_endpoint: p.config.api_endpoint().ok().map(str::to_string),
        api_key: p.config.api_key().ok().map(str::to_string),
        uuid: p.config.uuid().ok().flatten().map(str::to_string),
        deadline_secs: fault::deadline_secs(stage2_deadline_secs(
            image.verified.uncompressed_bytes,
        )),
        fault: fault::spec_from_env(),
        stage1_pid: Some(std::process::id()),
        http_client,
        jetson: p
            .probe
            .board
            .map(|b| b.id)
            .and_then(s2plan::JetsonBoard::from_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage2_deadline_covers_writing_the_decoded_image_at_the_slowest_rate() {
        // An 8 GiB image (1 GiB of gzip): two attempts, each writing and reading back 8 GiB
        // at 2 MiB/s, need 4 × 4096 s on top of the hour for everything else.
        let decoded = 8u64 << 30;
        let need = 2 * 2 * decoded / SLOWEST_WRITE_RATE;
        assert_eq!(need, 16384);
        assert!(stage2_deadline_secs(decoded) >= 3600 + need);
        // What the deadline was before (from 1 GiB compressed: 3600 + 1 s per MiB) is less.
        assert!(3600 + (1u64 << 30) / (1 << 20) < 3600 + need);
        assert_eq!(stage2_deadline_secs(0), 3600);
        assert_eq!(stage2_deadline_secs(64 << 20), 3600 + 128);
    }

    #[test]
    fn old_root_device_is_the_kernel_name_not_dev_root() {
        // Raspberry Pi OS: mountinfo says `179:2 ... /dev/root`; sys/block knows mmcblk0p2.
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysroots/pi0w-buster-armv6");
        let p = probe::probe(&Root::new(&dir));
        let root = p.mounts.iter().flatten().find(|m| m.mount_point == "/");
        assert_eq!(root.map(|m| m.source.as_str()), Some("/dev/root"));
        assert_eq!(
            old_root_device(&p).as_deref(),
            Some(Path::new("/dev/mmcblk0p2"))
        );
    }

    #[test]
    fn log_to_type_comes_from_the_mount_table_then_the_superblock() {
        let mi = "30 1 8:17 / /media/usb rw - vfat /dev/sdb1 rw\n\
                  31 1 8:33 / /media/disk rw - ntfs3 /dev/sdc1 rw\n";
        let m = probe::mounts::parse_mountinfo(mi, "mountinfo").unwrap();
        let l = resolve_log_to(Path::new("/dev/sdb1"), &m).unwrap();
        assert_eq!(l.fs_type, crate::stage2_plan::LogFs::Vfat);
        let e = resolve_log_to(Path::new("/dev/sdc1"), &m).unwrap_err();
        assert!(e.to_string().contains("ntfs3"), "{e}");

        // Not mounted: the superblock decides (an ext4 superblock in a file standing in for
        // the device; an empty one is refused).
        let d = std::env::temp_dir().join(format!("takeover-logto-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let ext = d.join("ext");
        let mut sb = vec![0u8; 4096];
        sb[1024 + 56] = 0x53;
        sb[1024 + 57] = 0xef;
        // INCOMPAT_EXTENTS (0x40) makes it ext4.
        sb[1024 + 96] = 0x40;
        std::fs::write(&ext, &sb).unwrap();
        let got = resolve_log_to(&ext, &[]);
        let zero = d.join("zero");
        std::fs::write(&zero, vec![0u8; 4096]).unwrap();
        let e = resolve_log_to(&zero, &[]).unwrap_err();
        std::fs::remove_dir_all(&d).unwrap();
        assert!(got.unwrap().fs_type.as_str().starts_with("ext"));
        assert!(e.to_string().contains("unknown"), "{e}");
    }
}
