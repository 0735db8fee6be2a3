//! The init system (PID 1), from the `/proc/1/exe` symlink.
//!
//! Heuristic, in order:
//! 1. Read the link target of `proc/1/exe` (a " (deleted)" suffix, left by a package upgrade,
//!    is dropped). On a live system the kernel already gives the real binary; under a sysroot
//!    the target may be a name such as `/sbin/init`, so symlinks are followed *inside the
//!    root* (at most 8 hops, never outside it).
//!    When `/proc/1/exe` cannot be read (it needs ptrace rights over PID 1, which some
//!    sandboxes deny even to root), `proc/1/cmdline`'s argv[0] is used the same way, and
//!    `proc/1/comm` = `systemd` identifies systemd (systemd always sets that name).
//! 2. Classify the final file name: `systemd` → systemd; `busybox` → busybox;
//!    `openrc-init` → openrc; `init` or `sysvinit` → sysvinit when the package markers say so
//!    (`var/lib/dpkg/info/sysvinit-core.list` exists, or `etc/inittab` exists and neither
//!    `var/lib/dpkg/info/upstart.list` nor a systemd package marker does); anything else
//!    (runit, s6, upstart, tini, an unknown `init`) → other.
//!
//! Only systemd and sysvinit re-execute themselves on `telinit u`, which is how stage 1 hands
//! PID 1 over to stage 2; the check refuses the others.
#![forbid(unsafe_code)]

use std::path::{Component, Path, PathBuf};

use super::Root;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitKind {
    Systemd,
    Sysvinit,
    Busybox,
    Openrc,
    Other,
}

impl InitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InitKind::Systemd => "systemd",
            InitKind::Sysvinit => "sysvinit",
            InitKind::Busybox => "busybox",
            InitKind::Openrc => "openrc",
            InitKind::Other => "other",
        }
    }

    /// Whether stage 1 can hand PID 1 over (`telinit u` re-executes init).
    pub fn can_take_over(self) -> bool {
        matches!(self, InitKind::Systemd | InitKind::Sysvinit)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitInfo {
    /// The link target of /proc/1/exe as read.
    pub path: Option<String>,
    /// After following symlinks inside the root.
    pub resolved: Option<String>,
    pub kind: InitKind,
}

/// Lexically joins `target` (absolute, or relative to the directory of `link`).
pub(crate) fn join_link(link: &Path, target: &Path) -> PathBuf {
    let joined = if target.is_absolute() {
        target.to_path_buf()
    } else {
        link.parent().unwrap_or(Path::new("/")).join(target)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Follows symlinks of `start` inside `root` (at most 8 hops).
fn resolve_in_root(root: &Root, start: &Path) -> PathBuf {
    let mut cur = start.to_path_buf();
    for _ in 0..8 {
        match root.read_link(&cur) {
            Ok(t) => cur = join_link(&cur, &t),
            Err(_) => break,
        }
    }
    cur
}

/// Detects the init system; `notes` receives what could not be read.
pub fn detect(root: &Root, notes: &mut Vec<String>) -> InitInfo {
    let link = match root.read_link("proc/1/exe") {
        Ok(p) => p,
        Err(e) => {
            notes.push(format!(
                "cannot read {}: {e}; PID 1 identified from proc/1/cmdline and proc/1/comm",
                root.path("proc/1/exe").display()
            ));
            return from_cmdline(root, notes);
        }
    };
    let s = link.to_string_lossy();
    let path = s.strip_suffix(" (deleted)").unwrap_or(&s).to_string();
    // On the live system the kernel already resolved every link; under a sysroot follow them
    // inside the tree.
    let resolved = if root.is_system() {
        PathBuf::from(&path)
    } else {
        resolve_in_root(root, Path::new(&path))
    };
    let kind = classify(root, &resolved);
    InitInfo {
        path: Some(path),
        resolved: Some(resolved.to_string_lossy().into_owned()),
        kind,
    }
}

/// Fallback when /proc/1/exe is unreadable: argv[0] of PID 1, and its comm name.
fn from_cmdline(root: &Root, notes: &mut Vec<String>) -> InitInfo {
    let argv0 = root
        .read_bytes("proc/1/cmdline")
        .ok()
        .and_then(|b| {
            b.split(|&c| c == 0)
                .next()
                .map(|a| String::from_utf8_lossy(a).into_owned())
        })
        .filter(|a| !a.is_empty());
    let comm = root
        .read_string("proc/1/comm")
        .ok()
        .map(|c| c.trim().to_string());
    let Some(argv0) = argv0 else {
        notes.push("proc/1/cmdline is unreadable or empty".into());
        let kind = if comm.as_deref() == Some("systemd") {
            InitKind::Systemd
        } else {
            InitKind::Other
        };
        return InitInfo {
            path: None,
            resolved: None,
            kind,
        };
    };
    let resolved = if argv0.starts_with('/') {
        resolve_in_root(root, Path::new(&argv0))
    } else {
        PathBuf::from(&argv0)
    };
    let kind = if comm.as_deref() == Some("systemd") {
        InitKind::Systemd
    } else {
        classify(root, &resolved)
    };
    InitInfo {
        path: Some(argv0),
        resolved: Some(resolved.to_string_lossy().into_owned()),
        kind,
    }
}

fn classify(root: &Root, exe: &Path) -> InitKind {
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.as_str() {
        "systemd" => InitKind::Systemd,
        "busybox" => InitKind::Busybox,
        "openrc-init" => InitKind::Openrc,
        "init" | "sysvinit" => {
            let dpkg = |p: &str| root.exists(format!("var/lib/dpkg/info/{p}.list"));
            let inittab_only = root.exists("etc/inittab")
                && !dpkg("upstart")
                && !dpkg("systemd-sysv")
                && !root.exists("usr/lib/systemd/systemd")
                && !root.exists("lib/systemd/systemd");
            if dpkg("sysvinit-core") || inittab_only {
                InitKind::Sysvinit
            } else {
                InitKind::Other
            }
        }
        _ => InitKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_join_is_lexical_and_stays_in_root() {
        assert_eq!(
            join_link(Path::new("/sbin/init"), Path::new("../lib/systemd/systemd")),
            Path::new("/lib/systemd/systemd")
        );
        assert_eq!(
            join_link(
                Path::new("/sbin/init"),
                Path::new("../../../../bin/busybox")
            ),
            Path::new("/bin/busybox")
        );
        assert_eq!(
            join_link(Path::new("/sbin/init"), Path::new("/bin/busybox")),
            Path::new("/bin/busybox")
        );
    }

    #[test]
    fn names_classify() {
        let r = Root::new("/nonexistent-root");
        assert_eq!(
            classify(&r, Path::new("/usr/lib/systemd/systemd")),
            InitKind::Systemd
        );
        assert_eq!(classify(&r, Path::new("/bin/busybox")), InitKind::Busybox);
        assert_eq!(
            classify(&r, Path::new("/sbin/openrc-init")),
            InitKind::Openrc
        );
        // An `init` without package markers is not assumed to be sysvinit.
        assert_eq!(classify(&r, Path::new("/sbin/init")), InitKind::Other);
        assert_eq!(classify(&r, Path::new("/sbin/runit")), InitKind::Other);
        assert!(InitKind::Sysvinit.can_take_over());
    }

    #[test]
    fn cmdline_fallback_when_exe_is_unreadable() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sysroots/_pid1-cmdline-only"
        );
        let mut notes = vec![];
        let i = detect(&Root::new(dir), &mut notes);
        assert_eq!(i.kind, InitKind::Systemd);
        assert_eq!(i.path.as_deref(), Some("/sbin/init"));
        assert_eq!(i.resolved.as_deref(), Some("/lib/systemd/systemd"));
        assert!(notes[0].contains("proc/1/cmdline"), "{notes:?}");
        assert!(!InitKind::Busybox.can_take_over());
    }
}
