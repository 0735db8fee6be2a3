//! Acceptance of the network and backup issues through the binary: `--dry-run` stages the
//! exact files stage 2 writes, the report lists them, and they read back intact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

fn config(dir: &Path) -> PathBuf {
    let p = dir.join("config.json");
    std::fs::write(
        &p,
        r#"{"applicationId":7,"deviceType":"raspberrypi4-64","apiEndpoint":"https://api.example.invalid","vpnEndpoint":"vpn.example.invalid","vpnPort":443,"apiKey":"PAYLOAD-TEST-KEY-987654321"}"#,
    )
    .unwrap();
    p
}

/// Runs a dry run over `sysroot`; returns (exit code, report, stderr).
fn dry_run(sysroot: &Path, work: &Path, extra: &[&str]) -> (i32, Value, String) {
    let cfg = config(work);
    let img = fake_image();
    let report = work.join("r.json");
    let args = dry_run_args(sysroot, &cfg, img, work, Some(&report), extra);
    let o = run_args(&args);
    let r: Value = serde_json::from_slice(
        &std::fs::read(&report)
            .unwrap_or_else(|e| panic!("no report ({e}); stderr: {}", stderr(&o))),
    )
    .unwrap();
    (o.status.code().unwrap_or(-1), r, stderr(&o))
}

#[test]
fn every_network_fixture_stages_one_reparsable_keyfile_per_migratable_network() {
    let roots = fixture("net/roots");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&roots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut checked = 0;
    for root in names {
        let case = root.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = TempDir::new("net-dry");
        let (code, r, err) = dry_run(&root, tmp.path(), &[]);
        // What the library collects from the same tree, as the dry run saw it: the expectation.
        let opts = takeover::net::NetOptions {
            scan_wifis: true,
            wifis: vec![],
            nwmgr_cfgs: vec![],
            balena_os: r["os"]["balena_os"].as_bool().unwrap_or(false),
        };
        let collected = takeover::net::collect(&takeover::probe::Root::new(&root), &opts);
        let collected = match collected {
            Ok(c) => c,
            Err(e) => {
                // A tree the library refuses is refused by the dry run too, naming the same cause.
                assert_eq!(code, 1, "{case}");
                assert!(err.contains(&e.cause), "{case}: {err}");
                checked += 1;
                continue;
            }
        };
        let staged_dir = tmp.join("takeover-dry-run/boot/system-connections");
        let mut staged: BTreeMap<String, takeover::net::types::Network> = BTreeMap::new();
        for e in std::fs::read_dir(&staged_dir).into_iter().flatten() {
            let p = e.unwrap().path();
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&p).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600, "{case}: {}", p.display());
            let n = takeover::net::nm::parse(&std::fs::read(&p).unwrap(), &p).unwrap_or_else(|e| {
                panic!("{case}: staged {} does not re-parse: {e}", p.display())
            });
            staged.insert(p.file_name().unwrap().to_string_lossy().into_owned(), n);
        }
        // One staged file per file the library generates, and the report lists each.
        let mut want_names: Vec<String> = collected
            .connection_files()
            .iter()
            .map(|n| n.to_string())
            .collect();
        want_names.sort();
        assert_eq!(
            staged.keys().cloned().collect::<Vec<_>>(),
            want_names,
            "{case}: staged files"
        );
        let listed: Vec<String> = r["network"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect();
        for n in &want_names {
            assert!(
                listed.iter().any(|l| l == n),
                "{case}: report lacks {n}: {listed:?}"
            );
        }
        // SSID and secret intact: every migratable network of the source is in a staged file.
        for net in collected
            .networks
            .iter()
            .filter(|n| n.ssid.is_some() && n.security.secret().is_some())
        {
            let found = staged.values().any(|s| {
                s.ssid == net.ssid
                    && s.security.secret().map(|x| x.expose())
                        == net.security.secret().map(|x| x.expose())
            });
            assert!(
                found,
                "{case}: network {} lost its SSID or secret",
                net.name
            );
        }
        // Unmigratable networks are named in a warning.
        for (name, _) in &collected.unmigratable {
            assert!(
                err.contains(name.as_str()),
                "{case}: no warning names {name}: {err}"
            );
        }
        // Every network found but not migrated is in the report with its status and reason.
        let entries = r["network"].as_array().unwrap();
        for e in &collected.left_out {
            assert!(
                entries.iter().any(|x| x["name"] == e.name.as_str()
                    && x["status"] == e.status.as_str()
                    && x["reason"].as_str().is_some_and(|r| !r.is_empty())),
                "{case}: report lacks left-out {} ({}): {entries:?}",
                e.name,
                e.status
            );
        }
        assert!(!err.contains("PAYLOAD-TEST-KEY"), "{case}: key in the log");
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} network fixtures checked");
}

#[test]
fn dry_run_backup_extracts_with_gnu_tar_to_exactly_the_configured_tree() {
    let tmp = TempDir::new("bk-dry");
    let src = tmp.join("src");
    std::fs::create_dir_all(src.join("data/sub dir")).unwrap();
    std::fs::write(src.join("data/a.txt"), b"alpha").unwrap();
    std::fs::write(src.join("data/sub dir/b.log"), b"bravo").unwrap();
    std::fs::write(src.join("data/skip.tmp"), b"no").unwrap();
    std::fs::create_dir_all(src.join("conf")).unwrap();
    std::fs::write(src.join("conf/app.conf"), b"k=v").unwrap();
    let cfg = tmp.join("backup.yml");
    std::fs::write(
        &cfg,
        format!(
            "- volume: app-data\n  items:\n  - source: {0}/data\n    filter: '\\.(txt|log)$'\n- volume: app-config\n  items:\n  - source: {0}/conf\n    target: etc\n",
            src.display()
        ),
    )
    .unwrap();
    let work = tmp.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let root = fixture("sysroots/pi4-bookworm");
    let (_, r, err) = dry_run(
        &root,
        &work,
        &["--backup-cfg", cfg.to_str().unwrap(), "--no-nwmgr-check"],
    );
    let tgz = work.join("takeover-dry-run/data/backup.tgz");
    assert!(tgz.exists(), "no backup staged: {err}");
    let out = tmp.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let mut files = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    walk(&out, &out, &mut files);
    files.sort();
    assert_eq!(
        files,
        [
            "app-config/etc/app.conf",
            "app-data/a.txt",
            "app-data/sub dir/b.log"
        ]
    );
    assert_eq!(
        std::fs::read(out.join("app-data/sub dir/b.log")).unwrap(),
        b"bravo"
    );
    let b = &r["backup"];
    assert_eq!(b["files"], 3);
    assert_eq!(b["volumes"], serde_json::json!(["app-data", "app-config"]));
    // The archive counts against the RAM budget.
    let ram = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ram-budget")
        .unwrap();
    assert!(ram["detail"].as_str().unwrap().contains("backup"), "{ram}");
}

#[test]
fn invalid_backup_config_fails_naming_the_volume_before_anything_is_staged() {
    let tmp = TempDir::new("bk-bad");
    let cfg = tmp.join("backup.yml");
    std::fs::write(
        &cfg,
        "- volume: good\n  items:\n  - source: /nonexistent/takeover/path\n",
    )
    .unwrap();
    let root = fixture("sysroots/pi4-bookworm");
    let (code, r, err) = dry_run(
        &root,
        tmp.path(),
        &["--backup-cfg", cfg.to_str().unwrap(), "--no-nwmgr-check"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("good") && err.contains("/nonexistent/takeover/path"),
        "{err}"
    );
    assert_eq!(r["result"], "failed");
    assert!(!tmp.join("takeover-dry-run/data/backup.tgz").exists());
}
