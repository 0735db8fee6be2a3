//! The balenaCloud API calls takeover makes, as the reference tool makes them: `GET /ping`,
//! the release and device-type queries of the `/v6` OData API, the image download, and the
//! PATCH of a registered device.
//!
//! | call | request |
//! |---|---|
//! | [`Api::ping`] | `GET /ping`, no auth; 2xx and body `OK` |
//! | [`Api::releases`] | `GET /v6/release?$select=raw_version&$filter=…&$orderby=created_at desc` |
//! | [`Api::is_flasher`] | `GET /v6/device_type?$orderby=name asc&$top=1&$select=contract&$filter=<alias>` |
//! | [`Api::download_image`] | `POST /download` `{deviceType, version, fileType:".gz", imageType:"raw"\|null}` |
//! | [`Api::device_type_id`] | same as the contract lookup with `$select=id` |
//! | [`Api::patch_device_type`] | `PATCH /v6/device(uuid='…')` `{"is_of__device_type":N}` |
//! | [`Api::report_progress`] | `PATCH /v6/device(uuid='…')` `{"provisioning_progress":"100",…}` |
//!
//! Differences from the reference: the download's HTTP status and length are checked, a
//! partial download is resumed (`.part` file renamed when complete), a complete file already
//! present is reused (the caller verifies it), slugs and uuids are checked before they are put
//! into OData filters, and a reply that is not the expected JSON is an error, never a panic.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::http::{short_url, Http, Progress, Response};
use crate::error::{Context, Error, Result};

/// The balenaCloud API of one config.json.
#[derive(Debug, Clone)]
pub struct Api<'a> {
    http: &'a Http,
    /// Base URL without a trailing '/'.
    endpoint: String,
    key: Option<String>,
}

/// `%20` for spaces, `%27` for quotes, as the OData templates of the reference.
fn odata_escape(s: &str) -> String {
    s.replace(' ', "%20").replace('\'', "%27")
}

/// A device-type slug as balena names them (`raspberrypi4-64`, `genericx86-64-ext`).
pub fn check_slug(slug: &str) -> Result<&str> {
    let ok = !slug.is_empty()
        && slug.len() <= 100
        && slug.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if ok {
        Ok(slug)
    } else {
        Err(Error::new(
            "checking the device type",
            format!("'{slug}'"),
            "not a balena device-type slug (lowercase letters, digits, '-', '_', '.')",
        )
        .hint("check deviceType in config.json or the value of --change-dt-to"))
    }
}

/// A device uuid as balena makes them (hexadecimal).
pub fn check_uuid(uuid: &str) -> Result<&str> {
    if !uuid.is_empty() && uuid.len() <= 64 && uuid.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(uuid)
    } else {
        Err(Error::new(
            "checking the device uuid",
            format!("'{uuid}'"),
            "not a hexadecimal device uuid",
        )
        .hint("check uuid in config.json"))
    }
}

/// The `/v6/release` URL for `slug` (§4.3): final, passing, valid, successful host-OS releases
/// of the default release policy, newest first.
pub fn release_url(endpoint: &str, slug: &str) -> String {
    let filter = format!(
        "(is_final eq true) and (is_passing_tests eq true) and (is_invalidated eq false) and \
         (status eq 'success') and (belongs_to__application/any(bta:((bta/is_host eq true) and \
         (bta/is_for__device_type/any(iodt:iodt/slug eq '{slug}'))) and \
         (not(bta/application_tag/any(at:at/tag_key eq 'release-policy')) or \
         (bta/application_tag/any(at:(at/tag_key eq 'release-policy') and (at/value eq 'default'))))))"
    );
    format!(
        "{endpoint}/v6/release?$select=raw_version&$filter={}&$orderby=created_at%20desc",
        odata_escape(&filter)
    )
}

/// The `/v6/device_type` URL selecting `select` (`contract` or `id`) by alias (§4.4).
pub fn device_type_url(endpoint: &str, select: &str, slug: &str) -> String {
    format!(
        "{endpoint}/v6/device_type?$orderby=name%20asc&$top=1&$select={select}&$filter={}",
        odata_escape(&format!(
            "device_type_alias/any(dta:dta/is_referenced_by__alias eq '{slug}')"
        ))
    )
}

/// `PATCH` URL of a device.
pub fn device_url(endpoint: &str, uuid: &str) -> String {
    format!("{endpoint}/v6/device(uuid='{uuid}')")
}

/// The JSON body of `POST /download` (§4.5): `imageType` is always present.
pub fn download_body(slug: &str, version: &str, flasher: bool) -> String {
    serde_json::json!({
        "deviceType": slug,
        "version": version,
        "fileType": ".gz",
        "imageType": if flasher { Some("raw") } else { None },
    })
    .to_string()
}

/// The body of the stage-2 progress PATCH (§4.7): progress is the string "100".
pub fn progress_body(message: &str) -> String {
    serde_json::json!({
        "provisioning_progress": "100",
        "provisioning_state": message,
        "status": "configuring",
    })
    .to_string()
}

/// `balena-cloud-<slug>-<version>.img.gz`.
pub fn image_file_name(slug: &str, version: &str) -> String {
    format!("balena-cloud-{slug}-{version}.img.gz")
}

/// Where [`Api::download_image`] puts (or finds) the image; remove it when it fails
/// verification so the next run downloads it again.
pub fn image_path(work_dir: &Path, slug: &str, version: &str) -> PathBuf {
    work_dir.join(image_file_name(slug, version))
}

/// The file recording the SHA-256 of a downloaded image, next to it.
fn sha256_path(image: &Path) -> PathBuf {
    let mut p = image.as_os_str().to_owned();
    p.push(".sha256");
    PathBuf::from(p)
}

fn file_sha256(path: &Path) -> Result<String> {
    use std::io::Read;
    let step = "computing the SHA-256 of";
    let mut f = fs::File::open(path).ctx_path(step, path)?;
    let mut h = crate::formats::sha256::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(step, path.display(), e)),
        }
    }
    Ok(crate::formats::hex::encode(&h.finish()))
}

/// Records the SHA-256 of the finished download `part` in `<dest>.sha256` (0600).
fn record_sha256(part: &Path, dest: &Path) -> Result<()> {
    let sum = file_sha256(part)?;
    crate::files::write_private(&sha256_path(dest), format!("{sum}\n").as_bytes())
}

/// Is the complete image `dest`, found in the work dir, the one takeover downloaded? Only
/// when its SHA-256 equals the one recorded at its download; a file without a record (or
/// with another hash) is not reused.
fn reusable(dest: &Path) -> Result<bool> {
    let recorded = fs::read_to_string(sha256_path(dest)).unwrap_or_default();
    let recorded = recorded.trim();
    if recorded.is_empty() {
        crate::warn!(
            "{} has no recorded SHA-256 (not downloaded by this takeover): downloading it again",
            dest.display()
        );
        return Ok(false);
    }
    let now = file_sha256(dest)?;
    if now != recorded {
        crate::warn!(
            "{} changed since its download (SHA-256 {now}, recorded {recorded}): downloading it again",
            dest.display()
        );
        return Ok(false);
    }
    Ok(true)
}

#[derive(Deserialize)]
struct ListReply<T> {
    d: Vec<T>,
}

#[derive(Deserialize)]
struct Release {
    raw_version: String,
}

#[derive(Deserialize)]
struct ContractEntry {
    contract: Contract,
}

#[derive(Deserialize)]
struct Contract {
    data: ContractData,
}

#[derive(Deserialize)]
struct ContractData {
    media: Media,
    #[serde(default, rename = "flashProtocol")]
    flash_protocol: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Media {
    #[serde(rename = "defaultBoot")]
    default_boot: String,
    #[serde(default, rename = "altBoot")]
    alt_boot: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct IdEntry {
    id: u64,
}

fn bad_reply(what: &str, url: &str, e: impl std::fmt::Display, body: &[u8]) -> Error {
    let r = Response {
        status: 200,
        body: body.to_vec(),
    };
    Error::new(
        format!("reading the {what} from"),
        short_url(url),
        format!("the reply is not the expected JSON ({e}): {}", r.excerpt()),
    )
    .hint("check that apiEndpoint in config.json names a balenaCloud/openBalena API")
}

/// The `raw_version` values of a `/v6/release` reply, in the API's order.
pub fn parse_releases(body: &[u8], url: &str) -> Result<Vec<String>> {
    let r: ListReply<Release> =
        serde_json::from_slice(body).map_err(|e| bad_reply("release list", url, e, body))?;
    Ok(r.d.into_iter().map(|r| r.raw_version).collect())
}

/// Whether the device type's contract makes it a flasher type (§4.4): `defaultBoot` is
/// `internal`, `altBoot` is non-empty and there is no `flashProtocol`.
pub fn parse_flasher(body: &[u8], url: &str, slug: &str) -> Result<bool> {
    let r: ListReply<ContractEntry> = serde_json::from_slice(body)
        .map_err(|e| bad_reply("device-type contract", url, e, body))?;
    let Some(c) = r.d.into_iter().next() else {
        return Err(unknown_type(slug, url));
    };
    let data = c.contract.data;
    Ok(data.media.default_boot == "internal"
        && data.media.alt_boot.is_some_and(|a| !a.is_empty())
        && data.flash_protocol.map_or(true, |p| p.is_null()))
}

/// The numeric id of a `$select=id` device-type reply.
pub fn parse_device_type_id(body: &[u8], url: &str, slug: &str) -> Result<u64> {
    let r: ListReply<IdEntry> =
        serde_json::from_slice(body).map_err(|e| bad_reply("device-type id", url, e, body))?;
    r.d.first()
        .map(|e| e.id)
        .ok_or_else(|| unknown_type(slug, url))
}

fn unknown_type(slug: &str, url: &str) -> Error {
    Error::new(
        "looking up the device type",
        short_url(url),
        format!("the API knows no device type '{slug}'"),
    )
    .hint("check deviceType in config.json or the value of --change-dt-to")
}

/// An error for a reply with an unexpected status.
fn status_error(step: &str, url: &str, r: &Response) -> Error {
    let hint = match r.status {
        401 | 403 => "the API refused the key: check apiKey/deviceApiKey in config.json (download a fresh config.json from the dashboard)",
        404 => "check apiEndpoint in config.json and the device type",
        s if s >= 500 => "the API has a problem; try again later",
        _ => "check apiEndpoint in config.json",
    };
    let body = r.excerpt();
    let cause = if body.is_empty() {
        format!("the API answered HTTP {}", r.status)
    } else {
        format!("the API answered HTTP {}: {body}", r.status)
    };
    Error::new(step, short_url(url), cause).hint(hint)
}

impl<'a> Api<'a> {
    /// `endpoint` is config.json's `apiEndpoint`; `key` its `apiKey` or `deviceApiKey`.
    pub fn new(http: &'a Http, endpoint: &str, key: Option<&str>) -> Api<'a> {
        if let Some(k) = key {
            crate::log::add_secret(k);
        }
        Api {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            key: key.map(str::to_string),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn get(&self, url: &str) -> Result<Response> {
        self.http
            .get(url, self.key.as_deref(), self.http.request_timeout)
    }

    /// `GET /ping` without auth: the API must answer 2xx with `OK`.
    pub fn ping(&self) -> Result<()> {
        let url = format!("{}/ping", self.endpoint);
        let r = self.http.get(&url, None, self.http.request_timeout)?;
        if r.is_success() && String::from_utf8_lossy(&r.body).trim() == "OK" {
            return Ok(());
        }
        Err(Error::new(
            "checking the API server",
            &url,
            format!(
                "Got an unexpected reply from the API server: HTTP {}: {}",
                r.status,
                r.excerpt()
            ),
        )
        .hint("check apiEndpoint in config.json and the network; --no-api-check skips this check"))
    }

    /// The balenaOS versions released for `slug`, newest first (raw strings as listed).
    pub fn releases(&self, slug: &str) -> Result<Vec<String>> {
        let url = release_url(&self.endpoint, check_slug(slug)?);
        let r = self.get(&url)?;
        if r.status != 200 {
            return Err(status_error("listing balenaOS releases from", &url, &r));
        }
        let v = parse_releases(&r.body, &url)?;
        crate::debug!("{} balenaOS releases listed for {slug}", v.len());
        Ok(v)
    }

    /// Whether `slug` is a flasher device type (its download is then asked for as `raw`).
    pub fn is_flasher(&self, slug: &str) -> Result<bool> {
        let url = device_type_url(&self.endpoint, "contract", check_slug(slug)?);
        let r = self.get(&url)?;
        if !r.is_success() {
            return Err(status_error(
                "reading the device-type contract from",
                &url,
                &r,
            ));
        }
        parse_flasher(&r.body, &url, slug)
    }

    /// The API's numeric id of a device type (for [`Api::patch_device_type`]).
    pub fn device_type_id(&self, slug: &str) -> Result<u64> {
        let url = device_type_url(&self.endpoint, "id", check_slug(slug)?);
        let r = self.get(&url)?;
        if !r.is_success() {
            return Err(status_error("looking up the device-type id from", &url, &r));
        }
        parse_device_type_id(&r.body, &url, slug)
    }

    /// Downloads the image of `slug`/`version` to `<work_dir>/balena-cloud-<slug>-<version>.img.gz`
    /// through a `.part` file renamed when complete; a partial `.part` is resumed. A complete
    /// file that already exists is reused as is: the caller must verify it.
    pub fn download_image(
        &self,
        slug: &str,
        version: &str,
        flasher: bool,
        work_dir: &Path,
        progress: Progress,
    ) -> Result<PathBuf> {
        check_slug(slug)?;
        if version.contains('/') || version.starts_with('.') {
            return Err(Error::new("checking the version", version, "not a version"));
        }
        let dest = image_path(work_dir, slug, version);
        if dest.is_file() {
            if reusable(&dest)? {
                crate::info!(
                    "reusing the image downloaded before: {} (its SHA-256 matches the one recorded at its download; it is verified again before use)",
                    dest.display()
                );
                return Ok(dest);
            }
            fs::remove_file(&dest).ctx_path("removing the unproven image", &dest)?;
        }
        let mut part = dest.clone().into_os_string();
        part.push(".part");
        let part = PathBuf::from(part);
        let url = format!("{}/download", self.endpoint);
        let body = download_body(slug, version, flasher);
        let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if have > 0 {
            crate::info!(
                "resuming the download of balenaOS {version} for {slug} at {}",
                super::http::human(have)
            );
        } else {
            crate::info!(
                "downloading balenaOS {version} for {slug}{} to {}",
                if flasher {
                    " (raw image of a flasher type)"
                } else {
                    ""
                },
                dest.display()
            );
        }
        let size = self
            .http
            .download(&url, self.key.as_deref(), Some(&body), &part, progress)?;
        if size == 0 {
            let _ = fs::remove_file(&part);
            return Err(
                Error::new("downloading", &url, "the server sent an empty image")
                    .hint("check the version and device type; try again later"),
            );
        }
        record_sha256(&part, &dest)?;
        fs::rename(&part, &dest).ctx_path("renaming the finished download to", &dest)?;
        crate::info!("downloaded {} ({size} bytes)", dest.display());
        Ok(dest)
    }

    fn patch(&self, uuid: &str, body: &str, step: &str) -> Result<()> {
        let url = device_url(&self.endpoint, check_uuid(uuid)?);
        let r = self.http.patch_json(&url, self.key.as_deref(), body)?;
        if !r.is_success() {
            return Err(status_error(step, &url, &r));
        }
        Ok(())
    }

    /// Sets the device's type in the API (`--change-dt-to`, after flashing).
    pub fn patch_device_type(&self, uuid: &str, slug: &str) -> Result<()> {
        let id = self.device_type_id(slug)?;
        let body = serde_json::json!({ "is_of__device_type": id }).to_string();
        self.patch(uuid, &body, "changing the device type in")
    }

    /// Reports the end of the migration (`--report-hup-progress`): `message` is
    /// "OS update failed" or "Update successful, rebooting".
    pub fn report_progress(&self, uuid: &str, message: &str) -> Result<()> {
        self.patch(uuid, &progress_body(message), "reporting progress to")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_match_the_reference_templates() {
        let u = release_url("https://api.balena-cloud.com", "raspberrypi4-64");
        assert_eq!(
            u,
            "https://api.balena-cloud.com/v6/release?$select=raw_version&$filter=(is_final%20eq%20true)%20and%20(is_passing_tests%20eq%20true)%20and%20(is_invalidated%20eq%20false)%20and%20(status%20eq%20%27success%27)%20and%20(belongs_to__application/any(bta:((bta/is_host%20eq%20true)%20and%20(bta/is_for__device_type/any(iodt:iodt/slug%20eq%20%27raspberrypi4-64%27)))%20and%20(not(bta/application_tag/any(at:at/tag_key%20eq%20%27release-policy%27))%20or%20(bta/application_tag/any(at:(at/tag_key%20eq%20%27release-policy%27)%20and%20(at/value%20eq%20%27default%27))))))&$orderby=created_at%20desc"
        );
        assert_eq!(
            device_type_url("https://a", "contract", "intel-nuc"),
            "https://a/v6/device_type?$orderby=name%20asc&$top=1&$select=contract&$filter=device_type_alias/any(dta:dta/is_referenced_by__alias%20eq%20%27intel-nuc%27)"
        );
        assert_eq!(
            device_url("https://a", "abc123"),
            "https://a/v6/device(uuid='abc123')"
        );
    }

    #[test]
    fn bodies() {
        let v: serde_json::Value =
            serde_json::from_str(&download_body("intel-nuc", "5.1.20+rev1", true)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"deviceType":"intel-nuc","version":"5.1.20+rev1","fileType":".gz","imageType":"raw"})
        );
        let v: serde_json::Value =
            serde_json::from_str(&download_body("raspberrypi4-64", "6.0.0", false)).unwrap();
        assert!(v.get("imageType").unwrap().is_null());
        assert_eq!(
            progress_body("Update successful, rebooting"),
            r#"{"provisioning_progress":"100","provisioning_state":"Update successful, rebooting","status":"configuring"}"#
        );
        assert_eq!(
            image_file_name("raspberrypi4-64", "5.1.20+rev1"),
            "balena-cloud-raspberrypi4-64-5.1.20+rev1.img.gz"
        );
    }

    #[test]
    fn slugs_and_uuids_checked() {
        assert!(check_slug("genericx86-64-ext").is_ok());
        for bad in ["", "a'b", "a b", "Pi4", "a/b", "x%27"] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
        assert!(check_uuid("0123abcDEF").is_ok());
        assert!(check_uuid("x') or (1").is_err());
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/api/replies")
            .join(name);
        fs::read(&p).unwrap()
    }

    #[test]
    fn recorded_style_replies() {
        let u = "https://api.example.com/v6/x";
        let listed = parse_releases(&fixture("release.json"), u).unwrap();
        assert_eq!(listed, ["5.1.20+rev1", "5.1.20", "not a version", "3.2.25"]);
        let v = crate::api::version::resolve("default", &listed).unwrap();
        assert_eq!(v.to_string(), "5.1.20+rev1");
        for (file, flasher) in [
            ("contract-raspberrypi4-64.json", false),
            ("contract-genericx86-64-ext.json", true),
            ("contract-jetson-xavier.json", false),
        ] {
            assert_eq!(
                parse_flasher(&fixture(file), u, "x").unwrap(),
                flasher,
                "{file}"
            );
        }
        assert!(parse_flasher(&fixture("contract-empty.json"), u, "x").is_err());
        assert_eq!(
            parse_device_type_id(&fixture("device-type-id.json"), u, "x").unwrap(),
            58
        );
    }

    #[test]
    fn reply_parsing() {
        let u = "https://a/v6/release";
        assert_eq!(
            parse_releases(
                br#"{"d":[{"raw_version":"5.1.20+rev1","id":3},{"raw_version":"3.2.25"}]}"#,
                u
            )
            .unwrap(),
            ["5.1.20+rev1", "3.2.25"]
        );
        let e = parse_releases(b"<html>oops", u).unwrap_err().to_string();
        assert!(
            e.contains("not the expected JSON") && e.contains("<html>oops"),
            "{e}"
        );
        assert!(parse_releases(br#"{"d":[{"version":"1"}]}"#, u).is_err());

        let c = |media: &str, extra: &str| {
            format!(r#"{{"d":[{{"contract":{{"data":{{"media":{media}{extra}}}}}}}]}}"#)
        };
        let flasher = c(
            r#"{"defaultBoot":"internal","altBoot":["usb_mass_storage"]}"#,
            "",
        );
        assert!(parse_flasher(flasher.as_bytes(), u, "x").unwrap());
        let pi = c(r#"{"defaultBoot":"sdcard"}"#, "");
        assert!(!parse_flasher(pi.as_bytes(), u, "x").unwrap());
        let jetson = c(
            r#"{"defaultBoot":"internal","altBoot":["usb"]}"#,
            r#","flashProtocol":"RPIBOOT""#,
        );
        assert!(!parse_flasher(jetson.as_bytes(), u, "x").unwrap());
        let null_proto = c(
            r#"{"defaultBoot":"internal","altBoot":["usb"]}"#,
            r#","flashProtocol":null"#,
        );
        assert!(parse_flasher(null_proto.as_bytes(), u, "x").unwrap());
        let empty_alt = c(r#"{"defaultBoot":"internal","altBoot":[]}"#, "");
        assert!(!parse_flasher(empty_alt.as_bytes(), u, "x").unwrap());
        let e = parse_flasher(br#"{"d":[]}"#, u, "nosuch")
            .unwrap_err()
            .to_string();
        assert!(e.contains("knows no device type 'nosuch'"), "{e}");
        assert_eq!(
            parse_device_type_id(br#"{"d":[{"id":58}]}"#, u, "x").unwrap(),
            58
        );
        assert!(parse_device_type_id(br#"{"d":[]}"#, u, "x").is_err());
    }

    #[test]
    fn a_found_image_is_reused_only_with_its_recorded_hash() {
        let d = crate::testutil::temp_dir("reuse", "test");
        let dest = image_path(&d, "raspberrypi4-64", "5.1.20");
        fs::write(&dest, b"an image").unwrap();
        // Not downloaded by takeover (no record): not reused.
        assert!(!reusable(&dest).unwrap());
        let part = d.join("x.part");
        fs::write(&part, b"an image").unwrap();
        record_sha256(&part, &dest).unwrap();
        assert!(reusable(&dest).unwrap());
        // Changed after the download: not reused.
        fs::write(&dest, b"another image").unwrap();
        assert!(!reusable(&dest).unwrap());
        fs::remove_dir_all(&d).unwrap();
    }
}
