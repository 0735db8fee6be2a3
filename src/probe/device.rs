//! The device table: how a board is recognised and which balena device types it accepts.
//!
//! Everything here is DATA ([`BOARDS`]) plus two small pure functions over it: [`detect`]
//! (model / `compatible` / cpuinfo revision → board) and [`compatibility`] (board + slug →
//! verdict). To support a new board, add one row.
//!
//! Recognition, in this order (the first that names a board wins):
//! 1. `/proc/device-tree/model`: the board's model string compared with each row's `models`:
//!    equal, or equal followed by the board revision `" Rev <x>"` (`"Raspberry Pi 4 Model B"`
//!    matches `"Raspberry Pi 4 Model B Rev 1.4"`; `"Raspberry Pi Zero"` does not match
//!    `"Raspberry Pi Zero 2 W Rev 1.0"`). An unknown newer board therefore never passes for an
//!    older one.
//! 2. `/proc/device-tree/compatible`: its strings, most specific first, compared exactly.
//! 3. `/proc/cpuinfo` (Raspberry Pi kernels without a device tree in /proc): the `Model` line
//!    as in 1., then the `Revision` code (new-style codes carry the board type in bits 4–11;
//!    old-style codes 0002–0015 are all Pi 1 boards).
//! 4. The architecture: every `x86_64` machine is the generic x86_64 board (DMI is read for
//!    the report only).
//!
//! Compatibility keeps the reference tool's board/device-type rules and extends them to the
//! newer boards. A few pairings are *known to boot but not a supported pairing*: those are
//! accepted only with `--no-dt-check` (e.g. a `raspberrypi4-64` image on a Pi 400). Every
//! 64-bit Raspberry Pi type is accepted on the boards that run it: balenaOS publishes
//! `raspberrypi3-64` for the whole Pi 3 family (3 B, 3 B+, 3 A+, CM3), so those boards take it
//! like `raspberrypi3` (the reference refused it without `--no-dt-check`). `generic-amd64` is a GPT image that boots only through UEFI: on a machine
//! that booted in legacy BIOS mode it is refused (use `genericx86-64-ext` or `intel-nuc`).
#![forbid(unsafe_code)]

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    RaspberryPi,
    BeagleBone,
    Jetson,
    X86_64,
}

/// One row of the device table.
#[derive(Debug, PartialEq, Eq)]
pub struct Board {
    /// Stable short id (used in tests and the report's `detected` value).
    pub id: &'static str,
    /// Human name, as shown to the operator.
    pub name: &'static str,
    pub family: Family,
    /// Model strings as the board prints them in `/proc/device-tree/model`, without the
    /// trailing " Rev x.y".
    pub models: &'static [&'static str],
    /// Device-tree `compatible` strings that name exactly this board.
    pub compatible: &'static [&'static str],
    /// Raspberry Pi new-style revision "type" codes (bits 4–11 of the `Revision` value).
    pub revision_types: &'static [u32],
    /// balena device-type slugs this board accepts.
    pub slugs: &'static [&'static str],
    /// Slugs that boot on the board but are not a supported pairing: accepted only with
    /// `--no-dt-check`, with the reason shown.
    pub override_slugs: &'static [(&'static str, &'static str)],
    /// Slugs that need UEFI firmware (refused when the machine booted in BIOS mode).
    pub efi_only_slugs: &'static [&'static str],
}

/// The device types of the Pi 3 family: 32-bit and 64-bit balenaOS both boot on every Pi 3.
const PI3_SLUGS: &[&str] = &["raspberrypi3", "raspberrypi3-64"];

const fn pi(
    id: &'static str,
    name: &'static str,
    models: &'static [&'static str],
    compatible: &'static [&'static str],
    revision_types: &'static [u32],
    slugs: &'static [&'static str],
    override_slugs: &'static [(&'static str, &'static str)],
) -> Board {
    let b = other(
        id,
        name,
        Family::RaspberryPi,
        models,
        compatible,
        slugs,
        override_slugs,
    );
    Board {
        revision_types,
        ..b
    }
}

const fn other(
    id: &'static str,
    name: &'static str,
    family: Family,
    models: &'static [&'static str],
    compatible: &'static [&'static str],
    slugs: &'static [&'static str],
    override_slugs: &'static [(&'static str, &'static str)],
) -> Board {
    Board {
        id,
        name,
        family,
        models,
        compatible,
        revision_types: &[],
        slugs,
        override_slugs,
        efi_only_slugs: &[],
    }
}

/// The device table.
pub static BOARDS: &[Board] = &[
    // ---- Raspberry Pi -------------------------------------------------------------------
    pi(
        "rpi1",
        "Raspberry Pi 1 (A/B/A+/B+/Compute Module 1)",
        &[
            "Raspberry Pi Model A",
            "Raspberry Pi Model B",
            "Raspberry Pi Model A Plus",
            "Raspberry Pi Model B Plus",
            "Raspberry Pi Model A+",
            "Raspberry Pi Model B+",
            "Raspberry Pi Model B rev2",
            "Raspberry Pi 1 Model A",
            "Raspberry Pi 1 Model B",
            "Raspberry Pi 1 Model A+",
            "Raspberry Pi 1 Model B+",
            "Raspberry Pi Compute Module",
        ],
        &[
            "raspberrypi,model-b-plus",
            "raspberrypi,model-b",
            "raspberrypi,model-b-rev2",
            "raspberrypi,model-a-plus",
            "raspberrypi,model-a",
            "raspberrypi,compute-module",
        ],
        &[0x00, 0x01, 0x02, 0x03, 0x06],
        &["raspberry-pi"],
        &[],
    ),
    pi(
        "rpi0",
        "Raspberry Pi Zero",
        &["Raspberry Pi Zero"],
        &["raspberrypi,model-zero"],
        &[0x09],
        &["raspberry-pi"],
        &[],
    ),
    pi(
        "rpi0w",
        "Raspberry Pi Zero W",
        &["Raspberry Pi Zero W"],
        &["raspberrypi,model-zero-w"],
        &[0x0c],
        &["raspberry-pi"],
        &[],
    ),
    pi(
        "rpi02w",
        "Raspberry Pi Zero 2 W",
        &["Raspberry Pi Zero 2 W"],
        &["raspberrypi,model-zero-2-w"],
        &[0x12],
        &["raspberrypi0-2w-64"],
        &[],
    ),
    pi(
        "rpi2",
        "Raspberry Pi 2",
        &["Raspberry Pi 2 Model B"],
        &["raspberrypi,2-model-b"],
        &[0x04],
        &["raspberry-pi2"],
        &[],
    ),
    pi(
        "rpi3",
        "Raspberry Pi 3 Model B",
        &["Raspberry Pi 3 Model B"],
        &["raspberrypi,3-model-b"],
        &[0x08],
        PI3_SLUGS,
        &[],
    ),
    pi(
        "rpi3bplus",
        "Raspberry Pi 3 Model B+",
        &["Raspberry Pi 3 Model B Plus", "Raspberry Pi 3 Model B+"],
        &["raspberrypi,3-model-b-plus"],
        &[0x0d],
        PI3_SLUGS,
        &[],
    ),
    pi(
        "rpi3aplus",
        "Raspberry Pi 3 Model A+",
        &["Raspberry Pi 3 Model A Plus", "Raspberry Pi 3 Model A+"],
        &["raspberrypi,3-model-a-plus"],
        &[0x0e],
        PI3_SLUGS,
        &[],
    ),
    pi(
        "rpicm3",
        "Raspberry Pi Compute Module 3/3+",
        &[
            "Raspberry Pi Compute Module 3",
            "Raspberry Pi Compute Module 3 Plus",
        ],
        &["raspberrypi,3-compute-module"],
        &[0x0a, 0x10],
        PI3_SLUGS,
        &[],
    ),
    pi(
        "rpi4",
        "Raspberry Pi 4",
        &["Raspberry Pi 4 Model B"],
        &["raspberrypi,4-model-b"],
        &[0x11],
        &["raspberrypi4-64"],
        &[],
    ),
    pi(
        "rpi400",
        "Raspberry Pi 400",
        &["Raspberry Pi 400"],
        &["raspberrypi,400"],
        &[0x13],
        &["raspberrypi400-64"],
        &[(
            "raspberrypi4-64",
            "the raspberrypi4-64 image carries the Pi 400 device tree, but balena lists the \
             Pi 400 as its own device type (raspberrypi400-64)",
        )],
    ),
    pi(
        "rpicm4",
        "Raspberry Pi Compute Module 4",
        &["Raspberry Pi Compute Module 4"],
        &["raspberrypi,4-compute-module"],
        &[0x14],
        &["raspberrypicm4-ioboard"],
        &[(
            "raspberrypi4-64",
            "the raspberrypi4-64 image carries the CM4 device tree, but balena lists the CM4 \
             as its own device type (raspberrypicm4-ioboard)",
        )],
    ),
    pi(
        "rpi5",
        "Raspberry Pi 5",
        &["Raspberry Pi 5 Model B"],
        &["raspberrypi,5-model-b"],
        &[0x17],
        &["raspberrypi5"],
        &[],
    ),
    // ---- BeagleBone / BeagleBoard -------------------------------------------------------
    other(
        // Reference rule: the bare "TI AM335x BeagleBone" string is a BeagleBone Green.
        "bbg",
        "BeagleBone Green",
        Family::BeagleBone,
        &["TI AM335x BeagleBone Green", "TI AM335x BeagleBone"],
        &["ti,am335x-bone-green"],
        &["beaglebone-green"],
        &[],
    ),
    other(
        "bbgw",
        "BeagleBone Green Wireless",
        Family::BeagleBone,
        &["TI AM335x BeagleBone Green Wireless"],
        &["ti,am335x-bone-green-wireless"],
        &["beaglebone-green-wifi"],
        &[],
    ),
    other(
        "bbb",
        "BeagleBone Black",
        Family::BeagleBone,
        &["TI AM335x BeagleBone Black"],
        &["ti,am335x-bone-black"],
        &["beaglebone-black"],
        &[],
    ),
    other(
        "bbbw",
        "BeagleBone Black Wireless",
        Family::BeagleBone,
        &["TI AM335x BeagleBone Black Wireless"],
        &["ti,am335x-bone-black-wireless"],
        &[],
        &[(
            "beaglebone-black",
            "balena has no device type for the BeagleBone Black Wireless; the beaglebone-black \
             image selects its device tree from the board EEPROM but this pairing is untested",
        )],
    ),
    other(
        "bbai",
        "BeagleBone AI",
        Family::BeagleBone,
        &["BeagleBoard.org BeagleBone AI"],
        &["beagle,am5729-beagleboneai"],
        &[],
        &[],
    ),
    other(
        "bbxm",
        "BeagleBoard xM",
        Family::BeagleBone,
        &["TI OMAP3 BeagleBoard xM"],
        &["ti,omap3-beagle-xm"],
        &["beagleboard-xm"],
        &[],
    ),
    // ---- NVIDIA Jetson ------------------------------------------------------------------
    other(
        "jetson-xavier",
        "Jetson AGX Xavier",
        Family::Jetson,
        &["Jetson-AGX", "NVIDIA Jetson AGX Xavier Developer Kit"],
        &["nvidia,p2972-0000", "nvidia,galen"],
        &["jetson-xavier"],
        &[],
    ),
    other(
        "jetson-xavier-nx",
        "Jetson Xavier NX",
        Family::Jetson,
        &["NVIDIA Jetson Xavier NX Developer Kit"],
        &[
            "nvidia,p3449-0000+p3668-0000",
            "nvidia,p3449-0000+p3668-0001",
            "nvidia,p3509-0000+p3668-0000",
            "nvidia,p3509-0000+p3668-0001",
        ],
        &["jetson-xavier-nx-devkit", "jetson-xavier-nx-devkit-emmc"],
        &[],
    ),
    // ---- x86_64: recognised by architecture -------------------------------------------
    Board {
        id: "x86_64",
        name: "x86_64 PC / Intel NUC",
        family: Family::X86_64,
        models: &[],
        compatible: &[],
        revision_types: &[],
        slugs: &["intel-nuc", "genericx86-64-ext", "generic-amd64"],
        override_slugs: &[],
        efi_only_slugs: &["generic-amd64"],
    },
];

/// How the board was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    DeviceTreeModel,
    DeviceTreeCompatible,
    CpuinfoModel,
    CpuinfoRevision,
    Architecture,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::DeviceTreeModel => "device-tree model",
            Source::DeviceTreeCompatible => "device-tree compatible",
            Source::CpuinfoModel => "cpuinfo Model",
            Source::CpuinfoRevision => "cpuinfo Revision",
            Source::Architecture => "architecture",
        }
    }
}

/// What [`detect`] looks at.
#[derive(Debug, Clone, Default)]
pub struct Evidence<'a> {
    pub arch: Option<&'a str>,
    pub model: Option<&'a str>,
    pub compatible: &'a [String],
    pub cpuinfo_model: Option<&'a str>,
    pub cpuinfo_revision: Option<&'a str>,
}

/// True when `model` is `name`, or `name` followed by a board revision (" Rev 1.4").
fn model_matches(model: &str, name: &str) -> bool {
    model
        .strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(" Rev "))
}

/// The board with this model string (see the module documentation).
pub fn by_model(model: &str) -> Option<&'static Board> {
    let model = model.trim();
    BOARDS
        .iter()
        .find(|b| b.models.iter().any(|m| model_matches(model, m)))
}

/// The first `compatible` string (most specific first) that names a board.
pub fn by_compatible(compatible: &[String]) -> Option<&'static Board> {
    compatible
        .iter()
        .find_map(|c| BOARDS.iter().find(|b| b.compatible.contains(&c.as_str())))
}

/// A Raspberry Pi `Revision` value from /proc/cpuinfo (hex, e.g. "c03114" or "000e").
pub fn by_revision(revision: &str) -> Option<&'static Board> {
    let v = u32::from_str_radix(revision.trim(), 16).ok()?;
    let board_type = if v & (1 << 23) != 0 {
        (v >> 4) & 0xff
    } else {
        // Old style: the low 24 bits; bit 24 marks over-voltage ("1000000e"). 0002–0015
        // are Pi 1 models A, B, A+, B+ and the Compute Module 1.
        match v & 0x00ff_ffff {
            0x02..=0x15 => 0x01,
            _ => return None,
        }
    };
    BOARDS
        .iter()
        .find(|b| b.revision_types.contains(&board_type))
}

/// Recognises the board (see the module documentation for the order).
pub fn detect(ev: &Evidence<'_>) -> Option<(&'static Board, Source)> {
    if ev.arch == Some("x86_64") {
        return BOARDS
            .iter()
            .find(|b| b.family == Family::X86_64)
            .map(|b| (b, Source::Architecture));
    }
    if let Some(b) = ev.model.and_then(by_model) {
        return Some((b, Source::DeviceTreeModel));
    }
    if let Some(b) = by_compatible(ev.compatible) {
        return Some((b, Source::DeviceTreeCompatible));
    }
    if let Some(b) = ev.cpuinfo_model.and_then(by_model) {
        return Some((b, Source::CpuinfoModel));
    }
    if let Some(b) = ev.cpuinfo_revision.and_then(by_revision) {
        return Some((b, Source::CpuinfoRevision));
    }
    None
}

/// The verdict for one board and one device-type slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compat {
    Yes,
    /// Boots but is not a supported pairing: only with `--no-dt-check`. Holds the reason.
    OnlyWithOverride(String),
    /// Refused; holds the reason.
    No(String),
}

impl Compat {
    pub fn is_yes(&self) -> bool {
        *self == Compat::Yes
    }
}

/// Whether `board` can run the balenaOS device type `slug`. `efi` is whether the machine
/// booted through UEFI (decides GPT-only x86 images).
pub fn compatibility(board: &Board, slug: &str, efi: bool) -> Compat {
    if board.slugs.contains(&slug) {
        if board.efi_only_slugs.contains(&slug) && !efi {
            return Compat::No(format!(
                "{slug} is a GPT image that boots only through UEFI, and this machine booted in \
                 legacy BIOS mode (it accepts {})",
                accepted_slugs(board, efi).join(", ")
            ));
        }
        return Compat::Yes;
    }
    if let Some((_, why)) = board.override_slugs.iter().find(|(s, _)| *s == slug) {
        return Compat::OnlyWithOverride((*why).to_string());
    }
    let accepted = accepted_slugs(board, efi);
    if accepted.is_empty() {
        return Compat::No(format!(
            "balena has no device type for the {}, so no fleet type fits it",
            board.name
        ));
    }
    Compat::No(format!(
        "the device type {slug} does not run on a {}; this board accepts {}",
        board.name,
        accepted.join(", ")
    ))
}

/// The slugs `board` accepts without override, on this firmware.
pub fn accepted_slugs(board: &Board, efi: bool) -> Vec<&'static str> {
    board
        .slugs
        .iter()
        .copied()
        .filter(|s| efi || !board.efi_only_slugs.contains(s))
        .collect()
}

/// The board with this id.
pub fn by_id(id: &str) -> Option<&'static Board> {
    BOARDS.iter().find(|b| b.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_model_strings_are_recognised() {
        for (model, id) in [
            ("Raspberry Pi Model B Rev 2", "rpi1"),
            ("Raspberry Pi Model B Plus Rev 1.2", "rpi1"),
            ("Raspberry Pi Model A Plus Rev 1.1", "rpi1"),
            ("Raspberry Pi Compute Module Rev 1.0", "rpi1"),
            ("Raspberry Pi Zero Rev 1.3", "rpi0"),
            ("Raspberry Pi Zero W Rev 1.1", "rpi0w"),
            ("Raspberry Pi Zero 2 W Rev 1.0", "rpi02w"),
            ("Raspberry Pi 2 Model B Rev 1.1", "rpi2"),
            ("Raspberry Pi 3 Model B Rev 1.2", "rpi3"),
            ("Raspberry Pi 3 Model B Plus Rev 1.3", "rpi3bplus"),
            ("Raspberry Pi 3 Model A Plus Rev 1.0", "rpi3aplus"),
            ("Raspberry Pi Compute Module 3 Rev 1.0", "rpicm3"),
            ("Raspberry Pi Compute Module 3 Plus Rev 1.0", "rpicm3"),
            ("Raspberry Pi 4 Model B Rev 1.4", "rpi4"),
            ("Raspberry Pi 4 Model B Rev 1.5", "rpi4"),
            ("Raspberry Pi 400 Rev 1.0", "rpi400"),
            ("Raspberry Pi Compute Module 4 Rev 1.0", "rpicm4"),
            ("Raspberry Pi 5 Model B Rev 1.0", "rpi5"),
            ("TI AM335x BeagleBone Black", "bbb"),
            ("TI AM335x BeagleBone Green", "bbg"),
            ("TI AM335x BeagleBone", "bbg"),
            ("TI AM335x BeagleBone Green Wireless", "bbgw"),
            ("TI AM335x BeagleBone Black Wireless", "bbbw"),
            ("BeagleBoard.org BeagleBone AI", "bbai"),
            ("TI OMAP3 BeagleBoard xM", "bbxm"),
            ("Jetson-AGX", "jetson-xavier"),
            ("NVIDIA Jetson Xavier NX Developer Kit", "jetson-xavier-nx"),
        ] {
            let b = by_model(model).unwrap_or_else(|| panic!("{model} not recognised"));
            assert_eq!(b.id, id, "{model}");
        }
        for model in [
            "Raspberry Pi 40 Rev 1.0",
            "TI AM335x BeagleBone Blue",
            "TI AM335x PocketBeagle",
            "Raspberry Pi Compute Module 5 Rev 1.0",
            "Raspberry Pi 500 Rev 1.0",
            "Raspberry Pi Zero 3 W Rev 1.0",
            "Raspberry",
            "",
            "Rockchip RK3399",
        ] {
            assert!(by_model(model).is_none(), "{model}");
        }
        // "Raspberry Pi 4" must not swallow "Raspberry Pi 400".
        assert_ne!(by_model("Raspberry Pi 400 Rev 1.1").unwrap().id, "rpi4");
    }

    #[test]
    fn compatible_and_revision_fallbacks() {
        let c = vec!["raspberrypi,4-compute-module".into(), "brcm,bcm2711".into()];
        assert_eq!(by_compatible(&c).unwrap().id, "rpicm4");
        let c = vec!["ti,am335x-bone-black".into(), "ti,am33xx".into()];
        assert_eq!(by_compatible(&c).unwrap().id, "bbb");
        assert!(by_compatible(&["brcm,bcm2711".into()]).is_none());
        for (rev, id) in [
            ("c03114", "rpi4"),
            ("a020d3", "rpi3bplus"),
            ("9000c1", "rpi0w"),
            ("902120", "rpi02w"),
            ("c03130", "rpi400"),
            ("b03140", "rpicm4"),
            ("c04170", "rpi5"),
            ("a01041", "rpi2"),
            ("000e", "rpi1"),
            ("1000000e", "rpi1"),
        ] {
            assert_eq!(by_revision(rev).unwrap().id, id, "{rev}");
        }
        assert!(by_revision("zz").is_none());
        assert!(by_revision("0001").is_none());
    }

    #[test]
    fn detect_order() {
        let compat: Vec<String> = vec!["raspberrypi,3-model-b".into()];
        // Model wins over compatible.
        let ev = Evidence {
            arch: Some("aarch64"),
            model: Some("Raspberry Pi 4 Model B Rev 1.4"),
            compatible: &compat,
            ..Default::default()
        };
        assert_eq!(detect(&ev).unwrap().0.id, "rpi4");
        let ev = Evidence {
            arch: Some("armv7l"),
            model: None,
            compatible: &compat,
            ..Default::default()
        };
        assert_eq!(
            detect(&ev).unwrap(),
            (by_id("rpi3").unwrap(), Source::DeviceTreeCompatible)
        );
        let ev = Evidence {
            arch: Some("armv6l"),
            cpuinfo_revision: Some("9000c1"),
            ..Default::default()
        };
        assert_eq!(detect(&ev).unwrap().1, Source::CpuinfoRevision);
        let ev = Evidence {
            arch: Some("x86_64"),
            ..Default::default()
        };
        assert_eq!(detect(&ev).unwrap().0.family, Family::X86_64);
        let ev = Evidence {
            arch: Some("i686"),
            ..Default::default()
        };
        assert!(detect(&ev).is_none());
    }

    #[test]
    fn compatibility_rules() {
        let get = |id| by_id(id).unwrap();
        assert!(compatibility(get("rpi3"), "raspberrypi3", false).is_yes());
        // Every 64-bit Pi type on the boards that run it (issue 17).
        for id in ["rpi3", "rpi3bplus", "rpi3aplus", "rpicm3"] {
            assert!(
                compatibility(get(id), "raspberrypi3", false).is_yes(),
                "{id}"
            );
            assert!(
                compatibility(get(id), "raspberrypi3-64", false).is_yes(),
                "{id}"
            );
        }
        // ... and only on those: a Pi 2 (BCM2836) and a Pi 4 refuse the Pi 3 64-bit type.
        assert!(matches!(
            compatibility(get("rpi2"), "raspberrypi3-64", false),
            Compat::No(w) if w.contains("raspberry-pi2")
        ));
        assert!(matches!(
            compatibility(get("rpi4"), "raspberrypi3-64", false),
            Compat::No(w) if w.contains("raspberrypi4-64")
        ));
        assert!(compatibility(get("rpi4"), "raspberrypi4-64", false).is_yes());
        assert!(matches!(
            compatibility(get("rpi4"), "raspberrypi3", false),
            Compat::No(w) if w.contains("raspberrypi4-64")
        ));
        assert!(compatibility(get("rpi0w"), "raspberry-pi", false).is_yes());
        assert!(compatibility(get("rpi02w"), "raspberrypi0-2w-64", false).is_yes());
        assert!(compatibility(get("rpi400"), "raspberrypi400-64", false).is_yes());
        assert!(compatibility(get("rpicm4"), "raspberrypicm4-ioboard", false).is_yes());
        assert!(compatibility(get("rpi5"), "raspberrypi5", false).is_yes());
        assert!(compatibility(get("bbgw"), "beaglebone-green-wifi", false).is_yes());
        assert!(compatibility(
            get("jetson-xavier-nx"),
            "jetson-xavier-nx-devkit-emmc",
            false
        )
        .is_yes());
        let x86 = get("x86_64");
        assert!(compatibility(x86, "generic-amd64", true).is_yes());
        assert!(matches!(
            compatibility(x86, "generic-amd64", false),
            Compat::No(w) if w.contains("BIOS")
        ));
        assert!(compatibility(x86, "genericx86-64-ext", false).is_yes());
        assert!(compatibility(x86, "intel-nuc", false).is_yes());
        assert!(matches!(
            compatibility(get("bbai"), "beaglebone-black", false),
            Compat::No(w) if w.contains("no device type")
        ));
    }

    #[test]
    fn table_is_consistent() {
        let mut ids: Vec<_> = BOARDS.iter().map(|b| b.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), BOARDS.len(), "duplicate board id");
        for b in BOARDS {
            for s in b
                .slugs
                .iter()
                .chain(b.override_slugs.iter().map(|(s, _)| s))
            {
                assert!(crate::cli::is_slug(s), "{s}");
            }
            for m in b.models {
                assert_eq!(by_model(m).map(|x| x.id), Some(b.id), "{m}");
            }
        }
    }
}
