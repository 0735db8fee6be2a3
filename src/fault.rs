//! Fault injection, test-only: cargo feature `fault-injection`, built apart from the release
//! binary by `make vm-fault-binary`. Stage 1 reads `TAKEOVER_FAULT=<spec>` and puts it into the plan for
//! stage 2. `<spec>` is a fault point name (that step fails with an error, which the normal
//! failure path handles), `hang:<point>` (the process sleeps there forever: the stage 2
//! deadline must end it) or `panic:<point>` (the process panics there). Without the feature
//! every check is a constant `false`/`Ok(())`.
//!
//! Stage 1 points, in order: after-image, after-network, after-backup, after-checks,
//! after-swapoff, after-ram-root, after-plan, after-bind, reexec (the re-exec command fails).
//! Stage 2 points: after-pivot (init), supervise (init, with the watchdog open, before the
//! worker starts), after-kill, after-unmount, before-flash, flash (first write attempt fails),
//! flash-always (both fail), readback (the first read-back of the image differs from what was
//! written, as a corrupted read would: the attempt fails, the retry succeeds), mid-flash (hang:/panic: only, at half the image), after-write,
//! after-flash (resin-boot configured), efi, data, log-to.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};

/// Acts on fault `spec` at fault point `at`.
pub fn point(spec: Option<&str>, at: &str) -> Result<()> {
    if !cfg!(feature = "fault-injection") {
        return Ok(());
    }
    let Some(spec) = spec else { return Ok(()) };
    if spec == at {
        return Err(Error::new("fault injection", at, "injected failure"));
    }
    if spec.strip_prefix("hang:") == Some(at) {
        crate::error!("fault injection: hanging at {at}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    if spec.strip_prefix("panic:") == Some(at) {
        // Deliberate: the panic path is what this fault tests (test builds only).
        panic!("fault injection: injected panic at {at}");
    }
    Ok(())
}

/// Is fault `spec` exactly `name` (a point whose failure the caller acts out itself)?
pub fn named(spec: Option<&str>, name: &str) -> bool {
    cfg!(feature = "fault-injection") && spec == Some(name)
}

/// The fault spec of this process, for code that has no plan at hand (the flash pipeline):
/// stage 2's worker sets its plan's. Set once; later calls are ignored.
static PROCESS_SPEC: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
/// Whether [`once`] has fired in this process.
static FIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes `spec` this process's fault spec (see [`once`]).
pub fn set_process_spec(spec: Option<String>) {
    let _ = PROCESS_SPEC.set(spec.filter(|_| cfg!(feature = "fault-injection")));
}

/// True the first time it is asked for `name` when this process's spec is `name`, false
/// after that and always without the feature: a fault that happens once (the retry succeeds).
pub fn once(name: &str) -> bool {
    let spec = PROCESS_SPEC.get().and_then(|s| s.as_deref());
    named(spec, name) && !FIRED.swap(true, std::sync::atomic::Ordering::SeqCst)
}

/// Stage 1's [`named`]: is `TAKEOVER_FAULT` exactly `name`?
pub fn stage1_named(name: &str) -> bool {
    named(spec_from_env().as_deref(), name)
}

/// A stage 1 fault point: `Ok` unless `TAKEOVER_FAULT` names `at` (see [`point`]).
pub fn stage1_point(at: &str) -> Result<()> {
    point(spec_from_env().as_deref(), at)
}

/// `TAKEOVER_FAULT`, read only in builds with the feature; stage 1 passes it on in the plan.
pub fn spec_from_env() -> Option<String> {
    std::env::var("TAKEOVER_FAULT")
        .ok()
        .filter(|_| cfg!(feature = "fault-injection"))
}

/// Stage 2's deadline: `default`, or `TAKEOVER_DEADLINE` seconds in builds with the feature
/// (so that a hang scenario ends in a minute, not an hour).
pub fn deadline_secs(default: u64) -> u64 {
    std::env::var("TAKEOVER_DEADLINE")
        .ok()
        .filter(|_| cfg!(feature = "fault-injection"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_points_fail_only_where_named_and_only_with_the_feature() {
        let on = cfg!(feature = "fault-injection");
        assert!(point(None, "after-kill").is_ok());
        assert!(point(Some("after-unmount"), "after-kill").is_ok());
        // hang:/panic: of another point do nothing here.
        assert!(point(Some("hang:mid-flash"), "after-kill").is_ok());
        assert!(point(Some("panic:mid-flash"), "after-kill").is_ok());
        let r = point(Some("after-kill"), "after-kill");
        assert_eq!(r.is_err(), on);
        if let Err(e) = r {
            assert!(e.to_string().contains("injected failure"), "{e}");
        }
        assert_eq!(named(Some("flash"), "flash"), on);
        assert!(!named(Some("flash"), "flash-always"));
        if !on {
            // Without the feature the environment is never read.
            assert_eq!(deadline_secs(3600), 3600);
        }
    }
}
