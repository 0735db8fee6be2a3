//! The HTTP client: API calls and downloads, retried with back-off; downloads resume and are
//! complete only when their size matches the headers.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::run::{file_size, truncate, Attempt};
use super::{
    short_url, Method, Progress, Response, Spec, Target, Tool, ToolKind, API_TIMEOUT, HINT_NET,
};
use crate::error::{Error, Result};

/// The HTTP client.
#[derive(Debug, Clone)]
pub struct Http {
    pub(super) tool: Tool,
    /// Extra attempts after the first for retryable failures (for downloads: in a row
    /// without progress).
    pub retries: u32,
    /// Most attempts of one download, progress or not.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time, at most 30 s.
    pub backoff: Duration,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    /// Most time one attempt of an API request ([`Api`](crate::api::balena::Api)'s GETs)
    /// may take.
    pub request_timeout: Duration,
    /// Where the private per-call directories are made.
    pub tmp_dir: PathBuf,
    /// Extra environment for the tool (stage 2: `LD_LIBRARY_PATH`, `CURL_CA_BUNDLE`); never
    /// a secret.
    pub env: Vec<(OsString, OsString)>,
}

impl Http {
    /// A client for a given tool (tests; `TAKEOVER_HTTP_TOOL`).
    pub fn with_tool(tool: Tool) -> Http {
        Http {
            tool,
            retries: 4,
            max_attempts: 50,
            backoff: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(60),
            request_timeout: API_TIMEOUT,
            tmp_dir: std::env::temp_dir(),
            // The old system's proxy when takeover's environment lacks it (net::proxy).
            env: crate::net::proxy::client_env(),
        }
    }

    /// Finds curl, else GNU or busybox wget. `TAKEOVER_HTTP_TOOL=curl|wget|busybox` forces one.
    pub fn detect() -> Result<Http> {
        let forced = std::env::var("TAKEOVER_HTTP_TOOL").ok();
        let tool = match forced.as_deref() {
            Some("curl") => Some(Tool::curl()),
            Some("wget") => Some(Tool::gnu_wget()),
            Some("busybox") => Some(Tool::busybox_wget()),
            Some(other) => {
                return Err(Error::new(
                    "choosing the HTTP tool",
                    "TAKEOVER_HTTP_TOOL",
                    format!("'{other}' is not one of curl, wget, busybox"),
                )
                .hint("unset TAKEOVER_HTTP_TOOL to let takeover pick one"))
            }
            None => super::tool::detect_tool(),
        };
        match tool {
            Some(t) => {
                crate::debug!("HTTP requests go through {}", t.name());
                Ok(Http::with_tool(t))
            }
            None => Err(Error::new(
                "looking for an HTTP tool",
                "curl, wget, busybox",
                "none of curl, wget or busybox wget can be run",
            )
            .hint("install curl (or wget), or download the image elsewhere and pass it with -i")),
        }
    }

    /// This client for stage 1's checks and lookups under `--check-timeout`: each attempt of
    /// a request (connecting included) takes at most `timeout`, and a request makes at most 3
    /// attempts with 1 s and 2 s between them, so it ends within 3 × `timeout` + 3 s (a few
    /// seconds more where the tool cannot be told the timeout and this process stops it).
    pub fn bounded(mut self, timeout: Duration) -> Http {
        let timeout = timeout.max(Duration::from_secs(1));
        self.request_timeout = timeout;
        self.connect_timeout = self.connect_timeout.min(timeout);
        self.retries = 2;
        self.backoff = Duration::from_secs(1);
        self
    }

    /// "3 attempts of at most 10 s each": what bounds one request.
    pub fn attempts_text(&self) -> String {
        format!(
            "{} attempts of at most {} s each",
            self.retries + 1,
            self.request_timeout.as_secs()
        )
    }

    pub fn tool(&self) -> &Tool {
        &self.tool
    }

    /// GET `url`. Any HTTP status is returned as a [`Response`]; transport failures (after
    /// retries) are errors.
    pub fn get(&self, url: &str, auth: Option<&str>, timeout: Duration) -> Result<Response> {
        self.call(Method::Get, url, auth, timeout)
    }

    /// POST a JSON body.
    pub fn post_json(&self, url: &str, auth: Option<&str>, json: &str) -> Result<Response> {
        self.call(Method::Post(json), url, auth, API_TIMEOUT)
    }

    /// PATCH with a JSON body (not possible with busybox wget).
    pub fn patch_json(&self, url: &str, auth: Option<&str>, json: &str) -> Result<Response> {
        self.call(Method::Patch(json), url, auth, API_TIMEOUT)
    }

    fn backoff_for(&self, failures: u32) -> Duration {
        let f = 1u32 << failures.saturating_sub(1).min(10);
        self.backoff.saturating_mul(f).min(Duration::from_secs(30))
    }

    fn call(
        &self,
        method: Method<'_>,
        url: &str,
        auth: Option<&str>,
        timeout: Duration,
    ) -> Result<Response> {
        let spec = Spec {
            method,
            url,
            auth,
            target: Target::Memory,
            timeout: Some(timeout),
            connect_timeout: self.connect_timeout.min(timeout),
            stall_timeout: timeout,
        };
        let mut failures = 0;
        loop {
            let a = self.run_once(&spec, Progress::Quiet)?;
            let outcome = a.classify(&self.tool);
            let retry_cause = match outcome {
                Outcome::Reply(status) if retryable_status(status) => {
                    format!("the server answered HTTP {status}")
                }
                Outcome::Reply(status) => {
                    return Ok(Response {
                        status,
                        body: a.body,
                    })
                }
                Outcome::Failed(ref cause) => cause.clone(),
            };
            failures += 1;
            if failures > self.retries {
                if let Outcome::Reply(status) = outcome {
                    return Ok(Response {
                        status,
                        body: a.body,
                    });
                }
                return Err(Error::new(
                    format!("{} request to", method.name()),
                    short_url(url),
                    format!(
                        "{retry_cause} (gave up after {failures} attempts of at most {} s each)",
                        timeout.as_secs()
                    ),
                )
                .hint(HINT_NET));
            }
            let wait = self.backoff_for(failures);
            crate::warn!(
                "{} {}: {retry_cause}; retrying in {:.1} s ({failures}/{})",
                method.name(),
                short_url(url),
                wait.as_secs_f64(),
                self.retries
            );
            std::thread::sleep(wait);
        }
    }

    /// Downloads `url` into `dest` (POST with `body` when given, else GET), resuming from the
    /// size `dest` already has. Returns the final size. The file is complete when this returns
    /// `Ok`: its size matches the Content-Length/Content-Range the server announced.
    pub fn download(
        &self,
        url: &str,
        auth: Option<&str>,
        body: Option<&str>,
        dest: &Path,
        progress: Progress,
    ) -> Result<u64> {
        let method = body.map(Method::Post).unwrap_or(Method::Get);
        let step = "downloading";
        let mut failures = 0u32;
        let mut attempts = 0u32;
        let mut last_cause;
        loop {
            attempts += 1;
            let offset = file_size(dest);
            let spec = Spec {
                method,
                url,
                auth,
                target: Target::File { path: dest, offset },
                timeout: None,
                connect_timeout: self.connect_timeout,
                stall_timeout: self.stall_timeout,
            };
            let mut a = self.run_once(&spec, progress)?;
            if let Some(e) = a.fatal.take() {
                return Err(e);
            }
            let size = file_size(dest);
            let h = &a.headers;
            // Bytes gained by this attempt; false when the file had to be started over.
            let mut progressed = size > offset;
            let mut restart = |cause: String| -> Result<String> {
                progressed = false;
                truncate(dest)?;
                Ok(cause)
            };
            match a.classify(&self.tool) {
                Outcome::Reply(416) if offset > 0 => {
                    if h.range_total == Some(offset) {
                        crate::info!("{} is already complete ({offset} bytes)", dest.display());
                        return Ok(offset);
                    }
                    last_cause = restart(format!(
                        "the server refused to resume at byte {offset} (HTTP 416); starting over"
                    ))?;
                }
                Outcome::Reply(status) if (200..300).contains(&status) => {
                    let expected = match (status, h.range_start, h.range_total) {
                        (206, Some(start), Some(total)) if start == offset => Some(total),
                        (206, ..) => None,
                        _ => h.content_length,
                    };
                    match expected {
                        Some(t) if size == t => return Ok(size),
                        None if status == 200 && offset == 0 => return Ok(size),
                        None if status == 206 => {
                            last_cause = restart(format!(
                                "the server resumed at the wrong place (asked for byte {offset}); \
                                 starting over"
                            ))?;
                        }
                        Some(_) | None if offset > 0 && status == 200 => {
                            // The server ignored the Range header and sent everything again:
                            // what is in the file now cannot be trusted.
                            last_cause = restart(
                                "the server did not resume the download; starting over".into(),
                            )?;
                        }
                        Some(t) => {
                            last_cause = format!(
                                "the transfer ended at {size} of {t} bytes (body truncated)"
                            );
                        }
                        None => {
                            last_cause =
                                restart(format!("unexpected reply HTTP {status}; starting over"))?;
                        }
                    }
                }
                Outcome::Reply(status) if !retryable_status(status) => {
                    return Err(Error::new(
                        step,
                        short_url(url),
                        format!("the server answered HTTP {status}{}", h.reason_suffix()),
                    )
                    .hint(status_hint(status)));
                }
                Outcome::Reply(status) => {
                    last_cause = format!("the server answered HTTP {status}{}", h.reason_suffix());
                }
                Outcome::Failed(cause) => last_cause = cause,
            }
            if progressed {
                // Progress was made: only failures in a row without progress count.
                failures = 0;
            }
            failures += 1;
            if failures > self.retries || attempts >= self.max_attempts {
                break;
            }
            let wait = self.backoff_for(failures);
            crate::warn!(
                "downloading {}: {last_cause}; retrying in {:.1} s ({failures}/{})",
                short_url(url),
                wait.as_secs_f64(),
                self.retries
            );
            std::thread::sleep(wait);
        }
        Err(Error::new(
            step,
            short_url(url),
            format!(
                "{last_cause} (gave up after {attempts} attempts, the last {failures} without progress)"
            ),
        )
        .hint(format!(
            "{HINT_NET}; run takeover again to resume the partial file {}",
            dest.display()
        )))
    }
}

enum Outcome {
    /// A complete reply with this status.
    Reply(u16),
    /// No usable reply: why.
    Failed(String),
}

impl Attempt {
    fn classify(&self, tool: &Tool) -> Outcome {
        if let Some(t) = &self.timed_out {
            return Outcome::Failed(t.clone());
        }
        let code = self.exit.unwrap_or(-1);
        match (self.headers.status, code) {
            (Some(s), 0) => Outcome::Reply(s),
            // wget reports an error status through its exit code (8 server error, 6 for 401/407
            // "authentication failed"); the status line is what counts.
            (Some(s), 6 | 8) if s >= 400 && tool.kind == ToolKind::GnuWget => Outcome::Reply(s),
            (Some(s), 1)
                if s >= 400
                    && tool.kind == ToolKind::BusyboxWget
                    && self.stderr.contains("server returned error") =>
            {
                Outcome::Reply(s)
            }
            // curl --fail: the status is known, the body was not written.
            (Some(s), 22) if s >= 400 && tool.kind == ToolKind::Curl => Outcome::Reply(s),
            (_, code) => Outcome::Failed(transport_cause(tool, code, &self.stderr)),
        }
    }
}

fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => "the API refused the key: check apiKey/deviceApiKey in config.json (download a fresh config.json from the dashboard)",
        404 => "the API has no image for this device type and version: check -v and the device type (config.json deviceType or --change-dt-to)",
        400 => "the API rejected the request: check the device type and version; a newer takeover may be needed",
        _ => "check the apiEndpoint in config.json and try again later",
    }
}

fn transport_cause(tool: &Tool, code: i32, stderr: &str) -> String {
    let what = match (tool.kind, code) {
        (_, -1) => "was killed",
        (ToolKind::Curl, 6) => "could not resolve the host name",
        (ToolKind::Curl, 7) => "could not connect",
        (ToolKind::Curl, 18) => "the transfer ended early (body truncated)",
        (ToolKind::Curl, 28) => "timed out",
        (ToolKind::Curl, 35) | (ToolKind::Curl, 60) => {
            "the TLS connection or certificate check failed"
        }
        (ToolKind::Curl, 52) => "the server sent an empty reply",
        (ToolKind::Curl, 56) => "the connection broke while receiving",
        (ToolKind::GnuWget, 4) => {
            "a network failure (connection refused, reset, truncated or timed out)"
        }
        (ToolKind::GnuWget, 5) => "the TLS certificate check failed",
        (ToolKind::GnuWget, 8) => "the server answered with an error",
        _ => "failed",
    };
    let mut s = format!("{}: {what} (exit status {code})", tool.name());
    if !stderr.is_empty() {
        s.push_str(": ");
        s.push_str(stderr);
    }
    s
}
