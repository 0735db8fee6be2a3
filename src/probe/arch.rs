//! Instruction sets: which balenaOS architecture a device type is built for, and which of them
//! the device's CPU runs. This is the one rule `--no-dt-check` never overrides: an image for
//! another architecture cannot boot, whatever board it names.
//!
//! balenaOS names its architectures as a device type's `arch`: `rpi` (ARMv6 hard-float, the
//! Pi Zero/1 build), `armv7hf`, `aarch64`, `i386` and `amd64`. A CPU runs its own architecture
//! and the older ones of its family: an ARMv8 (64-bit) board runs `aarch64`, `armv7hf` and
//! `rpi`; an ARMv7 board `armv7hf` and `rpi`; an x86-64 PC `amd64` and `i386`.
#![forbid(unsafe_code)]

use super::device::Board;

/// What the device's CPU executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpu {
    Armv6,
    Armv7,
    Aarch64,
    I686,
    X86_64,
}

impl Cpu {
    /// As `uname -m` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Cpu::Armv6 => "armv6l",
            Cpu::Armv7 => "armv7l",
            Cpu::Aarch64 => "aarch64",
            Cpu::I686 => "i686",
            Cpu::X86_64 => "x86_64",
        }
    }

    /// The CPU named by `uname -m` (`/proc/sys/kernel/arch` under a sysroot).
    pub fn from_uname(m: &str) -> Option<Cpu> {
        Some(match m {
            "armv6l" => Cpu::Armv6,
            "armv7l" | "armv8l" => Cpu::Armv7,
            "aarch64" | "arm64" => Cpu::Aarch64,
            "i386" | "i486" | "i586" | "i686" => Cpu::I686,
            "x86_64" | "amd64" => Cpu::X86_64,
            _ => return None,
        })
    }

    /// Whether this CPU runs balenaOS built for `arch` (a balena architecture name).
    pub fn runs(self, arch: &str) -> bool {
        let ok: &[&str] = match self {
            Cpu::Armv6 => &["rpi"],
            Cpu::Armv7 => &["rpi", "armv7hf"],
            Cpu::Aarch64 => &["rpi", "armv7hf", "aarch64"],
            Cpu::I686 => &["i386", "i386-nlp"],
            Cpu::X86_64 => &["i386", "i386-nlp", "amd64"],
        };
        ok.contains(&arch)
    }
}

/// The CPU of a board in the device table. A 64-bit board running a 32-bit OS reports
/// `armv7l` in `uname -m`, but its CPU still runs `aarch64` balenaOS, so the board decides.
pub fn board_cpu(board: &Board) -> Cpu {
    match board.id {
        "rpi1" | "rpi0" | "rpi0w" => Cpu::Armv6,
        // The Pi 2 v1.1 (BCM2836) is a Cortex-A7; BeagleBones are Cortex-A8/A15.
        "rpi2" | "bbg" | "bbgw" | "bbb" | "bbbw" | "bbai" | "bbxm" => Cpu::Armv7,
        "x86_64" => Cpu::X86_64,
        // Pi Zero 2 W, 3, 4, 400, CM3, CM4, 5 and the Jetsons: ARMv8.
        _ => Cpu::Aarch64,
    }
}

/// The balena architecture of a device type, for the types takeover knows.
pub fn slug_arch(slug: &str) -> Option<&'static str> {
    Some(match slug {
        "raspberry-pi" => "rpi",
        "raspberry-pi2"
        | "raspberrypi3"
        | "beaglebone-green"
        | "beaglebone-green-wifi"
        | "beaglebone-black"
        | "beaglebone-ai"
        | "beagleboard-xm"
        | "beaglebone-green-gateway" => "armv7hf",
        "raspberrypi3-64"
        | "raspberrypi4-64"
        | "raspberrypi400-64"
        | "raspberrypicm4-ioboard"
        | "raspberrypi5"
        | "raspberrypi0-2w-64"
        | "jetson-xavier"
        | "jetson-xavier-nx-devkit"
        | "jetson-xavier-nx-devkit-emmc"
        | "jetson-nano"
        | "jetson-nano-emmc"
        | "jetson-tx2"
        | "jetson-agx-orin-devkit"
        | "jetson-orin-nano-devkit-nvme"
        | "generic-aarch64" => "aarch64",
        "intel-nuc" | "genericx86-64-ext" | "generic-amd64" | "qemux86-64" | "surface-go"
        | "surface-pro-6" => "amd64",
        "qemux86" | "intel-edison" => "i386",
        _ => return None,
    })
}

/// Why `slug` cannot run on this CPU, when its architecture is known and is not one the CPU
/// runs: "the device type intel-nuc is built for amd64, and this device's CPU is aarch64".
pub fn mismatch(slug: &str, cpu: Cpu) -> Option<String> {
    let arch = slug_arch(slug)?;
    (!cpu.runs(arch)).then(|| {
        format!(
            "the device type {slug} is built for {arch}, and this device's CPU is {} (it runs {})",
            cpu.as_str(),
            runs_list(cpu)
        )
    })
}

fn runs_list(cpu: Cpu) -> &'static str {
    match cpu {
        Cpu::Armv6 => "rpi only",
        Cpu::Armv7 => "armv7hf and rpi",
        Cpu::Aarch64 => "aarch64, armv7hf and rpi",
        Cpu::I686 => "i386",
        Cpu::X86_64 => "amd64 and i386",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::device::BOARDS;

    #[test]
    fn every_slug_of_the_table_has_an_architecture_its_board_runs() {
        for b in BOARDS {
            let cpu = board_cpu(b);
            for s in b
                .slugs
                .iter()
                .chain(b.override_slugs.iter().map(|(s, _)| s))
            {
                let arch = slug_arch(s).unwrap_or_else(|| panic!("{s} has no architecture"));
                assert!(cpu.runs(arch), "{}: {s} ({arch})", b.id);
            }
        }
    }

    #[test]
    fn cross_architecture_pairs_are_mismatches() {
        let pi4 = BOARDS.iter().find(|b| b.id == "rpi4").unwrap();
        let m = mismatch("intel-nuc", board_cpu(pi4)).unwrap();
        assert!(m.contains("amd64") && m.contains("aarch64"), "{m}");
        assert!(mismatch("raspberrypi3", board_cpu(pi4)).is_none());
        let pi0 = BOARDS.iter().find(|b| b.id == "rpi0w").unwrap();
        assert!(mismatch("raspberrypi4-64", board_cpu(pi0)).is_some());
        assert!(mismatch("raspberrypi4-64", Cpu::X86_64).is_some());
        assert!(mismatch("no-such-type", Cpu::X86_64).is_none());
        assert_eq!(Cpu::from_uname("armv7l"), Some(Cpu::Armv7));
        assert_eq!(Cpu::from_uname("sparc64"), None);
    }
}
