//! HTTP through a spawned `curl` or `wget`, and the balena API calls built on it.
//!
//! - [`version`]: balenaOS versions and `-v` requests (pure).
//! - [`http`]: the HTTP client (spawns curl, GNU wget or busybox wget; secrets never on argv).
//! - [`balena`]: the balenaCloud API calls (ping, `/v6` queries, download, device PATCH).
#![forbid(unsafe_code)]

pub mod balena;
pub mod http;
pub mod version;
