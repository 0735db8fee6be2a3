//! Acceptance of the probe issue: `takeover --dry-run --sysroot <fixture> -c config.json -i image
//! --no-api-check --no-vpn-check --report r.json` for every fixture sysroot and every run in
//! its expect.json gives the right board, compatibility, OS verdict, init, target and checks,
//! and changes nothing outside its work dir.
//!
//! Runs whose expectations depend on the image's size (`image_mib`, `disk_mib`) are covered by
//! the library tests in src/probe/fixture_tests.rs, which pass those sizes in directly.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

/// The base image with resin-boot's device-type.json rewritten for `slug` (our FAT writer).
pub(crate) fn image_for(slug: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{slug}.img"));
    std::fs::copy(fake_image(), &out).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&out)
        .unwrap();
    let table = takeover::formats::partition::read_table(&mut f).unwrap();
    let boot = table.partitions.iter().find(|p| p.index == 1).unwrap();
    let slice = takeover::fat::Slice::new(f, boot.start, boot.size).unwrap();
    let mut fat = takeover::fat::Fat::open(slice).unwrap();
    let dt = format!(r#"{{"slug":"{slug}","name":"test","arch":"aarch64"}}"#);
    fat.write_file("/device-type.json", dt.as_bytes()).unwrap();
    fat.flush().unwrap();
    out
}

pub(crate) fn config_for(slug: &str, dir: &Path) -> PathBuf {
    let p = dir.join("config.json");
    let c = serde_json::json!({
        "applicationId": 1701, "deviceType": slug, "apiEndpoint": "https://api.example.invalid",
        "vpnEndpoint": "vpn.example.invalid", "vpnPort": 443, "apiKey": "FIXTURE-API-KEY-0123456789",
        "uuid": "0123456789abcdef"
    });
    std::fs::write(&p, c.to_string()).unwrap();
    p
}

/// The run expects the device-type check to fail (then the image step is not tried).
fn dt_fails(run: &Value) -> bool {
    run["checks"]["device-type"] == "fail"
}

#[test]
fn every_fixture_sysroot_gives_the_expected_report() {
    let root = fixture("sysroots");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expect.json").exists())
        .collect();
    fixtures.sort();
    assert!(
        fixtures.len() >= 12,
        "expected at least 12 fixture sysroots, found {}",
        fixtures.len()
    );
    let mut runs = 0;
    for fx in &fixtures {
        let name = fx.file_name().unwrap().to_string_lossy().into_owned();
        let expect: Value =
            serde_json::from_slice(&std::fs::read(fx.join("expect.json")).unwrap()).unwrap();
        for (i, run) in expect["runs"].as_array().unwrap().iter().enumerate() {
            if run.get("image_mib").is_some() || run.get("disk_mib").is_some() {
                continue;
            }
            let ctx = format!("{name} run {i}");
            let tmp = TempDir::new("dry");
            let slug = run["device_type"].as_str().unwrap();
            // The image is built for the device type the migration ends with.
            let a: Vec<&str> = run["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let image_slug = a
                .iter()
                .position(|x| *x == "--change-dt-to")
                .map(|i| a[i + 1])
                .unwrap_or(slug);
            let img = image_for(image_slug, tmp.path());
            let cfg = config_for(slug, tmp.path());
            let report = tmp.join("r.json");
            let extra: Vec<&str> = run["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .chain(["--no-nwmgr-check"])
                .collect();
            let args = dry_run_args(fx, &cfg, &img, tmp.path(), Some(&report), &extra);
            let before = std::fs::read(&img).unwrap();
            let o = run_args(&args);
            let r: Value = serde_json::from_slice(
                &std::fs::read(&report)
                    .unwrap_or_else(|e| panic!("{ctx}: no report ({e}); stderr: {}", stderr(&o))),
            )
            .unwrap();
            assert_eq!(r["mode"], "dry-run", "{ctx}");
            assert_eq!(
                r["device"]["detected"], expect["detected"],
                "{ctx}: detected board"
            );
            assert_eq!(r["device"]["arch"], expect["arch"], "{ctx}: arch");
            // What the given config.json says, and what will be installed (--change-dt-to).
            assert_eq!(
                r["device"]["config_device_type"], slug,
                "{ctx}: config_device_type"
            );
            assert_eq!(
                r["device"]["target_device_type"], image_slug,
                "{ctx}: target_device_type"
            );
            assert_eq!(
                r["device"]["compatible"], run["compatible"],
                "{ctx}: compatible"
            );
            assert_eq!(
                r["os"]["supported"], expect["os"]["supported"],
                "{ctx}: OS verdict"
            );
            assert_eq!(
                r["os"]["balena_os"], expect["os"]["balena_os"],
                "{ctx}: balenaOS"
            );
            assert_eq!(r["init"]["kind"], expect["init"], "{ctx}: init");
            let target = r["target"].get("device").cloned().unwrap_or(Value::Null);
            if run["target"].is_null() {
                assert!(
                    r["checks"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|c| c["name"] == "target-disk" && c["status"] == "fail"),
                    "{ctx}: no target expected, so target-disk must fail"
                );
            } else {
                assert_eq!(target, run["target"], "{ctx}: target disk");
            }
            let mut any_fail = false;
            for c in r["checks"].as_array().unwrap() {
                let n = c["name"].as_str().unwrap();
                let want = &run["checks"][n];
                if n == "stage2-client" {
                    // --change-dt-to with the fixture's uuid needs curl in stage 2: the trees
                    // hold none, so the dry run says the migration cannot go ahead.
                    assert_eq!(c["status"], "fail", "{ctx}: {n}");
                    assert!(c["detail"].as_str().unwrap().contains("curl"), "{ctx}: {n}");
                    any_fail = true;
                    continue;
                }
                if n == "image" {
                    // Verified unless the device type does not fit: then it is not tried.
                    let want = if dt_fails(run) { "not-run" } else { "pass" };
                    assert_eq!(c["status"], want, "{ctx}: {n}: {}", c["detail"]);
                    continue;
                }
                if n == "ram-budget" && dt_fails(run) && want == "pass" {
                    // Without the image its size is unknown: a warning saying so.
                    assert_eq!(c["status"], "warn", "{ctx}: {n}: {}", c["detail"]);
                    continue;
                }
                if n == "network-config" {
                    // The trees hold no network profiles; --no-nwmgr-check makes this a skip.
                    assert_eq!(c["status"], "skip", "{ctx}: {n}");
                    continue;
                }
                assert_eq!(&c["status"], want, "{ctx}: check {n}: {}", c["detail"]);
                any_fail |= c["status"] == "fail";
            }
            assert_eq!(
                o.status.code(),
                Some(if any_fail { 1 } else { 0 }),
                "{ctx}: exit status; {}",
                stderr(&o)
            );
            // The staged config.json is there, private, with the fleet's keys and no leak.
            let staged = tmp.join("takeover-dry-run/boot/config.json");
            let meta = std::fs::metadata(&staged).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
                0o600,
                "{ctx}"
            );
            let text = std::fs::read_to_string(&report).unwrap();
            assert!(
                !text.contains("FIXTURE-API-KEY"),
                "{ctx}: API key in the report"
            );
            assert!(
                !stderr(&o).contains("FIXTURE-API-KEY"),
                "{ctx}: API key in the log"
            );
            // Nothing read was changed.
            assert!(
                std::fs::read(&img).unwrap() == before,
                "{ctx}: image changed"
            );
            runs += 1;
        }
    }
    assert!(runs >= 12, "only {runs} runs checked");
    eprintln!("{runs} dry runs over {} fixtures checked", fixtures.len());
}

/// Leftovers of an interrupted stage 1 (the RAM root and a bind mount of takeover over init) are
/// found in the mount table; a dry run reports them and changes nothing.
#[test]
fn leftovers_of_an_interrupted_run_are_reported() {
    let tmp = TempDir::new("left");
    let sysroot = tmp.join("sysroot");
    let fx = fixture("sysroots").join("x86-debian12-bios-virtio");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&fx)
        .arg(&sysroot)
        .status()
        .unwrap();
    assert!(st.success());
    let mi = sysroot.join("proc/self/mountinfo");
    let mut table = std::fs::read_to_string(&mi).unwrap();
    table.push_str(
        "91 26 0:52 / /run/takeover rw,nosuid,nodev - tmpfs tmpfs rw,size=102400k,mode=700\n\
         92 21 0:52 /takeover /usr/lib/systemd/systemd rw,nosuid,nodev - tmpfs tmpfs rw\n",
    );
    std::fs::write(&mi, table).unwrap();
    let img = image_for("genericx86-64-ext", tmp.path());
    let cfg = config_for("genericx86-64-ext", tmp.path());
    let report = tmp.join("r.json");
    let o = run_args(&dry_run_args(
        &sysroot,
        &cfg,
        &img,
        tmp.path(),
        Some(&report),
        &["--no-nwmgr-check"],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("interrupted run left the RAM root /run/takeover")
            && warnings.contains("bind mount of takeover over /usr/lib/systemd/systemd"),
        "{warnings}"
    );
    assert!(
        stderr(&o).contains("a real run removes it first"),
        "{}",
        stderr(&o)
    );
}
