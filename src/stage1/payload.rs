//! Staging the payload: the exact files stage 2 (or `--write-only`) writes onto the new disk,
//! for migrations and `--write-only` alike.
//!
//! `<staging>/boot/` → resin-boot: `config.json` (hostname and device type applied),
//! `system-connections/*`, `system-proxy/*`; `<staging>/data/` → resin-data: `backup.tgz`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use crate::cli::Options;
use crate::config::ConfigJson;
use crate::error::Result;
use crate::fault;
use crate::net::{self, NetOptions};
use crate::probe::Root;
use crate::report::{Report, Status};

/// Where the networks and the hostname come from.
pub enum Source<'a> {
    /// A migration: this system's networks (and `--wifi`, `--nwmgr-cfg`) and, unless
    /// `--no-keep-name`, its hostname.
    ThisSystem { root: &'a Root, balena_os: bool },
    /// `--write-only`: only `--nwmgr-cfg` (this machine's networks are not the device's); the
    /// hostname only from config.json.
    GivenOnly,
}

/// The staged payload.
pub struct Payload {
    pub boot: PathBuf,
    pub data: PathBuf,
    /// The outcome of the check "network" (migrations).
    pub network_check: (Status, String),
    /// Bytes below `boot/`.
    pub network_bytes: u64,
    /// Bytes of the backup (0 without one).
    pub backup_bytes: u64,
}

/// Stages networks, config.json and the backup below `staging` (which exists), filling the
/// report's network, hostname and backup parts.
pub fn stage(
    opts: &Options,
    source: Source,
    mut config: ConfigJson,
    staging: &Path,
    report: &mut Report,
) -> Result<(Payload, ConfigJson)> {
    let boot = staging.join("boot");
    let data = staging.join("data");
    crate::files::create_private_dir(&boot)?;
    crate::files::create_private_dir(&data)?;
    let networks = stage_networks(opts, &source, staging, &boot, report)?;
    fault::stage1_point("after-network")?;
    report.network = net::report_entries(&networks);
    report.proxy = net::report_proxy(&networks);
    let network_check = net::network_check(&networks, opts.no_nwmgr_check);
    apply_name_and_type(opts, &source, &mut config, report)?;
    crate::files::write_private(&boot.join("config.json"), &config.to_bytes())?;
    let backup_bytes = stage_backup(opts, &data, report)?;
    fault::stage1_point("after-backup")?;
    let network_bytes = tree_size(&boot);
    let payload = Payload {
        boot,
        data,
        network_check,
        network_bytes,
        backup_bytes,
    };
    Ok((payload, config))
}

/// The networks into `boot/system-connections` (and proxy); returns what was collected.
fn stage_networks(
    opts: &Options,
    source: &Source,
    staging: &Path,
    boot: &Path,
    report: &mut Report,
) -> Result<net::Collected> {
    let collected = match source {
        Source::ThisSystem { root, balena_os } => {
            let net_opts = NetOptions {
                scan_wifis: opts.scan_wifis(),
                wifis: opts.wifis.clone(),
                nwmgr_cfgs: opts.nwmgr_cfgs.clone(),
                balena_os: *balena_os,
            };
            let collected = net::collect(root, &net_opts)?;
            // The network module already logged a warning for each of these.
            for (name, why) in &collected.unmigratable {
                report
                    .warnings
                    .push(format!("network '{name}' not migrated: {why}"));
            }
            for n in &collected.notes {
                crate::info!("network: {n}");
            }
            collected
        }
        Source::GivenOnly => {
            let empty_root = staging.join("no-system");
            crate::files::create_private_dir(&empty_root)?;
            let net_opts = NetOptions {
                scan_wifis: false,
                wifis: Vec::new(),
                nwmgr_cfgs: opts.nwmgr_cfgs.clone(),
                balena_os: false,
            };
            net::collect(&Root::new(&empty_root), &net_opts)?
        }
    };
    net::stage(&collected, boot)?;
    Ok(collected)
}

/// The hostname (kept from this system unless `--no-keep-name`) and `--change-dt-to` into
/// config.json.
fn apply_name_and_type(
    opts: &Options,
    source: &Source,
    config: &mut ConfigJson,
    report: &mut Report,
) -> Result<()> {
    match source {
        Source::ThisSystem { root, .. } => {
            if !opts.no_keep_name {
                if let Some(h) = net::hostname(root)? {
                    crate::info!("keeping the hostname '{h}'");
                    config.set_hostname(&h);
                    report.hostname = Some(h);
                }
            }
            if let Some(dt) = &opts.change_dt_to {
                crate::info!("device type changes to {dt}");
                config.set_device_type(dt);
            }
        }
        Source::GivenOnly => {
            if let Some(dt) = &opts.change_dt_to {
                config.set_device_type(dt);
            }
            report.hostname = config.hostname().ok().flatten().map(str::to_string);
        }
    }
    Ok(())
}

/// `--backup-cfg`: writes backup.tgz into `data` (the staged resin-data), logs and reports it
/// and its warnings; returns its size (0 without a backup).
fn stage_backup(opts: &Options, data: &Path, report: &mut Report) -> Result<u64> {
    let Some(cfg) = &opts.backup_cfg else {
        return Ok(0);
    };
    let b = crate::backup::create(
        cfg,
        data,
        &crate::backup::BackupOptions {
            tar_internal: opts.tar_internal,
        },
    )?;
    for w in &b.warnings {
        crate::warn!("backup: {w}");
        report.warnings.push(format!("backup: {w}"));
    }
    crate::info!(
        "backup: {} files in volumes {} ({} KiB)",
        b.files,
        b.volumes.join(", "),
        b.bytes >> 10
    );
    report.backup = Some(b.to_report());
    Ok(b.bytes)
}

pub fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Sum of the sizes of the regular files below `dir`.
pub fn tree_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => file_size(&e.path()),
            _ => 0,
        })
        .sum()
}

/// Staged files, relative to the staging dir ("boot/config.json", ...).
pub fn staged_list(staging: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut v: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        v.sort_by_key(|e| e.file_name());
        for e in v {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(r) = p.strip_prefix(base) {
                out.push(r.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(staging, staging, &mut out);
    out
}
