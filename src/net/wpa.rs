//! `wpa_supplicant.conf` (`/etc/wpa_supplicant/wpa_supplicant.conf`,
//! `wpa_supplicant-<iface>.conf`) → typed [`Network`]s, one per `network={...}` block.
//!
//! Syntax as wpa_supplicant reads it (`wpa_config_get_line`): leading/trailing white space
//! ignored, `#` starts a comment unless inside a double-quoted string, a block opens with
//! `network={` (spaces allowed) and closes with a line `}`. Global lines (`ctrl_interface=`,
//! `update_config=`, `country=`...) are ignored. `blob-base64-NAME={...}` blocks (certificates
//! for EAP) and `cred={...}` blocks (Hotspot 2.0 credentials) are skipped with a note.
//!
//! Inside a block: `ssid` as `"text"`, as hex (`616263`) or as `P"printf\x20escaped"`;
//! `psk` quoted = passphrase (8..63 characters), unquoted = 64-hex raw key (both migrate, as
//! NetworkManager accepts both); `sae_password` for SAE; `key_mgmt` (`WPA-PSK`, `SAE`,
//! `NONE`, EAP variants); `scan_ssid=1` = hidden; `priority`; `disabled=1` blocks are skipped
//! with a note; `bssid` is dropped with a note. EAP, WEP (`wep_key0..3` with `NONE`) and
//! `psk` kept elsewhere (`ext:`, `mem_only_psk`) are reported as not migratable — never
//! silently turned into an open network.
#![forbid(unsafe_code)]

use std::path::Path;

use super::types::{NetKind, Network, Secret, Security, Source};
use crate::error::{Error, Result};
use crate::formats::hex;

/// What a file yields: the networks and the blocks skipped on purpose (with why).
#[derive(Debug, Default)]
pub struct Parsed {
    pub networks: Vec<Network>,
    pub skipped: Vec<(String, String)>,
}

/// Removes a `#` comment that is not inside double quotes.
fn strip_comment(line: &str) -> &str {
    let mut in_q = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_q = !in_q,
            '#' if !in_q => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The file is read as Latin-1 (one char per byte) so that any byte survives; this turns such
/// text back into the original bytes.
fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// A wpa_supplicant string value: `"text"`, `P"escaped"` or hex.
fn string_value(v: &str) -> Option<Vec<u8>> {
    if let Some(inner) = v.strip_prefix('"') {
        // Up to the last quote on the line, as wpa_config_parse_string does.
        let end = inner.rfind('"')?;
        return Some(latin1_bytes(&inner[..end]));
    }
    if let Some(inner) = v.strip_prefix("P\"") {
        let end = inner.rfind('"')?;
        return printf_decode(&latin1_bytes(&inner[..end]));
    }
    hex::decode(v)
}

/// `printf_decode` of wpa_supplicant: `\\`, `\"`, `\n`, `\r`, `\t`, `\e`, `\xHH`, octal.
fn printf_decode(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        let c = *b.get(i)?;
        i += 1;
        match c {
            b'\\' => out.push(b'\\'),
            b'"' => out.push(b'"'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'e' => out.push(0x1b),
            b'x' => {
                let h = std::str::from_utf8(b.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut k = 0;
                while k < 2 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    k += 1;
                }
                out.push(u8::try_from(v).ok()?);
            }
            _ => return None,
        }
    }
    Some(out)
}

struct Block {
    line: usize,
    pairs: Vec<(String, String)>,
}

impl Block {
    fn get(&self, k: &str) -> Option<&str> {
        // The last assignment wins, as in wpa_supplicant.
        self.pairs
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole file. Errors (with file and line) for a block that is never closed, a
/// `network={` inside a block, or a line inside a block that is not `key=value`.
pub fn parse(data: &[u8], origin: &Path) -> Result<Parsed> {
    let o = origin.display().to_string();
    let step = "parsing wpa_supplicant configuration";
    // Latin-1: every byte is one char, so quoted SSIDs keep any byte (see `latin1_bytes`).
    let text: String = data.iter().map(|&b| char::from(b)).collect();
    let mut blocks = Vec::new();
    let mut cur: Option<Block> = None;
    let mut out = Parsed::default();
    // Inside a `blob-base64-NAME={` or `cred={` block: (kind, name, first line).
    let mut other: Option<(&str, String, usize)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let line = strip_comment(raw.trim()).trim();
        if line.is_empty() {
            continue;
        }
        if let Some((kind, name, start)) = &other {
            if line == "}" {
                out.skipped.push((
                    format!("{kind} {name} at {o}:{start}"),
                    if *kind == "cred" {
                        "Hotspot 2.0 credential block: not migrated (NetworkManager has no \
                         counterpart)"
                            .into()
                    } else {
                        "certificate/key blob: only EAP networks use it, and they are not \
                         migrated"
                            .into()
                    },
                ));
                other = None;
            }
            continue;
        }
        let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        if cur.is_none() {
            if let Some(name) = compact
                .strip_prefix("blob-base64-")
                .and_then(|r| r.strip_suffix("={"))
            {
                other = Some(("blob", name.to_string(), lineno));
                continue;
            }
            if compact == "cred={" {
                other = Some(("cred", String::new(), lineno));
                continue;
            }
        }
        if compact == "network={" {
            if cur.is_some() {
                return Err(Error::new(
                    step,
                    format!("{o}:{lineno}"),
                    "network={ inside another network block",
                )
                .hint("close the previous block with a line '}'"));
            }
            cur = Some(Block {
                line: lineno,
                pairs: Vec::new(),
            });
            continue;
        }
        if line == "}" {
            match cur.take() {
                Some(b) => blocks.push(b),
                None => {
                    return Err(Error::new(
                        step,
                        format!("{o}:{lineno}"),
                        "'}' without a network block",
                    ))
                }
            }
            continue;
        }
        let Some(b) = cur.as_mut() else {
            // Global settings (ctrl_interface, country...) do not matter here.
            continue;
        };
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::new(
                step,
                format!("{o}:{lineno}"),
                "line in a network block is not key=value",
            ));
        };
        b.pairs.push((k.trim().to_string(), v.trim().to_string()));
    }
    if let Some(b) = cur {
        return Err(Error::new(
            step,
            format!("{o}:{}", b.line),
            "network block is never closed",
        )
        .hint("add a line '}' at the end of the block"));
    }
    if let Some((kind, _, start)) = other {
        return Err(Error::new(
            step,
            format!("{o}:{start}"),
            format!("{kind} block is never closed"),
        )
        .hint("add a line '}' at the end of the block"));
    }
    for b in blocks {
        network(&b, origin, &mut out);
    }
    Ok(out)
}

fn network(b: &Block, origin: &Path, out: &mut Parsed) {
    let at = format!("{}:{}", origin.display(), b.line);
    let ssid = b.get("ssid").map(|v| (v, string_value(v)));
    let mut n = Network::new(
        String::new(),
        NetKind::Wifi,
        Source::WpaSupplicant,
        origin.into(),
    );
    n.notes.push(format!("block at {at}"));
    match ssid {
        Some((_, Some(s))) => {
            n.name = super::types::display_bytes(&s);
            n.ssid = Some(s);
        }
        Some((v, None)) => {
            n.name = format!("block at {at}");
            n.security = Security::Unsupported(format!("ssid value {v:?} is not understood"));
        }
        None => {
            n.name = format!("block at {at}");
            n.security = Security::Unsupported("block without ssid".into());
        }
    }
    if b.get("disabled").map(str::trim) == Some("1") {
        out.skipped.push((
            n.name.clone(),
            format!("disabled=1 in {at}: the network is switched off, not migrated"),
        ));
        return;
    }
    n.hidden = b.get("scan_ssid").map(str::trim) == Some("1");
    n.priority = b.get("priority").and_then(|p| p.trim().parse().ok());
    if let Some(bssid) = b.get("bssid") {
        n.notes
            .push(format!("bssid={bssid} dropped (access point pinning)"));
    }
    if b.get("mode").is_some_and(|m| m.trim() != "0") {
        n.security = Security::Unsupported("not an infrastructure (client) network".into());
    }
    if matches!(n.security, Security::Unsupported(_)) {
        out.networks.push(n);
        return;
    }
    let km = b
        .get("key_mgmt")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>();
    let has = |k: &str| km.iter().any(|x| x == k);
    let psk_like = ["WPA-PSK", "WPA-PSK-SHA256", "FT-PSK"];
    let sae_like = ["SAE", "FT-SAE", "SAE-EXT-KEY"];
    let is_eap = km
        .iter()
        .any(|k| k.contains("EAP") || k == "IEEE8021X" || k.contains("FILS"));
    let psk_raw = b.get("psk");
    let sae_pw = b.get("sae_password");
    // A secret: quoted passphrase (as text) or 64 hex digits (passed through unchanged).
    let secret = |v: &str| -> std::result::Result<Secret, String> {
        if let Some(inner) = v.strip_prefix('"') {
            let end = inner.rfind('"').ok_or("unterminated quoted psk")?;
            let p = latin1_bytes(&inner[..end]);
            let p = String::from_utf8_lossy(&p);
            crate::log::add_secret(&p);
            if !(8..=63).contains(&p.len()) {
                return Err(format!(
                    "passphrase length {} is not 8 to 63 characters",
                    p.len()
                ));
            }
            Ok(Secret::new(p))
        } else if v.len() == 64 && v.bytes().all(|c| c.is_ascii_hexdigit()) {
            Ok(Secret::new(v))
        } else if v.starts_with("ext:") {
            Err("psk is kept outside the file (ext:)".into())
        } else {
            Err("psk is neither a quoted passphrase nor 64 hex digits".into())
        }
    };
    let wep = (0..4).any(|i| b.get(&format!("wep_key{i}")).is_some());
    n.security = if km.iter().any(|k| psk_like.contains(&k.as_str())) {
        // WPA-PSK alone or with SAE (transition mode): wpa-psk reaches both kinds of AP.
        match psk_raw.map(secret) {
            Some(Ok(psk)) => Security::WpaPsk { psk },
            Some(Err(why)) => Security::Unsupported(why),
            None if b.get("mem_only_psk").map(str::trim) == Some("1") => {
                Security::Unsupported("psk is only held in memory (mem_only_psk=1)".into())
            }
            None => Security::Unsupported("WPA-PSK without psk".into()),
        }
    } else if km.iter().any(|k| sae_like.contains(&k.as_str())) {
        let value = sae_pw.or(psk_raw);
        match value.map(secret) {
            // SAE derives its key from the password itself: a raw 64-hex PSK cannot be used.
            Some(Ok(_)) if !value.is_some_and(|v| v.starts_with('"')) => {
                Security::Unsupported("SAE with a raw hex psk instead of a passphrase".into())
            }
            Some(Ok(psk)) => Security::Sae { psk },
            Some(Err(why)) => Security::Unsupported(why),
            None => Security::Unsupported("SAE without sae_password or psk".into()),
        }
    } else if is_eap {
        Security::Unsupported(format!(
            "802.1X/EAP (enterprise, key_mgmt={})",
            km.join(" ")
        ))
    } else if has("NONE") {
        if wep {
            Security::Unsupported("WEP".into())
        } else {
            Security::Open
        }
    } else if km.is_empty() {
        // wpa_supplicant's default is "WPA-PSK WPA-EAP".
        match psk_raw.map(secret) {
            Some(Ok(psk)) => Security::WpaPsk { psk },
            Some(Err(why)) => Security::Unsupported(why),
            None if wep => Security::Unsupported("WEP".into()),
            None if b.get("eap").is_some() || b.get("identity").is_some() => {
                Security::Unsupported("802.1X/EAP (enterprise)".into())
            }
            None => Security::Unsupported(
                "no psk and no key_mgmt=NONE (default key_mgmt needs a psk or EAP)".into(),
            ),
        }
    } else {
        Security::Unsupported(format!("key_mgmt={}", km.join(" ")))
    };
    out.networks.push(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Parsed {
        parse(
            s.as_bytes(),
            Path::new("/etc/wpa_supplicant/wpa_supplicant.conf"),
        )
        .unwrap()
    }

    #[test]
    fn several_blocks_and_forms() {
        let r = p(r#"ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev
update_config=1
country=GB

network={
	ssid="Home # not a comment"
	psk="home-pass-1"   # trailing comment
	key_mgmt=WPA-PSK
	priority=5
}
network = {
    ssid=4869646465 6e
}
network={
	ssid=48696464656e
	scan_ssid=1
	psk=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
}
network={
	ssid=P"caf\xc3\xa9 \"q\""
	key_mgmt=NONE
}
network={
	ssid="wpa3"
	key_mgmt=SAE
	sae_password="sae-pass-123"
}
network={
	ssid="off"
	psk="disabled-pass"
	disabled=1
}
"#);
        let n = &r.networks;
        assert_eq!(n.len(), 5, "{n:?}");
        assert_eq!(n[0].ssid.as_deref(), Some(&b"Home # not a comment"[..]));
        assert_eq!(n[0].priority, Some(5));
        assert!(matches!(&n[0].security, Security::WpaPsk{psk} if psk.expose()=="home-pass-1"));
        // A hex value with a space is not understood: reported, not guessed.
        assert!(n[1].unmigratable().is_some());
        assert_eq!(n[2].ssid.as_deref(), Some(&b"Hidden"[..]));
        assert!(n[2].hidden);
        assert!(matches!(&n[2].security, Security::WpaPsk{psk} if psk.expose().len()==64));
        assert_eq!(n[3].ssid.as_deref(), Some("café \"q\"".as_bytes()));
        assert_eq!(n[3].security, Security::Open);
        assert!(matches!(&n[4].security, Security::Sae{psk} if psk.expose()=="sae-pass-123"));
        assert_eq!(r.skipped.len(), 1);
        assert!(r.skipped[0].1.contains("disabled=1"));
    }

    #[test]
    fn blobs_creds_and_globals_are_accepted() {
        let r = p(
            "ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\nupdate_config=1\n\
                   country=DE\np2p_disabled=1\n\
                   blob-base64-ca_cert={\nMIIBszCCAVmgAwIBAgIU\nAAAA==\n}\n\
                   cred={\n realm=\"example.com\"\n username=\"u\"\n password=\"pw\"\n}\n\
                   network={\n ssid=\"Lab\"\n psk=\"fixture-lab-psk\"\n}\n\
                   network={\n ssid=\"Corp\"\n key_mgmt=WPA-EAP\n ca_cert=\"blob://ca_cert\"\n}\n",
        );
        assert_eq!(r.networks.len(), 2);
        assert!(r.networks[1].unmigratable().unwrap().contains("EAP"));
        assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
        assert!(r.skipped[0].0.starts_with("blob ca_cert"));
        assert!(parse(b"blob-base64-x={\nAAAA\n", Path::new("/w")).is_err());
    }

    #[test]
    fn eap_and_wep_are_not_open() {
        let r = p("network={\nssid=\"corp\"\nkey_mgmt=WPA-EAP\neap=PEAP\nidentity=\"bob\"\npassword=\"pw\"\n}\nnetwork={\nssid=\"old\"\nkey_mgmt=NONE\nwep_key0=\"abcde\"\n}\nnetwork={\nssid=\"nokm\"\neap=TLS\n}\nnetwork={\nssid=\"short\"\npsk=\"short\"\n}\n");
        let why: Vec<String> = r
            .networks
            .iter()
            .map(|n| n.unmigratable().unwrap())
            .collect();
        assert!(why[0].contains("EAP"), "{why:?}");
        assert_eq!(why[1], "WEP");
        assert!(why[2].contains("EAP"));
        assert!(why[3].contains("length 5"));
        let r = p("network={\nssid=\"s\"\nkey_mgmt=SAE\npsk=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n}\n");
        assert!(r.networks[0].unmigratable().unwrap().contains("raw hex"));
    }

    #[test]
    fn quoted_ssid_keeps_any_byte() {
        let data = b"network={\nssid=\"caf\xc3\xa9 \xff\"\npsk=\"p\xc3\xa4ssw0rd!\"\n}\n";
        let r = parse(data, Path::new("/w.conf")).unwrap();
        assert_eq!(
            r.networks[0].ssid.as_deref(),
            Some(&b"caf\xc3\xa9 \xff"[..])
        );
        assert!(
            matches!(&r.networks[0].security, Security::WpaPsk{psk} if psk.expose()=="pässw0rd!")
        );
    }

    #[test]
    fn transition_mode_is_wpa_psk_and_crlf_ok() {
        let r = p(
            "network={\r\n ssid=\"t\"\r\n key_mgmt=WPA-PSK SAE\r\n psk=\"transition1\"\r\n}\r\n",
        );
        assert!(matches!(r.networks[0].security, Security::WpaPsk { .. }));
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse(b"network={\nssid=\"a\"\n", Path::new("/w.conf")).unwrap_err();
        assert!(e.to_string().contains("/w.conf:1"), "{e}");
        let e = parse(
            b"network={\nssid=\"a\"\nnetwork={\n}\n",
            Path::new("/w.conf"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("/w.conf:3"), "{e}");
        let e = parse(b"network={\nbogus line\n}\n", Path::new("/w.conf")).unwrap_err();
        assert!(e.to_string().contains("/w.conf:2"), "{e}");
        assert!(parse(b"}\n", Path::new("/w.conf")).is_err());
    }
}
