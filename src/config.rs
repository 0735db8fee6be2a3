//! config.json: the fleet's provisioning file.
//!
//! The object is kept as an ordered JSON map, so every key takeover does not interpret is
//! written back unchanged (same keys, same values, same order). Only `hostname` and
//! `deviceType` are ever rewritten. Secrets (`apiKey`, `deviceApiKey`) are registered with the
//! logger on load, so they cannot reach a log line, and the file is only ever written 0600.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Largest config.json accepted (real ones are about 1 KiB).
pub const MAX_SIZE: u64 = 1024 * 1024;

/// Keys whose values are secrets.
pub const SECRET_KEYS: &[&str] = &["apiKey", "deviceApiKey", "registryToken", "mixpanelToken"];

#[derive(Debug, Clone)]
pub struct ConfigJson {
    /// Where it was read from (for messages).
    pub origin: PathBuf,
    map: Map<String, Value>,
}

/// For a file that is a config.json but a wrong one (a key missing or of the wrong type).
const HINT: &str = "download config.json again from the balena dashboard (Add device > Advanced > \
                    Download configuration file only) and pass it with -c";

/// For a file that is not a config.json at all (empty, not JSON, not an object).
const HINT_NOT_CONFIG: &str = "check that -c names the config.json downloaded from the balena \
                               dashboard, unedited";

impl ConfigJson {
    pub fn load(path: &Path) -> Result<ConfigJson> {
        let bytes = crate::files::read_limited(path, MAX_SIZE, "config.json").map_err(|e| {
            if e.is_errno(libc::ENOENT) {
                // Missing: the path is what is wrong, not the file.
                let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
                e.hint(format!(
                    "there is no file at {}; check the path given with -c",
                    abs.display()
                ))
            } else {
                e
            }
        })?;
        Self::parse(&bytes, path)
    }

    pub fn parse(bytes: &[u8], origin: &Path) -> Result<ConfigJson> {
        let step = "reading config.json";
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(Error::new(step, origin.display(), "the file is empty")
                .hint("the file has no content; check that -c names the downloaded config.json"));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json messages name line and column but never echo the input.
            Error::new(step, origin.display(), format!("not valid JSON: {e}")).hint(format!(
                "the file stops being JSON at line {}, column {}; {HINT_NOT_CONFIG}",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(map) = value else {
            return Err(
                Error::new(step, origin.display(), "the top level is not a JSON object")
                    .hint(HINT_NOT_CONFIG),
            );
        };
        let c = ConfigJson {
            origin: origin.to_path_buf(),
            map,
        };
        for s in c.secrets() {
            crate::log::add_secret(&s);
        }
        Ok(c)
    }

    fn missing(&self, key: &str) -> Error {
        Error::new(
            "reading config.json",
            self.origin.display(),
            format!("key '{key}' is missing"),
        )
        .hint(HINT)
    }

    fn wrong_type(&self, key: &str, want: &str) -> Error {
        Error::new(
            "reading config.json",
            self.origin.display(),
            format!("key '{key}' is not {want}"),
        )
        .hint(HINT)
    }

    /// A required string value.
    pub fn string(&self, key: &str) -> Result<&str> {
        match self.map.get(key) {
            None | Some(Value::Null) => Err(self.missing(key)),
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(Value::String(_)) => Err(self.wrong_type(key, "a non-empty string")),
            Some(_) => Err(self.wrong_type(key, "a string")),
        }
    }

    /// An optional string value (absent or null → None; another type is an error).
    pub fn opt_string(&self, key: &str) -> Result<Option<&str>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong_type(key, "a string")),
        }
    }

    /// An unsigned number given as a JSON number or a numeric string.
    pub fn number(&self, key: &str) -> Result<u64> {
        match self.map.get(key) {
            None | Some(Value::Null) => Err(self.missing(key)),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| self.wrong_type(key, "an unsigned integer")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| self.wrong_type(key, "an unsigned integer")),
            Some(_) => Err(self.wrong_type(key, "an unsigned integer")),
        }
    }

    pub fn device_type(&self) -> Result<&str> {
        self.string("deviceType")
    }

    pub fn application_id(&self) -> Result<u64> {
        self.number("applicationId")
    }

    /// API base URL without a trailing '/'.
    pub fn api_endpoint(&self) -> Result<&str> {
        let s = self.string("apiEndpoint")?;
        if !(s.starts_with("http://") || s.starts_with("https://")) {
            return Err(self.wrong_type("apiEndpoint", "an http:// or https:// URL"));
        }
        Ok(s.trim_end_matches('/'))
    }

    /// `apiKey`, else `deviceApiKey`.
    pub fn api_key(&self) -> Result<&str> {
        match self.opt_string("apiKey")? {
            Some(k) if !k.is_empty() => Ok(k),
            _ => self.string("deviceApiKey"),
        }
    }

    pub fn vpn_endpoint(&self) -> Result<&str> {
        self.string("vpnEndpoint")
    }

    pub fn vpn_port(&self) -> Result<u16> {
        let p = self.number("vpnPort")?;
        u16::try_from(p).map_err(|_| self.wrong_type("vpnPort", "a port number (1-65535)"))
    }

    pub fn uuid(&self) -> Result<Option<&str>> {
        self.opt_string("uuid")
    }

    pub fn hostname(&self) -> Result<Option<&str>> {
        self.opt_string("hostname")
    }

    pub fn set_hostname(&mut self, name: &str) {
        self.map
            .insert("hostname".into(), Value::String(name.into()));
    }

    pub fn set_device_type(&mut self, slug: &str) {
        self.map
            .insert("deviceType".into(), Value::String(slug.into()));
    }

    /// The values of every secret key present (for redaction).
    pub fn secrets(&self) -> Vec<String> {
        SECRET_KEYS
            .iter()
            .filter_map(|k| self.map.get(*k))
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// The object as written to the new boot partition: compact JSON, keys in their original order.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a Map<String, Value> cannot fail: keys are strings and values are plain JSON.
        serde_json::to_vec(&self.map).unwrap_or_default()
    }

    /// A copy with secret values replaced, safe to print.
    pub fn redacted(&self) -> Value {
        let mut m = self.map.clone();
        for k in SECRET_KEYS {
            if let Some(v) = m.get_mut(*k) {
                *v = Value::String("<redacted>".into());
            }
        }
        Value::Object(m)
    }

    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"applicationId":"1234","deviceType":"raspberrypi4-64","userId":7,
        "apiEndpoint":"https://api.balena-cloud.com/","vpnEndpoint":"cloudlink.balena-cloud.com",
        "vpnPort":443,"apiKey":"AbCdEfGhIjKlMnOp","listenPort":48484,"zz_unknown":{"b":1,"a":[1,2]}}"#;

    fn sample() -> ConfigJson {
        ConfigJson::parse(SAMPLE.as_bytes(), Path::new("c.json")).unwrap()
    }

    #[test]
    fn reads_keys() {
        let c = sample();
        assert_eq!(c.application_id().unwrap(), 1234);
        assert_eq!(c.device_type().unwrap(), "raspberrypi4-64");
        assert_eq!(c.api_endpoint().unwrap(), "https://api.balena-cloud.com");
        assert_eq!(c.vpn_port().unwrap(), 443);
        assert_eq!(c.api_key().unwrap(), "AbCdEfGhIjKlMnOp");
        assert_eq!(c.uuid().unwrap(), None);
    }

    #[test]
    fn rewrite_keeps_unknown_keys_and_order() {
        let mut c = sample();
        c.set_hostname("pi-17");
        c.set_device_type("raspberrypi5");
        let out: Value = serde_json::from_slice(&c.to_bytes()).unwrap();
        let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys[0], "applicationId");
        assert_eq!(keys.last().unwrap(), "hostname");
        assert_eq!(out["zz_unknown"], serde_json::json!({"b":1,"a":[1,2]}));
        assert_eq!(out["deviceType"], "raspberrypi5");
        assert_eq!(out["userId"], 7);
    }

    #[test]
    fn errors_name_key_and_file() {
        for (text, want) in [
            ("", "empty"),
            ("[1]", "not a JSON object"),
            ("{", "not valid JSON"),
            (r#"{"deviceType":5}"#, "'deviceType' is not a string"),
            (r#"{"applicationId":1}"#, "'deviceType' is missing"),
        ] {
            let e = ConfigJson::parse(text.as_bytes(), Path::new("/x/c.json"))
                .and_then(|c| c.device_type().map(|_| ()))
                .unwrap_err();
            let s = e.to_string();
            assert!(
                s.contains(want) && s.contains("/x/c.json") && s.contains("hint:"),
                "{s}"
            );
        }
    }

    #[test]
    fn secrets_redacted() {
        let c = sample();
        assert!(!c.redacted().to_string().contains("AbCdEfGhIjKlMnOp"));
        assert!(crate::log::redact("key AbCdEfGhIjKlMnOp").contains("<redacted>"));
    }
}
