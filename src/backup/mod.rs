//! Backup of application data into `backup.tgz` (one top-level folder per balena volume).
#![forbid(unsafe_code)]
