//! The HTTP client and the balena API calls against tests/mock-api/mock_api.py on 127.0.0.1,
//! through curl, GNU wget and busybox wget. No traffic leaves the machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use takeover::api::balena::Api;
use takeover::api::http::{Http, Progress, Tool, ToolKind};

use crate::util::TempDir;

const KEY: &str = "mockKEY0123456789abcdefXYZ";
const SLUG: &str = "raspberrypi4-64";
const VERSIONS: &str = "6.0.1-rc1,5.1.20+rev1,5.1.20,3.2.25";
const IMAGE_SIZE: usize = 3 * 1024 * 1024 + 12345;

/// A running mock API, killed on drop.
struct Mock {
    child: Child,
    base: String,
    record: PathBuf,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> Option<&'static str> {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| "python3")
}

fn image_bytes() -> Vec<u8> {
    // Deterministic, incompressible-looking bytes (xorshift).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..IMAGE_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

impl Mock {
    /// Starts the mock with one device type, `VERSIONS`, an image, and `faults`; `None` (after
    /// saying why) when python3 is missing.
    fn start(dir: &TempDir, faults: &[&str]) -> Option<Mock> {
        let Some(py) = python() else {
            eprintln!("SKIP: python3 not found, the mock API cannot run");
            return None;
        };
        let image = dir.join("mock-image.img.gz");
        if !image.exists() {
            std::fs::write(&image, image_bytes()).unwrap();
        }
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let record = dir.join(&format!("requests-{n}.jsonl"));
        let mut args: Vec<std::ffi::OsString> = [
            "--port",
            "0",
            "--api-key",
            KEY,
            "--max-seconds",
            "120",
            "--flasher",
            "intel-nuc",
            "--versions",
            "intel-nuc=2.0.0",
        ]
        .iter()
        .map(Into::into)
        .collect();
        for (opt, value) in [
            ("--versions", format!("{SLUG}={VERSIONS}")),
            ("--image", format!("{SLUG}={}", image.display())),
            ("--image", format!("intel-nuc={}", image.display())),
            ("--record", record.display().to_string()),
        ] {
            args.push(opt.into());
            args.push(value.into());
        }
        for f in faults {
            args.push("--fault".into());
            args.push(f.into());
        }
        let (child, base) = crate::util::start_mock_api(py, &args);
        Some(Mock {
            child,
            base,
            record,
        })
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn requests_to(&self, path: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["path"] == path)
            .collect()
    }
}

/// Clients for every tool available here (busybox wget via `busybox wget`).
fn clients() -> Vec<Http> {
    let mut v = Vec::new();
    for tool in [Tool::curl(), Tool::gnu_wget(), Tool::busybox_wget()] {
        let probe = Command::new(&tool.program)
            .args(&tool.pre_args)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if probe.is_err() {
            eprintln!("SKIP: {} not installed", tool.name());
            continue;
        }
        v.push(fast(Http::with_tool(tool)));
    }
    v
}

fn fast(mut h: Http) -> Http {
    h.retries = 2;
    h.backoff = Duration::from_millis(20);
    h.connect_timeout = Duration::from_secs(5);
    h.stall_timeout = Duration::from_secs(2);
    h
}

fn client(kind: ToolKind) -> Option<Http> {
    clients().into_iter().find(|h| h.tool().kind == kind)
}

#[test]
fn ping_ok_and_500() {
    let dir = TempDir::new("api-ping");
    let Some(mock) = Mock::start(&dir, &[r#"{"path":"/ping","status":500,"times":3}"#]) else {
        return;
    };
    for http in clients() {
        let api = Api::new(&http, &mock.base, Some(KEY));
        // The fault answers 500 to the first three pings: one client's attempts use them up
        // (1 + 2 retries), so the first tool sees the error and the rest see OK.
        let r = api.ping();
        if mock.requests_to("/ping").len() <= 3 {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("HTTP 500") && e.contains("/ping"), "{e}");
        } else {
            r.unwrap();
        }
    }
    api_ping_is_unauthenticated(&mock);
}

fn api_ping_is_unauthenticated(mock: &Mock) {
    for r in mock.requests_to("/ping") {
        assert_eq!(r["auth_present"], false, "{r}");
    }
}

#[test]
fn release_list_and_contract_with_every_tool() {
    let dir = TempDir::new("api-rel");
    let Some(mock) = Mock::start(&dir, &[]) else {
        return;
    };
    for http in clients() {
        let api = Api::new(&http, &mock.base, Some(KEY));
        let v = api.releases(SLUG).unwrap();
        assert_eq!(
            v,
            ["6.0.1-rc1", "5.1.20+rev1", "5.1.20", "3.2.25"],
            "{:?}",
            http.tool()
        );
        assert!(!api.is_flasher(SLUG).unwrap());
        assert!(api.is_flasher("intel-nuc").unwrap());
        assert_eq!(api.device_type_id("intel-nuc").unwrap(), 1);
        let e = api.is_flasher("nosuch").unwrap_err().to_string();
        assert!(e.contains("knows no device type 'nosuch'"), "{e}");
    }
    let rel = mock.requests_to("/v6/release");
    assert!(!rel.is_empty());
    for r in &rel {
        assert_eq!(r["auth_present"], true);
        assert_eq!(
            r["auth_ok"], true,
            "recorded Authorization must be 'Bearer <key>'"
        );
        assert_eq!(r["params"]["$select"], "raw_version");
        assert_eq!(r["params"]["$orderby"], "created_at desc");
        let f = r["params"]["$filter"].as_str().unwrap();
        assert!(f.contains(&format!("iodt/slug eq '{SLUG}'")), "{f}");
        assert!(f.contains("at/value eq 'default'"), "{f}");
        assert!(
            !r.to_string().contains(KEY),
            "the mock must not store the key"
        );
    }
    for r in mock.requests_to("/v6/device_type") {
        assert_eq!(r["auth_ok"], true);
        assert_eq!(r["params"]["$top"], "1");
        assert_eq!(r["params"]["$orderby"], "name asc");
    }
}

#[test]
fn download_with_every_tool_and_resume() {
    let dir = TempDir::new("api-dl");
    let Some(mock) = Mock::start(&dir, &[]) else {
        return;
    };
    let want = image_bytes();
    for http in clients() {
        let name = http.tool().name().replace(' ', "-");
        // Fresh download.
        let work = dir.join(&format!("w-{name}"));
        std::fs::create_dir_all(&work).unwrap();
        let t = Instant::now();
        let p = Api::new(&http, &mock.base, Some(KEY))
            .download_image(SLUG, "5.1.20+rev1", false, &work, Progress::Quiet)
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "{}: {} bytes in {secs:.2} s ({:.0} MB/s)",
            http.tool().name(),
            want.len(),
            want.len() as f64 / secs / 1e6
        );
        assert_eq!(
            p,
            work.join("balena-cloud-raspberrypi4-64-5.1.20+rev1.img.gz")
        );
        assert!(
            std::fs::read(&p).unwrap() == want,
            "{name}: content differs"
        );
        assert!(!work
            .join("balena-cloud-raspberrypi4-64-5.1.20+rev1.img.gz.part")
            .exists());

        // Resume of a partial file.
        let work = dir.join(&format!("r-{name}"));
        std::fs::create_dir_all(&work).unwrap();
        let part = work.join("balena-cloud-raspberrypi4-64-5.1.20+rev1.img.gz.part");
        std::fs::write(&part, &want[..1_000_000]).unwrap();
        let p = Api::new(&http, &mock.base, Some(KEY))
            .download_image(SLUG, "5.1.20+rev1", false, &work, Progress::Quiet)
            .unwrap();
        assert!(
            std::fs::read(&p).unwrap() == want,
            "{name}: resumed content differs"
        );
        let last = mock.requests_to("/download").pop().unwrap();
        assert_eq!(last["headers"]["Range"], "bytes=1000000-", "{name}: {last}");

        // A complete file is reused without a request.
        let n = mock.requests_to("/download").len();
        Api::new(&http, &mock.base, Some(KEY))
            .download_image(SLUG, "5.1.20+rev1", false, &work, Progress::Quiet)
            .unwrap();
        assert_eq!(mock.requests_to("/download").len(), n);
    }
    for r in mock.requests_to("/download") {
        assert_eq!(r["method"], "POST");
        assert_eq!(r["auth_ok"], true);
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"deviceType": SLUG, "version": "5.1.20+rev1", "fileType": ".gz", "imageType": null})
        );
        assert!(r["headers"]["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("application/json"));
    }
}

#[test]
fn flasher_type_asks_for_raw_image() {
    let dir = TempDir::new("api-flasher");
    let Some(mock) = Mock::start(&dir, &[]) else {
        return;
    };
    let Some(http) = client(ToolKind::Curl) else {
        return;
    };
    let api = Api::new(&http, &mock.base, Some(KEY));
    let flasher = api.is_flasher("intel-nuc").unwrap();
    api.download_image("intel-nuc", "2.0.0", flasher, dir.path(), Progress::Quiet)
        .unwrap();
    let r = mock.requests_to("/download").pop().unwrap();
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["imageType"], "raw");
}

#[test]
fn retry_after_two_500s_and_after_truncation_and_ignored_range() {
    let dir = TempDir::new("api-retry");
    let want = image_bytes();
    for http in clients() {
        let name = http.tool().name().replace(' ', "-");
        for (fault, requests) in [
            (r#"{"path":"/download","status":500,"times":2}"#, 3),
            (r#"{"path":"/download","truncate":1500000,"times":1}"#, 2),
        ] {
            let Some(mock) = Mock::start(&dir, &[fault]) else {
                return;
            };
            let work = dir.join(&format!("{name}-{requests}"));
            std::fs::create_dir_all(&work).unwrap();
            let p = Api::new(&http, &mock.base, Some(KEY))
                .download_image(SLUG, "5.1.20+rev1", false, &work, Progress::Quiet)
                .unwrap();
            assert!(std::fs::read(&p).unwrap() == want, "{name} {fault}");
            let dl = mock.requests_to("/download");
            assert_eq!(dl.len(), requests, "{name} {fault}");
            if requests == 2 {
                assert_eq!(dl[1]["headers"]["Range"], "bytes=1500000-", "{name}");
            }
        }
        // The server ignores Range on a resume: the file must still come out right.
        let Some(mock) = Mock::start(
            &dir,
            &[r#"{"path":"/download","no_range":true,"times":-1}"#],
        ) else {
            return;
        };
        let work = dir.join(&format!("{name}-norange"));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(
            work.join("balena-cloud-raspberrypi4-64-5.1.20+rev1.img.gz.part"),
            &want[..777_777],
        )
        .unwrap();
        let p = Api::new(&http, &mock.base, Some(KEY))
            .download_image(SLUG, "5.1.20+rev1", false, &work, Progress::Quiet)
            .unwrap();
        assert!(
            std::fs::read(&p).unwrap() == want,
            "{name}: no-range resume"
        );
    }
}

#[test]
fn error_replies_are_clear() {
    let dir = TempDir::new("api-err");
    let Some(mock) = Mock::start(&dir, &[]) else {
        return;
    };
    for http in clients() {
        let tool = http.tool().name();
        // 401: wrong key.
        let api = Api::new(&http, &mock.base, Some("wrongKEY0000"));
        let e = api.releases(SLUG).unwrap_err().to_string();
        assert!(
            e.contains("HTTP 401") && e.contains("/v6/release"),
            "{tool}: {e}"
        );
        assert!(e.contains("apiKey"), "{tool}: {e}");
        assert!(!e.contains("wrongKEY0000"), "{tool}: {e}");
        let work = dir.join(&format!("e-{}", tool.replace(' ', "-")));
        std::fs::create_dir_all(&work).unwrap();
        let e = api
            .download_image(SLUG, "5.1.20+rev1", false, &work, Progress::Quiet)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HTTP 401") && e.contains("/download"),
            "{tool}: {e}"
        );
        // 404: a version the server does not have.
        let api = Api::new(&http, &mock.base, Some(KEY));
        let e = api
            .download_image(SLUG, "9.9.9", false, &work, Progress::Quiet)
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTP 404") && e.contains("hint:"), "{tool}: {e}");
        assert!(std::fs::read_dir(&work).unwrap().all(|f| {
            let n = f.unwrap().file_name();
            !n.to_string_lossy().ends_with(".img.gz")
        }));
        // Connection refused: a port nobody listens on (our own mock's port after it is gone
        // would race; port 1 is never served here).
        let dead = Api::new(&http, "http://127.0.0.1:1", Some(KEY));
        let e = dead.ping().unwrap_err().to_string();
        assert!(
            e.contains("http://127.0.0.1:1/ping") && e.contains("gave up"),
            "{tool}: {e}"
        );
    }
}

#[test]
fn garbage_truncated_500_and_stall() {
    let dir = TempDir::new("api-garbage");
    for http in clients() {
        let tool = http.tool().name();
        let Some(mock) = Mock::start(
            &dir,
            &[
                r#"{"path":"/v6/release","garbage":true,"times":1}"#,
                r#"{"path":"/v6/device_type","truncate":5,"times":-1}"#,
                r#"{"path":"/download","status":500,"times":-1}"#,
                r#"{"path":"/ping","stall":30,"times":-1}"#,
            ],
        ) else {
            return;
        };
        let api = Api::new(&http, &mock.base, Some(KEY));
        let e = api.releases(SLUG).unwrap_err().to_string();
        assert!(
            e.contains("not the expected JSON") && e.contains("this is not json"),
            "{tool}: {e}"
        );
        let e = api.is_flasher(SLUG).unwrap_err().to_string();
        assert!(e.contains("gave up after 3 attempts"), "{tool}: {e}");
        assert_eq!(mock.requests_to("/v6/device_type").len(), 3, "{tool}");
        let e = api
            .download_image(SLUG, "5.1.20+rev1", false, dir.path(), Progress::Quiet)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HTTP 500") && e.contains("gave up"),
            "{tool}: {e}"
        );
        // A stalled server: the call ends with a timeout, not a hang.
        let mut quick = http.clone();
        quick.retries = 0;
        let t = Instant::now();
        let e = quick
            .get(&format!("{}/ping", mock.base), None, Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out") || e.contains("time"), "{tool}: {e}");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{tool}: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn stalled_download_times_out_then_resumes() {
    let dir = TempDir::new("api-stall");
    let want = image_bytes();
    for http in clients() {
        let tool = http.tool().name();
        let Some(mock) = Mock::start(
            &dir,
            &[r#"{"path":"/download","stall":20,"after":400000,"times":1}"#],
        ) else {
            return;
        };
        let work = dir.join(&format!("s-{}", tool.replace(' ', "-")));
        std::fs::create_dir_all(&work).unwrap();
        let t = Instant::now();
        let p = Api::new(&http, &mock.base, Some(KEY))
            .download_image(SLUG, "5.1.20+rev1", false, &work, Progress::Log)
            .unwrap();
        assert!(std::fs::read(&p).unwrap() == want, "{tool}");
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{tool}: {:?}",
            t.elapsed()
        );
        let dl = mock.requests_to("/download");
        assert_eq!(dl.len(), 2, "{tool}");
        // Resumed where the first transfer stopped (the tool may not have written every byte
        // the server sent before the stall).
        let range = dl[1]["headers"]["Range"].as_str().unwrap();
        let from: u64 = range
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .unwrap()
            .parse()
            .unwrap();
        assert!(from > 0 && from <= 400_000, "{tool}: {range}");
    }
}

#[test]
fn patch_bodies_and_busybox_refusal() {
    let dir = TempDir::new("api-patch");
    let Some(mock) = Mock::start(&dir, &[]) else {
        return;
    };
    for http in clients() {
        let api = Api::new(&http, &mock.base, Some(KEY));
        let r = api.report_progress("0123abcd", "Update successful, rebooting");
        if http.tool().kind == ToolKind::BusyboxWget {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("cannot send PATCH"), "{e}");
            continue;
        }
        r.unwrap();
        api.patch_device_type("0123abcd", "intel-nuc").unwrap();
        let e = api
            .report_progress("x'y", "OS update failed")
            .unwrap_err()
            .to_string();
        assert!(e.contains("uuid"), "{e}");
    }
    let patches = mock.requests_to("/v6/device(uuid='0123abcd')");
    assert!(!patches.is_empty());
    for p in patches.chunks(2) {
        assert_eq!(p[0]["method"], "PATCH");
        assert_eq!(p[0]["auth_ok"], true);
        let b: Value = serde_json::from_str(p[0]["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            b,
            serde_json::json!({"provisioning_progress":"100","provisioning_state":"Update successful, rebooting","status":"configuring"})
        );
        let b: Value = serde_json::from_str(p[1]["body"].as_str().unwrap()).unwrap();
        assert_eq!(b, serde_json::json!({"is_of__device_type": 1}));
    }
}

#[test]
fn download_only_end_to_end() {
    let dir = TempDir::new("api-donly");
    // -d verifies what it downloaded: the mock serves a real (fake) balenaOS image.
    let prefix = dir.join("real");
    let o = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/mkimage.sh"))
        .args(["--size", "64", "--device-type", SLUG])
        .arg(&prefix)
        .output()
        .expect("running tests/tools/mkimage.sh");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::copy(dir.join("real.img.gz"), dir.join("mock-image.img.gz")).unwrap();
    let served = std::fs::metadata(dir.join("mock-image.img.gz"))
        .unwrap()
        .len();
    let Some(mock) = Mock::start(&dir, &[]) else {
        return;
    };
    let Some(http) = client(ToolKind::Curl).or_else(|| clients().into_iter().next()) else {
        return;
    };
    let cfg = dir.join("config.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"applicationId":1,"deviceType":"{SLUG}","apiEndpoint":"{}/","apiKey":"{KEY}"}}"#,
            mock.base
        ),
    )
    .unwrap();
    let opts = takeover::cli::Options {
        config: Some(cfg.clone()),
        work_dir: Some(dir.join("work")),
        download_only: true,
        ..Default::default()
    };
    let mut report = takeover::report::Report::new("download-only");
    let p = takeover::stage1::download::download_with(&opts, &mut report, &http).unwrap();
    // default: newest non-pre-release, newest revision (5.1.20+rev1 over 5.1.20 and 6.0.1-rc1).
    assert_eq!(
        p,
        dir.join("work/balena-cloud-raspberrypi4-64-5.1.20+rev1.img.gz")
    );
    let img = report.image.as_ref().unwrap();
    assert_eq!(img.version.as_deref(), Some("5.1.20+rev1"));
    assert_eq!(img.compressed_bytes, Some(served));
    assert_eq!(img.path.as_deref(), Some(p.to_str().unwrap()));
    assert_eq!(img.layout, "balena");
    assert!(img.verified);
    assert_eq!(img.device_type.as_deref(), Some(SLUG));
    assert!(!report.to_json().contains(KEY));
    let paths: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        ["/ping", "/v6/release", "/v6/device_type", "/download"]
    );

    // An unknown version names the nearest ones; a bad slug is refused before any request.
    let opts2 = takeover::cli::Options {
        version: Some("5.1.21".into()),
        ..opts.clone()
    };
    let e = takeover::stage1::download::download_with(&opts2, &mut report, &http)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("No version found for '5.1.21'; nearest available: 5.1.20+rev1"),
        "{e}"
    );
    let opts3 = takeover::cli::Options {
        change_dt_to: Some("Bad Slug".into()),
        ..opts.clone()
    };
    let n = mock.requests().len();
    assert!(takeover::stage1::download::download_with(&opts3, &mut report, &http).is_err());
    assert_eq!(mock.requests().len(), n);
}

#[test]
fn mock_config_file_and_control_endpoints() {
    let dir = TempDir::new("api-mockcfg");
    let Some(py) = python() else {
        eprintln!("SKIP: python3 not found");
        return;
    };
    let Some(http) = client(ToolKind::Curl) else {
        return;
    };
    let image = dir.join("img.gz");
    std::fs::write(&image, b"not really gzip").unwrap();
    let (child, base) = crate::util::start_mock_api(
        py,
        &[
            "--config".into(),
            crate::util::fixture("api/mock-config.json").into_os_string(),
            "--image".into(),
            format!("genericx86-64-ext={}", image.display()).into(),
            "--max-seconds".into(),
            "60".into(),
        ],
    );
    let mock = Mock {
        child,
        base,
        record: dir.join("none.jsonl"),
    };
    let api = Api::new(&http, &mock.base, Some(KEY));
    let listed = api.releases("raspberrypi4-64").unwrap();
    let v = takeover::api::version::resolve("default", &listed).unwrap();
    assert_eq!(v.to_string(), "5.1.20+rev2", "newest revision wins");
    assert!(api.is_flasher("genericx86-64-ext").unwrap());
    assert_eq!(api.device_type_id("raspberrypi4-64").unwrap(), 58);
    // Faults through the control endpoint, requests read back through it.
    let r = http
        .post_json(
            &format!("{}/__mock/faults", mock.base),
            None,
            r#"{"path":"/v6/release","status":503,"times":1}"#,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    api.releases("raspberrypi4-64").unwrap();
    let r = http
        .get(
            &format!("{}/__mock/requests", mock.base),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
    let reqs: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
    let statuses: Vec<&str> = reqs.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        [
            "/v6/release",
            "/v6/device_type",
            "/v6/device_type",
            "/v6/release",
            "/v6/release"
        ]
    );
    assert!(reqs.iter().all(|r| r["auth_ok"] == true));
}

/// Throughput of a 256 MiB download through each tool (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn download_throughput() {
    let dir = TempDir::new("api-bench");
    let Some(py) = python() else {
        return;
    };
    let image = dir.join("big.img.gz");
    let f = std::fs::File::create(&image).unwrap();
    f.set_len(256 << 20).unwrap();
    let (child, base) = crate::util::start_mock_api(
        py,
        &[
            "--api-key".into(),
            KEY.into(),
            "--versions".into(),
            "big=1.0.0".into(),
            "--max-seconds".into(),
            "300".into(),
            "--image".into(),
            std::ffi::OsString::from(format!("big={}", image.display())),
        ],
    );
    let mock = Mock {
        child,
        base,
        record: dir.join("none.jsonl"),
    };
    for http in clients() {
        let work = dir.join(&http.tool().name().replace(' ', "-"));
        std::fs::create_dir_all(&work).unwrap();
        let t = Instant::now();
        let p = Api::new(&http, &mock.base, Some(KEY))
            .download_image("big", "1.0.0", false, &work, Progress::Log)
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 256 << 20);
        eprintln!(
            "BENCH {}: 256 MiB in {secs:.2} s = {:.0} MiB/s",
            http.tool().name(),
            256.0 / secs
        );
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn not_enough_space_for_announced_length() {
    let dir = TempDir::new("api-space");
    let Some(mock) = Mock::start(
        &dir,
        &[r#"{"path":"/download","announce":1000000000000000,"stall":20,"after":1000,"times":-1}"#],
    ) else {
        return;
    };
    for http in clients() {
        let tool = http.tool().name();
        let work = dir.join(&format!("sp-{}", tool.replace(' ', "-")));
        std::fs::create_dir_all(&work).unwrap();
        let t = Instant::now();
        let e = Api::new(&http, &mock.base, Some(KEY))
            .download_image(SLUG, "5.1.20+rev1", false, &work, Progress::Quiet)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not enough free space") && e.contains("-w"),
            "{tool}: {e}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{tool}: {:?}",
            t.elapsed()
        );
    }
    // Refused at once, never retried: one request per tool.
    assert_eq!(mock.requests_to("/download").len(), clients().len());
}

#[test]
fn download_only_refuses_a_download_that_is_not_an_image() {
    let dir = TempDir::new("api-notimg");
    let Some(mock) = Mock::start(&dir, &[]) else {
        return;
    };
    let Some(http) = client(ToolKind::Curl).or_else(|| clients().into_iter().next()) else {
        return;
    };
    let cfg = dir.join("config.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"applicationId":1,"deviceType":"{SLUG}","apiEndpoint":"{}","apiKey":"{KEY}"}}"#,
            mock.base
        ),
    )
    .unwrap();
    let opts = takeover::cli::Options {
        config: Some(cfg),
        work_dir: Some(dir.join("work")),
        download_only: true,
        ..Default::default()
    };
    let mut report = takeover::report::Report::new("download-only");
    // The mock serves random bytes: complete as a download, but no image.
    let e = takeover::stage1::download::download_with(&opts, &mut report, &http)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("balena-cloud-raspberrypi4-64-5.1.20+rev1.img.gz"),
        "{e}"
    );
    assert!(e.contains("not a good image"), "{e}");
    assert!(!e.contains(KEY));
}
