//! Stage 2: takeover as PID 1 in a RAM root. Stops the old system, flashes, configures, reboots.
//!
//! - [`crate::stage2_plan`]: what stage 1 hands over (one versioned JSON file, 0600);
//! - [`init`]: PID 1 — pivot into the RAM root, run the worker, always reboot;
//! - [`worker`]: stop processes ([`kill`]), unmount ([`umount`]), flash ([`crate::flash`]),
//!   configure the new disk ([`crate::configure`]), the Jetson boot flash ([`jetson`]), the
//!   API calls ([`api_calls`]).
#![forbid(unsafe_code)]

pub mod api_calls;
pub mod efi;
pub mod init;
pub mod jetson;
pub mod kill;
pub mod umount;
pub mod worker;
