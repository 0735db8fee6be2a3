//! The policy half of image verification: layout, size, SHA-256, device type. Each refusal
//! says what to do.
#![forbid(unsafe_code)]

use std::path::Path;

use super::source::HINT_REDOWNLOAD;
use super::verified::*;
use crate::error::{Error, Result};
use crate::formats::sha256::parse_hex_digest;

/// The policy half: layout, size, SHA-256, device type. Each refusal says what to do.
pub fn check(path: &Path, v: &Verified, o: &VerifyOptions) -> Result<()> {
    let obj = path.display();
    if let Some(want) = &o.expected_sha256 {
        let want = parse_hex_digest(want).ok_or_else(|| {
            Error::usage("--image-sha256", format!("'{want}' is not 64 hex digits"))
        })?;
        if want != v.sha256 {
            return Err(Error::new(
                "checking the image checksum",
                &obj,
                format!("SHA-256 is {}, expected {want}", v.sha256),
            )
            .hint("download the image again, or check the value given with --image-sha256"));
        }
    }
    match v.layout {
        Layout::Balena => {}
        Layout::Flasher => return Err(Error::new(
            "checking the image layout",
            &obj,
            "this is a balenaOS flasher image (partitions flash-boot, flash-rootA, ...); \
                 flashing it would install the flasher, not balenaOS",
        )
        .hint(
            "extract the inner image (/opt/*.balenaos-img in flash-rootA) and pass it with -i, \
                 or let takeover download the raw image (omit -i)",
        )),
        Layout::Unknown => {
            let labels: Vec<String> = v
                .partitions
                .iter()
                .map(|p| {
                    format!(
                        "p{} {} {}",
                        p.part.index,
                        p.fstype,
                        p.label_or_name().unwrap_or("(no label)")
                    )
                })
                .collect();
            return Err(Error::new(
                "checking the image layout",
                &obj,
                format!(
                    "not a balenaOS image: expected partitions labelled {}, found [{}]",
                    BALENA_LABELS.join(", "),
                    labels.join("; ")
                ),
            )
            .hint("pass a balenaOS image downloaded from the balena dashboard or API"));
        }
    }
    // A raw image has no checksum: a cut-off file shows as partitions running past its end.
    if let Some(p) = v
        .partitions
        .iter()
        .filter(|p| p.part.end() > v.uncompressed_bytes)
        .max_by_key(|p| p.part.end())
    {
        return Err(Error::new(
            "checking the image size",
            &obj,
            format!(
                "partition {} ({}) ends at byte {}, after the end of the image ({} bytes): \
                 the image is truncated",
                p.part.index,
                p.label_or_name().unwrap_or("no label"),
                p.part.end(),
                v.uncompressed_bytes
            ),
        )
        .hint(HINT_REDOWNLOAD));
    }
    if let Some(size) = o.target_size {
        let need = v.required_bytes();
        if need > size {
            return Err(too_big(&obj, need, size));
        }
    }
    if let Some(want) = &o.expected_device_type {
        match &v.device_type {
            Some(dt) if dt == want => {}
            Some(dt) => {
                return Err(Error::new(
                    "checking the image device type",
                    &obj,
                    format!("the image is for {dt} but the device type to install is {want}"),
                )
                .hint(format!(
                    "use the balenaOS image for {want} (leave out -i and takeover downloads it)"
                )))
            }
            None => {
                return Err(Error::new(
                    "checking the image device type",
                    &obj,
                    format!(
                        "the device type the image was built for cannot be read ({})",
                        v.boot_note
                            .as_deref()
                            .unwrap_or("no device-type.json in resin-boot")
                    ),
                )
                .hint("pass an unmodified balenaOS image, or --no-dt-check"))
            }
        }
    }
    Ok(())
}
