//! Which network managers the old system really runs, read from the sysroot.
//!
//! A manager counts as in use when its process runs (`/proc/<pid>/comm`), or, on a tree
//! without processes, when its service is enabled: a systemd unit linked under
//! `/etc/systemd/system/*.wants/`, or a sysvinit start link `/etc/rc{2,3,5}.d/S??<script>`.
//! ifupdown has no daemon: it counts when `/run/network/ifstate` lists an interface other than
//! `lo` or `networking.service` is enabled with a configured interface. netplan counts when it
//! has a YAML file and the daemon it renders for (NetworkManager or systemd-networkd) is in use;
//! it then comes just before that daemon, because it generated that daemon's configuration.
//!
//! The order returned is the order of preference when two sources describe the same network
//! or interface: NetworkManager, netplan, systemd-networkd, ifupdown, dhcpcd, iwd,
//! wpa_supplicant, connman.
#![forbid(unsafe_code)]

use std::path::Path;

use super::types::Source;
use crate::probe::Root;

/// (process name, systemd unit, sysvinit script) per source.
const DAEMONS: &[(Source, &str, &str, &str)] = &[
    (
        Source::NetworkManager,
        "NetworkManager",
        "NetworkManager.service",
        "network-manager",
    ),
    (
        Source::Networkd,
        "systemd-networkd",
        "systemd-networkd.service",
        "",
    ),
    (Source::Dhcpcd, "dhcpcd", "dhcpcd.service", "dhcpcd"),
    (Source::Iwd, "iwd", "iwd.service", "iwd"),
    (
        Source::WpaSupplicant,
        "wpa_supplicant",
        "wpa_supplicant.service",
        "wpa_supplicant",
    ),
    (Source::Connman, "connmand", "connman.service", "connman"),
];

/// Process names of the running system (`/proc/<pid>/comm`).
pub fn processes(root: &Root) -> Vec<String> {
    root.list("/proc")
        .into_iter()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|p| root.read_string(format!("/proc/{p}/comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

fn unit_enabled(root: &Root, unit: &str) -> bool {
    let sys = Path::new("/etc/systemd/system");
    root.list(sys)
        .into_iter()
        .filter(|d| d.ends_with(".wants"))
        .any(|d| {
            let p = sys.join(&d).join(unit);
            root.exists(&p) || root.read_link(&p).is_ok()
        })
}

fn sysv_enabled(root: &Root, script: &str) -> bool {
    !script.is_empty()
        && ["/etc/rc2.d", "/etc/rc3.d", "/etc/rc5.d"].iter().any(|d| {
            root.list(d)
                .into_iter()
                .any(|n| n.starts_with('S') && n.len() > 3 && n[3..] == *script)
        })
}

/// The managers in use, best first, each with how it was seen.
pub fn detect(root: &Root) -> Vec<(Source, String)> {
    let procs = processes(root);
    let mut found: Vec<(Source, String)> = Vec::new();
    for (src, comm, unit, script) in DAEMONS {
        let how = if procs.iter().any(|p| p == comm) {
            Some(format!("process {comm} runs"))
        } else if unit_enabled(root, unit) {
            Some(format!("{unit} is enabled"))
        } else if sysv_enabled(root, script) {
            Some(format!("/etc/init.d/{script} starts at boot"))
        } else {
            None
        };
        if let Some(h) = how {
            found.push((*src, h));
        }
    }
    // ifupdown.
    let ifstate = root.read_string("/run/network/ifstate").unwrap_or_default();
    let up: Vec<&str> = ifstate
        .lines()
        .filter_map(|l| l.split('=').next())
        .map(str::trim)
        .filter(|i| !i.is_empty() && *i != "lo")
        .collect();
    if !up.is_empty() {
        found.push((
            Source::Ifupdown,
            format!(
                "ifupdown brought up {} (/run/network/ifstate)",
                up.join(", ")
            ),
        ));
    } else if (unit_enabled(root, "networking.service") || sysv_enabled(root, "networking"))
        && root.read_string("/etc/network/interfaces").is_ok_and(|t| {
            t.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with("iface ") && !l.starts_with("iface lo ")
            })
        })
    {
        found.push((
            Source::Ifupdown,
            "networking is enabled and /etc/network/interfaces configures an interface".into(),
        ));
    }
    // netplan, just before the daemon it renders for.
    let has_yaml = ["/etc/netplan", "/lib/netplan", "/run/netplan"]
        .iter()
        .any(|d| root.list(d).iter().any(|n| n.ends_with(".yaml")));
    if has_yaml {
        if let Some(pos) = found
            .iter()
            .position(|(s, _)| matches!(s, Source::NetworkManager | Source::Networkd))
        {
            found.insert(
                pos,
                (
                    Source::Netplan,
                    format!("netplan renders for {}", found[pos].0.as_str()),
                ),
            );
        }
    }
    let order = |s: &Source| match s {
        Source::Netplan => 0,
        Source::NetworkManager => 1,
        Source::Networkd => 2,
        Source::Ifupdown => 3,
        Source::Dhcpcd => 4,
        Source::Iwd => 5,
        Source::WpaSupplicant => 6,
        _ => 7,
    };
    found.sort_by_key(|(s, _)| order(s));
    found
}
