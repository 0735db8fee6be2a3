//! The bad-input corpus (issue 11): for each bad input the binary ends with exit status 1 or 2,
//! a message that names the input and says what to do, no panic, and nothing changed: the image
//! and the config.json are byte for byte the same, and the only thing in the test's own work dir
//! is (at most) the dry-run staging dir.
//!
//! Every run is `--dry-run --sysroot <fixture>`, `-d` against the local mock API, or
//! `--write-only` onto a file this test created.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const KEY: &str = "BADINPUT-API-KEY-0123456789abcdef";
type CfgCase<'a> = (&'a str, Option<Vec<u8>>, Vec<&'a str>);

const SLUG: &str = "raspberrypi4-64";

/// A work dir with a good config.json and a copy of the fake image.
struct Case {
    dir: TempDir,
    work: PathBuf,
    cfg: PathBuf,
    img: PathBuf,
}

impl Case {
    fn new(tag: &str) -> Case {
        let dir = TempDir::new(tag);
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let cfg = dir.join("config.json");
        std::fs::write(&cfg, good_config(SLUG, "https://api.example.invalid")).unwrap();
        let img = dir.join("pi4.img");
        std::fs::copy(fake_image(), &img).unwrap();
        Case {
            dir,
            work,
            cfg,
            img,
        }
    }

    /// `--dry-run --sysroot <sysroot> -c <cfg> -i <img>` with this case's work dir and `extra`.
    fn dry_run(&self, sysroot: &Path, cfg: &Path, img: &Path, extra_args: &[&str]) -> Output {
        let mut extra = vec!["--no-nwmgr-check"];
        extra.extend_from_slice(extra_args);
        run_args(&dry_run_args(sysroot, cfg, img, &self.work, None, &extra))
    }
}

fn good_config(slug: &str, api: &str) -> String {
    serde_json::json!({
        "applicationId": 1701, "deviceType": slug, "apiEndpoint": api,
        "vpnEndpoint": "vpn.example.invalid", "vpnPort": 443, "apiKey": KEY,
        "uuid": "0123456789abcdef"
    })
    .to_string()
}

fn pi4() -> PathBuf {
    fixture("sysroots/pi4-bookworm")
}

/// Snapshot of the files a run must not change.
fn snapshot(paths: &[&Path]) -> Vec<Option<Vec<u8>>> {
    paths
        .iter()
        .map(|p| {
            if p.is_file() {
                std::fs::read(p).ok()
            } else {
                None
            }
        })
        .collect()
}

/// The common assertions of every bad input: exit 1 or 2, no panic, the message names `input`
/// and holds each of `words` (case-insensitive) and a hint, no secret, nothing else in `work`.
fn assert_refused(ctx: &str, o: &Output, input: &str, words: &[&str], work: &Path) {
    let err = format!("{}{}", stdout(o), stderr(o));
    let code = o.status.code();
    assert!(
        matches!(code, Some(1) | Some(2)),
        "{ctx}: exit status {code:?}; stderr: {err}"
    );
    for bad in ["panicked", "internal error", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "{ctx}: panic: {err}");
    }
    assert!(
        err.contains(input),
        "{ctx}: message does not name {input}: {err}"
    );
    let lower = err.to_lowercase();
    for w in words {
        assert!(
            lower.contains(&w.to_lowercase()),
            "{ctx}: message lacks '{w}': {err}"
        );
    }
    assert!(lower.contains("hint:"), "{ctx}: no hint (the fix): {err}");
    assert!(!err.contains(KEY), "{ctx}: API key in stderr");
    assert!(!stdout(o).contains(KEY), "{ctx}: API key in stdout");
    // Nothing but the dry-run staging dir in the work dir.
    for e in std::fs::read_dir(work).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            // A partial download is kept on purpose: the next run resumes it.
            name == "takeover-dry-run"
                || name == ".takeover.lock"
                || name.ends_with(".img.gz.part"),
            "{ctx}: left {name} in the work dir"
        );
    }
}

#[test]
fn bad_config_json() {
    let c = Case::new("bad-cfg");
    let root = pi4();
    let huge = {
        let mut v = b"{\"applicationId\": 1, \"pad\": \"".to_vec();
        v.resize(2 << 20, b'x');
        v.extend_from_slice(b"\"}");
        v
    };
    let binary: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: Vec<CfgCase> = vec![
        // "Download config.json again" only for a config.json that parses but is wrong; a
        // missing file gets its path, an unparsable one where it stops parsing.
        (
            "missing.json",
            None,
            vec!["no such file", "there is no file at"],
        ),
        ("empty.json", Some(Vec::new()), vec!["empty", "no content"]),
        ("huge.json", Some(huge), vec!["larger than", "right file"]),
        (
            "binary.json",
            Some(binary),
            vec!["not valid json", "stops being json at line 1, column"],
        ),
        (
            "invalid.json",
            Some(b"{\"applicationId\": 1,".to_vec()),
            vec!["not valid json"],
        ),
        (
            "array.json",
            Some(b"[1, 2, 3]".to_vec()),
            vec!["config.json"],
        ),
        (
            "nokeys.json",
            Some(br#"{"applicationId": 1701}"#.to_vec()),
            vec!["deviceType", "missing", "download config.json again"],
        ),
        (
            "types.json",
            Some(br#"{"applicationId": "x", "deviceType": 5, "apiKey": 7}"#.to_vec()),
            vec!["deviceType", "not a string"],
        ),
    ];
    for (name, content, words) in cases {
        let p = c.dir.join(name);
        if let Some(b) = &content {
            std::fs::write(&p, b).unwrap();
        }
        let before = snapshot(&[&p, &c.img]);
        let o = c.dry_run(&root, &p, &c.img, &[]);
        assert_refused(name, &o, name, &words, &c.work);
        assert_eq!(snapshot(&[&p, &c.img]), before, "{name}: input changed");
        if !words.contains(&"download config.json again") {
            assert!(!stderr(&o).contains("again"), "{name}: {}", stderr(&o));
        }
    }
    // Unreadable: root reads any mode, so a directory stands in for an unreadable file.
    let d = c.dir.join("dir.json");
    std::fs::create_dir_all(&d).unwrap();
    let o = c.dry_run(&root, &d, &c.img, &[]);
    assert_refused(
        "directory as config.json",
        &o,
        "dir.json",
        &["directory"],
        &c.work,
    );
    if takeover::sys::geteuid() == 0 {
        eprintln!("NOTE: unreadable config.json (chmod 000) not run as root: root reads it anyway; a directory stands in");
    } else {
        let p = c.dir.join("unreadable.json");
        std::fs::write(&p, good_config(SLUG, "https://x.invalid")).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
        let o = c.dry_run(&root, &p, &c.img, &[]);
        assert_refused("chmod 000", &o, "unreadable.json", &["permission"], &c.work);
    }
}

#[test]
fn bad_backup_config() {
    let c = Case::new("bad-backup");
    let root = pi4();
    let invalid = c.dir.join("invalid.yml");
    std::fs::write(&invalid, "volumes: [\n  - x: {\n").unwrap();
    let cases: Vec<(PathBuf, &str, Vec<&str>)> = vec![
        (
            invalid,
            "invalid.yml",
            vec!["not valid YAML", "--backup-cfg"],
        ),
        (
            fixture("backup/13-bad-filter.yml"),
            "13-bad-filter.yml",
            vec!["invalid filter regex", "balena-(.*"],
        ),
        (
            fixture("backup/16-source-not-found.yml"),
            "16-source-not-found.yml",
            vec![
                "/nonexistent/takeover-test/source",
                "correct the source path",
            ],
        ),
        (
            c.dir.join("nonexistent.yml"),
            "nonexistent.yml",
            vec!["no such file"],
        ),
    ];
    for (p, name, words) in cases {
        let before = snapshot(&[&p, &c.cfg, &c.img]);
        let o = c.dry_run(
            &root,
            &c.cfg,
            &c.img,
            &["--backup-cfg", p.to_str().unwrap()],
        );
        assert_refused(name, &o, name, &words, &c.work);
        assert_eq!(
            snapshot(&[&p, &c.cfg, &c.img]),
            before,
            "{name}: input changed"
        );
    }
}

/// Runs a shell command (test set-up only).
fn sh(cmd: &str) {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn bad_images() {
    let c = Case::new("bad-img");
    let root = pi4();
    let d = c.dir.path();
    let q = |p: &str| d.join(p).display().to_string();
    // gzip of the good image; a flipped byte in the middle; the first half only.
    sh(&format!(
        "gzip -1 -c {} > {}",
        c.img.display(),
        q("good.img.gz")
    ));
    let gz = std::fs::read(d.join("good.img.gz")).unwrap();
    let mut flipped = gz.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    std::fs::write(d.join("corrupt.img.gz"), &flipped).unwrap();
    std::fs::write(d.join("truncated.img.gz"), &gz[..gz.len() / 2]).unwrap();
    std::fs::write(d.join("zero.img"), b"").unwrap();
    let mut x: u32 = 12345;
    let random: Vec<u8> = (0..(1 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(d.join("random.img"), &random).unwrap();
    // A plain MBR disk with one ext4 partition.
    sh(&format!(
        "truncate -s 64M {p} && echo 'start=2048,type=83' | sfdisk -q {p} && \
         mkfs.ext4 -q -F -E offset=1048576 -L rootfs {p} 63M",
        p = q("plain.img")
    ));

    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "corrupt.img.gz",
            vec!["corrupt", "download the image again"],
        ),
        (
            "truncated.img.gz",
            vec!["truncated", "download the image again"],
        ),
        (
            "zero.img",
            vec!["not a gzip, zip or raw disk image", "balenaOS image"],
        ),
        (
            "random.img",
            vec!["not a gzip, zip or raw disk image", "balenaOS image"],
        ),
        ("plain.img", vec!["not a balenaOS image", "resin-boot"]),
        ("missing.img", vec!["no such file"]),
    ];
    for (name, words) in cases {
        let p = d.join(name);
        let before = snapshot(&[&p, &c.cfg]);
        let o = c.dry_run(&root, &c.cfg, &p, &[]);
        assert_refused(name, &o, name, &words, &c.work);
        assert_eq!(snapshot(&[&p, &c.cfg]), before, "{name}: input changed");
    }

    // Wrong device type: a raspberrypi4-64 image for an intel-nuc fleet on a Pi 4. The
    // config.json is at fault (its fleet is for another board), not the image, and no
    // override is offered.
    let nuc = d.join("nuc.json");
    std::fs::write(
        &nuc,
        good_config("intel-nuc", "https://api.example.invalid"),
    )
    .unwrap();
    let before = snapshot(&[&c.img, &nuc]);
    let o = c.dry_run(&root, &nuc, &c.img, &[]);
    assert_refused(
        "wrong device type",
        &o,
        "nuc.json",
        &["intel-nuc", "this board takes: raspberrypi4-64"],
        &c.work,
    );
    assert!(!stderr(&o).contains("--no-dt-check"), "{}", stderr(&o));
    assert_eq!(snapshot(&[&c.img, &nuc]), before);

    // Oversized for the target: the pi4 fixture with a 32 MiB SD card.
    let small = d.join("small-root");
    sh(&format!("cp -a {} {}", root.display(), small.display()));
    std::fs::write(small.join("sys/block/mmcblk0/size"), "65536\n").unwrap();
    let before = snapshot(&[&c.img, &c.cfg]);
    let o = c.dry_run(&small, &c.cfg, &c.img, &[]);
    assert_refused(
        "oversized image",
        &o,
        "/dev/mmcblk0",
        &["needs 64 MiB but the disk has only 32 MiB", "bigger disk"],
        &c.work,
    );
    assert_eq!(snapshot(&[&c.img, &c.cfg]), before);
}

#[test]
fn bad_flash_to() {
    let c = Case::new("bad-flash-to");
    let root = pi4();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "/dev/mmcblk0p2",
            vec!["partition", "--flash-to /dev/mmcblk0"],
        ),
        ("/dev/sdz", vec!["no block device", "lsblk"]),
    ];
    for (dev, words) in cases {
        let before = snapshot(&[&c.img, &c.cfg]);
        let o = c.dry_run(&root, &c.cfg, &c.img, &["--flash-to", dev]);
        assert_refused(dev, &o, dev, &words, &c.work);
        assert_eq!(snapshot(&[&c.img, &c.cfg]), before);
    }
}

fn write_only(c: &Case, target: &Path, work: &Path) -> Output {
    run(&[
        "--write-only",
        "-c",
        c.cfg.to_str().unwrap(),
        "-i",
        c.img.to_str().unwrap(),
        "-f",
        target.to_str().unwrap(),
        "-w",
        work.to_str().unwrap(),
    ])
}

/// Mounts a small tmpfs at `at` (root only), unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, opts: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(at)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn write_only_onto_read_only_and_full_places() {
    if takeover::sys::geteuid() != 0 {
        eprintln!("SKIP: mounting a tmpfs needs root");
        return;
    }
    let c = Case::new("bad-wo");
    let Some(ro) = Tmpfs::mount(&c.dir.join("ro"), "ro,size=1m") else {
        eprintln!("SKIP: cannot mount a tmpfs here (no CAP_SYS_ADMIN?)");
        return;
    };
    // mode=0755: a fresh tmpfs is 1777, a work dir takeover refuses (others can write it).
    let Some(full) = Tmpfs::mount(&c.dir.join("full"), "size=1m,mode=0755") else {
        eprintln!("SKIP: cannot mount a tmpfs here");
        return;
    };
    let before = snapshot(&[&c.img, &c.cfg]);
    // The target in a read-only directory.
    let o = write_only(&c, &ro.0.join("out.img"), &c.work);
    assert_refused("read-only", &o, "out.img", &["read-only"], &c.work);
    // The work dir (and the target) on a full filesystem.
    let o = write_only(&c, &full.0.join("out.img"), &full.0);
    assert_refused(
        "full",
        &o,
        "full",
        &["no space", "free some space"],
        &full.0,
    );
    assert!(!full.0.join("out.img").exists());
    // A full work dir, the target elsewhere: the target is not created. Filled to the last
    // byte (the filler next to the work dir): --write-only decodes the image once, checking it
    // on its way to the target, and needs the work dir only for the staged files (the old
    // verification pass copied the boot partition there first, so a 1 MiB work dir with room
    // left was refused before).
    let work = full.0.join("work");
    std::fs::create_dir_all(&work).unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(full.0.join("filler")).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
    }
    let target = c.dir.join("target.img");
    let o = write_only(&c, &target, &work);
    assert_refused("full work dir", &o, "full", &["no space"], &work);
    assert!(!target.exists(), "target created although the run failed");
    assert_eq!(snapshot(&[&c.img, &c.cfg]), before);
    drop(full);
    drop(ro);
}

/// A loop device over a file of `mib` MiB in `dir` (root only), detached on drop.
struct Loop {
    dev: String,
}

impl Loop {
    fn new(dir: &Path, name: &str, mib: u64) -> Option<Loop> {
        let file = dir.join(name);
        let f = std::fs::File::create(&file).unwrap();
        f.set_len(mib << 20).unwrap();
        drop(f);
        let o = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&file)
            .output()
            .ok()?;
        o.status.success().then(|| Loop {
            dev: String::from_utf8_lossy(&o.stdout).trim().to_string(),
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// `--write-only` onto block devices it must refuse: a mounted disk, a disk smaller than the
/// image, a device name that does not exist. Each is a loop device this test made; none is
/// written. (A partition is refused in `bad_flash_to`; loop partitions need udev.)
#[test]
fn write_only_onto_a_mounted_a_too_small_or_a_missing_disk() {
    if takeover::sys::geteuid() != 0 {
        eprintln!("SKIP: loop devices need root");
        return;
    }
    let c = Case::new("bad-wo-dev");
    let Some(small) = Loop::new(c.dir.path(), "small.img", 8) else {
        eprintln!("SKIP: no loop devices here");
        return;
    };
    let used = Loop::new(c.dir.path(), "used.img", 96).unwrap();
    sh(&format!("mkfs.ext4 -q -F {}", used.dev));
    let mnt = c.dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    // Read-only with no journal replay: the mount itself does not change the file.
    sh(&format!(
        "mount -o ro,noload {} {}",
        used.dev,
        mnt.display()
    ));
    let files = [
        c.dir.join("small.img"),
        c.dir.join("used.img"),
        c.img.clone(),
        c.cfg.clone(),
    ];
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let before = snapshot(&refs);
    // A mistyped device name: not created as a file in /dev.
    let typo = format!("{}9", used.dev);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (small.dev.as_str(), vec!["too small"]),
        (typo.as_str(), vec!["no such device", "lsblk"]),
        (
            used.dev.as_str(),
            vec!["in use", "mounted at", "unmount it first"],
        ),
    ];
    let mut results = Vec::new();
    for (dev, words) in &cases {
        results.push((
            dev.to_string(),
            words.clone(),
            write_only(&c, Path::new(dev), &c.work),
        ));
    }
    sh(&format!("umount {}", mnt.display()));
    for (dev, words, o) in &results {
        assert_refused(dev, o, dev, words, &c.work);
    }
    assert!(snapshot(&refs) == before, "a refused target was written");
    assert!(!Path::new(&typo).exists(), "{typo} was created");
}

// --- the API ------------------------------------------------------------------------------

struct Mock {
    child: std::process::Child,
    base: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mock(dir: &Path, faults: &[&str]) -> Option<Mock> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIP: python3 not found, the mock API cannot run");
        return None;
    }
    let image = dir.join("mock-image.img.gz");
    if !image.exists() {
        sh(&format!(
            "gzip -1 -c {} > {}",
            fake_image().display(),
            image.display()
        ));
    }
    let mut args: Vec<String> = [
        "--port",
        "0",
        "--api-key",
        KEY,
        "--max-seconds",
        "120",
        "--versions",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.push(format!("{SLUG}=5.1.20+rev1"));
    args.push("--image".into());
    args.push(format!("{SLUG}={}", image.display()));
    for f in faults {
        args.push("--fault".into());
        args.push(f.to_string());
    }
    let (child, base) = start_mock_api("python3", &args);
    Some(Mock { child, base })
}

/// `takeover -d -c CFG -w WORK` (WORK created first).
fn download_only(cfg: &Path, work: &Path) -> Output {
    std::fs::create_dir_all(work).unwrap();
    run(&[
        "-d",
        "-c",
        cfg.to_str().unwrap(),
        "-w",
        work.to_str().unwrap(),
    ])
}

#[test]
fn api_that_answers_badly() {
    let c = Case::new("bad-api");
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        ("401", "", vec!["HTTP 401", "apiKey"]),
        (
            "404",
            r#"{"path":"/v6/release","status":404,"times":-1}"#,
            vec!["HTTP 404"],
        ),
        (
            "500",
            r#"{"path":"/v6/release","status":500,"times":-1}"#,
            vec!["HTTP 500", "try again later"],
        ),
        (
            "garbage",
            r#"{"path":"/v6/release","garbage":true,"times":-1}"#,
            vec!["not the expected JSON"],
        ),
        (
            "download 500",
            r#"{"path":"/download","status":500,"times":-1}"#,
            vec!["HTTP 500", "/download"],
        ),
    ];
    for (name, fault, words) in cases {
        let faults: Vec<&str> = if fault.is_empty() {
            vec![]
        } else {
            vec![fault]
        };
        let Some(m) = mock(c.dir.path(), &faults) else {
            return;
        };
        let cfg = c.dir.join(&format!("cfg-{}.json", name.replace(' ', "-")));
        let mut text = good_config(SLUG, &m.base);
        if name == "401" {
            text = text.replace(KEY, "WRONG-KEY-0000000000000000");
        }
        std::fs::write(&cfg, &text).unwrap();
        let work = c.dir.join(&format!("w-{}", name.replace(' ', "-")));
        let t = Instant::now();
        let o = download_only(&cfg, &work);
        let took = t.elapsed();
        assert_refused(name, &o, &m.base, &words, &work);
        assert!(!stderr(&o).contains("WRONG-KEY"), "{name}: key in stderr");
        assert!(took < Duration::from_secs(300), "{name}: took {took:?}");
        eprintln!("api {name}: refused in {:.1} s", took.as_secs_f64());
    }
    // Slowly: a reply 5 s late is waited for (within the 30 s API timeout), not given up on.
    let Some(m) = mock(
        c.dir.path(),
        &[r#"{"path":"/v6/release","stall":5,"times":1}"#],
    ) else {
        return;
    };
    let cfg = c.dir.join("cfg-slow.json");
    std::fs::write(&cfg, good_config(SLUG, &m.base)).unwrap();
    let work = c.dir.join("w-slow");
    let t = Instant::now();
    let o = download_only(&cfg, &work);
    assert_eq!(o.status.code(), Some(0), "slow: {}", stderr(&o));
    assert!(
        t.elapsed() >= Duration::from_secs(5),
        "slow: the stall did not happen"
    );
    assert!(!stderr(&o).contains(KEY));
}

// --- safe re-runs ---------------------------------------------------------------------------

#[test]
fn two_concurrent_dry_runs_one_waits_for_the_lock() {
    let c = Case::new("lock");
    let root = pi4();
    let args: Vec<String> = [
        "--dry-run",
        "--sysroot",
        root.to_str().unwrap(),
        "--no-api-check",
        "--no-vpn-check",
        "--no-nwmgr-check",
        "-w",
        c.work.to_str().unwrap(),
        "-c",
        c.cfg.to_str().unwrap(),
        "-i",
        c.img.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let spawn = || {
        command()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn();
    let b = spawn();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    let (ok, refused) = match codes {
        [Some(0), Some(1)] => (&a, &b),
        [Some(1), Some(0)] => (&b, &a),
        _ => panic!(
            "expected one success and one refusal, got {codes:?}:\n{}\n---\n{}",
            stderr(&a),
            stderr(&b)
        ),
    };
    let e = stderr(refused);
    assert!(e.contains("another takeover run holds the lock"), "{e}");
    assert!(e.contains(".takeover.lock") && e.contains("hint:"), "{e}");
    assert!(!e.contains("panicked"));
    assert!(
        stderr(ok).contains("a migration can go ahead on this device"),
        "{}",
        stderr(ok)
    );
}

#[test]
fn a_dry_run_after_a_failed_one_works() {
    let c = Case::new("rerun");
    let root = pi4();
    let bad = c.dir.join("zero.img");
    std::fs::write(&bad, b"").unwrap();
    let o = c.dry_run(&root, &c.cfg, &bad, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = c.dry_run(&root, &c.cfg, &c.img, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // And once more over the first run's staging dir and lock file.
    let o = c.dry_run(&root, &c.cfg, &c.img, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(c.work.join("takeover-dry-run/boot/config.json").is_file());
}
