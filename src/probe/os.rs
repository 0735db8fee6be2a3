//! The running OS: `/etc/os-release` (fallback `/usr/lib/os-release`) and the support table.
//!
//! os-release values may be double-quoted (with `\"`, `\\`, `` \` ``, `\$` escapes),
//! single-quoted (literal) or bare; comments and blank lines are ignored.
//!
//! Support is decided by family (`ID`) and version range (`VERSION_ID`), so point releases pass
//! ("Ubuntu 20.04.6 LTS" has `VERSION_ID="20.04"`):
//!
//! | `ID` | supported | why this range |
//! |---|---|---|
//! | `raspbian` (Raspbian, Raspberry Pi OS 32-bit) | ≥ 8 (jessie) | the reference tool accepted Raspbian 8 and 9; 10 (buster) is the oldest the testbed still runs |
//! | `debian` (Debian, Raspberry Pi OS 64-bit) | ≥ 10, and 7 (wheezy) and 9 (stretch) | current releases; 7 and 9 were on the reference tool's BeagleBone list |
//! | `ubuntu` | LTS releases ≥ 14.04 (`YY.04`, even `YY`) | the reference tool accepted 14.04 to 20.04; interim releases are out of support within months |
//! | `manjaro` (Manjaro, rolling: no `VERSION_ID`) | any | on the reference tool's x86 list |
//! | `balena-os`, `resin-os` (balenaOS) | ≥ 2.0 | balenaOS → balenaOS reflash (config.json from /mnt/boot) |
//!
//! Policy: every release the reference tool accepted (its exact `PRETTY_NAME` list: Raspbian 8,
//! 9, 10, Ubuntu 14.04.x to 20.04 LTS, Debian 7 and 9, Manjaro) stays accepted, in addition to
//! the current releases above; releases older than 10 are marked "(legacy)" in the verdict, as
//! they lack the kernels of the newest boards and the testbed no longer runs them.
//!
//! Per-board rule (from the reference): Jetson boards migrate only from balenaOS, because the
//! boot firmware of an L4T Ubuntu install is not the one balenaOS expects.
//! Anything else (other IDs, Debian testing without `VERSION_ID`, Ubuntu interim releases) is
//! "not supported": the check fails, or warns with `--no-os-check`.
#![forbid(unsafe_code)]

use super::device::{Board, Family};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: Option<String>,
    pub id_like: Vec<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub version_id: Option<String>,
    pub version_codename: Option<String>,
    pub pretty_name: Option<String>,
    /// Which file it came from (`/etc/os-release` or `/usr/lib/os-release`).
    pub source: String,
}

/// Unquotes one os-release value.
fn unquote(raw: &str) -> String {
    let raw = raw.trim();
    let mut out = String::with_capacity(raw.len());
    if let Some(inner) = raw.strip_prefix('\'') {
        return inner.strip_suffix('\'').unwrap_or(inner).to_string();
    }
    let (inner, quoted) = match raw.strip_prefix('"') {
        Some(i) => (i.strip_suffix('"').unwrap_or(i), true),
        None => (raw, false),
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('"' | '\\' | '`' | '$' | '\'')) => out.push(n),
                Some(n) if !quoted => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses os-release text. Never fails: unknown keys and malformed lines are ignored.
pub fn parse(text: &str, source: &str) -> OsRelease {
    let mut os = OsRelease {
        source: source.to_string(),
        ..Default::default()
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value);
        let opt = if value.is_empty() { None } else { Some(value) };
        match key.trim() {
            "ID" => os.id = opt.map(|v| v.to_ascii_lowercase()),
            "ID_LIKE" => {
                os.id_like = opt
                    .map(|v| v.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default()
            }
            "NAME" => os.name = opt,
            "VERSION" => os.version = opt,
            "VERSION_ID" => os.version_id = opt,
            "VERSION_CODENAME" => os.version_codename = opt,
            "PRETTY_NAME" => os.pretty_name = opt,
            _ => {}
        }
    }
    os
}

impl OsRelease {
    /// balenaOS (or its former name resinOS).
    pub fn is_balena_os(&self) -> bool {
        matches!(self.id.as_deref(), Some("balena-os" | "resin-os"))
            || self
                .pretty_name
                .as_deref()
                .is_some_and(|p| p.starts_with("balenaOS") || p.starts_with("resinOS"))
    }

    /// PRETTY_NAME, else NAME VERSION, else ID.
    pub fn display(&self) -> String {
        if let Some(p) = &self.pretty_name {
            return p.clone();
        }
        match (&self.name, &self.version) {
            (Some(n), Some(v)) => format!("{n} {v}"),
            (Some(n), None) => n.clone(),
            _ => self.id.clone().unwrap_or_else(|| "unknown OS".into()),
        }
    }
}

/// One row of the OS support table.
#[derive(Debug)]
pub struct OsRule {
    pub id: &'static str,
    pub label: &'static str,
    /// Lowest supported (major, minor).
    pub min: (u32, u32),
    /// Only `YY.04` releases with even `YY` (Ubuntu LTS).
    pub lts_only: bool,
}

pub static OS_TABLE: &[OsRule] = &[
    OsRule {
        id: "raspbian",
        label: "Raspbian / Raspberry Pi OS 8 (jessie) or later",
        min: (8, 0),
        lts_only: false,
    },
    OsRule {
        id: "debian",
        label: "Debian 10 (buster) or later, or Debian 7 or 9",
        min: (10, 0),
        lts_only: false,
    },
    OsRule {
        id: "ubuntu",
        label: "Ubuntu LTS 14.04 or later",
        min: (14, 4),
        lts_only: true,
    },
    OsRule {
        id: "manjaro",
        label: "Manjaro Linux",
        min: (0, 0),
        lts_only: false,
    },
    OsRule {
        id: "balena-os",
        label: "balenaOS 2.0 or later",
        min: (2, 0),
        lts_only: false,
    },
    OsRule {
        id: "resin-os",
        label: "balenaOS (resinOS) 2.0 or later",
        min: (2, 0),
        lts_only: false,
    },
];

/// "20.04" → (20, 4); "12" → (12, 0); "5.1.20+rev1" → (5, 1). None when it does not start
/// with a number.
pub fn major_minor(v: &str) -> Option<(u32, u32)> {
    let v = v.trim().trim_start_matches('v');
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsVerdict {
    pub supported: bool,
    /// Why (shown in the check detail).
    pub reason: String,
}

/// Decides whether migrating from `os` on `board` is supported (table in the module docs).
pub fn support(os: &OsRelease, board: Option<&Board>) -> OsVerdict {
    let name = os.display();
    let no = |reason: String| OsVerdict {
        supported: false,
        reason,
    };
    let supported_list = || {
        OS_TABLE
            .iter()
            .map(|r| r.label)
            .filter(|l| !l.contains("resinOS"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if board.is_some_and(|b| b.family == Family::Jetson) && !os.is_balena_os() {
        return no(format!(
            "'{name}' on a Jetson board: takeover migrates Jetson boards only from balenaOS, \
             because their boot firmware must match the one balenaOS installs"
        ));
    }
    let Some(id) = os.id.as_deref() else {
        return no(format!("'{name}': os-release ({}) has no ID", os.source));
    };
    let id = if os.is_balena_os() { "balena-os" } else { id };
    let Some(rule) = OS_TABLE.iter().find(|r| r.id == id) else {
        let like = if os.id_like.is_empty() {
            String::new()
        } else {
            format!(" (derived from {})", os.id_like.join(", "))
        };
        return no(format!(
            "'{name}'{like} is not a tested OS family; supported: {}",
            supported_list()
        ));
    };
    let version = os
        .version_id
        .as_deref()
        .or(if id == "balena-os" {
            os.version.as_deref()
        } else {
            None
        })
        .or(if id == "balena-os" {
            os.pretty_name.as_deref().and_then(|p| p.split(' ').nth(1))
        } else {
            None
        });
    if id == "manjaro" {
        return OsVerdict {
            supported: true,
            reason: format!("'{name}' is supported ({}, rolling release)", rule.label),
        };
    }
    let Some(ver) = version.and_then(major_minor) else {
        return no(format!(
            "'{name}' has no release number (VERSION_ID): testing and unstable releases are not \
             supported; supported: {}",
            rule.label
        ));
    };
    // Debian 7 and 9 were on the reference tool's list (BeagleBone).
    let legacy_debian = id == "debian" && matches!(ver.0, 7 | 9);
    if ver < rule.min && !legacy_debian {
        return no(format!("'{name}' is too old; supported: {}", rule.label));
    }
    if rule.lts_only && !(ver.1 == 4 && ver.0 % 2 == 0) {
        return no(format!(
            "'{name}' is not an LTS release; supported: {}",
            rule.label
        ));
    }
    let legacy = if ver.0 < 10 || (id == "ubuntu" && ver < (18, 4)) {
        " (legacy: accepted as the reference tool did; not tested on current boards)"
    } else {
        ""
    };
    OsVerdict {
        supported: true,
        reason: format!("'{name}' is supported ({}){legacy}", rule.label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::device::by_id;

    #[test]
    fn parses_quoted_unquoted_and_escaped_values() {
        let text =
            "# comment\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME='Debian GNU/Linux'\n\
                    VERSION_ID=12\nID=debian\nID_LIKE=\"ubuntu  debian\"\nBAD LINE\n\
                    VERSION=\"say \\\"hi\\\" \\$x\"\nVERSION_CODENAME=bookworm\n";
        let os = parse(text, "/etc/os-release");
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(os.name.as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.id.as_deref(), Some("debian"));
        assert_eq!(os.id_like, vec!["ubuntu", "debian"]);
        assert_eq!(os.version.as_deref(), Some("say \"hi\" $x"));
        assert_eq!(os.version_codename.as_deref(), Some("bookworm"));
        assert_eq!(os.source, "/etc/os-release");
    }

    fn os(id: &str, version_id: Option<&str>, pretty: &str) -> OsRelease {
        OsRelease {
            id: Some(id.into()),
            version_id: version_id.map(str::to_string),
            pretty_name: Some(pretty.into()),
            ..Default::default()
        }
    }

    #[test]
    fn support_by_family_and_version() {
        let pi4 = by_id("rpi4");
        for (o, ok) in [
            (
                os("raspbian", Some("10"), "Raspbian GNU/Linux 10 (buster)"),
                true,
            ),
            (
                os("raspbian", Some("9"), "Raspbian GNU/Linux 9 (stretch)"),
                true,
            ),
            (
                os("raspbian", Some("8"), "Raspbian GNU/Linux 8 (jessie)"),
                true,
            ),
            (
                os("raspbian", Some("7"), "Raspbian GNU/Linux 7 (wheezy)"),
                false,
            ),
            (
                os("debian", Some("9"), "Debian GNU/Linux 9 (stretch)"),
                true,
            ),
            (os("debian", Some("7"), "Debian GNU/Linux 7 (wheezy)"), true),
            (
                os("debian", Some("8"), "Debian GNU/Linux 8 (jessie)"),
                false,
            ),
            (os("ubuntu", Some("14.04"), "Ubuntu 14.04.6 LTS"), true),
            (os("ubuntu", Some("14.04"), "Ubuntu 14.04.1 LTS"), true),
            (os("ubuntu", Some("16.04"), "Ubuntu 16.04.2 LTS"), true),
            (os("ubuntu", Some("12.04"), "Ubuntu 12.04.5 LTS"), false),
            (os("manjaro", None, "Manjaro Linux"), true),
            (
                os("debian", Some("12"), "Debian GNU/Linux 12 (bookworm)"),
                true,
            ),
            (os("debian", None, "Debian GNU/Linux trixie/sid"), false),
            (os("ubuntu", Some("20.04"), "Ubuntu 20.04.6 LTS"), true),
            (os("ubuntu", Some("24.04"), "Ubuntu 24.04.1 LTS"), true),
            (os("ubuntu", Some("18.04"), "Ubuntu 18.04.6 LTS"), true),
            (os("ubuntu", Some("16.04"), "Ubuntu 16.04.7 LTS"), true),
            (os("ubuntu", Some("23.10"), "Ubuntu 23.10"), false),
            (os("fedora", Some("39"), "Fedora Linux 39"), false),
            (
                os("balena-os", Some("5.1.20"), "balenaOS 5.1.20+rev1"),
                true,
            ),
        ] {
            let v = support(&o, pi4);
            assert_eq!(v.supported, ok, "{o:?}: {}", v.reason);
        }
        let nx = by_id("jetson-xavier-nx");
        assert!(!support(&os("ubuntu", Some("20.04"), "Ubuntu 20.04.6 LTS"), nx).supported);
        let b = os("balena-os", None, "balenaOS 2.88.4");
        assert!(support(&b, nx).supported);
        assert!(b.is_balena_os());
        let mut none = OsRelease::default();
        assert!(!support(&none, pi4).supported);
        none.name = Some("X".into());
        assert_eq!(none.display(), "X");
    }

    /// Every release on the reference tool's allow-list (exact PRETTY_NAMEs) stays accepted.
    #[test]
    fn reference_allow_list_stays_accepted() {
        let pi4 = by_id("rpi4");
        for (id, v, pretty) in [
            ("raspbian", Some("8"), "Raspbian GNU/Linux 8 (jessie)"),
            ("raspbian", Some("9"), "Raspbian GNU/Linux 9 (stretch)"),
            ("raspbian", Some("10"), "Raspbian GNU/Linux 10 (buster)"),
            ("ubuntu", Some("20.04"), "Ubuntu 20.04 LTS"),
            ("ubuntu", Some("18.04"), "Ubuntu 18.04.2 LTS"),
            ("ubuntu", Some("18.04"), "Ubuntu 18.04.3 LTS"),
            ("ubuntu", Some("18.04"), "Ubuntu 18.04.4 LTS"),
            ("ubuntu", Some("16.04"), "Ubuntu 16.04.2 LTS"),
            ("ubuntu", Some("16.04"), "Ubuntu 16.04.6 LTS"),
            ("ubuntu", Some("14.04"), "Ubuntu 14.04.1 LTS"),
            ("ubuntu", Some("14.04"), "Ubuntu 14.04.2 LTS"),
            ("ubuntu", Some("14.04"), "Ubuntu 14.04.5 LTS"),
            ("ubuntu", Some("14.04"), "Ubuntu 14.04.6 LTS"),
            ("debian", Some("9"), "Debian GNU/Linux 9 (stretch)"),
            ("debian", Some("7"), "Debian GNU/Linux 7 (wheezy)"),
            ("manjaro", None, "Manjaro Linux"),
            ("balena-os", Some("4.0.23"), "balenaOS 4.0.23"),
        ] {
            let v = support(&os(id, v, pretty), pi4);
            assert!(v.supported, "{pretty}: {}", v.reason);
        }
    }

    #[test]
    fn versions() {
        assert_eq!(major_minor("20.04"), Some((20, 4)));
        assert_eq!(major_minor("12"), Some((12, 0)));
        assert_eq!(major_minor("5.1.20+rev1"), Some((5, 1)));
        assert_eq!(major_minor("sid"), None);
    }
}
