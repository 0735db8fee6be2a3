//! takeover: migrate a running Linux device to balenaOS in place.
//!
//! The tree follows the flow of a migration. `main.rs` parses the options and hands each mode
//! to its own entry point: `stage1::migrate::run` (`--dry-run`, `--pretend`, a migration),
//! `stage1::download::download_only`, `stage1::write_only::run`, `stage2::worker::run` (the
//! worker stage 2's PID 1 starts), and `stage2::init::run` when it is PID 1 itself. Each entry
//! point is a short list of named steps returning typed values.
//!
//! | step | module |
//! |---|---|
//! | command line, errors, log | [`cli`], [`error`], [`log`] |
//! | progress of the long steps (verify, write, read-back): MiB, MB/s, time left | [`progress`] |
//! | stage 1: probe the device, OS, disks | [`probe`] |
//! | stage 1: read config.json | [`config`] |
//! | stage 1: get the image and prove it good | [`api`], [`image`] |
//! | stage 1: networks, hostname, backup — staged as one payload (`stage1::payload`) | [`net`], [`backup`] |
//! | stage 1: checks, summary, report, RAM root, hand-over of PID 1 | [`stage1`], [`report`] |
//! | the contract between the stages: the stage 2 plan and the RAM root's layout | [`stage2_plan`] |
//! | stage 2: PID 1 in RAM, stop, unmount, flash, reboot | [`stage2`], [`flash`] |
//! | configuring the new disk (stage 2 and `--write-only`) | [`configure`], [`fat`] |
//! | test-only fault points of both stages | [`fault`] |
//! | byte formats: bytes to typed values and back, no file system access (gzip, zip, CRC-32, SHA-256, XXH64, MBR/GPT, filesystem labels, ext4, tar, ELF) | [`formats`] |
//! | raw system calls (the one module allowed to call libc directly) | [`sys`] |
//!
//! Layers, checked by `tools/structure-check` (`make structure-check`): only `main.rs` names
//! `stage1` or `stage2`, and neither stage names the other (they share [`stage2_plan`],
//! [`configure`] and [`fault`]); [`formats`] and [`sys`] sit at the bottom; no two modules
//! import each other, directly or around a cycle.
#![deny(unsafe_code)]

pub mod api;
pub mod backup;
pub mod cli;
pub mod config;
pub mod configure;
pub mod error;
pub mod fat;
pub mod fault;
pub mod files;
pub mod flash;
pub mod formats;
pub mod image;
#[macro_use]
pub mod log;
pub mod net;
pub mod probe;
pub mod progress;
pub mod report;
pub mod stage1;
pub mod stage2;
pub mod stage2_plan;
#[allow(unsafe_code)]
pub mod sys;
#[cfg(test)]
mod testutil;
