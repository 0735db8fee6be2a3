//! Stage 1 checks: every precondition of a migration, with a name, a status and a detail that
//! says what the operator can do. Nothing here changes the system.
//!
//! The checks, always in this order (name — skipped by):
//!
//! | # | name | what | skipped by |
//! |---|---|---|---|
//! | 1 | `root-user` | effective uid 0 (a warning in `--dry-run`, which needs no root) | — |
//! | 2 | `config-json` | applicationId, deviceType, apiEndpoint, apiKey/deviceApiKey, vpnEndpoint + vpnPort (the VPN keys only without `--no-vpn-check`) | — |
//! | 3 | `device-type` | the board is in the device table and accepts the device type (`--change-dt-to`, else config.json's) | `--no-dt-check` |
//! | 4 | `image` | the image (`-i` or downloaded) proven good: full decode, layout, built for the device type, `--image-sha256` (`not-run` in a dry run that could not get it) | — |
//! | 5 | `os-support` | the running OS is in the support table | `--no-os-check` (then a warning) |
//! | 6 | `api-ping` | `GET <apiEndpoint>/ping` answers OK | `--no-api-check` |
//! | 7 | `vpn-connect` | TCP connect to vpnEndpoint:vpnPort within `--check-timeout` | `--no-vpn-check` |
//! | 8 | `network-config` | at least one network configuration will be migrated (computed by the network module) | `--no-nwmgr-check` |
//! | 9 | `secure-boot` | UEFI Secure Boot is off | — |
//! | 10 | `init-system` | PID 1 is systemd or sysvinit (re-executes on `telinit u`) | — |
//! | 11 | `stage2-kernel` | tmpfs and ext4 usable; loop too with `--backup-cfg` (else a warning) | — |
//! | 12 | `target-disk` | the disk to install on is a whole, writable disk ≥ the image, not holding `--log-to` | — |
//! | 13 | `ram-budget` | MemAvailable − swap in use ≥ image + backup + takeover binary + network files + [`RAM_HEADROOM`] | — |
//! | 14 | `work-dir-space` | free space of the work directory ≥ what stage 1 writes there | — |
//!
//! Swap in use is subtracted from MemAvailable because stage 2 turns swap off, which brings
//! those pages back into RAM.
#![forbid(unsafe_code)]

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use crate::cli::{Mode, Options};
use crate::config::ConfigJson;
use crate::error::{Error, Result};
use crate::probe::device::{Compat, Family};
use crate::probe::init::InitKind;
use crate::probe::kernel::Support;
use crate::probe::target::{self, TargetDisk};
use crate::probe::{Probe, Root};
use crate::report::{Ram, Report, Status};

/// RAM kept free beyond the staged files: the stage 2 process, its buffers and the kernel.
pub const RAM_HEADROOM: u64 = 32 * MIB;

const MIB: u64 = 1024 * 1024;

/// Check names, in order.
pub const CHECK_NAMES: &[&str] = &[
    "root-user",
    "config-json",
    "device-type",
    "image",
    "os-support",
    "api-ping",
    "vpn-connect",
    "network-config",
    "secure-boot",
    "init-system",
    "stage2-kernel",
    "target-disk",
    "ram-budget",
    "work-dir-space",
];

/// Everything the checks look at beyond the options.
pub struct CheckInputs<'a> {
    pub probe: &'a Probe,
    /// The root the probe read (for resolving `--flash-to` / `--log-to` links).
    pub root: &'a Root,
    /// Effective uid (`crate::sys::geteuid()`).
    pub euid: u32,
    /// config.json, or why it could not be loaded.
    pub config: std::result::Result<&'a ConfigJson, &'a Error>,
    /// `deviceType` as the given config.json says, when `config` is the staged copy that
    /// already carries `--change-dt-to` (`None`: take it from `config`).
    pub config_device_type: Option<&'a str>,
    /// `GET <apiEndpoint>/ping` (the argument is the endpoint without a trailing '/').
    pub ping: &'a dyn Fn(&str) -> Result<()>,
    /// The check "image": the image proven good, or why it was not (a dry run goes on without
    /// it: `Status::NotRun`).
    pub image: (Status, String),
    /// The network module's verdict; `None` when it was not computed (check skipped).
    pub network: Option<(Status, String)>,
    /// Bytes of the image as staged in RAM (the file stage 2 reads); `None` when unknown.
    pub image_staged_bytes: Option<u64>,
    /// Bytes the image occupies on the disk (uncompressed); `None` when unknown.
    pub image_disk_bytes: Option<u64>,
    pub backup_bytes: u64,
    pub binary_bytes: u64,
    pub network_bytes: u64,
    /// Bytes stage 1 still has to write into the work directory.
    pub work_dir_needed: u64,
    /// Free bytes of the filesystem holding a path (`crate::sys::fs::statvfs`).
    pub free_space: &'a dyn Fn(&Path) -> io::Result<u64>,
}

fn mib_up(b: u64) -> u64 {
    b.div_ceil(MIB)
}

fn mib_down(b: u64) -> u64 {
    b / MIB
}

/// "message; hint" for a check detail.
fn detail_of(e: &Error) -> String {
    match &e.hint {
        Some(h) => format!("{}; {h}", e.message()),
        None => e.message(),
    }
}

/// Runs every check in order, pushing one entry per check into `report.checks`, and fills
/// `report.device`, `os`, `init`, `target` and `ram`. Returns the chosen target disk when the
/// target-disk check passed.
pub fn run_checks(inputs: &CheckInputs, opts: &Options, report: &mut Report) -> Option<TargetDisk> {
    let p = inputs.probe;
    let cfg = inputs.config.ok();
    let cfg_dt = inputs
        .config_device_type
        .or_else(|| cfg.and_then(|c| c.device_type().ok()));
    let (st, d) = check_root(inputs.euid, opts.mode());
    report.check("root-user", st, d);
    let (st, d) = check_config(inputs.config, opts);
    report.check("config-json", st, d);
    let (st, d) = check_device_type(p, cfg_dt, opts);
    report.check("device-type", st, d);
    report.check("image", inputs.image.0, inputs.image.1.clone());
    let (st, d) = check_os(p, opts);
    report.check("os-support", st, d);
    let (st, d) = check_api(inputs, cfg, opts);
    report.check("api-ping", st, d);
    let (st, d) = check_vpn_of(cfg, opts);
    report.check("vpn-connect", st, d);
    let (st, d) = check_network(inputs, opts);
    report.check("network-config", st, d);
    let (st, d) = check_secure_boot(p);
    report.check("secure-boot", st, d);
    let (st, d) = check_init(p);
    report.check("init-system", st, d);
    let (st, d) = check_kernel(p, opts.backup_cfg.is_some());
    report.check("stage2-kernel", st, d);
    let chosen = target::select(
        p,
        inputs.root,
        opts.flash_to.as_deref(),
        opts.log_to.as_deref(),
        inputs.image_disk_bytes,
    );
    let (st, d) = check_target(&chosen, inputs);
    report.check("target-disk", st, d);
    let (st, d, ram) = check_ram(p, inputs);
    report.ram = Some(ram);
    report.check("ram-budget", st, d);
    let (st, d) = check_work_dir_space(inputs, opts);
    report.check("work-dir-space", st, d);
    let parts = p.to_report_parts(cfg_dt, opts.change_dt_to.as_deref(), chosen.as_ref().ok());
    report.device = Some(parts.device);
    report.os = Some(parts.os);
    report.init = Some(parts.init);
    report.target = Some(parts.target);
    chosen.ok()
}

/// 4. The old OS is one takeover knows (or `--no-os-check`).
fn check_os(p: &Probe, opts: &Options) -> (Status, String) {
    let v = p.os_verdict();
    if v.supported {
        (Status::Pass, v.reason)
    } else if opts.no_os_check {
        (
            Status::Warn,
            format!("{} (going on because of --no-os-check)", v.reason),
        )
    } else {
        (
            Status::Fail,
            format!(
                "{}; pass --no-os-check to migrate from it anyway, at your own risk",
                v.reason
            ),
        )
    }
}

/// 5. `GET <apiEndpoint>/ping` answers.
fn check_api(inputs: &CheckInputs, cfg: Option<&ConfigJson>, opts: &Options) -> (Status, String) {
    if opts.no_api_check {
        (Status::Skip, "skipped (--no-api-check)".to_string())
    } else {
        match cfg.map(|c| c.api_endpoint()) {
            Some(Ok(ep)) => match (inputs.ping)(ep) {
                Ok(()) => (Status::Pass, format!("{ep}/ping answered OK")),
                Err(e) => {
                    // The request's own hint already says what to check; name the way
                    // around once.
                    let d = detail_of(&e);
                    let d = if d.contains("--no-api-check") {
                        d
                    } else {
                        format!("{d}; or pass --no-api-check to go on without this check")
                    };
                    (Status::Fail, d)
                }
            },
            _ => (
                Status::Fail,
                "no valid apiEndpoint in config.json (see config-json)".to_string(),
            ),
        }
    }
}

/// 6. The VPN endpoint of config.json takes a connection.
fn check_vpn_of(cfg: Option<&ConfigJson>, opts: &Options) -> (Status, String) {
    if opts.no_vpn_check {
        (Status::Skip, "skipped (--no-vpn-check)".to_string())
    } else {
        match cfg.map(|c| (c.vpn_endpoint(), c.vpn_port())) {
            Some((Ok(host), Ok(port))) => {
                check_vpn(host, port, Duration::from_secs(opts.check_timeout))
            }
            _ => (
                Status::Fail,
                "no valid vpnEndpoint/vpnPort in config.json (see config-json)".to_string(),
            ),
        }
    }
}

/// 7. The network module's verdict on the networks migrated.
fn check_network(inputs: &CheckInputs, opts: &Options) -> (Status, String) {
    match (&inputs.network, opts.no_nwmgr_check) {
        (Some((_, d)), true) => (Status::Skip, format!("skipped (--no-nwmgr-check): {d}")),
        (None, true) => (Status::Skip, "skipped (--no-nwmgr-check)".to_string()),
        (Some((s, d)), false) => (*s, d.clone()),
        (None, false) => (
            Status::Skip,
            "network configuration was not examined".to_string(),
        ),
    }
}

/// 11. The target disk chosen (or why none was).
fn check_target(chosen: &Result<TargetDisk>, inputs: &CheckInputs) -> (Status, String) {
    match chosen {
        Ok(t) => {
            let mut d = format!(
                "{} ({} MiB, {}) will be overwritten",
                t.path,
                mib_down(t.size_bytes),
                t.chosen_by
            );
            if !t.mounted.is_empty() {
                let mps: Vec<&str> = t.mounted.iter().map(|(_, mp)| mp.as_str()).collect();
                d.push_str(&format!("; mounted there now: {}", mps.join(", ")));
            }
            if inputs.image_disk_bytes.is_none() {
                d.push_str("; image size unknown, so not compared with the disk");
            }
            if t.boot_elsewhere.is_empty() {
                (Status::Pass, d)
            } else {
                let b: Vec<String> = t
                    .boot_elsewhere
                    .iter()
                    .map(|(mp, dev)| format!("{mp} is on {dev}"))
                    .collect();
                (
                    Status::Warn,
                    format!(
                        "{d}; but {}: this machine may boot from that disk, not from {}; make \
                         sure the firmware boots {} (or pass --flash-to with the boot disk)",
                        b.join(", "),
                        t.path,
                        t.path
                    ),
                )
            }
        }
        Err(e) => (Status::Fail, detail_of(e)),
    }
}

/// 13. The work directory has room for what stage 1 still writes there.
fn check_work_dir_space(inputs: &CheckInputs, opts: &Options) -> (Status, String) {
    let wd = opts.work_dir();
    match (inputs.free_space)(&wd) {
        Ok(free) if free >= inputs.work_dir_needed => (
            Status::Pass,
            format!(
                "{} has {} MiB free, needs {} MiB",
                wd.display(),
                mib_down(free),
                mib_up(inputs.work_dir_needed)
            ),
        ),
        Ok(free) => (
            Status::Fail,
            format!(
                "{} has {} MiB free but stage 1 writes {} MiB there; free some space or pass -w \
                 with a directory on a bigger filesystem",
                wd.display(),
                mib_down(free),
                mib_up(inputs.work_dir_needed)
            ),
        ),
        Err(e) => (
            Status::Fail,
            format!(
                "cannot get the free space of work directory {}: {e}; create it or pass -w with \
                 an existing directory",
                wd.display()
            ),
        ),
    }
}

fn check_root(euid: u32, mode: Mode) -> (Status, String) {
    if euid == 0 {
        (Status::Pass, "running as root".into())
    } else if mode == Mode::DryRun {
        (
            Status::Warn,
            format!("running as uid {euid}: fine for --dry-run, but a migration must run as root (sudo)"),
        )
    } else {
        (
            Status::Fail,
            format!("running as uid {euid}; run takeover as root (sudo ./takeover ...)"),
        )
    }
}

fn check_config(
    config: std::result::Result<&ConfigJson, &Error>,
    opts: &Options,
) -> (Status, String) {
    let c = match config {
        Ok(c) => c,
        Err(e) => return (Status::Fail, detail_of(e)),
    };
    let mut problems = Vec::new();
    let mut keep = |r: Result<String>| match r {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(e.cause);
            None
        }
    };
    let app = keep(c.application_id().map(|v| v.to_string()));
    let dt = keep(c.device_type().map(str::to_string));
    let api = keep(c.api_endpoint().map(str::to_string));
    keep(c.api_key().map(|_| String::new()));
    let vpn = if opts.no_vpn_check {
        None
    } else {
        let h = keep(c.vpn_endpoint().map(str::to_string));
        let p = keep(c.vpn_port().map(|p| p.to_string()));
        h.zip(p).map(|(h, p)| format!("{h}:{p}"))
    };
    if problems.is_empty() {
        let mut d = format!(
            "{}: fleet {}, device type {}, API {}",
            c.origin.display(),
            app.unwrap_or_default(),
            dt.unwrap_or_default(),
            api.unwrap_or_default()
        );
        if let Some(v) = vpn {
            d.push_str(&format!(", VPN {v}"));
        }
        (Status::Pass, d)
    } else {
        (
            Status::Fail,
            format!(
                "{}: {}; download config.json again from the balena dashboard (Add device > \
                 Advanced > Download configuration file only) and pass it with -c",
                c.origin.display(),
                problems.join("; ")
            ),
        )
    }
}

/// How the operator knows the device type being judged.
fn dt_label(slug: &str, opts: &Options) -> String {
    if opts.change_dt_to.is_some() {
        format!("the device type {slug} (--change-dt-to)")
    } else {
        format!("config.json's device type {slug}")
    }
}

/// "this board (Raspberry Pi 4 Model B Rev 1.4)", or for a board not in the table "this
/// x86_64 device".
fn this_board(p: &Probe) -> String {
    match (p.board, p.model_display()) {
        (Some(_), Some(m)) => format!("this board ({m})"),
        (Some(b), None) => format!("this board ({})", b.name),
        (None, _) => format!("this {} device", p.arch.as_deref().unwrap_or("unknown")),
    }
}

/// The device types this board takes, as the end of a sentence ("; this board takes: …").
fn board_takes(p: &Probe) -> String {
    match p.board {
        Some(b) => {
            let a = crate::probe::device::accepted_slugs(b, p.efi);
            if a.is_empty() {
                format!("; balena has no device type for the {}", b.name)
            } else {
                format!("; this board takes: {}", a.join(", "))
            }
        }
        None => String::new(),
    }
}

/// An architecture mismatch: the device type to install, or the fleet's (config.json's), is
/// built for an instruction set this device's CPU does not run. Such an OS cannot boot here,
/// so `--no-dt-check` never overrides it, and no hint points at another override.
fn arch_refusal(p: &Probe, cfg_dt: Option<&str>, opts: &Options) -> Option<(String, String)> {
    use crate::probe::arch::mismatch;
    let cpu = p.cpu()?;
    let target = opts.change_dt_to.as_deref().or(cfg_dt)?;
    let (label, why) = match mismatch(target, cpu) {
        Some(m) => (dt_label(target, opts), m),
        // The type installed fits, but the fleet's releases are built for the fleet's type.
        None => {
            let fleet = cfg_dt.filter(|c| *c != target)?;
            (
                format!("the fleet's device type {fleet} (config.json)"),
                mismatch(fleet, cpu)?,
            )
        }
    };
    let flag = if opts.no_dt_check {
        "; --no-dt-check does not override a different architecture"
    } else {
        ""
    };
    Some((
        format!(
            "{label} does not run on {}: {why}{}{flag}",
            this_board(p),
            board_takes(p)
        ),
        "use the config.json of a fleet whose device type runs on this board (dashboard: Add \
         device > Advanced > Download configuration file only)"
            .to_string(),
    ))
}

/// The device-type verdict for a board not in the device table.
fn unknown_board_verdict(p: &Probe) -> Verdict {
    let arch = p.arch.as_deref().unwrap_or("unknown");
    if !matches!(arch, "aarch64" | "armv7l" | "armv6l" | "x86_64") {
        return (
            Status::Fail,
            format!(
                "architecture {arch} is not supported (balenaOS devices are aarch64, armv7l, \
                 armv6l or x86_64)"
            ),
            String::new(),
        );
    }
    let model = p
        .model_display()
        .map(|m| format!("'{m}'"))
        .unwrap_or_else(|| "with no device-tree model".into());
    let compat = if p.compatible.is_empty() {
        String::new()
    } else {
        format!(" (compatible: {})", p.compatible.join(", "))
    };
    (
        Status::Fail,
        format!("this {arch} device {model}{compat} is not in takeover's device table"),
        "pass --no-dt-check only if you know the image fits this board".into(),
    )
}

/// What the device-type check would say, before `--no-dt-check` is applied.
fn device_type_verdict(p: &Probe, cfg_dt: Option<&str>, opts: &Options) -> Verdict {
    let Some(board) = p.board else {
        return unknown_board_verdict(p);
    };
    let found = format!(
        "{}{} (recognised by {})",
        board.name,
        p.model_display()
            .map(|m| format!(" '{m}'"))
            .unwrap_or_default(),
        p.board_source.map(|s| s.as_str()).unwrap_or("?"),
    );
    let Some(slug) = opts.change_dt_to.as_deref().or(cfg_dt) else {
        return (
            Status::Fail,
            format!("detected {found}, but config.json names no deviceType"),
            "see the check config-json".into(),
        );
    };
    let firmware = if board.family == Family::X86_64 {
        if p.efi {
            " booted through UEFI"
        } else {
            " booted in legacy BIOS mode"
        }
    } else {
        ""
    };
    match device_compat(board, slug, p.efi) {
        Compat::Yes => {
            let mut d = format!("{found}{firmware} runs device type {slug}");
            if let (Some(_), Some(orig)) = (&opts.change_dt_to, cfg_dt) {
                if orig != slug {
                    d.push_str(&format!(" (--change-dt-to replaces config.json's {orig})"));
                }
            }
            (Status::Pass, d, String::new())
        }
        Compat::OnlyWithOverride(why) => (
            Status::Fail,
            format!("{found}: {why}"),
            "pass --no-dt-check to accept it".into(),
        ),
        Compat::No(why) => {
            let head = if board.slugs.contains(&slug) {
                // Known to the board, refused on this firmware (UEFI-only images).
                format!("{found}: {why}")
            } else {
                format!(
                    "{} does not run on {}{}",
                    dt_label(slug, opts),
                    this_board(p),
                    board_takes(p)
                )
            };
            let fix = if opts.change_dt_to.is_some() {
                "choose a --change-dt-to type this board takes"
            } else {
                "use the config.json of a fleet whose device type this board takes, or \
                 --change-dt-to with one of them"
            };
            (Status::Fail, head, fix.into())
        }
    }
}

fn device_compat(board: &crate::probe::device::Board, slug: &str, efi: bool) -> Compat {
    crate::probe::device::compatibility(board, slug, efi)
}

/// A check's status, what it found, and what the operator can do (may be empty).
type Verdict = (Status, String, String);

/// "what; fix" for a check detail.
fn joined((st, what, fix): Verdict) -> (Status, String) {
    if fix.is_empty() {
        (st, what)
    } else {
        (st, format!("{what}; {fix}"))
    }
}

fn check_device_type(p: &Probe, cfg_dt: Option<&str>, opts: &Options) -> (Status, String) {
    joined(device_type_check(p, cfg_dt, opts))
}

fn device_type_check(p: &Probe, cfg_dt: Option<&str>, opts: &Options) -> Verdict {
    if let Some((what, fix)) = arch_refusal(p, cfg_dt, opts) {
        return (Status::Fail, what, fix);
    }
    let (st, what, fix) = device_type_verdict(p, cfg_dt, opts);
    let slug = opts.change_dt_to.as_deref().or(cfg_dt);
    let overridable = match (p.board, slug) {
        (Some(b), Some(s)) => matches!(device_compat(b, s, p.efi), Compat::OnlyWithOverride(_)),
        _ => false,
    };
    if opts.no_dt_check && overridable {
        (
            Status::Skip,
            format!("accepted because of --no-dt-check: {what}"),
            String::new(),
        )
    } else if opts.no_dt_check {
        let outcome = if st == Status::Pass {
            "would pass"
        } else {
            "would fail"
        };
        (
            Status::Skip,
            format!("skipped (--no-dt-check); the check {outcome}: {what}"),
            String::new(),
        )
    } else {
        (st, what, fix)
    }
}

/// The device-type check on its own, which stage 1 runs before it gets the image: a device
/// type that does not run on this board is the first thing to hear, not an image mismatch.
/// `cfg_dt` is config.json's `deviceType`; `origin` the config.json the error names.
pub fn device_type_gate(
    p: &Probe,
    cfg_dt: Option<&str>,
    opts: &Options,
    origin: &Path,
) -> Result<()> {
    match device_type_check(p, cfg_dt, opts) {
        (Status::Fail, what, fix) => {
            let e = Error::new("checking the device type", origin.display(), what);
            Err(if fix.is_empty() { e } else { e.hint(fix) })
        }
        _ => Ok(()),
    }
}

/// The image's own device type against this device's CPU (also with `--no-dt-check`, which
/// skips comparing it with the fleet's type): an image for another architecture is refused.
pub fn image_arch_gate(p: &Probe, image_dt: Option<&str>, image: &Path) -> Result<()> {
    let (Some(cpu), Some(dt)) = (p.cpu(), image_dt) else {
        return Ok(());
    };
    match crate::probe::arch::mismatch(dt, cpu) {
        None => Ok(()),
        Some(why) => Err(Error::new(
            "checking the image architecture",
            image.display(),
            format!(
                "the image does not run on {}: {why}{}; --no-dt-check does not override a \
                 different architecture",
                this_board(p),
                board_takes(p)
            ),
        )
        .hint("use the balenaOS image of a device type this board takes (leave out -i and takeover downloads it)")),
    }
}

/// TCP connect to the first resolved address of host:port within `timeout`.
pub fn check_vpn(host: &str, port: u16, timeout: Duration) -> (Status, String) {
    let fail = |why: String| {
        (
            Status::Fail,
            format!(
                "cannot reach the balena VPN at {host}:{port}: {why}; without it the device would \
                 not come online after the migration: allow outgoing TCP to {host}:{port} in the \
                 firewall, or pass --no-vpn-check"
            ),
        )
    };
    // The name lookup is bounded by the timeout too: it runs in a thread that is left behind
    // when the resolver hangs (it ends with the process).
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(
            (name.as_str(), port)
                .to_socket_addrs()
                .map(|mut it| it.next()),
        );
    });
    let addr = match rx.recv_timeout(timeout) {
        Ok(Ok(Some(a))) => a,
        Ok(Ok(None)) => return fail("the name resolves to no address".into()),
        Ok(Err(e)) => return fail(format!("resolving the name: {e}")),
        Err(_) => {
            return fail(format!(
                "resolving the name took longer than {} s",
                timeout.as_secs()
            ))
        }
    };
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => {
            let _ = s.shutdown(std::net::Shutdown::Both);
            (Status::Pass, format!("connected to {host}:{port} ({addr})"))
        }
        Err(e) => fail(format!(
            "connecting to {addr} (1 attempt of at most {} s): {e}",
            timeout.as_secs()
        )),
    }
}

fn check_secure_boot(p: &Probe) -> (Status, String) {
    if !p.efi {
        return (
            Status::Pass,
            "no UEFI firmware (no Secure Boot)".to_string(),
        );
    }
    match p.secure_boot {
        Some(false) => (Status::Pass, "UEFI, Secure Boot off".to_string()),
        Some(true) => (
            Status::Fail,
            "UEFI Secure Boot is on: the balenaOS image would not boot; turn Secure Boot off in \
             the firmware setup, then run takeover again"
                .to_string(),
        ),
        None => (
            Status::Warn,
            "UEFI, but the SecureBoot variable could not be read; check with 'mokutil \
             --sb-state' that Secure Boot is off before migrating"
                .to_string(),
        ),
    }
}

fn check_init(p: &Probe) -> (Status, String) {
    let path = p
        .init
        .resolved
        .clone()
        .or_else(|| p.init.path.clone())
        .unwrap_or_else(|| "unknown".into());
    let kind = p.init.kind;
    if kind.can_take_over() {
        return (Status::Pass, format!("PID 1 is {} ({path})", kind.as_str()));
    }
    let why = match kind {
        InitKind::Busybox => "busybox init does not re-execute itself on 'telinit u'".to_string(),
        InitKind::Openrc => "openrc-init does not re-execute itself on 'telinit u'".to_string(),
        _ if p.init.path.is_none() => {
            "PID 1 could not be identified (/proc/1/exe unreadable; run as root)".to_string()
        }
        _ => "it is neither systemd nor sysvinit".to_string(),
    };
    (
        Status::Fail,
        format!(
            "PID 1 is {} ({path}): {why}, and takeover hands PID 1 over that way; migrate from \
             a systemd or sysvinit system, or write the image offline with --write-only",
            kind.as_str()
        ),
    )
}

/// `backup`: stage 2 writes a backup into the new resin-data through a loop device, so loop
/// support is required then (a warning otherwise).
fn check_kernel(p: &Probe, backup: bool) -> (Status, String) {
    let k = &p.kernel;
    let parts = [
        ("tmpfs", &k.tmpfs, true),
        ("ext4", &k.ext4, true),
        ("loop", &k.loop_dev, backup),
    ];
    let summary = parts
        .iter()
        .map(|(n, s, _)| format!("{n} {}", s.describe()))
        .collect::<Vec<_>>()
        .join(", ");
    let missing_required: Vec<&str> = parts
        .iter()
        .filter(|(_, s, req)| *req && !s.is_usable())
        .map(|(n, _, _)| *n)
        .collect();
    if !missing_required.is_empty() {
        return (
            Status::Fail,
            format!(
                "{summary}: stage 2 cannot work without {} (kernel {}); install the kernel \
                 modules package of the running kernel, or boot a kernel that has them",
                missing_required.join(" and "),
                k.release.as_deref().unwrap_or("unknown")
            ),
        );
    }
    if *parts[2].1 == Support::Missing {
        return (
            Status::Warn,
            format!("{summary}: without loop support stage 2 cannot loop-mount the new image"),
        );
    }
    (Status::Pass, summary)
}

fn check_ram(p: &Probe, i: &CheckInputs) -> (Status, String, Ram) {
    let image = i.image_staged_bytes.unwrap_or(0);
    let required = image
        .saturating_add(i.backup_bytes)
        .saturating_add(i.binary_bytes)
        .saturating_add(i.network_bytes)
        .saturating_add(RAM_HEADROOM);
    let breakdown = format!(
        "image {} MiB{} + backup {} MiB + takeover {} MiB + network files {} MiB + headroom {} MiB",
        mib_up(image),
        if i.image_staged_bytes.is_none() {
            " (size unknown)"
        } else {
            ""
        },
        mib_up(i.backup_bytes),
        mib_up(i.binary_bytes),
        mib_up(i.network_bytes),
        mib_up(RAM_HEADROOM)
    );
    let Some(avail) = p.mem.available_bytes else {
        return (
            Status::Fail,
            format!(
                "MemAvailable could not be read from /proc/meminfo; stage 2 needs {} MiB ({breakdown})",
                mib_up(required)
            ),
            Ram {
                available_bytes: 0,
                required_bytes: required,
            },
        );
    };
    let swap = p.swap_used_bytes();
    let usable = avail.saturating_sub(swap);
    let ram = Ram {
        available_bytes: usable,
        required_bytes: required,
    };
    let have = if swap > 0 {
        format!(
            "{} MiB (MemAvailable {} MiB minus {} MiB of swap in use)",
            mib_down(usable),
            mib_down(avail),
            mib_up(swap)
        )
    } else {
        format!("{} MiB (MemAvailable)", mib_down(usable))
    };
    if usable < required {
        return (
            Status::Fail,
            format!(
                "stage 2 needs {} MiB of RAM ({breakdown}) but only {have} is available; stop \
                 memory-hungry services (containers, desktop) or reboot first, make the backup \
                 smaller, or free swap",
                mib_up(required)
            ),
            ram,
        );
    }
    let status = if i.image_staged_bytes.is_none() {
        Status::Warn
    } else {
        Status::Pass
    };
    (
        status,
        format!(
            "stage 2 needs {} MiB ({breakdown}), {have} available",
            mib_up(required)
        ),
        ram,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> (Root, Probe) {
        crate::testutil::sysroot_fixture(name)
    }

    fn config(text: &str) -> ConfigJson {
        ConfigJson::parse(text.as_bytes(), Path::new("/t/config.json")).unwrap()
    }

    const GOOD: &str = r#"{"applicationId":"42","deviceType":"raspberrypi4-64",
        "apiEndpoint":"https://api.example.com/","apiKey":"SecretKeyForTests",
        "vpnEndpoint":"127.0.0.1","vpnPort":9}"#;

    fn opts(args: &[&str]) -> Options {
        let mut v = vec!["--dry-run"];
        v.extend_from_slice(args);
        crate::cli::parse(v).unwrap()
    }

    fn no_ping(_: &str) -> Result<()> {
        Ok(())
    }

    fn plenty(_: &Path) -> io::Result<u64> {
        Ok(1 << 40)
    }

    fn inputs<'a>(p: &'a Probe, root: &'a Root, cfg: &'a ConfigJson) -> CheckInputs<'a> {
        CheckInputs {
            probe: p,
            root,
            euid: 0,
            config: Ok(cfg),
            config_device_type: None,
            ping: &no_ping,
            image: (Status::Pass, "verified".into()),
            network: Some((Status::Pass, "2 wifi networks".into())),
            image_staged_bytes: Some(180 * MIB),
            image_disk_bytes: Some(1800 * MIB),
            backup_bytes: 3 * MIB,
            binary_bytes: 5 * MIB,
            network_bytes: 2048,
            work_dir_needed: 200 * MIB,
            free_space: &plenty,
        }
    }

    fn get<'r>(r: &'r Report, name: &str) -> &'r crate::report::Check {
        r.checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn root_user() {
        assert_eq!(check_root(0, Mode::Migrate).0, Status::Pass);
        assert_eq!(check_root(1000, Mode::DryRun).0, Status::Warn);
        let (s, d) = check_root(1000, Mode::Migrate);
        assert_eq!(s, Status::Fail);
        assert!(d.contains("sudo"), "{d}");
    }

    #[test]
    fn config_problems_are_all_listed() {
        let c = config(
            r#"{"deviceType":"raspberrypi4-64","apiEndpoint":"https://a","deviceApiKey":"abcdefgh","vpnEndpoint":"v"}"#,
        );
        let (s, d) = check_config(Ok(&c), &opts(&[]));
        assert_eq!(s, Status::Fail);
        assert!(d.contains("'applicationId' is missing"), "{d}");
        assert!(d.contains("'vpnPort' is missing"), "{d}");
        assert!(
            d.contains("dashboard") && d.contains("/t/config.json"),
            "{d}"
        );
        // Without the VPN check the VPN keys are not required.
        let c = config(
            r#"{"applicationId":1,"deviceType":"x","apiEndpoint":"https://a","apiKey":"abcdefgh"}"#,
        );
        let (s, d) = check_config(Ok(&c), &opts(&["--no-vpn-check"]));
        assert_eq!(s, Status::Pass, "{d}");
        assert!(!d.contains("abcdefgh"));
        let e = Error::new("reading config.json", "/x", "not valid JSON").hint("fix it");
        let (s, d) = check_config(Err(&e), &opts(&[]));
        assert_eq!(s, Status::Fail);
        assert!(d.contains("not valid JSON; fix it"), "{d}");
    }

    #[test]
    fn all_checks_in_order_and_api_ping_gets_the_endpoint() {
        let (root, p) = fixture("pi4-bookworm");
        let cfg = config(GOOD);
        let seen = std::cell::RefCell::new(Vec::new());
        let ping = |ep: &str| -> Result<()> {
            seen.borrow_mut().push(ep.to_string());
            Err(Error::new(
                "checking the API",
                format!("{ep}/ping"),
                "HTTP 503",
            ))
        };
        let mut i = inputs(&p, &root, &cfg);
        i.ping = &ping;
        let mut r = Report::new("dry-run");
        let t = run_checks(&i, &opts(&["--no-vpn-check"]), &mut r);
        let names: Vec<_> = r.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, CHECK_NAMES);
        assert_eq!(*seen.borrow(), vec!["https://api.example.com"]);
        let c = get(&r, "api-ping");
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("HTTP 503") && c.detail.contains("--no-api-check"));
        assert_eq!(t.unwrap().path, "/dev/mmcblk0");
        assert!(!r.to_json().contains("SecretKeyForTests"));
        let ram = r.ram.as_ref().unwrap();
        assert_eq!(
            ram.required_bytes,
            180 * MIB + 3 * MIB + 5 * MIB + 2048 + RAM_HEADROOM
        );
        assert!(r.device.as_ref().unwrap().compatible);
        assert_eq!(r.os.as_ref().unwrap().id.as_deref(), Some("debian"));
    }

    #[test]
    fn vpn_connect_pass_and_fail() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (s, d) = check_vpn("127.0.0.1", port, Duration::from_secs(2));
        assert_eq!(s, Status::Pass, "{d}");
        drop(l);
        let (s, d) = check_vpn("127.0.0.1", port, Duration::from_secs(2));
        assert_eq!(s, Status::Fail);
        assert!(
            d.contains("--no-vpn-check") && d.contains(&port.to_string()),
            "{d}"
        );
    }

    #[test]
    fn network_ram_and_work_dir() {
        let (root, p) = fixture("pi0w-buster-armv6");
        let cfg = config(GOOD);
        let mut i = inputs(&p, &root, &cfg);
        i.network = Some((Status::Fail, "no network configuration found".into()));
        i.image_staged_bytes = Some(400 * MIB);
        let small = |_: &Path| -> io::Result<u64> { Ok(10 * MIB) };
        i.free_space = &small;
        let mut r = Report::new("dry-run");
        run_checks(
            &i,
            &opts(&["--no-nwmgr-check", "--no-api-check", "--no-vpn-check"]),
            &mut r,
        );
        let n = get(&r, "network-config");
        assert_eq!(n.status, Status::Skip);
        assert!(n.detail.contains("no network configuration found"));
        let m = get(&r, "ram-budget");
        assert_eq!(m.status, Status::Fail);
        for num in [
            "441 MiB",
            "image 400 MiB",
            "backup 3 MiB",
            "takeover 5 MiB",
            "network files 1 MiB",
            "headroom 32 MiB",
            "MemAvailable 294 MiB",
            "60 MiB of swap",
        ] {
            assert!(m.detail.contains(num), "{num}: {}", m.detail);
        }
        let w = get(&r, "work-dir-space");
        assert_eq!(w.status, Status::Fail);
        assert!(
            w.detail.contains("10 MiB free") && w.detail.contains("200 MiB"),
            "{}",
            w.detail
        );

        let broken =
            |_: &Path| -> io::Result<u64> { Err(io::Error::from_raw_os_error(libc::ENOENT)) };
        i.free_space = &broken;
        i.network = None;
        i.image_staged_bytes = None;
        let mut r = Report::new("dry-run");
        run_checks(&i, &opts(&["--no-api-check", "--no-vpn-check"]), &mut r);
        assert_eq!(get(&r, "work-dir-space").status, Status::Fail);
        assert_eq!(get(&r, "network-config").status, Status::Skip);
        let m = get(&r, "ram-budget");
        assert_eq!(m.status, Status::Warn, "{}", m.detail);
        assert!(m.detail.contains("size unknown"));
    }

    #[test]
    fn missing_loop_fails_with_a_backup_and_warns_without() {
        let (root, mut p) = fixture("nuc-jammy-nvme-efi");
        p.kernel.loop_dev = Support::Missing;
        let cfg = config(GOOD);
        let i = inputs(&p, &root, &cfg);
        let mut r = Report::new("dry-run");
        run_checks(&i, &opts(&["--no-api-check", "--no-vpn-check"]), &mut r);
        assert_eq!(get(&r, "stage2-kernel").status, Status::Warn);
        let mut r = Report::new("dry-run");
        let with_backup = ["--no-api-check", "--no-vpn-check", "--backup-cfg", "b.yml"];
        run_checks(&i, &opts(&with_backup), &mut r);
        let k = get(&r, "stage2-kernel");
        assert_eq!(k.status, Status::Fail);
        assert!(k.detail.contains("without loop"), "{}", k.detail);
    }

    #[test]
    fn unknown_board_kernel_gaps_and_secure_boot_unknown() {
        let (root, mut p) = fixture("nuc-jammy-nvme-efi");
        p.arch = Some("i686".into());
        p.board = None;
        p.kernel.ext4 = Support::Missing;
        p.secure_boot = None;
        let cfg = config(GOOD);
        let i = inputs(&p, &root, &cfg);
        let mut r = Report::new("dry-run");
        run_checks(&i, &opts(&["--no-api-check", "--no-vpn-check"]), &mut r);
        let d = get(&r, "device-type");
        assert_eq!(d.status, Status::Fail);
        assert!(d.detail.contains("i686"), "{}", d.detail);
        let k = get(&r, "stage2-kernel");
        assert_eq!(k.status, Status::Fail);
        assert!(k.detail.contains("without ext4"), "{}", k.detail);
        assert_eq!(get(&r, "secure-boot").status, Status::Warn);

        p.arch = Some("aarch64".into());
        p.model = Some("Rockchip RK3588 EVB".into());
        let i = inputs(&p, &root, &cfg);
        let mut r = Report::new("dry-run");
        run_checks(&i, &opts(&["--no-api-check", "--no-vpn-check"]), &mut r);
        let d = get(&r, "device-type");
        assert!(
            d.detail.contains("'Rockchip RK3588 EVB'") && d.detail.contains("--no-dt-check"),
            "{}",
            d.detail
        );
        let mut r = Report::new("dry-run");
        run_checks(
            &i,
            &opts(&["--no-api-check", "--no-vpn-check", "--no-dt-check"]),
            &mut r,
        );
        assert_eq!(get(&r, "device-type").status, Status::Skip);
    }
}
