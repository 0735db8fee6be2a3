//! Firmware and kernel facts: EFI, Secure Boot, and the kernel support stage 2 needs.
//!
//! - EFI: `sys/firmware/efi` exists.
//! - Secure Boot: the efivar `SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c` under
//!   `sys/firmware/efi/efivars/` (4 attribute bytes, then 1 data byte: 1 = on), or the legacy
//!   sysfs interface `sys/firmware/efi/vars/SecureBoot-…/data` (the data byte alone). No
//!   `mokutil` is run.
//! - Stage 2 needs `tmpfs` (its RAM root) and `ext4` (the balenaOS data partition it writes the
//!   backup and log to) as filesystems, and `loop` (loop-mounting the new image's root, e.g. for
//!   the Jetson boot blobs). Each is *available* when registered (`proc/filesystems`, or
//!   `sys/module/loop` for loop), *built in* when listed in
//!   `lib/modules/<release>/modules.builtin`, *loadable* when its module file exists under
//!   `lib/modules/<release>/kernel/` (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`) — it must then be
//!   loaded before the hand-over, while the old root is still mounted — else *missing*.
//!   `<release>` is `proc/sys/kernel/osrelease` (uname's release on the live system).
#![forbid(unsafe_code)]

use super::Root;

pub const SECURE_BOOT_VAR: &str = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// Secure Boot state: `Some(true)` on, `Some(false)` off, `None` unknown (with a note).
pub fn secure_boot(root: &Root, efi: bool, notes: &mut Vec<String>) -> Option<bool> {
    if !efi {
        return Some(false);
    }
    let var = format!("sys/firmware/efi/efivars/{SECURE_BOOT_VAR}");
    match root.read_bytes(&var) {
        Ok(b) if b.len() >= 5 => return Some(b[4] == 1),
        Ok(b) => {
            notes.push(format!(
                "{var} has {} bytes, expected 4 attribute bytes and 1 data byte",
                b.len()
            ));
            return None;
        }
        Err(_) => {}
    }
    let legacy = format!("sys/firmware/efi/vars/{SECURE_BOOT_VAR}/data");
    if let Ok(b) = root.read_bytes(&legacy) {
        if let Some(&v) = b.first() {
            return Some(v == 1);
        }
    }
    if root.list("sys/firmware/efi/efivars").is_empty() {
        notes.push("EFI variables are not readable (efivarfs not mounted?)".into());
        None
    } else {
        // efivarfs is mounted but the firmware defines no SecureBoot variable: the firmware
        // does not implement Secure Boot.
        Some(false)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Registered with the running kernel (built in or loaded).
    Available,
    /// Listed in modules.builtin.
    BuiltIn,
    /// A module file exists (path relative to the root); must be loaded before stage 2.
    Loadable(String),
    Missing,
}

impl Support {
    pub fn is_usable(&self) -> bool {
        !matches!(self, Support::Missing)
    }
    pub fn describe(&self) -> String {
        match self {
            Support::Available => "available".into(),
            Support::BuiltIn => "built in".into(),
            Support::Loadable(p) => format!("module {p} (to be loaded before stage 2)"),
            Support::Missing => "missing".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSupport {
    pub release: Option<String>,
    /// Names from proc/filesystems (without the "nodev" marker).
    pub filesystems: Vec<String>,
    pub tmpfs: Support,
    pub ext4: Support,
    pub loop_dev: Support,
}

/// Filesystem names of /proc/filesystems ("nodev\ttmpfs", "\text4").
pub fn parse_filesystems(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|n| *n != "nodev")
        .map(str::to_string)
        .collect()
}

fn module_support(
    root: &Root,
    release: Option<&str>,
    registered: bool,
    module_rel: &str,
) -> Support {
    if registered {
        return Support::Available;
    }
    let Some(rel) = release else {
        return Support::Missing;
    };
    let base = format!("lib/modules/{rel}");
    let builtin = root
        .read_string(format!("{base}/modules.builtin"))
        .unwrap_or_default();
    if builtin.lines().any(|l| l.trim() == module_rel) {
        return Support::BuiltIn;
    }
    for ext in ["", ".xz", ".zst", ".gz"] {
        let p = format!("{base}/{module_rel}{ext}");
        if root.exists(&p) {
            return Support::Loadable(format!("/{p}"));
        }
    }
    Support::Missing
}

pub fn kernel_support(
    root: &Root,
    release: Option<String>,
    notes: &mut Vec<String>,
) -> KernelSupport {
    let filesystems = match root.read_string("proc/filesystems") {
        Ok(t) => parse_filesystems(&t),
        Err(e) => {
            notes.push(format!("cannot read proc/filesystems: {e}"));
            Vec::new()
        }
    };
    let has = |n: &str| filesystems.iter().any(|f| f == n);
    let rel = release.as_deref();
    KernelSupport {
        tmpfs: module_support(root, rel, has("tmpfs"), "kernel/fs/tmpfs.ko"),
        ext4: module_support(root, rel, has("ext4"), "kernel/fs/ext4/ext4.ko"),
        loop_dev: module_support(
            root,
            rel,
            root.exists("sys/module/loop"),
            "kernel/drivers/block/loop.ko",
        ),
        filesystems,
        release,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystems_list() {
        let f = parse_filesystems("nodev\tsysfs\nnodev\ttmpfs\n\text4\n\tvfat\n");
        assert_eq!(f, vec!["sysfs", "tmpfs", "ext4", "vfat"]);
    }

    #[test]
    fn missing_root_gives_missing_modules_and_notes() {
        let r = Root::new("/nonexistent-root");
        let mut notes = vec![];
        let k = kernel_support(&r, Some("6.1.0".into()), &mut notes);
        assert_eq!(k.ext4, Support::Missing);
        assert!(!notes.is_empty());
        assert_eq!(secure_boot(&r, false, &mut notes), Some(false));
        assert_eq!(secure_boot(&r, true, &mut notes), None);
    }
}
