use crate::util::*;

#[test]
fn help_exits_0_and_names_program_and_version() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("takeover {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains("--dry-run"));
}

#[test]
fn unknown_option_exits_2_naming_it() {
    let o = run(&["--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--bogus"), "{}", stderr(&o));
}

#[test]
fn bad_value_exits_2_naming_the_option() {
    let o = run(&["--log-level", "chatty", "-c", "x.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--log-level"), "{}", stderr(&o));
}

#[test]
fn sysroot_without_dry_run_exits_2() {
    let o = run(&["--sysroot", "/nonexistent", "-c", "x.json"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn capital_v_prints_takeovers_own_version() {
    let o = run(&["-V"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o).trim(),
        format!("takeover {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_usage_error_with_a_mode_still_writes_the_report() {
    let dir = TempDir::new("usage-report");
    let report = dir.join("report.json");
    let o = run(&["--dry-run", "--report", report.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--config"), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["mode"], "dry-run");
    assert_eq!(r["result"], "failed");
    assert!(r["error"].as_str().unwrap().contains("--config"), "{r}");
}
