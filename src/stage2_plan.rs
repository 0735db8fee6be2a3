//! The stage 2 plan, the contract between the stages: everything stage 2 needs, written by
//! stage 1 into the RAM root (0600), and the RAM root's layout both stages agree on.
//!
//! Stage 2 reads nothing else from the old system: no config.json, no work dir. The plan is
//! versioned; a plan of another version is refused (and the device reboots into the old OS).
//! This module names neither stage: stage 1 builds a [`Stage2Plan`], stage 2 loads it.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::http::ToolKind;
use crate::error::{Error, Result};
use crate::log::Level;

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

/// Where stage 2 leaves its log (`--log-to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDevice {
    pub device: PathBuf,
    pub fs_type: LogFs,
}

/// The filesystems stage 2 can leave its log on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFs {
    Vfat,
    Ext2,
    Ext3,
    Ext4,
}

impl LogFs {
    /// A filesystem type as the kernel names it (`/proc/mounts`, blkid); `None` for others.
    pub fn from_name(s: &str) -> Option<LogFs> {
        Some(match s {
            "vfat" => LogFs::Vfat,
            "ext2" => LogFs::Ext2,
            "ext3" => LogFs::Ext3,
            "ext4" => LogFs::Ext4,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogFs::Vfat => "vfat",
            LogFs::Ext2 => "ext2",
            LogFs::Ext3 => "ext3",
            LogFs::Ext4 => "ext4",
        }
    }
}

impl std::fmt::Display for LogFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Jetson boards whose boot flash stage 2 writes after the flash (eMMC boot0 or QSPI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JetsonBoard {
    /// AGX Xavier: the eMMC hardware boot partition.
    #[serde(rename = "jetson-xavier")]
    Xavier,
    /// Xavier NX: the QSPI flash.
    #[serde(rename = "jetson-xavier-nx")]
    XavierNx,
}

impl JetsonBoard {
    pub const ALL: [JetsonBoard; 2] = [JetsonBoard::Xavier, JetsonBoard::XavierNx];

    /// The board of a device type id (`jetson-xavier`, `jetson-xavier-nx`); `None` for others.
    pub fn from_id(id: &str) -> Option<JetsonBoard> {
        Self::ALL.into_iter().find(|b| b.id() == id)
    }

    pub fn id(self) -> &'static str {
        match self {
            JetsonBoard::Xavier => "jetson-xavier",
            JetsonBoard::XavierNx => "jetson-xavier-nx",
        }
    }
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
    #[serde(with = "level_name")]
    pub log_level: Level,
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
    /// Test-only fault injection spec, see [`crate::fault`] (ignored unless built with the
    /// fault-injection feature).
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
    /// The new image's boot blob is written to this board's boot flash after the flash.
    #[serde(default)]
    pub jetson: Option<JetsonBoard>,
}

/// Where the HTTP client is inside the RAM root (the same paths as on the old system).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpClient {
    /// curl or GNU wget (`"curl"` | `"wget"` in the JSON).
    pub kind: ToolKind,
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
        crate::fault::named(self.fault.as_deref(), name)
    }

    /// A stage 2 fault point (see [`crate::fault::point`]): `Ok` unless this plan's fault
    /// names `point`.
    pub fn fault_point(&self, point: &str) -> Result<()> {
        crate::fault::point(self.fault.as_deref(), point)
    }
}

mod level_name {
    use super::Level;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(l: &Level, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&l.as_str().to_ascii_lowercase())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
        let name = String::deserialize(d)?;
        Level::parse(&name).ok_or_else(|| D::Error::custom(format!("unknown log level '{name}'")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
            log_level: Level::Info,
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
                kind: ToolKind::Curl,
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
        let on = cfg!(feature = "fault-injection");
        assert_eq!(p.fault_point("before-flash").is_err(), on);
        assert!(p.fault_point("after-flash").is_ok());
    }

    #[test]
    fn typed_fields_keep_their_names_in_the_file() {
        let mut p = sample();
        p.jetson = Some(JetsonBoard::XavierNx);
        p.log_to = Some(LogDevice {
            device: "/dev/sdb1".into(),
            fs_type: LogFs::Vfat,
        });
        let v: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(v["jetson"], "jetson-xavier-nx");
        assert_eq!(v["log_level"], "info");
        assert_eq!(v["http_client"]["kind"], "curl");
        assert_eq!(v["log_to"]["fs_type"], "vfat");
        let mut bad = v.clone();
        bad["http_client"]["kind"] = "lynx".into();
        let e = Stage2Plan::parse(bad.to_string().as_bytes(), Path::new("plan.json")).unwrap_err();
        assert!(e.to_string().contains("lynx"), "{e}");
        assert_eq!(
            JetsonBoard::from_id("jetson-xavier"),
            Some(JetsonBoard::Xavier)
        );
        assert_eq!(JetsonBoard::from_id("jetson-nano"), None);
    }
}
