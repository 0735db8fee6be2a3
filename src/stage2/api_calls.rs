//! Stage 2's balena API calls, at the end of the worker (the reference tool makes the same two):
//!
//! | option | when stage 2 succeeded | when it failed |
//! |---|---|---|
//! | `--report-hup-progress` | `PATCH /v6/device(uuid='…')` `{"provisioning_progress":"100","provisioning_state":"Update successful, rebooting","status":"configuring"}` | the same with `"OS update failed"` |
//! | `--change-dt-to SLUG` (registered device) | `GET /v6/device_type?…$select=id…` then `PATCH /v6/device(uuid='…')` `{"is_of__device_type":N}` | nothing |
//!
//! "Succeeded" means the image was written and verified and the new disk fully configured
//! (resin-boot, EFI entry, resin-data): unlike the reference, a failure after the flash is
//! reported as "OS update failed". So is a worker that never reached its end (it died or hung)
//! and a failure of PID 1 after the pivot: PID 1 then runs `--stage2-failed`, which makes the
//! failure call. `--pretend` makes no call.
//!
//! Every reply's status is checked. A failed call is logged as an error and changes nothing
//! else: the worker's outcome (and so the reboot into the new or the old OS) is decided by the
//! disk, never by the API. Calls are bounded (10 s to connect, 30 s per call, 2 retries), so
//! an unreachable API delays the reboot by at most a few minutes.
//!
//! The client runs from the RAM root where stage 1 put it ([`crate::stage1::client_bundle`]),
//! with `LD_LIBRARY_PATH` naming its libraries and `CURL_CA_BUNDLE`/`SSL_CERT_FILE` its CA
//! bundle; the API key reaches it through stdin (curl) or a 0600 file in `/tmp` of the RAM
//! root (GNU wget), never argv.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::api::balena::Api;
use crate::api::http::{Http, Tool};
use crate::error::{Error, Result};
use crate::stage2_plan::Stage2Plan;

pub const MSG_OK: &str = "Update successful, rebooting";
pub const MSG_FAILED: &str = "OS update failed";

/// One call to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Progress(&'static str),
    DeviceType(String),
}

/// The calls for a plan and an outcome (pure).
pub fn calls(plan: &Stage2Plan, succeeded: bool) -> Vec<Call> {
    let mut v = Vec::new();
    if plan.pretend {
        return v;
    }
    let registered = plan.uuid.as_deref().is_some_and(|u| !u.is_empty());
    if plan.report_hup_progress {
        v.push(Call::Progress(if succeeded { MSG_OK } else { MSG_FAILED }));
    }
    if let (Some(dt), true, true) = (&plan.change_dt_to, succeeded, registered) {
        v.push(Call::DeviceType(dt.clone()));
    }
    v
}

/// The HTTP client of the plan, set up to run inside the RAM root.
pub fn client(plan: &Stage2Plan) -> Result<Http> {
    let c = plan.http_client.as_ref().ok_or_else(|| {
        Error::new(
            "calling the API",
            "the stage 2 plan",
            "stage 1 prepared no HTTP client",
        )
    })?;
    let mut http = Http::with_tool(Tool {
        kind: c.kind,
        program: c.program.clone(),
        pre_args: Vec::new(),
    });
    http.retries = 2;
    http.connect_timeout = Duration::from_secs(10);
    http.tmp_dir = PathBuf::from("/tmp");
    if !c.lib_dirs.is_empty() {
        let joined = std::env::join_paths(&c.lib_dirs).unwrap_or_default();
        http.env.push(("LD_LIBRARY_PATH".into(), joined));
    }
    for (k, v) in &c.proxy_env {
        http.env.push((k.into(), v.into()));
    }
    if let Some(ca) = &c.ca_bundle {
        let ca: OsString = ca.clone().into_os_string();
        http.env.push(("CURL_CA_BUNDLE".into(), ca.clone()));
        http.env.push(("SSL_CERT_FILE".into(), ca));
    }
    Ok(http)
}

/// Makes the calls of [`calls`]; each failure is logged, none is returned.
pub fn run(plan: &Stage2Plan, succeeded: bool) {
    let todo = calls(plan, succeeded);
    if todo.is_empty() {
        if plan.pretend && (plan.report_hup_progress || plan.change_dt_to.is_some()) {
            crate::info!("--pretend: no API calls");
        }
        return;
    }
    let http = match client(plan) {
        Ok(h) => h,
        Err(e) => {
            crate::error!("{e}; the API was not told");
            return;
        }
    };
    let (Some(endpoint), Some(uuid)) = (plan.api_endpoint.as_deref(), plan.uuid.as_deref()) else {
        crate::error!("the plan has no API endpoint or device uuid; the API was not told");
        return;
    };
    let api = Api::new(&http, endpoint, plan.api_key.as_deref());
    for c in todo {
        let r = match &c {
            Call::Progress(msg) => api.report_progress(uuid, msg).map(|()| {
                crate::info!("reported to the API: {msg}");
            }),
            Call::DeviceType(dt) => api.patch_device_type(uuid, dt).map(|()| {
                crate::info!("device type changed to {dt} in the API");
            }),
        };
        if let Err(e) = r {
            crate::error!(
                "{e} (the API call failed; the migration's outcome does not depend on it)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage2_plan::HttpClient;

    fn plan() -> Stage2Plan {
        let text = serde_json::json!({
            "version": crate::stage2_plan::PLAN_VERSION,
            "flash_device": "/dev/vda", "image": "/image", "image_bytes": 1,
            "image_sha256": "00", "payload": "/payload", "old_root_device": null,
            "old_root_fs_type": null, "log_to": null, "log_level": "info", "pretend": false,
            "efi_setup": false, "fallback_log": false, "fallback_log_filename": "f",
            "fallback_log_dir": "d", "report_hup_progress": true,
            "change_dt_to": "generic-amd64", "api_endpoint": "http://127.0.0.1:1",
            "api_key": "stage2-api-secret", "uuid": "0123abcd", "deadline_secs": 60,
        });
        Stage2Plan::parse(text.to_string().as_bytes(), std::path::Path::new("p")).unwrap()
    }

    #[test]
    fn which_calls_when() {
        let mut p = plan();
        // A plan of stage 1 before these fields existed still parses.
        assert!(p.http_client.is_none() && p.jetson.is_none());
        assert_eq!(
            calls(&p, true),
            [
                Call::Progress(MSG_OK),
                Call::DeviceType("generic-amd64".into())
            ]
        );
        assert_eq!(calls(&p, false), [Call::Progress(MSG_FAILED)]);
        p.uuid = None;
        assert_eq!(calls(&p, true), [Call::Progress(MSG_OK)]);
        p.report_hup_progress = false;
        assert!(calls(&p, true).is_empty());
        let mut q = plan();
        q.pretend = true;
        assert!(calls(&q, true).is_empty() && calls(&q, false).is_empty());
    }

    #[test]
    fn client_environment() {
        let mut p = plan();
        assert!(client(&p).is_err());
        p.http_client = Some(HttpClient {
            kind: crate::api::http::ToolKind::Curl,
            program: "/usr/bin/curl".into(),
            lib_dirs: vec!["/lib/x86_64-linux-gnu".into(), "/opt/l".into()],
            ca_bundle: Some("/etc/ssl/certs/ca-certificates.crt".into()),
            proxy_env: vec![("https_proxy".into(), "http://10.9.9.9:3128".into())],
        });
        let h = client(&p).unwrap();
        assert_eq!(h.tool().program, PathBuf::from("/usr/bin/curl"));
        let env: Vec<(String, String)> = h
            .env
            .iter()
            .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
            .collect();
        assert!(env.contains(&(
            "LD_LIBRARY_PATH".into(),
            "/lib/x86_64-linux-gnu:/opt/l".into()
        )));
        assert!(env.contains(&(
            "CURL_CA_BUNDLE".into(),
            "/etc/ssl/certs/ca-certificates.crt".into()
        )));
        assert!(env.iter().all(|(_, v)| !v.contains("stage2-api-secret")));
        assert!(env.contains(&("https_proxy".into(), "http://10.9.9.9:3128".into())));
    }

    #[test]
    fn calls_reach_a_server_with_status_checked() {
        // A one-shot HTTP server on the loopback: the host's curl (if any) PATCHes it; a 500
        // is logged, not returned (run() never fails).
        use std::io::{BufRead, BufReader, Read, Write};
        use std::net::TcpListener;
        let curl = ["/usr/bin/curl", "/bin/curl"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(curl) = curl else {
            eprintln!("skipped: no curl on this host");
            return;
        };
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (i, s) in l.incoming().take(3).enumerate() {
                let mut s = s.unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    head.push_str(&line);
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let mut body = vec![0u8; len];
                r.read_exact(&mut body).unwrap();
                let first = head.lines().next().unwrap_or("").to_string();
                let reply: &str = if first.starts_with("GET") {
                    "{\"d\":[{\"id\":58}]}"
                } else {
                    ""
                };
                // The first call is refused: logged, and the next calls are still made.
                let status = if i == 0 { "404 Not Found" } else { "200 OK" };
                write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                )
                .unwrap();
                seen.push((
                    first,
                    head.contains("Bearer stage2-api-secret"),
                    String::from_utf8(body).unwrap(),
                ));
            }
            seen
        });
        let mut p = plan();
        p.api_endpoint = Some(format!("http://127.0.0.1:{port}"));
        p.http_client = Some(HttpClient {
            kind: crate::api::http::ToolKind::Curl,
            program: curl.into(),
            lib_dirs: Vec::new(),
            ca_bundle: None,
            proxy_env: Vec::new(),
        });
        run(&p, true);
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(
            seen[0].0.starts_with("PATCH /v6/device(uuid='0123abcd')"),
            "{seen:?}"
        );
        assert!(seen[0]
            .2
            .contains("\"provisioning_state\":\"Update successful, rebooting\""));
        assert!(seen[0].2.contains("\"provisioning_progress\":\"100\""));
        assert!(seen[1].0.starts_with("GET /v6/device_type?"), "{seen:?}");
        assert!(seen[2].0.starts_with("PATCH /v6/device(uuid='0123abcd')"));
        assert_eq!(seen[2].2, "{\"is_of__device_type\":58}");
        assert!(
            seen.iter().all(|s| s.1),
            "the key goes in the Authorization header"
        );
    }
}
