//! NetworkManager keyfiles (`/etc/NetworkManager/system-connections/*`) → typed [`Network`].
//!
//! Follows NetworkManager's keyfile reader where it matters for getting online:
//! - `[wifi]` or the legacy `[802-11-wireless]` group (same for `[wifi-security]` /
//!   `[802-11-wireless-security]`, `[ethernet]` / `[802-3-ethernet]`); `type=` may use either name.
//! - `ssid=` is read like NetworkManager's `get_bytes`: a value made only of digits, spaces and
//!   `;` that parses as a list of bytes (`72;111;109;101;`) is that byte list; otherwise the
//!   unescaped text, with `\;` meaning `;`. A value `0x4142` is text, as in NetworkManager
//!   (reading it as hex would migrate the wrong SSID for a network really called that).
//! - `key-mgmt`: `wpa-psk`, `sae` migrate (with their `psk`); no security group = open;
//!   `none` (static WEP), `ieee8021x`, `wpa-eap*`, `owe` and an `[802-1x]` group are reported
//!   as not migratable. A psk kept by a secret agent (`psk-flags=1`, not in the file) too.
//! - `[connection]`: `autoconnect` (a profile switched off stays off), `autoconnect-priority`,
//!   `interface-name` (kept for conflict detection only, never written).
//! - `[ipv4]`/`[ipv6]`: `method`, `address1..N`/`addresses1..N` (`addr/prefix[,gateway]`, also
//!   the legacy `addr;prefix;gateway;` and `addr/prefix;gateway` forms), `gateway`, `dns`,
//!   `dns-search`, `route1..N`/`routes1..N` (`dest/prefix[,next-hop[,metric]]`, legacy `;`
//!   separators too), `route-metric`, `never-default`, `ignore-auto-routes`, `ignore-auto-dns`,
//!   `may-fail`. An address, gateway, DNS server or route NetworkManager would reject is
//!   dropped with a note; the rest of the profile is kept.
//! - Dropped with a note: `mac-address`, `bssid`, `permissions`, `routeN_options`.
#![forbid(unsafe_code)]

use std::path::Path;

use super::keyfile::KeyFile;
use super::types::{
    parse_cidr, valid_ip, IpConfig, IpMethod, NetKind, Network, Route, Secret, Security, Source,
};
use crate::error::{Error, Result};

const WIFI: [&str; 2] = ["wifi", "802-11-wireless"];
const WIFI_SEC: [&str; 2] = ["wifi-security", "802-11-wireless-security"];
const ETHERNET: [&str; 2] = ["ethernet", "802-3-ethernet"];

/// First of the alias groups holding `key`.
fn get<'a>(kf: &'a KeyFile, groups: &[&str], key: &str) -> Option<(&'a str, String)> {
    for g in groups {
        if let Some(grp) = kf.group(g) {
            if kf.raw(g, key).is_some() {
                return kf.string(g, key).map(|v| (grp.name.as_str(), v));
            }
        }
    }
    None
}

fn get_str(kf: &KeyFile, groups: &[&str], key: &str) -> Option<String> {
    get(kf, groups, key).map(|(_, v)| v)
}

/// NetworkManager's `get_bytes` for `ssid` (see the module doc).
pub fn ssid_bytes(kf: &KeyFile, group: &str, key: &str) -> Option<Vec<u8>> {
    let s = kf.bytes(group, key)?;
    if s.is_empty() {
        return Some(s);
    }
    if s.iter()
        .all(|&c| c.is_ascii_whitespace() || c.is_ascii_digit() || c == b';')
    {
        if let Some(list) = int_list(&s) {
            return Some(list);
        }
    }
    // `\\;` in the file is `\;` after GLib unescaping; NetworkManager then drops the backslash.
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && s.get(i + 1) == Some(&b';') {
            i += 1;
        }
        out.push(s[i]);
        i += 1;
    }
    Some(out)
}

/// `72;111; 109 ;101;` → bytes; `None` unless every item is 1-3 digits ≤ 255 followed by `;`.
fn int_list(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == s.len() {
            break;
        }
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() && i - start < 3 {
            i += 1;
        }
        if i == start {
            return None;
        }
        let n: u32 = std::str::from_utf8(&s[start..i]).ok()?.parse().ok()?;
        out.push(u8::try_from(n).ok()?);
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        if s.get(i) != Some(&b';') {
            return None;
        }
        i += 1;
    }
    (!out.is_empty()).then_some(out)
}

/// Parses one keyfile. Errors only for input that is not a keyfile at all (syntax, no
/// `[connection]` group); a profile that cannot be migrated comes back with
/// `Security::Unsupported` or `NetKind::Other` and the reason.
pub fn parse(data: &[u8], origin: &Path) -> Result<Network> {
    let o = origin.display().to_string();
    let kf = KeyFile::parse(data, &o)?;
    from_keyfile(&kf, origin)
}

pub fn from_keyfile(kf: &KeyFile, origin: &Path) -> Result<Network> {
    let o = origin.display().to_string();
    if !kf.has_group("connection") {
        return Err(Error::new(
            "reading NetworkManager keyfile",
            &o,
            "no [connection] group",
        )
        .hint("a NetworkManager connection profile starts with a [connection] group"));
    }
    let file_name = origin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = kf
        .string("connection", "id")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| file_name.trim_end_matches(".nmconnection").to_string());
    let ctype = kf.string("connection", "type").unwrap_or_default();
    let kind = match ctype.trim() {
        "wifi" | "802-11-wireless" => NetKind::Wifi,
        "ethernet" | "802-3-ethernet" => NetKind::Ethernet,
        "" if WIFI.iter().any(|g| kf.has_group(g)) => NetKind::Wifi,
        "" if ETHERNET.iter().any(|g| kf.has_group(g)) => NetKind::Ethernet,
        _ => NetKind::Other,
    };
    let mut n = Network::new(name, kind, Source::NetworkManager, origin.to_path_buf());
    if kind == NetKind::Other {
        let t = if ctype.trim().is_empty() {
            "unknown".to_string()
        } else {
            ctype.trim().to_string()
        };
        n.security = Security::Unsupported(format!("connection type '{t}' is not migrated"));
        if t == "loopback" {
            n.interface = Some("lo".into());
        }
        return Ok(n);
    }

    if let Some(i) = kf
        .string("connection", "interface-name")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    {
        n.notes.push(format!(
            "interface-name={i} dropped (interface names differ under balenaOS)"
        ));
        n.interface = Some(i);
    }
    if kf
        .string("connection", "permissions")
        .is_some_and(|s| !s.trim().is_empty())
    {
        n.notes
            .push("permissions dropped (balenaOS profiles are system-wide)".into());
    }
    if kf.boolean("connection", "autoconnect") == Some(false) {
        n.autoconnect = false;
        n.notes
            .push("autoconnect=false kept: balenaOS will not bring it up by itself".into());
    }
    if let Some(p) = kf.string("connection", "autoconnect-priority") {
        n.priority = p.trim().parse::<i32>().ok();
    }

    match kind {
        NetKind::Wifi => wifi(kf, &mut n),
        NetKind::Ethernet => {
            if let Some(m) = get_str(kf, &ETHERNET, "mac-address").filter(|s| !s.is_empty()) {
                n.notes.push(format!(
                    "mac-address={m} dropped (MAC pinning does not carry over)"
                ));
            }
            if kf.has_group("802-1x") {
                n.security = Security::Unsupported("802.1X (wired enterprise) login".into());
            }
        }
        NetKind::Other => {}
    }

    for (v6, group) in [(false, "ipv4"), (true, "ipv6")] {
        match ip(kf, group, v6, &mut n.notes) {
            Ok(c) => {
                if v6 {
                    n.ipv6 = c
                } else {
                    n.ipv4 = c
                }
            }
            Err(why) => {
                if !matches!(n.security, Security::Unsupported(_)) {
                    n.security = Security::Unsupported(why);
                }
            }
        }
    }
    Ok(n)
}

fn wifi(kf: &KeyFile, n: &mut Network) {
    n.ssid = WIFI
        .iter()
        .find(|g| kf.raw(g, "ssid").is_some())
        .and_then(|g| ssid_bytes(kf, g, "ssid"));
    n.hidden = WIFI
        .iter()
        .find_map(|g| kf.boolean(g, "hidden"))
        .unwrap_or(false);
    if let Some(m) = get_str(kf, &WIFI, "mac-address").filter(|s| !s.is_empty()) {
        n.notes.push(format!(
            "mac-address={m} dropped (MAC pinning does not carry over)"
        ));
    }
    if let Some(b) = get_str(kf, &WIFI, "bssid").filter(|s| !s.is_empty()) {
        n.notes
            .push(format!("bssid={b} dropped (access point pinning)"));
    }
    let mode = get_str(kf, &WIFI, "mode").unwrap_or_default();
    let mode = mode.trim();
    if !mode.is_empty() && mode != "infrastructure" {
        n.security = Security::Unsupported(format!("wifi mode '{mode}' (not a client profile)"));
        return;
    }
    if kf.has_group("802-1x") {
        n.security = Security::Unsupported("802.1X/EAP (enterprise) login".into());
        return;
    }
    let has_sec = WIFI_SEC.iter().any(|g| kf.has_group(g));
    if !has_sec {
        n.security = Security::Open;
        return;
    }
    let km = get_str(kf, &WIFI_SEC, "key-mgmt")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let psk = get_str(kf, &WIFI_SEC, "psk").filter(|s| !s.is_empty());
    let flags = get_str(kf, &WIFI_SEC, "psk-flags")
        .and_then(|f| f.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let want_psk = |n: &mut Network, sae: bool| match &psk {
        Some(p) => {
            let psk = Secret::new(p.clone());
            n.security = if sae {
                Security::Sae { psk }
            } else {
                Security::WpaPsk { psk }
            };
        }
        None if flags & 1 != 0 => {
            n.security = Security::Unsupported(
                "the password is kept by a desktop secret agent (psk-flags=1), not in the file"
                    .into(),
            )
        }
        None => {
            n.security = Security::Unsupported(format!(
                "no psk in the file (psk-flags={flags}); the password is not stored"
            ))
        }
    };
    match km.as_str() {
        "wpa-psk" => want_psk(n, false),
        "sae" => want_psk(n, true),
        "none" => n.security = Security::Unsupported("WEP (key-mgmt=none)".into()),
        "ieee8021x" => {
            n.security = Security::Unsupported("dynamic WEP / 802.1X (key-mgmt=ieee8021x)".into())
        }
        "wpa-eap" | "wpa-eap-suite-b-192" => {
            n.security = Security::Unsupported(format!("802.1X/EAP (enterprise, key-mgmt={km})"))
        }
        "owe" => {
            n.security = Security::Unsupported("OWE enhanced open (key-mgmt=owe)".into());
        }
        "" => n.security = Security::Unsupported("security group without key-mgmt".into()),
        other => n.security = Security::Unsupported(format!("key-mgmt={other}")),
    }
}

/// Numbered keys `prefix`, `prefix1`, `prefix2`... of a group in numeric order.
fn numbered<'a>(keys: &[&'a str], prefix: &str) -> Vec<&'a str> {
    let mut v: Vec<(u32, &str)> = keys
        .iter()
        .filter_map(|k| {
            let rest = k.strip_prefix(prefix)?;
            if rest.is_empty() {
                Some((0, *k))
            } else {
                rest.parse::<u32>().ok().map(|n| (n, *k))
            }
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, k)| k).collect()
}

/// One address value: `addr/prefix[,gateway]`, `addr;prefix;gateway;` or `addr/prefix;gateway`.
fn address_value(v: &str) -> (String, Option<String>) {
    let v = v.trim().trim_end_matches(';');
    if !v.contains('/') && v.contains(';') {
        let mut it = v.split(';');
        let a = it.next().unwrap_or("");
        let p = it.next().unwrap_or("");
        let g = it.next();
        return (format!("{a}/{p}"), g.map(str::to_string));
    }
    match v.split_once([',', ';']) {
        Some((a, g)) => (a.to_string(), Some(g.to_string())),
        None => (v.to_string(), None),
    }
}

/// One route value: `dest/prefix[,next-hop[,metric]]`, also the legacy `;`-separated forms
/// `dest/prefix;next-hop;metric` and `dest;prefix;next-hop;metric`.
fn route_value(v: &str, v6: bool) -> std::result::Result<Route, String> {
    let v = v.trim().trim_end_matches(';');
    let sep = if v.contains(',') { ',' } else { ';' };
    let mut parts: Vec<String> = v.split(sep).map(|p| p.trim().to_string()).collect();
    if sep == ';' && !parts[0].contains('/') && parts.len() > 1 {
        let prefix = parts.remove(1);
        parts[0] = format!("{}/{prefix}", parts[0]);
    }
    let bad = |what: &str| format!("invalid {what} in route '{v}'");
    let dest = parse_cidr(&parts[0], v6).ok_or_else(|| bad("destination"))?;
    let any = |g: &str| g.is_empty() || g == "0.0.0.0" || g == "::";
    let via = match parts.get(1) {
        Some(g) if !any(g) => {
            if !valid_ip(g, v6) {
                return Err(bad("next hop"));
            }
            Some(g.clone())
        }
        _ => None,
    };
    let metric = match parts.get(2).filter(|m| !m.is_empty()) {
        Some(m) => Some(m.parse::<u32>().map_err(|_| bad("metric"))?),
        None => None,
    };
    Ok(Route { dest, via, metric })
}

fn ip(
    kf: &KeyFile,
    group: &str,
    v6: bool,
    notes: &mut Vec<String>,
) -> std::result::Result<IpConfig, String> {
    let mut c = IpConfig::default();
    if !kf.has_group(group) {
        return Ok(c);
    }
    let fam = if v6 { "IPv6" } else { "IPv4" };
    let method = kf.string(group, "method").unwrap_or_default();
    c.method = match method.trim() {
        "" | "auto" => IpMethod::Auto,
        "manual" => IpMethod::Manual,
        "disabled" | "ignore" => IpMethod::Disabled,
        "link-local" => IpMethod::LinkLocal,
        other => IpMethod::Other(other.to_string()),
    };
    let keys = kf.keys(group);
    let mut addr_keys = numbered(&keys, "address");
    addr_keys.extend(numbered(&keys, "addresses"));
    for k in addr_keys {
        let v = kf.string(group, k).unwrap_or_default();
        if v.trim().trim_end_matches(';').is_empty() {
            continue;
        }
        let (addr, gw) = address_value(&v);
        let mut why = Vec::new();
        if !c.add_address(&addr, v6, &mut why) {
            notes.push(format!(
                "{fam} {k}: address '{addr}' dropped (NetworkManager would reject it)"
            ));
            continue;
        }
        if let Some(g) = gw.map(|g| g.trim().to_string()).filter(|g| !g.is_empty()) {
            if !valid_ip(&g, v6) {
                notes.push(format!(
                    "{fam} {k}: gateway '{g}' dropped (not a valid address)"
                ));
            } else if c.gateway.is_none() {
                c.gateway = Some(g);
            }
        }
    }
    if let Some(g) = kf
        .string(group, "gateway")
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
    {
        c.set_gateway(&g, v6, notes);
    }
    for d in kf.list(group, "dns", b';').unwrap_or_default() {
        c.add_dns(&d, v6, notes);
    }
    c.dns_search = kf.list(group, "dns-search", b';').unwrap_or_default();
    let mut route_keys = numbered(&keys, "route");
    route_keys.extend(numbered(&keys, "routes"));
    for k in route_keys {
        let v = kf.string(group, k).unwrap_or_default();
        if v.trim().is_empty() {
            continue;
        }
        match route_value(&v, v6) {
            Ok(r) => c.routes.push(r),
            Err(why) => notes.push(format!("{fam} {k} dropped: {why}")),
        }
    }
    if keys
        .iter()
        .any(|k| k.starts_with("route") && k.ends_with("_options"))
    {
        notes.push(format!("{fam} route options (routeN_options) not migrated"));
    }
    if let Some(m) = kf.string(group, "route-metric") {
        match m.trim().parse::<i64>() {
            Ok(m) if m >= 0 => c.route_metric = u32::try_from(m).ok(),
            Ok(_) => {}
            Err(_) => notes.push(format!("{fam} route-metric '{}' dropped", m.trim())),
        }
    }
    c.never_default = kf.boolean(group, "never-default") == Some(true);
    c.ignore_auto_routes = kf.boolean(group, "ignore-auto-routes") == Some(true);
    c.ignore_auto_dns = kf.boolean(group, "ignore-auto-dns") == Some(true);
    c.may_fail = kf.boolean(group, "may-fail");
    if c.method == IpMethod::Manual && c.addresses.is_empty() {
        return Err(format!("{fam} method=manual without any valid address"));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn p(data: &str) -> Network {
        parse(data.as_bytes(), &PathBuf::from("/t/x.nmconnection")).unwrap()
    }

    #[test]
    fn wifi_psk_text_ssid() {
        let n = p("[connection]\nid=Home\ntype=wifi\ninterface-name=wlan0\n\n[wifi]\nmode=infrastructure\nssid=My Home\n\n[wifi-security]\nkey-mgmt=wpa-psk\npsk=nm-secret-123\n\n[ipv4]\nmethod=auto\n");
        assert_eq!(n.name, "Home");
        assert_eq!(n.kind, NetKind::Wifi);
        assert_eq!(n.ssid.as_deref(), Some(&b"My Home"[..]));
        match &n.security {
            Security::WpaPsk { psk } => assert_eq!(psk.expose(), "nm-secret-123"),
            s => panic!("{s:?}"),
        }
        assert!(n.notes.iter().any(|x| x.contains("interface-name=wlan0")));
        assert!(n.unmigratable().is_none());
    }

    #[test]
    fn legacy_groups_int_list_and_sae() {
        let n = p("[connection]\nid=x\ntype=802-11-wireless\n[802-11-wireless]\nssid=72;105;33;\nhidden=true\n[802-11-wireless-security]\nkey-mgmt=sae\npsk=wpa3-secret-x\n");
        assert_eq!(n.ssid.as_deref(), Some(&b"Hi!"[..]));
        assert!(n.hidden);
        assert!(matches!(n.security, Security::Sae { .. }));
    }

    #[test]
    fn ssid_forms_like_networkmanager() {
        let kf = |v: &str| KeyFile::parse(format!("[wifi]\nssid={v}\n").as_bytes(), "t").unwrap();
        let s = |v: &str| ssid_bytes(&kf(v), "wifi", "ssid").unwrap();
        assert_eq!(s("12\\\\;34\\\\;"), b"12;34;");
        assert_eq!(s("a\\;b"), b"a;b");
        assert_eq!(s("123"), b"123");
        assert_eq!(s("0x4142"), b"0x4142");
        assert_eq!(s(" 1 ; 2;"), &[1, 2]);
        assert_eq!(s("256;"), b"256;");
        assert_eq!(s("\\sspace"), b" space");
    }

    #[test]
    fn unsupported_cases_say_why() {
        let eap = p("[connection]\nid=corp\ntype=wifi\n[wifi]\nssid=Corp\n[wifi-security]\nkey-mgmt=wpa-eap\n[802-1x]\neap=peap;\nidentity=bob\npassword=pw\n");
        assert!(eap.unmigratable().unwrap().contains("EAP"), "{eap:?}");
        let agent = p("[connection]\nid=a\ntype=wifi\n[wifi]\nssid=A\n[wifi-security]\nkey-mgmt=wpa-psk\npsk-flags=1\n");
        assert!(agent.unmigratable().unwrap().contains("secret agent"));
        let wep = p("[connection]\nid=w\ntype=wifi\n[wifi]\nssid=W\n[wifi-security]\nkey-mgmt=none\nwep-key0=abcde\n");
        assert!(wep.unmigratable().unwrap().contains("WEP"));
        let vpn = p("[connection]\nid=v\ntype=vpn\n[vpn]\nservice-type=x\n");
        assert_eq!(vpn.kind, NetKind::Other);
        assert!(vpn.unmigratable().unwrap().contains("vpn"));
        let ap = p("[connection]\nid=h\ntype=wifi\n[wifi]\nssid=H\nmode=ap\n");
        assert!(ap.unmigratable().unwrap().contains("mode 'ap'"));
        let nossid = p("[connection]\nid=n\ntype=wifi\n[wifi]\nmode=infrastructure\n");
        assert_eq!(nossid.unmigratable().unwrap(), "no SSID");
        assert!(parse(b"[wifi]\nssid=x\n", Path::new("f")).is_err());
    }

    #[test]
    fn ethernet_static() {
        let n = p("[connection]\nid=Wired static\ntype=ethernet\n[ethernet]\nmac-address=B8:27:EB:00:11:22\n[ipv4]\nmethod=manual\naddress1=192.168.10.20/24,192.168.10.1\naddress2=10.1.1.1/8\ndns=192.168.10.1;8.8.8.8;\ndns-search=lan;\nroute1=10.2.0.0/16,10.1.1.254\n[ipv6]\nmethod=manual\naddresses1=2001:db8::20/64\ngateway=2001:db8::1\n");
        assert_eq!(n.kind, NetKind::Ethernet);
        assert_eq!(n.ipv4.method, IpMethod::Manual);
        assert_eq!(n.ipv4.addresses, vec!["192.168.10.20/24", "10.1.1.1/8"]);
        assert_eq!(n.ipv4.gateway.as_deref(), Some("192.168.10.1"));
        assert_eq!(n.ipv4.dns, vec!["192.168.10.1", "8.8.8.8"]);
        assert_eq!(n.ipv4.dns_search, vec!["lan"]);
        assert_eq!(n.ipv6.addresses, vec!["2001:db8::20/64"]);
        assert_eq!(n.ipv6.gateway.as_deref(), Some("2001:db8::1"));
        assert!(n.notes.iter().any(|x| x.contains("mac-address")));
        assert_eq!(n.ipv4.routes.len(), 1);
        assert_eq!(n.ipv4.routes[0].via.as_deref(), Some("10.1.1.254"));
        let old = p("[connection]\nid=o\ntype=802-3-ethernet\n[ipv4]\nmethod=manual\naddresses1=192.168.0.5;24;192.168.0.1;\n");
        assert_eq!(old.ipv4.addresses, vec!["192.168.0.5/24"]);
        assert_eq!(old.ipv4.gateway.as_deref(), Some("192.168.0.1"));
        let bad =
            p("[connection]\nid=b\ntype=ethernet\n[ipv4]\nmethod=manual\naddress1=300.1.1.1/24\n");
        assert!(bad
            .unmigratable()
            .unwrap()
            .contains("without any valid address"));
    }
}
