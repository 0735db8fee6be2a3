//! Issue 20: the plan and the checks give the same figures (MiB rounded as the checks round
//! them), and image verification shows its progress and a closing line.

use crate::util::*;

/// The first whole number after `after` in `text`.
fn number_after(text: &str, after: &str) -> Option<u64> {
    let rest = &text[text.find(after)? + after.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

#[test]
fn the_plan_and_the_checks_give_the_same_figures() {
    let (_d, work, cfg) = crate::write_only::setup("figures", "raspberrypi4-64");
    let root = fixture("sysroots/pi4-bookworm");
    let o = run_args(&dry_run_args(
        &root,
        &cfg,
        fake_image(),
        &work,
        None,
        &["--no-nwmgr-check"],
    ));
    let out = stdout(&o);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let disk_plan = number_after(&out, "disk      /dev/mmcblk0 (").unwrap();
    let disk_check = number_after(&out, "/dev/mmcblk0 (").unwrap();
    let target_line = out.lines().find(|l| l.contains("target-disk")).unwrap();
    assert_eq!(
        number_after(target_line, "/dev/mmcblk0 ("),
        Some(disk_plan),
        "{out}"
    );
    assert_eq!(disk_plan, disk_check);
    let need_plan = number_after(&out, "RAM       ").unwrap();
    let avail_plan = number_after(&out, "MiB needed,").unwrap();
    let ram_line = out.lines().find(|l| l.contains("ram-budget")).unwrap();
    assert_eq!(
        number_after(ram_line, "stage 2 needs"),
        Some(need_plan),
        "{out}"
    );
    assert_eq!(number_after(ram_line, "),"), Some(avail_plan), "{out}");
    // Verification: a closing line with size, time and rate.
    assert!(err.contains("verifying: 64.0 MiB in "), "{err}");
    assert!(err.contains(" MB/s)"), "{err}");
}
