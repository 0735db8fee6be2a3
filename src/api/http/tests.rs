//! Tests of the HTTP client's pure parts: argv, headers, progress lines, stderr tails.

use std::path::Path;
use std::time::Duration;

use super::run::stderr_tail;
use super::*;

const KEY: &str = "s3cr3tKEY0123456789abcdef";

fn spec<'a>(method: Method<'a>, target: Target<'a>) -> Spec<'a> {
    Spec {
        method,
        url: "https://api.example.com/v6/release?$filter=a%20eq%20%27b%27",
        auth: Some(KEY),
        target,
        timeout: Some(Duration::from_secs(30)),
        connect_timeout: Duration::from_secs(10),
        stall_timeout: Duration::from_secs(60),
    }
}

fn argv_text(p: &Invocation) -> Vec<String> {
    p.argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn key_never_on_argv_or_env_for_curl_and_gnu_wget() {
    let tmp = Path::new("/tmp/x");
    let dest = Path::new("/w/img.part");
    for tool in [Tool::curl(), Tool::gnu_wget()] {
        for method in [Method::Get, Method::Post("{\"a\":1}"), Method::Patch("{}")] {
            for target in [
                Target::Memory,
                Target::File {
                    path: dest,
                    offset: 0,
                },
                Target::File {
                    path: dest,
                    offset: 1000,
                },
            ] {
                let p = invocation(&tool, &spec(method, target), tmp).unwrap();
                let argv = argv_text(&p);
                assert!(!argv.iter().any(|a| a.contains(KEY)), "{argv:?}");
                assert!(!p.env.iter().any(|(_, v)| v.to_string_lossy().contains(KEY)));
                assert!(!p.key_on_argv);
                // The key is handed over privately: stdin (curl) or a 0600 file (wget).
                let via_stdin = p
                    .stdin
                    .as_ref()
                    .is_some_and(|s| String::from_utf8_lossy(s).contains(KEY));
                let via_file = p
                    .files
                    .iter()
                    .any(|(f, d)| f.starts_with(tmp) && String::from_utf8_lossy(d).contains(KEY));
                assert!(via_stdin ^ via_file, "{tool:?}");
                // Bodies are never on argv either.
                if let Some(b) = method.body() {
                    assert!(p.files.iter().any(|(_, d)| d == b.as_bytes()));
                    assert!(!argv.iter().any(|a| a.contains("\"a\":1")));
                }
                assert_eq!(argv.last().unwrap(), spec(method, target).url);
            }
        }
    }
}

#[test]
fn curl_argv_shape() {
    let tmp = Path::new("/tmp/x");
    let dest = Path::new("/w/img.part");
    let p = invocation(
        &Tool::curl(),
        &spec(
            Method::Post("{}"),
            Target::File {
                path: dest,
                offset: 1000,
            },
        ),
        tmp,
    )
    .unwrap();
    let argv = argv_text(&p).join(" ");
    assert!(
        !argv.contains(" -L "),
        "an authenticated request follows no redirect: {argv}"
    );
    for want in [
        "curl -sS -g --proto =http,https",
        "--connect-timeout 10",
        "--max-time 30",
        "-D /tmp/x/headers",
        "-K -",
        "-H Content-Type: application/json --data-binary @/tmp/x/body",
        "--fail",
        "-H Range: bytes=1000-",
        "-o - -- https://",
    ] {
        assert!(argv.contains(want), "{want} in {argv}");
    }
    assert_eq!(p.stdout, StdoutTo::Append(dest.into()));
    assert_eq!(
        String::from_utf8(p.stdin.unwrap()).unwrap(),
        format!("header = \"Authorization: Bearer {KEY}\"\n")
    );
    let p = invocation(
        &Tool::curl(),
        &spec(Method::Patch("{}"), Target::Memory),
        tmp,
    )
    .unwrap();
    assert!(argv_text(&p).join(" ").contains("-X PATCH"));
    let mut s = spec(Method::Get, Target::Memory);
    s.auth = None;
    let p = invocation(&Tool::curl(), &s, tmp).unwrap();
    assert!(p.stdin.is_none() && !argv_text(&p).contains(&"-K".to_string()));
    assert!(argv_text(&p).join(" ").contains("-L --max-redirs 5"));
}

#[test]
fn wget_argv_shape() {
    let tmp = Path::new("/tmp/x");
    let dest = Path::new("/w/img.part");
    let p = invocation(
        &Tool::gnu_wget(),
        &spec(Method::Patch("{}"), Target::Memory),
        tmp,
    )
    .unwrap();
    let argv = argv_text(&p).join(" ");
    assert!(
        argv.starts_with("wget -nv -S --tries=1 --max-redirect=0"),
        "{argv}"
    );
    assert!(
        argv.contains("--method=PATCH --body-file=/tmp/x/body"),
        "{argv}"
    );
    assert!(argv.contains("--content-on-error -O -"), "{argv}");
    assert!(p.env.contains(&("WGETRC".into(), "/tmp/x/wgetrc".into())));
    assert!(p.files.contains(&(
        "/tmp/x/wgetrc".into(),
        format!("header = Authorization: Bearer {KEY}\n").into_bytes()
    )));
    let p = invocation(
        &Tool::gnu_wget(),
        &spec(
            Method::Post("{}"),
            Target::File {
                path: dest,
                offset: 5,
            },
        ),
        tmp,
    )
    .unwrap();
    let argv = argv_text(&p).join(" ");
    assert!(
        argv.contains("--post-file=/tmp/x/body -c -O /w/img.part -- https://"),
        "{argv}"
    );
    assert_eq!(p.stdout, StdoutTo::Null);
}

#[test]
fn busybox_puts_key_on_argv_and_says_so_and_refuses_patch() {
    let tmp = Path::new("/tmp/x");
    let p = invocation(
        &Tool::busybox_wget(),
        &spec(Method::Post("{}"), Target::Memory),
        tmp,
    )
    .unwrap();
    let argv = argv_text(&p);
    assert_eq!(&argv[..4], ["busybox", "wget", "-q", "-S"]);
    assert!(p.key_on_argv);
    assert!(argv.contains(&format!("Authorization: Bearer {KEY}")));
    assert!(argv.join(" ").contains("--post-file /tmp/x/body"));
    let e = invocation(
        &Tool::busybox_wget(),
        &spec(Method::Patch("{}"), Target::Memory),
        tmp,
    )
    .unwrap_err();
    assert!(e.to_string().contains("cannot send PATCH"), "{e}");
    let mut s = spec(Method::Get, Target::Memory);
    s.auth = None;
    assert!(
        !invocation(&Tool::busybox_wget(), &s, tmp)
            .unwrap()
            .key_on_argv
    );
}

#[test]
fn bad_keys_refused_without_echoing_them() {
    for key in ["", "a b", "a\"b", "a\nHost: x", "a\\b"] {
        let mut s = spec(Method::Get, Target::Memory);
        s.auth = Some(key);
        let e = invocation(&Tool::curl(), &s, Path::new("/t"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("the API key"), "{e}");
        if !key.is_empty() {
            assert!(!e.contains(key), "{e}");
        }
    }
}

#[test]
fn header_parsing_curl_and_wget() {
    let curl = "HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 5\r\n\r\n\
                HTTP/1.1 206 Partial Content\r\nContent-Length: 2999000\r\n\
                Content-Range: bytes 1000-2999999/3000000\r\n\r\n";
    let h = parse_headers(curl, false);
    assert_eq!(h.status, Some(206));
    assert_eq!(h.reason, "Partial Content");
    assert_eq!(h.content_length, Some(2_999_000));
    assert_eq!(
        (h.range_start, h.range_total),
        (Some(1000), Some(3_000_000))
    );
    let wget = "--2026-11-30 04:47:41--  http://127.0.0.1/download\n\
                HTTP request sent, awaiting response... \n  HTTP/1.1 416 Requested Range Not Satisfiable\n  \
                Content-Range: bytes */3000000\n  Content-Length: 0\n\n    The file is already fully retrieved\n";
    let h = parse_headers(wget, true);
    assert_eq!(h.status, Some(416));
    assert_eq!((h.range_start, h.range_total), (None, Some(3_000_000)));
    let busybox = "Connecting to 127.0.0.1:1 (127.0.0.1:1)\n  HTTP/1.1 500 Internal Server Error\n\
                   wget: server returned error: HTTP/1.1 500 Internal Server Error\n";
    let h = parse_headers(busybox, true);
    assert_eq!(h.status, Some(500));
    assert_eq!(parse_headers("garbage\n", false), Headers::default());
}

#[test]
fn a_refused_redirect_names_only_scheme_and_host() {
    let s = spec(Method::Get, Target::Memory);
    let e = super::run::redirect_refused(&s, 302, Some("http://u:pw@cdn.example:8080/x?t=1"))
        .to_string();
    assert!(e.contains("HTTP 302, to http://cdn.example:8080)"), "{e}");
    assert!(!e.contains("pw") && !e.contains("t=1"), "{e}");
    let e = super::run::redirect_refused(&s, 301, Some("/v7/device")).to_string();
    assert!(e.contains("a path on the same server"), "{e}");
}

#[test]
fn progress_lines() {
    let l = progress_line(
        512 * 1024 * 1024,
        Some(1024 * 1024 * 1024),
        256 * 1024 * 1024,
        Duration::from_secs(64),
    );
    // Half of it resumed: the rate and the time left count this session's 256 MiB only.
    assert_eq!(l, "512.0 of 1024.0 MiB (50%), 4.2 MB/s, 2:08 left");
    assert_eq!(
        progress_line(100, None, 100, Duration::ZERO),
        "0.0 MiB, 0.0 MB/s"
    );
    assert_eq!(human(1536), "1.5 KiB");
}

#[test]
fn stderr_tail_drops_headers_and_key() {
    let t = format!(
        "  HTTP/1.1 401 Unauthorized\nwget: server returned error: {KEY}\nfile 45% |***|\n"
    );
    let s = stderr_tail(&t, Some(KEY));
    assert_eq!(s, "wget: server returned error: <redacted>");
}

/// A one-shot HTTP server on 127.0.0.1 answering every request with `reply`; the requests
/// it saw are returned when `stop` is set.
fn serve(
    reply: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            let Ok((mut c, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            c.set_nonblocking(false).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = c.write_all(reply.as_bytes());
            seen.push(String::from_utf8_lossy(&req).into_owned());
        }
        seen
    });
    (port, h)
}

/// A redirect of an authenticated request is refused, and the key reaches nobody else (GNU
/// wget re-sent its wgetrc header to the redirect's host before issue 18; curl followed too).
#[test]
fn authenticated_requests_follow_no_redirect() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    for tool in [Tool::curl(), Tool::gnu_wget()] {
        if std::process::Command::new(&tool.program)
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipped {}: not installed", tool.name());
            continue;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (other, other_h) = serve(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into(),
            stop.clone(),
        );
        let (api, api_h) = serve(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{other}/elsewhere?x=1\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            stop.clone(),
        );
        let mut http = Http::with_tool(tool.clone());
        http.retries = 0;
        http.env = vec![
            ("no_proxy".into(), "*".into()),
            ("NO_PROXY".into(), "*".into()),
        ];
        let url = format!("http://127.0.0.1:{api}/v6/device");
        let r = http.get(&url, Some(KEY), Duration::from_secs(10));
        // Without a key the same redirect is followed.
        let plain = http.get(&url, None, Duration::from_secs(10));
        stop.store(true, Ordering::Relaxed);
        let at_other = other_h.join().unwrap();
        let _ = api_h.join().unwrap();
        let e = r.map(|r| r.status).unwrap_err().to_string();
        assert!(
            e.contains("redirected") && e.contains("HTTP 302"),
            "{}: {e}",
            tool.name()
        );
        assert!(
            e.contains(&format!("http://127.0.0.1:{other}")) && !e.contains("x=1"),
            "{e}"
        );
        assert!(!e.contains(KEY), "{e}");
        assert!(
            !at_other.iter().any(|q| q.contains(KEY)),
            "{}: the key reached the other server: {at_other:?}",
            tool.name()
        );
        assert_eq!(plain.map(|r| r.status).ok(), Some(200), "{}", tool.name());
        assert_eq!(at_other.len(), 1, "{}: {at_other:?}", tool.name());
    }
}
