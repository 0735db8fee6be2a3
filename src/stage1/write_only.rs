//! `--write-only`: write an image onto a device or an image file and configure it as stage 2
//! would, without taking over this system. For preparing media offline.
//!
//! Networks come only from `--nwmgr-cfg` (this machine's own wifi networks are not the
//! device's); the hostname only from config.json; the backup from `--backup-cfg`.
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::cli::Options;
use crate::config::ConfigJson;
use crate::error::{Context, Error, Result};
use crate::flash::{self, FlashOptions};
use crate::image::verify::{self, VerifyOptions};
use crate::probe::{self, Root};
use crate::report::{Report, Target};
use crate::stage2::configure;

pub fn run(opts: &Options, report: &mut Report) -> Result<()> {
    let (Some(image_path), Some(target), Some(cfg_path)) =
        (&opts.image, &opts.flash_to, &opts.config)
    else {
        return Err(Error::usage(
            "--write-only",
            "needs -i IMAGE -f DEVICE_OR_FILE -c CONFIG_JSON",
        ));
    };
    let work_dir = opts.work_dir();
    let _lock = super::lock::acquire(opts)?;
    let mut config = ConfigJson::load(cfg_path)?;
    let is_block = std::fs::metadata(target)
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false);
    if is_block {
        refuse_if_in_use(target)?;
    } else if !target.exists() && target.starts_with("/dev") {
        // A mistyped device name would otherwise become a regular file in /dev (RAM).
        return Err(
            Error::new("checking --flash-to", target.display(), "no such device")
                .hint("name an existing whole disk (see `lsblk`), or a regular file outside /dev"),
        );
    } else if target.exists() && !target.is_file() {
        return Err(Error::new(
            "checking --flash-to",
            target.display(),
            "is neither a block device nor a regular file",
        ));
    }

    let expected_dt = super::image_device_type(opts, &config)?;
    let target_size = if is_block {
        Some(flash::target_size(target)?)
    } else {
        None
    };
    let vo = VerifyOptions {
        target_size,
        expected_sha256: opts.image_sha256.clone(),
        expected_device_type: expected_dt,
        work_dir: work_dir.clone(),
    };
    crate::info!("verifying {}", image_path.display());
    let image = verify::prepare(image_path, &vo, 6)?;
    report.image = Some(image.verified.to_report(&image.image));

    // Stage the payload exactly as for a migration.
    let staging = work_dir.join(super::migrate::STAGING_DIR);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).ctx_path("cleaning", &staging)?;
    }
    // A failure from here on leaves no staging dir (it holds config.json) behind.
    let _staged = (!opts.no_cleanup).then(|| super::lock::StagingGuard::new(&staging));
    let boot = staging.join("boot");
    let data = staging.join("data");
    crate::files::create_private_dir(&boot)?;
    crate::files::create_private_dir(&data)?;
    let empty_root = staging.join("no-system");
    crate::files::create_private_dir(&empty_root)?;
    let net_opts = crate::net::NetOptions {
        scan_wifis: false,
        wifis: Vec::new(),
        nwmgr_cfgs: opts.nwmgr_cfgs.clone(),
        balena_os: false,
    };
    let collected = crate::net::collect(&Root::new(&empty_root), &net_opts)?;
    crate::net::stage(&collected, &boot)?;
    report.network = crate::net::report_entries(&collected);
    if let Some(dt) = &opts.change_dt_to {
        config.set_device_type(dt);
    }
    report.hostname = config.hostname().ok().flatten().map(str::to_string);
    crate::files::write_private(&boot.join("config.json"), &config.to_bytes())?;
    if let Some(cfg) = &opts.backup_cfg {
        let b = crate::backup::create(
            cfg,
            &data,
            &crate::backup::BackupOptions {
                tar_internal: opts.tar_internal,
            },
        )?;
        report.backup = Some(b.to_report());
    }

    // Write.
    if !is_block && !target.exists() {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(target)
            .ctx_path("creating", target)?;
    }
    let reader = crate::image::source::open_image(&image.image)?;
    let total = image.verified.uncompressed_bytes.max(1);
    let mut next = 10;
    let mut progress = |n: u64| {
        let pct = n * 100 / total;
        if pct >= next {
            crate::info!("written {pct}% ({} of {} MiB)", n >> 20, total >> 20);
            next = pct - pct % 10 + 10;
        }
    };
    let o = FlashOptions {
        limit: target_size,
        ..Default::default()
    };
    crate::info!("writing {} to {}", image.image.display(), target.display());
    let st = flash::flash(reader, target, &o, &mut progress)?;
    crate::info!(
        "wrote and verified {} MiB at {:.0} MB/s (read-back {:.1} s)",
        st.bytes >> 20,
        st.write_mb_per_s(),
        st.verify_secs.unwrap_or(0.0)
    );
    report.target = Some(Target {
        device: Some(target.display().to_string()),
        size_bytes: Some(flash::target_size(target)?),
        efi: false,
        secure_boot: false,
    });

    // Configure.
    let layout = configure::find_layout(target)?;
    let mut staged = Vec::new();
    for f in configure::write_boot(target, &layout, &boot)? {
        staged.push(format!("boot/{f}"));
    }
    if std::fs::read_dir(&data)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        let mp = staging.join("mnt-data");
        let files =
            configure::with_data_partition(target, &layout, Path::new("/dev"), &mp, |root| {
                configure::copy_data(&data, root)
            })?;
        staged.extend(files.into_iter().map(|f| format!("data/{f}")));
    }
    report.staged_files = staged;
    std::fs::remove_dir_all(&staging).ctx_path("cleaning", &staging)?;
    crate::info!(
        "{} is ready: balenaOS written, verified and configured",
        target.display()
    );
    Ok(())
}

/// Refuses a block device that holds a mounted filesystem (this system's own disk, say).
fn refuse_if_in_use(target: &Path) -> Result<()> {
    let root = Root::system();
    let p = probe::probe(&root);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(disk) = p.disks.iter().find(|d| d.name == name) else {
        return Err(Error::new(
            "checking --flash-to",
            target.display(),
            "not a whole disk in /sys/block",
        )
        .hint("name a whole disk such as /dev/sdb, not a partition"));
    };
    let mounted: Vec<String> = p
        .mounts
        .iter()
        .flatten()
        .filter(|m| {
            (m.major == disk.major && m.minor == disk.minor)
                || disk
                    .partitions
                    .iter()
                    .any(|q| q.major == m.major && q.minor == m.minor)
        })
        .map(|m| m.mount_point.clone())
        .collect();
    if !mounted.is_empty() {
        return Err(Error::new(
            "checking --flash-to",
            target.display(),
            format!("is in use: mounted at {}", mounted.join(", ")),
        )
        .hint("unmount it first; --write-only never writes a disk that is in use"));
    }
    Ok(())
}
