//! Integration tests: run the built binary. One test binary for all (see Cargo.toml).
mod api;
mod bad_input;
mod cli;
mod dry_run;
mod figures;
mod operator;
mod payload;
mod secrets;
mod util;
mod write_only;
