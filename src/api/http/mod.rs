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
//!
//! | piece | module |
//! |---|---|
//! | which tool: curl, GNU wget, busybox wget | [`tool`] |
//! | the argv, environment and private files for one request, one builder per tool | [`argv`] |
//! | the client: API calls and downloads with retries and resume | [`client`] |
//! | one run of the tool under the watchdog | [`run`] |
//! | response headers; progress lines | [`headers`], [`progress`] |
#![forbid(unsafe_code)]

pub mod argv;
pub mod client;
pub mod headers;
pub mod progress;
pub mod run;
#[cfg(test)]
mod tests;
pub mod tool;

use std::path::Path;
use std::time::Duration;

pub use argv::{invocation, Invocation, StdoutTo};
pub use client::Http;
pub use headers::{parse_headers, Headers};
pub use progress::{human, progress_line, Progress};
pub use tool::{Tool, ToolKind};

/// Largest API reply kept in memory.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;
/// Default limit for one API call (connect, headers and body).
pub const API_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes left free on the download filesystem beyond the image itself.
pub const FREE_MARGIN: u64 = 16 * 1024 * 1024;

pub(crate) const HINT_NET: &str =
    "check the network connection and the apiEndpoint in config.json; \
                        a proxy is taken from the https_proxy/http_proxy environment variables";

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
    pub(crate) fn body(&self) -> Option<&str> {
        match self {
            Method::Get => None,
            Method::Post(b) | Method::Patch(b) => Some(b),
        }
    }
    pub(crate) fn name(&self) -> &'static str {
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

pub(crate) fn excerpt(body: &[u8]) -> String {
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

/// A URL for messages: the query (long OData filters) shortened to `?…`.
pub fn short_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}
