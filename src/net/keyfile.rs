//! GLib key-file syntax (the format of NetworkManager keyfiles and connman settings): a
//! tokenizer/parser and a writer.
//!
//! Parsing follows GLib's `g_key_file_load_from_data`: lines end at `\n` (a `\r` before it is
//! dropped), blank lines and lines starting with `#` are comments, `[group]` opens a group,
//! `key = value` (spaces around `=` ignored, the value keeps trailing spaces) adds a pair. A pair
//! before the first group, or a line that is none of these, is an error naming the line.
//! Groups of the same name are merged; for a repeated key the last value wins.
//!
//! Values are kept raw (bytes, escapes intact) and unescaped on access: `\s` space, `\n`, `\t`,
//! `\r`, `\\`. GLib rejects any other escape; we are tolerant and keep `\;` as `;` (what a
//! hand-written file means) and any other `\x` as both characters.
#![forbid(unsafe_code)]

use std::fmt;

use crate::error::{Error, Result};

/// One `key=value` line: key as text, value raw (escapes not yet resolved).
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub raw: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub entries: Vec<Entry>,
}

/// A parsed key file. `Debug` prints group and key names only, never values (they may be PSKs).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyFile {
    pub groups: Vec<Group>,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for g in &self.groups {
            let keys: Vec<&str> = g.entries.iter().map(|e| e.key.as_str()).collect();
            m.entry(&g.name, &keys);
        }
        m.finish()
    }
}

/// Largest key file accepted (real ones are a few hundred bytes).
pub const MAX_SIZE: usize = 1024 * 1024;

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &b[start..end.max(start)]
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[start..]
}

impl KeyFile {
    /// Parses `data`; `origin` (a path) names the input in errors.
    pub fn parse(data: &[u8], origin: &str) -> Result<KeyFile> {
        let step = "parsing key file";
        if data.len() > MAX_SIZE {
            return Err(Error::new(
                step,
                origin,
                format!("larger than {MAX_SIZE} bytes"),
            ));
        }
        let mut kf = KeyFile::default();
        // A UTF-8 byte order mark at the start is ignored, as editors on other systems add one.
        let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        for (i, line) in data.split(|&b| b == b'\n').enumerate() {
            let lineno = i + 1;
            let at = || format!("{origin}:{lineno}");
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let t = trim_ascii(line);
            if t.is_empty() || t[0] == b'#' {
                continue;
            }
            if t[0] == b'[' {
                if t.last() != Some(&b']') || t.len() < 3 {
                    return Err(Error::new(step, at(), "invalid group header")
                        .hint("a group line must look like [name]"));
                }
                let name = std::str::from_utf8(&t[1..t.len() - 1])
                    .map_err(|_| Error::new(step, at(), "group name is not UTF-8"))?;
                if name.contains(['[', ']']) || name.chars().any(char::is_control) {
                    return Err(Error::new(step, at(), "invalid character in group name"));
                }
                let name = name.to_string();
                if !kf.groups.iter().any(|g| g.name == name) {
                    kf.groups.push(Group {
                        name,
                        entries: Vec::new(),
                    });
                } else {
                    // Merged: move it to the end so following keys land in it.
                    let pos = kf.groups.iter().position(|g| g.name == name).unwrap_or(0);
                    let g = kf.groups.remove(pos);
                    kf.groups.push(g);
                }
                continue;
            }
            let Some(eq) = t.iter().position(|&b| b == b'=') else {
                return Err(Error::new(
                    step,
                    at(),
                    "line is not a key=value pair, a [group] or a # comment",
                ));
            };
            let key = trim_ascii(&t[..eq]);
            if key.is_empty() {
                return Err(Error::new(step, at(), "empty key before '='"));
            }
            let key = std::str::from_utf8(key)
                .map_err(|_| Error::new(step, at(), "key is not UTF-8"))?
                .to_string();
            // Leading spaces of the value are dropped; trailing ones kept (as GLib does), except
            // the line end already removed. We keep `line` (untrimmed) for the value end.
            let vstart = line.len() - trim_ascii_start(line).len() + eq + 1;
            let raw = trim_ascii_start(&line[vstart..]).to_vec();
            let Some(g) = kf.groups.last_mut() else {
                return Err(Error::new(
                    step,
                    at(),
                    "key=value pair before the first [group]",
                ));
            };
            if let Some(e) = g.entries.iter_mut().find(|e| e.key == key) {
                e.raw = raw;
            } else {
                g.entries.push(Entry { key, raw });
            }
        }
        Ok(kf)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn has_group(&self, name: &str) -> bool {
        self.group(name).is_some()
    }

    /// The raw (still escaped) value.
    pub fn raw(&self, group: &str, key: &str) -> Option<&[u8]> {
        self.group(group)?
            .entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.raw.as_slice())
    }

    /// The unescaped value as bytes (may be non-UTF-8 in hand-written files).
    pub fn bytes(&self, group: &str, key: &str) -> Option<Vec<u8>> {
        self.raw(group, key).map(unescape)
    }

    /// The unescaped value as text (invalid UTF-8 replaced).
    pub fn string(&self, group: &str, key: &str) -> Option<String> {
        self.bytes(group, key)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// A boolean value (`true`/`false`, also `1`/`0`, `yes`/`no` as NetworkManager accepts).
    pub fn boolean(&self, group: &str, key: &str) -> Option<bool> {
        let s = self.string(group, key)?;
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        }
    }

    /// A list value split at unescaped `sep` (`;` in NetworkManager); a trailing empty piece is
    /// dropped, items are unescaped.
    pub fn list(&self, group: &str, key: &str, sep: u8) -> Option<Vec<String>> {
        let raw = self.raw(group, key)?;
        Some(
            split_list(raw, sep)
                .into_iter()
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    /// Keys of a group in file order.
    pub fn keys(&self, group: &str) -> Vec<&str> {
        self.group(group)
            .map(|g| g.entries.iter().map(|e| e.key.as_str()).collect())
            .unwrap_or_default()
    }
}

/// Resolves GLib escapes; tolerant of unknown ones (see the module doc).
pub fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'\\' && i + 1 < raw.len() {
            let n = raw[i + 1];
            match n {
                b's' => out.push(b' '),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'\\' => out.push(b'\\'),
                b';' => out.push(b';'),
                _ => {
                    out.push(b'\\');
                    out.push(n);
                }
            }
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Splits a raw list value at unescaped `sep`, unescaping each piece (`\<sep>` → `sep`).
pub fn split_list(raw: &[u8], sep: u8) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'\\' && i + 1 < raw.len() {
            let n = raw[i + 1];
            if n == sep {
                cur.push(sep);
            } else {
                cur.extend_from_slice(&unescape(&raw[i..i + 2]));
            }
            i += 2;
        } else if c == sep {
            pieces.push(std::mem::take(&mut cur));
            i += 1;
        } else {
            cur.push(c);
            i += 1;
        }
    }
    if !cur.is_empty() {
        pieces.push(cur);
    }
    pieces
}

/// Escapes a text value the way GLib's `g_key_file_set_string` does, and also trailing spaces
/// (GLib would drop nothing, but hand editors do): `\\`, `\n`, `\t`, `\r`, and `\s` for spaces at
/// the start and the end.
pub fn escape(value: &str) -> String {
    let b = value.as_bytes();
    let lead = b.iter().take_while(|&&c| c == b' ').count();
    let trail = if lead == b.len() {
        0
    } else {
        b.iter().rev().take_while(|&&c| c == b' ').count()
    };
    let mut out = String::with_capacity(value.len() + 4);
    for (i, ch) in value.char_indices() {
        match ch {
            ' ' if i < lead || i >= b.len() - trail => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// Builds a key file in order. Values given to [`Writer::set`] are escaped; [`Writer::set_raw`]
/// takes an already-valid raw value.
#[derive(Default)]
pub struct Writer {
    out: String,
    groups: usize,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// A `# comment` line; newlines and other control characters in `text` are replaced.
    pub fn comment(&mut self, text: &str) -> &mut Self {
        let clean: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.out.push_str("# ");
        self.out.push_str(clean.trim_end());
        self.out.push('\n');
        self
    }

    pub fn group(&mut self, name: &str) -> &mut Self {
        if self.groups > 0 {
            self.out.push('\n');
        }
        self.groups += 1;
        self.out.push('[');
        self.out.push_str(name);
        self.out.push_str("]\n");
        self
    }

    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        let v = escape(value);
        self.set_raw(key, &v)
    }

    pub fn set_raw(&mut self, key: &str, raw: &str) -> &mut Self {
        self.out.push_str(key);
        self.out.push('=');
        self.out.push_str(raw);
        self.out.push('\n');
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups_keys_comments_and_crlf() {
        let data = b"# comment\r\n\r\n[connection]\r\nid = My Net \r\ntype=wifi\r\n  # indented comment\n[wifi]\nssid=a\\sb\\\\c\\;d\n[connection]\nuuid=x\nid=second\n";
        let kf = KeyFile::parse(data, "t").unwrap();
        assert_eq!(kf.groups.len(), 2);
        // Merged group, last value wins, trailing space kept as GLib does.
        assert_eq!(kf.string("connection", "id").unwrap(), "second");
        assert_eq!(kf.string("connection", "type").unwrap(), "wifi");
        assert_eq!(kf.string("connection", "uuid").unwrap(), "x");
        assert_eq!(kf.bytes("wifi", "ssid").unwrap(), b"a b\\c;d");
        assert_eq!(kf.keys("connection"), vec!["id", "type", "uuid"]);
        let kf = KeyFile::parse(b"[a]\nk = v  \n", "t").unwrap();
        assert_eq!(kf.string("a", "k").unwrap(), "v  ");
    }

    #[test]
    fn errors_name_the_line() {
        let e = KeyFile::parse(b"[a]\nok=1\nnot a pair\n", "/x/f").unwrap_err();
        assert!(e.to_string().contains("/x/f:3"), "{e}");
        let e = KeyFile::parse(b"k=v\n[a]\n", "/x/f").unwrap_err();
        assert!(e.to_string().contains("/x/f:1"), "{e}");
        assert!(e.to_string().contains("before the first"), "{e}");
        let e = KeyFile::parse(b"[a\n", "f").unwrap_err();
        assert!(e.to_string().contains("group header"), "{e}");
        assert!(KeyFile::parse(b"[a]\n=v\n", "f").is_err());
        assert!(KeyFile::parse(&vec![b'#'; MAX_SIZE + 1], "f").is_err());
    }

    #[test]
    fn lists_split_at_unescaped_separator() {
        let kf = KeyFile::parse(b"[ipv4]\ndns=8.8.8.8;1.1.1.1;\nx=a\\;b;c\n", "t").unwrap();
        assert_eq!(
            kf.list("ipv4", "dns", b';').unwrap(),
            vec!["8.8.8.8", "1.1.1.1"]
        );
        assert_eq!(kf.list("ipv4", "x", b';').unwrap(), vec!["a;b", "c"]);
    }

    #[test]
    fn escape_round_trips_through_parse() {
        for v in [
            " lead",
            "trail ",
            "  both  ",
            "in side",
            "back\\slash",
            "new\nline",
            "tab\tcr\r",
            "semi;colon",
            "quote\"'",
            "#hash",
            "[x]",
            "=eq",
            "   ",
            "",
            "Café ☕",
        ] {
            let mut w = Writer::new();
            w.group("g").set("k", v);
            let text = w.finish();
            let kf = KeyFile::parse(text.as_bytes(), "t").unwrap();
            assert_eq!(kf.string("g", "k").unwrap(), v, "{text:?}");
        }
    }

    #[test]
    fn booleans_and_debug_hides_values() {
        let kf = KeyFile::parse(b"[wifi]\nhidden=true\nx=0\npsk=supersecret\n", "t").unwrap();
        assert_eq!(kf.boolean("wifi", "hidden"), Some(true));
        assert_eq!(kf.boolean("wifi", "x"), Some(false));
        assert_eq!(kf.boolean("wifi", "psk"), None);
        let d = format!("{kf:?}");
        assert!(d.contains("psk") && !d.contains("supersecret"), "{d}");
    }
}
