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
