#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        // Built with panic = "abort": say what happened before the process ends.
        takeover::error!("internal error (please report this): {info}");
    }));
    ExitCode::from(takeover::main_with_args(std::env::args_os().skip(1)))
}
