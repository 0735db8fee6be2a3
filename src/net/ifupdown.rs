//! ifupdown: `/etc/network/interfaces` and the files it includes → typed stanzas.
//!
//! Syntax as interfaces(5): a line ending in `\` continues on the next; lines starting with `#`
//! are comments; `iface NAME FAMILY METHOD` opens a stanza whose options follow until the next
//! stanza keyword (`iface`, `mapping`, `auto`, `allow-*`, `source`, `source-directory`,
//! `rename`, `no-auto-down`, `no-scripts`). `source PATTERN` includes files (a `*` in the last
//! component is a wildcard, a relative path is taken from the including file's directory),
//! `source-directory DIR` includes the files of DIR whose names are made of `[A-Za-z0-9_-]`.
//! Includes nest up to 8 levels. Several stanzas of one interface and family add up.
//!
//! Options read: `address` (with `/prefix`), `netmask` (dotted or a prefix length), `gateway`,
//! `metric`, `dns-nameservers`, `dns-search`, `wpa-ssid`, `wpa-psk`, `wpa-key-mgmt`,
//! `wpa-scan-ssid`, `wpa-conf`/`wpa-roam`, and routes from `up`/`post-up` lines of the form
//! `ip route add DEST [via GW] [metric N]`. Bonds (`bond-*`, `slaves`), bridges (`bridge_ports`,
//! `bridge-ports`), VLANs (`vlan-raw-device`, `vlan_raw_device`, `NAME.ID`), `mapping`
//! stanzas and methods other than `static`/`dhcp`/`manual`/`auto`/`loopback` (ppp, tunnels,
//! bootp...) are reported by name.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use super::types::{is_v6, IpConfig, IpMethod, Route};
use crate::probe::Root;

pub const INTERFACES: &str = "/etc/network/interfaces";

/// One interface as all its stanzas describe it.
#[derive(Debug, Clone, Default)]
pub struct Iface {
    pub name: String,
    /// Where its first stanza is (`file:line`).
    pub at: String,
    pub auto: bool,
    pub hotplug: bool,
    pub ipv4: IpConfig,
    pub ipv6: IpConfig,
    /// `inet`/`inet6` methods seen (`static`, `dhcp`, `manual`...).
    pub methods: Vec<String>,
    pub wpa_ssid: Option<Vec<u8>>,
    pub wpa_psk: Option<String>,
    pub wpa_key_mgmt: Option<String>,
    pub wpa_scan_ssid: bool,
    /// `wpa-conf`/`wpa-roam` file.
    pub wpa_conf: Option<PathBuf>,
    pub roam: bool,
    /// Why it cannot be migrated (bond, bridge, VLAN, method), if so.
    pub unsupported: Option<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub ifaces: Vec<Iface>,
    /// Every file read, in order.
    pub files: Vec<PathBuf>,
    pub notes: Vec<String>,
}

const STANZAS: &[&str] = &[
    "iface",
    "mapping",
    "auto",
    "source",
    "source-directory",
    "rename",
    "no-auto-down",
    "no-scripts",
];

fn is_stanza(word: &str) -> bool {
    STANZAS.contains(&word) || word.starts_with("allow-")
}

/// Logical lines of a file: (line number, text) with continuations joined, comments dropped.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut acc = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if acc.is_empty() {
            start = i + 1;
            if raw.trim_start().starts_with('#') {
                continue;
            }
        }
        match raw.strip_suffix('\\') {
            Some(part) => {
                acc.push_str(part);
                acc.push(' ');
            }
            None => {
                acc.push_str(raw);
                let l = std::mem::take(&mut acc);
                if !l.trim().is_empty() {
                    out.push((start, l.trim().to_string()));
                }
            }
        }
    }
    if !acc.trim().is_empty() {
        out.push((start, acc.trim().to_string()));
    }
    out
}

/// Expands a `source` pattern (wildcard `*` in the last component only).
fn expand(root: &Root, pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    if !name.contains('*') {
        return vec![pattern.to_path_buf()];
    }
    let (pre, post) = name.split_once('*').unwrap_or((&name, ""));
    root.list(dir)
        .into_iter()
        .filter(|n| n.starts_with(pre) && n.ends_with(post) && n.len() >= pre.len() + post.len())
        .filter(|n| !n.starts_with('.'))
        .map(|n| dir.join(n))
        .filter(|p| root.path(p).is_file())
        .collect()
}

struct Reader<'a> {
    root: &'a Root,
    out: Parsed,
    /// Interfaces named by `auto`/`allow-auto` and `allow-hotplug`.
    auto: Vec<String>,
    hotplug: Vec<String>,
}

impl Reader<'_> {
    fn file(&mut self, path: &Path, depth: usize) {
        if depth > 8 || self.out.files.iter().any(|f| f == path) {
            self.out.notes.push(format!(
                "{}: include loop or nesting too deep, skipped",
                path.display()
            ));
            return;
        }
        let Ok(text) = self.root.read_string(path) else {
            self.out
                .notes
                .push(format!("{}: included but not readable", path.display()));
            return;
        };
        self.out.files.push(path.to_path_buf());
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut cur: Option<usize> = None;
        let mut fam_v6 = false;
        for (lineno, line) in logical_lines(&text) {
            let at = format!("{}:{lineno}", path.display());
            let mut words = line.split_whitespace();
            let kw = words.next().unwrap_or_default();
            let rest: Vec<&str> = words.collect();
            if is_stanza(kw) {
                cur = None;
                match kw {
                    "auto" | "allow-auto" => self.auto.extend(rest.iter().map(|s| s.to_string())),
                    "allow-hotplug" => self.hotplug.extend(rest.iter().map(|s| s.to_string())),
                    "source" | "source-directory" => {
                        for pat in rest {
                            let p = if pat.starts_with('/') {
                                PathBuf::from(pat)
                            } else {
                                dir.join(pat)
                            };
                            let files = if kw == "source" {
                                expand(self.root, &p)
                            } else {
                                self.root
                                    .list(&p)
                                    .into_iter()
                                    .filter(|n| {
                                        n.bytes().all(|b| {
                                            b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
                                        })
                                    })
                                    .map(|n| p.join(n))
                                    .filter(|f| self.root.path(f).is_file())
                                    .collect()
                            };
                            for f in files {
                                self.file(&f, depth + 1);
                            }
                        }
                    }
                    "mapping" => self.out.notes.push(format!(
                        "{at}: mapping stanza for {} not migrated (mapping scripts choose a \
                         configuration at run time)",
                        rest.join(" ")
                    )),
                    "iface" => {
                        let (Some(name), Some(fam), Some(method)) =
                            (rest.first(), rest.get(1), rest.get(2))
                        else {
                            self.out
                                .notes
                                .push(format!("{at}: incomplete iface line '{line}'"));
                            continue;
                        };
                        // `iface NAME inherits OTHER` style lines carry more words: ignored.
                        let idx = match self.out.ifaces.iter().position(|i| i.name == *name) {
                            Some(i) => i,
                            None => {
                                self.out.ifaces.push(Iface {
                                    name: name.to_string(),
                                    at: at.clone(),
                                    ..Default::default()
                                });
                                self.out.ifaces.len() - 1
                            }
                        };
                        cur = Some(idx);
                        fam_v6 = *fam == "inet6";
                        let i = &mut self.out.ifaces[idx];
                        i.methods.push(format!("{fam} {method}"));
                        let ip = if fam_v6 { &mut i.ipv6 } else { &mut i.ipv4 };
                        match (*fam, *method) {
                            (_, "loopback") => {}
                            ("inet" | "inet6", "static") => ip.method = IpMethod::Manual,
                            ("inet" | "inet6", "dhcp") => {
                                ip.method = if fam_v6 {
                                    IpMethod::Other("dhcp".into())
                                } else {
                                    IpMethod::Auto
                                }
                            }
                            ("inet6", "auto") => ip.method = IpMethod::Auto,
                            ("inet" | "inet6", "manual") => {}
                            ("inet", "ipv4ll") => ip.method = IpMethod::LinkLocal,
                            (f, m) => {
                                i.unsupported = Some(format!(
                                    "method '{f} {m}' (not an Ethernet/wifi address setup)"
                                ));
                            }
                        }
                    }
                    _ => {}
                }
                continue;
            }
            let Some(idx) = cur else {
                self.out
                    .notes
                    .push(format!("{at}: '{kw}' outside any iface stanza, ignored"));
                continue;
            };
            let i = &mut self.out.ifaces[idx];
            option(i, kw, &rest, fam_v6, &dir, &at);
        }
    }
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v)
}

fn option(i: &mut Iface, kw: &str, rest: &[&str], v6: bool, dir: &Path, at: &str) {
    let value = rest.join(" ");
    let ip = if v6 { &mut i.ipv6 } else { &mut i.ipv4 };
    match kw {
        "address" => {
            for a in rest {
                ip.add_address(a, v6, &mut i.notes);
            }
        }
        "netmask" => {
            // Applies to the addresses without a prefix length of this family.
            let prefix = if let Ok(n) = value.trim().parse::<u32>() {
                Some(n)
            } else {
                super::types::netmask_prefix(&value)
            };
            match prefix {
                Some(p) => {
                    let full = if v6 { 128 } else { 32 };
                    for a in ip.addresses.iter_mut() {
                        if a.ends_with(&format!("/{full}")) {
                            let base = a
                                .rsplit_once('/')
                                .map(|x| x.0.to_string())
                                .unwrap_or_default();
                            *a = format!("{base}/{p}");
                        }
                    }
                }
                None => i
                    .notes
                    .push(format!("{at}: netmask '{value}' not understood")),
            }
        }
        "gateway" => ip.set_gateway(&value, v6, &mut i.notes),
        "metric" => match value.trim().parse::<u32>() {
            Ok(m) => ip.route_metric = Some(m),
            Err(_) => i
                .notes
                .push(format!("{at}: metric '{value}' is not a number")),
        },
        "dns-nameservers" => {
            for d in rest {
                if is_v6(d) {
                    i.ipv6.add_dns(d, true, &mut i.notes);
                } else {
                    i.ipv4.add_dns(d, false, &mut i.notes);
                }
            }
        }
        "dns-search" | "dns-domain" => {
            for d in rest {
                if !i.ipv4.dns_search.iter().any(|x| x == d) {
                    i.ipv4.dns_search.push(d.to_string());
                }
            }
        }
        "wpa-ssid" => i.wpa_ssid = Some(unquote(&value).as_bytes().to_vec()),
        "wpa-psk" => {
            let v = unquote(&value);
            crate::log::add_secret(v);
            i.wpa_psk = Some(v.to_string());
        }
        "wpa-key-mgmt" => i.wpa_key_mgmt = Some(value.trim().to_ascii_uppercase()),
        "wpa-scan-ssid" => i.wpa_scan_ssid = value.trim() == "1",
        "wpa-conf" | "wpa-roam" => {
            let p = Path::new(value.trim());
            i.wpa_conf = Some(if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            });
            i.roam = kw == "wpa-roam";
        }
        "wpa-password" | "wpa-identity" | "wpa-eap" => {
            if kw == "wpa-password" {
                crate::log::add_secret(value.trim());
            }
            i.unsupported = Some("802.1X/EAP (enterprise) wifi login".into());
        }
        "bond-slaves" | "bond-mode" | "slaves" | "bond_slaves" | "bond-master" => {
            i.unsupported = Some(format!("bond ({kw} {value}): bonding is not migrated"));
        }
        "bridge_ports" | "bridge-ports" => {
            i.unsupported = Some(format!("bridge ({kw} {value}): bridges are not migrated"));
        }
        "vlan-raw-device" | "vlan_raw_device" => {
            i.unsupported = Some(format!("VLAN on {value}: VLANs are not migrated"));
        }
        "up" | "post-up" => match route_from_script(&value, v6) {
            Some(r) => ip.routes.push(r),
            None => i.notes.push(format!("{at}: '{kw}' script not migrated")),
        },
        "pre-up" | "down" | "pre-down" | "post-down" => {
            i.notes.push(format!("{at}: '{kw}' script not migrated"));
        }
        "hwaddress" => i.notes.push(format!(
            "{at}: hwaddress dropped (MAC pinning does not carry over)"
        )),
        _ => {}
    }
}

/// `ip [-4|-6] route add DEST [via GW] [dev X] [metric N]` → a route; anything else `None`.
fn route_from_script(cmd: &str, v6: bool) -> Option<Route> {
    let w: Vec<&str> = cmd.split_whitespace().collect();
    let mut k = 0;
    if w.first().map(|s| s.ends_with("ip")) != Some(true) {
        return None;
    }
    k += 1;
    let mut v6 = v6;
    while let Some(f) = w.get(k).filter(|f| f.starts_with('-')) {
        if *f == "-6" {
            v6 = true;
        }
        k += 1;
    }
    if w.get(k) != Some(&"route") || w.get(k + 1) != Some(&"add") {
        return None;
    }
    k += 2;
    let dest = w.get(k)?;
    let dest = super::types::parse_cidr(dest, v6)?;
    k += 1;
    let mut r = Route {
        dest,
        via: None,
        metric: None,
    };
    while k < w.len() {
        match w[k] {
            "via" => {
                let g = w.get(k + 1)?;
                if !super::types::valid_ip(g, v6) {
                    return None;
                }
                r.via = Some(g.to_string());
                k += 2;
            }
            "dev" => k += 2,
            "metric" => {
                r.metric = Some(w.get(k + 1)?.parse().ok()?);
                k += 2;
            }
            _ => return None,
        }
    }
    Some(r)
}

/// Reads `/etc/network/interfaces` (when present) and what it includes.
pub fn read(root: &Root) -> Option<Parsed> {
    if !root.path(INTERFACES).is_file() {
        return None;
    }
    let mut r = Reader {
        root,
        out: Parsed::default(),
        auto: Vec::new(),
        hotplug: Vec::new(),
    };
    r.file(Path::new(INTERFACES), 0);
    let mut out = r.out;
    for i in out.ifaces.iter_mut() {
        i.auto = r.auto.contains(&i.name);
        i.hotplug = r.hotplug.contains(&i.name);
        if i.unsupported.is_none() {
            let n = &i.name;
            let vlan = n
                .rsplit_once('.')
                .is_some_and(|(_, id)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
            if vlan {
                i.unsupported = Some(format!("VLAN interface {n}: VLANs are not migrated"));
            }
        }
    }
    out.ifaces.retain(|i| i.name != "lo");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_become_routes_when_they_are_ip_route_add() {
        let r = route_from_script(
            "ip route add 10.8.0.0/16 via 192.168.3.254 dev eth0 metric 50",
            false,
        )
        .unwrap();
        assert_eq!(r.dest, "10.8.0.0/16");
        assert_eq!(r.via.as_deref(), Some("192.168.3.254"));
        assert_eq!(r.metric, Some(50));
        assert!(route_from_script("/usr/local/bin/fw-up", false).is_none());
        assert!(route_from_script("ip route add default via 1.2.3.4", false).is_none());
    }

    #[test]
    fn continuation_and_comments() {
        let l = logical_lines("# c\niface eth0 inet static\n  address \\\n 10.0.0.2/24\n\n");
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].1, "address   10.0.0.2/24");
    }
}
