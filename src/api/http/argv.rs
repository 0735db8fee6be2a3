//! The command for one request, built without writing or running anything: argv, environment,
//! stdin and the private files, one builder per tool. Secrets never go on a command line
//! (busybox wget excepted: it has no other way, and [`Invocation::key_on_argv`] says so).
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Method, Spec, Target, Tool, ToolKind};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdoutTo {
    Pipe,
    /// Appended to this file (curl downloads).
    Append(PathBuf),
    Null,
}

/// How to run the tool for one request: everything the executor needs, nothing it decides.
#[derive(Debug, Clone)]
pub struct Invocation {
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
/// invocation are inside `tmp`, a private directory the caller creates and removes.
pub fn invocation(tool: &Tool, spec: &Spec<'_>, tmp: &Path) -> Result<Invocation> {
    let auth = spec.auth.map(auth_header).transpose()?;
    let mut inv = Invocation {
        argv: vec![tool.program.clone().into_os_string()],
        stdin: None,
        env: vec![("LC_ALL".into(), "C".into())],
        files: Vec::new(),
        stdout: StdoutTo::Pipe,
        header_file: None,
        key_on_argv: false,
    };
    inv.argv.extend(tool.pre_args.iter().cloned());
    let req = Request {
        spec,
        auth: auth.as_deref(),
        body_file: tmp.join("body"),
        tmp,
    };
    if let Some(b) = spec.method.body() {
        inv.files
            .push((req.body_file.clone(), b.as_bytes().to_vec()));
    }
    let args = match tool.kind {
        ToolKind::Curl => curl(&req, &mut inv),
        ToolKind::GnuWget => gnu_wget(&req, &mut inv),
        ToolKind::BusyboxWget => busybox_wget(&req, &mut inv)?,
    };
    inv.argv.extend(args.0);
    Ok(inv)
}

/// What every builder needs besides the [`Invocation`] it fills in.
struct Request<'a> {
    spec: &'a Spec<'a>,
    /// The `Authorization` header line, checked.
    auth: Option<&'a str>,
    /// Where the request body is written (0600) when there is one.
    body_file: PathBuf,
    tmp: &'a Path,
}

/// The tool's own arguments, in order.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn add(&mut self, items: &[&str]) {
        self.0.extend(items.iter().map(OsString::from));
    }
    fn push(&mut self, item: impl Into<OsString>) {
        self.0.push(item.into());
    }
}

/// Whole seconds for a tool option, at least 1.
fn secs(d: Duration) -> String {
    d.as_secs().max(1).to_string()
}

/// curl: the key in a config read from stdin (`-K -`), headers dumped into a file, a
/// download appended to the partial file through stdout.
fn curl(req: &Request<'_>, inv: &mut Invocation) -> Args {
    let spec = req.spec;
    let headers = req.tmp.join("headers");
    let mut a = Args::default();
    a.add(&["-sS", "-g"]);
    if req.auth.is_none() {
        // An authenticated request follows no redirect: the key must not travel to another
        // host or over plain http (a 3xx reply is refused by the executor).
        a.add(&["-L", "--max-redirs", "5"]);
    }
    a.add(&["--proto", "=http,https"]);
    a.add(&["--connect-timeout", &secs(spec.connect_timeout)]);
    if let Some(t) = spec.timeout {
        a.add(&["--max-time", &secs(t)]);
    }
    a.push("-D");
    a.push(headers.clone());
    if let Some(h) = req.auth {
        // curl reads this config from stdin: the key never reaches argv.
        inv.stdin = Some(format!("header = \"{h}\"\n").into_bytes());
        a.add(&["-K", "-"]);
    }
    if let Method::Patch(_) = spec.method {
        a.add(&["-X", "PATCH"]);
    }
    if spec.method.body().is_some() {
        a.add(&["-H", "Content-Type: application/json", "--data-binary"]);
        let mut at = OsString::from("@");
        at.push(&req.body_file);
        a.push(at);
    }
    if let Target::File { path, offset } = spec.target {
        // --fail: an error reply is not appended to the partial file.
        a.add(&["--fail", "--speed-limit", "1", "--speed-time"]);
        a.push(secs(spec.stall_timeout));
        if offset > 0 {
            a.push("-H");
            a.push(format!("Range: bytes={offset}-"));
        }
        inv.stdout = StdoutTo::Append(path.to_path_buf());
    }
    a.add(&["-o", "-", "--", spec.url]);
    inv.header_file = Some(headers);
    a
}

/// GNU wget: the key in a private wgetrc named by `WGETRC`.
fn gnu_wget(req: &Request<'_>, inv: &mut Invocation) -> Args {
    let spec = req.spec;
    let mut a = Args::default();
    a.add(&["-nv", "-S", "--tries=1"]);
    // wget sends the wgetrc header to whatever host a redirect names: none for a key.
    a.push(if req.auth.is_some() {
        "--max-redirect=0"
    } else {
        "--max-redirect=5"
    });
    a.push(format!("--dns-timeout={}", secs(spec.connect_timeout)));
    a.push(format!("--connect-timeout={}", secs(spec.connect_timeout)));
    a.push(format!("--read-timeout={}", secs(spec.stall_timeout)));
    if let Some(h) = req.auth {
        // A private wgetrc: the key never reaches argv.
        let rc = req.tmp.join("wgetrc");
        inv.files
            .push((rc.clone(), format!("header = {h}\n").into_bytes()));
        inv.env.push(("WGETRC".into(), rc.into_os_string()));
    }
    if spec.method.body().is_some() {
        a.push("--header=Content-Type: application/json");
        let mut f = OsString::from(match spec.method {
            Method::Patch(_) => "--body-file=",
            _ => "--post-file=",
        });
        f.push(&req.body_file);
        if let Method::Patch(_) = spec.method {
            a.push("--method=PATCH");
        }
        a.push(f);
    }
    if let Target::Memory = spec.target {
        a.push("--content-on-error");
    }
    wget_output(&mut a, spec.target, inv);
    a.add(&["--", spec.url]);
    a
}

/// busybox wget: no config file and no PATCH; the key has to go on its command line.
fn busybox_wget(req: &Request<'_>, inv: &mut Invocation) -> Result<Args> {
    let spec = req.spec;
    if let Method::Patch(_) = spec.method {
        return Err(Error::new(
            "sending PATCH to",
            spec.url,
            "busybox wget cannot send PATCH requests",
        )
        .hint("install curl or GNU wget"));
    }
    let mut a = Args::default();
    a.add(&["-q", "-S"]);
    if let Some(h) = req.auth {
        // busybox wget has no config file: the header must go on the command line.
        a.add(&["--header", h]);
        inv.key_on_argv = true;
    }
    if spec.method.body().is_some() {
        a.add(&["--header", "Content-Type: application/json", "--post-file"]);
        a.push(req.body_file.clone());
    }
    wget_output(&mut a, spec.target, inv);
    a.push(spec.url);
    Ok(a)
}

/// Where both wgets put the body: stdout (`-O -`), or the download file, resumed (`-c`).
fn wget_output(a: &mut Args, target: Target<'_>, inv: &mut Invocation) {
    match target {
        Target::Memory => a.add(&["-O", "-"]),
        Target::File { path, .. } => {
            a.add(&["-c", "-O"]);
            a.push(path);
            inv.stdout = StdoutTo::Null;
        }
    }
}
