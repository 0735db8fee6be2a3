//! The balenaOS image: formats (gzip, raw, zip), partition tables, filesystem labels,
//! verification before anything destructive, version resolution.
#![forbid(unsafe_code)]
