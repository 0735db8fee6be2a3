//! Tests against real FAT images made by dosfstools (`mkfs.vfat`, `fsck.fat`) and checked
//! with mtools (`mcopy`, `mtype`, `mdir`, `mmd`). CI installs both packages; a missing tool
//! fails the test with a message saying which package to install.

use super::*;
use std::fs::{File, OpenOptions};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::testutil::TempDir;

fn tool(cmd: &str, args: &[&str]) -> Output {
    let pkg = if cmd.starts_with("mkfs") || cmd.starts_with("fsck") {
        "dosfstools"
    } else {
        "mtools"
    };
    match Command::new(cmd)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .env("TZ", "UTC")
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "'{cmd}' is not installed: these FAT tests need the '{pkg}' package \
             (apt-get install -y dosfstools mtools)"
        ),
        Err(e) => panic!("running {cmd}: {e}"),
    }
}

/// Runs a tool that must succeed; returns its stdout.
fn ok(cmd: &str, args: &[&str]) -> String {
    let o = tool(cmd, args);
    assert!(
        o.status.success(),
        "{cmd} {args:?} failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mkfs(dir: &TempDir, kib: u32, bits: u8, extra: &[&str]) -> PathBuf {
    let img = dir.join(&format!("fat{bits}.img"));
    let kib = kib.to_string();
    let bits = bits.to_string();
    let mut args = vec!["-C", s(&img), "-F", &bits];
    args.extend_from_slice(extra);
    args.push(&kib);
    ok("mkfs.vfat", &args);
    img
}

/// `fsck.fat -n` must find nothing; returns (files, used clusters, total clusters).
fn fsck(img: &Path) -> (u64, u64, u64) {
    let out = ok("fsck.fat", &["-n", s(img)]);
    // last line: "img: 3 files, 12/20431 clusters"
    let last = out.lines().last().unwrap_or_default();
    assert!(
        out.lines().count() <= 2,
        "fsck.fat reported something:\n{out}"
    );
    let nums: Vec<u64> = last
        .rsplit(':')
        .next()
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 3, "{out}");
    (nums[0], nums[1], nums[2])
}

fn mcopy_in(img: &Path, data: &[u8], dest: &str, dir: &TempDir) {
    let src = dir.join("mcopy-src");
    std::fs::write(&src, data).unwrap();
    ok(
        "mcopy",
        &["-o", "-i", s(img), s(&src), &format!("::{dest}")],
    );
}

fn mcopy_out(img: &Path, path: &str, dir: &TempDir) -> Vec<u8> {
    let out = dir.join("mcopy-out");
    let _ = std::fs::remove_file(&out);
    ok(
        "mcopy",
        &["-n", "-i", s(img), &format!("::{path}"), s(&out)],
    );
    std::fs::read(&out).unwrap()
}

fn mdir(img: &Path, path: &str) -> String {
    ok("mdir", &["-i", s(img), &format!("::{path}")])
}

fn open_rw(img: &Path) -> Fat<File> {
    let f = OpenOptions::new().read(true).write(true).open(img).unwrap();
    Fat::open(f).unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 32) as u8
                ^ seed
        })
        .collect()
}

fn today() -> String {
    crate::log::timestamp()[..10].to_string()
}

#[test]
fn resin_boot_fat16_read_mtools_files_and_write_ours() {
    let d = TempDir::new("fat", "resin");
    let img = mkfs(&d, 40 * 1024, 16, &["-n", "resin-boot"]);
    let dt = br#"{"slug":"raspberrypi4-64","arch":"aarch64"}"#;
    let osr = b"ID=balena-os\nNAME=\"balenaOS\"\nVERSION_ID=\"5.1.20\"\n";
    let cfg = br#"{"deviceType":"raspberrypi4-64"}"#;
    mcopy_in(&img, dt, "/device-type.json", &d);
    mcopy_in(&img, osr, "/os-release", &d);
    mcopy_in(&img, cfg, "/config.json", &d);
    ok(
        "mmd",
        &["-i", s(&img), "::/system-connections", "::/overlays"],
    );
    mcopy_in(
        &img,
        b"[connection]\nid=resin-sample\n",
        "/system-connections/resin-sample.ignore",
        &d,
    );
    let big_overlay = pattern(100_000, 7);
    for i in 0..12 {
        let data = if i == 5 {
            big_overlay.clone()
        } else {
            pattern(1000 + i * 37, i as u8)
        };
        mcopy_in(&img, &data, &format!("/overlays/overlay-{i}.dtbo"), &d);
    }
    mcopy_in(&img, &pattern(3 * 1024 * 1024, 3), "/kernel8.img", &d);
    fsck(&img);

    // Reader, read-only file.
    {
        let f = File::open(&img).unwrap();
        let mut fat = Fat::open(f).unwrap();
        assert_eq!(fat.kind(), FatKind::Fat16);
        assert_eq!(
            fat.label()
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("resin-boot")
        );
        assert_eq!(fat.read_file("/device-type.json", 1 << 20).unwrap(), dt);
        assert_eq!(fat.read_file("os-release", 1 << 20).unwrap(), osr);
        assert_eq!(fat.read_file("/CONFIG.JSON", 1 << 20).unwrap(), cfg);
        assert_eq!(
            fat.read_file("/overlays/overlay-5.dtbo", 1 << 20).unwrap(),
            big_overlay
        );
        assert_eq!(
            fat.read_file("/kernel8.img", 4 << 20).unwrap(),
            pattern(3 * 1024 * 1024, 3)
        );
        let e = fat.read_file("/kernel8.img", 1000).unwrap_err().to_string();
        assert!(e.contains("/kernel8.img") && e.contains("more than"), "{e}");
        let e = fat
            .read_file("/missing.json", 1000)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/missing.json") && e.contains("not found"),
            "{e}"
        );
        let e = fat.read_file("/overlays", 1000).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
        let mut names: Vec<String> = fat
            .list_dir("/overlays")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        assert_eq!(names.len(), 12);
        assert_eq!(names[0], "overlay-0.dtbo");
        let root = fat.list_dir("/").unwrap();
        let sc = root
            .iter()
            .find(|e| e.name == "system-connections")
            .unwrap();
        assert!(sc.is_dir);
        let dtj = root.iter().find(|e| e.name == "device-type.json").unwrap();
        assert_eq!(dtj.short_name, "DEVICE~1.JSO");
        assert_eq!(dtj.size, dt.len() as u64);
        assert!(fat
            .exists("/System-Connections/resin-sample.ignore")
            .unwrap());
        assert!(!fat.exists("/system-connections/nope").unwrap());
        assert!(!fat.exists("/nope/nope").unwrap());
        assert!(!fat.exists("/config.json/x").unwrap());
        assert!(fat.exists("/").unwrap());
    }

    // Writer: what stage 2 writes.
    let (_, used_before, _) = fsck(&img);
    let mut fat = open_rw(&img);
    let free0 = fat.free_clusters();
    let new_cfg = br#"{"deviceType":"raspberrypi4-64","hostname":"pi","apiKey":"x"}"#;
    fat.write_file("/config.json", new_cfg).unwrap();
    fat.write_file(
        "/system-connections/My Home WiFi",
        b"[wifi]\nssid=My Home WiFi\n",
    )
    .unwrap();
    fat.create_dir_all("/system-proxy").unwrap();
    fat.write_file("/system-proxy/redsocks.conf", b"base {}\n")
        .unwrap();
    fat.create_dir_all("/takeover/logs").unwrap();
    fat.write_file("/takeover/logs/stage2.log", &pattern(50_000, 9))
        .unwrap();
    fat.flush().unwrap();
    let free1 = fat.free_clusters();
    drop(fat.into_inner());
    let (files, used, _) = fsck(&img);
    // fsck counts directories as files: 3 + kernel + 12 overlays + 3 new, and 5 dirs
    assert_eq!(files, 3 + 1 + 1 + 12 + 1 + 1 + 1 + 1 + 5);
    assert_eq!(used - used_before, u64::from(free0 - free1));
    assert_eq!(mcopy_out(&img, "/config.json", &d), new_cfg);
    assert_eq!(
        ok(
            "mtype",
            &["-i", s(&img), "::/system-connections/My Home WiFi"]
        ),
        "[wifi]\nssid=My Home WiFi\n"
    );
    assert_eq!(
        mcopy_out(&img, "/system-proxy/redsocks.conf", &d),
        b"base {}\n"
    );
    assert_eq!(
        mcopy_out(&img, "/takeover/logs/stage2.log", &d),
        pattern(50_000, 9)
    );
    assert_eq!(mcopy_out(&img, "/device-type.json", &d), dt);
    let listing = mdir(&img, "/system-connections");
    assert!(listing.contains("My Home WiFi"), "{listing}");
    assert!(
        listing.contains(&today()),
        "timestamp not today ({}):\n{listing}",
        today()
    );
    let root = mdir(&img, "/");
    assert!(
        root.contains("system-proxy") && root.contains("takeover"),
        "{root}"
    );
}

/// Unusual names on every FAT kind; after each step fsck is clean and mtools reads it back.
fn names_roundtrip(bits: u8, kib: u32, extra: &[&str]) {
    let d = TempDir::new("fat", &format!("names{bits}"));
    let img = mkfs(&d, kib, bits, extra);
    let long255: String = "L".repeat(250) + ".json";
    let uni255: String = "ü".repeat(251) + ".txt";
    let names = [
        "with spaces in it.txt",
        "  leading spaces",
        "héllo wörld ✓ 日本語.conf",
        "emoji 🚀 rocket",
        long255.as_str(),
        uni255.as_str(),
        ".hidden",
        "UPPER.TXT",
        "lower.txt",
        "MiXeD.TxT",
        "a.b.c.d",
        "plus+comma,semi;eq=[br]",
        "README",
        "readme.md",
        "x",
    ];
    let mut fat = open_rw(&img);
    assert_eq!(
        fat.kind(),
        match bits {
            12 => FatKind::Fat12,
            16 => FatKind::Fat16,
            _ => FatKind::Fat32,
        }
    );
    fat.create_dir_all("/dir one/sub ü").unwrap();
    fat.create_dir_all("/dir one/sub ü").unwrap();
    for (i, n) in names.iter().enumerate() {
        fat.write_file(&format!("/{n}"), &pattern(100 + i * 300, i as u8))
            .unwrap();
        fat.write_file(&format!("/dir one/sub ü/{n}"), &pattern(50 + i, i as u8))
            .unwrap();
    }
    // Names differing only in case: the same file, replaced; the first spelling stays.
    fat.write_file("/Case Test.json", b"first").unwrap();
    fat.write_file("/CASE TEST.JSON", b"second, longer")
        .unwrap();
    fat.write_file("/case test.json", b"third").unwrap();
    fat.write_file("/readme", b"readme replaced").unwrap();
    fat.flush().unwrap();
    drop(fat);
    let (files, _, _) = fsck(&img);
    assert_eq!(files, 2 * names.len() as u64 + 1 + 2); // + 2 directories
    let root = mdir(&img, "/");
    assert_eq!(root.matches("Case Test.json").count(), 1, "{root}");
    assert!(!root.to_lowercase().contains("case test.json\n") || root.contains("Case Test.json"));
    assert_eq!(mcopy_out(&img, "/Case Test.json", &d), b"third");
    assert_eq!(mcopy_out(&img, "/README", &d), b"readme replaced");
    for (i, n) in names.iter().enumerate() {
        if n.chars().any(|c| c as u32 > 0xFFFF) {
            // mtools drops characters outside the BMP (UTF-16 surrogate pairs); our reader
            // checks these below.
            continue;
        }
        if n.contains('[') {
            // mtools takes [..] as a wildcard; the listing shows the name.
            assert!(mdir(&img, "/").contains(n), "{n}");
            continue;
        }
        let want = if *n == "README" {
            b"readme replaced".to_vec()
        } else {
            pattern(100 + i * 300, i as u8)
        };
        assert_eq!(mcopy_out(&img, &format!("/{n}"), &d), want, "{n}");
        assert_eq!(
            mcopy_out(&img, &format!("/dir one/sub ü/{n}"), &d),
            pattern(50 + i, i as u8),
            "{n}"
        );
    }
    let sub = mdir(&img, "/dir one/sub ü");
    for n in [
        "with spaces in it.txt",
        "héllo wörld ✓ 日本語.conf",
        "MiXeD.TxT",
        ".hidden",
        long255.as_str(),
    ] {
        assert!(sub.contains(n), "mdir lacks {n}:\n{sub}");
    }
    // Our reader agrees, and sees mtools' files.
    mcopy_in(&img, b"from mtools", "/dir one/mtools file.txt", &d);
    let mut fat = open_rw(&img);
    assert_eq!(
        fat.read_file("/dir one/mtools file.txt", 100).unwrap(),
        b"from mtools"
    );
    let list = fat.list_dir("/dir one/sub ü").unwrap();
    assert_eq!(
        fat.read_file("/emoji 🚀 rocket", 1 << 20).unwrap(),
        pattern(100 + 3 * 300, 3)
    );
    for n in names {
        assert!(list.iter().any(|e| e.name == n), "{n} not listed");
    }
    // Short names are unique.
    let mut shorts: Vec<String> = list
        .iter()
        .map(|e| e.short_name.to_ascii_uppercase())
        .collect();
    shorts.sort();
    shorts.dedup();
    assert_eq!(shorts.len(), list.len());
    assert_eq!(
        fat.read_file(&format!("/DIR ONE/SUB Ü/{}", uni255.to_uppercase()), 1000)
            .unwrap(),
        pattern(55, 5)
    );
    // Bad names are refused with the path.
    for bad in ["/a:b", "/trailing.", &format!("/{}", "z".repeat(256))] {
        let e = fat.write_file(bad, b"x").unwrap_err().to_string();
        assert!(
            e.contains(
                bad.trim_start_matches('/')
                    .get(..20)
                    .unwrap_or(bad.trim_start_matches('/'))
            ),
            "{e}"
        );
    }
    let e = fat
        .write_file("/no such dir/f", b"x")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/no such dir/f") && e.contains("not found"),
        "{e}"
    );
    let e = fat.write_file("/dir one", b"x").unwrap_err().to_string();
    assert!(e.contains("directory"), "{e}");
    let e = fat.create_dir_all("/x/y").unwrap_err().to_string();
    assert!(e.contains("/x/y") && e.contains("is a file"), "{e}");
    // Remove.
    fat.remove_file("/with spaces in it.txt").unwrap();
    fat.remove_file(&format!("/dir one/sub ü/{long255}"))
        .unwrap();
    assert!(!fat.exists("/with spaces in it.txt").unwrap());
    assert!(fat.remove_file("/with spaces in it.txt").is_err());
    assert!(fat.remove_file("/dir one").is_err());
    fat.flush().unwrap();
    drop(fat);
    let (files2, _, _) = fsck(&img);
    assert_eq!(files2, files + 1 - 2);
}

#[test]
fn fat12_unusual_names() {
    names_roundtrip(12, 4096, &[]);
}

#[test]
fn fat16_unusual_names() {
    names_roundtrip(16, 20 * 1024, &[]);
}

#[test]
fn fat32_unusual_names() {
    names_roundtrip(32, 64 * 1024, &["-s", "1"]);
}

/// Many files with long names: directories grow past one cluster (FAT32 root too).
fn many_files(bits: u8, kib: u32, extra: &[&str], dir_path: &str, count: usize) {
    let d = TempDir::new("fat", &format!("many{bits}"));
    let img = mkfs(&d, kib, bits, extra);
    let mut fat = open_rw(&img);
    let cs = fat.cluster_size() as usize;
    fat.create_dir_all(dir_path).unwrap();
    for i in 0..count {
        fat.write_file(
            &format!("{dir_path}/a rather long file name number {i:04}.network"),
            format!("file {i}\n").as_bytes(),
        )
        .unwrap();
    }
    // Each file takes 4 slots (3 LFN + short): the directory now spans many clusters.
    assert!(count * 4 * 32 > 3 * cs);
    fat.flush().unwrap();
    drop(fat);
    let (files, _, _) = fsck(&img);
    assert_eq!(files, count as u64 + u64::from(dir_path != "/"));
    let listing = mdir(&img, dir_path);
    // mdir counts . and .. in a subdirectory
    let shown = count + if dir_path == "/" { 0 } else { 2 };
    assert!(listing.contains(&format!("{shown} files")), "{listing}");
    for i in [0, count / 2, count - 1] {
        let p = format!("{dir_path}/a rather long file name number {i:04}.network");
        assert_eq!(mcopy_out(&img, &p, &d), format!("file {i}\n").as_bytes());
    }
    let mut fat = open_rw(&img);
    assert_eq!(fat.list_dir(dir_path).unwrap().len(), count);
}

#[test]
fn fat12_subdirectory_grows() {
    many_files(12, 2048, &[], "/system-connections", 200);
}

#[test]
fn fat32_root_grows() {
    many_files(32, 64 * 1024, &["-s", "1"], "/", 300);
}

#[test]
fn fat16_fixed_root_full_is_a_clean_error() {
    let d = TempDir::new("fat", "rootfull");
    let img = mkfs(&d, 8 * 1024, 16, &["-s", "1", "-r", "32"]);
    let mut fat = open_rw(&img);
    let mut n = 0;
    let err = loop {
        match fat.write_file(&format!("/long name file {n}.txt"), b"x") {
            Ok(()) => n += 1,
            Err(e) => break e.to_string(),
        }
        assert!(n < 100, "root never filled");
    };
    assert!(err.contains("root directory is full"), "{err}");
    assert!(err.contains(&format!("/long name file {n}.txt")), "{err}");
    fat.flush().unwrap();
    drop(fat);
    let (files, _, _) = fsck(&img);
    assert_eq!(files, n);
}

#[test]
fn replacing_big_with_small_frees_clusters_and_full_disk_is_clean() {
    for (bits, kib, extra) in [(12u8, 1024u32, &[][..]), (32, 40 * 1024, &["-s", "1"][..])] {
        let d = TempDir::new("fat", &format!("space{bits}"));
        let img = mkfs(&d, kib, bits, extra);
        let (_, used0, total) = fsck(&img);
        let mut fat = open_rw(&img);
        let cs = u64::from(fat.cluster_size());
        let free0 = fat.free_clusters();
        let big = pattern(600 * 1024, 1);
        fat.write_file("/big file.bin", &big).unwrap();
        let big_cl = (big.len() as u64).div_ceil(cs);
        assert_eq!(u64::from(free0 - fat.free_clusters()), big_cl);
        fat.flush().unwrap();
        let (_, used1, _) = fsck(&img);
        assert_eq!(used1 - used0, big_cl);
        assert_eq!(mcopy_out(&img, "/big file.bin", &d), big);
        // Replace with a small one: clusters come back.
        fat.write_file("/BIG FILE.BIN", b"small").unwrap();
        assert_eq!(fat.free_clusters(), free0 - 1);
        fat.flush().unwrap();
        let (_, used2, _) = fsck(&img);
        assert_eq!(used2, used0 + 1);
        assert_eq!(mcopy_out(&img, "/big file.bin", &d), b"small");
        // Replace with empty: no cluster at all.
        fat.write_file("/big file.bin", b"").unwrap();
        assert_eq!(fat.free_clusters(), free0);
        // Fill the disk.
        let chunk = pattern(256 * 1024, 2);
        let mut n = 0;
        let err = loop {
            match fat.write_file(&format!("/fill {n}.bin"), &chunk) {
                Ok(()) => n += 1,
                Err(e) => break e,
            }
            assert!(n < 1000);
        };
        let msg = err.to_string();
        assert!(
            msg.contains("no space left") && msg.contains(&format!("/fill {n}.bin")),
            "{msg}"
        );
        assert!(!fat.exists(&format!("/fill {n}.bin")).unwrap());
        // A file that still fits goes in.
        let left = fat.free_bytes();
        assert!(left < chunk.len() as u64);
        if left > 0 {
            fat.write_file("/last.bin", &pattern(left as usize, 4))
                .unwrap();
            assert_eq!(fat.free_clusters(), 0);
            assert!(fat
                .write_file("/one more", b"1")
                .unwrap_err()
                .to_string()
                .contains("no space"));
            // Replacing needs room for old and new at once; the old file stays intact.
            let m = fat
                .write_file("/last.bin", b"tiny")
                .unwrap_err()
                .to_string();
            assert!(m.contains("no space") && m.contains("room for both"), "{m}");
            assert_eq!(
                fat.read_file("/last.bin", 1 << 30).unwrap(),
                pattern(left as usize, 4)
            );
        }
        fat.flush().unwrap();
        drop(fat);
        let (files, used, total2) = fsck(&img);
        assert_eq!(total2, total);
        assert_eq!(files, 1 + n + u64::from(left > 0));
        if left > 0 {
            assert_eq!(used, total);
            assert_eq!(mcopy_out(&img, "/last.bin", &d), pattern(left as usize, 4));
        }
        assert_eq!(mcopy_out(&img, &format!("/fill {}.bin", n - 1), &d), chunk);
        let mut fat = open_rw(&img);
        // Free space after removing one file.
        let before = fat.free_clusters();
        fat.remove_file("/fill 0.bin").unwrap();
        assert_eq!(
            u64::from(fat.free_clusters() - before),
            (chunk.len() as u64).div_ceil(cs)
        );
        fat.flush().unwrap();
        drop(fat);
        fsck(&img);
    }
}

#[test]
fn slice_at_one_mib_inside_a_disk_image() {
    let d = TempDir::new("fat", "slice");
    let img = mkfs(&d, 8 * 1024, 16, &["-s", "1", "-n", "RESIN-BOOT"]);
    mcopy_in(&img, b"{\"slug\":\"intel-nuc\"}", "/device-type.json", &d);
    let part = std::fs::read(&img).unwrap();
    let off = 1u64 << 20;
    let mut disk = vec![0xA5u8; off as usize];
    disk.extend_from_slice(&part);
    disk.extend_from_slice(&[0x5Au8; 4096]);
    let disk_path = d.join("disk.img");
    std::fs::write(&disk_path, &disk).unwrap();

    // Read-only open of the disk: the Slice needs only Read + Seek.
    let ro = File::open(&disk_path).unwrap();
    let mut fat = Fat::open(Slice::new(ro, off, part.len() as u64).unwrap()).unwrap();
    assert_eq!(fat.label().as_deref(), Some("RESIN-BOOT"));
    assert_eq!(
        fat.read_file("/device-type.json", 4096).unwrap(),
        b"{\"slug\":\"intel-nuc\"}"
    );

    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk_path)
        .unwrap();
    let mut fat = Fat::open(Slice::new(rw, off, part.len() as u64).unwrap()).unwrap();
    fat.create_dir_all("/system-connections").unwrap();
    fat.write_file("/system-connections/wifi one", b"[wifi]\n")
        .unwrap();
    fat.write_file("/config.json", &pattern(70_000, 5)).unwrap();
    fat.flush().unwrap();
    drop(fat.into_inner().into_inner());

    let disk2 = std::fs::read(&disk_path).unwrap();
    assert!(
        disk2[..off as usize].iter().all(|&b| b == 0xA5),
        "bytes before the partition changed"
    );
    assert!(
        disk2[off as usize + part.len()..]
            .iter()
            .all(|&b| b == 0x5A),
        "bytes after the partition changed"
    );
    let part2 = d.join("part2.img");
    std::fs::write(&part2, &disk2[off as usize..off as usize + part.len()]).unwrap();
    fsck(&part2);
    assert_eq!(mcopy_out(&part2, "/config.json", &d), pattern(70_000, 5));
    assert_eq!(
        ok(
            "mtype",
            &["-i", s(&part2), "::/system-connections/wifi one"]
        ),
        "[wifi]\n"
    );
}

/// Small deterministic generator for the robustness tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A copy-on-write view of an image, so each fuzz case does not copy the whole image.
struct Overlay<'a> {
    base: &'a [u8],
    patches: std::collections::HashMap<u64, Vec<u8>>,
    pos: u64,
}

const BLOCK: u64 = 512;

impl<'a> Overlay<'a> {
    fn new(base: &'a [u8]) -> Self {
        Overlay {
            base,
            patches: Default::default(),
            pos: 0,
        }
    }

    fn block(&mut self, b: u64) -> &mut Vec<u8> {
        let base = self.base;
        self.patches.entry(b).or_insert_with(|| {
            let s = (b * BLOCK) as usize;
            base[s..(s + BLOCK as usize).min(base.len())].to_vec()
        })
    }

    fn poke(&mut self, at: usize, v: u8) {
        let off = at as u64 % BLOCK;
        self.block(at as u64 / BLOCK)[off as usize] = v;
    }
}

impl Read for Overlay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = self.base.len() as u64;
        if self.pos >= len || buf.is_empty() {
            return Ok(0);
        }
        let b = self.pos / BLOCK;
        let off = (self.pos % BLOCK) as usize;
        let src: &[u8] = match self.patches.get(&b) {
            Some(p) => &p[off..],
            None => &self.base[(b * BLOCK) as usize + off..((b + 1) * BLOCK).min(len) as usize],
        };
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Overlay<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let len = self.base.len() as u64;
        if self.pos >= len {
            return Err(std::io::Error::other("write past the end of the image"));
        }
        let off = (self.pos % BLOCK) as usize;
        let blk = self.block(self.pos / BLOCK);
        let n = (blk.len() - off).min(buf.len());
        blk[off..off + n].copy_from_slice(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Overlay<'_> {
    fn seek(&mut self, p: SeekFrom) -> std::io::Result<u64> {
        self.pos = match p {
            SeekFrom::Start(x) => x,
            SeekFrom::End(d) => (self.base.len() as u64).checked_add_signed(d).unwrap(),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

/// Every operation on a damaged volume returns (Ok or Err) without panicking.
fn exercise(dev: Overlay<'_>) {
    let Ok(mut fat) = Fat::open(dev) else {
        return;
    };
    let _ = fat.label();
    let _ = fat.list_dir("/");
    let _ = fat.list_dir("/sub");
    let _ = fat.read_file("/device-type.json", 1 << 20);
    let _ = fat.read_file("/sub/file with long name.txt", 1 << 20);
    let _ = fat.exists("/sub/x");
    let _ = fat.write_file("/config.json", b"{}");
    let _ = fat.write_file("/sub/new file name.txt", &[1u8; 3000]);
    let _ = fat.create_dir_all("/a/b");
    let _ = fat.remove_file("/device-type.json");
    let _ = fat.flush();
}

fn small_image(bits: u8) -> Vec<u8> {
    let d = TempDir::new("fat", &format!("fuzz{bits}"));
    let (kib, extra): (u32, &[&str]) = match bits {
        12 => (1024, &[]),
        16 => (8 * 1024, &["-s", "1"]),
        _ => (34 * 1024, &["-s", "1"]),
    };
    let img = mkfs(&d, kib, bits, extra);
    mcopy_in(&img, br#"{"slug":"x"}"#, "/device-type.json", &d);
    ok("mmd", &["-i", s(&img), "::/sub"]);
    mcopy_in(&img, &pattern(5000, 1), "/sub/file with long name.txt", &d);
    std::fs::read(&img).unwrap()
}

#[test]
fn garbage_and_truncated_boot_sectors_are_errors() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for len in [0usize, 1, 100, 511, 512, 4096] {
        let mut b = vec![0u8; len];
        b.iter_mut().for_each(|x| *x = rng.next() as u8);
        assert!(Fat::open(Cursor::new(b)).is_err());
    }
    let mut exfat = vec![0u8; 4096];
    exfat[0] = 0xEB;
    exfat[3..11].copy_from_slice(b"EXFAT   ");
    exfat[510] = 0x55;
    exfat[511] = 0xAA;
    let e = Fat::open(Cursor::new(exfat)).err().unwrap().to_string();
    assert!(e.contains("exFAT"), "{e}");
    let mut ntfs = vec![0u8; 4096];
    ntfs[3..11].copy_from_slice(b"NTFS    ");
    let e = Fat::open(Cursor::new(ntfs)).err().unwrap().to_string();
    assert!(e.contains("NTFS"), "{e}");
    let zero = Fat::open(Cursor::new(vec![0u8; 65536]))
        .err()
        .unwrap()
        .to_string();
    assert!(zero.contains("boot"), "{zero}");

    for bits in [12u8, 16, 32] {
        let good = small_image(bits);
        // Truncated images: the filesystem claims more than the partition holds.
        let e = Fat::open(Cursor::new(good[..good.len() / 2].to_vec()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("partition has only"), "{e}");
        // Random mutations of the boot sector.
        for _ in 0..300 {
            let mut b = Overlay::new(&good);
            for _ in 0..1 + rng.below(4) {
                b.poke(rng.below(90), rng.next() as u8);
            }
            exercise(b);
        }
    }
}

#[test]
fn corrupted_fat_chains_and_directories_are_errors() {
    for bits in [12u8, 16, 32] {
        let good = small_image(bits);
        let fat = Fat::open(Cursor::new(good.clone())).unwrap();
        let layout = fat.layout.clone();
        drop(fat);
        // Find the chain of the 5000-byte file and break it in the ways a damaged FAT can be.
        let mut fat = Fat::open(Cursor::new(good.clone())).unwrap();
        let sub = fat.open_dir("/sub").unwrap();
        let e = sub.find("file with long name.txt").unwrap().clone();
        let chain = fat.table.chain(e.cluster, None, "x").unwrap();
        assert_eq!(
            chain.len() as u64,
            5000u64.div_ceil(u64::from(layout.cluster_size))
        );
        let max = layout.cluster_count + 1;
        let first = chain[0];
        let last = chain[chain.len() - 1];
        let cases = [
            (last, first, "loops"),
            (last, max + 5, "outside"),
            (first, 0, "free"),
            (first, 1, "outside"),
            (first, first, "loops"),
        ];
        let p = "/sub/file with long name.txt";
        for (victim, value, expect) in cases {
            let mut fat = Fat::open(Cursor::new(good.clone())).unwrap();
            fat.table.set_for_test(victim, value);
            fat.commit_fat().unwrap();
            let bytes = fat.into_inner().into_inner();
            let mut fat = Fat::open(Cursor::new(bytes)).unwrap();
            let before = fat.free_clusters();
            // Reading stops after the clusters the size needs, so damage past them may go
            // unnoticed; damage inside them is an error naming the file.
            if victim == first && chain.len() > 1 {
                let e = fat.read_file(p, 1 << 20).unwrap_err().to_string();
                assert!(e.contains(p) && e.contains(expect), "{e}");
            }
            let e = fat.write_file(p, b"new").unwrap_err().to_string();
            assert!(
                e.contains(p) && e.contains(expect),
                "FAT{bits} {victim}->{value}: {e}"
            );
            assert!(e.contains("fsck.fat"), "{e}");
            let e = fat.remove_file(p).unwrap_err().to_string();
            assert!(e.contains(expect), "{e}");
            assert_eq!(
                fat.free_clusters(),
                before,
                "nothing freed on a damaged chain"
            );
            assert!(fat.exists(p).unwrap());
        }
        // Random corruption of the FAT and directory area: no panic.
        let mut rng = Rng(u64::from(bits) * 7919 + 1);
        let end = (layout.data_start as usize + 8 * layout.cluster_size as usize).min(good.len());
        for _ in 0..300 {
            let mut b = Overlay::new(&good);
            for _ in 0..1 + rng.below(16) {
                let at = layout.fat_start as usize + rng.below(end - layout.fat_start as usize);
                b.poke(at, rng.next() as u8);
            }
            exercise(b);
        }
    }
}

#[test]
fn damaged_directory_entry_is_an_error_not_the_root() {
    for bits in [12u8, 32] {
        let good = small_image(bits);
        let mut fat = Fat::open(Cursor::new(good)).unwrap();
        let root = fat.open_dir("/").unwrap();
        let e = root.find("sub").unwrap().clone();
        let off = fat.slot_offset(&root, e.short_slot) as usize;
        let mut bytes = fat.into_inner().into_inner();
        bytes[off + 20..off + 22].fill(0);
        bytes[off + 26..off + 28].fill(0);
        let mut fat = Fat::open(Cursor::new(bytes)).unwrap();
        let m = fat.list_dir("/sub").unwrap_err().to_string();
        assert!(m.contains("/sub") && m.contains("no first cluster"), "{m}");
        let m = fat.write_file("/sub/x", b"x").unwrap_err().to_string();
        assert!(
            m.contains("/sub/x") && m.contains("no first cluster"),
            "{m}"
        );
        assert!(fat.create_dir_all("/sub/y").is_err());
    }
}

/// A device whose writes start failing after a budget: a crash at every point of an operation.
struct Crashy {
    inner: Cursor<Vec<u8>>,
    writes_left: usize,
}

impl Read for Crashy {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Crashy {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.writes_left == 0 {
            return Err(std::io::Error::other("simulated power loss"));
        }
        self.writes_left -= 1;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Crashy {
    fn seek(&mut self, p: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(p)
    }
}

/// fsck may only find what an interrupted, correctly ordered update leaves: lost clusters, a
/// stale free count, orphaned long name slots. Never cross-links or wrong sizes.
fn assert_only_benign(img: &Path) {
    let o = tool("fsck.fat", &["-n", s(img)]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for line in out.lines().skip(1) {
        // (a crash between the FAT copies: the first one, written first, is used)
        let benign = line.contains("FATs differ but appear to be intact")
            || line.contains("Using first FAT")
            || line.contains("Free cluster summary")
            || line.contains("Auto-correcting")
            || line.contains("Leaving filesystem unchanged")
            || line.contains("unused clusters")
            || line.contains("Orphaned long file name")
            || line.contains("Auto-deleting")
            || line.trim().is_empty()
            || line.contains(" files, ")
            || line.contains("Reclaimed");
        assert!(benign, "fsck found real damage: {line}\n{out}");
    }
}

#[test]
fn interrupted_writes_leave_old_or_new_content() {
    let d = TempDir::new("fat", "crash");
    for bits in [16u8, 32] {
        let good = small_image(bits);
        let old = pattern(5000, 1);
        let new = pattern(9000, 2);
        let p = "/sub/file with long name.txt";
        let mut outcomes = [0usize; 2];
        for budget in 0..40 {
            let dev = Crashy {
                inner: Cursor::new(good.clone()),
                writes_left: budget,
            };
            let mut fat = Fat::open(dev).unwrap();
            let r1 = fat.write_file(p, &new);
            let r2 = r1
                .as_ref()
                .ok()
                .map(|()| fat.write_file("/sub/a new file.json", b"{}"));
            let bytes = fat.into_inner().inner.into_inner();
            if r1.is_ok() && matches!(r2, Some(Ok(()))) {
                assert!(budget > 3);
                break;
            }
            let img = d.join("crash.img");
            std::fs::write(&img, &bytes).unwrap();
            assert_only_benign(&img);
            let mut fat = Fat::open(Cursor::new(bytes)).unwrap();
            let got = fat.read_file(p, 1 << 20).unwrap();
            if got == old {
                outcomes[0] += 1;
            } else {
                assert_eq!(got, new, "budget {budget}: neither old nor new content");
                outcomes[1] += 1;
            }
            if fat.exists("/sub/a new file.json").unwrap() {
                assert_eq!(fat.read_file("/sub/a new file.json", 10).unwrap(), b"{}");
            }
        }
        assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
    }
}

#[test]
fn fat16_with_4096_byte_sectors() {
    names_roundtrip(16, 24 * 1024, &["-S", "4096", "-s", "1"]);
}
