//! Stage 2 worker (`takeover --stage2`), started by the stage 2 init inside the RAM root.
//!
//! Order: stop every process → unmount the old system (refuse if the target keeps a writable
//! mount) → flash (partition table last, read-back verified; one retry) → write config.json
//! and network files into resin-boot → backup, log and report into resin-data → exit; PID 1
//! reboots. A failure before the first block is written leaves the old OS intact and puts the
//! log into its `/var/log`; a failure after it invalidates the partition table rather than
//! leave a half image that boots.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::kill;
use super::umount;
use crate::configure;
use crate::error::{Context, Error, Result};
use crate::flash::{self, FlashOptions};
use crate::probe::{block, mounts, Root};
use crate::stage2_plan::{self as plan, LogFs, Stage2Plan};
use crate::sys::mount as sm;

/// Where things happened, to decide what a failure means for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    BeforeFlash,
    Flashing,
    AfterFlash,
}

/// Entry point of `--stage2` (and of `--stage2-failed`, `after_death`). Refuses to do anything
/// outside a prepared stage 2 (so running it by hand is harmless).
pub fn run(after_death: bool) -> Result<()> {
    let plan_path = Path::new("/").join(plan::PLAN_FILE);
    let in_stage2 = plan_path.exists()
        && Path::new("/").join(plan::OLD_ROOT).is_dir()
        && std::os::unix::process::parent_id() == 1;
    if !in_stage2 {
        return Err(Error::new(
            "starting the stage 2 worker",
            "--stage2",
            "this is not a prepared stage 2 (no plan in the RAM root, or not started by takeover's init)",
        )
        .hint("--stage2 is internal; run takeover without it"));
    }
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("/takeover.log")
    {
        crate::log::set_file(f);
    }
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open("/dev/console") {
        crate::log::set_console(Box::new(f));
    }
    let plan = Stage2Plan::load(&plan_path)?;
    crate::log::set_level(plan.log_level);
    crate::fault::set_process_spec(plan.fault.clone());
    if after_death {
        // `--stage2-failed`: stage 2 ended early (the worker died or was killed at the
        // deadline, or init failed after the pivot), so nobody was told. Do what the worker's
        // end would have.
        crate::error!("stage 2 ended early; the migration failed");
        super::api_calls::run(&plan, false);
        save_log_to_device(&plan);
        return Ok(());
    }
    let mut phase = Phase::BeforeFlash;
    let result = work(&plan, &mut phase);
    match (&result, phase) {
        (Ok(()), _) => crate::info!("stage 2 complete"),
        (Err(e), Phase::BeforeFlash) => {
            crate::error!("{e}");
            crate::error!(
                "nothing was written to {}; the old OS boots again",
                plan.flash_device.display()
            );
            save_log_in_old_root(&plan, "failed");
        }
        (Err(e), Phase::Flashing) => {
            crate::error!("{e}");
            crate::error!(
                "the image could not be written; invalidating the partition table of {}",
                plan.flash_device.display()
            );
            if let Err(e2) = flash::invalidate_table(&plan.flash_device) {
                crate::error!("{e2}");
            }
        }
        (Err(e), Phase::AfterFlash) => {
            crate::error!("{e}");
            crate::error!("balenaOS was written but not fully configured; see the log");
        }
    }
    super::api_calls::run(&plan, result.is_ok());
    // --log-to: the log lands there whatever the outcome.
    save_log_to_device(&plan);
    result
}

fn read_mounts() -> Result<Vec<mounts::Mount>> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").ctx("reading", "/proc/self/mountinfo")?;
    mounts::parse_mountinfo(&text, "/proc/self/mountinfo")
}

fn target_disk(plan: &Stage2Plan) -> Result<block::BlockDev> {
    let name = plan
        .flash_device
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut notes = Vec::new();
    block::scan(&Root::system(), &mut notes)
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| {
            Error::new(
                "finding the target disk",
                plan.flash_device.display(),
                "not in /sys/block",
            )
        })
}

fn work(plan: &Stage2Plan, phase: &mut Phase) -> Result<()> {
    stop_processes(plan)?;
    let disk = unmount_old_system(plan)?;
    plan.fault_point("before-flash")?;
    if plan.pretend {
        crate::info!(
            "--pretend: not writing {}; the old OS boots again",
            plan.flash_device.display()
        );
        save_log_in_old_root(plan, "pretend");
        return Ok(());
    }
    write_image(plan, disk.size_bytes(), phase)?;
    *phase = Phase::AfterFlash;
    plan.fault_point("after-write")?;
    configure_new_disk(plan)
}

fn stop_processes(plan: &Stage2Plan) -> Result<()> {
    crate::info!("stopping the processes of the old system");
    let r = kill::stop_all(&Root::system(), Duration::from_secs(5));
    crate::info!(
        "{} processes ended on SIGTERM, {} on SIGKILL",
        r.terminated,
        r.killed
    );
    plan.fault_point("after-kill")
}

/// Unmounts everything below the old root; nothing on the target disk may stay writable.
/// Returns the target disk.
fn unmount_old_system(plan: &Stage2Plan) -> Result<block::BlockDev> {
    crate::info!("unmounting the old system");
    let old_root = format!("/{}", plan::OLD_ROOT);
    let disk = target_disk(plan)?;
    // Only kernel-virtual filesystems may be detached lazily; anything else (a disk, a loop
    // device, an overlay or network mount) may hold data that reaches the target.
    let on_target = |m: &mounts::Mount| !umount::is_virtual(&m.fs_type);
    let ur = umount::unmount_below(&old_root, &read_mounts, &on_target)?;
    crate::info!(
        "{} filesystems unmounted, {} left read-only",
        ur.unmounted,
        ur.read_only.len()
    );
    plan.fault_point("after-unmount")?;
    let mut notes = Vec::new();
    let disks = block::scan(&Root::system(), &mut notes);
    let above = block::holders(&disks, &disk);
    umount::ensure_no_writable(&read_mounts()?, &disk, &above, &active_swaps(&disks)?)?;
    Ok(disk)
}

/// `/proc/swaps`, read again here (stage 1 turned swap off, but something may have turned it
/// on since), each with the device it lives on.
fn active_swaps(disks: &[block::BlockDev]) -> Result<Vec<umount::ActiveSwap>> {
    use std::os::unix::fs::MetadataExt;
    let text = std::fs::read_to_string("/proc/swaps").ctx("reading", "/proc/swaps")?;
    Ok(mounts::parse_swaps(&text)
        .into_iter()
        .map(|s| {
            let dev = if s.kind == "partition" {
                let name = s.name.strip_prefix("/dev/mapper/");
                let name = name.or_else(|| s.name.strip_prefix("/dev/"));
                match block::find_by_name(disks, name.unwrap_or(&s.name)) {
                    Some(block::DevRef::Disk(i)) => Some((disks[i].major, disks[i].minor)),
                    Some(block::DevRef::Partition(i, j)) => {
                        let p = &disks[i].partitions[j];
                        Some((p.major, p.minor))
                    }
                    None => None,
                }
            } else {
                std::fs::metadata(&s.name)
                    .ok()
                    .map(|m| (libc::major(m.dev()), libc::minor(m.dev())))
            };
            umount::ActiveSwap { name: s.name, dev }
        })
        .collect())
}

/// Writes the image onto the target disk (`limit` bytes), verified; a failed attempt is
/// retried once. `phase` becomes [`Phase::Flashing`] only once the image and the target are
/// open, right before the first write (the flash starts by zeroing the partition table): a
/// failure to open either leaves the old OS intact and bootable.
fn write_image(plan: &Stage2Plan, limit: u64, phase: &mut Phase) -> Result<()> {
    let mut last_err = None;
    for attempt in 1..=2 {
        if let Some(e) = &last_err {
            crate::warn!("write attempt {} failed: {e}; retrying", attempt - 1);
        }
        crate::info!(
            "writing {} to {} (attempt {attempt})",
            plan.image.display(),
            plan.flash_device.display()
        );
        let reader = crate::image::source::open_image(&plan.image)?;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&plan.flash_device)
            .ctx("opening target", plan.flash_device.display())?;
        *phase = Phase::Flashing;
        let half = plan.image_bytes / 2;
        // The progress lines are the flash step's own.
        let mut progress = |n: u64| {
            let _ = (n >= half).then(|| plan.fault_point("mid-flash")); // hang:/panic: only
        };
        let o = FlashOptions {
            limit: Some(limit),
            expected_bytes: Some(plan.image_bytes),
            ..Default::default()
        };
        // "flash": the first attempt fails (the retry succeeds); "flash-always": both fail.
        if (plan.fault("flash") && attempt == 1) || plan.fault("flash-always") {
            last_err = Some(Error::new(
                "fault injection",
                "flash",
                "injected write failure",
            ));
            continue;
        }
        match flash::flash(reader, &plan.flash_device, &o, &mut progress) {
            Ok(st) => {
                if st.bytes != plan.image_bytes {
                    last_err = Some(Error::new(
                        "writing image to",
                        plan.flash_device.display(),
                        format!(
                            "wrote {} bytes, stage 1 proved {} bytes",
                            st.bytes, plan.image_bytes
                        ),
                    ));
                    continue;
                }
                crate::info!(
                    "wrote and verified {} bytes at {:.0} MB/s (read-back {:.1} s)",
                    st.bytes,
                    st.write_mb_per_s(),
                    st.verify_secs.unwrap_or(0.0)
                );
                last_err = None;
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    match last_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// resin-boot (config.json, networks), the Jetson boot flash, the EFI entry, then resin-data
/// (backup, log).
fn configure_new_disk(plan: &Stage2Plan) -> Result<()> {
    let layout = configure::find_layout(&plan.flash_device)?;
    let payload = PathBuf::from(&plan.payload);
    let boot_files = configure::write_boot(&plan.flash_device, &layout, &payload.join("boot"))?;
    crate::info!("resin-boot configured: {}", boot_files.join(", "));
    super::jetson::after_flash(plan)?;
    plan.fault_point("after-flash")?;
    // The EFI entry goes before resin-data so that its outcome is in the log saved there; a
    // failure still lets the backup and the log land, then fails stage 2.
    let efi = if plan.efi_setup {
        plan.fault_point("efi")
            .and_then(|()| efi_entry(plan, &layout))
    } else {
        Ok(())
    };
    if let Err(e) = &efi {
        crate::error!("{e}");
    }
    configure::with_data_partition(
        &plan.flash_device,
        &layout,
        Path::new("/dev"),
        Path::new("/mnt/data"),
        |root| {
            plan.fault_point("data")?;
            configure::copy_data(&payload.join("data"), root)?;
            write_log_into(root, plan)
        },
    )?;
    crate::sys::sync();
    efi
}

/// Adds the balenaOS UEFI boot entry when the device booted through UEFI (efivarfs mounted in
/// the RAM root by init).
fn efi_entry(plan: &Stage2Plan, layout: &configure::Layout) -> Result<()> {
    let efivars = Path::new("/sys/firmware/efi/efivars");
    let mounted = read_mounts()?
        .iter()
        .any(|m| m.fs_type == "efivarfs" && Path::new(&m.mount_point) == efivars);
    if !mounted {
        crate::info!("no UEFI variables (legacy BIOS boot): no EFI boot entry to write");
        return Ok(());
    }
    let arch = std::env::consts::ARCH;
    let Some(loader) = super::efi::loader_path(arch) else {
        crate::info!("no UEFI removable-media loader known for {arch}: no EFI boot entry");
        return Ok(());
    };
    let sig = super::efi::signature(&plan.flash_device, layout.table, &layout.boot)?;
    let opt = super::efi::load_option(super::efi::DESCRIPTION, &layout.boot, sig, loader);
    let n = super::efi::add_boot_entry(efivars, &opt)?;
    crate::info!(
        "EFI boot entry Boot{n:04X} '{}' → partition {} {loader}, first in BootOrder",
        super::efi::DESCRIPTION,
        layout.boot.index
    );
    Ok(())
}

/// Copies the stage 2 log into `<root>/takeover/stage2.log` (and the fallback-log name when
/// asked for), mode 0600.
fn write_log_into(root: &Path, plan: &Stage2Plan) -> Result<()> {
    let log = std::fs::read("/takeover.log").unwrap_or_default();
    let dir = root.join("takeover");
    std::fs::create_dir_all(&dir).ctx_path("creating", &dir)?;
    crate::files::write_private(&dir.join("stage2.log"), &log)?;
    if plan.fallback_log {
        let fd = root.join(&plan.fallback_log_dir);
        std::fs::create_dir_all(&fd).ctx_path("creating", &fd)?;
        crate::files::write_private(&fd.join(&plan.fallback_log_filename), &log)?;
    }
    Ok(())
}

/// After a failure before the flash (or --pretend): mount the old root again and leave the
/// log in its `/var/log/takeover-<what>-<time>.log`.
pub(crate) fn save_log_in_old_root(plan: &Stage2Plan, what: &str) {
    let (Some(dev), Some(fs)) = (&plan.old_root_device, &plan.old_root_fs_type) else {
        crate::warn!("the old root device is unknown; the log stays on the console only");
        return;
    };
    let mp = Path::new("/mnt/old_root_log");
    let _ = std::fs::create_dir_all(mp);
    if let Err(e) = sm::mount(Some(dev), mp, Some(fs), 0, None) {
        crate::error!("mounting {} to save the log: {e}", dev.display());
        return;
    }
    let name = format!(
        "takeover-{what}-{}.log",
        crate::log::timestamp().replace(':', "")
    );
    let dest = mp.join("var/log").join(&name);
    match std::fs::read("/takeover.log")
        .map_err(|e| Error::io("reading", "/takeover.log", e))
        .and_then(|log| crate::files::write_private(&dest, &log))
    {
        Ok(()) => crate::info!("log saved as /var/log/{name} on the old root"),
        Err(e) => crate::error!("{e}"),
    }
    crate::sys::sync();
    let _ = sm::umount2(mp, 0);
}

/// At the end of stage 2, whatever the outcome: the log on the `--log-to` device
/// (`/stage2.log`; vfat through the project's FAT writer, ext through the kernel).
fn save_log_to_device(plan: &Stage2Plan) {
    let Some(l) = &plan.log_to else { return };
    let mp = Path::new("/mnt/log");
    let _ = std::fs::create_dir_all(mp);
    crate::info!("saving the log on {} ({})", l.device.display(), l.fs_type);
    let log = std::fs::read("/takeover.log").unwrap_or_default();
    let still_mounted = read_mounts().ok().and_then(|ms| {
        let rdev = std::fs::metadata(&l.device).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.rdev()
        })?;
        let (maj, min) = (libc::major(rdev), libc::minor(rdev));
        ms.into_iter()
            .find(|m| m.major == maj && m.minor == min)
            .map(|m| m.mount_point)
    });
    let r = if let Err(e) = plan.fault_point("log-to") {
        Err(e)
    } else if let (Some(mp), true) = (&still_mounted, l.fs_type == LogFs::Vfat) {
        // Writing the FAT directly under a mounted kernel vfat would corrupt it.
        Err(Error::new(
            "saving the log on",
            l.device.display(),
            format!("still mounted at {mp}"),
        ))
    } else if l.fs_type == LogFs::Vfat {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&l.device)
            .ctx("opening", l.device.display())
            .and_then(|f| {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                let len = if len == 0 {
                    flash::target_size(&l.device)?
                } else {
                    len
                };
                let s = crate::fat::Slice::new(f, 0, len).ctx("opening", l.device.display())?;
                let mut fat = crate::fat::Fat::open(s)?;
                fat.write_file("/stage2.log", &log)?;
                fat.flush()
            })
    } else {
        sm::mount(Some(&l.device), mp, Some(l.fs_type.as_str()), 0, None)
            .ctx("mounting", l.device.display())
            .and_then(|()| {
                let r = crate::files::write_private(&mp.join("stage2.log"), &log);
                crate::sys::sync();
                let _ = sm::umount2(mp, 0);
                r
            })
    };
    match r {
        Ok(()) => crate::info!("log saved on {}", l.device.display()),
        Err(e) => crate::error!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_or_target_that_does_not_open_leaves_the_phase_before_the_flash() {
        let dir = crate::testutil::temp_dir("phase", "test");
        let target = dir.join("disk");
        std::fs::write(&target, vec![0xEE; 2 << 20]).unwrap();
        let mut plan = crate::stage2_plan::tests::sample();
        plan.fault = None;
        plan.image = dir.join("missing.img.gz");
        plan.flash_device = target.clone();
        let mut phase = Phase::BeforeFlash;
        let e = write_image(&plan, 2 << 20, &mut phase).unwrap_err();
        assert!(e.to_string().contains("missing.img.gz"), "{e}");
        assert_eq!(phase, Phase::BeforeFlash, "an unopened image wrote nothing");
        // The image opens, the target does not.
        plan.image = dir.join("image.img");
        let mut raw = vec![0u8; 1 << 20];
        raw[510] = 0x55;
        raw[511] = 0xaa;
        std::fs::write(&plan.image, raw).unwrap();
        plan.flash_device = dir.join("no-such-disk");
        let e = write_image(&plan, 2 << 20, &mut phase).unwrap_err();
        assert!(e.to_string().contains("no-such-disk"), "{e}");
        assert_eq!(
            phase,
            Phase::BeforeFlash,
            "an unopened target wrote nothing"
        );
        assert!(std::fs::read(&target).unwrap().iter().all(|&b| b == 0xEE));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
