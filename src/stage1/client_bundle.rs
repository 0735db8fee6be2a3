//! Copies the HTTP client stage 2 needs for `--report-hup-progress` and `--change-dt-to` into
//! the RAM root, with its loader, libraries, CA bundle and resolver files.
//!
//! takeover links no TLS stack: its API calls run `curl` or GNU `wget` ([`crate::api::http`]).
//! After the pivot into the RAM root the old root is unmounted, so everything that client
//! needs is copied in by stage 1, to the same absolute paths:
//!
//! - the client program (`curl`, else GNU `wget`, as [`crate::api::http::Http::detect`] would
//!   choose; `TAKEOVER_HTTP_TOOL` forces one; busybox wget cannot send PATCH and is refused);
//! - its dynamic loader (`PT_INTERP`) and the transitive closure of its `DT_NEEDED`
//!   libraries, found the way the loader finds them: `DT_RPATH` (without `DT_RUNPATH`),
//!   `DT_RUNPATH` (`$ORIGIN`, `$LIB` expanded), `/etc/ld.so.conf` (with its `include`s), then
//!   the multiarch and standard directories; only ELF files of the program's class and machine
//!   are accepted; symlinks are followed and the target's content lands at the link's path;
//! - for an `https://` endpoint: the CA bundle (`/etc/ssl/certs/ca-certificates.crt` or the
//!   distribution's equivalent);
//! - `/etc/resolv.conf` (the first candidate naming a non-loopback nameserver: a local stub
//!   resolver such as systemd-resolved's 127.0.0.53 is killed with every other process),
//!   `/etc/hosts`, and a minimal `/etc/nsswitch.conf` (`hosts: files dns`).
//!
//! Stage 2 runs the client with `LD_LIBRARY_PATH` naming the library directories (there is no
//! `ld.so.cache` in the RAM root), `CURL_CA_BUNDLE`/`SSL_CERT_FILE` naming the bundle.
//!
//! Everything is resolved (read-only, through a [`Root`]) before anything is changed; a
//! missing piece is an error naming the file. Network: stage 2 has only what the kernel keeps
//! after the old system's daemons are killed — interface addresses and routes stay configured
//! (NetworkManager, dhclient, systemd-networkd leave them in place when they are stopped;
//! DHCP addresses have a lease lifetime of typically hours, far longer than stage 2).
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::api::http::ToolKind;
use crate::error::{Context, Error, Result};
use crate::formats::elf::{self, ElfInfo};
use crate::probe::Root;

/// Largest file read as an ELF object (libcrypto is ~5 MiB).
const MAX_ELF: u64 = 256 * 1024 * 1024;
/// Most libraries in one closure (a loop guard; curl needs ~30).
const MAX_LIBS: usize = 400;

/// CA bundles, in the order distributions use them.
pub const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// Resolver configurations: the system's, then the files local stub resolvers forward to.
pub const RESOLV_CANDIDATES: &[&str] = &[
    "/etc/resolv.conf",
    "/run/systemd/resolve/resolv.conf",
    "/run/NetworkManager/no-stub-resolv.conf",
    "/run/NetworkManager/resolv.conf",
    "/var/run/resolvconf/interface/NetworkManager",
    "/run/resolvconf/resolv.conf",
];

const PATH_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// What stage 1 copies into the RAM root for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBundle {
    pub kind: ToolKind,
    /// The program (system path = RAM-root path).
    pub program: PathBuf,
    /// Loader and libraries (system paths = RAM-root paths).
    pub libs: Vec<PathBuf>,
    /// Directories of `libs` (stage 2's `LD_LIBRARY_PATH`).
    pub lib_dirs: Vec<PathBuf>,
    pub ca_bundle: Option<PathBuf>,
    /// Source of the RAM root's `/etc/resolv.conf`.
    pub resolv: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    /// Bytes of everything above.
    pub bytes: u64,
}

impl ClientBundle {
    pub fn kind_name(&self) -> &'static str {
        self.kind.as_str()
    }
}

fn not_found(what: &str, object: impl std::fmt::Display, cause: impl Into<String>) -> Error {
    Error::new(format!("preparing {what} for stage 2"), object, cause).hint(
        "install curl (with its libraries and ca-certificates), or run without \
         --report-hup-progress/--change-dt-to and change the device in the dashboard",
    )
}

/// The symlink chain of `p` resolved inside `root` (absolute targets are taken under the
/// root). Returns the final path (root view).
fn resolve_links(root: &Root, p: &Path) -> Result<PathBuf> {
    let mut cur = p.to_path_buf();
    for _ in 0..40 {
        match root.read_link(&cur) {
            Ok(t) => {
                cur = if t.is_absolute() {
                    t
                } else {
                    cur.parent().unwrap_or(Path::new("/")).join(t)
                };
            }
            Err(_) => return Ok(normalize(&cur)),
        }
    }
    Err(not_found(
        "the HTTP client",
        p.display(),
        "too many levels of symbolic links",
    ))
}

/// Removes `.` and `..` components lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

fn read_elf(root: &Root, p: &Path) -> Result<(ElfInfo, u64)> {
    let real = resolve_links(root, p)?;
    let bytes = crate::files::read_limited(&root.path(&real), MAX_ELF, "an ELF file")?;
    let info = elf::parse(&bytes, &p.display().to_string())?;
    Ok((info, bytes.len() as u64))
}

fn is_file(root: &Root, p: &Path) -> bool {
    resolve_links(root, p)
        .map(|r| root.path(r).is_file())
        .unwrap_or(false)
}

/// Which client: `forced` (`TAKEOVER_HTTP_TOOL`), else curl, else GNU wget — the order of
/// [`crate::api::http::Http::detect`]. Busybox wget cannot PATCH: refused.
pub fn find_program(
    root: &Root,
    path_dirs: &[PathBuf],
    forced: Option<&str>,
) -> Result<(ToolKind, PathBuf)> {
    let find = |name: &str| {
        path_dirs
            .iter()
            .map(|d| d.join(name))
            .find(|p| is_file(root, p))
    };
    let wget_kind = |p: &Path| -> Result<ToolKind> {
        let real = resolve_links(root, p)?;
        if real.file_name().is_some_and(|n| n == "busybox") {
            return Ok(ToolKind::BusyboxWget);
        }
        let bytes = crate::files::read_limited(&root.path(&real), MAX_ELF, "wget")?;
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        Ok(if has(b"GNU Wget") {
            ToolKind::GnuWget
        } else {
            ToolKind::BusyboxWget
        })
    };
    let busybox_refused = || {
        not_found(
            "the HTTP client",
            "busybox wget",
            "busybox wget cannot send the PATCH requests of --report-hup-progress and --change-dt-to",
        )
    };
    let want_curl = matches!(forced, None | Some("curl"));
    if want_curl {
        if let Some(p) = find("curl") {
            return Ok((ToolKind::Curl, p));
        }
        if forced.is_some() {
            return Err(not_found(
                "the HTTP client",
                "curl",
                "TAKEOVER_HTTP_TOOL=curl but no curl in PATH",
            ));
        }
    }
    match forced {
        Some("busybox") => return Err(busybox_refused()),
        None | Some("wget") => {}
        Some(other) => {
            return Err(Error::new(
                "choosing the HTTP tool",
                "TAKEOVER_HTTP_TOOL",
                format!("'{other}' is not one of curl, wget, busybox"),
            ))
        }
    }
    match find("wget") {
        Some(p) => match wget_kind(&p)? {
            ToolKind::BusyboxWget => Err(busybox_refused()),
            k => Ok((k, p)),
        },
        None => Err(not_found(
            "the HTTP client",
            "curl, wget",
            "neither curl nor GNU wget is installed",
        )),
    }
}

/// Directories listed in `/etc/ld.so.conf` and the files it includes (globs with `*` and `?`
/// in the last component).
pub fn ld_so_conf_dirs(root: &Root) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    conf_file(root, Path::new("/etc/ld.so.conf"), &mut out, &mut seen, 0);
    out
}

fn conf_file(
    root: &Root,
    file: &Path,
    out: &mut Vec<PathBuf>,
    seen: &mut BTreeSet<PathBuf>,
    depth: u32,
) {
    if depth > 8 || !seen.insert(file.to_path_buf()) {
        return;
    }
    let Ok(text) = root.read_string(file) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(pat) = line.strip_prefix("include") {
            for pat in pat.split_whitespace() {
                let pat = if pat.starts_with('/') {
                    PathBuf::from(pat)
                } else {
                    file.parent().unwrap_or(Path::new("/")).join(pat)
                };
                for f in glob(root, &pat) {
                    conf_file(root, &f, out, seen, depth + 1);
                }
            }
        } else if line.starts_with("hwcap") {
            continue;
        } else {
            for d in line.split([':', ',', ' ', '\t']).filter(|d| !d.is_empty()) {
                let d = PathBuf::from(d);
                if d.is_absolute() && !out.contains(&d) {
                    out.push(d);
                }
            }
        }
    }
}

/// Matches `*`/`?` wildcards in the last component of `pat`, sorted.
fn glob(root: &Root, pat: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pat.parent(), pat.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    if !name.contains(['*', '?']) {
        return vec![pat.to_path_buf()];
    }
    root.list(dir)
        .into_iter()
        .filter(|n| wildcard(name.as_bytes(), n.as_bytes()))
        .map(|n| dir.join(n))
        .collect()
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

/// The loader's default directories for this class/machine (multiarch first).
pub fn default_dirs(info: &ElfInfo) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for t in elf::multiarch(info.machine, info.class64) {
        v.push(PathBuf::from(format!("/lib/{t}")));
        v.push(PathBuf::from(format!("/usr/lib/{t}")));
    }
    if info.class64 {
        v.push("/lib64".into());
        v.push("/usr/lib64".into());
    } else {
        v.push("/lib32".into());
        v.push("/usr/lib32".into());
    }
    v.push("/lib".into());
    v.push("/usr/lib".into());
    v.push("/usr/local/lib".into());
    v
}

fn expand(entry: &str, origin: &Path, class64: bool) -> PathBuf {
    let lib = if class64 { "lib64" } else { "lib" };
    let o = origin.display().to_string();
    PathBuf::from(
        entry
            .replace("${ORIGIN}", &o)
            .replace("$ORIGIN", &o)
            .replace("${LIB}", lib)
            .replace("$LIB", lib),
    )
}

/// The loader and the transitive library closure of `program` (system paths, sorted, no
/// duplicates) and their total size. Errors name the library that cannot be found.
pub fn closure(root: &Root, program: &Path) -> Result<(Vec<PathBuf>, u64)> {
    let (top, _) = read_elf(root, program)?;
    let conf = ld_so_conf_dirs(root);
    let defaults = default_dirs(&top);
    let mut found: Vec<PathBuf> = Vec::new();
    let mut bytes = 0u64;
    if let Some(interp) = &top.interp {
        let (p, size) = loader(root, program, interp)?;
        bytes += size;
        found.push(p);
    }
    let mut names_done: BTreeSet<String> = BTreeSet::new();
    // libc's DT_NEEDED on the loader is the loader already there (the same soname).
    if let Some(n) = top.interp.as_deref().and_then(|i| Path::new(i).file_name()) {
        names_done.insert(n.to_string_lossy().into_owned());
    }
    // (object path, its info): objects whose DT_NEEDED are still to be resolved.
    let mut queue: Vec<(PathBuf, ElfInfo)> = vec![(program.to_path_buf(), top.clone())];
    while let Some((obj, info)) = queue.pop() {
        let mut dirs = rpath_dirs(root, &obj, &info, &top)?;
        dirs.extend(conf.iter().cloned());
        dirs.extend(defaults.iter().cloned());
        for name in &info.needed {
            if names_done.contains(name) {
                continue;
            }
            let (path, li, size) = find_library(root, name, &dirs, &top)
                .ok_or_else(|| library_not_found(name, &obj, &dirs))?;
            names_done.insert(name.clone());
            if !found.contains(&path) {
                bytes += size;
                found.push(path.clone());
                if found.len() > MAX_LIBS {
                    return Err(not_found(
                        "the HTTP client",
                        program.display(),
                        format!("more than {MAX_LIBS} libraries"),
                    ));
                }
                queue.push((path, li));
            }
        }
    }
    found.sort();
    found.dedup();
    Ok((found, bytes))
}

/// The dynamic loader `interp` of `program`, and its size.
fn loader(root: &Root, program: &Path, interp: &str) -> Result<(PathBuf, u64)> {
    let p = PathBuf::from(interp);
    if !is_file(root, &p) {
        return Err(not_found(
            "the HTTP client",
            interp,
            format!("the dynamic loader of {} is missing", program.display()),
        ));
    }
    let real = resolve_links(root, &p)?;
    let size = std::fs::metadata(root.path(&real))
        .ctx_path("reading", &p)?
        .len();
    Ok((p, size))
}

/// The DT_RPATH (of the object, then of the program; only without DT_RUNPATH) and DT_RUNPATH
/// directories of `obj`, `$ORIGIN` expanded.
fn rpath_dirs(root: &Root, obj: &Path, info: &ElfInfo, top: &ElfInfo) -> Result<Vec<PathBuf>> {
    let origin = resolve_links(root, obj)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut dirs: Vec<PathBuf> = Vec::new();
    if info.runpath.is_empty() {
        dirs.extend(info.rpath.iter().map(|e| expand(e, &origin, info.class64)));
        dirs.extend(top.rpath.iter().map(|e| expand(e, &origin, top.class64)));
    }
    dirs.extend(
        info.runpath
            .iter()
            .map(|e| expand(e, &origin, info.class64)),
    );
    Ok(dirs)
}

/// The first file named `name` in `dirs` (or the path `name`) that is an ELF object of the
/// program's class and machine: its path, its info and its size.
fn find_library(
    root: &Root,
    name: &str,
    dirs: &[PathBuf],
    top: &ElfInfo,
) -> Option<(PathBuf, ElfInfo, u64)> {
    let candidates: Vec<PathBuf> = if name.contains('/') {
        vec![normalize(Path::new(name))]
    } else {
        dirs.iter().map(|d| normalize(&d.join(name))).collect()
    };
    candidates
        .into_iter()
        .filter(|c| is_file(root, c))
        .find_map(|c| match read_elf(root, &c) {
            Ok((li, size)) if li.class64 == top.class64 && li.machine == top.machine => {
                Some((c, li, size))
            }
            _ => None,
        })
}

fn library_not_found(name: &str, obj: &Path, dirs: &[PathBuf]) -> Error {
    not_found(
        "the HTTP client",
        name,
        format!(
            "library needed by {} not found (searched {})",
            obj.display(),
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        ),
    )
}

/// First non-comment `nameserver` that is not a loopback address?
pub fn has_remote_nameserver(text: &str) -> bool {
    text.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some("nameserver")
            && w.next().is_some_and(|a| {
                !(a.starts_with("127.") || a == "::1" || a.eq_ignore_ascii_case("localhost"))
            })
    })
}

/// Resolves everything the client needs (read-only). `https`: the endpoint is `https://`.
pub fn resolve(root: &Root, https: bool, forced: Option<&str>) -> Result<ClientBundle> {
    let path_dirs: Vec<PathBuf> = match std::env::var_os("PATH") {
        Some(p) if root.is_system() => std::env::split_paths(&p)
            .filter(|d| d.is_absolute())
            .collect(),
        _ => PATH_DIRS.iter().map(PathBuf::from).collect(),
    };
    let (kind, found) = find_program(root, &path_dirs, forced)?;
    // The program goes to its real path, so that its `$ORIGIN` is the same in the RAM root.
    let program = resolve_links(root, &found)?;
    let (_, prog_bytes) = read_elf(root, &program)?;
    let (libs, lib_bytes) = closure(root, &program)?;
    let mut lib_dirs: Vec<PathBuf> = Vec::new();
    for l in &libs {
        if let Some(d) = l.parent() {
            if !lib_dirs.iter().any(|x| x == d) {
                lib_dirs.push(d.to_path_buf());
            }
        }
    }
    let size_of = |p: &Path| -> u64 {
        resolve_links(root, p)
            .ok()
            .and_then(|r| std::fs::metadata(root.path(r)).ok())
            .map_or(0, |m| m.len())
    };
    let ca_bundle = if https {
        let ca = CA_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| is_file(root, p))
            .ok_or_else(|| {
                not_found(
                    "the CA certificates",
                    CA_BUNDLES.join(", "),
                    "the API endpoint is https:// but no CA bundle exists",
                )
            })?;
        Some(ca)
    } else {
        None
    };
    let resolv = RESOLV_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| is_file(root, p) && root.read_string(p).is_ok_and(|t| has_remote_nameserver(&t)));
    if resolv.is_none() {
        crate::warn!(
            "no resolver configuration names a non-local nameserver: stage 2 reaches the API \
             only if its endpoint is an IP address or in /etc/hosts"
        );
    }
    let hosts = Some(PathBuf::from("/etc/hosts")).filter(|p| is_file(root, p));
    let bytes = prog_bytes
        + lib_bytes
        + ca_bundle.as_deref().map_or(0, size_of)
        + resolv.as_deref().map_or(0, size_of)
        + hosts.as_deref().map_or(0, size_of);
    Ok(ClientBundle {
        kind,
        program,
        libs,
        lib_dirs,
        ca_bundle,
        resolv,
        hosts,
        bytes,
    })
}

/// Whether stage 2 calls the API, checked before anything changes: `--report-hup-progress`
/// needs a registered device (config.json `uuid`); `--change-dt-to` calls the API only for a
/// registered device (an unregistered one registers with config.json's new `deviceType`).
/// A call also needs `apiEndpoint` and `apiKey`/`deviceApiKey`.
pub fn stage2_api_needed(
    report_hup_progress: bool,
    change_dt_to: Option<&str>,
    config: &crate::config::ConfigJson,
) -> Result<bool> {
    let uuid = config.uuid()?.filter(|u| !u.is_empty());
    if report_hup_progress && uuid.is_none() {
        return Err(Error::new(
            "checking --report-hup-progress",
            "config.json",
            "has no uuid: the device is not registered, there is no device to report progress for",
        )
        .hint("drop --report-hup-progress, or use this device's own config.json (with its uuid)"));
    }
    if let Some(dt) = change_dt_to {
        crate::api::balena::check_slug(dt)?;
        if uuid.is_none() {
            crate::info!(
                "--change-dt-to {dt}: config.json has no uuid, so the device registers as {dt}                  on first boot; no API call is needed"
            );
        }
    }
    let needed = report_hup_progress || (change_dt_to.is_some() && uuid.is_some());
    if needed {
        if let Some(u) = uuid {
            crate::api::balena::check_uuid(u)?;
        }
        config.api_endpoint()?;
        config.api_key()?;
    }
    Ok(needed)
}

/// Copies `src` (system path, links followed) to `dest` (a path inside the RAM root).
fn copy_one(root: &Root, src: &Path, dest: &Path, mode: u32) -> Result<u64> {
    let real = resolve_links(root, src)?;
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d).ctx_path("creating", d)?;
    }
    super::handover::copy_in(&root.path(&real), dest, mode)
}

fn under(ram: &Path, p: &Path) -> PathBuf {
    ram.join(p.strip_prefix("/").unwrap_or(p))
}

/// Copies the bundle into the RAM root `ram` at the same paths; `/tmp` (0700, for the
/// client's private per-call files) and `/etc/nsswitch.conf` are created. Returns bytes copied.
pub fn install(root: &Root, b: &ClientBundle, ram: &Path) -> Result<u64> {
    let mut n = copy_one(root, &b.program, &under(ram, &b.program), 0o700)?;
    for l in &b.libs {
        n += copy_one(root, l, &under(ram, l), 0o755)?;
    }
    if let Some(ca) = &b.ca_bundle {
        n += copy_one(root, ca, &under(ram, ca), 0o644)?;
    }
    if let Some(r) = &b.resolv {
        n += copy_one(root, r, &ram.join("etc/resolv.conf"), 0o644)?;
    }
    if let Some(h) = &b.hosts {
        n += copy_one(root, h, &ram.join("etc/hosts"), 0o644)?;
    }
    crate::files::write_with_mode(&ram.join("etc/nsswitch.conf"), b"hosts: files dns\n", 0o644)?;
    crate::files::create_private_dir(&ram.join("tmp"))?;
    crate::info!(
        "{} for stage 2 copied into the RAM root: {} libraries, {} KiB{}",
        b.kind_name(),
        b.libs.len(),
        n >> 10,
        if b.ca_bundle.is_some() {
            ", with the CA bundle"
        } else {
            ""
        }
    );
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::elf::tests::tiny_elf;

    struct Tree(PathBuf);
    impl Tree {
        fn new(tag: &str) -> Tree {
            let d = std::env::temp_dir().join(format!(
                "takeover-client-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Tree(d)
        }
        fn put(&self, rel: &str, data: &[u8]) {
            let p = self.0.join(rel.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        fn link(&self, rel: &str, target: &str) {
            let p = self.0.join(rel.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
        }
        fn root(&self) -> Root {
            Root::new(&self.0)
        }
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const LD: &str = "/lib64/ld-linux-x86-64.so.2";

    fn debian_like(t: &Tree) {
        t.put(
            "/usr/bin/curl",
            &tiny_elf(Some(LD), &["libcurl.so.4", "libc.so.6"], None),
        );
        t.put(
            "/lib/x86_64-linux-gnu/libc.so.6",
            &tiny_elf(Some(LD), &["ld-linux-x86-64.so.2"], None),
        );
        t.put(
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            &tiny_elf(None, &[], None),
        );
        // Absolute link: resolved inside the tree, not on the host.
        t.link(LD, "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
        // libcurl is a symlink, found through ld.so.conf.d, needs libssl via its RUNPATH.
        t.put(
            "/opt/curl/lib/libcurl.so.4.8.0",
            &tiny_elf(None, &["libssl.so.3", "libc.so.6"], Some("$ORIGIN/../ssl")),
        );
        t.link("/opt/curl/lib/libcurl.so.4", "libcurl.so.4.8.0");
        t.put(
            "/opt/curl/ssl/libssl.so.3",
            &tiny_elf(None, &["libc.so.6"], None),
        );
        t.put(
            "/etc/ld.so.conf",
            b"# comment\ninclude /etc/ld.so.conf.d/*.conf\n",
        );
        t.put("/etc/ld.so.conf.d/curl.conf", b"/opt/curl/lib\n");
        t.put("/etc/ld.so.conf.d/ignored.txt", b"/nowhere\n");
        t.put("/etc/ssl/certs/ca-certificates.crt", b"-----BEGIN CERT");
        t.put("/etc/resolv.conf", b"nameserver 127.0.0.53\n");
        t.put(
            "/run/systemd/resolve/resolv.conf",
            b"# upstream\nnameserver 10.0.2.3\n",
        );
        t.put("/etc/hosts", b"127.0.0.1 localhost\n");
    }

    #[test]
    fn closure_follows_ld_so_conf_runpath_origin_and_links() {
        let t = Tree::new("closure");
        debian_like(&t);
        let b = resolve(&t.root(), true, None).unwrap();
        assert_eq!(b.kind, ToolKind::Curl);
        assert_eq!(b.program, Path::new("/usr/bin/curl"));
        let libs: Vec<String> = b.libs.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            libs,
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                LD,
                "/opt/curl/lib/libcurl.so.4",
                "/opt/curl/ssl/libssl.so.3"
            ]
        );
        assert!(b.lib_dirs.contains(&PathBuf::from("/lib/x86_64-linux-gnu")));
        assert_eq!(
            b.ca_bundle.as_deref(),
            Some(Path::new("/etc/ssl/certs/ca-certificates.crt"))
        );
        // The stub resolver's file is skipped for the one naming a real nameserver.
        assert_eq!(
            b.resolv.as_deref(),
            Some(Path::new("/run/systemd/resolve/resolv.conf"))
        );
        assert!(b.bytes > 0);

        // Installed: same paths, links followed, 0600 nothing secret here but /tmp is 0700.
        let ram = Tree::new("ram");
        let n = install(&t.root(), &b, &ram.0).unwrap();
        assert!(n > 0);
        for l in &libs {
            let p = ram.0.join(l.trim_start_matches('/'));
            let m = std::fs::symlink_metadata(&p).unwrap();
            assert!(m.file_type().is_file(), "{l} must be a regular file");
        }
        assert_eq!(
            std::fs::read(ram.0.join("lib64/ld-linux-x86-64.so.2")).unwrap(),
            tiny_elf(None, &[], None)
        );
        assert_eq!(
            std::fs::read_to_string(ram.0.join("etc/resolv.conf")).unwrap(),
            "# upstream\nnameserver 10.0.2.3\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(ram.0.join("tmp")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn missing_library_is_named_before_anything_changes() {
        let t = Tree::new("missing");
        debian_like(&t);
        std::fs::remove_file(t.0.join("opt/curl/ssl/libssl.so.3")).unwrap();
        let e = resolve(&t.root(), false, None).unwrap_err().to_string();
        assert!(e.contains("libssl.so.3"), "{e}");
        assert!(e.contains("libcurl"), "{e}");
        // No CA bundle with an https endpoint: named.
        let t2 = Tree::new("noca");
        debian_like(&t2);
        std::fs::remove_file(t2.0.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
        assert!(resolve(&t2.root(), false, None).is_ok());
        let e = resolve(&t2.root(), true, None).unwrap_err().to_string();
        assert!(e.contains("ca-certificates.crt"), "{e}");
    }

    #[test]
    fn wrong_class_library_is_skipped() {
        let t = Tree::new("class");
        debian_like(&t);
        // A 32-bit libc earlier in the search order is not taken.
        let mut b32 = tiny_elf(None, &[], None);
        b32[4] = 1;
        t.put("/opt/curl/lib/libc.so.6", &b32);
        let b = resolve(&t.root(), false, None).unwrap();
        assert!(b
            .libs
            .contains(&PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6")));
        assert!(!b.libs.contains(&PathBuf::from("/opt/curl/lib/libc.so.6")));
    }

    #[test]
    fn wget_kinds_and_busybox_refusal() {
        let t = Tree::new("wget");
        let mut gnu = tiny_elf(None, &[], None);
        gnu.extend_from_slice(b"GNU Wget %s built on linux-gnu.");
        t.put("/usr/bin/wget", &gnu);
        let dirs = vec![PathBuf::from("/usr/bin"), PathBuf::from("/bin")];
        let (k, p) = find_program(&t.root(), &dirs, None).unwrap();
        assert_eq!(
            (k, p.as_path()),
            (ToolKind::GnuWget, Path::new("/usr/bin/wget"))
        );
        // Static GNU wget: nothing else needed.
        let b = resolve(&t.root(), false, Some("wget")).unwrap();
        assert!(b.libs.is_empty());

        let t = Tree::new("bb");
        t.put("/bin/busybox", &tiny_elf(None, &[], None));
        t.link("/bin/wget", "busybox");
        let e = find_program(&t.root(), &dirs, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PATCH"), "{e}");
        let e = find_program(&t.root(), &dirs, Some("busybox")).unwrap_err();
        assert!(e.to_string().contains("busybox"));
        let e = find_program(&t.root(), &dirs, Some("curl")).unwrap_err();
        assert!(e.to_string().contains("TAKEOVER_HTTP_TOOL"));
    }

    #[test]
    fn which_options_need_the_client() {
        let cfg = |extra: &str| {
            let t = format!(
                "{{\"apiEndpoint\":\"https://api.example\",\"apiKey\":\"k-secret-1\"{extra}}}"
            );
            crate::config::ConfigJson::parse(t.as_bytes(), Path::new("config.json")).unwrap()
        };
        let fleet = cfg("");
        let dev = cfg(",\"uuid\":\"0123abcd\"");
        // Unregistered: --change-dt-to needs no call; --report-hup-progress is refused.
        assert!(!stage2_api_needed(false, Some("generic-amd64"), &fleet).unwrap());
        let e = stage2_api_needed(true, None, &fleet)
            .unwrap_err()
            .to_string();
        assert!(e.contains("uuid"), "{e}");
        assert!(stage2_api_needed(true, None, &dev).unwrap());
        assert!(stage2_api_needed(false, Some("generic-amd64"), &dev).unwrap());
        assert!(!stage2_api_needed(false, None, &dev).unwrap());
        assert!(stage2_api_needed(false, Some("Intel NUC"), &dev).is_err());
        let bad = cfg(",\"uuid\":\"not/hex\"");
        assert!(stage2_api_needed(true, None, &bad).is_err());
    }

    #[test]
    fn helpers() {
        assert!(wildcard(b"*.conf", b"x86_64-linux-gnu.conf"));
        assert!(!wildcard(b"*.conf", b"a.txt"));
        assert!(wildcard(b"lib?.so", b"libc.so"));
        assert_eq!(
            normalize(Path::new("/opt/curl/lib/../ssl/./x")),
            Path::new("/opt/curl/ssl/x")
        );
        assert!(!has_remote_nameserver(
            "nameserver 127.0.0.53\nnameserver ::1\n"
        ));
        assert!(has_remote_nameserver("search lan\nnameserver 192.0.2.1\n"));
        assert_eq!(
            expand("$ORIGIN/../$LIB", Path::new("/usr/bin"), true),
            Path::new("/usr/bin/../lib64")
        );
    }

    #[test]
    fn host_curl_closure_is_complete_when_present() {
        // Read-only look at the host's own curl: every library it needs is found.
        let root = Root::system();
        let dirs: Vec<PathBuf> = PATH_DIRS.iter().map(PathBuf::from).collect();
        let Ok((_, prog)) = find_program(&root, &dirs, Some("curl")) else {
            eprintln!("skipped: no curl on this host");
            return;
        };
        let (libs, bytes) = closure(&root, &prog).unwrap();
        eprintln!(
            "{}: {} files (loader and libraries), {} KiB",
            prog.display(),
            libs.len(),
            bytes >> 10
        );
        assert!(bytes > 0);
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libcurl")),
            "{libs:?}"
        );
        // The same set as the system's own loader reports (ldd, where there is one).
        let Ok(o) = std::process::Command::new("ldd").arg(&prog).output() else {
            return;
        };
        let mut theirs: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let p = if w.get(1) == Some(&"=>") {
                    w.get(2)
                } else {
                    w.first()
                };
                p.filter(|p| p.starts_with('/')).map(|p| p.to_string())
            })
            .filter_map(|p| {
                Path::new(&p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .collect();
        let mut ours: Vec<String> = libs
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs);
    }
}
