//! Read-only probe of the running system: device, OS, init, memory, mounts, disks.
//!
//! Every read goes through a [`Root`], so a fixture tree (`--sysroot DIR`) stands in for
//! `/proc`, `/sys`, `/etc` and `/var/lib` in tests. Nothing here writes or opens a device.
//!
//! [`probe`] collects everything and never fails: a missing or unreadable piece is `None` (or
//! empty) and a line in [`Probe::notes`]. What is read (paths under the root):
//!
//! | what | from |
//! |---|---|
//! | architecture | `proc/sys/kernel/arch` under a sysroot; `uname(2)` on the live system |
//! | kernel release | `proc/sys/kernel/osrelease` (uname on the live system) |
//! | board | `proc/device-tree/model` (NUL-trimmed), `proc/device-tree/compatible` (NUL-separated), `proc/cpuinfo` (`Model`, `Revision`) — see [`device`] |
//! | x86 model (report only) | `sys/class/dmi/id/{sys_vendor,product_name,board_name}` |
//! | OS | `etc/os-release`, else `usr/lib/os-release` — see [`os`] |
//! | init | `proc/1/exe` (+ `var/lib/dpkg/info/*.list`, `etc/inittab`) — see [`init`] |
//! | memory, swap | `proc/meminfo` (MemTotal, MemAvailable), `proc/swaps` |
//! | mounts | `proc/self/mountinfo` — see [`mounts`] |
//! | disks | `sys/block/**` — see [`block`] |
//! | EFI, Secure Boot, kernel support | `sys/firmware/efi`, efivars, `proc/filesystems`, `sys/module/loop`, `lib/modules/<release>/` — see [`kernel`] |
//! | hostname | `proc/sys/kernel/hostname`, else `etc/hostname` |
#![forbid(unsafe_code)]

pub mod arch;
pub mod block;
pub mod device;
pub mod init;
pub mod kernel;
pub mod mounts;
pub mod os;
pub mod target;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use self::block::BlockDev;
use self::device::{Board, Compat};
use self::init::{InitInfo, InitKind};
use self::kernel::KernelSupport;
use self::mounts::{MemInfo, Mount, Swap};
use self::os::{OsRelease, OsVerdict};
use self::target::TargetDisk;
use crate::report;

/// The root under which system state is read: `/` on a real run, a fixture tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    base: PathBuf,
}

/// Largest file read through [`Root::read_string`] (sysfs and procfs values are small).
const MAX_READ: u64 = 4 * 1024 * 1024;

impl Root {
    pub fn new(base: impl Into<PathBuf>) -> Root {
        Root { base: base.into() }
    }

    /// The real system.
    pub fn system() -> Root {
        Root::new("/")
    }

    pub fn is_system(&self) -> bool {
        self.base == Path::new("/")
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// `rel` (absolute like "/proc/meminfo" or relative) under the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        self.base.join(rel)
    }

    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.path(rel).exists()
    }

    /// Reads a small text file under the root (lossy UTF-8).
    pub fn read_string(&self, rel: impl AsRef<Path>) -> io::Result<String> {
        use std::io::Read;
        let mut buf = Vec::new();
        fs::File::open(self.path(rel))?
            .take(MAX_READ)
            .read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Reads a small binary file under the root.
    pub fn read_bytes(&self, rel: impl AsRef<Path>) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut buf = Vec::new();
        fs::File::open(self.path(rel))?
            .take(MAX_READ)
            .read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Reads a symlink under the root (e.g. `/proc/1/exe`).
    pub fn read_link(&self, rel: impl AsRef<Path>) -> io::Result<PathBuf> {
        fs::read_link(self.path(rel))
    }

    /// Names of the entries of a directory under the root, sorted; empty when it does not exist.
    pub fn list(&self, rel: impl AsRef<Path>) -> Vec<String> {
        let mut v: Vec<String> = match fs::read_dir(self.path(rel)) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}

/// DMI identification of x86 machines (`sys/class/dmi/id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dmi {
    pub sys_vendor: Option<String>,
    pub product_name: Option<String>,
    pub board_name: Option<String>,
}

impl Dmi {
    /// "Intel(R) Client Systems NUC11TNHi5", with the board name when it differs.
    pub fn display(&self) -> Option<String> {
        let mut parts: Vec<&str> = Vec::new();
        for p in [&self.sys_vendor, &self.product_name].into_iter().flatten() {
            if !p.is_empty() {
                parts.push(p);
            }
        }
        if parts.is_empty() {
            return self.board_name.clone();
        }
        let mut s = parts.join(" ");
        if let Some(b) = &self.board_name {
            if !b.is_empty() && Some(b) != self.product_name.as_ref() {
                s.push_str(&format!(" (board {b})"));
            }
        }
        Some(s)
    }
}

/// Everything the probe found. Fields are `None`/empty when unreadable (see `notes`).
#[derive(Debug, Clone)]
pub struct Probe {
    /// True on the live system, false under a sysroot.
    pub live: bool,
    pub arch: Option<String>,
    pub kernel_release: Option<String>,
    /// `proc/device-tree/model`, trailing NULs and whitespace removed.
    pub model: Option<String>,
    /// `proc/device-tree/compatible`, most specific first.
    pub compatible: Vec<String>,
    pub cpuinfo_model: Option<String>,
    pub cpuinfo_revision: Option<String>,
    pub dmi: Dmi,
    pub board: Option<&'static Board>,
    pub board_source: Option<device::Source>,
    pub os: Option<OsRelease>,
    pub init: InitInfo,
    pub mem: MemInfo,
    pub swaps: Option<Vec<Swap>>,
    pub mounts: Option<Vec<Mount>>,
    pub disks: Vec<BlockDev>,
    pub efi: bool,
    /// `None` when EFI variables could not be read.
    pub secure_boot: Option<bool>,
    pub kernel: KernelSupport,
    pub hostname: Option<String>,
    /// What could not be read or looked odd, one line each.
    pub notes: Vec<String>,
}

fn nonempty(s: String) -> Option<String> {
    let t = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if t.is_empty() {
        None
    } else {
        Some(t.to_string())
    }
}

/// "Key\t: value" lines of /proc/cpuinfo.
fn cpuinfo_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim() == key {
            nonempty(v.to_string())
        } else {
            None
        }
    })
}

/// Collects everything under `root`. Never fails; see [`Probe::notes`].
pub fn probe(root: &Root) -> Probe {
    let mut notes = Vec::new();
    let live = root.is_system();
    let read = |rel: &str, notes: &mut Vec<String>, required: bool| match root.read_string(rel) {
        Ok(s) => Some(s),
        Err(e) => {
            if required {
                notes.push(format!("cannot read {}: {e}", root.path(rel).display()));
            }
            None
        }
    };

    let (arch, mut kernel_release) = if live {
        match crate::sys::uname::uname() {
            Ok(u) => (Some(u.machine), Some(u.release)),
            Err(e) => {
                notes.push(format!("uname failed: {e}"));
                (None, None)
            }
        }
    } else {
        (
            read("proc/sys/kernel/arch", &mut notes, true).and_then(nonempty),
            None,
        )
    };
    if kernel_release.is_none() {
        kernel_release = read("proc/sys/kernel/osrelease", &mut notes, false).and_then(nonempty);
    }

    let model = read("proc/device-tree/model", &mut notes, false).and_then(nonempty);
    let compatible: Vec<String> = root
        .read_bytes("proc/device-tree/compatible")
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let cpuinfo = read("proc/cpuinfo", &mut notes, false).unwrap_or_default();
    let cpuinfo_model = cpuinfo_value(&cpuinfo, "Model");
    let cpuinfo_revision = cpuinfo_value(&cpuinfo, "Revision");
    let dmi_read = |f: &str| {
        root.read_string(format!("sys/class/dmi/id/{f}"))
            .ok()
            .and_then(nonempty)
    };
    let dmi = Dmi {
        sys_vendor: dmi_read("sys_vendor"),
        product_name: dmi_read("product_name"),
        board_name: dmi_read("board_name"),
    };
    let detected = device::detect(&device::Evidence {
        arch: arch.as_deref(),
        model: model.as_deref(),
        compatible: &compatible,
        cpuinfo_model: cpuinfo_model.as_deref(),
        cpuinfo_revision: cpuinfo_revision.as_deref(),
    });

    let os = ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|rel| {
            root.read_string(rel)
                .ok()
                .map(|t| os::parse(&t, &format!("/{rel}")))
        });
    if os.is_none() {
        notes.push("neither etc/os-release nor usr/lib/os-release is readable".into());
    }

    let init = init::detect(root, &mut notes);
    let mem = read("proc/meminfo", &mut notes, true)
        .map(|t| mounts::parse_meminfo(&t))
        .unwrap_or_default();
    if mem.estimated {
        notes.push(
            "proc/meminfo has no MemAvailable; estimated from MemFree + Buffers + Cached".into(),
        );
    }
    let swaps = read("proc/swaps", &mut notes, true).map(|t| mounts::parse_swaps(&t));
    let mounts = read("proc/self/mountinfo", &mut notes, true).and_then(|t| {
        mounts::parse_mountinfo(&t, &root.path("proc/self/mountinfo").display().to_string())
            .map_err(|e| notes.push(e.to_string()))
            .ok()
    });
    let disks = block::scan(root, &mut notes);
    if disks.is_empty() {
        notes.push(format!(
            "no block devices under {}",
            root.path("sys/block").display()
        ));
    }
    let efi = root.exists("sys/firmware/efi");
    let secure_boot = kernel::secure_boot(root, efi, &mut notes);
    let kernel = kernel::kernel_support(root, kernel_release.clone(), &mut notes);
    let hostname = read("proc/sys/kernel/hostname", &mut notes, false)
        .and_then(nonempty)
        .or_else(|| read("etc/hostname", &mut notes, false).and_then(nonempty));

    Probe {
        live,
        arch,
        kernel_release,
        model,
        compatible,
        cpuinfo_model,
        cpuinfo_revision,
        dmi,
        board: detected.map(|d| d.0),
        board_source: detected.map(|d| d.1),
        os,
        init,
        mem,
        swaps,
        mounts,
        disks,
        efi,
        secure_boot,
        kernel,
        hostname,
        notes,
    }
}

/// The report sections the probe can fill.
#[derive(Debug, Clone)]
pub struct ReportParts {
    pub device: report::Device,
    pub os: report::Os,
    pub init: report::Init,
    pub target: report::Target,
}

impl Probe {
    /// The running OS is balenaOS.
    pub fn balena_os(&self) -> bool {
        self.os.as_ref().is_some_and(OsRelease::is_balena_os)
    }

    /// Support verdict for the running OS on the detected board.
    pub fn os_verdict(&self) -> OsVerdict {
        match &self.os {
            Some(o) => os::support(o, self.board),
            None => OsVerdict {
                supported: false,
                reason: "no os-release file (etc/os-release, usr/lib/os-release)".into(),
            },
        }
    }

    /// The model string for humans: device tree, else cpuinfo, else DMI.
    pub fn model_display(&self) -> Option<String> {
        self.model
            .clone()
            .or_else(|| self.cpuinfo_model.clone())
            .or_else(|| self.dmi.display())
    }

    /// What the CPU runs: the board's CPU when the board is known (a 64-bit Pi on a 32-bit OS
    /// still runs aarch64), else what `uname -m` says.
    pub fn cpu(&self) -> Option<arch::Cpu> {
        match self.board {
            Some(b) => Some(arch::board_cpu(b)),
            None => self.arch.as_deref().and_then(arch::Cpu::from_uname),
        }
    }

    /// Swap in use (stage 2 turns swap off, so these pages come back into RAM).
    pub fn swap_used_bytes(&self) -> u64 {
        self.swaps.iter().flatten().map(|s| s.used_bytes).sum()
    }

    pub fn init_kind(&self) -> InitKind {
        self.init.kind
    }

    /// Compatibility of the device-type slug with the detected board.
    pub fn compatibility(&self, slug: &str) -> Option<Compat> {
        self.board.map(|b| device::compatibility(b, slug, self.efi))
    }

    /// The report's device, os, init and target sections. `target_device_type` is
    /// `--change-dt-to` when given, else the config's deviceType.
    pub fn to_report_parts(
        &self,
        config_device_type: Option<&str>,
        change_dt_to: Option<&str>,
        target: Option<&TargetDisk>,
    ) -> ReportParts {
        let target_dt = change_dt_to.or(config_device_type);
        let verdict = self.os_verdict();
        ReportParts {
            device: report::Device {
                arch: self.arch.clone().unwrap_or_else(|| "unknown".into()),
                model: self.model_display(),
                detected: self.board.map(|b| b.name.to_string()),
                config_device_type: config_device_type.map(str::to_string),
                target_device_type: target_dt.map(str::to_string),
                compatible: target_dt
                    .and_then(|s| self.compatibility(s))
                    .is_some_and(|c| c.is_yes()),
            },
            os: report::Os {
                id: self.os.as_ref().and_then(|o| o.id.clone()),
                version_id: self.os.as_ref().and_then(|o| o.version_id.clone()),
                pretty_name: self.os.as_ref().map(OsRelease::display),
                supported: verdict.supported,
                balena_os: self.balena_os(),
            },
            init: report::Init {
                path: self.init.path.clone(),
                kind: self.init.kind.as_str().into(),
            },
            target: report::Target {
                device: target.map(|t| t.path.clone()),
                size_bytes: target.map(|t| t.size_bytes),
                efi: self.efi,
                secure_boot: self.secure_boot.unwrap_or(false),
            },
        }
    }
}

#[cfg(test)]
mod fixture_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_under_the_root() {
        let r = Root::new("/fixtures/pi4");
        assert_eq!(
            r.path("/proc/meminfo"),
            Path::new("/fixtures/pi4/proc/meminfo")
        );
        assert_eq!(
            r.path("etc/os-release"),
            Path::new("/fixtures/pi4/etc/os-release")
        );
        assert!(Root::system().is_system());
    }

    #[test]
    fn live_system_probe_never_fails() {
        // Reads only: /proc, /sys, /etc of the machine running the tests.
        let p = probe(&Root::system());
        assert!(p.live);
        let u = crate::sys::uname::uname().unwrap();
        assert_eq!(p.arch.as_deref(), Some(u.machine.as_str()));
        assert!(p.mounts.is_some(), "{:?}", p.notes);
        assert!(p.mem.total_bytes.is_some());
        if std::env::var_os("TAKEOVER_FIXTURE_DUMP").is_some() {
            eprintln!("{p:#?}");
            eprintln!(
                "{:?}",
                target::root_disk(&p).map(|(i, why)| (p.disks[i].dev_path(), why))
            );
        }
    }
}
