//! The operator's path through stage 1 (issue 20): which error comes first, which hints are
//! given, and what a dry run reports when it cannot get the image.

use std::path::Path;

use serde_json::Value;

use crate::dry_run::{config_for, image_for};
use crate::util::*;

/// Runs a dry run on a fixture sysroot; returns (exit code, stderr + stdout, report).
fn dry(sysroot: &str, cfg: &Path, img: &Path, tmp: &TempDir, extra: &[&str]) -> (i32, String, Value) {
    let report = tmp.join("r.json");
    let args = dry_run_args(
        &fixture("sysroots").join(sysroot),
        cfg,
        img,
        tmp.path(),
        Some(&report),
        extra,
    );
    let o = run_args(&args);
    let r: Value = serde_json::from_slice(
        &std::fs::read(&report).unwrap_or_else(|e| panic!("no report ({e}): {}", stderr(&o))),
    )
    .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!("{}{}", stderr(&o), stdout(&o)),
        r,
    )
}

fn check<'r>(r: &'r Value, name: &str) -> &'r Value {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {r}"))
}

/// An intel-nuc fleet's config.json on a Raspberry Pi 4 with the Pi image: the first error is
/// the device type (naming the types the board takes), never an image mismatch, and nothing
/// suggests `--no-dt-check`; with `--no-dt-check` the architecture mismatch is still refused.
#[test]
fn wrong_fleet_fails_first_on_the_device_type_and_no_dt_check_does_not_cross_architectures() {
    let tmp = TempDir::new("wrong-fleet");
    let img = image_for("raspberrypi4-64", tmp.path());
    let cfg = config_for("intel-nuc", tmp.path());
    for extra in [&["--no-nwmgr-check"][..], &["--no-nwmgr-check", "--no-dt-check"]] {
        let (code, out, r) = dry("pi4-bookworm", &cfg, &img, &tmp, extra);
        assert_eq!(code, 1, "{extra:?}: {out}");
        let first = out.lines().find(|l| l.starts_with("ERROR")).unwrap();
        assert!(first.contains("checking the device type"), "{first}");
        assert!(
            first.contains("device type intel-nuc does not run on this board (Raspberry Pi 4")
                && first.contains("this board takes: raspberrypi4-64"),
            "{first}"
        );
        assert!(!out.contains("image is for"), "{out}");
        for bad in ["pass --no-dt-check", "or --no-dt-check", "--no-dt-check to accept"] {
            assert!(!out.contains(bad), "{extra:?} suggests {bad}: {out}");
            assert!(!r.to_string().contains(bad), "{extra:?}: {r}");
        }
        let dt = check(&r, "device-type");
        assert_eq!(dt["status"], "fail", "{extra:?}: {dt}");
        assert!(dt["detail"].as_str().unwrap().contains("amd64"), "{dt}");
        if extra.contains(&"--no-dt-check") {
            assert!(
                dt["detail"]
                    .as_str()
                    .unwrap()
                    .contains("--no-dt-check does not override"),
                "{dt}"
            );
        }
        assert_eq!(check(&r, "image")["status"], "not-run", "{r}");
        assert!(r["error"].as_str().unwrap().contains("intel-nuc"), "{r}");
    }
}

/// `--no-dt-check` with the right fleet but an image built for another architecture: refused.
#[test]
fn no_dt_check_refuses_an_image_for_another_architecture() {
    let tmp = TempDir::new("other-arch-image");
    let img = image_for("intel-nuc", tmp.path());
    let cfg = config_for("raspberrypi4-64", tmp.path());
    let (code, out, r) = dry(
        "pi4-bookworm",
        &cfg,
        &img,
        &tmp,
        &["--no-nwmgr-check", "--no-dt-check"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("checking the image architecture") && out.contains("built for amd64"),
        "{out}"
    );
    assert_eq!(check(&r, "image")["status"], "not-run", "{r}");
    // The same image on a PC goes ahead.
    let cfg = config_for("intel-nuc", tmp.path());
    let (code, out, _) = dry(
        "nuc-jammy-nvme-efi",
        &cfg,
        &img,
        &tmp,
        &["--no-nwmgr-check", "--no-dt-check"],
    );
    assert_eq!(code, 0, "{out}");
}
