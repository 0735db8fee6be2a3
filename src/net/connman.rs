//! connman → typed [`Network`]s, from two kinds of key files:
//!
//! - service settings `/var/lib/connman/<service>/settings`, where `<service>` is the service
//!   identifier, e.g. `wifi_b827eb012345_486f6d65_managed_psk` (type, MAC, SSID in hex, mode,
//!   security) or `ethernet_b827eb012345_cable`. Keys: `Name`, `SSID` (hex, wins over `Name`),
//!   `Passphrase`, `Hidden`, `IPv4.method` (`dhcp`/`manual`/`off`), `IPv4.local_address`,
//!   `IPv4.netmask_prefixlen`, `IPv4.gateway`, the same for `IPv6.` (`prefix_length`),
//!   `Nameservers`, `Domains`;
//! - provisioning files `/var/lib/connman/*.config` with `[service_*]` groups: `Type`, `Name`,
//!   `SSID` (hex), `Passphrase`, `Security` (`psk`/`none`/`wep`/`ieee8021x`), `Hidden`,
//!   `IPv4 = addr/netmask/gateway | dhcp | off`, `IPv6 = addr/prefix/gateway | auto | off`,
//!   `Nameservers` (`,`-separated), `SearchDomains`, `MAC` (dropped with a note).
//!
//! Both are GLib key files, so names with spaces and any passphrase are read whole.
#![forbid(unsafe_code)]

use std::path::Path;

use super::keyfile::KeyFile;
use super::types::{
    display_bytes, parse_cidr, valid_ip, IpConfig, IpMethod, NetKind, Network, Secret, Security,
    Source,
};
use crate::error::{Error, Result};
use crate::formats::hex;

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.trim())
}

/// A connman passphrase: 8..63 characters, or 64 hex digits.
fn passphrase(p: &str) -> std::result::Result<Secret, String> {
    let ok =
        (8..=63).contains(&p.len()) || (p.len() == 64 && p.bytes().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(Secret::new(p))
    } else {
        // Register it anyway: it is still a password, whatever its length.
        crate::log::add_secret(p);
        Err(format!(
            "passphrase length {} is not 8 to 63 characters or 64 hex digits",
            p.len()
        ))
    }
}

fn security_from(sec: &str, pass: Option<String>) -> Security {
    match sec {
        "psk" | "wpa" | "rsn" | "sae" => match pass {
            Some(p) => match passphrase(&p) {
                Ok(psk) => Security::WpaPsk { psk },
                Err(why) => Security::Unsupported(why),
            },
            None => Security::Unsupported("no Passphrase stored".into()),
        },
        "none" | "" => Security::Open,
        "wep" => Security::Unsupported("WEP".into()),
        "ieee8021x" => Security::Unsupported("802.1X/EAP (enterprise)".into()),
        other => Security::Unsupported(format!("security '{other}'")),
    }
}

/// Parses `<service>/settings`; `service` is the directory name.
/// Completes one family's settings with the service's DNS servers (and, for IPv4, its search
/// domains) and puts them on the network.
fn set_ip(n: &mut Network, mut c: IpConfig, v6: bool, dns: &[String], search: &[String]) {
    c.dns = dns.iter().filter(|d| valid_ip(d, v6)).cloned().collect();
    if !v6 {
        c.dns_search = search.to_vec();
    }
    if v6 {
        n.ipv6 = c;
    } else {
        n.ipv4 = c;
    }
}

pub fn parse_settings(data: &[u8], origin: &Path, service: &str) -> Result<Network> {
    let o = origin.display().to_string();
    let kf = KeyFile::parse(data, &o)?;
    let group = if kf.has_group(service) {
        service.to_string()
    } else {
        match kf.groups.first() {
            Some(g) => g.name.clone(),
            None => {
                return Err(Error::new(
                    "reading connman settings",
                    &o,
                    "no [service] group in the file",
                ))
            }
        }
    };
    let g = group.as_str();
    let parts: Vec<&str> = group.split('_').collect();
    let kind = match parts.first().copied() {
        Some("wifi") => NetKind::Wifi,
        Some("ethernet") => NetKind::Ethernet,
        _ => NetKind::Other,
    };
    let name = kf
        .string(g, "Name")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| group.clone());
    let mut n = Network::new(name, kind, Source::Connman, origin.to_path_buf());
    match kind {
        NetKind::Wifi => {
            // wifi_<mac>_<ssid hex | hidden>_<mode>_<security>
            let ssid = kf
                .string(g, "SSID")
                .and_then(|s| hex_decode(&s))
                .or_else(|| parts.get(2).and_then(|s| hex_decode(s)))
                .or_else(|| kf.bytes(g, "Name").filter(|b| !b.is_empty()));
            n.ssid = ssid;
            if let Some(s) = &n.ssid {
                n.name = display_bytes(s);
            }
            n.hidden = kf.boolean(g, "Hidden").unwrap_or(false) || parts.get(2) == Some(&"hidden");
            let mode = parts.get(3).copied().unwrap_or("managed");
            let sec = parts.get(4).copied().unwrap_or("");
            if mode != "managed" {
                n.security = Security::Unsupported(format!("wifi mode '{mode}'"));
            } else {
                n.security = security_from(sec, kf.string(g, "Passphrase"));
            }
        }
        NetKind::Ethernet => {
            n.notes
                .push("bound to the old interface's MAC by connman; migrated unbound".into());
        }
        NetKind::Other => {
            n.security = Security::Unsupported(format!(
                "connman service '{}' is not wifi or ethernet",
                parts.first().copied().unwrap_or("")
            ));
            return Ok(n);
        }
    }
    let dns = kf.list(g, "Nameservers", b';').unwrap_or_default();
    let search = kf.list(g, "Domains", b';').unwrap_or_default();
    for (v6, pre, plen) in [
        (false, "IPv4.", "netmask_prefixlen"),
        (true, "IPv6.", "prefix_length"),
    ] {
        let get = |k: &str| {
            kf.string(g, &format!("{pre}{k}"))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let mut c = IpConfig {
            method: match get("method").as_deref() {
                None | Some("dhcp") | Some("auto") => IpMethod::Auto,
                Some("manual") | Some("fixed") => IpMethod::Manual,
                Some("off") => IpMethod::Disabled,
                Some(other) => IpMethod::Other(other.to_string()),
            },
            ..IpConfig::default()
        };
        if c.method == IpMethod::Manual {
            let addr = get("local_address").unwrap_or_default();
            let prefix = get(plen).unwrap_or_else(|| if v6 { "64" } else { "24" }.into());
            match parse_cidr(&format!("{addr}/{prefix}"), v6) {
                Some(a) => c.addresses.push(a),
                None => {
                    n.security = Security::Unsupported(format!(
                        "invalid {pre}local_address '{addr}/{prefix}'"
                    ));
                }
            }
            c.gateway = get("gateway").filter(|gw| valid_ip(gw, v6));
        }
        set_ip(&mut n, c, v6, &dns, &search);
    }
    Ok(n)
}

/// Parses a provisioning `*.config` file: one network per `[service_*]` group.
pub fn parse_config(data: &[u8], origin: &Path) -> Result<Vec<Network>> {
    let o = origin.display().to_string();
    let kf = KeyFile::parse(data, &o)?;
    let mut out = Vec::new();
    for grp in &kf.groups {
        let g = grp.name.as_str();
        if !g.starts_with("service_") {
            continue;
        }
        let ty = kf
            .string(g, "Type")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let kind = match ty.as_str() {
            "wifi" => NetKind::Wifi,
            "ethernet" => NetKind::Ethernet,
            _ => NetKind::Other,
        };
        let label = kf
            .string(g, "Name")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| g.trim_start_matches("service_").to_string());
        let mut n = Network::new(label, kind, Source::Connman, origin.to_path_buf());
        n.notes.push(format!("[{g}] in {o}"));
        if let Some(mac) = kf.string(g, "MAC").filter(|s| !s.is_empty()) {
            n.notes.push(format!(
                "MAC={mac} dropped (MAC pinning does not carry over)"
            ));
        }
        match kind {
            NetKind::Other => {
                n.security = Security::Unsupported(format!("service type '{ty}'"));
                out.push(n);
                continue;
            }
            NetKind::Wifi => {
                n.ssid = match kf.string(g, "SSID").filter(|s| !s.trim().is_empty()) {
                    Some(h) => match hex_decode(&h) {
                        Some(b) => Some(b),
                        None => {
                            n.security = Security::Unsupported(format!("SSID '{h}' is not hex"));
                            None
                        }
                    },
                    None => kf.bytes(g, "Name").filter(|b| !b.is_empty()),
                };
                if let Some(s) = &n.ssid {
                    n.name = display_bytes(s);
                }
                n.hidden = kf.boolean(g, "Hidden").unwrap_or(false);
                let pass = kf.string(g, "Passphrase").filter(|s| !s.is_empty());
                if kf.has_group(g) && kf.raw(g, "EAP").is_some() {
                    n.security = Security::Unsupported("802.1X/EAP (enterprise)".into());
                } else if !matches!(n.security, Security::Unsupported(_)) {
                    let sec = kf
                        .string(g, "Security")
                        .map(|s| s.trim().to_ascii_lowercase())
                        .unwrap_or_else(|| if pass.is_some() { "psk" } else { "none" }.into());
                    n.security = security_from(&sec, pass);
                }
            }
            NetKind::Ethernet => {}
        }
        // connman's lists: `a,b` or `a;b`.
        let list = |key: &str| -> Vec<String> {
            kf.string(g, key)
                .map(|s| {
                    s.split([',', ';'])
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let dns = list("Nameservers");
        let search = list("SearchDomains");
        for v6 in [false, true] {
            let key = if v6 { "IPv6" } else { "IPv4" };
            let val = kf.string(g, key).unwrap_or_default().trim().to_string();
            let mut c = IpConfig::default();
            match val.to_ascii_lowercase().as_str() {
                "" | "dhcp" | "auto" => {}
                "off" => c.method = IpMethod::Disabled,
                _ => {
                    let mut it = val.split('/');
                    let addr = it.next().unwrap_or("");
                    let mask = it.next().unwrap_or(if v6 { "64" } else { "24" });
                    let gw = it.next();
                    match parse_cidr(&format!("{addr}/{mask}"), v6) {
                        Some(a) => {
                            c.method = IpMethod::Manual;
                            c.addresses.push(a);
                        }
                        None => {
                            n.security =
                                Security::Unsupported(format!("invalid {key} value '{val}'"));
                        }
                    }
                    if let Some(gw) = gw.map(str::trim).filter(|g| !g.is_empty()) {
                        if valid_ip(gw, v6) {
                            c.gateway = Some(gw.to_string());
                        } else {
                            n.security =
                                Security::Unsupported(format!("invalid {key} gateway '{gw}'"));
                        }
                    }
                }
            }
            set_ip(&mut n, c, v6, &dns, &search);
        }
        out.push(n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_wifi_with_space_and_static() {
        let data = b"[wifi_b827eb012345_4d7920486f6d65_managed_psk]\nName=My Home\nSSID=4d7920486f6d65\nFavorite=true\nAutoConnect=true\nPassphrase=connman pass 1\nIPv4.method=manual\nIPv4.netmask_prefixlen=24\nIPv4.local_address=192.168.1.50\nIPv4.gateway=192.168.1.1\nIPv6.method=auto\nNameservers=1.1.1.1;2606:4700::1111;\n";
        let n = parse_settings(
            data,
            Path::new("/var/lib/connman/x/settings"),
            "wifi_b827eb012345_4d7920486f6d65_managed_psk",
        )
        .unwrap();
        assert_eq!(n.ssid.as_deref(), Some(&b"My Home"[..]));
        assert!(matches!(&n.security, Security::WpaPsk{psk} if psk.expose()=="connman pass 1"));
        assert_eq!(n.ipv4.addresses, vec!["192.168.1.50/24"]);
        assert_eq!(n.ipv4.gateway.as_deref(), Some("192.168.1.1"));
        assert_eq!(n.ipv4.dns, vec!["1.1.1.1"]);
        assert_eq!(n.ipv6.dns, vec!["2606:4700::1111"]);
        assert!(n.ipv6.method == IpMethod::Auto);
    }

    #[test]
    fn settings_open_hidden_and_ieee8021x() {
        let n = parse_settings(
            b"[wifi_00_hidden_managed_none]\nName=Cafe\n",
            Path::new("s"),
            "wifi_00_hidden_managed_none",
        )
        .unwrap();
        assert!(n.hidden);
        assert_eq!(n.ssid.as_deref(), Some(&b"Cafe"[..]));
        assert_eq!(n.security, Security::Open);
        let e = parse_settings(
            b"[wifi_00_436f7270_managed_ieee8021x]\nName=Corp\n",
            Path::new("s"),
            "wifi_00_436f7270_managed_ieee8021x",
        )
        .unwrap();
        assert!(e.unmigratable().unwrap().contains("EAP"));
    }

    #[test]
    fn provisioning_config() {
        let data = b"[global]\nName = Example\n\n[service_home]\nType = wifi\nName = Home Sweet Home\nPassphrase = p@ss; word\nMAC = 01:02:03:04:05:06\n\n[service_hex]\nType=wifi\nSSID=ff00fe\nSecurity=psk\nPassphrase=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nHidden=true\nIPv4=10.0.0.9/255.255.255.0/10.0.0.1\nIPv6=off\nNameservers=10.0.0.1,8.8.8.8\n\n[service_eth]\nType=ethernet\nIPv4=192.168.5.5/24/192.168.5.1\n\n[service_corp]\nType=wifi\nName=Corp\nEAP=peap\n";
        let v = parse_config(data, Path::new("/var/lib/connman/a.config")).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].ssid.as_deref(), Some(&b"Home Sweet Home"[..]));
        assert!(matches!(&v[0].security, Security::WpaPsk{psk} if psk.expose()=="p@ss; word"));
        assert!(v[0].notes.iter().any(|n| n.contains("MAC")));
        assert_eq!(v[1].ssid.as_deref(), Some(&[0xff, 0x00, 0xfe][..]));
        assert!(v[1].hidden);
        assert_eq!(v[1].ipv4.addresses, vec!["10.0.0.9/24"]);
        assert_eq!(v[1].ipv4.dns, vec!["10.0.0.1", "8.8.8.8"]);
        assert_eq!(v[1].ipv6.method, IpMethod::Disabled);
        assert_eq!(v[2].kind, NetKind::Ethernet);
        assert_eq!(v[2].ipv4.gateway.as_deref(), Some("192.168.5.1"));
        assert!(v[3].unmigratable().unwrap().contains("EAP"));
    }
}
