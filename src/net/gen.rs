//! NetworkManager keyfiles for balenaOS, one per migratable network.
//!
//! - File names: `wifi-<ssid>` / `ethernet-<name>`, lower case `[a-z0-9_-]` only (the boot
//!   partition is FAT: case-insensitive, no `"*/:<>?\|`), at most 40 characters of label. A
//!   6-hex-digit hash suffix is added when the label had non-ASCII bytes or nothing usable, and
//!   to every member of a group whose names would collide. Names depend only on the set of
//!   networks, never on the order they were found in, so re-runs give the same names.
//! - `uuid`: derived from the file name (RFC 9562 version 8 layout), stable across runs.
//! - `ssid`: ASCII-printable SSIDs as text (`;` written as `\\;`, spaces at either end as `\s`,
//!   backslashes doubled, exactly as NetworkManager's own writer does); any other byte makes it
//!   a decimal byte list `72;195;169;`, which NetworkManager reads back byte for byte.
//! - Security: `wpa-psk` (WPA/WPA2, also WPA2/WPA3 transition), `sae` (WPA3), or none (open).
//! - IPv4/IPv6: method, addresses (`addressN=addr/prefix[,gateway]`), DNS, search domains.
//! - Never written: mac-address, bssid, permissions (the notes say so); `interface-name` only
//!   when several wired profiles are migrated (each stays on its own port).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use super::keyfile::{escape, Writer};
use super::types::{IpConfig, IpMethod, NetKind, Network, Security};
use crate::error::{Error, Result};

/// FNV-1a 64 with a seed (not cryptographic: names and uuids only need to be stable).
fn fnv(seed: u64, data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64 finaliser: spreads the last bytes over every bit.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A stable uuid for a profile file name: 8-4-4-4-12 hex, version 8, RFC variant.
pub fn uuid_for(name: &str) -> String {
    let key = format!("takeover/system-connections/{name}");
    let a = fnv(0x7461_6b65, key.as_bytes());
    let b = fnv(0x6f76_6572, key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Longest label (after the `wifi-`/`ethernet-` prefix) before the hash suffix.
const LABEL_MAX: usize = 40;

/// The label of a network for its file name and whether it lost information on the way.
fn label(n: &Network) -> (String, bool) {
    let src: &[u8] = match (n.kind, &n.ssid) {
        (NetKind::Wifi, Some(s)) => s,
        _ => n.name.as_bytes(),
    };
    let mut out = String::new();
    let mut non_ascii = false;
    for &b in src {
        let c = b.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == b'_' {
            out.push(char::from(c));
        } else {
            if !b.is_ascii() || b.is_ascii_control() {
                non_ascii = true;
            }
            if !out.ends_with('-') {
                out.push('-');
            }
        }
    }
    let mut out = out.trim_matches('-').to_string();
    if out.len() > LABEL_MAX {
        out.truncate(LABEL_MAX);
        out = out.trim_end_matches('-').to_string();
    }
    let empty = out.is_empty();
    if empty {
        out = "net".into();
    }
    (out, non_ascii || empty)
}

fn prefix(n: &Network) -> &'static str {
    match n.kind {
        NetKind::Wifi => "wifi",
        NetKind::Ethernet => "ethernet",
        NetKind::Other => "other",
    }
}

fn identity(n: &Network) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(prefix(n).as_bytes());
    v.push(0);
    v.extend_from_slice(n.ssid.as_deref().unwrap_or_default());
    v.push(0);
    v.extend_from_slice(n.name.as_bytes());
    v.push(0);
    v.extend_from_slice(n.source.as_str().as_bytes());
    v.push(0);
    v.extend_from_slice(n.origin.to_string_lossy().as_bytes());
    v
}

/// Unique, stable file names for `nets` (same order as `nets`). `taken` are names already used
/// in the same directory (compared case-insensitively, as on FAT).
pub fn file_names(nets: &[&Network], taken: &[String]) -> Vec<String> {
    let bases: Vec<(String, bool)> = nets
        .iter()
        .map(|n| {
            let (l, lossy) = label(n);
            (format!("{}-{l}", prefix(n)), lossy)
        })
        .collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (b, _) in &bases {
        *count.entry(b.as_str()).or_default() += 1;
    }
    let taken_lc: Vec<String> = taken.iter().map(|t| t.to_ascii_lowercase()).collect();
    let mut names: Vec<String> = nets
        .iter()
        .zip(&bases)
        .map(|(n, (b, lossy))| {
            let clash =
                count.get(b.as_str()).copied().unwrap_or(0) > 1 || taken_lc.iter().any(|t| t == b);
            if *lossy || clash {
                format!("{b}-{:06x}", fnv(0, &identity(n)) & 0xff_ffff)
            } else {
                b.clone()
            }
        })
        .collect();
    // Identical networks (same identity) still collide: number them in a stable order.
    let mut seen: BTreeMap<String, usize> = taken_lc.iter().map(|t| (t.clone(), 1)).collect();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| names[a].cmp(&names[b]).then(a.cmp(&b)));
    for i in order {
        let k = names[i].clone();
        let e = seen.entry(k.clone()).or_insert(0);
        *e += 1;
        if *e > 1 {
            let mut j = *e;
            loop {
                let candidate = format!("{k}-{j}");
                if !seen.contains_key(&candidate) {
                    seen.insert(candidate.clone(), 1);
                    names[i] = candidate;
                    break;
                }
                j += 1;
            }
        }
    }
    names
}

/// The `ssid=` value as NetworkManager's keyfile writer would produce it.
pub fn ssid_value(ssid: &[u8]) -> String {
    if ssid.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        // Only ASCII: the bytes are valid UTF-8.
        let s = String::from_utf8_lossy(ssid).replace(';', "\\;");
        escape(&s)
    } else {
        let mut out = String::with_capacity(ssid.len() * 4);
        for b in ssid {
            out.push_str(&b.to_string());
            out.push(';');
        }
        out
    }
}

fn list_value(items: &[String]) -> String {
    let mut s = String::new();
    for i in items {
        s.push_str(&escape(i).replace(';', "\\;"));
        s.push(';');
    }
    s
}

fn ip_section(w: &mut Writer, group: &str, c: &IpConfig, v6: bool) {
    w.group(group);
    if v6 && c.method == IpMethod::Auto {
        w.set("addr-gen-mode", "stable-privacy");
    }
    w.set("method", c.method.nm_name(v6));
    if c.method == IpMethod::Manual {
        for (i, a) in c.addresses.iter().enumerate() {
            let v = match (&c.gateway, i) {
                (Some(g), 0) => format!("{a},{g}"),
                _ => a.clone(),
            };
            w.set(&format!("address{}", i + 1), &v);
        }
    }
    if !c.dns.is_empty() {
        w.set_raw("dns", &list_value(&c.dns));
    }
    if !c.dns_search.is_empty() {
        w.set_raw("dns-search", &list_value(&c.dns_search));
    }
    for (i, r) in c.routes.iter().enumerate() {
        // NetworkManager's own form: dest/prefix[,next-hop[,metric]], an unset next hop
        // written as the any-address when a metric follows.
        let any = if v6 { "::" } else { "0.0.0.0" };
        let v = match (&r.via, r.metric) {
            (None, None) => r.dest.clone(),
            (Some(g), None) => format!("{},{g}", r.dest),
            (g, Some(m)) => format!("{},{},{m}", r.dest, g.as_deref().unwrap_or(any)),
        };
        w.set(&format!("route{}", i + 1), &v);
    }
    if let Some(m) = c.route_metric {
        w.set("route-metric", &m.to_string());
    }
    if c.never_default {
        w.set("never-default", "true");
    }
    if c.ignore_auto_routes {
        w.set("ignore-auto-routes", "true");
    }
    if c.ignore_auto_dns {
        w.set("ignore-auto-dns", "true");
    }
    if let Some(m) = c.may_fail {
        w.set("may-fail", if m { "true" } else { "false" });
    }
}

/// The keyfile for `n` under `file_name`. Errors when `n` cannot be migrated.
pub fn keyfile(n: &Network, file_name: &str) -> Result<String> {
    if let Some(why) = n.unmigratable() {
        return Err(Error::new(
            "generating NetworkManager profile",
            &n.name,
            format!("not migratable: {why}"),
        ));
    }
    let mut w = Writer::new();
    w.comment(&format!(
        "Migrated by takeover from {} profile '{}' ({})",
        n.source.as_str(),
        n.name,
        n.origin.display()
    ));
    w.group("connection");
    w.set("id", file_name);
    w.set("uuid", &uuid_for(file_name));
    w.set(
        "type",
        match n.kind {
            NetKind::Wifi => "wifi",
            _ => "ethernet",
        },
    );
    w.set("autoconnect", if n.autoconnect { "true" } else { "false" });
    if let Some(p) = n.priority {
        w.set("autoconnect-priority", &p.clamp(-999, 999).to_string());
    }
    if let Some(i) = n.interface.as_deref().filter(|_| n.bind_interface) {
        w.set("interface-name", i);
    }
    match n.kind {
        NetKind::Wifi => {
            w.group("wifi");
            w.set("mode", "infrastructure");
            // unmigratable() checked that a wifi network has an SSID.
            w.set_raw("ssid", &ssid_value(n.ssid.as_deref().unwrap_or_default()));
            if n.hidden {
                w.set("hidden", "true");
            }
            match &n.security {
                Security::WpaPsk { psk } => {
                    w.group("wifi-security");
                    w.set("key-mgmt", "wpa-psk");
                    w.set("psk", psk.expose());
                }
                Security::Sae { psk } => {
                    w.group("wifi-security");
                    w.set("key-mgmt", "sae");
                    w.set("psk", psk.expose());
                }
                Security::Open | Security::Unsupported(_) => {}
            }
        }
        _ => {
            w.group("ethernet");
        }
    }
    ip_section(&mut w, "ipv4", &n.ipv4, false);
    ip_section(&mut w, "ipv6", &n.ipv6, true);
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::types::{Secret, Source};
    use std::path::PathBuf;

    fn wifi(ssid: &[u8], psk: Option<&str>) -> Network {
        let mut n = Network::new(
            String::from_utf8_lossy(ssid),
            NetKind::Wifi,
            Source::WpaSupplicant,
            PathBuf::from("/etc/wpa_supplicant/wpa_supplicant.conf"),
        );
        n.ssid = Some(ssid.to_vec());
        if let Some(p) = psk {
            n.security = Security::WpaPsk {
                psk: Secret::new(p),
            };
        }
        n
    }

    #[test]
    fn uuid_format_and_stability() {
        let u = uuid_for("wifi-home");
        assert_eq!(u, uuid_for("wifi-home"));
        assert_ne!(u, uuid_for("wifi-home2"));
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(u.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(&parts[2][..1], "8");
    }

    #[test]
    fn names_are_readable_unique_and_order_independent() {
        let a = wifi(b"My Home", None);
        let b = wifi(b"my-home", None);
        let c = wifi("Café".as_bytes(), None);
        let d = wifi(b"Office", None);
        let e = wifi(b"\xff\xfe", None);
        let n1 = file_names(&[&a, &b, &c, &d, &e], &[]);
        let n2 = file_names(&[&e, &d, &c, &b, &a], &[]);
        assert_eq!(n1[3], "wifi-office");
        assert!(n1[0].starts_with("wifi-my-home-") && n1[1].starts_with("wifi-my-home-"));
        assert_ne!(n1[0], n1[1]);
        assert!(n1[2].starts_with("wifi-caf-") && n1[2].len() == "wifi-caf-".len() + 6);
        assert!(n1[4].starts_with("wifi-net-"));
        let mut s1 = n1.clone();
        s1.sort();
        let mut s2 = n2.clone();
        s2.sort();
        assert_eq!(s1, s2);
        // Exact duplicates still get distinct names; taken names are avoided.
        let n = file_names(&[&d, &d], &["WIFI-OFFICE".into()]);
        assert_ne!(n[0], n[1]);
        assert!(n.iter().all(|x| x != "wifi-office"));
    }

    #[test]
    fn ssid_values_follow_networkmanager() {
        assert_eq!(ssid_value(b"My Home"), "My Home");
        assert_eq!(ssid_value(b" a;b "), "\\sa\\\\;b\\s");
        assert_eq!(ssid_value(b"back\\slash"), "back\\\\slash");
        assert_eq!(ssid_value("é".as_bytes()), "195;169;");
    }

    #[test]
    fn refuses_unmigratable() {
        let mut n = wifi(b"corp", None);
        n.security = Security::Unsupported("802.1X/EAP".into());
        assert!(keyfile(&n, "wifi-corp").is_err());
    }
}
