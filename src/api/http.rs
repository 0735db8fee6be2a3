//! HTTP(S) through a spawned `curl`, else `wget` (GNU or busybox): takeover links no TLS stack.
//!
//! Every child is started with an argv (no shell). Secrets never go on a command line:
//!
//! | tool | Authorization header | request body |
//! |---|---|---|
//! | curl | config on stdin (`-K -`) | 0600 file, `--data-binary @file` |
//! | GNU wget | 0600 wgetrc named by `WGETRC` | 0600 file, `--post-file`/`--body-file` |
//! | busybox wget | **on its command line** (it has no other way): a warning says so | 0600 file, `--post-file` |
//!
//! The private files live in a fresh 0700 directory under the temp dir, removed after the call.
//! Status codes are read from the response headers (curl `-D file`, wget `-S` on stderr), never
//! guessed from exit codes alone. Transport errors, 5xx, 408 and 429 are retried a bounded number
//! of times with exponential back-off. A watchdog in this process enforces every timeout (busybox
//! wget has none that works: `-T` crashes busybox 1.35 on a refused connection), kills the child
//! when it passes, and polls the growing file of a download for progress, stall detection, and
//! a free-space check against the announced Content-Length. Downloads resume a partial file
//! (`Range: bytes=N-`, wget `-c`) and are complete only when the size matches the headers.
//! Proxies come from the environment (`https_proxy`, `http_proxy`, `no_proxy`), which is passed
//! on untouched; both tools honour it. The proxy found on the old system ([`crate::net::proxy`])
//! is added to every child's environment.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Context, Error, Result};

/// Largest API reply kept in memory.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;
/// Default limit for one API call (connect, headers and body).
pub const API_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes left free on the download filesystem beyond the image itself.
pub const FREE_MARGIN: u64 = 16 * 1024 * 1024;

const HINT_NET: &str = "check the network connection and the apiEndpoint in config.json; \
                        a proxy is taken from the https_proxy/http_proxy environment variables";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    Curl,
    GnuWget,
    BusyboxWget,
}

/// The program that does the HTTP work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub kind: ToolKind,
    pub program: PathBuf,
    /// Arguments before the tool's own (`busybox wget ...` → `["wget"]`).
    pub pre_args: Vec<OsString>,
}

impl Tool {
    pub fn curl() -> Tool {
        Tool {
            kind: ToolKind::Curl,
            program: "curl".into(),
            pre_args: Vec::new(),
        }
    }
    pub fn gnu_wget() -> Tool {
        Tool {
            kind: ToolKind::GnuWget,
            program: "wget".into(),
            pre_args: Vec::new(),
        }
    }
    /// `busybox wget` (the applet through the multi-call binary).
    pub fn busybox_wget() -> Tool {
        Tool {
            kind: ToolKind::BusyboxWget,
            program: "busybox".into(),
            pre_args: vec!["wget".into()],
        }
    }
    pub fn name(&self) -> &'static str {
        match self.kind {
            ToolKind::Curl => "curl",
            ToolKind::GnuWget => "GNU wget",
            ToolKind::BusyboxWget => "busybox wget",
        }
    }
}

/// What to send.
#[derive(Debug, Clone, Copy)]
pub enum Method<'a> {
    Get,
    /// POST with a JSON body.
    Post(&'a str),
    /// PATCH with a JSON body.
    Patch(&'a str),
}

impl Method<'_> {
    fn body(&self) -> Option<&str> {
        match self {
            Method::Get => None,
            Method::Post(b) | Method::Patch(b) => Some(b),
        }
    }
    fn name(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post(_) => "POST",
            Method::Patch(_) => "PATCH",
        }
    }
}

/// Where the response body goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Memory,
    /// A file, resumed from its current size.
    File {
        path: &'a Path,
        offset: u64,
    },
}

/// One request, as the argv builder sees it.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    pub method: Method<'a>,
    pub url: &'a str,
    pub auth: Option<&'a str>,
    pub target: Target<'a>,
    /// Limit for the whole call (API calls); `None` for downloads.
    pub timeout: Option<Duration>,
    pub connect_timeout: Duration,
    /// A download that receives nothing for this long is abandoned.
    pub stall_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdoutTo {
    Pipe,
    /// Appended to this file (curl downloads).
    Append(PathBuf),
    Null,
}

/// How to run the tool for one request: everything the executor needs, nothing it decides.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `argv[0]` is the program.
    pub argv: Vec<OsString>,
    /// Written to the child's stdin (curl's config with the Authorization header).
    pub stdin: Option<Vec<u8>>,
    pub env: Vec<(OsString, OsString)>,
    /// Private files (mode 0600) written before the child starts.
    pub files: Vec<(PathBuf, Vec<u8>)>,
    pub stdout: StdoutTo,
    /// The response headers are dumped into this file (curl), else they are on stderr.
    pub header_file: Option<PathBuf>,
    /// The key is on the command line (busybox wget only).
    pub key_on_argv: bool,
}

/// A reply to an API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// The start of the body as text, for error messages.
    pub fn excerpt(&self) -> String {
        excerpt(&self.body)
    }
}

fn excerpt(body: &[u8]) -> String {
    let n = body.len().min(300);
    let mut s: String = String::from_utf8_lossy(&body[..n])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.len() > n {
        s.push_str("...");
    }
    crate::log::redact(s.trim())
}

/// How a download shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A live line on a terminal (percent, rate, ETA), else a log line every 10 seconds.
    Auto,
    /// Log lines every 10 seconds only.
    Log,
    Quiet,
}

/// The HTTP client.
#[derive(Debug, Clone)]
pub struct Http {
    tool: Tool,
    /// Extra attempts after the first for retryable failures (for downloads: in a row
    /// without progress).
    pub retries: u32,
    /// Most attempts of one download, progress or not.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time, at most 30 s.
    pub backoff: Duration,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    /// Where the private per-call directories are made.
    pub tmp_dir: PathBuf,
    /// Extra environment for the tool (stage 2: `LD_LIBRARY_PATH`, `CURL_CA_BUNDLE`); never
    /// a secret.
    pub env: Vec<(OsString, OsString)>,
}

static KEY_WARNED: AtomicBool = AtomicBool::new(false);

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
            None => detect_tool(),
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
                    format!("{retry_cause} (gave up after {failures} attempts)"),
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

    /// Runs the tool once for `spec` under the watchdog.
    fn run_once(&self, spec: &Spec<'_>, progress: Progress) -> Result<Attempt> {
        let tmp = PrivateDir::new(&self.tmp_dir)?;
        let plan = plan(&self.tool, spec, tmp.path())?;
        if plan.key_on_argv && !KEY_WARNED.swap(true, Ordering::Relaxed) {
            crate::warn!(
                "busybox wget takes the API key only on its command line: while a request runs, \
                 local users can see the key in the process list; install curl or GNU wget to avoid this"
            );
        }
        for (path, data) in &plan.files {
            crate::files::write_private(path, data)?;
        }
        let stderr_path = tmp.path().join("stderr");
        let stderr = File::create(&stderr_path).ctx_path("creating", &stderr_path)?;
        let mut cmd = Command::new(&plan.argv[0]);
        cmd.args(&plan.argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(plan.env.iter().map(|(k, v)| (k, v)))
            .stderr(stderr)
            .stdin(if plan.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        match &plan.stdout {
            StdoutTo::Pipe => {
                cmd.stdout(Stdio::piped());
            }
            StdoutTo::Null => {
                cmd.stdout(Stdio::null());
            }
            StdoutTo::Append(p) => {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .ctx_path("opening download file", p)?;
                cmd.stdout(f);
            }
        }
        crate::debug!("{} {}", spec.method.name(), spec.url);
        let mut child = cmd.spawn().map_err(|e| {
            Error::io(
                format!("running {}", self.tool.name()),
                self.tool.program.display(),
                e,
            )
            .hint("install curl (or wget), or download the image elsewhere and pass it with -i")
        })?;
        if let (Some(data), Some(mut stdin)) = (&plan.stdin, child.stdin.take()) {
            // The config is a few hundred bytes: it fits in the pipe, no thread needed.
            if let Err(e) = stdin.write_all(data) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::io(
                    format!("passing the request to {}", self.tool.name()),
                    spec.url,
                    e,
                ));
            }
        }
        let reader = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = (&mut out).take(MAX_BODY + 1).read_to_end(&mut buf);
                let _ = std::io::copy(&mut out, &mut std::io::sink());
                buf
            })
        });
        let watch = self.watch(&mut child, spec, &plan, &stderr_path, progress);
        let body = reader
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default();
        let (exit, fatal) = watch?;
        let header_text = match &plan.header_file {
            Some(p) => read_prefix(p, 256 * 1024),
            None => read_prefix(&stderr_path, 256 * 1024),
        };
        let headers = parse_headers(&header_text, plan.header_file.is_none());
        let stderr_text = read_prefix(&stderr_path, 64 * 1024);
        let mut a = Attempt {
            exit,
            headers,
            body,
            stderr: stderr_tail(&stderr_text, spec.auth),
            fatal,
            timed_out: None,
        };
        if a.body.len() as u64 > MAX_BODY {
            a.fatal = Some(Error::new(
                format!("{} request to", spec.method.name()),
                short_url(spec.url),
                format!("the reply is larger than {} bytes", MAX_BODY),
            ));
        }
        if matches!(spec.target, Target::Memory) {
            if let Some(e) = a.fatal.take() {
                return Err(e);
            }
        }
        if exit.is_none() && a.fatal.is_none() {
            a.timed_out = Some(match spec.timeout {
                Some(t) => format!("no complete reply within {} s (timed out)", t.as_secs()),
                None => format!(
                    "nothing received for {} s (the transfer stalled; timed out)",
                    spec.stall_timeout.as_secs()
                ),
            });
        }
        Ok(a)
    }

    /// Waits for the child, enforcing timeouts, showing progress and checking free space.
    /// Returns the exit code (`None` when the watchdog killed it) and a fatal error if one
    /// was found (no space).
    fn watch(
        &self,
        child: &mut Child,
        spec: &Spec<'_>,
        plan: &Plan,
        stderr_path: &Path,
        progress: Progress,
    ) -> Result<(Option<i32>, Option<Error>)> {
        let start = Instant::now();
        // Our own limits come a little after the tool's, so the tool's clearer error wins.
        let slack = Duration::from_secs(3);
        let deadline = spec.timeout.map(|t| start + t + slack);
        let (dest, offset) = match spec.target {
            Target::File { path, offset } => (Some(path), offset),
            Target::Memory => (None, 0),
        };
        let mut last_size = offset;
        let mut last_change = start;
        let mut space_checked = dest.is_none();
        let mut meter = Meter::new(progress, offset);
        let mut total: Option<u64> = None;
        let mut poll = Duration::from_millis(5);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    meter.finish(last_size.max(dest.map(file_size).unwrap_or(0)), total);
                    return Ok((status.code().or(Some(-1)), None));
                }
                Ok(None) => {}
                Err(e) => {
                    kill(child);
                    return Err(Error::io("waiting for", self.tool.name(), e));
                }
            }
            let now = Instant::now();
            if let Some(path) = dest {
                let size = file_size(path);
                if size != last_size {
                    last_size = size;
                    last_change = now;
                }
                if !space_checked {
                    let text = match &plan.header_file {
                        Some(p) => read_prefix(p, 256 * 1024),
                        None => read_prefix(stderr_path, 64 * 1024),
                    };
                    let h = parse_headers(&text, plan.header_file.is_none());
                    // Wait for the final reply: 1xx and redirects are followed by another.
                    if let Some(status) = h
                        .status
                        .filter(|s| !(100..200).contains(s) && !(300..400).contains(s))
                    {
                        space_checked = true;
                        total = match (status, h.range_total, h.content_length) {
                            (206, Some(t), _) => Some(t),
                            (200, _, Some(len)) => Some(len),
                            _ => None,
                        };
                        if let Some(err) = check_space(path, status, &h, size) {
                            kill(child);
                            meter.finish(size, total);
                            return Ok((None, Some(err)));
                        }
                    }
                }
                meter.update(size, total);
                if now.duration_since(last_change) > spec.stall_timeout + slack {
                    crate::debug!(
                        "killing {}: no data for {:?}",
                        self.tool.name(),
                        spec.stall_timeout
                    );
                    kill(child);
                    meter.finish(size, total);
                    return Ok((None, None));
                }
            }
            if deadline.is_some_and(|d| now > d) {
                kill(child);
                return Ok((None, None));
            }
            // Short polls first, so quick API calls do not wait; then every 100 ms.
            std::thread::sleep(poll);
            poll = (poll * 2).min(Duration::from_millis(100));
        }
    }
}

/// Kills and reaps a child this client started.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs the probe commands of [`Http::detect`].
fn detect_tool() -> Option<Tool> {
    let output = |prog: &str, args: &[&str]| {
        Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .ok()
            .map(|o| {
                let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
                s.push_str(&String::from_utf8_lossy(&o.stderr));
                (o.status.success(), s)
            })
    };
    if let Some((true, _)) = output("curl", &["--version"]) {
        return Some(Tool::curl());
    }
    if let Some((_, text)) = output("wget", &["--version"]) {
        if text.contains("GNU Wget") {
            return Some(Tool::gnu_wget());
        }
        if text.contains("BusyBox") {
            return Some(Tool {
                kind: ToolKind::BusyboxWget,
                program: "wget".into(),
                pre_args: Vec::new(),
            });
        }
    }
    if let Some((_, text)) = output("busybox", &["wget", "--help"]) {
        if text.contains("Usage: wget") {
            return Some(Tool::busybox_wget());
        }
    }
    None
}

/// What one run of the tool produced.
struct Attempt {
    exit: Option<i32>,
    headers: Headers,
    body: Vec<u8>,
    stderr: String,
    /// Not worth retrying (no space).
    fatal: Option<Error>,
    /// The watchdog's reason when it killed the child.
    timed_out: Option<String>,
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

fn check_space(path: &Path, status: u16, h: &Headers, size: u64) -> Option<Error> {
    let total = match (status, h.range_total, h.content_length) {
        (206, Some(t), _) => t,
        (200, _, Some(len)) => len,
        _ => return None,
    };
    let remaining = total.saturating_sub(size);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let space = crate::sys::fs::statvfs(dir).ok()?;
    if remaining.saturating_add(FREE_MARGIN) > space.avail_bytes {
        return Some(
            Error::new(
                "downloading into",
                dir.display(),
                format!(
                    "not enough free space: the image needs {} more, {} are free",
                    human(remaining + FREE_MARGIN),
                    human(space.avail_bytes)
                ),
            )
            .hint("free space there or pass a work directory on a larger filesystem with -w"),
        );
    }
    None
}

/// What the response headers say (the last response, after redirects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub status: Option<u16>,
    pub reason: String,
    pub content_length: Option<u64>,
    /// `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL` on a 416).
    pub range_start: Option<u64>,
    pub range_total: Option<u64>,
}

impl Headers {
    fn reason_suffix(&self) -> String {
        if self.reason.is_empty() {
            String::new()
        } else {
            format!(" {}", self.reason)
        }
    }
}

/// Parses a header dump: curl's `-D` file (`indented == false`) or wget's `-S` output on
/// stderr (header lines indented). The last status line wins (redirects, 100 Continue).
pub fn parse_headers(text: &str, indented: bool) -> Headers {
    let mut h = Headers::default();
    let mut in_block = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("HTTP/") {
            if indented && !line.starts_with(' ') {
                continue;
            }
            let mut parts = rest.splitn(3, ' ');
            let _version = parts.next();
            if let Some(code) = parts.next().and_then(|c| c.parse::<u16>().ok()) {
                h = Headers {
                    status: Some(code),
                    reason: parts.next().unwrap_or("").trim().to_string(),
                    ..Default::default()
                };
                in_block = true;
            }
            continue;
        }
        if !in_block {
            continue;
        }
        if t.is_empty() || (indented && !line.starts_with(' ')) {
            in_block = false;
            continue;
        }
        let Some((name, value)) = t.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => h.content_length = value.parse().ok(),
            "content-range" => {
                if let Some(r) = value.strip_prefix("bytes ") {
                    if let Some((range, total)) = r.split_once('/') {
                        h.range_total = total.trim().parse().ok();
                        h.range_start = range.split('-').next().and_then(|s| s.trim().parse().ok());
                    }
                }
            }
            _ => {}
        }
    }
    h
}

/// The `Authorization` header line; refuses keys that cannot be sent safely.
fn auth_header(key: &str) -> Result<String> {
    if key.is_empty()
        || key
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\' || c.is_whitespace())
    {
        return Err(Error::new(
            "preparing the API request",
            "the API key",
            "the key is empty or contains spaces, quotes, backslashes or control characters",
        )
        .hint(
            "check apiKey/deviceApiKey in config.json (download a fresh one from the dashboard)",
        ));
    }
    Ok(format!("Authorization: Bearer {key}"))
}

/// Builds the command for one request (pure: nothing is written or run). Files named in the
/// plan are inside `tmp`, a private directory the caller creates and removes.
pub fn plan(tool: &Tool, spec: &Spec<'_>, tmp: &Path) -> Result<Plan> {
    let auth = spec.auth.map(auth_header).transpose()?;
    let body_file = tmp.join("body");
    let mut p = Plan {
        argv: vec![tool.program.clone().into_os_string()],
        stdin: None,
        env: vec![("LC_ALL".into(), "C".into())],
        files: Vec::new(),
        stdout: StdoutTo::Pipe,
        header_file: None,
        key_on_argv: false,
    };
    p.argv.extend(tool.pre_args.iter().cloned());
    if let Some(b) = spec.method.body() {
        p.files.push((body_file.clone(), b.as_bytes().to_vec()));
    }
    let secs = |d: Duration| d.as_secs().max(1).to_string();
    let mut a: Vec<OsString> = Vec::new();
    let mut arg = |s: &str| a.push(s.into());
    match tool.kind {
        ToolKind::Curl => {
            let headers = tmp.join("headers");
            for s in [
                "-sS",
                "-g",
                "-L",
                "--max-redirs",
                "5",
                "--proto",
                "=http,https",
            ] {
                arg(s);
            }
            arg("--connect-timeout");
            arg(&secs(spec.connect_timeout));
            if let Some(t) = spec.timeout {
                arg("--max-time");
                arg(&secs(t));
            }
            arg("-D");
            a.push(headers.clone().into_os_string());
            if let Some(h) = &auth {
                // curl reads this config from stdin: the key never reaches argv.
                p.stdin = Some(format!("header = \"{h}\"\n").into_bytes());
                a.push("-K".into());
                a.push("-".into());
            }
            if let Method::Patch(_) = spec.method {
                a.push("-X".into());
                a.push("PATCH".into());
            }
            if spec.method.body().is_some() {
                a.push("-H".into());
                a.push("Content-Type: application/json".into());
                a.push("--data-binary".into());
                let mut at = OsString::from("@");
                at.push(&body_file);
                a.push(at);
            }
            match spec.target {
                Target::Memory => {}
                Target::File { path, offset } => {
                    // --fail: an error reply is not appended to the partial file.
                    a.push("--fail".into());
                    a.push("--speed-limit".into());
                    a.push("1".into());
                    a.push("--speed-time".into());
                    a.push(secs(spec.stall_timeout).into());
                    if offset > 0 {
                        a.push("-H".into());
                        a.push(format!("Range: bytes={offset}-").into());
                    }
                    p.stdout = StdoutTo::Append(path.to_path_buf());
                }
            }
            a.push("-o".into());
            a.push("-".into());
            a.push("--".into());
            a.push(spec.url.into());
            p.header_file = Some(headers);
        }
        ToolKind::GnuWget => {
            for s in ["-nv", "-S", "--tries=1", "--max-redirect=5"] {
                arg(s);
            }
            a.push(format!("--dns-timeout={}", secs(spec.connect_timeout)).into());
            a.push(format!("--connect-timeout={}", secs(spec.connect_timeout)).into());
            a.push(format!("--read-timeout={}", secs(spec.stall_timeout)).into());
            if let Some(h) = &auth {
                // A private wgetrc: the key never reaches argv.
                let rc = tmp.join("wgetrc");
                p.files
                    .push((rc.clone(), format!("header = {h}\n").into_bytes()));
                p.env.push(("WGETRC".into(), rc.into_os_string()));
            }
            if spec.method.body().is_some() {
                a.push("--header=Content-Type: application/json".into());
                let mut f = OsString::from(match spec.method {
                    Method::Patch(_) => "--body-file=",
                    _ => "--post-file=",
                });
                f.push(&body_file);
                if let Method::Patch(_) = spec.method {
                    a.push("--method=PATCH".into());
                }
                a.push(f);
            }
            match spec.target {
                Target::Memory => {
                    a.push("--content-on-error".into());
                    a.push("-O".into());
                    a.push("-".into());
                }
                Target::File { path, .. } => {
                    a.push("-c".into());
                    a.push("-O".into());
                    a.push(path.as_os_str().to_owned());
                    p.stdout = StdoutTo::Null;
                }
            }
            a.push("--".into());
            a.push(spec.url.into());
        }
        ToolKind::BusyboxWget => {
            if let Method::Patch(_) = spec.method {
                return Err(Error::new(
                    "sending PATCH to",
                    spec.url,
                    "busybox wget cannot send PATCH requests",
                )
                .hint("install curl or GNU wget"));
            }
            arg("-q");
            arg("-S");
            if let Some(h) = &auth {
                // busybox wget has no config file: the header must go on the command line.
                a.push("--header".into());
                a.push(h.into());
                p.key_on_argv = true;
            }
            if spec.method.body().is_some() {
                a.push("--header".into());
                a.push("Content-Type: application/json".into());
                a.push("--post-file".into());
                a.push(body_file.clone().into_os_string());
            }
            match spec.target {
                Target::Memory => {
                    a.push("-O".into());
                    a.push("-".into());
                }
                Target::File { path, .. } => {
                    a.push("-c".into());
                    a.push("-O".into());
                    a.push(path.as_os_str().to_owned());
                    p.stdout = StdoutTo::Null;
                }
            }
            a.push(spec.url.into());
        }
    }
    p.argv.extend(a);
    Ok(p)
}

/// A 0700 directory for one call's private files, removed on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    /// Creates a new directory (never reuses or removes an existing path: in a shared /tmp
    /// another user may have put something there).
    fn new(base: &Path) -> Result<PrivateDir> {
        use std::os::unix::fs::DirBuilderExt;
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut last = None;
        for _ in 0..100 {
            let p = base.join(format!(
                "takeover-http-{}-{}-{nanos:08x}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            match fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => return Ok(PrivateDir(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(Error::io("creating private directory", p.display(), e)),
            }
        }
        Err(Error::io(
            "creating private directory in",
            base.display(),
            last.unwrap_or_else(|| std::io::Error::other("no free name")),
        ))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A URL for messages: the query (long OData filters) shortened to `?…`.
pub fn short_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

fn file_size(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn truncate(p: &Path) -> Result<()> {
    match OpenOptions::new().write(true).truncate(true).open(p) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("truncating", p.display(), e)),
    }
}

fn read_prefix(p: &Path, max: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = File::open(p) {
        let _ = f.take(max).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The tool's own message, without header dumps and progress bars, key removed, last 500 bytes.
fn stderr_tail(text: &str, key: Option<&str>) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with(' ') && !l.contains('%') && !l.contains('\r'))
        .collect();
    let mut s = lines.join("; ");
    if let Some(k) = key.filter(|k| !k.is_empty()) {
        s = s.replace(k, "<redacted>");
    }
    let s = crate::log::redact(&s);
    if s.len() > 500 {
        let mut cut = s.len() - 500;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        format!("...{}", &s[cut..])
    } else {
        s
    }
}

/// `1.5 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn duration_text(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs / 60 % 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// One progress line: `412.0 MiB of 1.2 GiB (33%), 5.1 MiB/s, ETA 2m40s`. `session` bytes were
/// received in `elapsed` (the rest came from a resumed file).
pub fn progress_line(done: u64, total: Option<u64>, session: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        session as f64 / secs
    } else {
        0.0
    };
    let mut s = human(done);
    if let Some(t) = total.filter(|t| *t > 0) {
        let pct = (done.min(t) as f64 * 100.0 / t as f64).floor();
        s.push_str(&format!(" of {} ({pct:.0}%)", human(t)));
    }
    s.push_str(&format!(", {}/s", human(rate as u64)));
    if let Some(t) = total {
        if rate >= 1.0 && t > done {
            s.push_str(&format!(
                ", ETA {}",
                duration_text(((t - done) as f64 / rate) as u64)
            ));
        }
    }
    s
}

/// Progress display for one download attempt.
struct Meter {
    mode: Progress,
    tty: bool,
    start: Instant,
    last: Instant,
    offset: u64,
    drew: bool,
}

impl Meter {
    fn new(mode: Progress, offset: u64) -> Meter {
        let now = Instant::now();
        Meter {
            mode,
            tty: mode == Progress::Auto && std::io::stderr().is_terminal(),
            start: now,
            last: now,
            offset,
            drew: false,
        }
    }

    fn update(&mut self, size: u64, total: Option<u64>) {
        let now = Instant::now();
        let every = match (self.mode, self.tty) {
            (Progress::Quiet, _) => return,
            (_, true) => Duration::from_millis(500),
            (_, false) => Duration::from_secs(10),
        };
        if now.duration_since(self.last) < every {
            return;
        }
        self.last = now;
        let line = progress_line(
            size,
            total,
            size.saturating_sub(self.offset),
            now.duration_since(self.start),
        );
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
            self.drew = true;
        } else {
            crate::info!("downloading: {line}");
        }
    }

    fn finish(&mut self, size: u64, total: Option<u64>) {
        if self.mode == Progress::Quiet {
            return;
        }
        if self.drew {
            let _ = writeln!(std::io::stderr());
        }
        let line = progress_line(
            size,
            total,
            size.saturating_sub(self.offset),
            self.start.elapsed(),
        );
        crate::info!("download attempt ended: {line}");
    }
}

#[cfg(test)]
mod tests {
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

    fn argv_text(p: &Plan) -> Vec<String> {
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
                    let p = plan(&tool, &spec(method, target), tmp).unwrap();
                    let argv = argv_text(&p);
                    assert!(!argv.iter().any(|a| a.contains(KEY)), "{argv:?}");
                    assert!(!p.env.iter().any(|(_, v)| v.to_string_lossy().contains(KEY)));
                    assert!(!p.key_on_argv);
                    // The key is handed over privately: stdin (curl) or a 0600 file (wget).
                    let via_stdin = p
                        .stdin
                        .as_ref()
                        .is_some_and(|s| String::from_utf8_lossy(s).contains(KEY));
                    let via_file = p.files.iter().any(|(f, d)| {
                        f.starts_with(tmp) && String::from_utf8_lossy(d).contains(KEY)
                    });
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
        let p = plan(
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
        for want in [
            "curl -sS -g -L",
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
        let p = plan(
            &Tool::curl(),
            &spec(Method::Patch("{}"), Target::Memory),
            tmp,
        )
        .unwrap();
        assert!(argv_text(&p).join(" ").contains("-X PATCH"));
        let mut s = spec(Method::Get, Target::Memory);
        s.auth = None;
        let p = plan(&Tool::curl(), &s, tmp).unwrap();
        assert!(p.stdin.is_none() && !argv_text(&p).contains(&"-K".to_string()));
    }

    #[test]
    fn wget_argv_shape() {
        let tmp = Path::new("/tmp/x");
        let dest = Path::new("/w/img.part");
        let p = plan(
            &Tool::gnu_wget(),
            &spec(Method::Patch("{}"), Target::Memory),
            tmp,
        )
        .unwrap();
        let argv = argv_text(&p).join(" ");
        assert!(argv.starts_with("wget -nv -S --tries=1"), "{argv}");
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
        let p = plan(
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
        let p = plan(
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
        let e = plan(
            &Tool::busybox_wget(),
            &spec(Method::Patch("{}"), Target::Memory),
            tmp,
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot send PATCH"), "{e}");
        let mut s = spec(Method::Get, Target::Memory);
        s.auth = None;
        assert!(!plan(&Tool::busybox_wget(), &s, tmp).unwrap().key_on_argv);
    }

    #[test]
    fn bad_keys_refused_without_echoing_them() {
        for key in ["", "a b", "a\"b", "a\nHost: x", "a\\b"] {
            let mut s = spec(Method::Get, Target::Memory);
            s.auth = Some(key);
            let e = plan(&Tool::curl(), &s, Path::new("/t"))
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
        let busybox =
            "Connecting to 127.0.0.1:1 (127.0.0.1:1)\n  HTTP/1.1 500 Internal Server Error\n\
                       wget: server returned error: HTTP/1.1 500 Internal Server Error\n";
        let h = parse_headers(busybox, true);
        assert_eq!(h.status, Some(500));
        assert_eq!(parse_headers("garbage\n", false), Headers::default());
    }

    #[test]
    fn progress_lines() {
        let l = progress_line(
            512 * 1024 * 1024,
            Some(1024 * 1024 * 1024),
            256 * 1024 * 1024,
            Duration::from_secs(64),
        );
        assert_eq!(l, "512.0 MiB of 1.0 GiB (50%), 4.0 MiB/s, ETA 2m08s");
        assert_eq!(
            progress_line(100, None, 100, Duration::ZERO),
            "100 B, 0 B/s"
        );
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(duration_text(3725), "1h02m");
    }

    #[test]
    fn stderr_tail_drops_headers_and_key() {
        let t = format!(
            "  HTTP/1.1 401 Unauthorized\nwget: server returned error: {KEY}\nfile 45% |***|\n"
        );
        let s = stderr_tail(&t, Some(KEY));
        assert_eq!(s, "wget: server returned error: <redacted>");
    }
}
