//! `-d/--download-only`, and the download step of a migration: read config.json, ask the API
//! which balenaOS versions exist for the device type, choose one (`-v`, default `default`),
//! and download its image into the work directory. Needs no root and touches no device.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use crate::api::balena::{check_slug, Api};
use crate::api::http::{Http, Progress};
use crate::api::version;
use crate::cli::Options;
use crate::config::ConfigJson;
use crate::error::{Context, Result};
use crate::report::{Image, Report};

/// The API used when no config.json is given (`-d --change-dt-to SLUG` alone).
pub const DEFAULT_API: &str = "https://api.balena-cloud.com";

/// Downloads the image the options ask for and returns its path; fills `report.image`.
pub fn download_only(opts: &Options, report: &mut Report) -> Result<PathBuf> {
    let http = Http::detect()?;
    download_with(opts, report, &http)
}

/// The API check before a download: `GET /ping`, its bound printed first.
fn api_check(api: &Api, http: &Http) -> Result<()> {
    let ep = api.endpoint();
    crate::info!("API check: {} ({ep}/ping)", http.attempts_text());
    api.ping()?;
    crate::info!("the API at {ep} answers");
    Ok(())
}

/// The device type to download: `--change-dt-to`, else the config's `deviceType`.
fn slug_to_download<'a>(opts: &'a Options, config: Option<&'a ConfigJson>) -> Result<&'a str> {
    let slug = match (&opts.change_dt_to, config) {
        (Some(s), _) => s.as_str(),
        (None, Some(c)) => c.device_type()?,
        (None, None) => return Err(crate::error::Error::usage(
            "--download-only",
            "needs -c CONFIG_JSON (or --change-dt-to SLUG) to know which device type to download",
        )),
    };
    check_slug(slug)?;
    Ok(slug)
}

/// [`download_only`] with a given HTTP client (tests pick the tool and the retry timing).
pub fn download_with(opts: &Options, report: &mut Report, http: &Http) -> Result<PathBuf> {
    let config = opts.config.as_deref().map(ConfigJson::load).transpose()?;
    let slug = slug_to_download(opts, config.as_ref())?;
    let (endpoint, key) = match &config {
        Some(c) => (c.api_endpoint()?, Some(c.api_key()?)),
        None => (DEFAULT_API, None),
    };
    // The API check and the version lookups wait at most --check-timeout per attempt; the
    // download itself is bounded by its stall timeout and resumes.
    let checked = http
        .clone()
        .bounded(std::time::Duration::from_secs(opts.check_timeout));
    let api = Api::new(&checked, endpoint, key);
    if !opts.no_api_check {
        api_check(&api, &checked)?;
    }
    let request = opts.version.as_deref().unwrap_or("default");
    let listed = api.releases(slug)?;
    let chosen = version::resolve(request, &listed)?;
    let version = chosen.to_string();
    crate::info!("balenaOS {version} chosen for {slug} (asked for '{request}')");
    let flasher = api.is_flasher(slug)?;
    let work_dir = opts.work_dir();
    std::fs::create_dir_all(&work_dir).ctx_path("creating the work directory", &work_dir)?;
    let path = Api::new(http, endpoint, key).download_image(
        slug,
        &version,
        flasher,
        &work_dir,
        Progress::Auto,
    )?;
    let size = std::fs::metadata(&path)
        .ctx_path("reading the size of", &path)?
        .len();
    report.image = Some(Image {
        path: Some(path.display().to_string()),
        version: Some(version.clone()),
        compressed_bytes: Some(size),
        layout: "unknown".into(),
        ..Default::default()
    });
    // Prove the file good before anyone uses it: full decode (CRC/ISIZE), layout, the device
    // type it was built for, --image-sha256. A flasher image has its inner image extracted.
    let vo = crate::image::verify::VerifyOptions {
        target_size: None,
        expected_sha256: opts.image_sha256.clone(),
        expected_device_type: (!opts.no_dt_check).then(|| slug.to_string()),
        work_dir: work_dir.clone(),
    };
    let mut prepared = crate::image::verify::prepare(&path, &vo, 6).map_err(|e| {
        e.hint(format!(
            "the download of {} is not a good image; delete it and try again",
            path.display()
        ))
    })?;
    let mut ri = prepared.verified.to_report(&prepared.image);
    ri.version = Some(version.clone());
    report.image = Some(ri);
    crate::info!(
        "{} verified: {} MiB decoded, layout {}, built for {}",
        prepared.image.display(),
        prepared.verified.uncompressed_bytes >> 20,
        prepared.verified.layout.as_str(),
        prepared
            .verified
            .device_type
            .as_deref()
            .unwrap_or("an unknown device type")
    );
    // An extracted inner image is what `-d` is for: it stays, the log says where.
    match prepared.extracted.take() {
        Some(e) => Ok(e.keep()),
        None => Ok(prepared.image),
    }
}
