//! balenaOS versions: parsing, ordering, and choosing one for a `-v/--version` request.
//!
//! A version is `MAJOR.MINOR.PATCH[-PRE][+BUILD]` (semver), where balena puts the revision of a
//! re-built release in the build metadata (`5.1.20+rev1`; a bare `+rev` counts as revision 0)
//! and old releases carry a `.dev`/`.prod` variant, either in the build metadata
//! (`2.50.1+rev1.dev`) or as a fourth component (`2.31.5.prod`).
//!
//! Requests (`-v/--version`, as the reference tool reads them):
//!
//! | request | chooses |
//! |---|---|
//! | `default`, `latest` (or none) | the newest version that is not a pre-release |
//! | `~x`, `~x.y`, `~x.y.z` | newest non-pre-release `>= x.y.z` and `< x.(y+1).0` (`~x`: `< (x+1).0.0`) |
//! | `^x`, `^x.y`, `^x.y.z` | newest non-pre-release `>= x.y.z` and `< (x+1).0.0` (major 0: the leftmost non-zero part is kept, as in semver) |
//! | `x.y.z[-pre][+build]` | exactly that listed version: same numbers, pre-release, build metadata and variant (`5.1.20` does not match `5.1.20+rev1`) |
//!
//! Anything else (`5.1`, `v5.1.20`, `>=5.0`) fails to parse. Pre-releases are only chosen when
//! asked for exactly.
//!
//! **Deliberate difference from the reference tool:** among versions that differ only in their
//! `+revN` revision, the **newest revision wins** (`[5.1.20+rev2, 5.1.20+rev1, 5.1.20]` →
//! `5.1.20+rev2`). The reference ignored build metadata when sorting and so picked the one the
//! API listed last, i.e. the oldest build. Versions equal in everything but the variant keep the
//! API's order (newest first).
//!
//! A request that matches nothing is an error listing up to [`NEAREST`] of the closest listed
//! versions.
#![forbid(unsafe_code)]

use std::cmp::Ordering;
use std::fmt;

use crate::error::{Error, Result};

/// How many nearby versions an unmatched request lists.
pub const NEAREST: usize = 5;

/// One dot-separated pre-release identifier; numeric ones sort below alphanumeric ones.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Num(u64),
    Alpha(String),
}

impl Ord for Ident {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Ident::Num(a), Ident::Num(b)) => a.cmp(b),
            (Ident::Num(_), Ident::Alpha(_)) => Ordering::Less,
            (Ident::Alpha(_), Ident::Num(_)) => Ordering::Greater,
            (Ident::Alpha(a), Ident::Alpha(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Ident {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A parsed balenaOS version. Rendering gives back the text it was parsed from.
#[derive(Debug, Clone)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pre: Vec<Ident>,
    /// Pre-release text without the `-`, empty when none.
    pub pre_text: String,
    /// Build metadata without the `+`, empty when none.
    pub build: String,
    /// `N` of `+revN` (a bare `+rev` is 0).
    pub rev: Option<u64>,
    /// `dev`/`prod` of legacy versions.
    pub variant: Option<String>,
    /// Legacy fourth component (`2.31.5.prod`): kept so the rendering is exact.
    legacy_suffix: bool,
}

impl Version {
    /// Parses `x.y.z[-pre][+build]` or a legacy `x.y.z.dev`/`x.y.z.prod`.
    pub fn parse(text: &str) -> Result<Version> {
        parse_version(text).ok_or_else(|| parse_error(text))
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    /// Ordering by precedence, then revision (variants compare equal).
    pub fn precedence(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
            .then_with(|| self.rev.cmp(&other.rev))
    }

    /// Same version as listed: numbers, pre-release, build metadata and variant all equal.
    pub fn same_as(&self, other: &Version) -> bool {
        (self.major, self.minor, self.patch) == (other.major, other.minor, other.patch)
            && self.pre_text == other.pre_text
            && self.build == other.build
            && self.variant == other.variant
            && self.legacy_suffix == other.legacy_suffix
    }

    fn triple(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if self.legacy_suffix {
            if let Some(v) = &self.variant {
                write!(f, ".{v}")?;
            }
        }
        if !self.pre_text.is_empty() {
            write!(f, "-{}", self.pre_text)?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

fn idents_ok(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

fn parse_version(text: &str) -> Option<Version> {
    let (rest, build) = match text.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (text, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let (nums, legacy) = match parts.len() {
        3 => (&parts[..], None),
        4 if matches!(parts[3], "dev" | "prod") => (&parts[..3], Some(parts[3])),
        _ => return None,
    };
    let major = number(nums[0])?;
    let minor = number(nums[1])?;
    let patch = number(nums[2])?;
    let mut v = Version {
        major,
        minor,
        patch,
        pre: Vec::new(),
        pre_text: String::new(),
        build: String::new(),
        rev: None,
        variant: legacy.map(str::to_string),
        legacy_suffix: legacy.is_some(),
    };
    if let Some(p) = pre {
        if !idents_ok(p) {
            return None;
        }
        v.pre_text = p.to_string();
        v.pre = p
            .split('.')
            .map(|i| match number(i) {
                Some(n) => Ident::Num(n),
                None => Ident::Alpha(i.to_string()),
            })
            .collect();
    }
    if let Some(b) = build {
        if !idents_ok(b) {
            return None;
        }
        v.build = b.to_string();
        for ident in b.split('.') {
            if let Some(n) = ident.strip_prefix("rev") {
                if n.is_empty() {
                    v.rev = Some(0);
                } else if let Some(n) = number(n) {
                    v.rev = Some(n);
                }
            } else if matches!(ident, "dev" | "prod") && v.variant.is_none() {
                v.variant = Some(ident.to_string());
            }
        }
    }
    Some(v)
}

/// A parsed `-v` request.
#[derive(Debug, Clone)]
pub enum Request {
    /// `default`, `latest`, or no `-v`.
    Newest,
    /// `~...`: bounds are `[lower, upper)` on `(major, minor, patch)`.
    Tilde {
        lower: (u64, u64, u64),
        upper: (u64, u64, u64),
    },
    /// `^...`.
    Caret {
        lower: (u64, u64, u64),
        upper: (u64, u64, u64),
    },
    Exact(Version),
}

impl Request {
    pub fn parse(text: &str) -> Result<Request> {
        let t = text.trim();
        if t.is_empty() || t == "default" || t == "latest" {
            return Ok(Request::Newest);
        }
        if let Some(r) = t.strip_prefix('~').or_else(|| t.strip_prefix('^')) {
            let caret = t.starts_with('^');
            let Some((parts, lower)) = partial(r.trim_start()) else {
                return Err(parse_error(text));
            };
            let (x, y, z) = lower;
            let upper = if !caret {
                if parts == 1 {
                    (x + 1, 0, 0)
                } else {
                    (x, y + 1, 0)
                }
            } else if x > 0 || parts == 1 {
                (x + 1, 0, 0)
            } else if y > 0 || parts == 2 {
                (0, y + 1, 0)
            } else {
                (0, 0, z + 1)
            };
            return Ok(if caret {
                Request::Caret { lower, upper }
            } else {
                Request::Tilde { lower, upper }
            });
        }
        Version::parse(t)
            .map(Request::Exact)
            .map_err(|_| parse_error(text))
    }

    fn matches(&self, v: &Version) -> bool {
        match self {
            Request::Newest => !v.is_prerelease(),
            Request::Tilde { lower, upper } | Request::Caret { lower, upper } => {
                !v.is_prerelease() && v.triple() >= *lower && v.triple() < *upper
            }
            Request::Exact(want) => want.same_as(v),
        }
    }

    /// The point nearest versions are measured from.
    fn anchor(&self, newest: Option<&Version>) -> (u64, u64, u64) {
        match self {
            Request::Newest => newest.map(Version::triple).unwrap_or((0, 0, 0)),
            Request::Tilde { lower, .. } | Request::Caret { lower, .. } => *lower,
            Request::Exact(v) => v.triple(),
        }
    }
}

fn parse_error(text: &str) -> Error {
    Error::new(
        "parsing balenaOS version",
        format!("'{text}'"),
        format!("Failed to parse version from '{text}'"),
    )
    .hint(
        "give -v an exact version such as 5.1.20+rev1, a range such as ~5.1 or ^5.1, \
         or 'default' for the newest release",
    )
}

/// `x`, `x.y` or `x.y.z` (pre-release and build metadata of a range are ignored): the number of
/// parts given and the lower bound.
fn partial(s: &str) -> Option<(usize, (u64, u64, u64))> {
    let core = s.split(['-', '+']).next()?;
    let nums: Vec<&str> = core.split('.').collect();
    if nums.is_empty() || nums.len() > 3 {
        return None;
    }
    let mut out = [0u64; 3];
    for (i, n) in nums.iter().enumerate() {
        out[i] = number(n)?;
    }
    if core.len() != s.len() {
        // A pre-release or build suffix is only allowed on a full x.y.z.
        if nums.len() != 3 || parse_version(s).is_none() {
            return None;
        }
    }
    Some((nums.len(), (out[0], out[1], out[2])))
}

/// Parses the API's list (newest first, as `/v6/release` orders it); entries that are not
/// versions are logged and dropped.
pub fn parse_list(listed: &[String]) -> Vec<Version> {
    listed
        .iter()
        .filter_map(|s| match parse_version(s) {
            Some(v) => Some(v),
            None => {
                crate::error!("ignoring release '{s}' listed by the API: not a version");
                None
            }
        })
        .collect()
}

/// Chooses the version `request` names among `listed` (the API's order, newest first).
pub fn resolve(request: &str, listed: &[String]) -> Result<Version> {
    let req = Request::parse(request)?;
    let versions = parse_list(listed);
    let mut best: Option<&Version> = None;
    for v in versions.iter().filter(|v| req.matches(v)) {
        // Strictly greater: among equals the one listed first (newest) stays.
        if best.is_none_or_less(v) {
            best = Some(v);
        }
    }
    if let Some(v) = best {
        return Ok(v.clone());
    }
    let newest = versions
        .iter()
        .filter(|v| !v.is_prerelease())
        .max_by(|a, b| a.precedence(b));
    let near = nearest(&versions, req.anchor(newest), NEAREST);
    let (cause, hint) = if versions.is_empty() {
        (
            format!("No version found for '{request}': the API lists no balenaOS release for this device type"),
            "check the device type (config.json deviceType or --change-dt-to) and that the API endpoint is right".to_string(),
        )
    } else {
        (
            format!(
                "No version found for '{request}'; nearest available: {}",
                near.join(", ")
            ),
            "pass one of the available versions exactly as listed with -v, or -v default for the newest release"
                .to_string(),
        )
    };
    Err(Error::new(
        "choosing the balenaOS version",
        format!("'{request}'"),
        cause,
    )
    .hint(hint))
}

trait BestSoFar {
    fn is_none_or_less(&self, v: &Version) -> bool;
}

impl BestSoFar for Option<&Version> {
    fn is_none_or_less(&self, v: &Version) -> bool {
        match self {
            None => true,
            Some(b) => v.precedence(b) == Ordering::Greater,
        }
    }
}

/// Up to `n` listed versions closest to `anchor` (distance in major, then minor, then patch),
/// non-pre-releases and newer revisions first among equals.
pub fn nearest(versions: &[Version], anchor: (u64, u64, u64), n: usize) -> Vec<String> {
    let mut v: Vec<&Version> = versions.iter().collect();
    v.sort_by(|a, b| {
        let da = (
            a.major.abs_diff(anchor.0),
            a.minor.abs_diff(anchor.1),
            a.patch.abs_diff(anchor.2),
        );
        let db = (
            b.major.abs_diff(anchor.0),
            b.minor.abs_diff(anchor.1),
            b.patch.abs_diff(anchor.2),
        );
        da.cmp(&db).then_with(|| b.precedence(a))
    });
    v.into_iter().take(n).map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    const REF: &[&str] = &[
        "5.1.20+rev1",
        "3.2.25",
        "3.3.0",
        "4.0.26+rev",
        "5.0.1+rev1",
        "0.0.0+rev60",
    ];

    #[test]
    fn parse_and_render_round_trip() {
        for s in [
            "5.1.20",
            "5.1.20+rev1",
            "4.0.26+rev",
            "6.0.1-rc1",
            "6.0.1-rc.1+rev2",
            "2.50.1+rev1.dev",
            "2.31.5.prod",
            "2.31.5.dev+rev3",
            "0.0.0+rev60",
        ] {
            assert_eq!(Version::parse(s).unwrap().to_string(), s);
        }
        let v = Version::parse("2.50.1+rev1.dev").unwrap();
        assert_eq!((v.rev, v.variant.as_deref()), (Some(1), Some("dev")));
        assert_eq!(Version::parse("4.0.26+rev").unwrap().rev, Some(0));
        assert_eq!(
            Version::parse("2.31.5.prod").unwrap().variant.as_deref(),
            Some("prod")
        );
        for bad in [
            "5.1",
            "v5.1.20",
            ">=5.0",
            "",
            "5.1.20.",
            "5.1.x",
            "5.1.20+",
            "5.1.20-",
            "05.1.2",
            "5.1.20+a..b",
            "5.1.20.beta",
            " 5.1.20",
        ] {
            let e = Version::parse(bad).unwrap_err();
            assert!(
                e.to_string().contains("Failed to parse version"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn ordering_precedence_then_revision() {
        let o = |a: &str, b: &str| {
            Version::parse(a)
                .unwrap()
                .precedence(&Version::parse(b).unwrap())
        };
        assert_eq!(o("5.1.20", "5.1.19"), Ordering::Greater);
        assert_eq!(o("5.1.20-rc1", "5.1.20"), Ordering::Less);
        assert_eq!(o("5.1.20-rc.2", "5.1.20-rc.10"), Ordering::Less);
        assert_eq!(o("5.1.20-1", "5.1.20-alpha"), Ordering::Less);
        assert_eq!(o("5.1.20+rev2", "5.1.20+rev1"), Ordering::Greater);
        assert_eq!(o("5.1.20+rev", "5.1.20"), Ordering::Greater);
        assert_eq!(o("5.1.20+rev1", "5.1.20+rev10"), Ordering::Less);
        assert_eq!(o("2.50.1+rev1.dev", "2.50.1+rev1.prod"), Ordering::Equal);
        assert_eq!(o("10.0.0", "9.99.99"), Ordering::Greater);
    }

    /// The reference tool's version-selection cases, plus the documented revision rule.
    #[test]
    fn reference_vectors() {
        let table: &[(&[&str], &str, Result<&str, &str>)] = &[
            (REF, "default", Ok("5.1.20+rev1")),
            (REF, "", Ok("5.1.20+rev1")),
            (REF, "latest", Ok("5.1.20+rev1")),
            (REF, "4.0.26+rev", Ok("4.0.26+rev")),
            (REF, "^3.2", Ok("3.3.0")),
            (REF, "~3.2.8", Ok("3.2.25")),
            (REF, "5.1.20", Err("No version found")),
            (REF, "5.1", Err("Failed to parse version")),
            (REF, ">=5.0", Err("Failed to parse version")),
            (REF, "v5.1.20", Err("Failed to parse version")),
            (&["6.0.1-rc1", "5.1.20+rev1"], "default", Ok("5.1.20+rev1")),
            // Improvement over the reference (which picks 5.1.20): newest revision wins.
            (
                &["5.1.20+rev2", "5.1.20+rev1", "5.1.20"],
                "default",
                Ok("5.1.20+rev2"),
            ),
            (
                &["5.1.20", "5.1.20+rev1", "5.1.20+rev2"],
                "default",
                Ok("5.1.20+rev2"),
            ),
        ];
        for (l, req, want) in table {
            let got = resolve(req, &list(l));
            match (want, got) {
                (Ok(w), Ok(v)) => assert_eq!(v.to_string(), *w, "{req} in {l:?}"),
                (Err(w), Err(e)) => assert!(e.to_string().contains(w), "{req}: {e}"),
                (w, g) => panic!("{req} in {l:?}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn ranges() {
        let l = list(&[
            "6.1.0-rc1",
            "6.0.3+rev1",
            "6.0.3",
            "5.3.1",
            "5.2.9+rev4",
            "5.2.0",
            "5.1.20+rev1",
            "0.3.4",
            "0.3.1",
            "0.0.7",
            "0.0.5",
        ]);
        let table = [
            ("~5", "5.3.1"),
            ("^5", "5.3.1"),
            ("~5.2", "5.2.9+rev4"),
            ("^5.2", "5.3.1"),
            ("~5.2.1", "5.2.9+rev4"),
            ("^5.2.1", "5.3.1"),
            ("~ 5.1", "5.1.20+rev1"),
            ("^6", "6.0.3+rev1"),
            ("~6.1", "NONE"),
            ("^0.3", "0.3.4"),
            ("^0.3.2", "0.3.4"),
            ("^0.0.5", "0.0.5"),
            ("^0.0", "0.0.7"),
            ("^0", "0.3.4"),
            ("~5.2.0+rev1", "5.2.9+rev4"),
            ("6.1.0-rc1", "6.1.0-rc1"),
            ("^6.1.0-rc1", "NONE"),
        ];
        for (req, want) in table {
            match resolve(req, &l) {
                Ok(v) => assert_eq!(v.to_string(), want, "{req}"),
                Err(e) => assert_eq!(want, "NONE", "{req}: {e}"),
            }
        }
        for bad in ["~", "^x", "~5.1.2.3", "^5.1-rc1", "~5.1.2+"] {
            let e = resolve(bad, &l).unwrap_err().to_string();
            assert!(e.contains("Failed to parse version"), "{bad}: {e}");
        }
    }

    #[test]
    fn exact_needs_identical_build_and_variant() {
        let l = list(&["2.50.1+rev1.dev", "2.50.1+rev1.prod", "2.31.5.prod"]);
        assert_eq!(
            resolve("2.50.1+rev1.dev", &l).unwrap().to_string(),
            "2.50.1+rev1.dev"
        );
        assert!(resolve("2.50.1+rev1", &l).is_err());
        assert_eq!(
            resolve("2.31.5.prod", &l).unwrap().to_string(),
            "2.31.5.prod"
        );
        assert!(resolve("2.31.5", &l).is_err());
        // Equal but for the variant: the API's first (newest) stays.
        assert_eq!(
            resolve("default", &l).unwrap().to_string(),
            "2.50.1+rev1.dev"
        );
    }

    #[test]
    fn unmatched_lists_nearest_and_invalid_entries_are_dropped() {
        let l = list(&[
            "not-a-version",
            "5.1.20+rev1",
            "5.1.21",
            "5.0.1",
            "4.0.0",
            "3.0.0",
            "2.0.0",
            "1.0.0",
        ]);
        let e = resolve("5.1.20", &l).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("No version found for '5.1.20'; nearest available: 5.1.20+rev1, 5.1.21, 5.0.1, 4.0.0, 3.0.0"),
            "{s}"
        );
        assert!(!s.contains("2.0.0") && s.contains("hint:"), "{s}");
        let e = resolve("default", &list(&["6.0.0-rc1"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nearest available: 6.0.0-rc1"), "{e}");
        let e = resolve("default", &[]).unwrap_err().to_string();
        assert!(e.contains("lists no balenaOS release"), "{e}");
    }
}
