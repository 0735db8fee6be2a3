//! The response headers of the last response (after redirects), from curl's `-D` file or
//! wget's `-S` output.
#![forbid(unsafe_code)]

/// What the response headers say (the last response, after redirects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub status: Option<u16>,
    pub reason: String,
    pub content_length: Option<u64>,
    /// `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL` on a 416).
    pub range_start: Option<u64>,
    pub range_total: Option<u64>,
    /// `Location` of a redirect reply.
    pub location: Option<String>,
}

impl Headers {
    pub(super) fn reason_suffix(&self) -> String {
        if self.reason.is_empty() {
            String::new()
        } else {
            format!(" {}", self.reason)
        }
    }
}

/// Parses a header dump: curl's `-D` file (`indented == false`) or wget's `-S` output on
/// stderr (header lines indented). The last status line wins (redirects, 100 Continue).
pub fn parse_headers(text: &str, indented: bool) -> Headers {
    let mut h = Headers::default();
    let mut in_block = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("HTTP/") {
            if indented && !line.starts_with(' ') {
                continue;
            }
            let mut parts = rest.splitn(3, ' ');
            let _version = parts.next();
            if let Some(code) = parts.next().and_then(|c| c.parse::<u16>().ok()) {
                h = Headers {
                    status: Some(code),
                    reason: parts.next().unwrap_or("").trim().to_string(),
                    ..Default::default()
                };
                in_block = true;
            }
            continue;
        }
        if !in_block {
            continue;
        }
        if t.is_empty() || (indented && !line.starts_with(' ')) {
            in_block = false;
            continue;
        }
        let Some((name, value)) = t.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => h.content_length = value.parse().ok(),
            "location" => h.location = Some(value.to_string()),
            "content-range" => {
                if let Some(r) = value.strip_prefix("bytes ") {
                    if let Some((range, total)) = r.split_once('/') {
                        h.range_total = total.trim().parse().ok();
                        h.range_start = range.split('-').next().and_then(|s| s.trim().parse().ok());
                    }
                }
            }
            _ => {}
        }
    }
    h
}
