//! The backup configuration (`--backup-cfg FILE`, YAML):
//!
//! ```yaml
//! - volume: app-data          # a volume of the fleet's docker-compose.yml
//!   items:
//!   - source: /var/lib/app    # a directory (walked) or a single file
//!     target: data            # optional: where inside the volume (dir) / new name (file)
//!     filter: '\.db$'         # optional: regex on the absolute source path of each file
//! ```
//!
//! The YAML is parsed by serde_yaml into a [`serde_yaml::Value`] (its errors name line and
//! column) and converted by hand into [`BackupConfig`] so that every message names the volume and item at fault (1-based index and name), and so
//! that unknown keys are refused by name (the reference silently ignored them, which turns a
//! typo such as `filtr:` into "back up everything").
//!
//! Volume names: the supervisor restores each top-level directory of `backup.tgz` into the
//! Docker volume `<appId>_<name>` (§8.5) and fails the whole restore — retrying forever — when a
//! directory does not match a declared volume. Docker (balena-engine) accepts local volume names
//! made of `[a-zA-Z0-9_.-]` only, so a name with any other character (the README example
//! `"test volume 1"` has spaces) can never match and is refused here, before anything changes.
//! The rule: 1 to 200 bytes (so `<appId>_<name>` stays within NAME_MAX 255), only ASCII letters,
//! digits, `_`, `.` and `-`, and not `.` or `..`.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Component, Path, PathBuf};

use regex_lite::Regex;
use serde_yaml::Value;

use crate::error::{Error, Result};

/// Largest configuration file read.
const MAX_CONFIG: u64 = 1024 * 1024;
/// Longest volume name accepted (see module docs).
pub const MAX_VOLUME_NAME: usize = 200;

#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub struct Item {
    /// As written in the configuration (resolved against the current directory when relative).
    pub source: PathBuf,
    /// Relative path inside the volume, normalised (no `.` components); `None` = volume root.
    pub target: Option<PathBuf>,
    pub filter: Option<Filter>,
}

/// A compiled `filter` with its text (for messages).
#[derive(Debug, Clone)]
pub struct Filter {
    pub text: String,
    pub regex: Regex,
}

impl Filter {
    /// Reference semantics: unanchored search in the full absolute source path (a path that
    /// is not UTF-8 is matched in its lossy form, U+FFFD for each invalid byte).
    pub fn matches(&self, abs_path: &Path) -> bool {
        self.regex.is_match(&abs_path.to_string_lossy())
    }
}

/// Names a volume or an item in messages: `volume 2 "data"`, `volume 2 "data", item 1`.
#[derive(Debug, Clone)]
pub struct Place {
    pub volume: usize,
    pub name: Option<String>,
    pub item: Option<usize>,
    pub source: Option<String>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "volume {}", self.volume + 1)?;
        if let Some(n) = &self.name {
            write!(f, " {n:?}")?;
        }
        if let Some(i) = self.item {
            write!(f, ", item {}", i + 1)?;
            if let Some(s) = &self.source {
                write!(f, " (source {s:?})")?;
            }
        }
        Ok(())
    }
}

impl Place {
    pub fn volume(v: usize, name: Option<&str>) -> Place {
        Place {
            volume: v,
            name: name.map(str::to_string),
            item: None,
            source: None,
        }
    }

    pub fn item(&self, i: usize, source: Option<&str>) -> Place {
        Place {
            item: Some(i),
            source: source.map(str::to_string),
            ..self.clone()
        }
    }
}

const STEP: &str = "reading backup configuration";

fn cfg_err(origin: &str, what: impl fmt::Display) -> Error {
    Error::new(STEP, origin, what.to_string()).hint(
        "fix the file given with --backup-cfg (format: a list of `- volume: NAME` entries, each \
         with `items:`, a list of `- source: PATH` with optional `target:` and `filter:`)",
    )
}

/// Reads, parses and validates the configuration, and checks that every source exists.
pub fn load(path: &Path) -> Result<BackupConfig> {
    let raw = crate::files::read_limited(path, MAX_CONFIG, "backup configuration")?;
    let origin = path.display().to_string();
    let text = String::from_utf8(raw).map_err(|_| cfg_err(&origin, "the file is not UTF-8"))?;
    let cfg = parse(&text, &origin)?;
    check_sources(&cfg, &origin)?;
    Ok(cfg)
}

/// Every source must exist (a dangling symlink given as a source counts as missing).
pub fn check_sources(cfg: &BackupConfig, origin: &str) -> Result<()> {
    for (v, vol) in cfg.volumes.iter().enumerate() {
        let place = Place::volume(v, Some(&vol.name));
        for (i, item) in vol.items.iter().enumerate() {
            if let Err(e) = std::fs::metadata(&item.source) {
                let at = place.item(i, Some(&item.source.to_string_lossy()));
                return Err(Error::new(
                    STEP,
                    origin,
                    format!("{at}: source {} cannot be read: {e}", item.source.display()),
                )
                .hint("correct the source path, or remove the item"));
            }
        }
    }
    Ok(())
}

/// Checks a volume name against the rule in the module docs; returns why it is refused.
pub fn volume_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the volume name is empty".into());
    }
    if name == "." || name == ".." {
        return Some(format!("{name:?} is not a usable volume name"));
    }
    if name.len() > MAX_VOLUME_NAME {
        return Some(format!(
            "the volume name is {} bytes long (at most {MAX_VOLUME_NAME})",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Some(format!(
            "the volume name contains {c:?}; balena volume names may only contain letters, \
             digits, '_', '.' and '-'"
        ));
    }
    None
}

/// Normalises a `target`: relative, no `..`, no NUL; `.` components dropped.
fn normalise_target(t: &str) -> std::result::Result<Option<PathBuf>, String> {
    if t.contains('\0') {
        return Err("target contains a NUL byte".into());
    }
    let p = Path::new(t);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "target {t:?} is absolute; it must be a path inside the volume"
                ))
            }
            Component::ParentDir => {
                return Err(format!(
                    "target {t:?} contains '..'; it must stay inside the volume"
                ))
            }
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Parses and validates the YAML text (no file system access). `origin` names the file.
pub fn parse(text: &str, origin: &str) -> Result<BackupConfig> {
    let root: Value =
        serde_yaml::from_str(text).map_err(|e| cfg_err(origin, format!("not valid YAML: {e}")))?;
    let list = match &root {
        Value::Null => {
            return Err(cfg_err(
                origin,
                "the backup configuration is empty: nothing to back up",
            ))
        }
        Value::Sequence(s) => s,
        other => {
            return Err(cfg_err(
                origin,
                format!(
                    "the top level must be a list of volumes, found {}",
                    kind_of(other)
                ),
            ))
        }
    };
    if list.is_empty() {
        return Err(cfg_err(
            origin,
            "the backup configuration is empty: nothing to back up",
        ));
    }
    let mut volumes: Vec<Volume> = Vec::new();
    for (v, entry) in list.iter().enumerate() {
        let map = entry.as_mapping().ok_or_else(|| {
            cfg_err(
                origin,
                format!(
                    "{}: must be a mapping with `volume` and `items`, found {}",
                    Place::volume(v, None),
                    kind_of(entry)
                ),
            )
        })?;
        let name = map.get("volume").and_then(scalar);
        let place = Place::volume(v, name.as_deref());
        for (key, _) in map {
            match key.as_str() {
                Some("volume" | "items") => {}
                Some(k) => {
                    return Err(cfg_err(
                        origin,
                        format!("{place}: unknown key {k:?} (allowed: volume, items)"),
                    ))
                }
                None => {
                    return Err(cfg_err(
                        origin,
                        format!("{place}: a key is {}, not a name", kind_of(key)),
                    ))
                }
            }
        }
        let name = match (name, map.get("volume")) {
            (Some(n), _) => n,
            (None, None) => return Err(cfg_err(origin, format!("{place}: `volume` is missing"))),
            (None, Some(other)) => {
                return Err(cfg_err(
                    origin,
                    format!("{place}: `volume` must be a name, found {}", kind_of(other)),
                ))
            }
        };
        if let Some(why) = volume_name_problem(&name) {
            return Err(cfg_err(origin, format!("{place}: {why}")).hint(
                "use the name of a volume declared in the fleet's docker-compose.yml \
                 (letters, digits, '_', '.', '-')",
            ));
        }
        if let Some(first) = volumes.iter().position(|x| x.name == name) {
            return Err(cfg_err(
                origin,
                format!(
                    "{place}: duplicate volume name (also volume {}); put all items of a \
                     volume under one entry",
                    first + 1
                ),
            ));
        }
        let items = match map.get("items") {
            None | Some(Value::Null) => {
                return Err(cfg_err(origin, format!("{place}: `items` is missing")))
            }
            Some(Value::Sequence(s)) if s.is_empty() => {
                return Err(cfg_err(origin, format!("{place}: `items` is empty")))
            }
            Some(Value::Sequence(s)) => s,
            Some(other) => {
                return Err(cfg_err(
                    origin,
                    format!("{place}: `items` must be a list, found {}", kind_of(other)),
                ))
            }
        };
        let mut out = Vec::new();
        for (i, it) in items.iter().enumerate() {
            out.push(parse_item(it, &place, i, origin)?);
        }
        volumes.push(Volume { name, items: out });
    }
    Ok(BackupConfig { volumes })
}

fn parse_item(it: &Value, place: &Place, i: usize, origin: &str) -> Result<Item> {
    let map = it.as_mapping().ok_or_else(|| {
        cfg_err(
            origin,
            format!(
                "{}: must be a mapping with `source`, found {}",
                place.item(i, None),
                kind_of(it)
            ),
        )
    })?;
    let source = map.get("source").and_then(scalar);
    let at = place.item(i, source.as_deref());
    for (key, _) in map {
        match key.as_str() {
            Some("source" | "target" | "filter") => {}
            Some(k) => {
                return Err(cfg_err(
                    origin,
                    format!("{at}: unknown key {k:?} (allowed: source, target, filter)"),
                ))
            }
            None => {
                return Err(cfg_err(
                    origin,
                    format!("{at}: a key is {}, not a name", kind_of(key)),
                ))
            }
        }
    }
    let source = match source {
        Some(s) if s.is_empty() => return Err(cfg_err(origin, format!("{at}: `source` is empty"))),
        Some(s) if s.contains('\0') => {
            return Err(cfg_err(
                origin,
                format!("{at}: `source` contains a NUL byte"),
            ))
        }
        Some(s) => PathBuf::from(s),
        None => return Err(cfg_err(origin, format!("{at}: `source` is missing"))),
    };
    let target = match map.get("target") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let t = scalar(v).ok_or_else(|| {
                cfg_err(
                    origin,
                    format!("{at}: `target` must be a path, found {}", kind_of(v)),
                )
            })?;
            normalise_target(&t).map_err(|why| cfg_err(origin, format!("{at}: {why}")))?
        }
    };
    let filter = match map.get("filter") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let text = scalar(v).ok_or_else(|| {
                cfg_err(
                    origin,
                    format!(
                        "{at}: `filter` must be a regular expression, found {}",
                        kind_of(v)
                    ),
                )
            })?;
            let regex = Regex::new(&text).map_err(|e| {
                cfg_err(origin, format!("{at}: invalid filter regex {text:?}: {e}"))
            })?;
            Some(Filter { text, regex })
        }
    };
    Ok(Item {
        source,
        target,
        filter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let c = parse(
            "- volume: data\n  items:\n  - source: /var/lib/app\n    target: a/./b\n    filter: 'balena-.*'\n  - source: /etc/hosts\n- volume: logs\n  items:\n  - source: /var/log\n",
            "t.yml",
        )
        .unwrap();
        assert_eq!(c.volumes.len(), 2);
        assert_eq!(c.volumes[0].name, "data");
        let it = &c.volumes[0].items[0];
        assert_eq!(it.target.as_deref(), Some(Path::new("a/b")));
        let f = it.filter.as_ref().unwrap();
        assert!(f.matches(Path::new("/x/balena-1/y")));
        assert!(!f.matches(Path::new("/x/other")));
        assert!(c.volumes[0].items[1].target.is_none());
    }

    #[test]
    fn empty_and_wrong_shapes() {
        for (text, want) in [
            ("", "empty"),
            ("[]", "empty"),
            ("volume: x", "must be a list of volumes"),
            (
                "- volume: x\n  items: []",
                "volume 1 \"x\": `items` is empty",
            ),
            ("- items:\n  - source: /\n", "volume 1: `volume` is missing"),
            ("- volume: x\n", "volume 1 \"x\": `items` is missing"),
            (
                "- volume: x\n  items:\n  - target: y\n",
                "volume 1 \"x\", item 1: `source` is missing",
            ),
            (
                "- volume: x\n  items: [ {source: ''} ]",
                "`source` is empty",
            ),
            ("- 1: x\n", "volume 1: a key is a number, not a name"),
            ("- volume: [a]\n  items: []", "`volume` must be a name"),
            (
                "- volume: x\n  items: [ {source: /a, target: [1]} ]",
                "`target` must be a path",
            ),
            (
                "- volume: x\n  items: [ {source: /a, filter: {a: 1}} ]",
                "`filter` must be a regular expression",
            ),
            (
                "- volume: x\n  items: [ 3 ]",
                "volume 1 \"x\", item 1: must be a mapping",
            ),
            ("- [1]\n", "volume 1: must be a mapping"),
            (
                "- volume: x\n  items:\n  - source: /a\n   bad: indent",
                "not valid YAML",
            ),
        ] {
            let e = parse(text, "cfg.yml").unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(
                e.starts_with("reading backup configuration cfg.yml: "),
                "{e}"
            );
        }
    }

    #[test]
    fn yaml_errors_name_line_and_column() {
        for (text, want) in [
            ("- a: x\n  b: y\n   c: z", "line 3 column"),
            (
                "- volume: x\n  volume: y\n  items: []",
                "duplicate entry with key \"volume\" at line 1 column 3",
            ),
            ("[a, b", "line 2 column 1"),
            ("- a\n\t- b", "line 2 column"),
        ] {
            let e = parse(text, "cfg.yml").unwrap_err().to_string();
            assert!(e.contains("not valid YAML"), "{text:?}: {e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn yaml_forms_serde_yaml_reads() {
        let c = parse(
            "---\n# backup\n- volume: \"data\"\n  items: [ {source: /a, target: 010}, {source: '/b'} ]\n...\n",
            "t.yml",
        )
        .unwrap();
        assert_eq!(c.volumes[0].name, "data");
        assert_eq!(
            c.volumes[0].items[0].target.as_deref(),
            Some(Path::new("010"))
        );
        assert_eq!(c.volumes[0].items[1].source, Path::new("/b"));
        let e = parse("- volume: !x data\n  items: []", "t.yml").unwrap_err();
        assert!(e.to_string().contains("found a tagged value"), "{e}");
    }

    #[test]
    fn volume_names() {
        for ok in ["data", "app_data.v2", "-x", "a"] {
            assert_eq!(volume_name_problem(ok), None, "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "test volume 1", "nul\0", "ü"] {
            assert!(volume_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(volume_name_problem(&"a".repeat(MAX_VOLUME_NAME)).is_none());
        assert!(volume_name_problem(&"a".repeat(MAX_VOLUME_NAME + 1)).is_some());
    }

    #[test]
    fn targets() {
        assert_eq!(normalise_target(".").unwrap(), None);
        assert_eq!(
            normalise_target("a//b/").unwrap(),
            Some(PathBuf::from("a/b"))
        );
        assert!(normalise_target("/abs").unwrap_err().contains("absolute"));
        assert!(normalise_target("a/../b").unwrap_err().contains("'..'"));
        assert!(normalise_target("a\0").is_err());
    }
}
