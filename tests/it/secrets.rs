//! Secrets (issue 11): the apiKey and the wifi PSKs/passwords never appear in stdout, stderr, the
//! `--log-file` (at trace level) or the `--report`; every staged file that holds one is mode
//! 0600. The bad-input runs (tests/it/bad_input.rs) check the apiKey on their failure paths.

use std::path::{Path, PathBuf};

use crate::util::*;

const KEY: &str = "SECRETS-TEST-API-KEY-5f3e2d1c0b";
/// Not a prefix or suffix of KEY: each secret is looked for on its own.
const DEVICE_KEY: &str = "dev1ce-4pi-k3y-9a8b7c6d5e";

/// Every `psk=` and `password=` value in the fixture tree (quotes stripped).
fn fixture_secrets(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                for line in text.lines() {
                    let l = line.trim();
                    for k in ["psk=", "password=", "Passphrase="] {
                        if let Some(v) = l.strip_prefix(k) {
                            let v = v.trim().trim_matches('"');
                            if v.len() >= 8 {
                                out.push(v.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    walk(root, &mut out);
    out.sort();
    out.dedup();
    out
}

fn files_below(d: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(d).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_below(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A dry run over `root` at trace level with a config.json holding both keys; `extra` goes
/// last. Returns the output and the paths of the log and the report.
fn traced_dry_run(
    root: &Path,
    tmp: &TempDir,
    extra: &[&str],
) -> (std::process::Output, PathBuf, PathBuf) {
    let cfg = tmp.join("config.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"applicationId":7,"deviceType":"raspberrypi4-64","apiEndpoint":"https://api.example.invalid","vpnEndpoint":"vpn.example.invalid","vpnPort":443,"apiKey":"{KEY}","deviceApiKey":"{DEVICE_KEY}"}}"#
        ),
    )
    .unwrap();
    let log = tmp.join("takeover.log");
    let report = tmp.join("report.json");
    let log_s = log.display().to_string();
    let mut more = vec!["--log-level", "trace", "--log-file", &log_s];
    more.extend_from_slice(extra);
    let args = dry_run_args(root, &cfg, fake_image(), tmp.path(), Some(&report), &more);
    (run_args(&args), log, report)
}

#[test]
fn api_key_and_psks_never_in_logs_or_report_and_staged_secrets_are_0600() {
    let root = fixture("net/roots/nm-pi");
    let mut secrets = fixture_secrets(&root);
    assert!(
        secrets.len() >= 3,
        "expected PSKs in the nm-pi fixture, found {secrets:?}"
    );
    let tmp = TempDir::new("secrets");
    secrets.push(KEY.to_string());
    secrets.push(DEVICE_KEY.to_string());
    let (o, log, report) = traced_dry_run(&root, &tmp, &[]);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    let staged_dir = tmp.join("takeover-dry-run");
    let mut staged = Vec::new();
    files_below(&staged_dir, &mut staged);
    assert!(
        staged.iter().any(|p| p.ends_with("boot/config.json")),
        "nothing staged: {err}"
    );
    let artifacts = [
        ("stdout", stdout(&o)),
        ("stderr", err.clone()),
        ("log file", std::fs::read_to_string(&log).unwrap()),
        ("report", std::fs::read_to_string(&report).unwrap()),
    ];
    assert!(artifacts[2].1.contains("TRACE") || artifacts[2].1.contains("DEBUG"));
    for (what, text) in &artifacts {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "secret {s:?} in the {what}");
        }
    }
    // Staged files: any that holds a secret is 0600; the staging dir itself is private.
    let mut holding = 0;
    for p in &staged {
        let bytes = std::fs::read(p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        if secrets.iter().any(|s| text.contains(s.as_str())) {
            holding += 1;
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(p).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600, "{} holds a secret", p.display());
        }
    }
    assert!(
        holding >= 2,
        "expected config.json and keyfiles with secrets staged, found {holding}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&staged_dir).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0, "staging dir mode {mode:o}");
    eprintln!(
        "{} secrets checked in 4 artifacts and {} staged files ({holding} hold secrets)",
        secrets.len(),
        staged.len()
    );
}

/// A run that fails after config.json and every network (with its PSK) were read — here on a
/// backup configuration that names no existing source — keeps them out of stdout, stderr, the
/// trace-level log and the report just the same.
#[test]
fn secrets_stay_out_of_a_failure_after_they_were_read() {
    let root = fixture("net/roots/nm-pi");
    let mut secrets = fixture_secrets(&root);
    let tmp = TempDir::new("secrets-fail");
    secrets.extend([KEY.to_string(), DEVICE_KEY.to_string()]);
    let backup = fixture("backup/16-source-not-found.yml")
        .display()
        .to_string();
    let (o, log, report) = traced_dry_run(&root, &tmp, &["--backup-cfg", &backup]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let log_text = std::fs::read_to_string(&log).unwrap();
    // The networks were read before the failure (so their PSKs were in memory).
    assert!(log_text.contains("network"), "{log_text}");
    let report_text = std::fs::read_to_string(&report).unwrap();
    assert!(
        report_text.contains("\"failed\"") && report_text.contains("backup"),
        "{report_text}"
    );
    for (what, text) in [
        ("stdout", stdout(&o)),
        ("stderr", stderr(&o)),
        ("log file", log_text),
        ("report", report_text),
    ] {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "secret {s:?} in the {what}");
        }
    }
}
