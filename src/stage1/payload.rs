//! Staging the payload: the exact files stage 2 (or `--write-only`) writes onto the new disk,
//! for migrations and `--write-only` alike.
//!
//! `<staging>/boot/` → resin-boot: `config.json` (hostname and device type applied),
//! `system-connections/*`, `system-proxy/*`; `<staging>/data/` → resin-data: `backup.tgz`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use crate::cli::Options;
use crate::config::ConfigJson;
use crate::error::{Context, Error, Result};
use crate::fault;
use crate::formats::hex;
use crate::formats::sha256::Sha256;
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

/// Copies the verified image into the RAM root (`dest`, mode 0600, created new), hashing what
/// it reads, and compares the SHA-256 with `verified_sha256` (what stage 1's verification
/// computed of the same file). A mismatch (the file changed after it was verified) is an
/// error before anything changes; `dest` is removed. Returns the bytes copied.
pub fn copy_image_verified(src: &Path, dest: &Path, verified_sha256: &str) -> Result<u64> {
    use std::io::{Read, Write};
    let step = "copying the image into the RAM root";
    if verified_sha256.is_empty() {
        return Err(Error::new(
            step,
            src.display(),
            "the verification computed no SHA-256 to compare the copy with",
        ));
    }
    let mut from = std::fs::File::open(src).ctx_path(step, src)?;
    let mut to = crate::files::create_new(dest, 0o600).ctx_path(step, dest)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let r = (|| -> Result<()> {
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(step, src.display(), e)),
            };
            h.update(&buf[..n]);
            to.write_all(&buf[..n]).ctx_path(step, dest)?;
            total += n as u64;
        }
        to.sync_all().ctx_path(step, dest)?;
        let got = hex::encode(&h.finish());
        if !got.eq_ignore_ascii_case(verified_sha256) {
            return Err(Error::new(
                step,
                src.display(),
                format!(
                    "the image changed after it was verified: the copy has SHA-256 {got}, \
                     the verified file had {verified_sha256}"
                ),
            )
            .hint("something modified the image file during the run; nothing was changed on this system: make sure nothing writes to it and run takeover again"));
        }
        Ok(())
    })();
    if r.is_err() {
        drop(to);
        let _ = std::fs::remove_file(dest);
    }
    r.map(|()| total)
}

/// Test builds (`TAKEOVER_FAULT=image-changed-after-verify`): flips one byte in the middle of
/// the image file after its verification, so the copy into the RAM root must notice.
pub fn fault_change_image(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    if !fault::stage1_named("image-changed-after-verify") {
        return Ok(());
    }
    let step = "fault injection: changing the image";
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .ctx_path(step, path)?;
    let at = f.metadata().ctx_path(step, path)?.len() / 2;
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).ctx_path(step, path)?;
    f.read_exact(&mut b).ctx_path(step, path)?;
    b[0] ^= 0xFF;
    f.seek(SeekFrom::Start(at)).ctx_path(step, path)?;
    f.write_all(&b).ctx_path(step, path)?;
    crate::warn!(
        "fault injection: flipped the byte at {at} of {}",
        path.display()
    );
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_copy_is_checked_against_the_verified_hash() {
        let d = crate::testutil::temp_dir("copyimg", "test");
        let src = d.join("image.img.gz");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let verified = hex::encode(&crate::formats::sha256::sha256(&data));
        let dest = d.join("ram-image");
        assert_eq!(
            copy_image_verified(&src, &dest, &verified).unwrap(),
            3_000_000
        );
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        // The file changes after verification: one byte differs.
        let mut changed = data.clone();
        changed[1_500_000] ^= 0xFF;
        std::fs::write(&src, &changed).unwrap();
        let e = copy_image_verified(&src, &dest, &verified)
            .unwrap_err()
            .to_string();
        assert!(e.contains("changed after it was verified"), "{e}");
        assert!(e.contains(&verified), "{e}");
        assert!(!dest.exists(), "a copy that failed its check must not stay");
        // No hash to compare with is an error, not a silent copy.
        assert!(copy_image_verified(&src, &dest, "").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
