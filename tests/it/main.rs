//! Integration tests: run the built binary. One test binary for all (see Cargo.toml).
mod cli;
mod util;
