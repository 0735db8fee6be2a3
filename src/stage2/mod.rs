//! Stage 2: takeover as PID 1 in a RAM root. Stops the old system, flashes, configures, reboots.
#![forbid(unsafe_code)]
