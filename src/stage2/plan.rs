//! The stage 2 plan: everything stage 2 needs, written by stage 1 into the RAM root (0600).
//!
//! Stage 2 reads nothing else from the old system: no config.json, no work dir. The plan is
//! versioned; a plan of another version is refused (and the device reboots into the old OS).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const PLAN_VERSION: u32 = 1;

/// Where stage 1 builds the RAM root, as seen from the old root. After pivot_root it is `/`.
pub const RAM_ROOT: &str = "/run/takeover";
/// The plan, relative to the RAM root.
pub const PLAN_FILE: &str = "plan.json";
/// This binary inside the RAM root.
pub const BINARY: &str = "takeover";
/// The staged payload inside the RAM root: `boot/` (files for resin-boot) and `data/` (files
/// for resin-data), the same layout `--dry-run` stages into `<work-dir>/takeover-dry-run/`.
pub const PAYLOAD_DIR: &str = "payload";
/// The image inside the RAM root.
pub const IMAGE_FILE: &str = "image";
/// Where the old root is put by pivot_root, relative to the RAM root.
pub const OLD_ROOT: &str = "mnt/old_root";

/// True when stage 1 prepared a RAM root with a plan (as seen before the pivot).
pub fn plan_present() -> bool {
    Path::new(RAM_ROOT).join(PLAN_FILE).is_file()
}

/// Written by stage 1 into the RAM root right before it asks init to re-execute. A PID 1
/// that finds a plan but not this mark was started by an unrelated re-exec of init over the
/// leftovers of an interrupted stage 1, and gives PID 1 back ([`crate::stage2::init::hand_back`]).
pub const HANDOVER_MARK: &str = "handover-requested";

/// Written by stage 1 into the RAM root as soon as it is mounted: the swap areas stage 1 turned
/// off, one path per line, so that the next run turns them back on if this one is interrupted
/// ([`crate::stage1::leftovers`]).
pub const SWAPS_OFF_FILE: &str = "swaps-off";

/// Did stage 1 ask for the hand-over?
pub fn handover_requested() -> bool {
    Path::new(RAM_ROOT).join(HANDOVER_MARK).is_file()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDevice {
    pub device: PathBuf,
    /// "vfat" | "ext3" | "ext4"
    pub fs_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage2Plan {
    pub version: u32,
    /// Whole disk to write, e.g. `/dev/mmcblk0`.
    pub flash_device: PathBuf,
    /// Image inside the RAM root (absolute after the pivot, e.g. `/image`).
    pub image: PathBuf,
    /// Decoded size, proven in stage 1.
    pub image_bytes: u64,
    /// XXH64 is computed while flashing; the SHA-256 of the file was checked in stage 1.
    pub image_sha256: String,
    /// Payload directory inside the RAM root (`/payload`).
    pub payload: PathBuf,
    /// The old root filesystem (for logs after a failure before the flash).
    pub old_root_device: Option<PathBuf>,
    pub old_root_fs_type: Option<String>,
    pub log_to: Option<LogDevice>,
    pub log_level: String,
    pub pretend: bool,
    pub efi_setup: bool,
    pub fallback_log: bool,
    pub fallback_log_filename: String,
    pub fallback_log_dir: String,
    pub report_hup_progress: bool,
    pub change_dt_to: Option<String>,
    pub api_endpoint: Option<String>,
    /// Secret: never logged; the plan file is 0600 inside a 0700 RAM root.
    pub api_key: Option<String>,
    pub uuid: Option<String>,
    /// Seconds the whole of stage 2 may take before PID 1 gives up and reboots.
    pub deadline_secs: u64,
    /// Test-only fault injection point (ignored unless built with the fault-injection feature).
    #[serde(default)]
    pub fault: Option<String>,
    /// Stage 1's process: PID 1 waits (bounded) for it to exit before the pivot, so that its
    /// report and log are complete (the pivot changes the root of every process).
    #[serde(default)]
    pub stage1_pid: Option<u32>,
    /// The HTTP client for stage 2's API calls (`--report-hup-progress`, `--change-dt-to`),
    /// copied into the RAM root by stage 1; `None` when no call is needed.
    #[serde(default)]
    pub http_client: Option<HttpClient>,
    /// `jetson-xavier` or `jetson-xavier-nx`: the new image's boot blob is written to the
    /// board's boot flash after the flash (reference-behaviour §13.1).
    #[serde(default)]
    pub jetson: Option<String>,
}

/// Where the HTTP client is inside the RAM root (the same paths as on the old system).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpClient {
    /// "curl" | "wget"
    pub kind: String,
    pub program: PathBuf,
    /// Its libraries' directories: `LD_LIBRARY_PATH` (the RAM root has no ld.so.cache).
    pub lib_dirs: Vec<PathBuf>,
    /// The CA bundle (https endpoints only).
    pub ca_bundle: Option<PathBuf>,
    /// The old system's proxy (`https_proxy`... for the client), empty without one.
    #[serde(default)]
    pub proxy_env: Vec<(String, String)>,
}

impl Stage2Plan {
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings, numbers and paths cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8], origin: &Path) -> Result<Stage2Plan> {
        let p: Stage2Plan = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                "reading the stage 2 plan",
                origin.display(),
                format!("not a valid plan: {e}"),
            )
        })?;
        if p.version != PLAN_VERSION {
            return Err(Error::new(
                "reading the stage 2 plan",
                origin.display(),
                format!("plan version {} is not {PLAN_VERSION}", p.version),
            )
            .hint("stage 1 and stage 2 must be the same takeover binary"));
        }
        if let Some(k) = &p.api_key {
            crate::log::add_secret(k);
        }
        Ok(p)
    }

    pub fn load(path: &Path) -> Result<Stage2Plan> {
        let bytes = crate::files::read_limited(path, 1 << 20, "the stage 2 plan")?;
        Self::parse(&bytes, path)
    }

    /// Is fault `name` injected? Always false in builds without the `fault-injection` feature.
    pub fn fault(&self, name: &str) -> bool {
        cfg!(feature = "fault-injection") && self.fault.as_deref() == Some(name)
    }

    /// A stage 2 fault point (see [`inject`]): `Ok` unless this plan's fault names `point`.
    pub fn fault_point(&self, point: &str) -> Result<()> {
        inject(self.fault.as_deref(), point)
    }
}

// ------------------------------------------------------------------------- fault injection
//
// Test-only (cargo feature `fault-injection`, built apart from the release binary by
// `make vm-fault-binary`). Stage 1 reads `TAKEOVER_FAULT=<spec>` and puts it into the plan for
// stage 2. `<spec>` is a fault point name (that step fails with an error, which the normal
// failure path handles), `hang:<point>` (the process sleeps there forever: the stage 2
// deadline must end it) or `panic:<point>` (the process panics there). Without the feature
// every check is a constant `false`/`Ok(())`.
//
// Stage 1 points, in order: after-image, after-network, after-backup, after-checks,
// after-swapoff, after-ram-root, after-plan, after-bind, reexec (the re-exec command fails).
// Stage 2 points: after-pivot (init), supervise (init, with the watchdog open, before the
// worker starts), after-kill, after-unmount, before-flash, flash (first write attempt fails),
// flash-always (both fail), mid-flash (hang:/panic: only, at half the image), after-write,
// after-flash (resin-boot configured), efi, data, log-to.

/// Acts on fault `spec` at fault point `point`.
pub fn inject(spec: Option<&str>, point: &str) -> Result<()> {
    if !cfg!(feature = "fault-injection") {
        return Ok(());
    }
    let Some(spec) = spec else { return Ok(()) };
    if spec == point {
        return Err(Error::new("fault injection", point, "injected failure"));
    }
    if spec.strip_prefix("hang:") == Some(point) {
        crate::error!("fault injection: hanging at {point}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    if spec.strip_prefix("panic:") == Some(point) {
        // Deliberate: the panic path is what this fault tests (test builds only).
        panic!("fault injection: injected panic at {point}");
    }
    Ok(())
}

/// Stage 1's twin of [`Stage2Plan::fault`]: is `TAKEOVER_FAULT` exactly `point`?
pub fn fault_env(point: &str) -> bool {
    cfg!(feature = "fault-injection") && fault_spec().as_deref() == Some(point)
}

/// A stage 1 fault point: `Ok` unless `TAKEOVER_FAULT` names `point` (see [`inject`]).
pub fn fault_point(point: &str) -> Result<()> {
    inject(fault_spec().as_deref(), point)
}

/// `TAKEOVER_FAULT`, read only in builds with the feature.
pub fn fault_spec() -> Option<String> {
    std::env::var("TAKEOVER_FAULT")
        .ok()
        .filter(|_| cfg!(feature = "fault-injection"))
}

/// Stage 2's deadline: `default`, or `TAKEOVER_DEADLINE` seconds in builds with the feature
/// (so that a hang scenario ends in a minute, not an hour).
pub fn deadline_secs(default: u64) -> u64 {
    std::env::var("TAKEOVER_DEADLINE")
        .ok()
        .filter(|_| cfg!(feature = "fault-injection"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Stage2Plan {
        Stage2Plan {
            version: PLAN_VERSION,
            flash_device: "/dev/vda".into(),
            image: "/image".into(),
            image_bytes: 1 << 26,
            image_sha256: "00".repeat(32),
            payload: "/payload".into(),
            old_root_device: Some("/dev/vda1".into()),
            old_root_fs_type: Some("ext4".into()),
            log_to: None,
            log_level: "info".into(),
            pretend: false,
            efi_setup: true,
            fallback_log: false,
            fallback_log_filename: "fallback.log".into(),
            fallback_log_dir: "fallback_log".into(),
            report_hup_progress: false,
            change_dt_to: None,
            api_endpoint: Some("https://api.example".into()),
            api_key: Some("plan-secret-key-123".into()),
            uuid: None,
            deadline_secs: 3600,
            fault: Some("before-flash".into()),
            stage1_pid: Some(4242),
            http_client: Some(HttpClient {
                kind: "curl".into(),
                program: "/usr/bin/curl".into(),
                lib_dirs: vec!["/lib/x86_64-linux-gnu".into()],
                ca_bundle: None,
                proxy_env: vec![],
            }),
            jetson: None,
        }
    }

    #[test]
    fn round_trip_and_version_check() {
        let p = sample();
        let back = Stage2Plan::parse(&p.to_json(), Path::new("plan.json")).unwrap();
        assert_eq!(back, p);
        assert!(crate::log::redact("plan-secret-key-123").contains("<redacted>"));
        let mut v: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
        v["version"] = 99.into();
        let e = Stage2Plan::parse(v.to_string().as_bytes(), Path::new("plan.json")).unwrap_err();
        assert!(e.to_string().contains("version 99"), "{e}");
        // Fault injection is off unless the feature is built in.
        assert_eq!(p.fault("before-flash"), cfg!(feature = "fault-injection"));
    }

    #[test]
    fn fault_points_fail_only_where_named_and_only_with_the_feature() {
        let on = cfg!(feature = "fault-injection");
        assert!(inject(None, "after-kill").is_ok());
        assert!(inject(Some("after-unmount"), "after-kill").is_ok());
        // hang:/panic: of another point do nothing here.
        assert!(inject(Some("hang:mid-flash"), "after-kill").is_ok());
        assert!(inject(Some("panic:mid-flash"), "after-kill").is_ok());
        let r = inject(Some("after-kill"), "after-kill");
        assert_eq!(r.is_err(), on);
        if let Err(e) = r {
            assert!(e.to_string().contains("injected failure"), "{e}");
        }
        let p = sample();
        assert_eq!(p.fault_point("before-flash").is_err(), on);
        assert!(p.fault_point("after-flash").is_ok());
        if !on {
            // Without the feature the environment is never read.
            assert_eq!(deadline_secs(3600), 3600);
        }
    }
}
