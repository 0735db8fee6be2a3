#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    // As PID 1 this binary is stage 2 init (stage 1 bind-mounted it over the old init, which
    // re-executed itself). Arguments are those of the old init and are ignored. Without a
    // stage 2 plan (e.g. as a container's entry point) it is an ordinary command.
    if std::process::id() == 1 && takeover::stage2::plan::plan_present() {
        if !takeover::stage2::plan::handover_requested() {
            // Leftovers of an interrupted stage 1 and an unrelated re-exec of init: not ours.
            takeover::stage2::init::hand_back();
        }
        takeover::stage2::init::run();
    }
    std::panic::set_hook(Box::new(|info| {
        // Built with panic = "abort": say what happened before the process ends.
        takeover::error!("internal error (please report this): {info}");
    }));
    ExitCode::from(takeover::main_with_args(std::env::args_os().skip(1)))
}
