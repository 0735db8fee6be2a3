//! Which program does the HTTP work: curl, GNU wget or busybox wget, found by running them.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// The kinds of tool, named in the stage 2 contract and in `TAKEOVER_HTTP_TOOL` as `curl`,
/// `wget` (GNU) and `busybox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToolKind {
    #[serde(rename = "curl")]
    Curl,
    #[serde(rename = "wget")]
    GnuWget,
    #[serde(rename = "busybox")]
    BusyboxWget,
}

impl ToolKind {
    /// The short name: `curl`, `wget`, `busybox`.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolKind::Curl => "curl",
            ToolKind::GnuWget => "wget",
            ToolKind::BusyboxWget => "busybox",
        }
    }

    /// The kind of a short name ([`ToolKind::as_str`]).
    pub fn from_name(s: &str) -> Option<ToolKind> {
        [ToolKind::Curl, ToolKind::GnuWget, ToolKind::BusyboxWget]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
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

/// Runs the probe commands of [`Http::detect`].
pub(super) fn detect_tool() -> Option<Tool> {
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
