//! Helpers for integration tests (std only).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The built takeover binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_takeover"))
}

/// A `Command` that starts the built takeover binary. Use this, not `Command::new(bin())`:
/// under `make test-cross` the binary is foreign (ARM under qemu-user, no binfmt_misc in
/// containers), and `TAKEOVER_TEST_RUNNER` (e.g. `qemu-arm-static -cpu arm1176`) names the
/// emulator that must start it.
pub fn command() -> Command {
    let runner = std::env::var("TAKEOVER_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(emulator) => {
            let mut c = Command::new(emulator);
            c.args(words).arg(bin());
            c
        }
        None => Command::new(bin()),
    }
}

/// Runs takeover with `args` (never as a real migration: callers pass --help, --dry-run, -d or
/// --write-only onto a file they created).
pub fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("running takeover")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "takeover-it-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Path of a file under tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A 64 MiB fake balenaOS image (raw, MBR, device type raspberrypi4-64), built once per test
/// run with tests/tools/mkimage.sh and shared by every test.
pub fn fake_image() -> &'static Path {
    static IMG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    IMG.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake-images");
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("pi4.img");
        let o = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/mkimage.sh"))
            .args([
                "--size",
                "64",
                "--no-gz",
                "--device-type",
                "raspberrypi4-64",
            ])
            .arg(dir.join("pi4"))
            .output()
            .expect("running tests/tools/mkimage.sh (needs sfdisk, mkfs.vfat, mtools, mkfs.ext4)");
        assert!(
            o.status.success(),
            "mkimage.sh failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        raw
    })
}

/// Starts the mock balena API (`tests/mock-api/mock_api.py`) with the interpreter `python` and
/// `args`, and returns the child and its base URL (the mock listens on the port it prints).
pub fn start_mock_api<S: AsRef<std::ffi::OsStr>>(
    python: &str,
    args: &[S],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mock-api/mock_api.py");
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the mock API prints its port");
    (child, format!("http://127.0.0.1:{port}"))
}

/// The argv of a dry run: `--dry-run --sysroot S -c CFG -i IMG --no-api-check --no-vpn-check
/// -w WORK`, then `--report R` when given, then `extra`.
pub fn dry_run_args(
    sysroot: &Path,
    cfg: &Path,
    img: &Path,
    work: &Path,
    report: Option<&Path>,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = vec!["--dry-run".into(), "--sysroot".into()];
    args.push(sysroot.display().to_string());
    args.push("-c".into());
    args.push(cfg.display().to_string());
    args.push("-i".into());
    args.push(img.display().to_string());
    args.extend([
        "--no-api-check".into(),
        "--no-vpn-check".into(),
        "-w".into(),
    ]);
    args.push(work.display().to_string());
    if let Some(r) = report {
        args.push("--report".into());
        args.push(r.display().to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// [`run`] with owned arguments.
pub fn run_args(args: &[String]) -> Output {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&argv)
}
