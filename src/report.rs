//! The JSON report (`--report FILE`): every key and when it is null in docs/REPORT.md. Written in every mode,
//! on failure too. Holds no secret: nothing in it is copied from config.json but the device type.
#![forbid(unsafe_code)]

use std::path::Path;

use serde::Serialize;

use crate::error::Result;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub takeover_version: String,
    pub mode: String,
    pub result: String,
    pub error: Option<String>,
    pub device: Option<Device>,
    pub os: Option<Os>,
    pub init: Option<Init>,
    pub target: Option<Target>,
    pub image: Option<Image>,
    pub network: Vec<Network>,
    /// The HTTP(S) proxy of the old system, when one is configured.
    pub proxy: Option<Proxy>,
    pub hostname: Option<String>,
    pub backup: Option<Backup>,
    pub ram: Option<Ram>,
    pub checks: Vec<Check>,
    /// Files stage 2 would write (dry-run) or wrote, relative to the partition root.
    pub staged_files: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Device {
    pub arch: String,
    pub model: Option<String>,
    pub detected: Option<String>,
    pub config_device_type: Option<String>,
    pub target_device_type: Option<String>,
    pub compatible: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Os {
    pub id: Option<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
    pub supported: bool,
    pub balena_os: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Init {
    pub path: Option<String>,
    /// "systemd" | "sysvinit" | "busybox" | "openrc" | "other"
    pub kind: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Target {
    pub device: Option<String>,
    pub size_bytes: Option<u64>,
    pub efi: bool,
    pub secure_boot: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Image {
    pub path: Option<String>,
    pub version: Option<String>,
    pub compressed_bytes: Option<u64>,
    pub uncompressed_bytes: Option<u64>,
    pub sha256: Option<String>,
    /// "balena" | "flasher" | "unknown"
    pub layout: String,
    pub device_type: Option<String>,
    /// "gzip" | "raw" | "zip"
    pub format: Option<String>,
    pub partition_table: Option<String>,
    pub verified: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Network {
    pub name: String,
    /// "wifi" | "ethernet" | "other"
    pub kind: String,
    pub ssid: Option<String>,
    /// "networkmanager" | "wpa_supplicant" | "connman" | "nwmgr-cfg" | "balenaos" | "dhcpcd" |
    /// "ifupdown" | "netplan" | "systemd-networkd" | "iwd"
    pub source: String,
    /// "migrated" (a file under system-connections/), "not-migrated" (cannot be: `reason`),
    /// "ignored" (another source wins: `reason`), "not-needed" (wired DHCP or the loopback
    /// interface: balenaOS does these by itself).
    pub status: String,
    /// Why it was not migrated; for migrated entries, where it came from and what changed.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Proxy {
    /// URLs without their passwords.
    pub http: Option<String>,
    pub https: Option<String>,
    pub no_proxy: Option<String>,
    /// Where it was found (environment of takeover or PID 1, /etc/environment, apt).
    pub source: Vec<String>,
    /// The `system-proxy/` files written for balenaOS.
    pub migrated: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Backup {
    pub bytes: u64,
    pub files: u64,
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ram {
    pub available_bytes: u64,
    pub required_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
    /// Not run because something it needs is missing (a dry run without the image).
    #[serde(rename = "not-run")]
    NotRun,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

impl Report {
    pub fn new(mode: &str) -> Report {
        Report {
            takeover_version: env!("CARGO_PKG_VERSION").into(),
            mode: mode.into(),
            result: "failed".into(),
            ..Default::default()
        }
    }

    pub fn check(&mut self, name: &str, status: Status, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            status,
            detail: crate::log::redact(&detail.into()),
        });
    }

    /// True when no check failed.
    pub fn checks_pass(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Fail)
    }

    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings, numbers and options cannot fail.
        let s = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        crate::log::redact(&s)
    }

    /// Writes the report (0600) to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut s = self.to_json();
        s.push('\n');
        crate::files::write_private(path, s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_fixed_keys_exist_with_null_when_unknown() {
        let r = Report::new("dry-run");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for k in [
            "takeover_version",
            "mode",
            "result",
            "error",
            "device",
            "os",
            "init",
            "target",
            "image",
            "network",
            "hostname",
            "backup",
            "ram",
            "checks",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["mode"], "dry-run");
        assert_eq!(v["result"], "failed");
        assert!(v["device"].is_null());
    }

    #[test]
    fn status_serialises_lowercase() {
        let mut r = Report::new("migrate");
        r.check("root", Status::Pass, "running as root");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["checks"][0]["status"], "pass");
    }
}
