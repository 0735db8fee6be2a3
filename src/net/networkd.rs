//! systemd-networkd `.network` files and iwd's known networks → typed [`Network`]s.
//!
//! networkd: `*.network` of `/etc/systemd/network` and `/run/systemd/network` (the
//! administrator's; a name in `/etc` hides the same name in `/run`; the vendor defaults of
//! `/usr/lib/systemd/network` only ask for DHCP, which balenaOS does anyway). Syntax as
//! systemd.syntax(7): `[Section]` headers that may repeat (every `[Route]` is one route), keys
//! that may repeat (`Address=`, `DNS=` add up), `#`/`;` comments. Read: `[Match] Name=` (one
//! name without wildcards = the interface; wildcards = any interface of that kind),
//! `Type=wlan`/`WLANInterfaceType=`/`SSID=` (wireless), `[Network] DHCP=`, `Address=`,
//! `Gateway=`, `DNS=`, `Domains=`, `Bond=`/`Bridge=`/`VLAN=` (reported), `[Address] Address=`,
//! `[Route] Destination=`/`Gateway=`/`Metric=`, `[DHCPv4]`/`[DHCP]` `RouteMetric=`, `UseDNS=`,
//! `UseRoutes=`. For one interface the first file in name order wins, as in networkd. A
//! wireless `.network` gives the IP settings of the wifi networks (the credentials live with
//! wpa_supplicant or iwd).
//!
//! iwd: `/var/lib/iwd/<name>.psk|.open|.8021x`. The SSID is the file name when it is made of
//! letters, digits, ` `, `_`, `-`; otherwise the name is `=` and the SSID in hex.
//! `[Security] Passphrase=` (else `PreSharedKey=`, 64 hex digits), `[Settings] Hidden=`,
//! `AutoConnect=`, `[IPv4] Address=`/`Netmask=`/`Gateway=`/`DNS=` (iwd's own network
//! configuration). `.8021x` (EAP) and `.wep` files are reported.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use super::keyfile::KeyFile;
use super::types::{is_v6, IpConfig, IpMethod, NetKind, Network, Secret, Security, Source};
use crate::probe::Root;

pub const NETWORKD_DIRS: [&str; 2] = ["/etc/systemd/network", "/run/systemd/network"];
pub const IWD_DIR: &str = "/var/lib/iwd";

type Section = (String, Vec<(String, String)>);

fn ini(text: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(l) = line.strip_suffix('\\') {
            pending.push_str(l);
            pending.push(' ');
            continue;
        }
        let line = format!("{pending}{line}");
        pending.clear();
        if line.starts_with('[') && line.ends_with(']') {
            out.push((line[1..line.len() - 1].to_string(), Vec::new()));
        } else if let (Some((k, v)), Some(sec)) = (line.split_once('='), out.last_mut()) {
            sec.1.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn all<'a>(secs: &'a [Section], sec: &str, key: &str) -> Vec<&'a str> {
    secs.iter()
        .filter(|(n, _)| n == sec)
        .flat_map(|(_, kv)| kv.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()))
        .collect()
}

fn last<'a>(secs: &'a [Section], sec: &str, key: &str) -> Option<&'a str> {
    all(secs, sec, key).last().copied()
}

fn yes(v: Option<&str>) -> Option<bool> {
    match v?.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" => Some(true),
        "no" | "false" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// What one `.network` file describes.
#[derive(Debug, Clone)]
pub struct NetworkFile {
    pub path: PathBuf,
    /// The interface when `Name=` names exactly one without wildcards.
    pub iface: Option<String>,
    pub names: Vec<String>,
    pub wireless: bool,
    pub ssids: Vec<Vec<u8>>,
    pub ipv4: IpConfig,
    pub ipv6: IpConfig,
    pub unsupported: Option<String>,
    pub notes: Vec<String>,
}

pub fn parse_network(text: &str, path: &Path) -> NetworkFile {
    let s = ini(text);
    let mut notes = Vec::new();
    let names: Vec<String> = all(&s, "Match", "Name")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(str::to_string)
        .collect();
    let iface = match names.as_slice() {
        [one] if !one.contains(['*', '?', '[', '!']) => Some(one.clone()),
        _ => None,
    };
    let ssids: Vec<Vec<u8>> = all(&s, "Match", "SSID")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(|v| v.as_bytes().to_vec())
        .collect();
    let wireless = !ssids.is_empty()
        || last(&s, "Match", "Type") == Some("wlan")
        || last(&s, "Match", "WLANInterfaceType").is_some()
        || names.iter().any(|n| n.starts_with("wl"));
    let mut v4 = IpConfig::default();
    let mut v6 = IpConfig::default();
    let mut addrs: Vec<&str> = all(&s, "Network", "Address");
    addrs.extend(all(&s, "Address", "Address"));
    for a in addrs {
        if is_v6(a) {
            v6.add_address(a, true, &mut notes);
        } else {
            v4.add_address(a, false, &mut notes);
        }
    }
    let dhcp = last(&s, "Network", "DHCP")
        .unwrap_or("no")
        .to_ascii_lowercase();
    let (d4, d6) = match dhcp.as_str() {
        "yes" | "true" | "both" => (true, true),
        "ipv4" => (true, false),
        "ipv6" => (false, true),
        _ => (false, false),
    };
    v4.method = if d4 {
        IpMethod::Auto
    } else if v4.addresses.is_empty() {
        IpMethod::Disabled
    } else {
        IpMethod::Manual
    };
    v6.method = if !d6 && !v6.addresses.is_empty() {
        IpMethod::Manual
    } else {
        IpMethod::Auto
    };
    for g in all(&s, "Network", "Gateway") {
        if is_v6(g) {
            v6.set_gateway(g, true, &mut notes);
        } else {
            v4.set_gateway(g, false, &mut notes);
        }
    }
    for d in all(&s, "Network", "DNS")
        .iter()
        .flat_map(|v| v.split_whitespace())
    {
        // `DNS=1.1.1.1#cloudflare-dns.com` and `DNS=[::1]:53`: the address only.
        let d = d.split('#').next().unwrap_or(d).trim_start_matches('[');
        let d = d.split(']').next().unwrap_or(d);
        if is_v6(d) {
            v6.add_dns(d, true, &mut notes);
        } else {
            v4.add_dns(d, false, &mut notes);
        }
    }
    v4.dns_search = all(&s, "Network", "Domains")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(|d| d.trim_start_matches('~').to_string())
        .filter(|d| !d.is_empty() && d != ".")
        .collect();
    apply_routes(&s, &mut v4, &mut v6, &mut notes);
    apply_dhcp_settings(&s, &mut v4);
    let unsupported = unsupported_membership(&s);
    NetworkFile {
        path: path.to_path_buf(),
        iface,
        names,
        wireless,
        ssids,
        ipv4: v4,
        ipv6: v6,
        unsupported,
        notes,
    }
}

/// `[Route]` sections: a default route sets the gateway (and its metric), others become
/// routes; policy routing (Table=, Type=) is noted and left out.
fn apply_routes(s: &[Section], v4: &mut IpConfig, v6: &mut IpConfig, notes: &mut Vec<String>) {
    for (name, kv) in s.iter().filter(|(n, _)| n == "Route") {
        let get = |k: &str| {
            kv.iter()
                .rev()
                .find(|(x, _)| x == k)
                .map(|(_, v)| v.as_str())
        };
        let dest = get("Destination").unwrap_or("");
        let gw = get("Gateway");
        let metric = get("Metric").and_then(|m| m.parse::<u32>().ok());
        let six = is_v6(dest) || gw.is_some_and(is_v6);
        let ip = if six { &mut *v6 } else { &mut *v4 };
        if get("Table").is_some() || get("Type").is_some_and(|t| t != "unicast") {
            notes.push(format!(
                "[{name}] to {dest}: table/type (policy routing) not migrated"
            ));
            continue;
        }
        if dest.is_empty() || matches!(dest, "0.0.0.0/0" | "::/0") {
            if let Some(g) = gw.filter(|g| !g.starts_with('_')) {
                ip.set_gateway(g, six, notes);
                if metric.is_some() {
                    ip.route_metric = metric;
                }
            }
            continue;
        }
        match super::types::parse_cidr(dest, six) {
            Some(d) => ip.routes.push(super::types::Route {
                dest: d,
                via: gw
                    .filter(|g| super::types::valid_ip(g, six))
                    .map(str::to_string),
                metric,
            }),
            None => notes.push(format!("[Route] Destination={dest} dropped")),
        }
    }
}

/// `[DHCPv4]` (and the older `[DHCP]`) settings that have a NetworkManager counterpart.
fn apply_dhcp_settings(s: &[Section], v4: &mut IpConfig) {
    for sec in ["DHCPv4", "DHCP"] {
        if let Some(m) = last(s, sec, "RouteMetric").and_then(|m| m.parse().ok()) {
            v4.route_metric = Some(m);
        }
        if yes(last(s, sec, "UseDNS")) == Some(false) {
            v4.ignore_auto_dns = true;
        }
        if yes(last(s, sec, "UseRoutes")) == Some(false) {
            v4.ignore_auto_routes = true;
        }
    }
}

/// Why a file that makes its interface a bond, bridge, VLAN or MACVLAN member is not migrated.
fn unsupported_membership(s: &[Section]) -> Option<String> {
    let mut unsupported = None;
    for (key, what) in [
        ("Bond", "bond"),
        ("Bridge", "bridge"),
        ("VLAN", "VLAN"),
        ("MACVLAN", "MACVLAN"),
    ] {
        if let Some(v) = last(s, "Network", key) {
            let why = if key == "VLAN" {
                format!("carries {what} {v}: VLANs are not migrated")
            } else {
                format!("member of {what} {v}: {what}s are not migrated")
            };
            unsupported = Some(why);
        }
    }
    unsupported
}

/// The `.network` files networkd reads, in its order (by name; `/etc` hides `/run`).
pub fn network_files(root: &Root) -> Vec<PathBuf> {
    let mut by_name: std::collections::BTreeMap<String, PathBuf> = Default::default();
    for d in NETWORKD_DIRS.iter().rev() {
        for n in root.list(d) {
            if n.ends_with(".network") && root.path(Path::new(d).join(&n)).is_file() {
                by_name.insert(n.clone(), Path::new(d).join(n));
            }
        }
    }
    by_name.into_values().collect()
}

/// Virtual devices (`.netdev`) are reported by name.
pub fn netdevs(root: &Root) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for d in NETWORKD_DIRS {
        for n in root.list(d) {
            if n.ends_with(".netdev") {
                let p = Path::new(d).join(&n);
                let text = root.read_string(&p).unwrap_or_default();
                let s = ini(&text);
                let kind = last(&s, "NetDev", "Kind").unwrap_or("virtual").to_string();
                let name = last(&s, "NetDev", "Name").unwrap_or(&n).to_string();
                out.push((p, format!("{name}: {kind} device")));
            }
        }
    }
    out
}

/// The SSID an iwd file name stands for.
pub fn iwd_ssid(stem: &str) -> Option<Vec<u8>> {
    if let Some(hex) = stem.strip_prefix('=') {
        if hex.len() % 2 != 0 || hex.is_empty() {
            return None;
        }
        return (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
    }
    let ok = !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'_' || b == b'-');
    ok.then(|| stem.as_bytes().to_vec())
}

/// One iwd known-network file.
pub fn parse_iwd(data: &[u8], path: &Path) -> Option<Network> {
    let file = path.file_name()?.to_string_lossy().into_owned();
    let (stem, ext) = file.rsplit_once('.')?;
    if !matches!(ext, "psk" | "open" | "8021x" | "wep") {
        return None;
    }
    let mut n = Network::new(stem, NetKind::Wifi, Source::Iwd, path.to_path_buf());
    n.ssid = iwd_ssid(stem);
    if let Some(s) = &n.ssid {
        n.name = super::types::display_bytes(s);
    }
    for line in String::from_utf8_lossy(data).lines() {
        if let Some((k, v)) = line.split_once('=') {
            if matches!(
                k.trim(),
                "Passphrase" | "PreSharedKey" | "Password" | "EAP-Password"
            ) {
                crate::log::add_secret(v.trim());
            }
        }
    }
    let kf = match KeyFile::parse(data, &path.display().to_string()) {
        Ok(k) => k,
        Err(e) => {
            n.security = Security::Unsupported(e.message());
            return Some(n);
        }
    };
    n.hidden = kf.boolean("Settings", "Hidden").unwrap_or(false);
    n.autoconnect = kf.boolean("Settings", "AutoConnect").unwrap_or(true);
    n.security = match ext {
        "open" => Security::Open,
        "8021x" => Security::Unsupported("802.1X/EAP (enterprise, .8021x)".into()),
        "wep" => Security::Unsupported("WEP".into()),
        _ => match (
            kf.string("Security", "Passphrase"),
            kf.string("Security", "PreSharedKey"),
        ) {
            (Some(p), _) if (8..=63).contains(&p.len()) => Security::WpaPsk {
                psk: Secret::new(p),
            },
            (_, Some(k)) if k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Security::WpaPsk {
                    psk: Secret::new(k),
                }
            }
            _ => Security::Unsupported("no usable Passphrase or PreSharedKey".into()),
        },
    };
    if let Some(a) = kf.string("IPv4", "Address") {
        let mask = kf.string("IPv4", "Netmask");
        let cidr = match mask.as_deref().and_then(super::types::netmask_prefix) {
            Some(p) if !a.contains('/') => format!("{}/{p}", a.trim()),
            _ => a.trim().to_string(),
        };
        if n.ipv4.add_address(&cidr, false, &mut n.notes) {
            n.ipv4.method = IpMethod::Manual;
        }
        if let Some(g) = kf.string("IPv4", "Gateway") {
            n.ipv4.set_gateway(&g, false, &mut n.notes);
        }
    }
    if let Some(d) = kf.string("IPv4", "DNS") {
        for x in d.split_whitespace() {
            n.ipv4.add_dns(x, false, &mut n.notes);
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_sections_and_keys() {
        let f = parse_network(
            "[Match]\nName=enp2s0\n\n[Network]\nAddress=192.168.5.9/24\nAddress=fd05::9/64\n\
             Gateway=192.168.5.1\nDNS=192.168.5.1 1.1.1.1#one.one.one.one\nDomains=~corp example.net\n\n\
             [Route]\nDestination=10.5.0.0/16\nGateway=192.168.5.254\nMetric=30\n\n\
             [Route]\nDestination=10.6.0.0/16\nGateway=192.168.5.253\n",
            Path::new("/etc/systemd/network/10-lan.network"),
        );
        assert_eq!(f.iface.as_deref(), Some("enp2s0"));
        assert_eq!(f.ipv4.method, IpMethod::Manual);
        assert_eq!(f.ipv4.dns, vec!["192.168.5.1", "1.1.1.1"]);
        assert_eq!(f.ipv4.dns_search, vec!["corp", "example.net"]);
        assert_eq!(f.ipv4.routes.len(), 2);
        assert_eq!(f.ipv6.addresses, vec!["fd05::9/64"]);
        let g = parse_network("[Match]\nName=en*\n[Network]\nDHCP=yes\n", Path::new("/x"));
        assert!(g.iface.is_none() && g.ipv4.is_auto());
    }

    #[test]
    fn iwd_names() {
        assert_eq!(iwd_ssid("My Net").unwrap(), b"My Net");
        assert_eq!(iwd_ssid("=4361666520c3a9").unwrap(), "Cafe é".as_bytes());
        assert!(iwd_ssid("bad.name").is_none());
    }
}
