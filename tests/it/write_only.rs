//! `--write-only` onto files this test created: the whole image is proven before the first
//! write, so a corrupt, truncated or oversized image leaves the target byte-identical; an
//! existing non-empty target file is never grown; a flasher image's extracted inner image is
//! not left in the work dir; the write and the read-back show progress with a total.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::*;

const SLUG: &str = "raspberrypi4-64";

/// A config.json for a fleet of `slug`.
pub(crate) fn config(slug: &str) -> String {
    serde_json::json!({
        "applicationId": 1701, "deviceType": slug, "apiEndpoint": "https://api.example.invalid",
        "vpnEndpoint": "vpn.example.invalid", "vpnPort": 443,
        "apiKey": "WRITEONLY-API-KEY-0123456789abcdef"
    })
    .to_string()
}

fn sh(cmd: &str) {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn write_only(cfg: &Path, img: &Path, target: &Path, work: &Path) -> Output {
    run(&[
        "--write-only",
        "-c",
        cfg.to_str().unwrap(),
        "-i",
        img.to_str().unwrap(),
        "-f",
        target.to_str().unwrap(),
        "-w",
        work.to_str().unwrap(),
    ])
}

/// A file of `mib` MiB, every byte 0xEE.
fn filler(p: &Path, mib: usize) -> Vec<u8> {
    let b = vec![0xEE; mib << 20];
    std::fs::write(p, &b).unwrap();
    b
}

/// The files in `dir` but the lock file (which stays, by design).
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".takeover.lock")
        .collect();
    v.sort();
    v
}

/// A temporary dir with an empty work dir and a config.json for `slug`: (dir, work, cfg).
pub(crate) fn setup(tag: &str, slug: &str) -> (TempDir, PathBuf, PathBuf) {
    let d = TempDir::new(tag);
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let cfg = d.join("config.json");
    std::fs::write(&cfg, config(slug)).unwrap();
    (d, work, cfg)
}

/// Issue 18 item 11: a bad image is found before the first write, whatever kind of bad.
#[test]
fn a_bad_image_leaves_the_target_byte_identical_and_files_never_grow() {
    let (d, work, cfg) = setup("wo-whole", SLUG);
    let raw = fake_image();
    let q = |p: &str| d.join(p).display().to_string();
    sh(&format!(
        "gzip -1 -c {} > {}",
        raw.display(),
        q("good.img.gz")
    ));
    let gz = std::fs::read(d.join("good.img.gz")).unwrap();
    // The flipped byte and the cut are past the first MiB of decoded data: the old single pass
    // had written (and zeroed) the target by the time it found them.
    let mut flipped = gz.clone();
    let at = gz.len() * 3 / 4;
    flipped[at] ^= 0xff;
    std::fs::write(d.join("corrupt.img.gz"), &flipped).unwrap();
    std::fs::write(d.join("truncated.img.gz"), &gz[..gz.len() * 3 / 4]).unwrap();
    let target = d.join("target.img");
    for (name, words) in [
        (
            "corrupt.img.gz",
            &["decoding the image", "corrupt.img.gz"][..],
        ),
        ("truncated.img.gz", &["truncated", "truncated.img.gz"][..]),
    ] {
        let before = filler(&target, 80);
        let o = write_only(&cfg, &d.join(name), &target, &work);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        for w in words {
            assert!(err.contains(w), "{name}: no '{w}' in {err}");
        }
        assert!(
            std::fs::read(&target).unwrap() == before,
            "{name}: the target changed"
        );
        assert_eq!(names_in(&work), Vec::<String>::new(), "{name}: left behind");
    }

    // An existing non-empty file smaller than the image: refused, neither grown nor changed.
    let before = filler(&target, 32);
    let o = write_only(&cfg, raw, &target, &work);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("too small") && err.contains("target.img"),
        "{err}"
    );
    assert!(
        std::fs::read(&target).unwrap() == before,
        "the target changed"
    );

    // An empty file grows to the image's size; the write and the read-back show their
    // progress against the image's decoded size (64 MiB).
    std::fs::write(&target, b"").unwrap();
    let o = write_only(&cfg, &d.join("good.img.gz"), &target, &work);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(std::fs::metadata(&target).unwrap().len(), 64 << 20);
    assert!(err.contains("writing: 64.0 MiB in "), "{err}");
    assert!(err.contains("reading back: 64.0 MiB in "), "{err}");
    assert!(err.contains("verifying: "), "{err}");
}

/// Issue 20: a failed `--write-only` of a flasher image leaves no extracted inner image.
#[test]
fn a_failed_write_only_of_a_flasher_image_leaves_no_extracted_image() {
    // The inner image is for genericx86-64-ext; the config says raspberrypi4-64.
    let (d, work, cfg) = setup("wo-flasher", SLUG);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/mkimage.sh");
    let prefix: PathBuf = d.join("flasher");
    let o = Command::new("bash")
        .arg(&script)
        .args(["--size", "64", "--variant", "flasher", "--no-gz"])
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let target = d.join("target.img");
    let before = filler(&target, 80);
    let o = write_only(&cfg, &d.join("flasher.img"), &target, &work);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(SLUG), "{err}");
    assert!(err.contains("extracted from the flasher image"), "{err}");
    assert_eq!(
        names_in(&work),
        Vec::<String>::new(),
        "left in the work dir"
    );
    assert!(
        std::fs::read(&target).unwrap() == before,
        "the target changed"
    );
}
