//! Stage 2 init: takeover as PID 1.
//!
//! Reached when the old init re-executes its own binary, over which stage 1 bind-mounted this
//! one. PID 1 must never exit (the kernel panics) and must never hang: every path ends in a
//! reboot, bounded by the plan's deadline, and a panic reboots too.
//!
//! Steps: block signals, close inherited descriptors, log to the console, read the plan, make
//! mounts private, mount proc/sys/dev in the RAM root, pivot_root into it (old root at
//! `/mnt/old_root`), start the worker (`/takeover --stage2`), reap children and feed the
//! watchdog until the worker ends, then sync and reboot.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Context, Error, Result};
use crate::stage2_plan::{self as plan, Stage2Plan};
use crate::sys::{mount as sm, power, process};

/// PID 1 entry point.
pub fn run() -> ! {
    std::panic::set_hook(Box::new(|info| {
        crate::error!("stage 2 init: internal error: {info}; rebooting");
        reboot_now();
    }));
    let _ = process::block_all_signals();
    process::close_fds_from(3);
    console_log();
    set_panic_reboot(Path::new("/proc/sys/kernel/panic"));
    crate::info!(
        "takeover {} stage 2: running as PID 1",
        env!("CARGO_PKG_VERSION")
    );
    let plan = match enter_ram_root() {
        Ok(p) => p,
        Err(e) => {
            crate::error!("{e}");
            crate::error!("nothing was changed on the disk; rebooting into the old OS");
            after_pivot_failure();
            reboot_now();
        }
    };
    supervise(&plan)
}

/// PID 1 runs this binary, a plan is in the RAM root, but stage 1 never asked for the hand-over:
/// it was interrupted after the bind mount over init, and init re-executed for another reason
/// (a package upgrade's `systemctl daemon-reexec`). Remove the bind mount and execute the real
/// init again with the same arguments and environment and every descriptor left open (systemd
/// passes its serialized state in one). Nothing else is touched; the next takeover run removes
/// the RAM root. If even that fails, rebooting is the only way back to a working system.
pub fn hand_back() -> ! {
    console_log();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let exe = std::fs::read_link("/proc/self/exe")
        .ok()
        .filter(|p| !p.to_string_lossy().ends_with(" (deleted)"))
        .or_else(|| args.first().map(std::path::PathBuf::from))
        .unwrap_or_else(|| "/sbin/init".into());
    crate::warn!(
        "takeover: a stage 2 plan is in {} but stage 1 never handed over (interrupted run); giving PID 1 back to {}",
        plan::RAM_ROOT,
        exe.display()
    );
    if let Err(e) = sm::umount2(&exe, libc::MNT_DETACH) {
        crate::error!("removing the bind mount over {}: {e}", exe.display());
    }
    let mut cmd = Command::new(&exe);
    if let Some((first, rest)) = args.split_first() {
        cmd.arg0(first).args(rest);
    }
    // Only returns on failure.
    let e = cmd.exec();
    crate::error!("executing {} again: {e}; rebooting", exe.display());
    reboot_now()
}

/// Seconds the kernel waits after a panic before it reboots, set by stage 2.
const PANIC_REBOOT_SECS: u32 = 10;

/// Makes a kernel panic reboot the machine after [`PANIC_REBOOT_SECS`] (`sysctl`
/// `kernel.panic`; 0, the default of many kernels, waits forever). An end of PID 1 that
/// bypasses its panic hook (an abort, a signal the kernel delivers anyway) is such a panic
/// ("Attempted to kill init!"). A value that already reboots sooner is kept.
fn set_panic_reboot(sysctl: &Path) {
    let now: Option<i64> = std::fs::read_to_string(sysctl)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    // Negative: reboot at once.
    if now.is_some_and(|n| n != 0 && n <= i64::from(PANIC_REBOOT_SECS)) {
        return;
    }
    match std::fs::write(sysctl, format!("{PANIC_REBOOT_SECS}\n")) {
        Ok(()) => crate::info!(
            "kernel.panic set to {PANIC_REBOOT_SECS} s (was {}): a kernel panic reboots",
            now.map_or("unknown".to_string(), |n| n.to_string())
        ),
        Err(e) => crate::warn!(
            "setting {} to {PANIC_REBOOT_SECS}: {e}; a kernel panic may not reboot",
            sysctl.display()
        ),
    }
}

/// Logs to `/dev/console` (the old root's, then ours after the pivot: the same device).
fn console_log() {
    if let Ok(f) = OpenOptions::new().write(true).open("/dev/console") {
        crate::log::set_console(Box::new(f));
    }
}

fn enter_ram_root() -> Result<Stage2Plan> {
    let ram = Path::new(plan::RAM_ROOT);
    let plan = Stage2Plan::load(&ram.join(plan::PLAN_FILE))?;
    crate::log::set_level(plan.log_level);
    if let Some(pid) = plan.stage1_pid {
        wait_for_stage1(pid, Duration::from_secs(30));
    }
    let step = "preparing the RAM root";
    sm::make_rprivate().ctx(step, "/")?;
    let m = |src: &str, dir: &str, fs: &str, flags: libc::c_ulong| -> Result<()> {
        let target = ram.join(dir);
        std::fs::create_dir_all(&target).ctx_path(step, &target)?;
        sm::mount(Some(Path::new(src)), &target, Some(fs), flags, None).ctx(step, target.display())
    };
    m(
        "proc",
        "proc",
        "proc",
        sm::MS_NOSUID | sm::MS_NODEV | sm::MS_NOEXEC,
    )?;
    m(
        "sysfs",
        "sys",
        "sysfs",
        sm::MS_NOSUID | sm::MS_NODEV | sm::MS_NOEXEC,
    )?;
    if m("devtmpfs", "dev", "devtmpfs", sm::MS_NOSUID).is_err() {
        // No devtmpfs: bind the old /dev (its nodes stay usable after the pivot).
        let target = ram.join("dev");
        sm::mount(
            Some(Path::new("/dev")),
            &target,
            None,
            sm::MS_BIND | sm::MS_REC,
            None,
        )
        .ctx(step, target.display())?;
    }
    if Path::new("/sys/firmware/efi/efivars").exists() {
        let _ = m(
            "efivarfs",
            "sys/firmware/efi/efivars",
            "efivarfs",
            sm::MS_NOSUID | sm::MS_NODEV | sm::MS_NOEXEC,
        );
    }
    let old = ram.join(plan::OLD_ROOT);
    std::fs::create_dir_all(&old).ctx_path(step, &old)?;
    // pivot_root needs the new root to be a mount point: stage 1 mounted a tmpfs there.
    std::env::set_current_dir(ram).ctx_path(step, ram)?;
    sm::pivot_root(Path::new("."), Path::new(plan::OLD_ROOT))
        .ctx("pivot_root into", ram.display())?;
    // pivot_root does not guarantee that the working directory is the new root.
    std::env::set_current_dir("/").ctx(step, "/")?;
    if let Ok(f) = OpenOptions::new()
        .create(true)
        .append(true)
        .open("/takeover.log")
    {
        crate::log::set_file(f);
    }
    plan.fault_point("after-pivot")?;
    // Descriptors 0-2 inherited from the old init point into the old /dev: move them.
    let stdio = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
        .or_else(|_| OpenOptions::new().read(true).write(true).open("/dev/null"));
    match stdio {
        Ok(f) => {
            if let Err(e) = process::redirect_stdio(&f) {
                crate::warn!("cannot move descriptors 0-2 off the old root: {e}");
            }
        }
        Err(e) => crate::warn!("cannot open /dev/console or /dev/null in the RAM root: {e}"),
    }
    console_log();
    crate::info!("in the RAM root; old root at /{}", plan::OLD_ROOT);
    Ok(plan)
}

/// A failure after the pivot: the old root is still whole. Tell the API and save the log on
/// `--log-to` (as after a worker's death), then leave the log in the old root's `/var/log` (as
/// the worker does for a failure before the flash). Before the pivot there is no log file and
/// no plan at `/`, so nothing is done.
fn after_pivot_failure() {
    let plan_path = Path::new("/").join(plan::PLAN_FILE);
    if !Path::new("/takeover.log").is_file() {
        return;
    }
    if let Ok(p) = Stage2Plan::load(&plan_path) {
        if after_death_needed(&p) {
            after_worker_died(&p, &mut Watchdog::open(Path::new(WATCHDOG)));
        }
        crate::stage2::worker::save_log_in_old_root(&p, "failed");
    }
}

/// Waits (at most `limit`) until stage 1's process `pid` has exited (or is a zombie), so that
/// it finishes its report and log before the pivot changes its root.
fn wait_for_stage1(pid: u32, limit: Duration) {
    let until = Instant::now() + limit;
    let stat = format!("/proc/{pid}/stat");
    loop {
        let alive = match std::fs::read_to_string(&stat) {
            Ok(s) => crate::stage2::kill::parse_stat(&s)
                .is_some_and(|p| p.state != 'Z' && p.state != 'X'),
            Err(_) => false,
        };
        if !alive {
            return;
        }
        if Instant::now() > until {
            crate::warn!(
                "stage 1 (pid {pid}) is still running after {} s; going on",
                limit.as_secs()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the worker and waits for it; never returns.
fn supervise(plan: &Stage2Plan) -> ! {
    let deadline = Instant::now() + Duration::from_secs(plan.deadline_secs.max(60));
    let mut watchdog = Watchdog::open(Path::new(WATCHDOG));
    if let Err(e) = plan.fault_point("supervise") {
        crate::error!("{e}; rebooting");
        reboot_now();
    }
    let pid = match spawn_stage2("--stage2") {
        Ok(pid) => pid,
        Err(e) => {
            crate::error!("{e}");
            after_worker_died(plan, &mut watchdog);
            reboot_now();
        }
    };
    match wait_child(pid, deadline, &mut watchdog) {
        Some(0) => crate::info!("stage 2 finished; rebooting"),
        Some(code) => {
            crate::error!("stage 2 worker ended with status {code}; rebooting");
            // 128 + signal: killed (a panic aborts), so it never reached its end.
            if code >= 128 {
                after_worker_died(plan, &mut watchdog);
            }
        }
        None => {
            crate::error!(
                "stage 2 did not finish within {} s; rebooting",
                plan.deadline_secs
            );
            let _ = process::kill(pid, process::SIGKILL);
            after_worker_died(plan, &mut watchdog);
        }
    }
    reboot_now()
}

/// How long the report of a dead worker may take (the API calls are bounded well below).
const AFTER_DEATH_LIMIT: Duration = Duration::from_secs(240);

/// The worker died without reaching its end, which tells the API (`--report-hup-progress`)
/// and saves the log on `--log-to`: a second worker, `--stage2-failed`, does only that, under
/// the same supervision (watchdog fed, bounded time).
fn after_worker_died(plan: &Stage2Plan, watchdog: &mut Watchdog) {
    if !after_death_needed(plan) {
        return;
    }
    match spawn_stage2("--stage2-failed") {
        Ok(pid) => {
            if wait_child(pid, Instant::now() + AFTER_DEATH_LIMIT, watchdog).is_none() {
                crate::error!(
                    "reporting the failure took more than {} s; rebooting",
                    AFTER_DEATH_LIMIT.as_secs()
                );
                let _ = process::kill(pid, process::SIGKILL);
            }
        }
        Err(e) => crate::error!("{e}; the failure was not reported"),
    }
}

/// Is there anything for `--stage2-failed` to do?
fn after_death_needed(plan: &Stage2Plan) -> bool {
    plan.report_hup_progress || plan.log_to.is_some()
}

/// Starts this binary from the RAM root with `arg`, its output on the console.
fn spawn_stage2(arg: &str) -> Result<i32> {
    let console = || {
        File::options()
            .write(true)
            .open("/dev/console")
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    };
    let exe = format!("/{}", plan::BINARY);
    let child = Command::new(&exe)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(console())
        .stderr(console())
        .spawn()
        .map_err(|e| Error::io("starting the stage 2 worker", &exe, e))?;
    Ok(child.id() as i32)
}

/// Feeds the watchdog and reaps every child (orphans of the old system are ours now) until
/// `pid` exits (its exit code) or `until` passes (`None`).
fn wait_child(pid: i32, until: Instant, watchdog: &mut Watchdog) -> Option<i32> {
    loop {
        watchdog.feed();
        while let Ok(process::Reaped::Child(p, status)) = process::try_wait(-1) {
            if p == pid {
                return Some(process::exit_code(status));
            }
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

const WATCHDOG: &str = "/dev/watchdog";

/// The hardware watchdog, if the machine has one. Once open it must be fed: if PID 1 ever
/// stopped, the watchdog would reset the machine.
///
/// A watchdog daemon of the old system may hold the device (only one opener is allowed). The
/// worker stops that daemon with every other process, and a daemon that dies without the
/// "magic close" leaves the watchdog running with nobody feeding it: the machine would reset
/// in the middle of the flash (15 s on a Raspberry Pi). So while the device is busy, PID 1
/// tries again on every round of its loop (every 500 ms) and feeds it from then on.
enum Watchdog {
    Feeding(File),
    Busy(std::path::PathBuf),
    Absent,
}

type Opener = fn(&Path) -> std::io::Result<File>;

fn open_for_writing(p: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).open(p)
}

fn is_busy(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY)
}

impl Watchdog {
    fn open(p: &Path) -> Watchdog {
        Watchdog::open_with(p, open_for_writing)
    }

    fn open_with(p: &Path, open: Opener) -> Watchdog {
        if !p.exists() {
            return Watchdog::Absent;
        }
        match open(p) {
            Ok(f) => {
                crate::info!("feeding the hardware watchdog {}", p.display());
                Watchdog::Feeding(f)
            }
            Err(e) if is_busy(&e) => {
                crate::info!(
                    "{} is held by another process; taking it over once the old system is stopped",
                    p.display()
                );
                Watchdog::Busy(p.to_path_buf())
            }
            Err(e) => {
                crate::warn!("cannot open {}: {e}", p.display());
                Watchdog::Absent
            }
        }
    }

    fn feed(&mut self) {
        self.feed_with(open_for_writing)
    }

    fn feed_with(&mut self, open: Opener) {
        match self {
            Watchdog::Feeding(f) => {
                let _ = f.write_all(b"\0");
            }
            Watchdog::Busy(p) => match open(p) {
                Ok(mut f) => {
                    crate::info!(
                        "feeding the hardware watchdog {} (released by the old system)",
                        p.display()
                    );
                    let _ = f.write_all(b"\0");
                    *self = Watchdog::Feeding(f);
                }
                Err(e) if is_busy(&e) => {}
                Err(e) => {
                    crate::warn!("cannot open {}: {e}", p.display());
                    *self = Watchdog::Absent;
                }
            },
            Watchdog::Absent => {}
        }
    }
}

/// Syncs and reboots; if the kernel refuses, retries forever (PID 1 must not exit).
pub fn reboot_now() -> ! {
    crate::log::close_file();
    loop {
        let e = power::reboot();
        crate::error!("reboot failed: {e}; retrying");
        std::thread::sleep(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(_: &Path) -> std::io::Result<File> {
        Err(std::io::Error::from_raw_os_error(libc::EBUSY))
    }

    fn denied(_: &Path) -> std::io::Result<File> {
        Err(std::io::Error::from_raw_os_error(libc::EACCES))
    }

    #[test]
    fn kernel_panic_is_set_to_reboot_unless_it_already_does_sooner() {
        let dir = crate::testutil::temp_dir("panic", "test");
        let p = dir.join("panic");
        for (before, after) in [
            ("0\n", "10\n"),
            ("-1\n", "-1\n"),
            ("60\n", "10\n"),
            ("3\n", "3\n"),
        ] {
            std::fs::write(&p, before).unwrap();
            set_panic_reboot(&p);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), after, "was {before}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_busy_watchdog_is_taken_over_once_released_and_fed_from_then_on() {
        let dir = std::env::temp_dir().join(format!("takeover-wd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dev = dir.join("watchdog");
        std::fs::write(&dev, b"").unwrap();

        // Absent device: nothing to feed, never opened.
        let mut w = Watchdog::open_with(&dir.join("none"), open_for_writing);
        assert!(matches!(w, Watchdog::Absent));
        w.feed_with(open_for_writing);
        assert!(matches!(w, Watchdog::Absent));

        // Held by a daemon: retried on every feed while busy, then fed.
        let mut w = Watchdog::open_with(&dev, busy);
        assert!(matches!(w, Watchdog::Busy(_)));
        w.feed_with(busy);
        w.feed_with(busy);
        assert!(matches!(w, Watchdog::Busy(_)));
        assert_eq!(std::fs::read(&dev).unwrap(), b"");
        w.feed_with(open_for_writing);
        assert!(matches!(w, Watchdog::Feeding(_)));
        w.feed_with(busy); // the opener is not used any more
        w.feed_with(busy);
        assert_eq!(std::fs::read(&dev).unwrap(), b"\0\0\0");

        // Another error: given up (logged), not retried forever.
        let mut w = Watchdog::open_with(&dev, busy);
        w.feed_with(denied);
        assert!(matches!(w, Watchdog::Absent));
        let mut w = Watchdog::open_with(&dev, denied);
        assert!(matches!(w, Watchdog::Absent));
        w.feed_with(open_for_writing);
        assert!(matches!(w, Watchdog::Absent));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
