//! `/etc/dhcpcd.conf` (Raspberry Pi OS up to Bullseye) → per-interface and per-SSID IP settings.
//!
//! Syntax as dhcpcd.conf(5): the first word of a line is the option, the rest its value; `#`
//! starts a comment; `interface NAME` opens a block for one interface and `ssid NAME` a block
//! for one wifi network, each running to the next `interface`/`ssid`/`profile` line; options
//! before the first block apply to every interface. `profile NAME` blocks (fallbacks, used only
//! through `fallback NAME`) and `arping` are reported, not migrated.
//!
//! Understood: `static ip_address=` (IPv4, `addr/prefix`; without a prefix the classful mask
//! dhcpcd derives), `static ip6_address=`, `static routers=` (IPv4 and IPv6 gateways),
//! `static domain_name_servers=` (space separated, both families), `static domain_search=`,
//! `static domain_name=`, `metric`, `nogateway`, `noipv4`/`ipv6only`, `noipv6`/`ipv4only`,
//! `noipv6rs`. A block with a static IPv4 address turns DHCPv4 off for that interface (as
//! dhcpcd does); DNS servers given without a static address replace the DHCP-supplied ones.
//! Everything else (`hostname`, `clientid`, `option`, `slaac`...) concerns the DHCP exchange
//! and has no counterpart in the profile.
#![forbid(unsafe_code)]

use std::path::Path;

use super::types::{is_v6, IpConfig, IpMethod};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Interface(String),
    Ssid(Vec<u8>),
}

/// One `interface` or `ssid` block with what it asks for.
#[derive(Debug, Clone)]
pub struct Block {
    pub scope: Scope,
    pub line: usize,
    pub ipv4: IpConfig,
    pub ipv6: IpConfig,
    pub notes: Vec<String>,
}

impl Block {
    /// True when the block changes nothing a profile could carry.
    pub fn is_plain(&self) -> bool {
        self.ipv4.is_auto() && self.ipv6.is_auto()
    }
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub blocks: Vec<Block>,
    /// Interfaces dhcpcd is told to leave alone (`denyinterfaces`).
    pub denied: Vec<String>,
    /// Things not migrated, for the log.
    pub notes: Vec<String>,
}

/// The classful prefix dhcpcd uses for an IPv4 address written without one.
fn classful(addr: &str) -> String {
    let first: u8 = addr
        .split('.')
        .next()
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let p = match first {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    };
    format!("{addr}/{p}")
}

struct Acc {
    v4: IpConfig,
    v6: IpConfig,
    notes: Vec<String>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            v4: IpConfig::default(),
            v6: IpConfig::default(),
            notes: Vec::new(),
        }
    }
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v)
}

/// A fixed IPv4 address (classful prefix when none is given) turns DHCPv4 off.
fn static_v4(a: &mut Acc, v: &str) {
    let v = v.trim();
    let cidr = if v.contains('/') {
        v.to_string()
    } else {
        classful(v)
    };
    if a.v4.add_address(&cidr, false, &mut a.notes) {
        a.v4.method = IpMethod::Manual;
    }
}

fn apply(a: &mut Acc, opt: &str, value: &str, at: &str) {
    let value = unquote(value);
    match opt {
        "static" => {
            let Some((k, v)) = value.split_once('=') else {
                a.notes.push(format!("{at}: 'static {value}' has no '='"));
                return;
            };
            let v = unquote(v);
            match k.trim() {
                "ip_address" => static_v4(a, v),
                "ip6_address" => {
                    if a.v6.add_address(v, true, &mut a.notes) {
                        a.v6.method = IpMethod::Manual;
                    }
                }
                "routers" => {
                    for g in v.split_whitespace() {
                        if is_v6(g) {
                            a.v6.set_gateway(g, true, &mut a.notes);
                        } else if a.v4.gateway.is_none() {
                            a.v4.set_gateway(g, false, &mut a.notes);
                        }
                    }
                }
                "domain_name_servers" => {
                    for d in v.split_whitespace() {
                        if is_v6(d) {
                            a.v6.add_dns(d, true, &mut a.notes);
                        } else {
                            a.v4.add_dns(d, false, &mut a.notes);
                        }
                    }
                }
                "domain_search" | "domain_name" => {
                    for d in v.split_whitespace() {
                        if !a.v4.dns_search.iter().any(|x| x == d) {
                            a.v4.dns_search.push(d.to_string());
                        }
                    }
                }
                other => a
                    .notes
                    .push(format!("{at}: 'static {other}=' not migrated")),
            }
        }
        "metric" => match value.trim().parse::<u32>() {
            Ok(m) => {
                a.v4.route_metric = Some(m);
                a.v6.route_metric = Some(m);
            }
            Err(_) => a
                .notes
                .push(format!("{at}: metric '{value}' is not a number")),
        },
        "nogateway" => {
            a.v4.never_default = true;
            a.v6.never_default = true;
        }
        "noipv6" | "ipv4only" => a.v6.method = IpMethod::Disabled,
        "noipv4" | "ipv6only" => a.v4.method = IpMethod::Disabled,
        // INFORM keeps a fixed address and asks DHCP for the rest: a static address.
        "inform" => static_v4(a, value),
        "arping" | "fallback" => a.notes.push(format!(
            "{at}: '{opt}' (address probing and fallback profiles) not migrated"
        )),
        _ => {}
    }
}

/// Completes a block: a static IPv4 address without DNS keeps what DHCP gave (nothing now);
/// DNS servers with DHCP replace the DHCP ones, as in dhcpcd.
fn finish(ip: &mut IpConfig) {
    if ip.method == IpMethod::Auto && !ip.dns.is_empty() {
        ip.ignore_auto_dns = true;
    }
}

/// Parses dhcpcd.conf. Never fails: lines it does not know are DHCP options for dhcpcd only.
pub fn parse(text: &str, origin: &Path) -> Parsed {
    let mut out = Parsed::default();
    let mut global = Acc::new();
    let mut cur: Option<(Scope, usize, Acc)> = None;
    let mut in_profile = false;
    let close = |cur: &mut Option<(Scope, usize, Acc)>, out: &mut Parsed| {
        if let Some((scope, line, mut a)) = cur.take() {
            finish(&mut a.v4);
            finish(&mut a.v6);
            out.blocks.push(Block {
                scope,
                line,
                ipv4: a.v4,
                ipv6: a.v6,
                notes: a.notes,
            });
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let at = format!("{}:{lineno}", origin.display());
        let line = match raw.find('#') {
            Some(p) if !raw[..p].contains('"') => &raw[..p],
            _ => raw,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        let (opt, value) = match line.split_once(char::is_whitespace) {
            Some((o, v)) => (o.trim(), v.trim()),
            None => (line, ""),
        };
        match opt {
            "interface" => {
                close(&mut cur, &mut out);
                in_profile = false;
                let mut a = Acc::new();
                copy_global(&global, &mut a);
                cur = Some((Scope::Interface(unquote(value).to_string()), lineno, a));
                continue;
            }
            "ssid" => {
                close(&mut cur, &mut out);
                in_profile = false;
                let mut a = Acc::new();
                copy_global(&global, &mut a);
                cur = Some((Scope::Ssid(unquote(value).as_bytes().to_vec()), lineno, a));
                continue;
            }
            "profile" => {
                close(&mut cur, &mut out);
                in_profile = true;
                out.notes.push(format!(
                    "{at}: profile '{value}' (a fallback used only when DHCP fails) not migrated"
                ));
                continue;
            }
            "denyinterfaces" => {
                out.denied.extend(
                    value
                        .split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                );
                continue;
            }
            _ => {}
        }
        if in_profile {
            continue;
        }
        match cur.as_mut() {
            Some((_, _, a)) => apply(a, opt, value, &at),
            None => apply(&mut global, opt, value, &at),
        }
    }
    close(&mut cur, &mut out);
    out.notes.append(&mut global.notes);
    out
}

/// Global options that are defaults for every block (metric, gateway and family switches).
fn copy_global(g: &Acc, a: &mut Acc) {
    a.v4.route_metric = g.v4.route_metric;
    a.v6.route_metric = g.v6.route_metric;
    a.v4.never_default = g.v4.never_default;
    a.v6.never_default = g.v6.never_default;
    if g.v4.method == IpMethod::Disabled {
        a.v4.method = IpMethod::Disabled;
    }
    if g.v6.method == IpMethod::Disabled {
        a.v6.method = IpMethod::Disabled;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_and_ssid_blocks() {
        let p = parse(
            "hostname\nclientid\noption rapid_commit\nslaac private\n\
             interface eth0\nstatic ip_address=192.168.7.20/24\nstatic ip6_address=fd07::20/64\n\
             static routers=192.168.7.1 fd07::1\nstatic domain_name_servers=192.168.7.1 1.1.1.1 fd07::1\n\
             metric 200\n\
             interface wlan0 # wifi\nmetric 300\nnogateway\n\
             ssid \"Shop Floor\"\nstatic ip_address=10.9.0.5\nstatic domain_search=shop.lan\n\
             profile static_eth0\nstatic ip_address=192.168.1.23/24\n\
             interface usb0\nstatic domain_name_servers=9.9.9.9\nnoipv6\n",
            Path::new("/etc/dhcpcd.conf"),
        );
        assert_eq!(p.blocks.len(), 4);
        let eth = &p.blocks[0];
        assert_eq!(eth.scope, Scope::Interface("eth0".into()));
        assert_eq!(eth.ipv4.method, IpMethod::Manual);
        assert_eq!(eth.ipv4.addresses, vec!["192.168.7.20/24"]);
        assert_eq!(eth.ipv4.gateway.as_deref(), Some("192.168.7.1"));
        assert_eq!(eth.ipv4.dns, vec!["192.168.7.1", "1.1.1.1"]);
        assert_eq!(eth.ipv6.addresses, vec!["fd07::20/64"]);
        assert_eq!(eth.ipv6.gateway.as_deref(), Some("fd07::1"));
        assert_eq!(eth.ipv6.dns, vec!["fd07::1"]);
        assert_eq!(eth.ipv4.route_metric, Some(200));
        let wl = &p.blocks[1];
        assert!(wl.ipv4.never_default && wl.ipv4.route_metric == Some(300));
        let ssid = &p.blocks[2];
        assert_eq!(ssid.scope, Scope::Ssid(b"Shop Floor".to_vec()));
        assert_eq!(ssid.ipv4.addresses, vec!["10.9.0.5/8"], "classful");
        assert_eq!(ssid.ipv4.dns_search, vec!["shop.lan"]);
        let usb = &p.blocks[3];
        assert_eq!(usb.ipv4.method, IpMethod::Auto);
        assert!(usb.ipv4.ignore_auto_dns);
        assert_eq!(usb.ipv6.method, IpMethod::Disabled);
        assert!(p.notes.iter().any(|n| n.contains("profile 'static_eth0'")));
    }

    #[test]
    fn bad_values_are_noted_not_fatal() {
        let p = parse(
            "interface eth0\nstatic ip_address=192.168.300.2/24\nstatic routers=nope\nmetric x\n",
            Path::new("/d"),
        );
        let b = &p.blocks[0];
        assert!(b.ipv4.addresses.is_empty());
        assert_eq!(b.ipv4.method, IpMethod::Auto);
        assert!(b.notes.len() >= 3, "{:?}", b.notes);
    }
}
