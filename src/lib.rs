//! takeover: migrate a running Linux device to balenaOS in place.
//!
//! The tree follows the flow of a migration:
//!
//! | step | module |
//! |---|---|
//! | command line, errors, log | [`cli`], [`error`], [`log`] |
//! | stage 1: probe the device, OS, disks | [`probe`] |
//! | stage 1: read config.json | [`config`] |
//! | stage 1: get the image and prove it good | [`api`], [`image`] |
//! | stage 1: networks, hostname, backup | [`net`], [`backup`] |
//! | stage 1: checks, plan, report, RAM root, hand-over of PID 1 | [`stage1`], [`report`] |
//! | stage 2: PID 1 in RAM, stop, unmount, flash, configure, reboot | [`stage2`], [`flash`], [`fat`] |
//! | byte formats: bytes to typed values and back, no file system access (gzip, zip, CRC-32, SHA-256, XXH64, MBR/GPT, filesystem labels, ext4, tar, ELF) | [`formats`] |
//! | raw system calls (the one module allowed to call libc directly) | [`sys`] |
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
pub mod report;
pub mod stage1;
pub mod stage2;
pub mod stage2_plan;
#[allow(unsafe_code)]
pub mod sys;
