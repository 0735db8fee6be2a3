//! What the image's boot partition says about it: `device-type.json` and `os-release` (or
//! `image-version-info`), read with the FAT reader.
#![forbid(unsafe_code)]

use std::io::{Read, Seek};

use crate::error::{Context, Result};

/// What the boot partition says: device type, version, and why either is missing.
pub(super) type BootInfo = (Option<String>, Option<String>, Option<String>);

/// `slug` of a device-type.json.
pub fn parse_device_type(json: &[u8]) -> std::result::Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("device-type.json is not JSON: {e}"))?;
    v.get("slug")
        .and_then(|s| s.as_str())
        .map(str::to_string)
        .ok_or_else(|| "device-type.json has no \"slug\"".into())
}

/// `VERSION_ID` (else `VERSION`) of an os-release file, quotes removed.
pub fn parse_os_release_version(text: &str) -> Option<String> {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').trim_matches('\'').to_string())
        })
    };
    get("VERSION_ID")
        .or_else(|| get("VERSION"))
        .filter(|v| !v.is_empty())
}

/// Reads device type and version from the boot partition at `offset` (`len` bytes) of `dev`.
pub(super) fn read_boot<D: Read + Seek>(
    dev: D,
    offset: u64,
    len: u64,
    name: &str,
) -> Result<BootInfo> {
    let slice =
        crate::fat::Slice::new(dev, offset, len).ctx("opening the boot partition in", name)?;
    let mut fat = crate::fat::Fat::open(slice)?;
    let mut note = None;
    let dt = if fat.exists("/device-type.json")? {
        match parse_device_type(&fat.read_file("/device-type.json", 1 << 20)?) {
            Ok(s) => Some(s),
            Err(e) => {
                note = Some(e);
                None
            }
        }
    } else {
        note = Some("no device-type.json in the boot partition".into());
        None
    };
    let mut version = None;
    if fat.exists("/os-release")? {
        let t = fat.read_file("/os-release", 64 << 10)?;
        version = parse_os_release_version(&String::from_utf8_lossy(&t));
    }
    if version.is_none() && fat.exists("/image-version-info")? {
        let t = fat.read_file("/image-version-info", 64 << 10)?;
        let t = String::from_utf8_lossy(&t);
        version = parse_os_release_version(&t).or_else(|| {
            let l = t.lines().next().unwrap_or("").trim();
            (!l.is_empty() && l.len() < 64).then(|| l.to_string())
        });
    }
    Ok((dt, version, note))
}
