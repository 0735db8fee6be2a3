//! One run of the tool for one request, under a watchdog in this process: timeouts, stall
//! detection, progress and the free-space check of a download.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::headers::{parse_headers, Headers};
use super::progress::{human, Meter};
use super::{
    invocation, short_url, Http, Invocation, Progress, Spec, StdoutTo, Target, FREE_MARGIN,
    MAX_BODY,
};
use crate::error::{Context, Error, Result};

static KEY_WARNED: AtomicBool = AtomicBool::new(false);

impl Http {
    /// Runs the tool once for `spec` under the watchdog.
    pub(super) fn run_once(&self, spec: &Spec<'_>, progress: Progress) -> Result<Attempt> {
        let tmp = PrivateDir::new(&self.tmp_dir)?;
        let plan = invocation(&self.tool, spec, tmp.path())?;
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
                    .custom_flags(libc::O_NOFOLLOW)
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
        if let (Some(status @ 300..=399), Some(_)) = (a.headers.status, spec.auth) {
            a.fatal = Some(redirect_refused(
                spec,
                status,
                a.headers.location.as_deref(),
            ));
            if let Target::File { path, offset } = spec.target {
                // The redirect's own body must not stay in the partial file.
                truncate_to(path, offset)?;
            }
        }
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
        plan: &Invocation,
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

/// What one run of the tool produced.
pub(super) struct Attempt {
    pub(super) exit: Option<i32>,
    pub(super) headers: Headers,
    pub(super) body: Vec<u8>,
    pub(super) stderr: String,
    /// Not worth retrying (no space).
    pub(super) fatal: Option<Error>,
    /// The watchdog's reason when it killed the child.
    pub(super) timed_out: Option<String>,
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

pub(super) fn file_size(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Cuts the partial download `p` back to `len` bytes (what it had before this attempt).
fn truncate_to(p: &Path, len: u64) -> Result<()> {
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
    {
        Ok(f) => f.set_len(len).ctx_path("truncating", p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("truncating", p.display(), e)),
    }
}

/// The error for a redirect of an authenticated request: it names where the server pointed
/// (scheme and host only, never the path or query), and nothing was sent there.
pub(super) fn redirect_refused(spec: &Spec<'_>, status: u16, location: Option<&str>) -> Error {
    let to = location.map_or_else(
        || "no Location".to_string(),
        |l| {
            let (scheme, rest) = l.split_once("://").unwrap_or(("", l));
            if scheme.is_empty() {
                "a path on the same server".to_string()
            } else {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                // Never a user:password@ the server may have put there.
                let host = authority.rsplit('@').next().unwrap_or("");
                format!("{scheme}://{host}")
            }
        },
    );
    Error::new(
        format!("{} request to", spec.method.name()),
        short_url(spec.url),
        format!(
            "the server redirected the request (HTTP {status}, to {to}); takeover does not \
             follow redirects with the API key, which could reach another host or plain http"
        ),
    )
    .hint("point apiEndpoint in config.json at the API's final https address")
}

pub(super) fn truncate(p: &Path) -> Result<()> {
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
pub(super) fn stderr_tail(text: &str, key: Option<&str>) -> String {
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
