//! Network migration: wifi and ethernet profiles of the running system (NetworkManager,
//! wpa_supplicant, connman) turned into NetworkManager keyfiles for balenaOS, plus the
//! hostname.
//!
//! [`collect`] reads, under a [`Root`] (so `--sysroot` fixture trees work):
//! - `/etc/NetworkManager/system-connections/*` and, when present,
//!   `/run/NetworkManager/system-connections/*` (NetworkManager keyfiles, [`nm`]);
//! - `/etc/wpa_supplicant/wpa_supplicant.conf` and `/etc/wpa_supplicant/wpa_supplicant-*.conf`
//!   ([`wpa`]);
//! - `/var/lib/connman/<service>/settings` and `/var/lib/connman/*.config` ([`connman`]).
//!
//! Every source that exists is read (not only the one whose daemon runs): a network configured
//! in two places is kept once, preferring NetworkManager, then wpa_supplicant, then connman
//! (and a migratable copy over an unmigratable one, e.g. a wpa_supplicant block with the
//! password over a NetworkManager profile whose password lives in a desktop keyring).
//! `--wifi SSID` keeps only wifi networks with exactly that SSID; `--no-wifis` drops wifi
//! networks (ethernet profiles with static addresses are still migrated).
//!
//! `--nwmgr-cfg FILE`s are validated as keyfiles and copied unchanged as `balena-01`,
//! `balena-02`... (their own names on balenaOS, §7.3). On balenaOS, the files of
//! `/mnt/boot/system-connections` and `/mnt/boot/system-proxy` are carried over with their
//! names after checking that `/etc/NetworkManager/system-connections` holds the same files
//! (§7.5), and nothing is generated.
//!
//! Generated files are named by [`gen::file_names`]; nothing secret is ever logged: every PSK
//! and every password-like keyfile value is registered with [`crate::log::add_secret`] when
//! read, and `Debug` of [`Collected`] shows file names and sizes only.
//!
//! "Online over wired Ethernet with DHCP" ([`wired_dhcp`]) is read from the sysroot: an
//! interface in `/sys/class/net/<if>` with `type` 1 (Ethernet), `operstate` `up`, no
//! `wireless`/`phy80211` entry, not under `/sys/devices/virtual`, and a DHCP lease naming it:
//! `/run/systemd/netif/leases/<ifindex>` (systemd-networkd),
//! `/var/lib/NetworkManager/*-<if>.lease`, `/var/lib/dhcp/dhclient*.leases` containing
//! `interface "<if>"`, or `/var/lib/dhcpcd{,5}/{<if>,dhcpcd-<if>}.lease`.
#![forbid(unsafe_code)]

pub mod active;
pub mod connman;
pub mod dhcpcd;
#[cfg(test)]
mod fixture_tests;
pub mod gen;
pub mod ifupdown;
pub mod keyfile;
pub mod netplan;
pub mod networkd;
pub mod nm;
pub mod proxy;
pub mod types;
pub mod wpa;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use types::{IpConfig, IpMethod, NetKind, Network, Secret, Security, Source};

use crate::error::{Context, Error, Result};
use crate::probe::Root;
use crate::report::Status;

pub const NM_DIR: &str = "/etc/NetworkManager/system-connections";
/// Profiles NetworkManager keeps in memory, e.g. those netplan generates on Ubuntu.
pub const NM_RUN_DIR: &str = "/run/NetworkManager/system-connections";
pub const WPA_DIR: &str = "/etc/wpa_supplicant";
pub const CONNMAN_DIR: &str = "/var/lib/connman";
pub const DHCPCD_CONF: &str = "/etc/dhcpcd.conf";
pub const BALENA_CONNECTIONS: &str = "/mnt/boot/system-connections";
pub const BALENA_PROXY: &str = "/mnt/boot/system-proxy";

/// Largest profile file read.
const MAX_FILE: u64 = 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// False with `--no-wifis` (and no `--wifi`): wifi networks are not migrated.
    pub scan_wifis: bool,
    /// `--wifi SSID` (exact match); empty = all.
    pub wifis: Vec<String>,
    /// `--nwmgr-cfg FILE`, in option order (host paths, not under the sysroot).
    pub nwmgr_cfgs: Vec<PathBuf>,
    /// The running OS is balenaOS.
    pub balena_os: bool,
}

/// What [`collect`] found and what stage 2 will write.
#[derive(Clone, Default)]
pub struct Collected {
    /// Networks that get a generated profile (in `files`).
    pub networks: Vec<Network>,
    /// Files for the boot partition: (`system-connections/<name>` or `system-proxy/<name>`,
    /// content). Contents hold PSKs: write them 0600, never log them.
    pub files: Vec<(String, Vec<u8>)>,
    /// Networks found but not migrated: (name, why).
    pub unmigratable: Vec<(String, String)>,
    /// Files and directories read (as paths on the device).
    pub searched: Vec<PathBuf>,
    /// The device is online over wired Ethernet with DHCP right now.
    pub wired_dhcp_active: bool,
    /// How that was seen (interface and lease file), for messages.
    pub wired_detail: Option<String>,
    /// One report entry per file in `files` (same order as the connection files).
    pub entries: Vec<crate::report::Network>,
    /// Things skipped or changed on purpose (disabled blocks, duplicates, dropped pinning).
    pub notes: Vec<String>,
    /// Report entries of the networks found but not migrated (status and reason set).
    pub left_out: Vec<crate::report::Network>,
    /// Wired interfaces configured for plain DHCP (no profile needed), as "eth0 (ifupdown)".
    pub wired_dhcp_config: Vec<String>,
    /// IP settings that apply to wifi networks defined elsewhere (dhcpcd, ifupdown).
    overlays: Vec<Overlay>,
    /// The network managers seen running or enabled, best first, with how they were seen.
    pub active: Vec<(Source, String)>,
    /// The proxy of the old system, if any.
    pub proxy: Option<proxy::Proxy>,
}

/// IP settings for the wifi networks of one interface or one SSID, from a file that does not
/// define the networks themselves (dhcpcd.conf blocks, ifupdown stanzas with `wpa-conf`).
#[derive(Debug, Clone)]
struct Overlay {
    iface: Option<String>,
    ssid: Option<Vec<u8>>,
    ipv4: IpConfig,
    ipv6: IpConfig,
    what: String,
}

impl fmt::Debug for Collected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|(n, b)| format!("{n} ({} bytes)", b.len()))
            .collect();
        f.debug_struct("Collected")
            .field("networks", &self.networks)
            .field("files", &files)
            .field("unmigratable", &self.unmigratable)
            .field("searched", &self.searched)
            .field("wired_dhcp_active", &self.wired_dhcp_active)
            .field("notes", &self.notes)
            .finish()
    }
}

impl Collected {
    /// Names of the files under `system-connections/`.
    pub fn connection_files(&self) -> Vec<&str> {
        self.files
            .iter()
            .filter_map(|(n, _)| n.strip_prefix("system-connections/"))
            .collect()
    }
}

/// Keys whose values are secrets in NetworkManager/connman key files.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "psk"
        || k.contains("password")
        || k.contains("passphrase")
        || k.starts_with("wep-key")
        || k.starts_with("wep_key")
        || k.contains("secret")
        || k == "pin"
        || k == "puk"
        || k.ends_with("-psk")
}

/// Registers every secret-looking value of a key file with the logger's redaction.
fn register_secrets(kf: &keyfile::KeyFile) {
    for g in &kf.groups {
        for e in &g.entries {
            if is_secret_key(&e.key) {
                crate::log::add_secret(&String::from_utf8_lossy(&keyfile::unescape(&e.raw)));
            }
        }
    }
}

/// Best-effort secret registration for a file that may not even parse.
fn register_secrets_lenient(data: &[u8]) {
    for line in String::from_utf8_lossy(data).lines() {
        if let Some((k, v)) = line.split_once('=') {
            if is_secret_key(k.trim()) {
                let v = v.trim();
                crate::log::add_secret(v.trim_matches('"'));
            }
        }
    }
}

/// NetworkManager ignores backups, editor files and hidden files in its directory.
fn nm_ignored(name: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "~",
        ".bak",
        ".swp",
        ".orig",
        ".rej",
        ".tmp",
        ".nmmeta",
        ".rpmnew",
        ".rpmsave",
        ".pacnew",
        ".pacsave",
        ".dpkg-old",
        ".dpkg-new",
        ".dpkg-dist",
        ".dpkg-tmp",
    ];
    name.starts_with('.') || SUFFIXES.iter().any(|s| name.ends_with(s))
}

fn read_file(root: &Root, rel: &Path) -> Result<Vec<u8>> {
    let step = "reading network configuration";
    let p = root.path(rel);
    let meta = std::fs::metadata(&p).ctx(step, rel.display())?;
    if meta.len() > MAX_FILE {
        return Err(Error::new(
            step,
            rel.display(),
            format!("larger than {MAX_FILE} bytes"),
        ));
    }
    root.read_bytes(rel).map_err(|e| {
        let denied = e.kind() == io::ErrorKind::PermissionDenied;
        let err = Error::io(step, rel.display(), e);
        if denied {
            err.hint("run takeover as root: network profiles are readable by root only")
        } else {
            err
        }
    })
}

/// Entries of a directory under the root, sorted; empty when it does not exist. Unreadable
/// (e.g. not root) is an error: silently finding nothing would fail the network check with a
/// wrong message.
fn list_dir(root: &Root, dir: &Path) -> Result<Vec<String>> {
    if !root.path(dir).is_dir() {
        return Ok(Vec::new());
    }
    match std::fs::read_dir(root.path(dir)) {
        Ok(_) => Ok(root.list(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => {
            let denied = e.kind() == io::ErrorKind::PermissionDenied;
            let err = Error::io("listing network configuration", dir.display(), e);
            Err(if denied {
                err.hint("run takeover as root: network profiles are readable by root only")
            } else {
                err
            })
        }
    }
}

/// Regular files (following symlinks) of a directory under the root, sorted.
fn regular_files(root: &Root, dir: &Path) -> Result<Vec<String>> {
    Ok(list_dir(root, dir)?
        .into_iter()
        .filter(|n| root.path(dir.join(n)).is_file())
        .collect())
}

/// Reads a profile; a file that vanished or cannot be read for another reason than
/// permissions is recorded as not migrated instead of failing the run.
fn read_soft(root: &Root, rel: &Path, c: &mut Collected) -> Result<Option<Vec<u8>>> {
    match read_file(root, rel) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.io == Some(io::ErrorKind::PermissionDenied) => Err(e),
        Err(e) => {
            c.unmigratable
                .push((rel.display().to_string(), e.message()));
            Ok(None)
        }
    }
}

fn entry(name: &str, n: Option<&Network>, source: Source) -> crate::report::Network {
    crate::report::Network {
        name: name.to_string(),
        kind: n.map_or("other", |n| n.kind.as_str()).to_string(),
        ssid: n.and_then(|n| n.ssid_display()),
        source: source.as_str().to_string(),
        status: "migrated".into(),
        reason: n.map(|n| {
            // Where it came from, and what of it did not carry over.
            let mut r = format!("from {}", n.origin.display());
            for note in n
                .notes
                .iter()
                .filter(|x| x.contains("dropped") || x.contains("not migrated"))
            {
                r.push_str("; ");
                r.push_str(note);
            }
            r
        }),
    }
}

/// A report entry for a network found but not migrated.
fn left_out_entry(n: &Network, status: &str, why: &str) -> crate::report::Network {
    crate::report::Network {
        name: n.name.clone(),
        kind: n.kind.as_str().to_string(),
        ssid: n.ssid_display(),
        source: n.source.as_str().to_string(),
        status: status.to_string(),
        reason: Some(format!("{why} ({})", n.origin.display())),
    }
}

/// Records a network that is not migrated: log line, report entry, and (for "not-migrated")
/// the list the network check and the warnings name.
fn leave_out(c: &mut Collected, n: &Network, status: &str, why: String) {
    let label = format!("{} ({}, {})", n.name, n.source.as_str(), n.origin.display());
    match status {
        "not-migrated" => c.unmigratable.push((label, why.clone())),
        _ => info!("network: '{label}' {status}: {why}"),
    }
    c.left_out.push(left_out_entry(n, status, &why));
}

/// Reads a file that is copied as is: validated as a NetworkManager keyfile, secrets registered.
fn copied_profile(data: &[u8], origin: &Path) -> Result<Network> {
    register_secrets_lenient(data);
    let kf = keyfile::KeyFile::parse(data, &origin.display().to_string())?;
    register_secrets(&kf);
    nm::from_keyfile(&kf, origin)
}

/// Finds every network of the system and prepares the files stage 2 writes.
pub fn collect(root: &Root, opts: &NetOptions) -> Result<Collected> {
    let mut c = Collected::default();

    // 1. --nwmgr-cfg files: copied as given, after validation.
    for (i, path) in opts.nwmgr_cfgs.iter().enumerate() {
        let data = crate::files::read_limited(path, MAX_FILE, "--nwmgr-cfg file")?;
        let n = copied_profile(&data, path).map_err(|e| {
            let cause = format!("not a valid NetworkManager keyfile: {}", e.message());
            Error::new("checking --nwmgr-cfg", path.display(), cause)
                .hint("pass a NetworkManager connection profile (a .nmconnection keyfile)")
        })?;
        let name = if opts.balena_os {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("balena-{:02}", i + 1))
        } else {
            format!("balena-{:02}", i + 1)
        };
        info!(
            "network: --nwmgr-cfg {} copied as system-connections/{name}",
            path.display()
        );
        add_file(
            &mut c,
            format!("system-connections/{name}"),
            data,
            entry(&name, Some(&n), Source::NwmgrCfg),
        );
    }

    if opts.balena_os {
        balena_os(root, &mut c)?;
        c.wired_detail = wired_dhcp(root);
        c.wired_dhcp_active = c.wired_detail.is_some();
        return Ok(c);
    }

    // 2. Every source present.
    c.active = active::detect(root);
    for (s, how) in &c.active {
        info!("network: {} is in use ({how})", s.as_str());
    }
    let mut found: Vec<Network> = Vec::new();
    scan_nm(root, &mut c, &mut found)?;
    scan_wpa(root, &mut c, &mut found)?;
    scan_connman(root, &mut c, &mut found)?;
    scan_netplan(root, &mut c, &mut found);
    scan_ifupdown(root, &mut c, &mut found)?;
    scan_dhcpcd(root, &mut c, &mut found)?;
    scan_networkd(root, &mut c, &mut found);
    scan_iwd(root, &mut c, &mut found)?;
    apply_overlays(&mut c, &mut found);

    // 3. Filters and de-duplication.
    let mut found = select(found, opts, &mut c);
    let wired = found
        .iter()
        .filter(|n| n.kind == NetKind::Ethernet && n.interface.is_some())
        .count();
    if wired > 1 {
        for n in found.iter_mut().filter(|n| n.kind == NetKind::Ethernet) {
            if let Some(i) = &n.interface {
                n.bind_interface = true;
                n.notes.push(format!(
                    "bound to {i} (interface-name): {wired} wired profiles would otherwise \
                     compete for the same port"
                ));
            }
        }
    }

    // 4. Generation.
    let taken: Vec<String> = c.connection_files().iter().map(|s| s.to_string()).collect();
    let refs: Vec<&Network> = found.iter().collect();
    let names = gen::file_names(&refs, &taken);
    for (n, name) in found.into_iter().zip(names) {
        let text = gen::keyfile(&n, &name)?;
        info!(
            "network: {} '{}' from {} ({}) → system-connections/{name}",
            n.kind.as_str(),
            n.ssid_display().unwrap_or_else(|| n.name.clone()),
            n.source.as_str(),
            n.origin.display()
        );
        for note in &n.notes {
            if !note.starts_with("block at") && !note.starts_with('[') {
                info!("network: {name}: {note}");
            }
        }
        let e = entry(&name, Some(&n), n.source);
        add_file(
            &mut c,
            format!("system-connections/{name}"),
            text.into_bytes(),
            e,
        );
        c.networks.push(n);
    }
    for (name, why) in &c.unmigratable {
        warn!("network: '{name}' is not migrated: {why}");
    }
    scan_proxy(root, &mut c);
    c.wired_detail = wired_dhcp(root);
    c.wired_dhcp_active = c.wired_detail.is_some();
    Ok(c)
}

fn add_file(c: &mut Collected, rel: String, data: Vec<u8>, e: crate::report::Network) {
    if let Some(pos) = c
        .files
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(&rel))
    {
        // Only --nwmgr-cfg on balenaOS can repeat a name: the operator's file wins.
        warn!("network: {rel} given twice; the --nwmgr-cfg file is used");
        c.files[pos] = (rel, data);
        if let Some(old) = c.entries.iter_mut().find(|x| x.name == e.name) {
            *old = e;
        }
        return;
    }
    c.files.push((rel, data));
    c.entries.push(e);
}

fn balena_os(root: &Root, c: &mut Collected) -> Result<()> {
    let boot = Path::new(BALENA_CONNECTIONS);
    let etc = Path::new(NM_DIR);
    c.searched.push(boot.to_path_buf());
    let boot_files = regular_files(root, boot)?;
    if root.exists(etc) {
        c.searched.push(etc.to_path_buf());
        let etc_files = regular_files(root, etc)?;
        let mut diff = Vec::new();
        for n in boot_files.iter().chain(etc_files.iter()) {
            let a = boot_files
                .contains(n)
                .then(|| root.read_bytes(boot.join(n)).ok())
                .flatten();
            let b = etc_files
                .contains(n)
                .then(|| root.read_bytes(etc.join(n)).ok())
                .flatten();
            if a != b && !diff.contains(n) {
                diff.push(n.clone());
            }
        }
        if !diff.is_empty() {
            return Err(Error::new(
                "comparing balenaOS connection files",
                format!("{} and {}", boot.display(), etc.display()),
                format!("contents differ: {}", diff.join(", ")),
            )
            .hint("make the two directories hold the same profiles (the boot partition copy is what balenaOS imports), or pass the profiles to keep with --nwmgr-cfg"));
        }
    }
    for name in boot_files {
        let rel = boot.join(&name);
        let data = read_file(root, &rel)?;
        let n = match copied_profile(&data, &rel) {
            Ok(n) => Some(n),
            Err(e) => {
                warn!("network: {}: {e}; copied unchanged", rel.display());
                None
            }
        };
        info!("network: balenaOS profile {name} carried over");
        add_file(
            c,
            format!("system-connections/{name}"),
            data,
            entry(&name, n.as_ref(), Source::BalenaOs),
        );
    }
    let proxy = Path::new(BALENA_PROXY);
    if root.exists(proxy) {
        c.searched.push(proxy.to_path_buf());
        for name in regular_files(root, proxy)? {
            let data = read_file(root, &proxy.join(&name))?;
            register_secrets_lenient(&data);
            info!("network: balenaOS proxy file {name} carried over");
            c.files.push((format!("system-proxy/{name}"), data));
        }
    } else {
        c.notes.push(format!(
            "{} does not exist: no proxy configuration",
            proxy.display()
        ));
    }
    Ok(())
}

fn scan_nm(root: &Root, c: &mut Collected, found: &mut Vec<Network>) -> Result<()> {
    for dir in [NM_DIR, NM_RUN_DIR] {
        let dir = Path::new(dir);
        if dir == Path::new(NM_RUN_DIR) && !root.exists(dir) {
            continue;
        }
        c.searched.push(dir.to_path_buf());
        for name in regular_files(root, dir)? {
            if nm_ignored(&name) {
                continue;
            }
            let rel = dir.join(&name);
            let Some(data) = read_soft(root, &rel, c)? else {
                continue;
            };
            match copied_profile(&data, &rel) {
                Ok(n) if name.starts_with("netplan-") && !netplan::files(root).is_empty() => {
                    leave_out(
                        c,
                        &n,
                        "ignored",
                        "generated by netplan: migrated from the netplan files instead".into(),
                    );
                }
                Ok(n) => found.push(n),
                Err(e) => c
                    .unmigratable
                    .push((rel.display().to_string(), e.message())),
            }
        }
    }
    Ok(())
}

fn scan_wpa(root: &Root, c: &mut Collected, found: &mut Vec<Network>) -> Result<()> {
    let dir = Path::new(WPA_DIR);
    let mut files = vec!["wpa_supplicant.conf".to_string()];
    for n in regular_files(root, dir)? {
        if n.starts_with("wpa_supplicant-") && n.ends_with(".conf") {
            files.push(n);
        }
    }
    for name in files {
        // wpa_supplicant-IFACE.conf is what wpa_supplicant@IFACE.service runs on IFACE.
        let iface = name
            .strip_prefix("wpa_supplicant-")
            .and_then(|n| n.strip_suffix(".conf"))
            .map(str::to_string);
        scan_wpa_file(root, &dir.join(&name), iface, c, found)?;
    }
    Ok(())
}

fn scan_wpa_file(
    root: &Root,
    rel: &Path,
    iface: Option<String>,
    c: &mut Collected,
    found: &mut Vec<Network>,
) -> Result<()> {
    if c.searched.iter().any(|p| p == rel) {
        return Ok(());
    }
    c.searched.push(rel.to_path_buf());
    if !root.path(rel).is_file() {
        return Ok(());
    }
    let Some(data) = read_soft(root, rel, c)? else {
        return Ok(());
    };
    register_secrets_lenient(&data);
    match wpa::parse(&data, rel) {
        Ok(p) => {
            for mut n in p.networks {
                n.interface.clone_from(&iface);
                found.push(n);
            }
            for (n, why) in p.skipped {
                info!("network: '{n}' skipped: {why}");
                c.notes.push(format!("{n}: {why}"));
            }
        }
        Err(e) => c
            .unmigratable
            .push((rel.display().to_string(), e.message())),
    }
    Ok(())
}

/// The proxy: reported, used by takeover's HTTP clients when this is the real system, and
/// written to `system-proxy/` for balenaOS.
fn scan_proxy(root: &Root, c: &mut Collected) {
    let real = root.path("/") == Path::new("/");
    let own: Vec<(String, String)> = if real {
        std::env::vars().collect()
    } else {
        Vec::new()
    };
    let Some(p) = proxy::detect(root, &own) else {
        return;
    };
    info!(
        "network: proxy {} (from {})",
        p.https
            .as_deref()
            .or(p.http.as_deref())
            .map(proxy::redacted)
            .unwrap_or_default(),
        p.from.join(", ")
    );
    if real {
        proxy::install(Some(p.clone()));
    }
    match proxy::balena_files(&p) {
        Ok((files, notes)) => {
            for n in notes {
                warn!("network: {n}");
                c.notes.push(n);
            }
            for (name, data) in files {
                info!("network: proxy → system-proxy/{name}");
                c.files.push((format!("system-proxy/{name}"), data));
            }
        }
        Err(why) => {
            warn!("network: the proxy is not migrated to balenaOS: {why}");
            c.notes.push(format!("proxy not migrated: {why}"));
        }
    }
    c.proxy = Some(p);
}

/// The report's `proxy` object.
pub fn report_proxy(c: &Collected) -> Option<crate::report::Proxy> {
    let p = c.proxy.as_ref()?;
    Some(crate::report::Proxy {
        http: p.http.as_deref().map(proxy::redacted),
        https: p.https.as_deref().map(proxy::redacted),
        no_proxy: p.no_proxy.clone(),
        source: p.from.clone(),
        migrated: c
            .files
            .iter()
            .filter(|(n, _)| n.starts_with("system-proxy/"))
            .map(|(n, _)| n.clone())
            .collect(),
    })
}

/// systemd-networkd `.network` files (first match per interface wins) and `.netdev` devices.
fn scan_networkd(root: &Root, c: &mut Collected, found: &mut Vec<Network>) {
    for d in networkd::NETWORKD_DIRS {
        c.searched.push(PathBuf::from(d));
    }
    for (p, what) in networkd::netdevs(root) {
        let mut n = Network::new(what.clone(), NetKind::Other, Source::Networkd, p);
        n.security = Security::Unsupported(format!("{what}: virtual devices are not migrated"));
        found.push(n);
    }
    let mut claimed: Vec<(String, PathBuf)> = Vec::new();
    for path in networkd::network_files(root) {
        let Ok(text) = root.read_string(&path) else {
            c.unmigratable
                .push((path.display().to_string(), "not readable".into()));
            continue;
        };
        let f = networkd::parse_network(&text, &path);
        let label = f
            .iface
            .clone()
            .unwrap_or_else(|| format!("Name={}", f.names.join(" ")));
        let mut n = Network::new(
            label.clone(),
            NetKind::Ethernet,
            Source::Networkd,
            path.clone(),
        );
        n.interface.clone_from(&f.iface);
        n.ipv4 = f.ipv4.clone();
        n.ipv6 = f.ipv6.clone();
        n.notes = f.notes.clone();
        if let Some(i) = &f.iface {
            if let Some((_, first)) = claimed.iter().find(|(x, _)| x == i) {
                let why = format!(
                    "networkd applies the first matching file to {i}: {}",
                    first.display()
                );
                leave_out(c, &n, "ignored", why);
                continue;
            }
            claimed.push((i.clone(), path.clone()));
        }
        if let Some(why) = &f.unsupported {
            n.kind = NetKind::Other;
            n.security = Security::Unsupported(why.clone());
            found.push(n);
            continue;
        }
        if f.wireless {
            let what = format!("systemd-networkd {}", path.display());
            if f.ssids.is_empty() {
                let iface = f
                    .iface
                    .clone()
                    .or_else(|| f.names.first().cloned())
                    .filter(|n| !n.contains(['?', '[', '!']));
                c.overlays.push(Overlay {
                    iface,
                    ssid: None,
                    ipv4: f.ipv4.clone(),
                    ipv6: f.ipv6.clone(),
                    what: what.clone(),
                });
            }
            for ssid in &f.ssids {
                c.overlays.push(Overlay {
                    iface: None,
                    ssid: Some(ssid.clone()),
                    ipv4: f.ipv4.clone(),
                    ipv6: f.ipv6.clone(),
                    what: what.clone(),
                });
            }
            continue;
        }
        found.push(n);
    }
}

/// iwd's known networks.
fn scan_iwd(root: &Root, c: &mut Collected, found: &mut Vec<Network>) -> Result<()> {
    let dir = Path::new(networkd::IWD_DIR);
    c.searched.push(dir.to_path_buf());
    for name in regular_files(root, dir)? {
        let rel = dir.join(&name);
        if !(name.ends_with(".psk")
            || name.ends_with(".open")
            || name.ends_with(".8021x")
            || name.ends_with(".wep"))
        {
            continue;
        }
        let Some(data) = read_soft(root, &rel, c)? else {
            continue;
        };
        register_secrets_lenient(&data);
        if let Some(n) = networkd::parse_iwd(&data, &rel) {
            found.push(n);
        }
    }
    Ok(())
}

/// netplan's YAML files, merged as netplan does.
fn scan_netplan(root: &Root, c: &mut Collected, found: &mut Vec<Network>) {
    for d in netplan::DIRS {
        if d == "/etc/netplan" || root.exists(d) {
            c.searched.push(PathBuf::from(d));
        }
    }
    let (doc, read, bad) = netplan::load(root);
    for (f, why) in bad {
        c.unmigratable.push((f.display().to_string(), why.clone()));
        let mut n = Network::new(f.display().to_string(), NetKind::Other, Source::Netplan, f);
        n.security = Security::Unsupported(why.clone());
        c.left_out.push(left_out_entry(&n, "not-migrated", &why));
    }
    let origin = match read.as_slice() {
        [] => return,
        [one] => one.clone(),
        many => PathBuf::from(format!(
            "{} (merged with {})",
            many[many.len() - 1].display(),
            many[..many.len() - 1]
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    for n in netplan::networks(&doc, &origin) {
        for note in &n.notes {
            debug!("network: {}: {note}", n.name);
        }
        found.push(n);
    }
}

/// `/etc/network/interfaces` (and what it sources): wired stanzas become ethernet profiles,
/// `wpa-ssid` stanzas wifi profiles, `wpa-conf`/`wpa-roam` stanzas add their IP settings to
/// the networks of that wpa_supplicant file; bonds, bridges, VLANs are reported.
fn scan_ifupdown(root: &Root, c: &mut Collected, found: &mut Vec<Network>) -> Result<()> {
    c.searched.push(PathBuf::from(ifupdown::INTERFACES));
    let Some(p) = ifupdown::read(root) else {
        return Ok(());
    };
    for note in &p.notes {
        info!("network: {note}");
        c.notes.push(note.clone());
    }
    let roam = p.ifaces.iter().any(|i| i.roam);
    for i in p.ifaces {
        // With wpa-roam, stanzas like `iface default inet dhcp` are logical configurations
        // picked by a network's id_str, not devices.
        let logical = roam
            && !i.auto
            && !i.hotplug
            && !i.name.bytes().any(|b| b.is_ascii_digit())
            && !root.exists(Path::new("/sys/class/net").join(&i.name));
        if logical {
            let msg = format!(
                "{}: '{}' is a wpa-roam logical configuration, not an interface: not migrated",
                i.at, i.name
            );
            info!("network: {msg}");
            c.notes.push(msg);
            continue;
        }
        for note in &i.notes {
            info!("network: {}: {note}", i.name);
        }
        let origin = PathBuf::from(i.at.rsplit_once(':').map_or(i.at.as_str(), |x| x.0));
        let started = i.auto || i.hotplug;
        let mut n = Network::new(i.name.clone(), NetKind::Ethernet, Source::Ifupdown, origin);
        n.interface = Some(i.name.clone());
        n.notes.push(format!("stanza at {}", i.at));
        n.notes.extend(i.notes.iter().cloned());
        n.ipv4 = i.ipv4.clone();
        n.ipv6 = i.ipv6.clone();
        if let Some(why) = &i.unsupported {
            n.kind = NetKind::Other;
            n.security = Security::Unsupported(why.clone());
            found.push(n);
            continue;
        }
        for (v6, ip) in [(false, &n.ipv4), (true, &n.ipv6)] {
            if ip.method == IpMethod::Manual && ip.addresses.is_empty() {
                n.security = Security::Unsupported(format!(
                    "inet{} static without a valid address",
                    if v6 { "6" } else { "" }
                ));
            }
        }
        if matches!(n.security, Security::Unsupported(_)) {
            found.push(n);
            continue;
        }
        if let Some(ssid) = &i.wpa_ssid {
            n.kind = NetKind::Wifi;
            n.ssid = Some(ssid.clone());
            n.name = types::display_bytes(ssid);
            n.hidden = i.wpa_scan_ssid;
            let km = i.wpa_key_mgmt.clone().unwrap_or_default();
            n.security = match (&i.wpa_psk, km.as_str()) {
                (_, k) if k.contains("EAP") => {
                    Security::Unsupported(format!("802.1X/EAP (enterprise, wpa-key-mgmt {k})"))
                }
                (None, _) => Security::Open,
                (Some(p), k) => {
                    let hex = p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit());
                    if !hex && !(8..=63).contains(&p.len()) {
                        Security::Unsupported(format!(
                            "wpa-psk length {} is not 8 to 63 characters or 64 hex digits",
                            p.len()
                        ))
                    } else if k == "SAE" && !hex {
                        Security::Sae {
                            psk: Secret::new(p.clone()),
                        }
                    } else {
                        Security::WpaPsk {
                            psk: Secret::new(p.clone()),
                        }
                    }
                }
            };
            if !started {
                n.autoconnect = false;
                n.notes
                    .push("no auto/allow-hotplug: kept with autoconnect off".into());
            }
            found.push(n);
            continue;
        }
        let wireless = i.wpa_conf.is_some() || is_wireless(root, &i.name);
        if wireless {
            c.overlays.push(Overlay {
                iface: Some(i.name.clone()),
                ssid: None,
                ipv4: i.ipv4.clone(),
                ipv6: i.ipv6.clone(),
                what: format!("ifupdown stanza {}", i.at),
            });
            if let Some(conf) = &i.wpa_conf {
                if i.roam {
                    c.notes.push(format!(
                        "{}: wpa-roam: the networks of {} are migrated, the per-network                          ifupdown mappings (id_str) are not",
                        i.at,
                        conf.display()
                    ));
                }
                scan_wpa_file(root, conf, Some(i.name.clone()), c, found)?;
            }
            continue;
        }
        if i.methods.iter().all(|m| m.ends_with(" manual")) {
            leave_out(
                c,
                &n,
                "ignored",
                "inet manual: ifupdown only brings the link up, the address comes from another                  source"
                    .into(),
            );
            continue;
        }
        if !started {
            if n.is_plain_wired_dhcp() {
                n.notes.push("no auto/allow-hotplug".into());
            } else {
                n.autoconnect = false;
                n.notes
                    .push("no auto/allow-hotplug: kept with autoconnect off".into());
            }
        }
        found.push(n);
    }
    Ok(())
}

fn scan_connman(root: &Root, c: &mut Collected, found: &mut Vec<Network>) -> Result<()> {
    let dir = Path::new(CONNMAN_DIR);
    c.searched.push(dir.to_path_buf());
    for name in list_dir(root, dir)? {
        let rel = dir.join(&name);
        let settings = rel.join("settings");
        if root.path(&settings).is_file()
            && (name.starts_with("wifi_") || name.starts_with("ethernet_"))
        {
            let Some(data) = read_soft(root, &settings, c)? else {
                continue;
            };
            register_secrets_lenient(&data);
            match connman::parse_settings(&data, &settings, &name) {
                Ok(n) => found.push(n),
                Err(e) => c
                    .unmigratable
                    .push((settings.display().to_string(), e.message())),
            }
        } else if name.ends_with(".config") && root.path(&rel).is_file() {
            let Some(data) = read_soft(root, &rel, c)? else {
                continue;
            };
            register_secrets_lenient(&data);
            match connman::parse_config(&data, &rel) {
                Ok(v) => found.extend(v),
                Err(e) => c
                    .unmigratable
                    .push((rel.display().to_string(), e.message())),
            }
        }
    }
    Ok(())
}

/// Preference between sources when nothing says which one runs: NetworkManager, then the
/// files that configure a daemon directly.
fn static_rank(s: Source) -> u8 {
    match s {
        Source::Netplan => 0,
        Source::NetworkManager => 1,
        Source::Networkd => 2,
        Source::Ifupdown => 3,
        Source::Dhcpcd => 4,
        Source::WpaSupplicant => 5,
        Source::Iwd => 6,
        Source::Connman => 7,
        Source::NwmgrCfg | Source::BalenaOs => 8,
    }
}

/// The rank of a source: the network managers in use first (in the order [`active::detect`]
/// gives), then [`static_rank`].
fn rank(s: Source, active: &[(Source, String)]) -> u8 {
    match active.iter().position(|(a, _)| *a == s) {
        Some(p) => u8::try_from(p).unwrap_or(0),
        None => 50 + static_rank(s),
    }
}

fn is_wireless(root: &Root, iface: &str) -> bool {
    let d = Path::new("/sys/class/net").join(iface);
    root.exists(d.join("wireless")) || root.exists(d.join("phy80211")) || iface.starts_with("wl")
}

/// Applies dhcpcd/ifupdown IP settings to the wifi networks wpa_supplicant connects to: an
/// SSID block wins over an interface block.
fn apply_overlays(c: &mut Collected, found: &mut [Network]) {
    for n in found.iter_mut() {
        if n.kind != NetKind::Wifi || !matches!(n.source, Source::WpaSupplicant | Source::Iwd) {
            continue;
        }
        // Every interface overlay that matches (ifupdown's `inet manual` stanza and dhcpcd's
        // block can both describe wlan0), then the SSID ones, which win.
        let iface_match = |o: &&Overlay| match (&o.iface, &n.interface) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(p), Some(i)) => match p.strip_suffix('*') {
                Some(pre) => i.starts_with(pre),
                None => p == i,
            },
        };
        let by_iface: Vec<&Overlay> = c.overlays.iter().filter(iface_match).collect();
        let by_ssid: Vec<&Overlay> = c
            .overlays
            .iter()
            .filter(|o| o.ssid.is_some() && o.ssid == n.ssid)
            .collect();
        for o in by_iface.into_iter().chain(by_ssid) {
            if o.ipv4.is_auto() && o.ipv6.is_auto() {
                continue;
            }
            n.ipv4.merge_from(&o.ipv4);
            n.ipv6.merge_from(&o.ipv6);
            n.notes.push(format!("IP settings from {}", o.what));
            if n.interface.is_none() {
                n.interface = o.iface.clone().filter(|i| !i.contains('*'));
            }
        }
    }
}

/// `/etc/dhcpcd.conf`: `interface` blocks of wired interfaces become ethernet profiles, those
/// of wireless interfaces and `ssid` blocks add IP settings to the wifi networks of
/// wpa_supplicant (dhcpcd starts wpa_supplicant with its configuration on Raspberry Pi OS).
fn scan_dhcpcd(root: &Root, c: &mut Collected, found: &mut Vec<Network>) -> Result<()> {
    let rel = Path::new(DHCPCD_CONF);
    c.searched.push(rel.to_path_buf());
    if !root.path(rel).is_file() {
        return Ok(());
    }
    let Some(data) = read_soft(root, rel, c)? else {
        return Ok(());
    };
    let p = dhcpcd::parse(&String::from_utf8_lossy(&data), rel);
    for note in &p.notes {
        info!("network: {note}");
        c.notes.push(note.clone());
    }
    for b in p.blocks {
        let at = format!("{}:{}", rel.display(), b.line);
        for note in &b.notes {
            info!("network: {note}");
            c.notes.push(note.clone());
        }
        match &b.scope {
            dhcpcd::Scope::Ssid(s) => c.overlays.push(Overlay {
                iface: None,
                ssid: Some(s.clone()),
                ipv4: b.ipv4.clone(),
                ipv6: b.ipv6.clone(),
                what: format!("dhcpcd.conf ssid block ({at})"),
            }),
            dhcpcd::Scope::Interface(i) if is_wireless(root, i) => c.overlays.push(Overlay {
                iface: Some(i.clone()),
                ssid: None,
                ipv4: b.ipv4.clone(),
                ipv6: b.ipv6.clone(),
                what: format!("dhcpcd.conf interface {i} ({at})"),
            }),
            dhcpcd::Scope::Interface(i) => {
                let mut n = Network::new(i.clone(), NetKind::Ethernet, Source::Dhcpcd, rel.into());
                n.interface = Some(i.clone());
                n.ipv4 = b.ipv4.clone();
                n.ipv6 = b.ipv6.clone();
                n.notes.push(format!("interface block at {at}"));
                if p.denied.iter().any(|d| d == i) {
                    leave_out(
                        c,
                        &n,
                        "ignored",
                        "dhcpcd is told to leave it alone (denyinterfaces)".into(),
                    );
                    continue;
                }
                found.push(n);
            }
        }
    }
    Ok(())
}

/// Applies `--no-wifis`/`--wifi`, leaves out plain wired DHCP profiles (balenaOS does that by
/// itself), keeps one copy per SSID and one profile per interface (the source in use wins),
/// moves unmigratable networks to `c.unmigratable`; returns the networks to generate, in the
/// order found.
fn select(found: Vec<Network>, opts: &NetOptions, c: &mut Collected) -> Vec<Network> {
    let mut kept: Vec<Network> = Vec::new();
    let mut wanted_seen = vec![false; opts.wifis.len()];
    for n in found {
        if n.kind == NetKind::Wifi {
            if !opts.scan_wifis {
                debug!("network: ignoring wifi '{}' (--no-wifis)", n.name);
                continue;
            }
            if !opts.wifis.is_empty() {
                let ssid = n.ssid.as_deref().unwrap_or_default();
                match opts.wifis.iter().position(|w| w.as_bytes() == ssid) {
                    Some(i) => wanted_seen[i] = true,
                    None => {
                        info!(
                            "network: ignoring wifi config for ssid '{}' (not named by --wifi)",
                            n.ssid_display().unwrap_or_default()
                        );
                        continue;
                    }
                }
            }
        }
        kept.push(n);
    }
    for (w, seen) in opts.wifis.iter().zip(wanted_seen) {
        if !seen {
            warn!("network: --wifi '{w}': no network with this SSID is configured here");
            c.notes
                .push(format!("--wifi '{w}': no network with this SSID was found"));
        }
    }
    let active = c.active.clone();
    let rk = |n: &Network| rank(n.source, &active);
    // Best migratable copy per SSID: lowest source rank.
    let mut out: Vec<Network> = Vec::new();
    for (i, n) in kept.iter().enumerate() {
        if n.is_loopback() {
            // NetworkManager 1.42+ keeps a profile for `lo`; balenaOS sets `lo` up by itself.
            // Listed in the plan and the report, without a log line: nothing to act on.
            let why = "the loopback interface: balenaOS sets it up by itself";
            c.left_out.push(left_out_entry(n, "not-needed", why));
            continue;
        }
        let why = n.unmigratable();
        let same_ssid =
            |m: &Network| m.kind == NetKind::Wifi && m.ssid.is_some() && m.ssid == n.ssid;
        if n.kind == NetKind::Wifi && n.ssid.is_some() {
            let better = kept.iter().enumerate().find(|(j, m)| {
                *j != i
                    && same_ssid(m)
                    && m.unmigratable().is_none()
                    && (why.is_some()
                        || rk(m) < rk(n)
                        || (m.source == n.source
                            && *j < i
                            && m.security == n.security
                            && m.ipv4 == n.ipv4
                            && m.ipv6 == n.ipv6))
            });
            if let Some((_, m)) = better {
                let msg = format!(
                    "the same network comes from {} ({})",
                    m.source.as_str(),
                    m.origin.display()
                );
                leave_out(c, n, "ignored", msg);
                continue;
            }
        }
        if let Some(why) = why {
            leave_out(c, n, "not-migrated", why);
            continue;
        }
        out.push(n.clone());
    }
    // One profile per interface: the source in use wins. NetworkManager leaves the interfaces
    // of /etc/network/interfaces to ifupdown (its default `[ifupdown] managed=false`).
    let ifupdown_first = |n: &Network, m: &Network| {
        n.source == Source::Ifupdown && m.source == Source::NetworkManager
    };
    let mut res: Vec<Network> = Vec::new();
    for (i, n) in out.iter().enumerate() {
        let Some(iface) = n
            .interface
            .as_deref()
            .filter(|_| n.kind == NetKind::Ethernet)
        else {
            res.push(n.clone());
            continue;
        };
        let beats = |m: &Network, j: usize| {
            if ifupdown_first(m, n) {
                return true;
            }
            if ifupdown_first(n, m) {
                return false;
            }
            rk(m) < rk(n) || (rk(m) == rk(n) && j < i)
        };
        let winner = out.iter().enumerate().find(|(j, m)| {
            *j != i
                && m.kind == NetKind::Ethernet
                && m.source != n.source
                && m.interface.as_deref() == Some(iface)
                && beats(m, *j)
        });
        match winner {
            Some((_, m)) => {
                let why = format!(
                    "{iface} is configured by {} ({}), {}",
                    m.source.as_str(),
                    m.origin.display(),
                    if active.iter().any(|(a, _)| *a == m.source) {
                        "the network manager in use"
                    } else {
                        "which is preferred"
                    }
                );
                leave_out(c, n, "ignored", why);
            }
            None => res.push(n.clone()),
        }
    }
    // Plain wired DHCP: nothing to carry over (after conflicts, so a static profile of the
    // source in use is never replaced by "DHCP" from a stale file).
    let mut fin = Vec::new();
    for n in res {
        if n.is_plain_wired_dhcp() {
            let what = format!(
                "{} ({})",
                n.interface.clone().unwrap_or_else(|| n.name.clone()),
                n.source.as_str()
            );
            leave_out(
                c,
                &n,
                "not-needed",
                "wired DHCP: balenaOS does DHCP on every Ethernet interface by itself".into(),
            );
            c.wired_dhcp_config.push(what);
            continue;
        }
        fin.push(n);
    }
    fin
}

/// Sees whether the device is online over wired Ethernet with DHCP (module doc); returns how.
pub fn wired_dhcp(root: &Root) -> Option<String> {
    let net = Path::new("/sys/class/net");
    for ifname in root.list(net) {
        if ifname == "lo" {
            continue;
        }
        let d = net.join(&ifname);
        let read = |f: &str| {
            root.read_string(d.join(f))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        if read("type") != "1" || read("operstate") != "up" {
            continue;
        }
        if root.exists(d.join("wireless")) || root.exists(d.join("phy80211")) {
            continue;
        }
        if let Ok(target) = root.read_link(&d) {
            if target.to_string_lossy().contains("/virtual/") {
                continue;
            }
        }
        if let Some(lease) = lease_for(root, &ifname, &read("ifindex")) {
            return Some(format!(
                "{ifname} is up with a DHCP lease ({})",
                lease.display()
            ));
        }
    }
    None
}

fn lease_for(root: &Root, ifname: &str, ifindex: &str) -> Option<PathBuf> {
    if !ifindex.is_empty() {
        let p = PathBuf::from("/run/systemd/netif/leases").join(ifindex);
        if root.path(&p).is_file() {
            return Some(p);
        }
    }
    let nm = Path::new("/var/lib/NetworkManager");
    let suffix = format!("-{ifname}.lease");
    if let Some(n) = root.list(nm).into_iter().find(|n| n.ends_with(&suffix)) {
        return Some(nm.join(n));
    }
    let dhcp = Path::new("/var/lib/dhcp");
    let needle = format!("interface \"{ifname}\"");
    for n in root.list(dhcp) {
        if n.starts_with("dhclient") && n.ends_with(".leases") {
            let p = dhcp.join(&n);
            if n == format!("dhclient.{ifname}.leases")
                || root
                    .read_string(&p)
                    .map(|s| s.contains(&needle))
                    .unwrap_or(false)
            {
                return Some(p);
            }
        }
    }
    for dir in ["/var/lib/dhcpcd", "/var/lib/dhcpcd5"] {
        for n in [format!("{ifname}.lease"), format!("dhcpcd-{ifname}.lease")] {
            let p = Path::new(dir).join(n);
            if root.path(&p).is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The §7.4 rule, improved: pass with profiles to migrate, or (with a note) when online over
/// wired DHCP; otherwise fail, or warn with `--no-nwmgr-check`.
pub fn network_check(c: &Collected, no_nwmgr_check: bool) -> (Status, String) {
    let conns = c.connection_files();
    let unmig = if c.unmigratable.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = c.unmigratable.iter().map(|(n, _)| n.as_str()).collect();
        format!("; not migrated: {}", names.join(", "))
    };
    if !conns.is_empty() {
        return (
            Status::Pass,
            format!(
                "{} network profile(s) for balenaOS: {}{unmig}",
                conns.len(),
                conns.join(", ")
            ),
        );
    }
    if let Some(how) = &c.wired_detail {
        return (
            Status::Pass,
            format!(
                "no network profile to migrate, but the device is online over wired Ethernet \
                 with DHCP ({how}), which balenaOS brings up by itself{unmig}"
            ),
        );
    }
    if !c.wired_dhcp_config.is_empty() {
        return (
            Status::Pass,
            format!(
                "no network profile to migrate: wired Ethernet with DHCP is configured ({}), \
                 which balenaOS brings up by itself{unmig}",
                c.wired_dhcp_config.join(", ")
            ),
        );
    }
    let searched: Vec<String> = c.searched.iter().map(|p| p.display().to_string()).collect();
    let msg = format!(
        "no network configuration was found, the device might not be able to come online \
         after the migration (searched: {}){unmig}",
        searched.join(", ")
    );
    // The way around is named only when it is not already taken.
    if no_nwmgr_check {
        (Status::Warn, msg)
    } else {
        (
            Status::Fail,
            format!(
                "{msg}; pass a profile with --nwmgr-cfg, or --no-nwmgr-check if the device \
                 needs none"
            ),
        )
    }
}

/// One line of the dry-run plan for a report entry: what was found, what it became, or why it
/// was left out.
pub fn plan_line(n: &crate::report::Network) -> String {
    let what = format!(
        "{}{} from {}",
        n.kind,
        n.ssid
            .as_ref()
            .map(|x| format!(" '{x}'"))
            .unwrap_or_default(),
        n.source
    );
    match n.status.as_str() {
        "migrated" => format!(
            "  network   {what} → system-connections/{} ({})\n",
            n.name,
            n.reason.as_deref().unwrap_or("")
        ),
        status => format!(
            "  network   {what} '{}': {status}, {}\n",
            n.name,
            n.reason.as_deref().unwrap_or("")
        ),
    }
}

/// The report's `network` array.
pub fn report_entries(c: &Collected) -> Vec<crate::report::Network> {
    let mut v = c.entries.clone();
    v.extend(c.left_out.iter().cloned());
    v
}

/// Writes `c.files` under `boot_dir` (`<boot>/system-connections/...`,
/// `<boot>/system-proxy/...`), each 0600; returns the paths written.
pub fn stage(c: &Collected, boot_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in ["system-connections", "system-proxy"] {
        crate::files::create_private_dir(&boot_dir.join(dir))?;
    }
    for (rel, data) in &c.files {
        let p = boot_dir.join(rel);
        crate::files::write_private(&p, data)?;
        out.push(p);
    }
    Ok(out)
}

/// Validates a hostname: dot-separated labels of 1-63 characters `[A-Za-z0-9-]`, not starting
/// or ending with `-`, 253 characters at most (RFC 1123).
pub fn validate_hostname(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "it is {} characters long (at most 253)",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (two dots, or a dot at either end)".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "label '{label}' is {} characters long (at most 63)",
                label.len()
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "character {bad:?} is not allowed (only a-z, 0-9, '-')"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label '{label}' starts or ends with '-'"));
        }
    }
    Ok(())
}

/// The hostname to keep: the first non-comment line of `/etc/hostname`, else
/// `/proc/sys/kernel/hostname`; `None` when neither has one. Garbage is an error.
pub fn hostname(root: &Root) -> Result<Option<String>> {
    for rel in ["/etc/hostname", "/proc/sys/kernel/hostname"] {
        let text = match root.read_string(rel) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("reading hostname", rel, e)),
        };
        let Some(line) = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
        else {
            continue;
        };
        return match validate_hostname(line) {
            Ok(()) => Ok(Some(line.to_string())),
            Err(why) => Err(Error::new(
                "checking hostname",
                rel,
                format!("{:?} is not a valid hostname: {why}", line),
            )
            .hint("fix the hostname, or pass --no-keep-name to let balenaOS choose one")),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_validation() {
        assert!(validate_hostname("raspberrypi").is_ok());
        assert!(validate_hostname("pi-17.lab.example").is_ok());
        assert!(validate_hostname(&"a".repeat(63)).is_ok());
        assert!(validate_hostname(&"a".repeat(64)).is_err());
        assert!(validate_hostname("-bad").is_err());
        assert!(validate_hostname("bad-").is_err());
        assert!(validate_hostname("under_score").is_err());
        assert!(validate_hostname("a..b").is_err());
        assert!(validate_hostname("spa ce").is_err());
        assert!(validate_hostname("").is_err());
    }

    #[test]
    fn secret_keys() {
        for k in [
            "psk",
            "password",
            "leap-password",
            "wep-key0",
            "Passphrase",
            "pin",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["ssid", "id", "key-mgmt", "psk-flags"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
