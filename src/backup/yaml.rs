//! A small YAML reader for the backup configuration (issue 10: binary size; it replaces
//! serde_yaml and its libyaml port, ~80 KB of the static binary).
//!
//! Supported, as YAML 1.2 reads it: block sequences (`- x`) and block mappings (`key: value`),
//! including a sequence at the same indentation as its mapping key and compact nesting
//! (`- key: value` / `- - x`); flow sequences and mappings (`[a, b]`, `{k: v}`, over several
//! lines too); plain, 'single-quoted' and "double-quoted" scalars on one line; comments; one
//! document, optionally opened by `---` and closed by `...`. Scalars resolve like serde_yaml:
//! empty, `~` and `null` are null, `true`/`false` booleans, integers (decimal, `0x`, `0o`, `0b`;
//! a leading zero followed by digits is a string) and floats numbers, anything else a string.
//! Quoted scalars are always strings.
//!
//! Refused with a message naming line and column (never silently misread): anchors and aliases,
//! tags, block scalars (`|`, `>`), plain or quoted scalars over several lines, complex keys
//! (`?`), directives, several documents, tabs in indentation, duplicate keys.
#![forbid(unsafe_code)]

/// A YAML node. Numbers keep their text: integers in canonical decimal form (`0x10` → `16`),
/// floats as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Sequence(Vec<Value>),
    Mapping(Vec<(Value, Value)>),
}

impl Value {
    pub fn as_mapping(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Mapping(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// The value of `key` in a mapping.
pub fn get<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Parses one YAML document. The error says what and where (`line L column C: ...`).
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    if p.s.starts_with(b"\xef\xbb\xbf") {
        p.i = 3;
    }
    p.skip_blank()?;
    if p.at_marker(b"---") {
        p.i += 3;
        p.skip_spaces();
        if !p.at_line_end() {
            return Err(p.err("content on the `---` line is not supported"));
        }
        p.skip_blank()?;
    } else if p.peek() == Some(b'%') {
        return Err(p.err("directives (`%`) are not supported"));
    }
    let v = if p.eof() || p.at_marker(b"...") {
        Value::Null
    } else {
        let col = p.col();
        p.block_node(col, true, col)?
    };
    p.skip_blank()?;
    if p.at_marker(b"...") {
        p.i += 3;
        p.skip_spaces();
        p.skip_blank()?;
    }
    if !p.eof() {
        if p.at_marker(b"---") {
            return Err(p.err("more than one document is not supported"));
        }
        return Err(p.err("unexpected content (check the indentation)"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.s.get(self.i + n).copied()
    }

    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }

    fn line_start(&self) -> usize {
        self.s[..self.i]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
    }

    fn col(&self) -> usize {
        self.i - self.line_start()
    }

    fn err(&self, what: &str) -> String {
        let line = self.s[..self.i].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("line {line} column {}: {what}", self.col() + 1)
    }

    /// `---` or `...` at the start of a line, followed by a blank or the end.
    fn at_marker(&self, m: &[u8]) -> bool {
        self.col() == 0
            && self.s[self.i..].starts_with(m)
            && matches!(self.peek_at(3), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// At a line end, a comment or the end of the text (after spaces).
    fn at_line_end(&self) -> bool {
        matches!(self.peek(), None | Some(b'\n' | b'\r' | b'#'))
    }

    /// Skips spaces, comments and empty lines; stops at the first content byte (or the end).
    /// Tabs are refused where they would be indentation.
    fn skip_blank(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(b' ' | b'\r' | b'\n') => self.i += 1,
                Some(b'\t') => {
                    let rest = &self.s[self.i..];
                    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                    let content = rest[..end]
                        .iter()
                        .find(|&&b| !matches!(b, b' ' | b'\t' | b'\r'));
                    if matches!(content, None | Some(b'#')) {
                        self.i += 1;
                    } else {
                        return Err(self.err("a tab in the indentation (use spaces)"));
                    }
                }
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.i += 1;
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// After a scalar or a flow node in block context: only spaces and a comment may follow.
    fn end_of_line(&mut self) -> Result<(), String> {
        self.skip_spaces();
        if !self.at_line_end() {
            return Err(self.err("unexpected content after the value"));
        }
        Ok(())
    }

    /// `-` followed by a blank or the end: a block sequence entry.
    fn at_dash(&self) -> bool {
        self.peek() == Some(b'-') && matches!(self.peek_at(1), None | Some(b' ' | b'\n' | b'\r'))
    }

    fn refuse_special(&self) -> Result<(), String> {
        let what = match self.peek() {
            Some(b'&') => "anchors (`&`) are not supported",
            Some(b'*') => "aliases (`*`) are not supported",
            Some(b'!') => "tags (`!`) are not supported",
            Some(b'|' | b'>') => {
                "block scalars (`|`, `>`) are not supported; write the value on one line"
            }
            Some(b'?') if matches!(self.peek_at(1), None | Some(b' ' | b'\n' | b'\r')) => {
                "complex keys (`?`) are not supported"
            }
            Some(b'@' | b'`') => "a plain value cannot start with `@` or a backquote; quote it",
            _ => return Ok(()),
        };
        Err(self.err(what))
    }

    /// A node starting at the current position (content, column `col`) in block context.
    /// `collection_ok`: the node may be a block collection (false after `key: ` on the same
    /// line). `parent`: the column of the enclosing collection's entries.
    fn block_node(
        &mut self,
        col: usize,
        collection_ok: bool,
        parent: usize,
    ) -> Result<Value, String> {
        self.refuse_special()?;
        if self.at_dash() {
            if !collection_ok {
                return Err(self.err("a block sequence cannot start on the line of its key"));
            }
            return self.block_sequence(col);
        }
        match self.peek() {
            Some(b'[' | b'{') => {
                let start = self.i;
                let v = self.flow_node()?;
                self.skip_spaces();
                if self.peek() == Some(b':') {
                    self.i = start;
                    return Err(self.err("a flow collection as a key is not supported"));
                }
                self.end_of_line()?;
                Ok(v)
            }
            _ => {
                let start = self.i;
                let (key, quoted) = self.block_scalar_text()?;
                self.skip_spaces();
                if self.peek() == Some(b':') {
                    if !collection_ok {
                        return Err(self.err("a mapping cannot start on the line of its key"));
                    }
                    self.i = start;
                    return self.block_mapping(col);
                }
                self.end_of_line()?;
                self.check_continuation(parent)?;
                Ok(resolve(key, quoted))
            }
        }
    }

    /// After a one-line scalar: a following line indented deeper than `col` would continue it.
    fn check_continuation(&mut self, col: usize) -> Result<(), String> {
        let save = self.i;
        self.skip_blank()?;
        let deeper = !self.eof() && self.col() > col && !self.at_marker(b"...");
        if deeper {
            return Err(self.err(
                "a value over several lines (or wrong indentation) is not supported; \
                 write the value on one line",
            ));
        }
        self.i = save;
        Ok(())
    }

    fn block_sequence(&mut self, col: usize) -> Result<Value, String> {
        let mut items = Vec::new();
        loop {
            // At `-`, column `col`.
            self.i += 1;
            self.skip_spaces();
            if self.at_line_end() {
                self.skip_blank()?;
                if self.eof() || self.col() <= col || self.at_marker(b"...") {
                    items.push(Value::Null);
                } else {
                    let c = self.col();
                    items.push(self.block_node(c, true, col)?);
                }
            } else {
                let c = self.col();
                items.push(self.block_node(c, true, col)?);
            }
            self.skip_blank()?;
            if self.eof() || self.at_marker(b"...") || self.col() < col {
                break;
            }
            if self.col() > col {
                return Err(self.err("unexpected indentation"));
            }
            if !self.at_dash() {
                // A key of the enclosing mapping (`key:` followed by `- x` at its column).
                break;
            }
        }
        Ok(Value::Sequence(items))
    }

    fn block_mapping(&mut self, col: usize) -> Result<Value, String> {
        let mut entries: Vec<(Value, Value)> = Vec::new();
        loop {
            // At a key, column `col`.
            self.refuse_special()?;
            let key_at = self.i;
            let key = match self.peek() {
                Some(b'[' | b'{') => {
                    return Err(self.err("a flow collection as a key is not supported"))
                }
                _ => {
                    let (k, quoted) = self.block_scalar_text()?;
                    resolve(k, quoted)
                }
            };
            self.skip_spaces();
            if self.peek() != Some(b':') {
                return Err(self.err("expected `:` after a key"));
            }
            if entries.iter().any(|(k, _)| *k == key) {
                self.i = key_at;
                return Err(self.err("duplicate key"));
            }
            self.i += 1;
            self.skip_spaces();
            let value = if self.at_line_end() {
                self.skip_blank()?;
                if self.eof() || self.at_marker(b"...") {
                    Value::Null
                } else if self.col() > col || (self.col() == col && self.at_dash()) {
                    let c = self.col();
                    self.block_node(c, true, col)?
                } else {
                    Value::Null
                }
            } else {
                let c = self.col();
                self.block_node(c, false, col)?
            };
            entries.push((key, value));
            self.skip_blank()?;
            if self.eof() || self.at_marker(b"...") || self.col() < col {
                break;
            }
            if self.col() > col {
                return Err(self.err("unexpected indentation"));
            }
            if self.at_dash() || self.at_marker(b"---") {
                // A sequence entry at the mapping's own column ends it (the parent decides).
                break;
            }
        }
        Ok(Value::Mapping(entries))
    }

    /// A plain or quoted scalar in block context, up to `: `, ` #` or the line end. Returns
    /// the text and whether it was quoted.
    fn block_scalar_text(&mut self) -> Result<(String, bool), String> {
        match self.peek() {
            Some(b'\'' | b'"') => Ok((self.quoted()?, true)),
            _ => {
                let start = self.i;
                while let Some(b) = self.peek() {
                    if b == b'\n' || b == b'\r' {
                        break;
                    }
                    if b == b'#' && matches!(self.s.get(self.i.wrapping_sub(1)), Some(b' ' | b'\t'))
                    {
                        break;
                    }
                    if b == b':'
                        && matches!(self.peek_at(1), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
                    {
                        break;
                    }
                    self.i += 1;
                }
                let text = text_of(&self.s[start..self.i]).trim_end_matches([' ', '\t']);
                Ok((text.to_string(), false))
            }
        }
    }

    /// A single- or double-quoted scalar on one line.
    fn quoted(&mut self) -> Result<String, String> {
        let q = self.s[self.i];
        let open = self.i;
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                self.i = open;
                return Err(self.err("a quoted value is not closed"));
            };
            match b {
                b'\n' | b'\r' => {
                    self.i = open;
                    return Err(self.err(
                        "a quoted value over several lines is not supported; close it on its line",
                    ));
                }
                b'\'' if q == b'\'' => {
                    if self.peek_at(1) == Some(b'\'') {
                        out.push(b'\'');
                        self.i += 2;
                    } else {
                        self.i += 1;
                        break;
                    }
                }
                b'"' if q == b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' if q == b'"' => {
                    self.i += 1;
                    self.escape(&mut out)?;
                }
                _ => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
        Ok(text_of(&out).to_string())
    }

    /// One escape of a double-quoted scalar (after the backslash).
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let c = self.peek();
        let simple = match c {
            Some(b'0') => Some('\0'),
            Some(b'a') => Some('\x07'),
            Some(b'b') => Some('\x08'),
            Some(b't' | b'\t') => Some('\t'),
            Some(b'n') => Some('\n'),
            Some(b'v') => Some('\x0b'),
            Some(b'f') => Some('\x0c'),
            Some(b'r') => Some('\r'),
            Some(b'e') => Some('\x1b'),
            Some(b' ') => Some(' '),
            Some(b'"') => Some('"'),
            Some(b'/') => Some('/'),
            Some(b'\\') => Some('\\'),
            Some(b'N') => Some('\u{85}'),
            Some(b'_') => Some('\u{a0}'),
            Some(b'L') => Some('\u{2028}'),
            Some(b'P') => Some('\u{2029}'),
            _ => None,
        };
        let ch = if let Some(ch) = simple {
            self.i += 1;
            ch
        } else {
            let n = match c {
                Some(b'x') => 2,
                Some(b'u') => 4,
                Some(b'U') => 8,
                _ => return Err(self.err("unknown escape in a double-quoted value")),
            };
            let hex = self.s.get(self.i + 1..self.i + 1 + n).map(text_of);
            let code = hex
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
                .ok_or_else(|| self.err("invalid escape in a double-quoted value"))?;
            self.i += 1 + n;
            code
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    /// Skips blanks, newlines and comments inside a flow collection.
    fn flow_blank(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.i += 1,
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.i += 1;
                    }
                }
                _ => return,
            }
        }
    }

    /// A node inside a flow collection (or the collection itself).
    fn flow_node(&mut self) -> Result<Value, String> {
        self.refuse_special()?;
        match self.peek() {
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.flow_blank();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Value::Sequence(items));
                    }
                    items.push(self.flow_node()?);
                    self.flow_blank();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        None => return Err(self.err("a flow list is not closed")),
                        Some(b':') => {
                            return Err(self.err("a mapping inside a flow list is not supported"))
                        }
                        _ => return Err(self.err("expected `,` or `]` in a flow list")),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut entries: Vec<(Value, Value)> = Vec::new();
                loop {
                    self.flow_blank();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Value::Mapping(entries));
                    }
                    let key_at = self.i;
                    let key = self.flow_node()?;
                    self.flow_blank();
                    let value = if self.peek() == Some(b':') {
                        self.i += 1;
                        self.flow_blank();
                        if matches!(self.peek(), Some(b',' | b'}')) {
                            Value::Null
                        } else {
                            self.flow_node()?
                        }
                    } else {
                        Value::Null
                    };
                    if entries.iter().any(|(k, _)| *k == key) {
                        self.i = key_at;
                        return Err(self.err("duplicate key"));
                    }
                    entries.push((key, value));
                    self.flow_blank();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        None => return Err(self.err("a flow mapping is not closed")),
                        _ => return Err(self.err("expected `,` or `}` in a flow mapping")),
                    }
                }
            }
            Some(b'\'' | b'"') => Ok(Value::String(self.quoted()?)),
            None => Err(self.err("a flow collection is not closed")),
            _ => {
                let start = self.i;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'[' | b']' | b'{' | b'}' | b'\n' | b'\r') {
                        break;
                    }
                    if b == b'#' && matches!(self.s.get(self.i.wrapping_sub(1)), Some(b' ' | b'\t'))
                    {
                        break;
                    }
                    if b == b':'
                        && matches!(
                            self.peek_at(1),
                            None | Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b']' | b'}')
                        )
                    {
                        break;
                    }
                    self.i += 1;
                }
                let text = text_of(&self.s[start..self.i]).trim_end_matches([' ', '\t']);
                if text.is_empty() {
                    return Err(self.err("unexpected character in a flow collection"));
                }
                Ok(resolve(text.to_string(), false))
            }
        }
    }
}

/// The parser only splits at ASCII bytes, so every slice of valid UTF-8 it takes is valid.
fn text_of(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// The type of a scalar (serde_yaml's rules, see the module docs).
fn resolve(text: String, quoted: bool) -> Value {
    if quoted {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = int(&text) {
        return Value::Number(n);
    }
    if is_float(&text) {
        return Value::Number(text);
    }
    Value::String(text)
}

/// Leading zero(s) followed by digits: a string (YAML 1.2).
fn digits_but_not_number(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    s.len() > 1 && s.starts_with('0') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// An integer in canonical decimal form.
fn int(s: &str) -> Option<String> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.starts_with(['+', '-']) || body.is_empty() {
        return None;
    }
    let (radix, digits) = if let Some(r) = body.strip_prefix("0x") {
        (16, r)
    } else if let Some(r) = body.strip_prefix("0o") {
        (8, r)
    } else if let Some(r) = body.strip_prefix("0b") {
        (2, r)
    } else {
        if digits_but_not_number(s) {
            return None;
        }
        (10, body)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    if !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    let mut v: u128 = 0;
    for b in digits.bytes() {
        v = v
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from((b as char).to_digit(radix)?))?;
    }
    if neg && v > 1 << 127 {
        return None;
    }
    Some(if neg && v != 0 {
        format!("-{v}")
    } else {
        v.to_string()
    })
}

/// A finite float as Rust's `f64::from_str` reads it: `[+-](digits[.digits]|.digits)[e[+-]digits]`
/// (at least one digit), or `.inf`/`.nan` in YAML's spellings.
fn is_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    if digits_but_not_number(s) {
        return false;
    }
    let b = body.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let e = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if e == 0 {
            return false;
        }
        i += e;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    fn map(e: &[(&str, Value)]) -> Value {
        Value::Mapping(e.iter().map(|(k, v)| (s(k), v.clone())).collect())
    }

    #[test]
    fn documented_shape() {
        let v = parse(
            "# backup\n---\n- volume: data   # the volume\n  items:\n  - source: /var/lib/app\n    \
             target: a/./b\n    filter: '\\.db$'\n\n  - source: \"/etc/ho\\x73ts\"\n- volume: logs\n  \
             items:\n    - source: /var/log\n...\n",
        )
        .unwrap();
        let want = Value::Sequence(vec![
            map(&[
                ("volume", s("data")),
                (
                    "items",
                    Value::Sequence(vec![
                        map(&[
                            ("source", s("/var/lib/app")),
                            ("target", s("a/./b")),
                            ("filter", s("\\.db$")),
                        ]),
                        map(&[("source", s("/etc/hosts"))]),
                    ]),
                ),
            ]),
            map(&[
                ("volume", s("logs")),
                (
                    "items",
                    Value::Sequence(vec![map(&[("source", s("/var/log"))])]),
                ),
            ]),
        ]);
        assert_eq!(v, want);
    }

    #[test]
    fn flow_and_scalars() {
        let v = parse("- volume: x\n  items: [ {source: '', target: [1, 0x10, 010]}, {a}, 3 ]")
            .unwrap();
        let items = get(v_seq(&v)[0].as_mapping().unwrap(), "items").unwrap();
        assert_eq!(
            *items,
            Value::Sequence(vec![
                map(&[
                    ("source", s("")),
                    (
                        "target",
                        Value::Sequence(vec![
                            Value::Number("1".into()),
                            Value::Number("16".into()),
                            s("010"),
                        ])
                    ),
                ]),
                map(&[("a", Value::Null)]),
                Value::Number("3".into()),
            ])
        );
        for (text, want) in [
            ("~", Value::Null),
            ("", Value::Null),
            ("null", Value::Null),
            ("True", Value::Bool(true)),
            ("-12", Value::Number("-12".into())),
            ("1.5e3", Value::Number("1.5e3".into())),
            (".inf", Value::Number(".inf".into())),
            ("1.2.3", s("1.2.3")),
            ("'true'", s("true")),
            ("'it''s'", s("it's")),
            ("\"a\\tb\\u00fc\"", s("a\tbü")),
            ("a b: c", map(&[("a b", s("c"))])),
            ("a:b", s("a:b")),
            ("x # comment", s("x")),
            ("a#b", s("a#b")),
            ("[]", Value::Sequence(vec![])),
            ("{}", Value::Mapping(vec![])),
            (
                "- - a\n  - b\n- c",
                Value::Sequence(vec![Value::Sequence(vec![s("a"), s("b")]), s("c")]),
            ),
            (
                "a:\n- 1\nb:",
                map(&[
                    ("a", Value::Sequence(vec![Value::Number("1".into())])),
                    ("b", Value::Null),
                ]),
            ),
            ("-\n- x", Value::Sequence(vec![Value::Null, s("x")])),
            ("[a,\n  b] # c", Value::Sequence(vec![s("a"), s("b")])),
            (
                "1: x",
                Value::Mapping(vec![(Value::Number("1".into()), s("x"))]),
            ),
        ] {
            assert_eq!(parse(text).unwrap(), want, "{text:?}");
        }
    }

    fn v_seq(v: &Value) -> &[Value] {
        match v {
            Value::Sequence(s) => s,
            _ => panic!("not a sequence"),
        }
    }

    #[test]
    fn refusals_name_the_place() {
        for (text, want) in [
            ("- a: x\n  b: y\n   c: z", "line 3 column 4"),
            ("a: &x 1", "anchors"),
            ("a: *x", "aliases"),
            ("a: !!str 1", "tags"),
            ("a: |\n  text", "block scalars"),
            ("a: 'x\n  y'", "several lines"),
            ("a: x\n  y", "several lines"),
            ("a: 1\na: 2", "line 2 column 1: duplicate key"),
            ("a: x\n---\nb: y", "more than one document"),
            ("- a\n\t- b", "tab"),
            ("[a, b", "not closed"),
            ("{a: [1}", "expected `,` or `]`"),
            ("a: b: c", "mapping cannot start"),
            ("a: - b", "sequence cannot start"),
            ("- a\nb: c", "line 2 column 1: unexpected content"),
            ("\"\\q\"", "unknown escape"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(int("0"), Some("0".into()));
        assert_eq!(int("-0"), Some("0".into()));
        assert_eq!(int("+7"), Some("7".into()));
        assert_eq!(int("-0x1f"), Some("-31".into()));
        assert_eq!(int("0b101"), Some("5".into()));
        assert_eq!(int("0o17"), Some("15".into()));
        assert_eq!(int("007"), None);
        assert_eq!(int("--1"), None);
        assert_eq!(int("0x"), None);
        assert!(is_float("1."));
        assert!(is_float(".5"));
        assert!(is_float("-1E-3"));
        assert!(!is_float("."));
        assert!(!is_float("1e"));
        assert!(!is_float("inf"));
        assert!(is_float("00.5"));
    }
}
