//! Tests over the fixture corpus in `tests/fixtures/net/`: real-world files of every source,
//! golden keyfiles compared byte for byte, round trips, and sysroot mini trees.
//!
//! `TAKEOVER_UPDATE_GOLDEN=1 cargo test --lib net::` rewrites the golden files (review the diff).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/net")
}

/// Every secret in the corpus (all start with "fixture"): none may reach a log line or Debug.
const SECRETS: &[&str] = &[
    "fixture-home-psk-1",
    "fixture-cafe-psk-2",
    "fixture-sae-psk-3",
    "fixture odd;psk\\4 \"x\"",
    "fixture-eap-password-5",
    "fixture-vpn-password-6",
    "fixture-wep-7",
    "fixture-disabled-psk-8",
    "fixture-sae-psk-9",
    "fixture-trans-psk-10",
    "fixture-space-psk-11",
    "fixture connman psk 12",
    "fixture prov psk 13",
    "fixture-eap-pass-14",
    "fixture-hotspot-psk-15",
    "fixture-balena-psk-16",
    "fixture-home-psk-old",
    "fixture-stale-backup-psk",
    "fixture-netplan-psk-17",
    "fixture-dhcpcd-psk-20",
    "fixture-dhcpcd-psk-21",
    "fixture-ifupdown-psk-22",
    "fixture-ifupdown-psk-23",
    "fixture-netplan-psk-24",
    "fixture-netplan-psk-25",
    "fixture-netplan-eap-26",
    "fixture-iwd-psk-27",
    "fixture-iwd-eap-28",
    "fixture-cred-password-29",
    "fixture-proxy-pass-30",
    "fixture-stretch-psk-31",
    "4f8d2b1c9a7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a392817060504",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
];

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Parses one corpus directory with device-style origins; returns every network found.
fn corpus(group: &str) -> Vec<Network> {
    let dir = fixtures().join(group);
    let mut out = Vec::new();
    for p in files_in(&dir) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        match group {
            "nm" => {
                let origin = Path::new(NM_DIR).join(&name);
                out.push(nm::parse(&std::fs::read(&p).unwrap(), &origin).unwrap());
            }
            "wpa" => {
                let origin = Path::new(WPA_DIR).join(&name);
                out.extend(
                    wpa::parse(&std::fs::read(&p).unwrap(), &origin)
                        .unwrap()
                        .networks,
                );
            }
            "connman" => {
                let origin = Path::new(CONNMAN_DIR).join(&name);
                if p.is_dir() {
                    let s = origin.join("settings");
                    let data = std::fs::read(p.join("settings")).unwrap();
                    out.push(connman::parse_settings(&data, &s, &name).unwrap());
                } else {
                    out.extend(
                        connman::parse_config(&std::fs::read(&p).unwrap(), &origin).unwrap(),
                    );
                }
            }
            _ => unreachable!(),
        }
    }
    out
}

fn by_ssid(nets: &[Network]) -> BTreeMap<Vec<u8>, &Network> {
    nets.iter()
        .filter_map(|n| n.ssid.clone().map(|s| (s, n)))
        .collect()
}

fn psk(n: &Network) -> Option<&str> {
    n.security.secret().map(Secret::expose)
}

#[test]
fn nm_corpus_is_understood() {
    let nets = corpus("nm");
    assert_eq!(nets.len(), 11);
    let s = by_ssid(&nets);
    assert_eq!(psk(s[&b"Home".to_vec()]), Some("fixture-home-psk-1"));
    let cafe = s[&"Café-5G".as_bytes().to_vec()];
    assert_eq!(psk(cafe), Some("fixture-cafe-psk-2"));
    assert!(cafe.notes.iter().any(|n| n.contains("mac-address")));
    let attic = s[&b"attic-wpa3".to_vec()];
    assert!(attic.hidden && matches!(attic.security, Security::Sae { .. }));
    assert_eq!(attic.priority, Some(10));
    let odd = s[&b" \"Bob's\" ;net; #1 ".to_vec()];
    assert_eq!(psk(odd), Some("fixture odd;psk\\4 \"x\""));
    assert_eq!(s[&b"Free Cafe WiFi".to_vec()].security, Security::Open);
    assert!(s[&b"CorpNet".to_vec()].unmigratable().is_some());
    assert!(s[&b"Laptop Hotspot".to_vec()].unmigratable().is_some());
    assert_eq!(
        psk(s[&vec![255u8, 0, 32, 59]]).map(str::len),
        Some(64),
        "raw byte SSID with a 64-hex key"
    );
    let vpn = nets.iter().find(|n| n.name == "Office VPN").unwrap();
    assert_eq!(vpn.kind, NetKind::Other);
    let wired = nets.iter().find(|n| n.name == "Plant LAN").unwrap();
    assert_eq!(wired.ipv4.addresses, vec!["192.168.50.20/24"]);
    assert_eq!(wired.ipv6.gateway.as_deref(), Some("fd00:50::1"));
}

#[test]
fn wpa_corpus_is_understood() {
    let nets = corpus("wpa");
    let s = by_ssid(&nets);
    assert_eq!(nets.len(), 8, "disabled block skipped: {nets:?}");
    assert_eq!(s[&b"Home".to_vec()].priority, Some(10));
    let buro = s[&"Büro 2".as_bytes().to_vec()];
    assert!(buro.hidden);
    assert_eq!(psk(buro).map(str::len), Some(64));
    assert_eq!(s[&b"Guest # open".to_vec()].security, Security::Open);
    assert!(s[&b"CorpNet".to_vec()]
        .unmigratable()
        .unwrap()
        .contains("EAP"));
    assert_eq!(s[&b"Old Router".to_vec()].unmigratable().unwrap(), "WEP");
    let sae = s[&b"say \"hi\"! ;x".to_vec()];
    assert_eq!(psk(sae), Some("fixture-sae-psk-9"));
    assert!(matches!(
        s[&b"Transition".to_vec()].security,
        Security::WpaPsk { .. }
    ));
    assert_eq!(
        psk(s[&b"  spaced  ".to_vec()]),
        Some("fixture-space-psk-11")
    );
}

#[test]
fn connman_corpus_is_understood() {
    let nets = corpus("connman");
    let s = by_ssid(&nets);
    assert_eq!(
        psk(s[&b"Home Net".to_vec()]),
        Some("fixture connman psk 12")
    );
    assert_eq!(s[&"Cafe €".as_bytes().to_vec()].security, Security::Open);
    assert!(s[&b"Corp".to_vec()].unmigratable().is_some());
    let wh = s[&b"Warehouse 3".to_vec()];
    assert!(wh.hidden);
    assert_eq!(wh.ipv4.addresses, vec!["172.16.3.40/24"]);
    assert_eq!(s[&vec![0x7e, 0x21, 0xff]].security, Security::Open);
    let eth = nets.iter().find(|n| n.kind == NetKind::Ethernet).unwrap();
    assert_eq!(eth.ipv4.addresses, vec!["10.4.0.15/24"]);
    assert_eq!(eth.ipv4.dns_search, vec!["factory.example"]);
    assert_eq!(eth.ipv6.method, IpMethod::Disabled);
}

/// Generates the keyfiles of every migratable network of a corpus group.
fn generate(group: &str) -> Vec<(String, String, Network)> {
    let nets: Vec<Network> = corpus(group)
        .into_iter()
        .filter(|n| n.unmigratable().is_none())
        .collect();
    let refs: Vec<&Network> = nets.iter().collect();
    let names = gen::file_names(&refs, &[]);
    nets.iter()
        .zip(names)
        .map(|(n, name)| (name.clone(), gen::keyfile(n, &name).unwrap(), n.clone()))
        .collect()
}

#[test]
fn golden_keyfiles_byte_for_byte() {
    let update = std::env::var_os("TAKEOVER_UPDATE_GOLDEN").is_some();
    for group in ["nm", "wpa", "connman"] {
        let dir = fixtures().join("golden").join(group);
        let got = generate(group);
        if update {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, text, _) in &got {
                std::fs::write(dir.join(name), text).unwrap();
            }
        }
        let mut want: Vec<String> = files_in(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        want.sort();
        let mut names: Vec<String> = got.iter().map(|(n, _, _)| n.clone()).collect();
        names.sort();
        assert_eq!(names, want, "{group}: file names");
        for (name, text, _) in &got {
            let golden = std::fs::read(dir.join(name)).unwrap();
            assert_eq!(
                text.as_bytes(),
                golden.as_slice(),
                "{group}/{name} differs from golden:\n{text}"
            );
        }
    }
}

#[test]
fn every_generated_keyfile_round_trips() {
    let mut count = 0;
    for group in ["nm", "wpa", "connman"] {
        for (name, text, n) in generate(group) {
            let back = nm::parse(text.as_bytes(), Path::new(&name)).unwrap();
            assert_eq!(back.kind, n.kind, "{name}");
            assert_eq!(back.ssid, n.ssid, "{name}");
            assert_eq!(
                back.security.secret().map(Secret::expose),
                n.security.secret().map(Secret::expose),
                "{name}"
            );
            assert_eq!(
                std::mem::discriminant(&back.security),
                std::mem::discriminant(&n.security),
                "{name}"
            );
            assert_eq!(back.hidden, n.hidden, "{name}");
            assert_eq!(back.ipv4.addresses, n.ipv4.addresses, "{name}");
            assert_eq!(back.ipv4.gateway, n.ipv4.gateway, "{name}");
            assert_eq!(back.ipv4.dns, n.ipv4.dns, "{name}");
            assert_eq!(back.ipv6.addresses, n.ipv6.addresses, "{name}");
            assert_eq!(back.name, name, "id is the file name");
            assert!(back.unmigratable().is_none(), "{name}");
            // Nothing pins the profile to the old hardware.
            for k in ["interface-name", "mac-address", "bssid", "permissions"] {
                assert!(!text.contains(&format!("\n{k}=")), "{name}: {k}");
            }
            count += 1;
        }
    }
    assert_eq!(count, 19);
}

#[test]
fn generated_ssids_survive_any_bytes() {
    // Every single byte value, and awkward strings, in an SSID.
    let mut cases: Vec<Vec<u8>> = (0u8..=255).map(|b| vec![b'a', b, b'z']).collect();
    for s in [
        &b" lead"[..],
        b"trail ",
        b"1;2;3;",
        b"12",
        b"0x4142",
        b"\\;",
        b";",
        b"#",
        b"[x]",
        b"a=b",
        b"\"quoted\"",
        b"\xff\xfe\xfd",
        "日本語のネットワーク".as_bytes(),
    ] {
        cases.push(s.to_vec());
    }
    for ssid in cases {
        let mut n = Network::new("x", NetKind::Wifi, Source::WpaSupplicant, "/x".into());
        n.ssid = Some(ssid.clone());
        n.security = Security::WpaPsk {
            psk: Secret::new("round-trip-psk \\;\"'"),
        };
        let text = gen::keyfile(&n, "wifi-x").unwrap();
        let back = nm::parse(text.as_bytes(), Path::new("wifi-x")).unwrap();
        assert_eq!(back.ssid.as_deref(), Some(ssid.as_slice()), "{text}");
        assert_eq!(psk(&back), Some("round-trip-psk \\;\"'"));
    }
}

fn opts() -> NetOptions {
    NetOptions {
        scan_wifis: true,
        ..NetOptions::default()
    }
}

fn root(case: &str) -> Root {
    Root::new(fixtures().join("roots").join(case))
}

fn ssids(c: &Collected) -> Vec<String> {
    c.networks.iter().filter_map(|n| n.ssid_display()).collect()
}

fn assert_files_reparse(c: &Collected) {
    for (rel, data) in &c.files {
        if let Some(name) = rel.strip_prefix("system-connections/") {
            let n = nm::parse(data, Path::new(name)).unwrap();
            if let Some(orig) = c
                .networks
                .iter()
                .find(|x| x.name == n.name || x.ssid == n.ssid)
            {
                assert_eq!(n.ssid, orig.ssid);
            }
        }
    }
}

#[test]
fn root_nm_pi_prefers_networkmanager_and_fills_gaps_from_wpa() {
    let c = collect(&root("nm-pi"), &opts()).unwrap();
    let mut got = ssids(&c);
    got.sort();
    // Home from NM (not the stale wpa copy or the ~ backup), the hotspot password from
    // wpa_supplicant because NM keeps it in a desktop keyring; the static wired profile.
    // Also the netplan-generated profile NetworkManager keeps under /run.
    assert_eq!(got, vec!["Home", "Laptop Hotspot", "Netplan Net"]);
    let home = c
        .networks
        .iter()
        .find(|n| n.ssid.as_deref() == Some(b"Home"))
        .unwrap();
    assert_eq!(home.source, Source::NetworkManager);
    assert_eq!(psk(home), Some("fixture-home-psk-1"));
    assert_eq!(
        c.connection_files(),
        vec![
            "wifi-home",
            "ethernet-plant-lan",
            "wifi-netplan-net",
            "wifi-laptop-hotspot"
        ]
    );
    assert!(c
        .unmigratable
        .iter()
        .any(|(n, w)| n.starts_with("Corp") && w.contains("EAP")));
    assert!(!c.unmigratable.iter().any(|(n, _)| n.starts_with("Laptop")));
    // NetworkManager's own profile of `lo` (type loopback) is not needed, not a warning.
    assert!(!c.unmigratable.iter().any(|(n, _)| n.starts_with("lo ")));
    assert!(c.left_out.iter().any(|e| e.name == "lo"
        && e.status == "not-needed"
        && e.reason.as_deref().unwrap().contains("loopback")));
    assert!(!c.wired_dhcp_active, "wlan0 is wireless");
    let (st, msg) = network_check(&c, false);
    assert_eq!(st, Status::Pass, "{msg}");
    assert!(msg.contains("wifi-home") && msg.contains("Corp"), "{msg}");
    let all = report_entries(&c);
    let e: Vec<_> = all.iter().filter(|e| e.status == "migrated").collect();
    assert_eq!(e.len(), 4);
    // Left out, each with a status and a reason: the EAP profile, the stale wpa copy of Home.
    let out: Vec<_> = all.iter().filter(|e| e.status != "migrated").collect();
    assert!(out
        .iter()
        .any(|e| e.status == "not-migrated" && e.reason.as_deref().unwrap().contains("EAP")));
    assert!(out.iter().any(|e| e.status == "ignored"
        && e.ssid.as_deref() == Some("Home")
        && e.source == "wpa_supplicant"));
    assert_eq!(e[0].name, "wifi-home");
    assert_eq!(e[0].kind, "wifi");
    assert_eq!(e[0].ssid.as_deref(), Some("Home"));
    assert_eq!(e[0].source, "networkmanager");
    assert_eq!(e[1].kind, "ethernet");
    assert_eq!(e[3].source, "wpa_supplicant");
    assert_eq!(
        hostname(&root("nm-pi")).unwrap().as_deref(),
        Some("pi-kitchen")
    );
    assert_files_reparse(&c);
}

#[test]
fn root_wpa_only_with_filter_and_no_wifis() {
    let r = root("wpa-only");
    let c = collect(&r, &opts()).unwrap();
    assert_eq!(c.networks.len(), 6, "{:?}", ssids(&c));
    assert_eq!(c.unmigratable.len(), 2, "{:?}", c.unmigratable);
    assert!(c.notes.iter().any(|n| n.contains("disabled=1")));
    assert!(c.searched.contains(&PathBuf::from(
        "/etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
    )));
    assert_files_reparse(&c);

    let mut o = opts();
    o.wifis = vec!["Büro 2".into(), "  spaced  ".into(), "Nowhere".into()];
    let c = collect(&r, &o).unwrap();
    let mut got = ssids(&c);
    got.sort();
    assert_eq!(got, vec!["  spaced  ", "Büro 2"]);
    assert!(c.notes.iter().any(|n| n.contains("Nowhere")));

    let mut o = opts();
    o.scan_wifis = false;
    let c = collect(&r, &o).unwrap();
    assert!(c.files.is_empty());
    let (st, msg) = network_check(&c, false);
    assert_eq!(st, Status::Fail);
    assert!(
        msg.contains("/etc/wpa_supplicant/wpa_supplicant.conf"),
        "{msg}"
    );
    assert_eq!(network_check(&c, true).0, Status::Warn);
    assert_eq!(hostname(&r).unwrap().as_deref(), Some("sensor-17"));
}

#[test]
fn root_connman() {
    let c = collect(&root("connman"), &opts()).unwrap();
    let mut got = ssids(&c);
    got.sort();
    assert_eq!(
        got,
        vec!["Cafe €", "Home Net", "Warehouse 3", "~!\\xff"],
        "{c:?}"
    );
    assert_eq!(
        c.networks
            .iter()
            .filter(|n| n.kind == NetKind::Ethernet)
            .count(),
        1
    );
    assert_eq!(c.unmigratable.len(), 2, "{:?}", c.unmigratable);
    assert_eq!(c.files.len(), 5);
    assert_files_reparse(&c);
}

#[test]
fn root_wired_dhcp_passes_with_note() {
    for case in ["wired-dhcp", "wired-dhclient"] {
        let c = collect(&root(case), &opts()).unwrap();
        assert!(c.files.is_empty());
        assert!(c.wired_dhcp_active, "{case}");
        let (st, msg) = network_check(&c, false);
        assert_eq!(st, Status::Pass, "{msg}");
        assert!(msg.contains("wired Ethernet with DHCP"), "{msg}");
    }
    assert_eq!(hostname(&root("wired-dhclient")).unwrap(), None);
}

#[test]
fn root_nothing_fails_and_names_what_was_searched() {
    let r = root("nothing");
    let c = collect(&r, &opts()).unwrap();
    assert!(!c.wired_dhcp_active, "eth0 down, wlan0 wireless");
    let (st, msg) = network_check(&c, false);
    assert_eq!(st, Status::Fail);
    for p in [
        NM_DIR,
        "/etc/wpa_supplicant/wpa_supplicant.conf",
        CONNMAN_DIR,
    ] {
        assert!(msg.contains(p), "{msg}");
    }
    let (st, _) = network_check(&c, true);
    assert_eq!(st, Status::Warn);
    let e = hostname(&r).unwrap_err();
    assert!(e.to_string().contains("my_host!"), "{e}");
    assert!(e.to_string().contains("--no-keep-name"), "{e}");
}

#[test]
fn root_balena_carries_files_over() {
    let mut o = opts();
    o.balena_os = true;
    let c = collect(&root("balena"), &o).unwrap();
    let names: Vec<&str> = c.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "system-connections/resin-wifi",
            "system-proxy/no_proxy",
            "system-proxy/redsocks.conf"
        ]
    );
    let orig =
        std::fs::read(fixtures().join("roots/balena/mnt/boot/system-connections/resin-wifi"))
            .unwrap();
    assert_eq!(c.files[0].1, orig, "copied unchanged");
    let e = report_entries(&c);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].source, "balenaos");
    assert_eq!(e[0].ssid.as_deref(), Some("Shop Floor"));
    assert_eq!(network_check(&c, false).0, Status::Pass);

    let err = collect(&root("balena-mismatch"), &o).unwrap_err();
    assert!(err.to_string().contains("resin-wifi"), "{err}");
}

#[test]
fn nwmgr_cfg_copied_as_given_and_validated() {
    let dir = std::env::temp_dir().join(format!("takeover-net-nwmgr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = fixtures().join("nm/wired-static.nmconnection");
    let mut o = opts();
    o.nwmgr_cfgs = vec![good.clone(), fixtures().join("nm/home.nmconnection")];
    let c = collect(&root("nothing"), &o).unwrap();
    assert_eq!(c.connection_files(), vec!["balena-01", "balena-02"]);
    assert_eq!(c.files[0].1, std::fs::read(&good).unwrap());
    assert_eq!(report_entries(&c)[1].source, "nwmgr-cfg");
    assert_eq!(network_check(&c, false).0, Status::Pass);

    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "network={\n ssid=\"x\"\n}\n").unwrap();
    o.nwmgr_cfgs = vec![bad.clone()];
    let e = collect(&root("nothing"), &o).unwrap_err();
    assert!(e.to_string().contains("--nwmgr-cfg"), "{e}");
    assert!(e.to_string().contains("bad.conf"), "{e}");

    // Staging writes every file 0600.
    o.nwmgr_cfgs = vec![good];
    let c = collect(&root("nm-pi"), &o).unwrap();
    let boot = dir.join("boot");
    let written = stage(&c, &boot).unwrap();
    assert_eq!(written.len(), c.files.len());
    for p in &written {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o600, "{}", p.display());
    }
    assert!(boot.join("system-connections/wifi-home").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn secrets_never_reach_logs_or_debug() {
    // The capture buffer is shared by every test of the process: another test may restart it
    // while we run, so try a few times to get our own lines.
    let mut lines = Vec::new();
    let mut all = Vec::new();
    for _ in 0..5 {
        crate::log::capture_start();
        all.clear();
        for case in ["nm-pi", "wpa-only", "connman", "balena"] {
            let mut o = opts();
            o.balena_os = case == "balena";
            let c = collect(&root(case), &o).unwrap();
            all.push(format!("{c:?}"));
            all.push(format!("{:?}", network_check(&c, false)));
            all.push(format!("{:?}", report_entries(&c)));
        }
        for g in ["nm", "wpa", "connman"] {
            all.push(format!("{:?}", corpus(g)));
        }
        lines = crate::log::capture_take();
        if lines.iter().filter(|l| l.contains("network:")).count() > 20 {
            break;
        }
    }
    assert!(
        lines.iter().filter(|l| l.contains("network:")).count() > 20,
        "collect logs what it does: {lines:?}"
    );
    for text in lines.iter().chain(all.iter()) {
        for s in SECRETS {
            assert!(!text.contains(s), "secret {s:?} leaked in: {text}");
        }
    }
}

/// Seeded xorshift mutations of a file: bytes replaced by `specials`, truncated, removed,
/// inserted (1 to 6 edits).
struct Mangler(u64);

impl Mangler {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn mangle(&mut self, base: &[u8], specials: &[u8]) -> Vec<u8> {
        let mut d = base.to_vec();
        for _ in 0..(self.next() % 6 + 1) {
            if d.is_empty() {
                break;
            }
            let i = (self.next() as usize) % d.len();
            let sp = specials[(self.next() as usize) % specials.len()];
            match self.next() % 4 {
                0 => d[i] = sp,
                1 => d.truncate(i),
                2 => {
                    d.remove(i);
                }
                _ => d.insert(i, sp),
            }
        }
        d
    }
}

/// Mutated corpus files (bytes flipped, truncated, spliced): parsers return Ok or Err, never
/// panic, and whatever parses as migratable generates a keyfile that round-trips.
#[test]
fn parsers_never_panic_on_mangled_input() {
    let mut m = Mangler(0x2545_f491_4f6c_dd1du64);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for g in ["nm", "wpa", "connman"] {
        for p in files_in(&fixtures().join(g)) {
            let p = if p.is_dir() { p.join("settings") } else { p };
            inputs.push(std::fs::read(p).unwrap());
        }
    }
    let specials = b"[]=;\\\"#\r\n{} \x00\xff";
    let mut runs = 0;
    for base in &inputs {
        for _ in 0..300 {
            let d = m.mangle(base, specials);
            let origin = Path::new("/fuzz");
            let mut nets = Vec::new();
            if let Ok(n) = nm::parse(&d, origin) {
                nets.push(n);
            }
            if let Ok(p) = wpa::parse(&d, origin) {
                nets.extend(p.networks);
            }
            if let Ok(v) = connman::parse_config(&d, origin) {
                nets.extend(v);
            }
            if let Ok(n) = connman::parse_settings(&d, origin, "wifi_00_41_managed_psk") {
                nets.push(n);
            }
            for n in nets.iter().filter(|n| n.unmigratable().is_none()) {
                let text = gen::keyfile(n, "wifi-fuzz").unwrap();
                let back = nm::parse(text.as_bytes(), origin).unwrap();
                assert_eq!(back.ssid, n.ssid, "{text}");
                assert_eq!(psk(&back), psk(n));
            }
            runs += 1;
        }
    }
    assert!(runs > 3000, "{runs}");
}

/// Sysroots of the sources added for issue 19: collected and staged keyfiles compared byte for
/// byte with `golden/roots/<case>/`.
const GOLDEN_ROOTS: &[&str] = &[
    "dhcpcd-pi",
    "ifupdown-debian",
    "netplan-ubuntu",
    "networkd-iwd",
    "proxy-apt",
    "raspbian-stretch",
];

#[test]
fn golden_roots_byte_for_byte() {
    let update = std::env::var_os("TAKEOVER_UPDATE_GOLDEN").is_some();
    for case in GOLDEN_ROOTS {
        let dir = fixtures().join("golden/roots").join(case);
        let c = collect(&root(case), &opts()).unwrap();
        if update {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, data) in &c.files {
                let name = name.replace('/', "__");
                std::fs::write(dir.join(name), data).unwrap();
            }
        }
        let mut want: Vec<String> = files_in(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        want.sort();
        let mut got: Vec<String> = c.files.iter().map(|(n, _)| n.replace('/', "__")).collect();
        got.sort();
        assert_eq!(got, want, "{case}: file names");
        for (name, data) in &c.files {
            let name = name.replace('/', "__");
            let golden = std::fs::read(dir.join(&name)).unwrap();
            assert_eq!(
                String::from_utf8_lossy(data),
                String::from_utf8_lossy(&golden),
                "{case}/{name} differs from golden"
            );
        }
        assert_files_reparse(&c);
    }
}

fn net<'a>(c: &'a Collected, name: &str) -> &'a Network {
    c.networks
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("{name} not in {:?}", c.networks))
}

fn left<'a>(c: &'a Collected, name: &str) -> Vec<&'a crate::report::Network> {
    c.left_out.iter().filter(|e| e.name == name).collect()
}

#[test]
fn root_dhcpcd_static_eth_and_per_ssid_wifi() {
    let c = collect(&root("dhcpcd-pi"), &opts()).unwrap();
    assert_eq!(
        c.active.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![Source::Dhcpcd, Source::WpaSupplicant]
    );
    let eth = net(&c, "eth0");
    assert_eq!(eth.source, Source::Dhcpcd);
    assert_eq!(eth.ipv4.addresses, vec!["192.168.40.17/24"]);
    assert_eq!(eth.ipv4.gateway.as_deref(), Some("192.168.40.1"));
    assert_eq!(eth.ipv4.dns, vec!["192.168.40.1", "9.9.9.9"]);
    assert_eq!(eth.ipv4.route_metric, Some(100));
    assert_eq!(eth.ipv6.addresses, vec!["fd40:17::17/64"]);
    let gh = net(&c, "Greenhouse");
    assert_eq!(gh.ipv4.addresses, vec!["10.30.0.44/16"]);
    assert_eq!(gh.ipv4.gateway.as_deref(), Some("10.30.0.1"));
    assert_eq!(
        gh.ipv4.route_metric,
        Some(300),
        "interface block, then ssid block"
    );
    let ph = net(&c, "Packhouse");
    assert_eq!(ph.ipv4.method, IpMethod::Auto);
    assert_eq!(ph.ipv4.route_metric, Some(300));
    let usb = net(&c, "usb0");
    assert!(usb.ipv4.never_default && usb.ipv4.method == IpMethod::Auto);
    assert!(c.notes.iter().any(|n| n.contains("static_eth0")));
    assert_eq!(network_check(&c, false).0, Status::Pass);
}

#[test]
fn root_ifupdown_static_wifi_wpa_conf_and_unsupported() {
    let c = collect(&root("ifupdown-debian"), &opts()).unwrap();
    assert_eq!(c.active[0].0, Source::Ifupdown);
    let eth = net(&c, "eth0");
    assert_eq!(eth.ipv4.addresses, vec!["192.168.60.10/24"]);
    assert_eq!(eth.ipv4.gateway.as_deref(), Some("192.168.60.1"));
    assert_eq!(eth.ipv4.dns, vec!["192.168.60.1", "1.0.0.1"]);
    assert_eq!(eth.ipv4.dns_search, vec!["plant.example"]);
    assert_eq!(eth.ipv4.route_metric, Some(50));
    assert_eq!(eth.ipv4.routes.len(), 1);
    assert_eq!(eth.ipv6.addresses, vec!["2001:db8:60::10/64"]);
    assert_eq!(eth.ipv6.gateway.as_deref(), Some("2001:db8:60::1"));
    assert!(eth.autoconnect);
    assert!(!net(&c, "eth2").autoconnect, "no auto line");
    let w = net(&c, "Mill Office");
    assert_eq!(psk(w), Some("fixture-ifupdown-psk-22"));
    assert_eq!(w.ipv4.addresses, vec!["192.168.61.20/24"]);
    let y = net(&c, "Yard AP");
    assert_eq!(y.interface.as_deref(), Some("wlan1"));
    assert_eq!(psk(y), Some("fixture-ifupdown-psk-23"));
    // eth1 is plain DHCP: no profile, and the check says why it passes anyway.
    assert_eq!(left(&c, "eth1")[0].status, "not-needed");
    for (name, word) in [("bond0", "bond"), ("br0", "bridge"), ("eth0.20", "VLAN")] {
        let e = left(&c, name);
        assert_eq!(e.len(), 1, "{name}");
        assert_eq!(e[0].status, "not-migrated");
        assert!(e[0].reason.as_deref().unwrap().contains(word), "{e:?}");
        assert!(c
            .unmigratable
            .iter()
            .any(|(n, w)| n.starts_with(name) && w.contains(word)));
    }
    assert!(c.wired_dhcp_config.iter().any(|w| w.starts_with("eth1")));
}

#[test]
fn root_netplan_merges_files_and_reports_virtual_devices() {
    let c = collect(&root("netplan-ubuntu"), &opts()).unwrap();
    assert_eq!(c.active[0].0, Source::Netplan, "{:?}", c.active);
    let eth = net(&c, "eth0");
    assert_eq!(
        eth.ipv4.method,
        IpMethod::Manual,
        "60-*.yaml turned DHCP off"
    );
    assert_eq!(
        eth.ipv4.addresses,
        vec!["10.44.0.12/24"],
        "/lib copy is shadowed"
    );
    assert_eq!(eth.ipv4.gateway.as_deref(), Some("10.44.0.1"));
    assert_eq!(eth.ipv4.route_metric, Some(100));
    assert_eq!(eth.ipv4.routes[0].dest, "172.16.44.0/24");
    assert_eq!(eth.ipv4.dns, vec!["10.44.0.1"]);
    assert_eq!(eth.ipv6.addresses, vec!["fd44::12/64"]);
    assert_eq!(psk(net(&c, "Quay Wifi")), Some("fixture-netplan-psk-24"));
    assert!(net(&c, "Hidden Dock").hidden);
    assert_eq!(net(&c, "Guest Quay").security, Security::Open);
    for (name, word) in [("Staff", "EAP"), ("vlan44", "VLAN"), ("bond0", "bond")] {
        let e = left(&c, name);
        assert_eq!(e.len(), 1, "{name}: {:?}", c.left_out);
        assert!(e[0].reason.as_deref().unwrap().contains(word), "{e:?}");
    }
}

#[test]
fn root_networkd_and_iwd() {
    let c = collect(&root("networkd-iwd"), &opts()).unwrap();
    assert_eq!(
        c.active.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![Source::Networkd, Source::Iwd]
    );
    let eth = net(&c, "enp1s0");
    assert_eq!(eth.ipv4.addresses, vec!["192.168.70.5/24"]);
    assert_eq!(eth.ipv4.gateway.as_deref(), Some("192.168.70.1"));
    assert_eq!(eth.ipv4.dns, vec!["192.168.70.1", "9.9.9.9"]);
    assert_eq!(eth.ipv4.routes[0].metric, Some(25));
    assert_eq!(eth.ipv6.addresses, vec!["fd70::5/64"]);
    assert_eq!(
        left(&c, "enp1s0")[0].status,
        "ignored",
        "30-wired-dup.network"
    );
    let fs = net(&c, "Field Station");
    assert_eq!(psk(fs), Some("fixture-iwd-psk-27"));
    assert_eq!(
        fs.ipv4.route_metric,
        Some(600),
        "IP settings of 25-wireless.network"
    );
    let m = net(&c, "Mühle 2");
    assert!(m.hidden);
    assert_eq!(psk(m).map(str::len), Some(64));
    assert!(!net(&c, "Visitor").autoconnect);
    assert!(left(&c, "Campus")[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("EAP"));
    assert!(c
        .left_out
        .iter()
        .any(|e| e.name.starts_with("br0") && e.status == "not-migrated"));
    assert!(left(&c, "enp2s0")[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("bridge"));
    assert_eq!(left(&c, "Name=en*")[0].status, "not-needed");
}

#[test]
fn root_proxy_is_found_reported_and_migrated() {
    let c = collect(&root("proxy-apt"), &opts()).unwrap();
    let p = c.proxy.as_ref().unwrap();
    assert_eq!(
        p.from,
        vec!["/etc/environment"],
        "apt's http proxy loses to it"
    );
    let r = report_proxy(&c).unwrap();
    assert_eq!(r.https.as_deref(), Some("http://plant:***@10.80.0.3:3128"));
    assert_eq!(
        r.migrated,
        vec!["system-proxy/redsocks.conf", "system-proxy/no_proxy"]
    );
    let no_proxy = &c
        .files
        .iter()
        .find(|(n, _)| n == "system-proxy/no_proxy")
        .unwrap()
        .1;
    assert_eq!(no_proxy, b"127.0.0.1\n10.80.0.0/16\n");
    assert!(c.notes.iter().any(|n| n.contains(".plant.example")));
    // NetworkManager fidelity on the same tree.
    let plant = net(&c, "Plant");
    assert_eq!(plant.priority, Some(5));
    assert_eq!(plant.ipv4.routes[0].metric, Some(10));
    assert_eq!(plant.ipv4.route_metric, Some(50));
    assert_eq!(plant.ipv4.may_fail, Some(false));
    assert_eq!(plant.ipv6.method, IpMethod::Disabled);
    // apt alone.
    let apt = proxy::detect(&root("proxy-apt"), &[]).unwrap();
    assert_eq!(
        apt.http.as_deref(),
        Some("http://plant:fixture-proxy-pass-30@10.80.0.3:3128/")
    );
}

/// The readers of issue 19 on mangled copies of their fixtures: never a panic, and whatever
/// comes out migratable generates a keyfile that reads back.
#[test]
fn new_readers_never_panic_on_mangled_input() {
    let mut m = Mangler(0x9e37_79b9_7f4a_7c15u64);
    let roots = fixtures().join("roots");
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        (
            "dhcpcd",
            std::fs::read(roots.join("dhcpcd-pi/etc/dhcpcd.conf")).unwrap(),
        ),
        (
            "ifupdown",
            std::fs::read(roots.join("ifupdown-debian/etc/network/interfaces")).unwrap(),
        ),
        (
            "ifupdown",
            std::fs::read(roots.join("ifupdown-debian/etc/network/interfaces.d/bond")).unwrap(),
        ),
        (
            "netplan",
            std::fs::read(roots.join("netplan-ubuntu/etc/netplan/50-cloud-init.yaml")).unwrap(),
        ),
        (
            "netplan",
            std::fs::read(roots.join("netplan-ubuntu/etc/netplan/60-static-eth0.yaml")).unwrap(),
        ),
        (
            "networkd",
            std::fs::read(roots.join("networkd-iwd/etc/systemd/network/20-wired.network")).unwrap(),
        ),
        (
            "iwd",
            std::fs::read(roots.join("networkd-iwd/var/lib/iwd/Field Station.psk")).unwrap(),
        ),
        (
            "proxy",
            std::fs::read(roots.join("proxy-apt/etc/environment")).unwrap(),
        ),
    ];
    let tmp = std::env::temp_dir().join(format!("takeover-net-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(tmp.join("etc/network")).unwrap();
    let r = Root::new(&tmp);
    let specials = b"[]=;:\\\"#\r\n{}- \t/\x00\xff";
    let mut runs = 0;
    for (kind, base) in &inputs {
        for _ in 0..200 {
            let d = m.mangle(base, specials);
            let text = String::from_utf8_lossy(&d).into_owned();
            let mut nets: Vec<Network> = Vec::new();
            match *kind {
                "dhcpcd" => {
                    let _ = dhcpcd::parse(&text, Path::new("/etc/dhcpcd.conf"));
                }
                "ifupdown" => {
                    std::fs::write(tmp.join("etc/network/interfaces"), &d).unwrap();
                    let _ = ifupdown::read(&r);
                }
                "netplan" => {
                    if let Ok(v) = serde_yaml::from_str::<serde_yaml::Value>(&text) {
                        nets.extend(netplan::networks(&v, Path::new("/etc/netplan/x.yaml")));
                    }
                }
                "networkd" => {
                    let _ = networkd::parse_network(&text, Path::new("/x.network"));
                }
                "iwd" => nets.extend(networkd::parse_iwd(&d, Path::new("/var/lib/iwd/x.psk"))),
                _ => {
                    let _ = proxy::parse_url(&text);
                    let _ = proxy::redacted(&text);
                }
            }
            for n in nets.iter().filter(|n| n.unmigratable().is_none()) {
                let kf = gen::keyfile(n, "x").unwrap();
                let back = nm::parse(kf.as_bytes(), Path::new("x")).unwrap();
                assert_eq!(back.ssid, n.ssid, "{kf}");
                assert_eq!(back.ipv4.addresses, n.ipv4.addresses, "{kf}");
            }
            runs += 1;
        }
    }
    std::fs::remove_dir_all(&tmp).unwrap();
    assert!(runs >= 1600, "{runs}");
}

#[test]
fn root_raspbian_stretch_dhcpcd_static_wifi_through_ifupdown_wpa_roam() {
    let c = collect(&root("raspbian-stretch"), &opts()).unwrap();
    let a = net(&c, "Allotment");
    assert_eq!(psk(a), Some("fixture-stretch-psk-31"));
    assert_eq!(
        a.ipv4.addresses,
        vec!["192.168.88.30/24"],
        "dhcpcd's wlan0 block"
    );
    assert_eq!(a.ipv4.dns, vec!["192.168.88.1", "8.8.8.8"]);
    assert_eq!(a.interface.as_deref(), Some("wlan0"));
    assert_eq!(left(&c, "eth0")[0].status, "ignored", "inet manual");
    assert!(c
        .notes
        .iter()
        .any(|n| n.contains("'default' is a wpa-roam logical")));
    assert!(!c.networks.iter().any(|n| n.name == "default"));
    assert_eq!(c.connection_files(), vec!["wifi-allotment"]);
}
