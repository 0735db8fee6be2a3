//! Stopping every process of the old system: SIGTERM, a bounded wait, SIGKILL, a bounded wait.
//! Never PID 1, never ourselves, never kernel threads. The process list is read through a
//! [`Root`] so the selection is testable on fixture trees.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use crate::probe::Root;
use crate::sys::process;

/// `PF_KTHREAD` from <linux/sched.h>: the task is a kernel thread.
const PF_KTHREAD: u64 = 0x0020_0000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub kernel: bool,
}

/// Parses `/proc/<pid>/stat`. The command name is in parentheses and may itself contain spaces
/// and parentheses, so the fields are taken after the last ')'.
pub fn parse_stat(text: &str) -> Option<Proc> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let state = rest.first()?.chars().next()?;
    let ppid = rest.get(1)?.parse().ok()?;
    let flags: u64 = rest.get(6)?.parse().ok()?;
    // kthreadd (pid 2) and its children are kernel threads even on kernels without the flag.
    let kernel = flags & PF_KTHREAD != 0 || pid == 2 || ppid == 2;
    Some(Proc {
        pid,
        comm,
        state,
        ppid,
        kernel,
    })
}

/// Every process under `root`/proc.
pub fn list(root: &Root) -> Vec<Proc> {
    root.list("proc")
        .into_iter()
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|n| root.read_string(format!("proc/{n}/stat")).ok())
        .filter_map(|s| parse_stat(&s))
        .collect()
}

/// The processes to stop: not PID 1, not `me`, not kernel threads, not already zombies.
pub fn victims(procs: &[Proc], me: i32) -> Vec<i32> {
    procs
        .iter()
        .filter(|p| p.pid != 1 && p.pid != me && !p.kernel && p.state != 'Z' && p.state != 'X')
        .map(|p| p.pid)
        .collect()
}

#[derive(Debug, Default, Clone)]
pub struct StopReport {
    pub terminated: usize,
    pub killed: usize,
    /// Still alive after SIGKILL (for example in uninterruptible sleep).
    pub survivors: Vec<Proc>,
}

/// Stops every process: SIGTERM, wait up to `grace`, SIGKILL, wait up to `grace` again.
pub fn stop_all(root: &Root, grace: Duration) -> StopReport {
    let me = std::process::id() as i32;
    let mut report = StopReport::default();
    for (sig, name) in [(process::SIGTERM, "SIGTERM"), (process::SIGKILL, "SIGKILL")] {
        let targets = victims(&list(root), me);
        if targets.is_empty() {
            break;
        }
        crate::info!("sending {name} to {} processes", targets.len());
        for &pid in &targets {
            if let Err(e) = process::kill(pid, sig) {
                crate::debug!("{name} to {pid}: {e}");
            }
        }
        let start = Instant::now();
        while start.elapsed() < grace {
            // Our own children (if any) are reaped here; the rest by PID 1.
            process::reap_all();
            if victims(&list(root), me).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let left = victims(&list(root), me).len();
        let gone = targets.len().saturating_sub(left);
        if sig == process::SIGTERM {
            report.terminated = gone;
        } else {
            report.killed = gone;
        }
    }
    let me_list = list(root);
    let left = victims(&me_list, me);
    report.survivors = me_list
        .into_iter()
        .filter(|p| left.contains(&p.pid))
        .collect();
    for p in &report.survivors {
        crate::warn!(
            "process {} ({}) is still running in state {}",
            p.pid,
            p.comm,
            p.state
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let p = parse_stat("1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0").unwrap();
        assert_eq!(p.pid, 1234);
        assert_eq!(p.comm, "my (odd) name");
        assert_eq!(p.state, 'S');
        assert_eq!(p.ppid, 1);
        assert!(!p.kernel);
        let k = parse_stat("57 (kworker/0:1-events) I 2 0 0 0 -1 69238880 0 0 0 0").unwrap();
        assert!(k.kernel);
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("12 (x) S").is_none());
    }

    #[test]
    fn victims_exclude_init_self_kernel_and_zombies() {
        let mk = |pid, state, kernel| Proc {
            pid,
            comm: "x".into(),
            state,
            ppid: 1,
            kernel,
        };
        let procs = vec![
            mk(1, 'S', false),
            mk(2, 'S', true),
            mk(10, 'S', false),
            mk(11, 'Z', false),
            mk(99, 'R', false),
        ];
        assert_eq!(victims(&procs, 99), vec![10]);
    }

    #[test]
    fn list_reads_this_system() {
        // Read-only: our own process must be listed and is never a victim.
        let procs = list(&Root::system());
        let me = std::process::id() as i32;
        assert!(procs.iter().any(|p| p.pid == me));
        assert!(!victims(&procs, me).contains(&me));
    }
}
