//! The one error type of takeover.
//!
//! Every error names the step that failed (`step`, present tense, e.g. "reading config.json"),
//! the object it was working on (a path, device or URL), the cause, and where possible a hint:
//! what the operator can do about it. Rendered as
//!
//! ```text
//! reading config.json /home/pi/config.json: No such file or directory (os error 2)
//!   hint: pass the path of the config.json downloaded from the dashboard with -c
//! ```
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::Path;

/// How the process should end when this error reaches `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A check or step failed: exit status 1.
    Failed,
    /// The command line was wrong: exit status 2.
    Usage,
    /// A feature that is not built yet: exit status 1.
    NotImplemented,
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    /// What was being done, e.g. "opening image".
    pub step: String,
    /// What it was done to: a path, device, URL or option name. May be empty.
    pub object: String,
    /// Why it failed.
    pub cause: String,
    /// What the operator can do about it.
    pub hint: Option<String>,
    /// The OS error behind it, when there is one (kept for errno checks such as EBUSY).
    pub io: Option<io::ErrorKind>,
    pub errno: Option<i32>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failed step: exit status 1.
    pub fn new(
        step: impl Into<String>,
        object: impl fmt::Display,
        cause: impl Into<String>,
    ) -> Self {
        Error {
            kind: Kind::Failed,
            step: step.into(),
            object: object.to_string(),
            cause: cause.into(),
            hint: None,
            io: None,
            errno: None,
        }
    }

    /// A failed step caused by an OS error.
    pub fn io(step: impl Into<String>, object: impl fmt::Display, err: io::Error) -> Self {
        let mut e = Error::new(step, object, err.to_string());
        e.io = Some(err.kind());
        e.errno = err.raw_os_error();
        e.hint = generic_io_hint(&err).map(str::to_string);
        e
    }

    /// A command-line error: exit status 2. `option` names the option at fault.
    pub fn usage(option: impl fmt::Display, cause: impl Into<String>) -> Self {
        let mut e = Error::new("parsing the command line", option, cause);
        e.kind = Kind::Usage;
        e.hint = Some("run 'takeover --help' for the list of options".into());
        e
    }

    /// A feature that a later release provides.
    pub fn not_implemented(option: impl fmt::Display, what: &str) -> Self {
        let mut e = Error::new(
            "checking options",
            option,
            format!("{what} is not implemented yet"),
        );
        e.kind = Kind::NotImplemented;
        e.hint = Some("run without this option, or use a newer takeover".into());
        e
    }

    /// Adds what the operator can do.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Exit status for `main`: 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::Usage => 2,
            Kind::Failed | Kind::NotImplemented => 1,
        }
    }

    /// The message without the hint line, for reports.
    pub fn message(&self) -> String {
        let mut s = self.step.clone();
        if !self.object.is_empty() {
            s.push(' ');
            s.push_str(&self.object);
        }
        s.push_str(": ");
        s.push_str(&self.cause);
        s
    }

    /// True when the underlying OS error is `errno`.
    pub fn is_errno(&self, errno: i32) -> bool {
        self.errno == Some(errno)
    }
}

/// A default hint for common OS errors, so that even a bare I/O error tells the operator what
/// to do; callers with a better hint replace it with [`Error::hint`].
fn generic_io_hint(err: &io::Error) -> Option<&'static str> {
    match err.raw_os_error() {
        Some(libc::ENOENT) => Some("check the path: it does not exist"),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
            Some("free some space there, or choose another place (-w for the work directory)")
        }
        Some(libc::EROFS) => Some("that filesystem is read-only: choose a writable place"),
        Some(libc::EACCES) | Some(libc::EPERM) => {
            Some("run takeover as root (sudo), or fix the permissions")
        }
        Some(libc::EISDIR) => Some("name a file, not a directory"),
        _ => None,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Adds step and object to an `io::Result`, at the call site.
pub trait Context<T> {
    /// `file.read(..).ctx("reading", path)?`
    fn ctx(self, step: &str, object: impl fmt::Display) -> Result<T>;
    /// Same, for a path.
    fn ctx_path(self, step: &str, path: &Path) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, step: &str, object: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::io(step, object, e))
    }
    fn ctx_path(self, step: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(step, path.display(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_step_object_cause_and_hint() {
        let e = Error::io(
            "reading config.json",
            "/tmp/c.json",
            io::Error::from_raw_os_error(libc::ENOENT),
        )
        .hint("pass -c with the config.json from the dashboard");
        let s = e.to_string();
        assert!(
            s.starts_with("reading config.json /tmp/c.json: No such file or directory"),
            "{s}"
        );
        assert!(
            s.ends_with("\n  hint: pass -c with the config.json from the dashboard"),
            "{s}"
        );
        assert!(e.is_errno(libc::ENOENT));
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn usage_exits_2() {
        let e = Error::usage(
            "--log-level",
            "'loud' is not one of error, warn, info, debug, trace",
        );
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--log-level"));
    }
}
