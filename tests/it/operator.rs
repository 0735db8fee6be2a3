//! The operator's path through stage 1 (issue 20): which error comes first, which hints are
//! given, and what a dry run reports when it cannot get the image.

use std::path::Path;

use serde_json::Value;

use crate::dry_run::{config_for, image_for};
use crate::util::*;

/// Runs a dry run on a fixture sysroot; returns (exit code, stderr + stdout, report).
fn dry(
    sysroot: &str,
    cfg: &Path,
    img: &Path,
    tmp: &TempDir,
    extra: &[&str],
) -> (i32, String, Value) {
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
    for extra in [
        &["--no-nwmgr-check"][..],
        &["--no-nwmgr-check", "--no-dt-check"],
    ] {
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
        for bad in [
            "pass --no-dt-check",
            "or --no-dt-check",
            "--no-dt-check to accept",
        ] {
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

/// A config.json for `slug` whose API is `api`.
fn config_with_api(dir: &Path, slug: &str, api: &str) -> std::path::PathBuf {
    let p = dir.join("api-config.json");
    let c = serde_json::json!({
        "applicationId": 1701, "deviceType": slug, "apiEndpoint": api,
        "vpnEndpoint": "vpn.example.invalid", "vpnPort": 443, "apiKey": "FIXTURE-API-KEY-0123456789",
        "uuid": "0123456789abcdef"
    });
    std::fs::write(&p, c.to_string()).unwrap();
    p
}

/// A dry run on the Pi 4 fixture with `cfg`, `-i img` when given, `--check-timeout 2` and
/// `extra`; returns its output and report.
fn run_on_pi4(
    tmp: &TempDir,
    cfg: &Path,
    img: Option<&Path>,
    extra: &[&str],
) -> (std::process::Output, Value) {
    let report = tmp.join("r.json");
    let sysroot = fixture("sysroots/pi4-bookworm");
    let mut args: Vec<String> = vec!["--dry-run".into(), "--sysroot".into()];
    args.push(sysroot.display().to_string());
    args.extend(["-c".into(), cfg.display().to_string()]);
    if let Some(i) = img {
        args.extend(["-i".into(), i.display().to_string()]);
    }
    args.extend(["-w".into(), tmp.path().display().to_string()]);
    args.extend(["--report".into(), report.display().to_string()]);
    args.extend(["--check-timeout".into(), "2".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = run_args(&args);
    let r = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (o, r)
}

/// `--check-timeout` bounds the API check: against a server that accepts and never answers,
/// the check makes 3 attempts of at most `--check-timeout` s each (and says so), and the run
/// ends well within that bound (the old client waited 30 s per attempt, 5 attempts, about
/// 3 minutes), naming the way around once.
#[test]
fn check_timeout_bounds_the_api_check() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            held.push(c);
        }
    });
    let tmp = TempDir::new("check-timeout");
    let img = image_for("raspberrypi4-64", tmp.path());
    let cfg = config_with_api(
        tmp.path(),
        "raspberrypi4-64",
        &format!("http://127.0.0.1:{port}"),
    );
    let t = std::time::Instant::now();
    let (o, r) = run_on_pi4(
        &tmp,
        &cfg,
        Some(&img),
        &["--no-vpn-check", "--no-nwmgr-check"],
    );
    let took = t.elapsed();
    let out = format!("{}{}", stderr(&o), stdout(&o));
    assert_eq!(o.status.code(), Some(1), "{out}");
    // 3 × (2 s + a few s of watchdog slack) + 3 s back-off, plus the image check: a generous
    // functional bound, far below the old client's.
    assert!(took.as_secs() < 80, "took {took:?}: {out}");
    assert!(
        out.contains("API check: 3 attempts of at most 2 s each"),
        "{out}"
    );
    let api = check(&r, "api-ping");
    assert_eq!(api["status"], "fail", "{api}");
    let d = api["detail"].as_str().unwrap();
    assert!(d.contains("3 attempts of at most 2 s each"), "{d}");
    assert_eq!(d.matches("--no-api-check").count(), 1, "{d}");
}

/// A dry run whose image cannot be downloaded (the API refuses connections) still runs every
/// check that does not need the image, marks the image "not-run" with the reason, prints the
/// plan, and ends with the download's error (exit 1).
#[test]
fn dry_run_without_network_reports_every_other_check() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = TempDir::new("no-network");
    let cfg = config_with_api(
        tmp.path(),
        "raspberrypi4-64",
        &format!("http://127.0.0.1:{port}"),
    );
    let (o, r) = run_on_pi4(
        &tmp,
        &cfg,
        None,
        &["--no-api-check", "--no-vpn-check", "--no-nwmgr-check"],
    );
    let out = format!("{}{}", stderr(&o), stdout(&o));
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_eq!(r["result"], "failed");
    assert!(r["error"].as_str().unwrap().contains("127.0.0.1"), "{r}");
    let names: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in [
        "root-user",
        "config-json",
        "device-type",
        "image",
        "os-support",
        "network-config",
        "init-system",
        "target-disk",
        "ram-budget",
        "work-dir-space",
    ] {
        assert!(names.contains(&n), "{n} missing: {names:?}");
    }
    let image = check(&r, "image");
    assert_eq!(image["status"], "not-run", "{image}");
    assert!(
        image["detail"].as_str().unwrap().contains("127.0.0.1"),
        "{image}"
    );
    // The version lookup is bounded by --check-timeout as the API check is.
    assert!(
        image["detail"]
            .as_str()
            .unwrap()
            .contains("3 attempts of at most 2 s each"),
        "{image}"
    );
    for n in ["device-type", "os-support", "init-system", "target-disk"] {
        assert_eq!(check(&r, n)["status"], "pass", "{n}: {r}");
    }
    assert_eq!(r["target"]["device"], "/dev/mmcblk0", "{r}");
    assert!(out.contains("not run  image"), "{out}");
    assert!(out.contains("pass     target-disk"), "{out}");
}

/// Hints never suggest a flag that is already given, and no line says the same thing twice:
/// every `--no-*-check` given, on a device that fails (busybox init) and has nothing to
/// migrate; a successful dry run ends with a sentence.
#[test]
fn hints_do_not_repeat_or_suggest_given_flags() {
    let tmp = TempDir::new("hints");
    let img = image_for("raspberrypi3", tmp.path());
    let cfg = config_for("raspberrypi3", tmp.path());
    let given = ["--no-nwmgr-check", "--no-os-check", "--no-dt-check"];
    let (code, out, r) = dry("pi3-alpine-busybox", &cfg, &img, &tmp, &given);
    assert_eq!(code, 1, "{out}");
    let all = format!("{out}\n{r}");
    for f in given.iter().chain(&["--no-api-check", "--no-vpn-check"]) {
        for s in [format!("pass {f}"), format!("or {f}")] {
            assert!(!all.contains(&s), "suggests {f}, already given: {all}");
        }
    }
    for line in out.lines() {
        let mut seen = std::collections::HashSet::new();
        for clause in line.split("; ").map(str::trim).filter(|c| c.len() > 12) {
            assert!(seen.insert(clause), "'{clause}' twice in: {line}");
        }
    }
    // The same device with a migratable init: the run goes ahead and says so as a sentence.
    let tmp = TempDir::new("hints-ok");
    let img = image_for("raspberrypi4-64", tmp.path());
    let cfg = config_for("raspberrypi4-64", tmp.path());
    let (code, out, _) = dry("pi4-bookworm", &cfg, &img, &tmp, &["--no-nwmgr-check"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("a migration can go ahead on this device; the files stage 2 would write"),
        "{out}"
    );
}
