//! HTTP through a spawned `curl` or `wget`, and the balena API calls built on it.
#![forbid(unsafe_code)]
