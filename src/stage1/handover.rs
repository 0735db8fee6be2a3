//! The hand-over from stage 1 to stage 2: RAM root, PID 1 replacement.
//!
//! Everything here is undone when a step fails (unless `--no-cleanup`): the bind mount over
//! init, the RAM root tmpfs, and swap. After the init re-executes, no external program is used.
#![forbid(unsafe_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Error, Result};
use crate::stage2_plan::{self as plan, Stage2Plan};
use crate::sys::mount as sm;

/// What stage 1 changed, in order, so that it can be undone.
#[derive(Debug, Default)]
pub struct Undo {
    swaps_off: Vec<PathBuf>,
    ram_root: Option<PathBuf>,
    bind: Option<PathBuf>,
}

impl Undo {
    /// Reverts everything recorded, newest first. Errors are logged, not returned: the
    /// operator sees what could not be undone.
    pub fn undo(&mut self) {
        if let Some(b) = self.bind.take() {
            match sm::umount2(&b, 0) {
                Ok(()) => crate::info!("undone: bind mount over {}", b.display()),
                Err(e) => crate::error!(
                    "could not remove the bind mount over {}: {e}; reboot to clear it",
                    b.display()
                ),
            }
        }
        if let Some(r) = self.ram_root.take() {
            match sm::umount2(&r, 0) {
                Ok(()) => {
                    let _ = fs::remove_dir(&r);
                    crate::info!("undone: RAM root {}", r.display());
                }
                Err(e) => crate::error!("could not unmount {}: {e}", r.display()),
            }
        }
        for s in self.swaps_off.drain(..).rev() {
            match sm::swapon(&s) {
                Ok(()) => crate::info!("undone: swap {} back on", s.display()),
                Err(e) => crate::warn!("could not turn swap {} back on: {e}", s.display()),
            }
        }
    }
}

/// Loads the kernel modules stage 2 needs where they are modules (after the pivot no module
/// can be loaded). Missing `modprobe` or a built-in driver is fine; the check is what counts.
pub fn load_modules() {
    for m in ["loop", "ext4"] {
        match Command::new("modprobe").arg(m).output() {
            Ok(o) if o.status.success() => crate::debug!("modprobe {m}: ok"),
            Ok(o) => crate::debug!(
                "modprobe {m}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => crate::debug!("modprobe {m}: {e}"),
        }
    }
}

/// Turns off every swap area listed in `/proc/swaps` (swap on the target disk would be
/// overwritten; swap in RAM is wasted RAM).
pub fn swaps_off(undo: &mut Undo, swaps: &[PathBuf]) -> Result<()> {
    for s in swaps {
        crate::info!("turning swap {} off", s.display());
        sm::swapoff(s).ctx("turning swap off", s.display())?;
        undo.swaps_off.push(s.clone());
    }
    Ok(())
}

/// Mounts the RAM root (tmpfs, mode 0700, `size` bytes) at [`plan::RAM_ROOT`].
pub fn mount_ram_root(undo: &mut Undo, size: u64) -> Result<PathBuf> {
    let r = PathBuf::from(plan::RAM_ROOT);
    if r.exists()
        && fs::read_dir(&r)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::new(
            "preparing the RAM root",
            r.display(),
            "exists and is not empty",
        )
        .hint("a previous run was interrupted: reboot (or unmount it) and run takeover again"));
    }
    fs::create_dir_all(&r).ctx_path("creating", &r)?;
    let opts = format!("size={},mode=0700", size.div_ceil(4096) * 4096);
    sm::mount(
        Some(Path::new("tmpfs")),
        &r,
        Some("tmpfs"),
        sm::MS_NOSUID | sm::MS_NODEV,
        Some(&opts),
    )
    .ctx("mounting the RAM root at", r.display())?;
    undo.ram_root = Some(r.clone());
    if !undo.swaps_off.is_empty() {
        // Only for an interrupted run's successor; a failure here costs nothing else.
        let list: String = undo
            .swaps_off
            .iter()
            .map(|s| format!("{}\n", s.display()))
            .collect();
        if let Err(e) = fs::write(r.join(plan::SWAPS_OFF_FILE), list) {
            crate::warn!("cannot record the swap turned off in {}: {e}", r.display());
        }
    }
    Ok(r)
}

/// Copies a file into the RAM root with `mode`, logging progress for big files.
pub fn copy_in(src: &Path, dest: &Path, mode: u32) -> Result<u64> {
    let n = fs::copy(src, dest).ctx_path("copying into the RAM root", dest)?;
    fs::set_permissions(dest, fs::Permissions::from_mode(mode))
        .ctx_path("setting mode of", dest)?;
    Ok(n)
}

/// Copies a directory tree (regular files and directories) into the RAM root, files 0600.
pub fn copy_tree(src: &Path, dest: &Path) -> Result<u64> {
    let mut total = 0;
    fs::create_dir_all(dest).ctx_path("creating", dest)?;
    for e in fs::read_dir(src).ctx_path("reading", src)? {
        let e = e.ctx_path("reading", src)?;
        let ft = e.file_type().ctx_path("reading", &e.path())?;
        let to = dest.join(e.file_name());
        if ft.is_dir() {
            total += copy_tree(&e.path(), &to)?;
        } else if ft.is_file() {
            total += copy_in(&e.path(), &to, 0o600)?;
        }
    }
    Ok(total)
}

/// Writes the plan (0600).
pub fn write_plan(ram_root: &Path, p: &Stage2Plan) -> Result<()> {
    crate::files::write_private(&ram_root.join(plan::PLAN_FILE), &p.to_json())
}

/// How to make the running init re-execute its binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reexec {
    /// `systemctl daemon-reexec`.
    Systemd,
    /// `telinit u`, with the path of a telinit that is not the init binary itself.
    Telinit(PathBuf),
}

/// Chooses the re-exec command for an init `kind` (from the probe). sysvinit's `telinit` may
/// be a link to init itself — once init is shadowed, that would run takeover — so a copy is
/// made in the RAM root in that case.
pub fn reexec_for(kind: &str, init_exe: &Path, ram_root: &Path) -> Result<Reexec> {
    match kind {
        "systemd" => Ok(Reexec::Systemd),
        "sysvinit" => {
            let telinit = ["/sbin/telinit", "/usr/sbin/telinit", "/bin/telinit", "/usr/bin/telinit"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or_else(|| {
                    Error::new("handing over PID 1", "telinit", "not found")
                        .hint("install sysvinit-utils (telinit), or migrate with --write-only from another machine")
                })?;
            let real = fs::canonicalize(&telinit).ctx_path("resolving", &telinit)?;
            let init_real = fs::canonicalize(init_exe).unwrap_or_else(|_| init_exe.to_path_buf());
            if real == init_real {
                let copy = ram_root.join("telinit");
                copy_in(&real, &copy, 0o700)?;
                Ok(Reexec::Telinit(copy))
            } else {
                Ok(Reexec::Telinit(telinit))
            }
        }
        other => Err(Error::new(
            "handing over PID 1",
            init_exe.display(),
            format!("init system '{other}' cannot be made to re-execute"),
        )
        .hint("takeover supports systemd and sysvinit; use --write-only to prepare the disk elsewhere")),
    }
}

/// Bind-mounts the RAM root's takeover over the init binary and makes init re-execute.
pub fn hand_over(undo: &mut Undo, ram_root: &Path, init_exe: &Path, how: &Reexec) -> Result<()> {
    let text = init_exe.to_string_lossy();
    if text.ends_with(" (deleted)") {
        return Err(Error::new(
            "handing over PID 1",
            text,
            "the running init binary was replaced since boot",
        )
        .hint("reboot once (so init runs the installed binary), then run takeover again"));
    }
    let ours = ram_root.join(plan::BINARY);
    sm::mount(Some(&ours), init_exe, None, sm::MS_BIND, None)
        .ctx("bind-mounting takeover over", init_exe.display())?;
    undo.bind = Some(init_exe.to_path_buf());
    crate::fault::stage1_point("after-bind")?;
    // From here on a re-exec of init is ours: stage 2 runs only with this mark (see
    // plan::HANDOVER_MARK); the undo removes it with the RAM root.
    crate::files::write_private(&ram_root.join(plan::HANDOVER_MARK), b"")?;
    let (prog, args): (PathBuf, Vec<&str>) = match how {
        Reexec::Systemd => (PathBuf::from("systemctl"), vec!["daemon-reexec"]),
        Reexec::Telinit(p) => (p.clone(), vec!["u"]),
    };
    // Fault "reexec": the re-exec command itself fails (exits 1).
    let prog = if crate::fault::stage1_named("reexec") {
        "false".into()
    } else {
        prog
    };
    crate::info!(
        "asking init to re-execute: {} {}",
        prog.display(),
        args.join(" ")
    );
    let out = Command::new(&prog)
        .args(&args)
        .output()
        .ctx("running", prog.display())?;
    if !out.status.success() {
        return Err(Error::new(
            "handing over PID 1",
            prog.display(),
            format!(
                "exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_inits_are_refused_with_a_way_out() {
        let e =
            reexec_for("openrc", Path::new("/sbin/openrc-init"), Path::new("/tmp")).unwrap_err();
        assert!(e.to_string().contains("--write-only"), "{e}");
        assert_eq!(
            reexec_for(
                "systemd",
                Path::new("/lib/systemd/systemd"),
                Path::new("/tmp")
            )
            .unwrap(),
            Reexec::Systemd
        );
    }

    #[test]
    fn deleted_init_is_refused_before_anything_is_mounted() {
        let mut u = Undo::default();
        let e = hand_over(
            &mut u,
            Path::new("/nonexistent"),
            Path::new("/sbin/init (deleted)"),
            &Reexec::Systemd,
        )
        .unwrap_err();
        assert!(e.to_string().contains("reboot once"), "{e}");
        assert!(u.bind.is_none());
    }
}
