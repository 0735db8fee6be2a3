//! netplan (Ubuntu, also Ubuntu on Raspberry Pi): `*.yaml` of `/lib/netplan`, `/etc/netplan`
//! and `/run/netplan` → typed [`Network`]s.
//!
//! Files as netplan reads them: a file of `/run/netplan` hides the file of the same name in
//! `/etc/netplan` and `/lib/netplan`, one of `/etc/netplan` hides `/lib/netplan`'s; the
//! remaining files are read in the order of their names and merged: mappings key by key,
//! lists (addresses, routes, name servers) appended, other values replaced by the later file.
//!
//! `network:` → `ethernets` and `wifis`: the interface is `set-name`, else `match: name`
//! (without wildcards), else the id. `dhcp4`, `dhcp6`, `addresses` (text or `ADDR: {…}`
//! mappings), `gateway4`/`gateway6`, `routes` (`to`, `via`, `metric`; `to: default` or
//! `0.0.0.0/0`/`::/0` gives the gateway), `nameservers` (`addresses`, `search`),
//! `dhcp4-overrides`/`dhcp6-overrides` (`use-dns`, `use-routes`, `route-metric`),
//! `activation-mode: manual|off` (autoconnect off). Each wifi `access-points` entry is one
//! network with the interface's IP settings: `password` (WPA-PSK), `hidden`, `auth`
//! (`key-management: none|psk|sae|eap|802.1x`, `password`), `mode` (only `infrastructure`).
//! `bonds`, `bridges`, `vlans`, `tunnels`, `vrfs`, `modems`, `wireguard` and `nm-devices` are
//! reported by id. With no `dhcp4` and no IPv4 address, netplan leaves IPv4 off; so do we.
//!
//! YAML is read with takeover's own reader ([`crate::backup::yaml`], the subset netplan files
//! use: block and flow collections, quoted and plain scalars), not serde_yaml (binary size).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use crate::backup::yaml::Value;

use super::types::{is_v6, IpConfig, IpMethod, NetKind, Network, Secret, Security, Source};
use crate::probe::Root;

pub const DIRS: [&str; 3] = ["/lib/netplan", "/etc/netplan", "/run/netplan"];

/// The files netplan reads, in merge order (by name, `/run` over `/etc` over `/lib`).
pub fn files(root: &Root) -> Vec<PathBuf> {
    let mut by_name: std::collections::BTreeMap<String, PathBuf> = Default::default();
    for d in DIRS {
        for n in root.list(d) {
            if n.ends_with(".yaml") && root.path(Path::new(d).join(&n)).is_file() {
                by_name.insert(n.clone(), Path::new(d).join(n));
            }
        }
    }
    by_name.into_values().collect()
}

/// Merges `b` into `a` the way netplan amends a definition with a later file.
fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Mapping(am), Value::Mapping(bm)) => {
            for (k, v) in bm {
                match am.iter_mut().find(|(ak, _)| *ak == k) {
                    Some((_, av)) => merge(av, v),
                    None => am.push((k, v)),
                }
            }
        }
        (Value::Sequence(aseq), Value::Sequence(bseq)) => {
            for v in bseq {
                if !aseq.contains(&v) {
                    aseq.push(v);
                }
            }
        }
        (a, b) => *a = b,
    }
}

/// The merged document of every file; unreadable or invalid files are listed with why.
pub fn load(root: &Root) -> (Value, Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut doc = Value::Mapping(Vec::new());
    let mut read = Vec::new();
    let mut bad = Vec::new();
    for f in files(root) {
        let text = match root.read_string(&f) {
            Ok(t) => t,
            Err(e) => {
                bad.push((f, format!("not readable: {e}")));
                continue;
            }
        };
        register_passwords(&text);
        match crate::backup::yaml::parse(&text) {
            Ok(Value::Null) => read.push(f),
            Ok(v @ Value::Mapping(_)) => {
                merge(&mut doc, v);
                read.push(f);
            }
            Ok(_) => bad.push((f, "not a YAML mapping".into())),
            Err(e) => bad.push((f, format!("invalid YAML: {e}"))),
        }
    }
    (doc, read, bad)
}

/// Registers every `password:` value with the log redaction before anything else happens.
fn register_passwords(text: &str) {
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().trim_start_matches('-').trim() == "password" {
                let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
                if !v.is_empty() {
                    crate::log::add_secret(v);
                }
            }
        }
    }
}

fn get<'a>(m: &'a Value, k: &str) -> Option<&'a Value> {
    crate::backup::yaml::get(m.as_mapping()?, k)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" => Some(true),
            "false" | "no" | "off" | "n" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s
            .iter()
            .filter_map(|x| match x {
                // `- 10.0.0.2/24: {lifetime: 0}`
                Value::Mapping(m) => m.first().and_then(|(k, _)| text(k)),
                other => text(other),
            })
            .collect(),
        Some(v) => text(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// IP settings of one ethernets/wifis definition.
fn ip_settings(d: &Value, notes: &mut Vec<String>) -> (IpConfig, IpConfig) {
    let mut v4 = IpConfig::default();
    let mut v6 = IpConfig::default();
    for a in list(get(d, "addresses")) {
        if is_v6(&a) {
            v6.add_address(&a, true, notes);
        } else {
            v4.add_address(&a, false, notes);
        }
    }
    let dhcp4 = boolean(get(d, "dhcp4")).unwrap_or(false);
    let dhcp6 = boolean(get(d, "dhcp6")).unwrap_or(false);
    v4.method = if dhcp4 {
        IpMethod::Auto
    } else if !v4.addresses.is_empty() {
        IpMethod::Manual
    } else {
        IpMethod::Disabled
    };
    v6.method = if !dhcp6 && !v6.addresses.is_empty() {
        IpMethod::Manual
    } else {
        IpMethod::Auto
    };
    if dhcp4 && !v4.addresses.is_empty() {
        notes.push(
            "dhcp4 with static addresses: DHCP kept, the static IPv4 addresses are not".into(),
        );
    }
    if let Some(g) = get(d, "gateway4").and_then(text) {
        v4.set_gateway(&g, false, notes);
    }
    if let Some(g) = get(d, "gateway6").and_then(text) {
        v6.set_gateway(&g, true, notes);
    }
    if let Some(Value::Sequence(routes)) = get(d, "routes") {
        for r in routes {
            let to = get(r, "to").and_then(text).unwrap_or_default();
            let via = get(r, "via").and_then(text);
            let metric = get(r, "metric")
                .and_then(text)
                .and_then(|m| m.parse::<u32>().ok());
            let six = is_v6(&to) || via.as_deref().is_some_and(is_v6);
            let ip = if six { &mut v6 } else { &mut v4 };
            if get(r, "table").is_some() || get(r, "type").is_some() {
                notes.push(format!(
                    "route to {to}: table/type (policy routing) not migrated"
                ));
                continue;
            }
            if matches!(to.as_str(), "default" | "0.0.0.0/0" | "::/0") {
                match via {
                    Some(g) => {
                        ip.set_gateway(&g, six, notes);
                        if metric.is_some() {
                            ip.route_metric = metric;
                        }
                    }
                    None => notes.push("default route without via not migrated".into()),
                }
                continue;
            }
            let Some(dest) = super::types::parse_cidr(&to, six) else {
                notes.push(format!("route to '{to}' dropped: not a valid destination"));
                continue;
            };
            let via = match via {
                Some(g) if super::types::valid_ip(&g, six) => Some(g),
                Some(g) => {
                    notes.push(format!("route to {to}: next hop '{g}' dropped"));
                    continue;
                }
                None => None,
            };
            ip.routes.push(super::types::Route { dest, via, metric });
        }
    }
    if let Some(ns) = get(d, "nameservers") {
        for a in list(get(ns, "addresses")) {
            if is_v6(&a) {
                v6.add_dns(&a, true, notes);
            } else {
                v4.add_dns(&a, false, notes);
            }
        }
        v4.dns_search = list(get(ns, "search"));
    }
    for (key, ip) in [("dhcp4-overrides", &mut v4), ("dhcp6-overrides", &mut v6)] {
        if let Some(o) = get(d, key) {
            if boolean(get(o, "use-dns")) == Some(false) {
                ip.ignore_auto_dns = true;
            }
            if boolean(get(o, "use-routes")) == Some(false) {
                ip.ignore_auto_routes = true;
            }
            if let Some(m) = get(o, "route-metric")
                .and_then(text)
                .and_then(|m| m.parse().ok())
            {
                ip.route_metric = Some(m);
            }
        }
    }
    (v4, v6)
}

fn iface_name(id: &str, d: &Value) -> String {
    if let Some(n) = get(d, "set-name").and_then(text) {
        return n;
    }
    if let Some(n) = get(d, "match")
        .and_then(|m| get(m, "name"))
        .and_then(text)
        .filter(|n| !n.contains(['*', '?', '[']))
    {
        return n;
    }
    id.to_string()
}

/// What the merged document describes: networks (some unmigratable, with why).
pub fn networks(doc: &Value, origin: &Path) -> Vec<Network> {
    let mut out = Vec::new();
    let Some(net) = get(doc, "network") else {
        return out;
    };
    for kind in ["ethernets", "wifis"] {
        let Some(Value::Mapping(defs)) = get(net, kind) else {
            continue;
        };
        for (id, d) in defs {
            let id = text(id).unwrap_or_default();
            let ifname = iface_name(&id, d);
            let mut notes = Vec::new();
            let (v4, v6) = ip_settings(d, &mut notes);
            let manual = get(d, "activation-mode")
                .and_then(text)
                .is_some_and(|m| m == "manual" || m == "off");
            if get(d, "match").and_then(|m| get(m, "macaddress")).is_some() {
                notes.push("match: macaddress dropped (MAC pinning does not carry over)".into());
            }
            let base = |name: String, k: NetKind| {
                let mut n = Network::new(name, k, Source::Netplan, origin.to_path_buf());
                n.interface = Some(ifname.clone());
                n.ipv4 = v4.clone();
                n.ipv6 = v6.clone();
                n.autoconnect = !manual;
                n.notes = notes.clone();
                n.notes.push(format!("netplan {kind}.{id}"));
                n
            };
            if kind == "ethernets" {
                out.push(base(ifname.clone(), NetKind::Ethernet));
                continue;
            }
            let Some(Value::Mapping(aps)) = get(d, "access-points") else {
                let mut n = base(ifname.clone(), NetKind::Wifi);
                n.security = Security::Unsupported("wifi without access-points".into());
                out.push(n);
                continue;
            };
            for (ssid, ap) in aps {
                let ssid = text(ssid).unwrap_or_default();
                let mut n = base(ssid.clone(), NetKind::Wifi);
                n.ssid = Some(ssid.into_bytes());
                n.hidden = boolean(get(ap, "hidden")).unwrap_or(false);
                if let Some(m) = get(ap, "mode")
                    .and_then(text)
                    .filter(|m| m != "infrastructure")
                {
                    n.security = Security::Unsupported(format!("wifi mode '{m}' (not a client)"));
                    out.push(n);
                    continue;
                }
                let auth = get(ap, "auth");
                let km = auth
                    .and_then(|a| get(a, "key-management"))
                    .and_then(text)
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let pw = get(ap, "password")
                    .and_then(text)
                    .or_else(|| auth.and_then(|a| get(a, "password")).and_then(text));
                n.security = match (km.as_str(), pw) {
                    ("eap" | "802.1x" | "eap-sha256" | "eap-suite-b-192", _) => {
                        Security::Unsupported(format!(
                            "802.1X/EAP (enterprise, key-management {km})"
                        ))
                    }
                    ("none", _) | ("", None) => Security::Open,
                    (_, None) => {
                        Security::Unsupported(format!("key-management {km} without a password"))
                    }
                    (k, Some(p)) => {
                        let hex = p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit());
                        if !hex && !(8..=63).contains(&p.len()) {
                            crate::log::add_secret(&p);
                            Security::Unsupported(format!(
                                "password length {} is not 8 to 63 characters or 64 hex digits",
                                p.len()
                            ))
                        } else if k == "sae" && !hex {
                            Security::Sae {
                                psk: Secret::new(p),
                            }
                        } else {
                            Security::WpaPsk {
                                psk: Secret::new(p),
                            }
                        }
                    }
                };
                out.push(n);
            }
        }
    }
    for (kind, what) in [
        ("bonds", "bond"),
        ("bridges", "bridge"),
        ("vlans", "VLAN"),
        ("tunnels", "tunnel"),
        ("vrfs", "VRF"),
        ("modems", "modem"),
        ("wireguard", "WireGuard tunnel"),
        ("nm-devices", "NetworkManager passthrough device"),
        ("dummy-devices", "dummy device"),
        ("virtual-ethernets", "veth pair"),
    ] {
        if let Some(Value::Mapping(defs)) = get(net, kind) {
            for (id, _) in defs {
                let id = text(id).unwrap_or_default();
                let mut n =
                    Network::new(id.clone(), NetKind::Other, Source::Netplan, origin.into());
                n.interface = Some(id.clone());
                n.security = Security::Unsupported(format!("{what} ({kind}.{id}): not migrated"));
                out.push(n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Value {
        crate::backup::yaml::parse(s).unwrap()
    }

    #[test]
    fn merge_appends_lists_and_replaces_scalars() {
        let mut a = doc("network:\n  ethernets:\n    eth0:\n      dhcp4: true\n      addresses: [10.0.0.2/24]\n");
        merge(
            &mut a,
            doc("network:\n  ethernets:\n    eth0:\n      dhcp4: false\n      addresses: [10.0.0.3/24]\n"),
        );
        let n = networks(&a, Path::new("/etc/netplan/x.yaml"));
        assert_eq!(n[0].ipv4.method, IpMethod::Manual);
        assert_eq!(n[0].ipv4.addresses, vec!["10.0.0.2/24", "10.0.0.3/24"]);
    }

    #[test]
    fn routes_gateway_and_overrides() {
        let d = doc(
            "network:\n  version: 2\n  ethernets:\n    lan:\n      match: {name: enp3s0}\n      \
             addresses:\n        - 192.168.9.4/24\n        - \"2001:db8:9::4/64\": {lifetime: 0}\n      \
             routes:\n        - to: default\n          via: 192.168.9.1\n          metric: 90\n        \
             - to: 10.9.0.0/16\n          via: 192.168.9.254\n      \
             nameservers: {addresses: [192.168.9.1, \"2001:db8:9::1\"], search: [lan9]}\n    \
             wan:\n      dhcp4: yes\n      dhcp4-overrides: {use-dns: false, route-metric: 200}\n",
        );
        let n = networks(&d, Path::new("/etc/netplan/01.yaml"));
        let lan = &n[0];
        assert_eq!(lan.interface.as_deref(), Some("enp3s0"));
        assert_eq!(lan.ipv4.gateway.as_deref(), Some("192.168.9.1"));
        assert_eq!(lan.ipv4.route_metric, Some(90));
        assert_eq!(lan.ipv4.routes.len(), 1);
        assert_eq!(lan.ipv6.addresses, vec!["2001:db8:9::4/64"]);
        assert_eq!(lan.ipv6.dns, vec!["2001:db8:9::1"]);
        assert_eq!(lan.ipv4.dns_search, vec!["lan9"]);
        let wan = &n[1];
        assert!(wan.ipv4.ignore_auto_dns);
        assert_eq!(wan.ipv4.route_metric, Some(200));
    }
}
