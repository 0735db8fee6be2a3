//! The typed network every parser produces and the generator consumes.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

/// A wifi passphrase or raw 64-hex PSK. Registered with the logger's redaction the moment it is
/// created; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        let s = s.into();
        crate::log::add_secret(&s);
        Secret(s)
    }

    /// The secret itself: only for writing it into a keyfile.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetKind {
    Wifi,
    Ethernet,
    Other,
}

impl NetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NetKind::Wifi => "wifi",
            NetKind::Ethernet => "ethernet",
            NetKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// No encryption (also ethernet).
    Open,
    /// WPA/WPA2 personal (`key-mgmt=wpa-psk`); also WPA2/WPA3 transition networks.
    WpaPsk { psk: Secret },
    /// WPA3 personal only (`key-mgmt=sae`).
    Sae { psk: Secret },
    /// Not migratable; the text says why (e.g. "802.1X/EAP", "WEP").
    Unsupported(String),
}

impl Security {
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Security::WpaPsk { psk } | Security::Sae { psk } => Some(psk),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IpMethod {
    /// DHCP / SLAAC (NetworkManager `auto`).
    #[default]
    Auto,
    /// Static addresses.
    Manual,
    /// Protocol off (`disabled` for IPv4, `disabled`/`ignore` for IPv6).
    Disabled,
    /// Link-local only.
    LinkLocal,
    /// Anything else NetworkManager knows (`shared`, `dhcp` for IPv6...), kept by name.
    Other(String),
}

impl IpMethod {
    /// The NetworkManager keyfile name for `ipv4` (`v6 == false`) or `ipv6`.
    pub fn nm_name(&self, v6: bool) -> &str {
        match self {
            IpMethod::Auto => "auto",
            IpMethod::Manual => "manual",
            // `ignore` is understood by every NetworkManager release; `disabled` only by 1.20+.
            IpMethod::Disabled => {
                if v6 {
                    "ignore"
                } else {
                    "disabled"
                }
            }
            IpMethod::LinkLocal => "link-local",
            IpMethod::Other(s) => s,
        }
    }
}

/// A static route: destination `addr/prefix`, optional next hop and metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dest: String,
    pub via: Option<String>,
    pub metric: Option<u32>,
}

/// IPv4 or IPv6 settings. Addresses as `addr/prefix` text, already validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpConfig {
    pub method: IpMethod,
    pub addresses: Vec<String>,
    pub gateway: Option<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub routes: Vec<Route>,
    /// Metric of the routes this profile brings (NetworkManager `route-metric`).
    pub route_metric: Option<u32>,
    /// Never the default route (`never-default`, dhcpcd `nogateway`).
    pub never_default: bool,
    pub ignore_auto_routes: bool,
    pub ignore_auto_dns: bool,
    /// NetworkManager `may-fail`, kept only when the source said so.
    pub may_fail: Option<bool>,
}

impl IpConfig {
    /// True when nothing but automatic configuration is asked for.
    pub fn is_auto(&self) -> bool {
        self.method == IpMethod::Auto
            && self.addresses.is_empty()
            && self.gateway.is_none()
            && self.dns.is_empty()
            && self.dns_search.is_empty()
            && self.routes.is_empty()
            && self.route_metric.is_none()
            && !self.never_default
            && !self.ignore_auto_routes
            && !self.ignore_auto_dns
            && self.may_fail.is_none()
    }

    /// Applies the settings `o` gives on top of these (dhcpcd reads the options of an `ssid`
    /// block after those of the `interface` block, cumulatively).
    pub fn merge_from(&mut self, o: &IpConfig) {
        if o.method != IpMethod::Auto || !o.addresses.is_empty() {
            self.method = o.method.clone();
            self.addresses = o.addresses.clone();
        }
        if o.gateway.is_some() {
            self.gateway.clone_from(&o.gateway);
        }
        if !o.dns.is_empty() {
            self.dns = o.dns.clone();
        }
        if !o.dns_search.is_empty() {
            self.dns_search = o.dns_search.clone();
        }
        self.routes.extend(o.routes.iter().cloned());
        if o.route_metric.is_some() {
            self.route_metric = o.route_metric;
        }
        self.never_default |= o.never_default;
        self.ignore_auto_routes |= o.ignore_auto_routes;
        self.ignore_auto_dns |= o.ignore_auto_dns;
        if o.may_fail.is_some() {
            self.may_fail = o.may_fail;
        }
    }

    /// Adds an address (`addr` or `addr/prefix`, netmask allowed for IPv4); an invalid one is
    /// skipped with a note instead of failing the whole profile.
    pub fn add_address(&mut self, a: &str, v6: bool, notes: &mut Vec<String>) -> bool {
        match parse_cidr(a, v6) {
            Some(c) => {
                if !self.addresses.contains(&c) {
                    self.addresses.push(c);
                }
                true
            }
            None => {
                notes.push(format!(
                    "address '{}' dropped: not a valid {} address",
                    a.trim(),
                    if v6 { "IPv6" } else { "IPv4" }
                ));
                false
            }
        }
    }

    /// Adds a DNS server; invalid ones are skipped with a note.
    pub fn add_dns(&mut self, d: &str, v6: bool, notes: &mut Vec<String>) {
        let d = d.trim();
        if valid_ip(d, v6) {
            if !self.dns.iter().any(|x| x == d) {
                self.dns.push(d.to_string());
            }
        } else {
            notes.push(format!("DNS server '{d}' dropped: not a valid address"));
        }
    }

    /// Sets the gateway; an invalid one is skipped with a note.
    pub fn set_gateway(&mut self, g: &str, v6: bool, notes: &mut Vec<String>) {
        let g = g.trim();
        if valid_ip(g, v6) {
            self.gateway = Some(g.to_string());
        } else {
            notes.push(format!("gateway '{g}' dropped: not a valid address"));
        }
    }
}

/// The family of an address text (`:` means IPv6).
pub fn is_v6(addr: &str) -> bool {
    addr.contains(':')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    NetworkManager,
    WpaSupplicant,
    Connman,
    NwmgrCfg,
    BalenaOs,
    Dhcpcd,
    Ifupdown,
    Netplan,
    Networkd,
    Iwd,
}

impl Source {
    /// The name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::NetworkManager => "networkmanager",
            Source::WpaSupplicant => "wpa_supplicant",
            Source::Connman => "connman",
            Source::NwmgrCfg => "nwmgr-cfg",
            Source::BalenaOs => "balenaos",
            Source::Dhcpcd => "dhcpcd",
            Source::Ifupdown => "ifupdown",
            Source::Netplan => "netplan",
            Source::Networkd => "systemd-networkd",
            Source::Iwd => "iwd",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Readable id: the NetworkManager `id`, the connman name, or the SSID.
    pub name: String,
    pub kind: NetKind,
    pub ssid: Option<Vec<u8>>,
    pub security: Security,
    pub hidden: bool,
    pub priority: Option<i32>,
    /// Brought up by itself (NetworkManager `autoconnect`, ifupdown `auto`/`allow-hotplug`).
    pub autoconnect: bool,
    /// The interface the old system bound it to: used to find sources fighting over one
    /// interface, never written (names differ under balenaOS).
    pub interface: Option<String>,
    /// Write `interface-name` (set when several wired profiles are migrated: unbound, they
    /// would all compete for the first Ethernet port).
    pub bind_interface: bool,
    pub ipv4: IpConfig,
    pub ipv6: IpConfig,
    pub source: Source,
    /// The file it was read from (with `:line` for wpa_supplicant blocks in `notes`).
    pub origin: PathBuf,
    /// What was dropped or changed on the way (logged, not fatal).
    pub notes: Vec<String>,
}

impl Network {
    pub fn new(name: impl Into<String>, kind: NetKind, source: Source, origin: PathBuf) -> Self {
        Network {
            name: name.into(),
            kind,
            ssid: None,
            security: Security::Open,
            hidden: false,
            priority: None,
            autoconnect: true,
            interface: None,
            bind_interface: false,
            ipv4: IpConfig::default(),
            ipv6: IpConfig::default(),
            source,
            origin,
            notes: Vec::new(),
        }
    }

    /// Why this network cannot be migrated, or `None` when it can.
    pub fn unmigratable(&self) -> Option<String> {
        if let Security::Unsupported(why) = &self.security {
            return Some(why.clone());
        }
        if self.kind == NetKind::Wifi {
            match &self.ssid {
                None => return Some("no SSID".into()),
                Some(s) if s.is_empty() || s.len() > 32 => {
                    return Some(format!("SSID length {} is not 1 to 32 bytes", s.len()))
                }
                _ => {}
            }
        }
        if self.kind == NetKind::Other {
            return Some("not a wifi or ethernet profile".into());
        }
        None
    }

    /// The loopback interface's own profile (NetworkManager's `type=loopback`).
    pub fn is_loopback(&self) -> bool {
        self.kind == NetKind::Other && self.interface.as_deref() == Some("lo")
    }

    /// A wired profile asking for nothing but DHCP/SLAAC: balenaOS does that on every
    /// Ethernet interface by itself, so no profile is needed.
    pub fn is_plain_wired_dhcp(&self) -> bool {
        self.kind == NetKind::Ethernet
            && self.security == Security::Open
            && self.autoconnect
            && self.priority.is_none()
            && self.ipv4.is_auto()
            && (self.ipv6.is_auto() || self.ipv6.method == IpMethod::Disabled)
    }

    /// The SSID for messages: UTF-8 as is, other bytes as `\xHH`.
    pub fn ssid_display(&self) -> Option<String> {
        self.ssid.as_deref().map(display_bytes)
    }
}

/// Text for messages and the report: valid UTF-8 without control characters as is, anything
/// else escaped as `\xHH`.
pub fn display_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => {
            let mut out = String::new();
            for chunk in b.utf8_chunks() {
                for c in chunk.valid().chars() {
                    if c.is_control() || c == '\\' {
                        out.push_str(&format!("\\x{:02x}", c as u32));
                    } else {
                        out.push(c);
                    }
                }
                for x in chunk.invalid() {
                    out.push_str(&format!("\\x{x:02x}"));
                }
            }
            out
        }
    }
}

/// Validates `addr` or `addr/prefix` for IPv4 (`v6 == false`) or IPv6 and returns it as
/// `addr/prefix` (default prefix 32 or 128 when absent).
pub fn parse_cidr(s: &str, v6: bool) -> Option<String> {
    let s = s.trim();
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let max = if v6 { 128 } else { 32 };
    let ok = if v6 {
        a.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        a.parse::<std::net::Ipv4Addr>().is_ok()
    };
    if !ok {
        return None;
    }
    let prefix = match p {
        None => max,
        Some(p) => {
            if let Ok(n) = p.parse::<u32>() {
                n
            } else if !v6 {
                netmask_prefix(p)?
            } else {
                return None;
            }
        }
    };
    if prefix > max {
        return None;
    }
    Some(format!("{a}/{prefix}"))
}

/// `255.255.255.0` → 24; `None` for a non-contiguous or invalid mask.
pub fn netmask_prefix(mask: &str) -> Option<u32> {
    let m: std::net::Ipv4Addr = mask.trim().parse().ok()?;
    let v = u32::from(m);
    let ones = v.leading_ones();
    if ones < 32 && v << ones != 0 {
        return None;
    }
    Some(ones)
}

/// Validates a bare IP address of either family.
pub fn valid_ip(s: &str, v6: bool) -> bool {
    if v6 {
        s.trim().parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        s.trim().parse::<std::net::Ipv4Addr>().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("correct horse battery");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let sec = Security::WpaPsk { psk: s };
        assert!(!format!("{sec:?}").contains("horse"));
        assert!(crate::log::redact("x correct horse battery y").contains("<redacted>"));
    }

    #[test]
    fn cidr_and_masks() {
        assert_eq!(
            parse_cidr("192.168.1.5/24", false).as_deref(),
            Some("192.168.1.5/24")
        );
        assert_eq!(
            parse_cidr("10.0.0.2/255.255.0.0", false).as_deref(),
            Some("10.0.0.2/16")
        );
        assert_eq!(
            parse_cidr("10.0.0.2", false).as_deref(),
            Some("10.0.0.2/32")
        );
        assert_eq!(
            parse_cidr("2001:db8::5/64", true).as_deref(),
            Some("2001:db8::5/64")
        );
        assert!(parse_cidr("10.0.0.256/24", false).is_none());
        assert!(parse_cidr("10.0.0.2/33", false).is_none());
        assert!(parse_cidr("10.0.0.2/255.0.255.0", false).is_none());
        assert_eq!(netmask_prefix("0.0.0.0"), Some(0));
        assert_eq!(netmask_prefix("255.255.255.255"), Some(32));
    }

    #[test]
    fn display_escapes_odd_bytes() {
        assert_eq!(display_bytes(b"Caf\xc3\xa9"), "Café");
        assert_eq!(display_bytes(b"a\xffb\n"), "a\\xffb\\x0a");
    }
}
