//! End-to-end tests of the backup: real trees in temp dirs, archives extracted with GNU tar and
//! busybox tar and compared file by file with the configured expectation; invalid configuration
//! fixtures under tests/fixtures/backup/.

use super::*;
use crate::testutil::TempDir;
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

fn set_mtime(p: &Path, secs: i64) {
    // `touch -h` sets the time of a symlink itself.
    let st = Command::new("touch")
        .arg("-h")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn write(p: &Path, data: &[u8], mode: u32, mtime: i64) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
    set_mode(p, mode);
    set_mtime(p, mtime);
}

fn symlink(target: &str, p: &Path, mtime: i64) {
    std::os::unix::fs::symlink(target, p).unwrap();
    set_mtime(p, mtime);
}

fn is_root() -> bool {
    crate::sys::geteuid() == 0
}

#[derive(Debug, Clone)]
enum Expect {
    /// Content, mode and mtime (and owner when root) of this source file.
    File(PathBuf),
    /// Same inode as the entry at this archive path; content of the source.
    HardLink(String, PathBuf),
    /// Link target; mtime of this source symlink.
    Symlink(String, PathBuf),
    /// Mode and mtime of this source directory.
    Dir(PathBuf),
    /// A folder of the volume layout (mode 0755).
    Synthetic,
}

/// Compares an extracted tree with the expectation: the same set of paths, and per path the
/// type, content, mode, mtime, owner and link target.
fn compare(tool: &str, root: &Path, want: &BTreeMap<String, Expect>, all_mtimes: bool) {
    let mut found = Vec::new();
    fn collect(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for n in names {
            let r = if rel.is_empty() {
                n.clone()
            } else {
                format!("{rel}/{n}")
            };
            let p = dir.join(&n);
            out.push(r.clone());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                collect(&p, &r, out);
            }
        }
    }
    collect(root, "", &mut found);
    let want_paths: Vec<&String> = want.keys().collect();
    let found_paths: Vec<&String> = found.iter().collect();
    assert_eq!(found_paths, want_paths, "{tool}: extracted paths");
    for (rel, exp) in want {
        let p = root.join(rel);
        let md = fs::symlink_metadata(&p).unwrap();
        let ctx = format!("{tool}: {rel}");
        match exp {
            Expect::File(src) => {
                let smd = fs::metadata(src).unwrap();
                assert!(md.is_file(), "{ctx}");
                assert_eq!(fs::read(&p).unwrap(), fs::read(src).unwrap(), "{ctx}");
                assert_eq!(md.mode() & 0o7777, smd.mode() & 0o7777, "{ctx}: mode");
                assert_eq!(md.mtime(), smd.mtime(), "{ctx}: mtime");
                if is_root() {
                    assert_eq!((md.uid(), md.gid()), (smd.uid(), smd.gid()), "{ctx}: owner");
                }
            }
            Expect::HardLink(other, src) => {
                assert!(md.is_file(), "{ctx}");
                assert_eq!(fs::read(&p).unwrap(), fs::read(src).unwrap(), "{ctx}");
                let omd = fs::metadata(root.join(other)).unwrap();
                assert_eq!(md.ino(), omd.ino(), "{ctx}: hard link to {other}");
                assert!(md.nlink() >= 2, "{ctx}");
            }
            Expect::Symlink(target, src) => {
                assert!(md.file_type().is_symlink(), "{ctx}");
                assert_eq!(fs::read_link(&p).unwrap(), PathBuf::from(target), "{ctx}");
                let smd = fs::symlink_metadata(src).unwrap();
                if all_mtimes {
                    assert_eq!(md.mtime(), smd.mtime(), "{ctx}: symlink mtime");
                }
            }
            Expect::Dir(src) => {
                let smd = fs::metadata(src).unwrap();
                assert!(md.is_dir(), "{ctx}");
                assert_eq!(md.mode() & 0o7777, smd.mode() & 0o7777, "{ctx}: mode");
                if all_mtimes {
                    assert_eq!(md.mtime(), smd.mtime(), "{ctx}: dir mtime");
                }
            }
            Expect::Synthetic => {
                assert!(md.is_dir(), "{ctx}");
                assert_eq!(md.mode() & 0o7777, 0o755, "{ctx}: mode");
            }
        }
    }
}

fn extract(tool: &[&str], archive: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    let out = Command::new(tool[0])
        .args(&tool[1..])
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{tool:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn archive_extracts_exactly_with_gnu_and_busybox_tar() {
    let t = TempDir::new("backup", "full");
    let base = &t.0;
    let src = base.join("src");
    let t0 = 1_500_000_000;
    let mut want: BTreeMap<String, Expect> = BTreeMap::new();
    let mut exp = |k: &str, e: Expect| {
        want.insert(k.to_string(), e);
    };

    // Volume "data": a whole tree.
    exp("data", Expect::Synthetic);
    write(&src.join("plain.txt"), b"hello\n", 0o644, t0);
    exp("data/plain.txt", Expect::File(src.join("plain.txt")));
    write(
        &src.join("exec.sh"),
        b"#!/bin/sh\necho hi\n",
        0o4755,
        t0 + 1,
    );
    exp("data/exec.sh", Expect::File(src.join("exec.sh")));
    write(&src.join("private"), b"secret-ish", 0o600, t0 + 2);
    if is_root() {
        std::os::unix::fs::chown(src.join("private"), Some(1234), Some(5678)).unwrap();
    }
    exp("data/private", Expect::File(src.join("private")));
    let uni = "with space ü ñ 日本.txt";
    write(&src.join(uni), "ünïcødé".as_bytes(), 0o640, t0 + 3);
    exp(&format!("data/{uni}"), Expect::File(src.join(uni)));
    // > 100 bytes (ustar prefix split) and > 255 bytes (PAX path).
    let mid = format!("{}/{}/x.txt", "m".repeat(70), "n".repeat(70));
    write(&src.join(&mid), b"mid", 0o644, t0 + 4);
    let deep_dir = (0..5)
        .map(|i| format!("{}{i}", "d".repeat(59)))
        .collect::<Vec<_>>()
        .join("/");
    let deep = format!("{deep_dir}/a file with a long name ü.bin");
    let mut binary = Vec::new();
    for i in 0..300_000u32 {
        binary.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
    }
    write(&src.join(&deep), &binary, 0o644, t0 + 5);
    assert!(format!("data/{deep}").len() > 300);
    {
        let mut acc = String::from("data");
        for c in Path::new(&mid).parent().unwrap().components() {
            acc = format!("{acc}/{}", c.as_os_str().to_str().unwrap());
            exp(&acc, Expect::Dir(src.join(&acc[5..])));
        }
        let mut acc = String::from("data");
        for c in Path::new(&deep_dir).components() {
            acc = format!("{acc}/{}", c.as_os_str().to_str().unwrap());
            exp(&acc, Expect::Dir(src.join(&acc[5..])));
        }
    }
    exp(&format!("data/{mid}"), Expect::File(src.join(&mid)));
    exp(&format!("data/{deep}"), Expect::File(src.join(&deep)));
    // Empty directory with its own mode.
    fs::create_dir_all(src.join("empty")).unwrap();
    set_mode(&src.join("empty"), 0o750);
    exp("data/empty", Expect::Dir(src.join("empty")));
    // Symlinks: relative, absolute, dangling with a 150-byte target, unicode target, to a dir.
    symlink("plain.txt", &src.join("link"), t0 + 6);
    exp(
        "data/link",
        Expect::Symlink("plain.txt".into(), src.join("link")),
    );
    symlink("/etc/hostname", &src.join("abslink"), t0 + 7);
    exp(
        "data/abslink",
        Expect::Symlink("/etc/hostname".into(), src.join("abslink")),
    );
    let long_target = format!("{}/dangling", "t".repeat(150));
    symlink(&long_target, &src.join("longlink"), t0 + 8);
    exp(
        "data/longlink",
        Expect::Symlink(long_target.clone(), src.join("longlink")),
    );
    symlink("ü/ziel", &src.join("unilink"), t0 + 9);
    exp(
        "data/unilink",
        Expect::Symlink("ü/ziel".into(), src.join("unilink")),
    );
    write(&src.join("sub/nested.txt"), b"nested", 0o644, t0 + 10);
    symlink("sub", &src.join("dirlink"), t0 + 11);
    exp(
        "data/dirlink",
        Expect::Symlink("sub".into(), src.join("dirlink")),
    );
    exp(
        "data/sub/nested.txt",
        Expect::File(src.join("sub/nested.txt")),
    );
    // Hard links: "hard-a" is first in archive order and carries the data.
    write(&src.join("hard-a"), b"linked content", 0o644, t0 + 12);
    fs::hard_link(src.join("hard-a"), src.join("sub/hard-b")).unwrap();
    exp("data/hard-a", Expect::File(src.join("hard-a")));
    exp(
        "data/sub/hard-b",
        Expect::HardLink("data/hard-a".into(), src.join("hard-a")),
    );
    // A FIFO is skipped with a warning.
    assert!(Command::new("mkfifo")
        .arg(src.join("fifo"))
        .status()
        .unwrap()
        .success());
    // Directory mtimes last (creating entries changes them).
    set_mode(&src.join("sub"), 0o711);
    set_mtime(&src.join("sub"), t0 + 20);
    exp("data/sub", Expect::Dir(src.join("sub")));
    set_mtime(&src.join("empty"), t0 + 21);

    // Volume "logs.v2": a filtered tree under a target, a renamed single file, and a symlink
    // given as the source (followed: the file's content is stored under the link's name).
    let flt = base.join("filtered");
    write(&flt.join("balena-a.log"), b"a", 0o644, t0);
    write(&flt.join("other.txt"), b"o", 0o644, t0);
    write(&flt.join("x/balena-b.txt"), b"b", 0o644, t0);
    write(&flt.join("x/y/ignored"), b"i", 0o644, t0);
    set_mtime(&flt.join("x"), t0 + 30);
    set_mtime(&flt, t0 + 31);
    exp("logs.v2", Expect::Synthetic);
    exp("logs.v2/kept", Expect::Synthetic);
    exp("logs.v2/kept/deeper", Expect::Dir(flt.clone()));
    exp(
        "logs.v2/kept/deeper/balena-a.log",
        Expect::File(flt.join("balena-a.log")),
    );
    exp("logs.v2/kept/deeper/x", Expect::Dir(flt.join("x")));
    exp(
        "logs.v2/kept/deeper/x/balena-b.txt",
        Expect::File(flt.join("x/balena-b.txt")),
    );
    let conf = base.join("conf/app.conf");
    write(&conf, b"key=value\n", 0o600, t0 + 40);
    exp("logs.v2/etc", Expect::Synthetic);
    exp("logs.v2/etc/app.conf", Expect::File(conf.clone()));
    std::os::unix::fs::symlink(&conf, base.join("conf-link")).unwrap();
    exp("logs.v2/conf-link", Expect::File(conf.clone()));

    let cfg = base.join("backup.yml");
    fs::write(
        &cfg,
        format!(
            "# test configuration\n\
             - volume: data\n  items:\n  - source: {src}\n\
             - volume: logs.v2\n  items:\n\
             \x20 - source: {flt}/\n    target: kept/./deeper\n    filter: 'balena-'\n\
             \x20 - source: {conf}\n    target: etc/app.conf\n\
             \x20 - source: {link}\n",
            src = src.display(),
            flt = flt.display(),
            conf = conf.display(),
            link = base.join("conf-link").display()
        ),
    )
    .unwrap();
    let work = base.join("work");
    fs::create_dir_all(&work).unwrap();

    let estimate = estimate(&cfg, &work).unwrap();
    let started = std::time::Instant::now();
    let s = create(&cfg, &work, &BackupOptions { tar_internal: true }).unwrap();
    eprintln!("backup created and verified in {:?}", started.elapsed());
    assert_eq!(s.path, work.join("backup.tgz"));
    let amd = fs::metadata(&s.path).unwrap();
    assert_eq!(amd.mode() & 0o777, 0o600);
    assert_eq!(amd.len(), s.bytes);
    assert!(estimate >= s.bytes, "estimate {estimate} < {}", s.bytes);
    assert_eq!(s.volumes, ["data", "logs.v2"]);
    let non_dirs = want
        .values()
        .filter(|e| !matches!(e, Expect::Dir(_) | Expect::Synthetic))
        .count() as u64;
    assert_eq!(s.files, non_dirs);
    assert!(
        s.warnings.iter().any(|w| w.contains("FIFO")),
        "{:?}",
        s.warnings
    );
    let r = s.to_report();
    assert_eq!((r.bytes, r.files, r.volumes.len()), (s.bytes, s.files, 2));
    // No temp file left behind.
    let left: Vec<_> = fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["backup.tgz"]);

    // GNU tar lists and extracts it without a warning; busybox too.
    let gnu = base.join("x-gnu");
    extract(&["tar"], &s.path, &gnu);
    compare("GNU tar", &gnu, &want, true);
    let bb = base.join("x-busybox");
    extract(&["busybox", "tar"], &s.path, &bb);
    // busybox tar sets a directory's mtime before extracting into it (its directories end up
    // with the extraction time) and does not set the time of symlinks: compare those modes and
    // targets only. Files' mtimes are compared for both.
    compare("busybox tar", &bb, &want, false);

    // The archive is deterministic for the same tree and time.
    let again = work.join("again");
    fs::create_dir_all(&again).unwrap();
    let s2 = create(&cfg, &again, &BackupOptions::default()).unwrap();
    assert_eq!(s2.files, s.files);
}

#[test]
fn pax_size_beyond_8_gib_is_read_back_and_listed_by_gnu_tar() {
    // A synthetic uncompressed archive whose one file is 9 GiB: the data is a hole in a sparse
    // file, so the test writes a few KiB.
    let t = TempDir::new("backup", "big");
    let size: u64 = 9 * 1024 * 1024 * 1024;
    let h = tar::Header {
        path: b"vol/huge.img",
        kind: tar::Kind::File,
        size,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        link: b"",
    };
    let head = tar::encode_header(&h);
    assert_eq!(
        head.len(),
        3 * tar::BLOCK,
        "PAX header + records + ustar header"
    );
    let p = t.0.join("big.tar");
    let mut f = File::create(&p).unwrap();
    f.write_all(&head).unwrap();
    f.seek(SeekFrom::Current(size as i64)).unwrap();
    f.write_all(&[0u8; 2 * tar::BLOCK]).unwrap();
    drop(f);
    let mut r = tar::Reader::new(File::open(&p).unwrap());
    let e = r.next().unwrap().unwrap();
    assert_eq!(e.path, b"vol/huge.img");
    assert_eq!(e.size, size);
    let out = lists_huge_entry(Command::new("tar").arg("-tvf").arg(&p), size);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // busybox tar ignores PAX `size` but reads the base-256 ustar field (and seeks over data).
    let started = std::time::Instant::now();
    lists_huge_entry(Command::new("busybox").args(["tar", "-tvf"]).arg(&p), size);
    eprintln!(
        "busybox tar -tvf of the 9 GiB entry: {:?}",
        started.elapsed()
    );
}

/// Runs a tar listing; it must succeed and show vol/huge.img with its full size.
fn lists_huge_entry(cmd: &mut Command, size: u64) -> std::process::Output {
    let out = cmd.output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listing.contains(&size.to_string()), "{listing}");
    assert!(listing.contains("vol/huge.img"), "{listing}");
    out
}

#[test]
fn invalid_configs_name_the_volume_and_item() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backup");
    let mut n = 0;
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    names.sort();
    for p in names {
        let text = fs::read_to_string(&p).unwrap();
        let expects: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expects.is_empty(),
            "{} has no '# expect:' line",
            p.display()
        );
        let err = match config::load(&p) {
            Ok(_) => panic!("{} was accepted", p.display()),
            Err(e) => e.to_string(),
        };
        for want in expects {
            assert!(
                err.contains(want),
                "{}:\n  want {want:?}\n  got  {err}",
                p.display()
            );
        }
        n += 1;
    }
    assert!(n >= 15, "only {n} fixtures");
}

#[test]
fn budget_and_failures_leave_nothing_behind() {
    assert!(check_budget(100, 100).is_ok());
    let e = check_budget(300 * 1024 * 1024, 200 * 1024 * 1024)
        .unwrap_err()
        .to_string();
    assert!(e.contains("300.0 MiB (314572800 bytes)"), "{e}");
    assert!(e.contains("200.0 MiB (209715200 bytes)"), "{e}");

    let t = TempDir::new("backup", "fail");
    let cfg = t.0.join("c.yml");
    fs::write(
        &cfg,
        format!(
            "- volume: v\n  items:\n  - source: {}/gone\n",
            t.0.display()
        ),
    )
    .unwrap();
    let e = create(&cfg, &t.0, &BackupOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("volume 1 \"v\", item 1"), "{e}");
    assert!(e.contains("/gone"), "{e}");
    assert!(!t.0.join("backup.tgz").exists());
    let e = estimate(&cfg, &t.0).unwrap_err().to_string();
    assert!(e.contains("/gone"), "{e}");
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    if is_root() {
        // root reads every mode; a file under /proc that refuses open would not be ours.
        eprintln!("skipped: running as root, permission bits do not stop reads");
        return;
    }
    let t = TempDir::new("backup", "unread");
    write(&t.0.join("src/locked"), b"x", 0o000, 0);
    let cfg = t.0.join("c.yml");
    fs::write(
        &cfg,
        format!("- volume: v\n  items:\n  - source: {}/src\n", t.0.display()),
    )
    .unwrap();
    let e = create(&cfg, &t.0, &BackupOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("src/locked"), "{e}");
}

#[test]
fn verification_catches_a_shrinking_source() {
    // The plan records sizes; a file truncated between planning and writing must fail the
    // backup rather than store a short file.
    let t = TempDir::new("backup", "shrink");
    write(&t.0.join("src/f"), &[7u8; 10_000], 0o644, 0);
    let cfg = config::parse(
        &format!("- volume: v\n  items:\n  - source: {}/src\n", t.0.display()),
        "t",
    )
    .unwrap();
    let plan = walk::manifest(&cfg, 0, None).unwrap();
    fs::write(t.0.join("src/f"), b"short").unwrap();
    let tmp = t.0.join("out.tgz");
    let e = write_and_verify(&plan, &tmp).unwrap_err().to_string();
    assert!(e.contains("shrank by 9995 bytes"), "{e}");
}

/// A temp dir with `src/a` holding `data`, and the plan of a backup of `src`.
fn planned_a(name: &str, data: &[u8]) -> (TempDir, walk::Manifest) {
    let t = TempDir::new("backup", name);
    write(&t.0.join("src/a"), data, 0o644, 0);
    let cfg = config::parse(
        &format!("- volume: v\n  items:\n  - source: {}/src\n", t.0.display()),
        "t",
    )
    .unwrap();
    let plan = walk::manifest(&cfg, 0, None).unwrap();
    (t, plan)
}

#[test]
fn a_source_swapped_after_planning_is_refused() {
    // The plan saw regular files; between planning and copying one becomes a symlink to a
    // secret and another is replaced by a different file (new inode). Neither is archived.
    let (t, plan) = planned_a("swap", b"planned a");
    write(&t.0.join("secret"), b"not for the backup", 0o600, 0);
    let a = t.0.join("src/a");
    // Kept (not deleted) so that no new file can reuse its inode number.
    fs::rename(&a, t.0.join("a.orig")).unwrap();
    std::os::unix::fs::symlink(t.0.join("secret"), &a).unwrap();
    let tmp = t.0.join("out.tgz");
    let e = write_and_verify(&plan, &tmp).unwrap_err().to_string();
    assert!(e.contains("src/a") && e.contains("symlink"), "{e}");

    fs::remove_file(&a).unwrap();
    fs::write(&a, b"planned a").unwrap();
    let e = write_and_verify(&plan, &tmp).unwrap_err().to_string();
    assert!(e.contains("no longer the planned file"), "{e}");
}

#[test]
fn the_archive_is_not_written_through_a_planted_symlink() {
    let (t, plan) = planned_a("plant", b"a");
    write(&t.0.join("victim"), b"keep me", 0o644, 0);
    let tmp = t.0.join("out.tgz");
    std::os::unix::fs::symlink(t.0.join("victim"), &tmp).unwrap();
    write_and_verify(&plan, &tmp).unwrap();
    assert_eq!(fs::read(t.0.join("victim")).unwrap(), b"keep me");
    assert!(!fs::symlink_metadata(&tmp).unwrap().file_type().is_symlink());
}

/// Unmounts our own bind mount even when the test fails.
struct BindMount(PathBuf);

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn bind_mount_loop_is_skipped_with_a_warning() {
    if !is_root() {
        eprintln!("skipped: needs root to bind-mount a directory into itself");
        return;
    }
    let t = TempDir::new("backup", "loop");
    let src = t.0.join("src");
    write(&src.join("file"), b"f", 0o644, 0);
    fs::create_dir_all(src.join("again")).unwrap();
    let ok = Command::new("mount")
        .arg("--bind")
        .arg(&src)
        .arg(src.join("again"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipped: bind mounts are not permitted here");
        return;
    }
    let _guard = BindMount(src.join("again"));
    let cfg = config::parse(
        &format!("- volume: v\n  items:\n  - source: {}\n", src.display()),
        "t",
    )
    .unwrap();
    let plan = walk::manifest(&cfg, 0, None).unwrap();
    let paths: Vec<String> = plan.entries.iter().map(|e| e.display_path()).collect();
    assert_eq!(paths, ["v", "v/file"]);
    assert!(
        plan.warnings.iter().any(|w| w.contains("a loop")),
        "{:?}",
        plan.warnings
    );
}

/// Throughput of create + verify on 256 MiB of half-compressible data:
/// `cargo test --release --lib backup::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let t = TempDir::new("backup", "speed");
    let mut data = vec![0u8; 256 * 1024 * 1024];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for (i, b) in data.iter_mut().enumerate() {
        if i % 2 == 0 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        } else {
            *b = (i / 4096) as u8;
        }
    }
    write(&t.0.join("src/blob"), &data, 0o644, 0);
    drop(data);
    let cfg = t.0.join("c.yml");
    fs::write(
        &cfg,
        format!("- volume: v\n  items:\n  - source: {}/src\n", t.0.display()),
    )
    .unwrap();
    let start = std::time::Instant::now();
    let s = create(&cfg, &t.0, &BackupOptions::default()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "256 MiB -> {} bytes in {secs:.2} s ({:.1} MiB/s incl. verify)",
        s.bytes,
        256.0 / secs
    );
    // For comparison: system gzip -6 on the same data (compression only).
    let start = std::time::Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -6 -c {}/src/blob | wc -c", t.0.display()))
        .output()
        .unwrap();
    eprintln!(
        "gzip -6: {} bytes in {:.2} s",
        String::from_utf8_lossy(&out.stdout).trim(),
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn non_utf8_names_survive_gnu_and_busybox_tar() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let t = TempDir::new("backup", "latin1");
    let src = t.0.join("src");
    // A Latin-1 name (not UTF-8) long enough to need a PAX path with hdrcharset=BINARY.
    let mut name = b"caf\xe9 ".to_vec();
    name.extend_from_slice(&[b'x'; 120]);
    let file = src.join(OsStr::from_bytes(&name));
    write(&file, b"latin", 0o644, 1_600_000_000);
    let cfg = t.0.join("c.yml");
    fs::write(
        &cfg,
        format!("- volume: v\n  items:\n  - source: {}\n", src.display()),
    )
    .unwrap();
    let work = t.0.join("work");
    fs::create_dir_all(&work).unwrap();
    let s = create(&cfg, &work, &BackupOptions::default()).unwrap();
    for (tool, dir) in [(&["tar"][..], "gnu"), (&["busybox", "tar"][..], "bb")] {
        let into = t.0.join(dir);
        extract(tool, &s.path, &into);
        let got = into.join("v").join(OsStr::from_bytes(&name));
        assert_eq!(fs::read(&got).unwrap(), b"latin", "{tool:?}");
    }
}
