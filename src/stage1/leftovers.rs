//! What an interrupted stage 1 can leave behind, found and removed by the next run.
//!
//! A stage 1 that is killed (SIGKILL, OOM, a lost ssh session with a hung-up terminal) between
//! preparing the RAM root and handing over PID 1 does not run its undo. What stays:
//!
//! * the RAM root: a tmpfs at [`plan::RAM_ROOT`] holding this binary, the image, the plan and
//!   the payload (config.json with the apiKey — in RAM, 0600, but still there);
//! * the bind mount of that binary over the init binary. This one is dangerous: the next time
//!   init re-executes for an unrelated reason (a systemd package upgrade runs `daemon-reexec`),
//!   PID 1 would become takeover and find a plan;
//! * swap that was turned off: listed in the RAM root ([`plan::SWAPS_OFF_FILE`]) and turned
//!   back on when the RAM root is removed (swap turned off just before the RAM root was mounted
//!   is not recorded: the log says how to turn it back on);
//! * the staging directory in the work dir (removed anyway by the next run's fresh staging).
//!
//! The next run finds the mounts in the mount table (pure: [`find`]) and removes them
//! (effects: [`clean`]) before it prepares anything, after taking the run lock so that it never
//! touches the mounts of a run that is still going. A dry run only reports them.
//! If PID 1 already runs the binary of the RAM root, stage 2 is under way: nothing is touched.
#![forbid(unsafe_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::probe::mounts::Mount;
use crate::stage2_plan as plan;

/// Mounts of an interrupted run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Bind mounts of the RAM root's binary over other files (the init binary).
    pub binds: Vec<PathBuf>,
    /// The RAM root itself, when mounted.
    pub ram_root: Option<PathBuf>,
    /// Swap areas the interrupted run turned off, as it recorded them in the RAM root.
    pub swaps: Vec<PathBuf>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.binds.is_empty() && self.ram_root.is_none()
    }

    /// One line for the log and the report.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.ram_root {
            parts.push(format!("the RAM root {}", r.display()));
        }
        for b in &self.binds {
            parts.push(format!("a bind mount of takeover over {}", b.display()));
        }
        for s in &self.swaps {
            parts.push(format!("swap {} turned off", s.display()));
        }
        parts.join(", ")
    }

    /// Adds the swap areas the interrupted run recorded in its RAM root (read from the file
    /// system, unlike [`find`]).
    pub fn read_swaps(mut self) -> Leftovers {
        if let Some(r) = &self.ram_root {
            if let Ok(text) = std::fs::read_to_string(r.join(plan::SWAPS_OFF_FILE)) {
                self.swaps = parse_swaps(&text);
            }
        }
        self
    }
}

/// The lines of [`plan::SWAPS_OFF_FILE`]: absolute paths only.
fn parse_swaps(text: &str) -> Vec<PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// Finds the leftovers in a mount table (`/proc/self/mountinfo`, parsed). The RAM root is a
/// tmpfs mounted at [`plan::RAM_ROOT`]; a bind mount of its binary is a tmpfs mount whose root
/// inside the filesystem is `/takeover` and whose mount point is somewhere else.
pub fn find(mounts: &[Mount]) -> Leftovers {
    let mut l = Leftovers::default();
    let binary_root = format!("/{}", plan::BINARY);
    for m in mounts {
        if m.fs_type != "tmpfs" {
            continue;
        }
        if m.mount_point == plan::RAM_ROOT && m.root == "/" {
            l.ram_root = Some(PathBuf::from(&m.mount_point));
        } else if m.root == binary_root {
            l.binds.push(PathBuf::from(&m.mount_point));
        }
    }
    // Deepest (last mounted) first, like any unmount.
    l.binds.reverse();
    l
}

/// Is PID 1 already running the binary of the RAM root (stage 2 under way)? Compared by device
/// and inode, which a bind mount does not change.
fn stage2_running(proc_root: &Path) -> bool {
    let ours = Path::new(plan::RAM_ROOT).join(plan::BINARY);
    match (
        std::fs::metadata(proc_root.join("1/exe")),
        std::fs::metadata(&ours),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Removes the leftovers: bind mounts first (so init is its own binary again), then the RAM
/// root. Fails, naming the mount, when one cannot be removed: the run must not go on over them.
pub fn clean(l: &Leftovers) -> Result<()> {
    let step = "removing what an interrupted takeover run left";
    if stage2_running(Path::new("/proc")) {
        return Err(Error::new(
            step,
            "/proc/1/exe",
            "PID 1 already runs takeover: a migration is under way",
        )
        .hint(
            "wait: the device reboots when stage 2 ends (watch the console or the --log-to device)",
        ));
    }
    for b in &l.binds {
        crate::sys::mount::umount2(b, 0).map_err(|e| {
            Error::new(
                step,
                b.display(),
                format!("cannot remove the bind mount: {e}"),
            )
            .hint("reboot the device (that clears it), then run takeover again")
        })?;
        crate::warn!(
            "removed a bind mount over {} left by an interrupted run",
            b.display()
        );
    }
    if let Some(r) = &l.ram_root {
        crate::sys::mount::umount2(r, 0).map_err(|e| {
            Error::new(
                step,
                r.display(),
                format!("cannot unmount the RAM root: {e}"),
            )
            .hint("stop what uses it (`fuser -m /run/takeover`) or reboot, then run takeover again")
        })?;
        let _ = std::fs::remove_dir(r);
        if l.swaps.is_empty() {
            crate::warn!(
                "removed the RAM root {} left by an interrupted run; if it had turned swap off, `swapon -a` turns it back on",
                r.display()
            );
        } else {
            crate::warn!(
                "removed the RAM root {} left by an interrupted run",
                r.display()
            );
        }
    }
    for s in &l.swaps {
        match crate::sys::mount::swapon(s) {
            Ok(()) => crate::warn!(
                "turned swap {} back on (the interrupted run had turned it off)",
                s.display()
            ),
            // EBUSY: it is on already (turned on by hand meanwhile).
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => crate::warn!(
                "could not turn swap {} back on: {e}; `swapon -a` or a reboot does",
                s.display()
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::mounts::parse_mountinfo;

    const TABLE: &str = "\
22 1 254:2 / / rw,relatime shared:1 - ext4 /dev/vda2 rw
30 22 0:25 / /run rw,nosuid shared:5 - tmpfs tmpfs rw,mode=755
91 30 0:52 / /run/takeover rw,nosuid,nodev - tmpfs tmpfs rw,size=102400k,mode=700
92 22 0:52 /takeover /usr/lib/systemd/systemd rw,nosuid,nodev - tmpfs tmpfs rw,size=102400k,mode=700
93 30 0:53 / /run/user/0 rw,nosuid shared:9 - tmpfs tmpfs rw,mode=700
94 22 0:52 /takeover /sbin/init rw - tmpfs tmpfs rw
";

    #[test]
    fn ram_root_and_binds_are_found_deepest_first() {
        let m = parse_mountinfo(TABLE, "t").unwrap();
        let l = find(&m);
        assert_eq!(l.ram_root, Some(PathBuf::from("/run/takeover")));
        assert_eq!(
            l.binds,
            vec![
                PathBuf::from("/sbin/init"),
                PathBuf::from("/usr/lib/systemd/systemd")
            ]
        );
        let d = l.describe();
        assert!(d.contains("RAM root /run/takeover"), "{d}");
        assert!(d.contains("over /usr/lib/systemd/systemd"), "{d}");
    }

    #[test]
    fn a_clean_system_has_no_leftovers() {
        let clean_table: String = TABLE
            .lines()
            .filter(|l| !l.contains("0:52"))
            .map(|l| format!("{l}\n"))
            .collect();
        let m = parse_mountinfo(&clean_table, "t").unwrap();
        assert!(find(&m).is_empty());
        // A tmpfs at another place, or a non-tmpfs at the RAM root path, is not ours.
        let other = "\
91 30 0:52 / /run/takeover rw - ext4 /dev/sdb1 rw
92 22 0:52 /other /usr/bin/x rw - tmpfs tmpfs rw
";
        assert!(find(&parse_mountinfo(other, "t").unwrap()).is_empty());
    }

    #[test]
    fn swaps_recorded_in_the_ram_root_are_read_back() {
        let dir = std::env::temp_dir().join(format!("takeover-left-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut l = Leftovers {
            ram_root: Some(dir.clone()),
            ..Leftovers::default()
        };
        // Nothing recorded: no swaps.
        l = l.read_swaps();
        assert!(l.swaps.is_empty());
        std::fs::write(
            dir.join(plan::SWAPS_OFF_FILE),
            "/swapfile\n/dev/sda3\n\nrelative\n",
        )
        .unwrap();
        let l = l.read_swaps();
        assert_eq!(
            l.swaps,
            vec![PathBuf::from("/swapfile"), PathBuf::from("/dev/sda3")]
        );
        assert!(l.describe().contains("swap /swapfile turned off"));
        // Without a RAM root there is nothing to read.
        assert!(Leftovers::default().read_swaps().swaps.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
