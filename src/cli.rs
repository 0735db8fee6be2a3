//! The command line: parsing (lexopt) into [`Options`], then validation of values and
//! combinations. Both steps are pure: no file is opened and nothing is probed here.
//!
//! Usage errors exit with status 2 and name the option at fault.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::log::Level;

/// What this invocation does, derived from the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Migrate,
    Pretend,
    DryRun,
    DownloadOnly,
    WriteOnly,
    /// Internal: the stage 2 worker (`--stage2`).
    Stage2Worker,
}

impl Mode {
    /// The report's `mode` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Migrate | Mode::Stage2Worker => "migrate",
            Mode::Pretend => "pretend",
            Mode::DryRun => "dry-run",
            Mode::DownloadOnly => "download-only",
            Mode::WriteOnly => "write-only",
        }
    }
}

/// Every option of `takeover --help`, as given.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub work_dir: Option<PathBuf>,
    pub image: Option<PathBuf>,
    pub version: Option<String>,
    pub config: Option<PathBuf>,
    pub log_level: Level,
    pub log_file: Option<PathBuf>,
    pub backup_cfg: Option<PathBuf>,
    pub s2_log_level: Option<Level>,
    pub no_ack: bool,
    pub pretend: bool,
    pub stage2: bool,
    /// Internal: PID 1 runs the worker once more with this after the worker died without
    /// finishing (a signal, the deadline), to report the failure and save the log.
    pub stage2_failed: bool,
    pub tar_internal: bool,
    pub no_cleanup: bool,
    pub no_os_check: bool,
    pub no_dt_check: bool,
    pub no_api_check: bool,
    pub no_vpn_check: bool,
    pub no_efi_setup: bool,
    pub no_nwmgr_check: bool,
    pub no_keep_name: bool,
    pub download_only: bool,
    pub check_timeout: u64,
    pub log_to: Option<PathBuf>,
    pub flash_to: Option<PathBuf>,
    pub no_wifis: bool,
    pub wifis: Vec<String>,
    pub nwmgr_cfgs: Vec<PathBuf>,
    pub change_dt_to: Option<String>,
    pub fallback_log: bool,
    pub fallback_log_filename: String,
    pub fallback_log_dir: String,
    pub report_hup_progress: bool,
    pub dry_run: bool,
    pub report: Option<PathBuf>,
    pub sysroot: Option<PathBuf>,
    pub write_only: bool,
    pub image_sha256: Option<String>,
    pub help: bool,
    /// `-V`: print takeover's own version (`-v` is the balenaOS version, as operators know it).
    pub show_version: bool,
}

pub const DEFAULT_CHECK_TIMEOUT: u64 = 10;

impl Default for Options {
    fn default() -> Self {
        Options {
            work_dir: None,
            image: None,
            version: None,
            config: None,
            log_level: Level::Info,
            log_file: None,
            backup_cfg: None,
            s2_log_level: None,
            no_ack: false,
            pretend: false,
            stage2: false,
            stage2_failed: false,
            tar_internal: false,
            no_cleanup: false,
            no_os_check: false,
            no_dt_check: false,
            no_api_check: false,
            no_vpn_check: false,
            no_efi_setup: false,
            no_nwmgr_check: false,
            no_keep_name: false,
            download_only: false,
            check_timeout: DEFAULT_CHECK_TIMEOUT,
            log_to: None,
            flash_to: None,
            no_wifis: false,
            wifis: Vec::new(),
            nwmgr_cfgs: Vec::new(),
            change_dt_to: None,
            fallback_log: false,
            fallback_log_filename: "fallback.log".into(),
            fallback_log_dir: "fallback_log".into(),
            report_hup_progress: false,
            dry_run: false,
            report: None,
            sysroot: None,
            write_only: false,
            image_sha256: None,
            help: false,
            show_version: false,
        }
    }
}

impl Options {
    pub fn mode(&self) -> Mode {
        if self.stage2 || self.stage2_failed {
            Mode::Stage2Worker
        } else if self.dry_run {
            Mode::DryRun
        } else if self.write_only {
            Mode::WriteOnly
        } else if self.download_only {
            Mode::DownloadOnly
        } else if self.pretend {
            Mode::Pretend
        } else {
            Mode::Migrate
        }
    }

    /// Stage 2 log level: `--s2-log-level`, else `--log-level`.
    pub fn stage2_level(&self) -> Level {
        self.s2_log_level.unwrap_or(self.log_level)
    }

    /// The work directory (`-w`), default the current directory.
    pub fn work_dir(&self) -> PathBuf {
        self.work_dir.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    /// True when wifi networks of the running system are to be scanned.
    /// `--wifi` wins over `--no-wifis`, as in the reference tool.
    pub fn scan_wifis(&self) -> bool {
        !self.no_wifis || !self.wifis.is_empty()
    }
}

fn level_value(opt: &str, v: OsString) -> Result<Level> {
    let s = string_value(opt, v)?;
    Level::parse(&s).ok_or_else(|| {
        Error::usage(
            opt,
            format!("'{s}' is not a log level; use one of {}", Level::NAMES),
        )
    })
}

fn string_value(opt: &str, v: OsString) -> Result<String> {
    let s = v
        .into_string()
        .map_err(|v| Error::usage(opt, format!("value {v:?} is not valid UTF-8")))?;
    if s.is_empty() {
        return Err(Error::usage(opt, "value is empty"));
    }
    Ok(s)
}

fn path_value(opt: &str, v: OsString) -> Result<PathBuf> {
    if v.is_empty() {
        return Err(Error::usage(opt, "path is empty"));
    }
    Ok(PathBuf::from(v))
}

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Options>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::prelude::*;
    let mut o = Options::default();
    let mut p = lexopt::Parser::from_args(args);
    let lex = |e: lexopt::Error| -> Error {
        match &e {
            lexopt::Error::MissingValue { option: Some(opt) } => {
                Error::usage(opt, "needs a value".to_string())
            }
            lexopt::Error::UnexpectedValue { option, .. } => {
                Error::usage(option, "takes no value".to_string())
            }
            lexopt::Error::UnexpectedOption(opt) => Error::usage(opt, "unknown option".to_string()),
            lexopt::Error::UnexpectedArgument(a) => Error::usage(
                a.to_string_lossy(),
                "unexpected argument; every value belongs to an option".to_string(),
            ),
            _ => Error::usage("", e.to_string()),
        }
    };
    while let Some(arg) = p.next().map_err(lex)? {
        // Name of the option as the operator typed it, for messages.
        let name = match &arg {
            Short(c) => format!("-{c}"),
            Long(l) => format!("--{l}"),
            Value(_) => String::new(),
        };
        let n = name.as_str();
        match arg {
            Short('w') | Long("work-dir") => {
                o.work_dir = Some(path_value(n, p.value().map_err(lex)?)?)
            }
            Short('i') | Long("image") => o.image = Some(path_value(n, p.value().map_err(lex)?)?),
            Short('v') | Long("version") => {
                o.version = Some(string_value(n, p.value().map_err(lex)?)?)
            }
            Short('c') | Long("config") => o.config = Some(path_value(n, p.value().map_err(lex)?)?),
            Long("log-level") => o.log_level = level_value(n, p.value().map_err(lex)?)?,
            Long("log-file") => o.log_file = Some(path_value(n, p.value().map_err(lex)?)?),
            Long("backup-cfg") => o.backup_cfg = Some(path_value(n, p.value().map_err(lex)?)?),
            Long("s2-log-level") => o.s2_log_level = Some(level_value(n, p.value().map_err(lex)?)?),
            Long("no-ack") => o.no_ack = true,
            Long("pretend") => o.pretend = true,
            Long("stage2") => o.stage2 = true,
            Long("stage2-failed") => o.stage2_failed = true,
            Long("tar-internal") => o.tar_internal = true,
            Long("no-cleanup") => o.no_cleanup = true,
            Long("no-os-check") => o.no_os_check = true,
            Long("no-dt-check") => o.no_dt_check = true,
            Long("no-api-check") => o.no_api_check = true,
            Long("no-vpn-check") => o.no_vpn_check = true,
            Long("no-efi-setup") => o.no_efi_setup = true,
            Long("no-nwmgr-check") => o.no_nwmgr_check = true,
            Long("no-keep-name") => o.no_keep_name = true,
            Short('d') | Long("download-only") => o.download_only = true,
            Long("check-timeout") => {
                let s = string_value(n, p.value().map_err(lex)?)?;
                o.check_timeout = match s.parse::<u64>() {
                    Ok(t) if (1..=3600).contains(&t) => t,
                    _ => {
                        return Err(Error::usage(
                            n,
                            format!("'{s}' is not a number of seconds from 1 to 3600"),
                        ))
                    }
                };
            }
            Short('l') | Long("log-to") => o.log_to = Some(path_value(n, p.value().map_err(lex)?)?),
            Short('f') | Long("flash-to") => {
                o.flash_to = Some(path_value(n, p.value().map_err(lex)?)?)
            }
            Long("no-wifis") => o.no_wifis = true,
            Long("wifi") => o.wifis.push(string_value(n, p.value().map_err(lex)?)?),
            Long("nwmgr-cfg") => o.nwmgr_cfgs.push(path_value(n, p.value().map_err(lex)?)?),
            Long("change-dt-to") => {
                let s = string_value(n, p.value().map_err(lex)?)?;
                if !is_slug(&s) {
                    return Err(Error::usage(
                        n,
                        format!("'{s}' is not a device type slug (lowercase letters, digits and '-', e.g. generic-amd64)"),
                    ));
                }
                o.change_dt_to = Some(s);
            }
            Long("fallback-log") => o.fallback_log = true,
            Long("fallback-log-filename") => {
                o.fallback_log_filename = file_name_value(n, p.value().map_err(lex)?)?
            }
            Long("fallback-log-dir") => {
                o.fallback_log_dir = file_name_value(n, p.value().map_err(lex)?)?
            }
            Long("report-hup-progress") => o.report_hup_progress = true,
            Long("dry-run") => o.dry_run = true,
            Long("report") => o.report = Some(path_value(n, p.value().map_err(lex)?)?),
            Long("sysroot") => o.sysroot = Some(path_value(n, p.value().map_err(lex)?)?),
            Long("write-only") => o.write_only = true,
            Long("image-sha256") => {
                let s = string_value(n, p.value().map_err(lex)?)?.to_ascii_lowercase();
                if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Error::usage(
                        n,
                        "expects 64 hexadecimal digits (the output of sha256sum)",
                    ));
                }
                o.image_sha256 = Some(s);
            }
            Short('h') | Long("help") => o.help = true,
            Short('V') => o.show_version = true,
            other => return Err(lex(other.unexpected())),
        }
    }
    Ok(o)
}

/// A balena device-type slug: `[a-z0-9-]+`, starting with a letter or digit.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn file_name_value(opt: &str, v: OsString) -> Result<String> {
    let s = string_value(opt, v)?;
    if s.contains('/') || s == "." || s == ".." {
        return Err(Error::usage(
            opt,
            format!("'{s}' must be a plain name without '/'"),
        ));
    }
    Ok(s)
}

/// Checks combinations. Runs after [`parse`], before anything is probed.
pub fn validate(o: &Options) -> Result<()> {
    if o.help || o.show_version {
        return Ok(());
    }
    let modes: Vec<&str> = [
        (o.dry_run, "--dry-run"),
        (o.pretend, "--pretend"),
        (o.download_only, "--download-only"),
        (o.write_only, "--write-only"),
        (o.stage2, "--stage2"),
        (o.stage2_failed, "--stage2-failed"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| *n)
    .collect();
    if modes.len() > 1 {
        return Err(Error::usage(
            modes[1],
            format!("cannot be combined with {}", modes[0]),
        ));
    }
    if o.sysroot.is_some() && !o.dry_run {
        return Err(Error::usage(
            "--sysroot",
            "is a testing aid and only valid with --dry-run",
        ));
    }
    if o.image.is_some() && o.version.is_some() {
        return Err(Error::usage(
            "--version",
            "cannot be combined with --image: the image given is used as it is",
        ));
    }
    if o.write_only {
        for (missing, name) in [
            (o.image.is_none(), "--image"),
            (o.flash_to.is_none(), "--flash-to"),
            (o.config.is_none(), "--config"),
        ] {
            if missing {
                return Err(Error::usage(
                    "--write-only",
                    format!(
                        "needs {name} (write-only takes -i IMAGE -f DEVICE_OR_FILE -c CONFIG_JSON)"
                    ),
                ));
            }
        }
    }
    if o.download_only && o.config.is_none() && o.change_dt_to.is_none() {
        return Err(Error::usage(
            "--download-only",
            "needs -c CONFIG_JSON (or --change-dt-to SLUG) to know which device type to download",
        ));
    }
    if o.download_only && o.image.is_some() {
        return Err(Error::usage(
            "--download-only",
            "has nothing to download when --image is given",
        ));
    }
    if o.image_sha256.is_some() && o.image.is_none() && o.write_only {
        return Err(Error::usage("--image-sha256", "needs --image"));
    }
    if o.fallback_log && o.log_to.is_some() {
        return Err(Error::usage(
            "--fallback-log",
            "cannot be combined with --log-to: choose one place for the stage 2 log",
        ));
    }
    if let (Some(l), Some(f)) = (&o.log_to, &o.flash_to) {
        if l == f {
            return Err(Error::usage(
                "--log-to",
                "names the same device as --flash-to, which is overwritten",
            ));
        }
    }
    if o.write_only && (o.log_to.is_some() || o.pretend) {
        return Err(Error::usage(
            "--write-only",
            "does not take over this system: --log-to has no use",
        ));
    }
    // Last, so that a wrong combination is named first. Every mode reads config.json, except a download by device type alone and the internal
    // stage 2 invocations (they read what stage 1 prepared).
    if o.config.is_none() && !o.download_only && !o.stage2 && !o.stage2_failed {
        return Err(Error::usage(
            "--config",
            "is required: -c CONFIG_JSON, the fleet's config.json (dashboard: Add device > \
             Advanced > Download configuration file only)",
        ));
    }
    Ok(())
}

/// The text of `takeover --help`.
pub fn help_text() -> String {
    format!(
        "takeover {version} - migrate this device to balenaOS in place

WARNING: takeover erases the disk of the device it runs on and installs balenaOS.
Try --dry-run first (changes nothing), then --pretend (everything but the flash).

Usage: sudo ./takeover -c config.json [OPTIONS]

Image:
  -i, --image <IMAGE>            balenaOS image to flash (gzip, raw .img or the dashboard's .zip);
                                 default: download the image for config.json's device type
  -v, --version <VERSION>        balenaOS version to download: 'default' (newest), 5.1.20+rev1,
                                 ~5.1, ^5.1 [default: default]
      --image-sha256 <HEX>       refuse the image unless the file's SHA-256 is HEX
  -d, --download-only            download and verify the image, then stop (no root, no device checks)
  -w, --work-dir <DIRECTORY>     where the image, network files and backup are prepared [default: .];
                                 only root or you may be able to write it

Configuration:
  -c, --config <CONFIG_JSON>     config.json of the fleet (dashboard: Add device > Advanced >
                                 Download configuration file only)
      --change-dt-to <DT_SLUG>   switch the device to this device type slug (e.g. generic-amd64)
      --no-keep-name             do not carry this device's hostname over
      --backup-cfg <BACKUP-CONFIG>
                                 YAML file naming the data to keep as balena volumes

Network:
      --no-wifis                 do not migrate the wifi networks configured here
      --wifi <SSID>              migrate only this wifi network (repeatable; wins over --no-wifis)
      --nwmgr-cfg <NWMGR_FILE>   add this NetworkManager keyfile to balenaOS (repeatable)

Target and logs:
  -f, --flash-to <INSTALL_DEVICE>
                                 whole disk to install balenaOS on [default: the disk holding /]
  -l, --log-to <LOG_DEVICE>      partition (vfat, ext3, ext4) on another disk for the stage 2 log
      --log-level <LOG_LEVEL>    stage 1 log level: error, warn, info, debug, trace [default: info]
      --log-file <LOG_FILE>      also write the stage 1 log to this file
      --s2-log-level <S2_LOG_LEVEL>
                                 stage 2 log level [default: the --log-level value]
      --fallback-log             keep the log in RAM and store it on the new data partition
      --fallback-log-filename <NAME>
                                 file name of the fallback log [default: fallback.log]
      --fallback-log-dir <DIR>   folder of the fallback log on the data partition [default: fallback_log]
      --report <FILE>            write a JSON report of the run to FILE (also on failure)
      --report-hup-progress      report the result of the migration to the balena API (needs the
                                 uuid of a registered device in config.json)

Modes:
      --dry-run                  run every check and prepare every file stage 2 would write (into
                                 <work-dir>/takeover-dry-run/), print the plan; change nothing
      --pretend                  do everything except flashing, then reboot into this OS
      --write-only               write -i onto -f (a device or file) and configure it with -c as
                                 stage 2 would; no takeover of this system. The image is
                                 verified in full first; an existing non-empty file is never
                                 grown (an empty or new one is)
      --no-ack                   do not ask for confirmation
      --sysroot <DIR>            testing aid for --dry-run: read system state under DIR

Checks (each skips one check; use with care):
      --no-os-check              an unsupported OS is a warning
      --no-dt-check              do not check the device type against this hardware (an
                                 image for another CPU architecture is still refused)
      --no-api-check             do not check that the balena API answers
      --no-vpn-check             do not check that the balena VPN is reachable
      --no-nwmgr-check           go on without any network configuration to migrate
      --no-efi-setup             do not create an EFI boot entry
      --check-timeout <TIMEOUT>  most seconds one attempt of a network check may wait
                                 (API check and version lookups: 3 attempts; VPN: 1)
                                 [default: {timeout}]

Internal and debugging:
      --stage2                   internal: stage 2 worker invocation
      --stage2-failed            internal: stage 2 report of a worker that died
      --tar-internal             build the backup with the internal tar
      --no-cleanup               on a stage 1 failure, leave what was prepared in place
  -h, --help                     print this help
  -V                             print takeover's own version (-v is the balenaOS version)

Exit status: 0 success, 1 a check or step failed, 2 usage error.
",
        version = env!("CARGO_PKG_VERSION"),
        timeout = DEFAULT_CHECK_TIMEOUT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options> {
        let o = parse(args.iter().copied())?;
        validate(&o)?;
        Ok(o)
    }

    fn usage_err(args: &[&str]) -> Error {
        let e = p(args).expect_err("should fail");
        assert_eq!(e.exit_code(), 2, "{e}");
        e
    }

    #[test]
    fn a_missing_config_is_a_usage_error_in_every_mode_that_reads_one() {
        for args in [
            &[][..],
            &["--dry-run"][..],
            &["--pretend"][..],
            &["--no-ack", "-i", "img.gz"][..],
        ] {
            let e = usage_err(args);
            assert!(e.to_string().contains("--config"), "{args:?}: {e}");
        }
        assert!(usage_err(&["--write-only", "-i", "i", "-f", "f"])
            .to_string()
            .contains("needs --config"));
        // A download by device type alone, and the internal stage 2 invocations, need none.
        assert!(p(&["-d", "--change-dt-to", "raspberrypi4-64"]).is_ok());
        assert!(p(&["--stage2"]).is_ok());
        assert!(p(&["--stage2-failed"]).is_ok());
        assert!(p(&["-V"]).unwrap().show_version);
        assert!(p(&["-h"]).unwrap().help);
    }

    #[test]
    fn every_option_parses() {
        let o = p(&[
            "-w",
            "/w",
            "-i",
            "img.gz",
            "-c",
            "c.json",
            "--log-level",
            "DEBUG",
            "--log-file",
            "l.log",
            "--backup-cfg",
            "b.yml",
            "--s2-log-level",
            "trace",
            "--no-ack",
            "--tar-internal",
            "--no-cleanup",
            "--no-os-check",
            "--no-dt-check",
            "--no-api-check",
            "--no-vpn-check",
            "--no-efi-setup",
            "--no-nwmgr-check",
            "--no-keep-name",
            "--check-timeout",
            "5",
            "-l",
            "/dev/sdb1",
            "-f",
            "/dev/sda",
            "--no-wifis",
            "--wifi",
            "My Net",
            "--wifi",
            "b",
            "--nwmgr-cfg",
            "x.nmconnection",
            "--change-dt-to",
            "generic-amd64",
            "--report-hup-progress",
            "--report",
            "r.json",
            "--dry-run",
            "--sysroot",
            "/fx",
            "--image-sha256",
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        ])
        .unwrap();
        assert_eq!(o.work_dir, Some("/w".into()));
        assert_eq!(o.log_level, Level::Debug);
        assert_eq!(o.stage2_level(), Level::Trace);
        assert_eq!(o.wifis, vec!["My Net".to_string(), "b".to_string()]);
        assert!(o.scan_wifis(), "--wifi wins over --no-wifis");
        assert_eq!(o.check_timeout, 5);
        assert_eq!(o.mode(), Mode::DryRun);
        assert_eq!(o.image_sha256.as_deref().map(|s| &s[..4]), Some("e3b0"));
    }

    #[test]
    fn long_equals_and_short_forms() {
        let o = p(&["--config=c.json", "-vdefault", "-d"]).unwrap();
        assert_eq!(o.config, Some("c.json".into()));
        assert_eq!(o.version.as_deref(), Some("default"));
        assert_eq!(o.mode(), Mode::DownloadOnly);
    }

    #[test]
    fn fallback_defaults() {
        let o = p(&["-c", "c.json", "--fallback-log"]).unwrap();
        assert_eq!(o.fallback_log_filename, "fallback.log");
        assert_eq!(o.fallback_log_dir, "fallback_log");
        assert_eq!(o.mode(), Mode::Migrate);
    }

    #[test]
    fn unknown_and_bad_values_exit_2() {
        assert!(usage_err(&["--frobnicate"])
            .to_string()
            .contains("--frobnicate"));
        assert!(usage_err(&["--log-level", "loud"])
            .to_string()
            .contains("--log-level"));
        assert!(usage_err(&["--s2-log-level", "off"])
            .to_string()
            .contains("--s2-log-level"));
        assert!(usage_err(&["--check-timeout", "soon"])
            .to_string()
            .contains("--check-timeout"));
        assert!(usage_err(&["--check-timeout", "0"])
            .to_string()
            .contains("--check-timeout"));
        assert!(usage_err(&["-c"]).to_string().contains("-c"));
        assert!(usage_err(&["--no-ack=yes"])
            .to_string()
            .contains("--no-ack"));
        assert!(usage_err(&["stray"]).to_string().contains("stray"));
        assert!(usage_err(&["--change-dt-to", "Intel NUC"])
            .to_string()
            .contains("--change-dt-to"));
        assert!(usage_err(&["--image-sha256", "abc"])
            .to_string()
            .contains("--image-sha256"));
        assert!(usage_err(&["--fallback-log-dir", "a/b"])
            .to_string()
            .contains("--fallback-log-dir"));
    }

    #[test]
    fn combinations_are_checked() {
        assert!(usage_err(&["--sysroot", "/x", "-c", "c"])
            .to_string()
            .contains("--sysroot"));
        let e = usage_err(&["--write-only", "-i", "i", "-c", "c"]);
        assert!(e.to_string().contains("--flash-to"), "{e}");
        assert!(usage_err(&["-d"]).to_string().contains("--download-only"));
        assert!(p(&["-d", "--change-dt-to", "raspberrypi4-64"]).is_ok());
        assert!(usage_err(&["--dry-run", "--pretend"])
            .to_string()
            .contains("--pretend"));
        // PID 1's report of a dead worker is the worker mode, alone.
        let o = p(&["--stage2-failed"]).unwrap();
        assert!(o.mode() == Mode::Stage2Worker && o.stage2_failed);
        assert!(usage_err(&["--stage2", "--stage2-failed"])
            .to_string()
            .contains("--stage2-failed"));
        assert!(usage_err(&["-i", "x", "-v", "5.1.20"])
            .to_string()
            .contains("--version"));
        assert!(usage_err(&["--fallback-log", "-l", "/dev/sdb1"])
            .to_string()
            .contains("--fallback-log"));
        assert!(usage_err(&["-l", "/dev/sda", "-f", "/dev/sda"])
            .to_string()
            .contains("--log-to"));
        assert!(p(&["--write-only", "-i", "i", "-f", "f", "-c", "c"]).is_ok());
    }

    #[test]
    fn help_lists_every_documented_option() {
        let h = help_text();
        assert!(h.starts_with(&format!("takeover {}", env!("CARGO_PKG_VERSION"))));
        for opt in [
            "-w, --work-dir <DIRECTORY>",
            "-i, --image <IMAGE>",
            "-v, --version <VERSION>",
            "-c, --config <CONFIG_JSON>",
            "--log-level <LOG_LEVEL>",
            "--log-file <LOG_FILE>",
            "--backup-cfg <BACKUP-CONFIG>",
            "--s2-log-level <S2_LOG_LEVEL>",
            "--no-ack",
            "--pretend",
            "--stage2",
            "--stage2-failed",
            "--tar-internal",
            "--no-cleanup",
            "--no-os-check",
            "--no-dt-check",
            "--no-api-check",
            "--no-vpn-check",
            "--no-efi-setup",
            "--no-nwmgr-check",
            "--no-keep-name",
            "-d, --download-only",
            "--check-timeout <TIMEOUT>",
            "-l, --log-to <LOG_DEVICE>",
            "-f, --flash-to <INSTALL_DEVICE>",
            "--no-wifis",
            "--wifi <SSID>",
            "--nwmgr-cfg <NWMGR_FILE>",
            "--change-dt-to <DT_SLUG>",
            "-h, --help",
            "--fallback-log",
            "--fallback-log-filename <NAME>",
            "--fallback-log-dir <DIR>",
            "--report-hup-progress",
            "--dry-run",
            "--report <FILE>",
            "--sysroot <DIR>",
            "--write-only",
            "--image-sha256 <HEX>",
        ] {
            assert!(h.contains(opt), "help lacks {opt}");
        }
    }

    #[test]
    fn slugs() {
        assert!(is_slug("raspberrypi0-2w-64"));
        assert!(!is_slug("-x"));
        assert!(!is_slug("Intel"));
    }
}
