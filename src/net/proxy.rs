//! The HTTP(S) proxy the old system uses: found, used by takeover's own downloads and API
//! calls (stage 1 and the stage 2 client), reported, and migrated to balenaOS's
//! `system-proxy/` (redsocks) where it fits.
//!
//! Read, first found wins per variable: the environment of takeover itself (the operator's
//! shell), the environment of PID 1 (`/proc/1/environ`, what services get), `/etc/environment`
//! (`KEY=value`, quotes allowed, `export` tolerated), and apt's setting
//! (`/etc/apt/apt.conf` and `/etc/apt/apt.conf.d/*`: `Acquire::http::Proxy "URL";`,
//! `Acquire::https::Proxy "URL";`, also inside `Acquire { http { Proxy "URL"; }; };`). The
//! variables are `https_proxy`, `http_proxy`, `all_proxy`, `no_proxy` and their upper-case
//! forms. A password in a proxy URL is a secret: it is registered with the log redaction and
//! the report shows the URL without it.
//!
//! balenaOS takes a proxy through `system-proxy/redsocks.conf` (a `redsocks { }` section with
//! `type` = `http-connect` or `socks5`, `ip`, `port`, optional `login`/`password`, and the fixed
//! `local_ip = 127.0.0.1; local_port = 12345;` balenaOS redirects to) and
//! `system-proxy/no_proxy` (one IP address or CIDR range per line; host names are not
//! supported there and are left out with a note).
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::Path;
use std::sync::Mutex;

use crate::probe::Root;

/// A proxy found on the old system.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub http: Option<String>,
    pub https: Option<String>,
    pub no_proxy: Option<String>,
    /// Where each came from, for messages.
    pub from: Vec<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("http", &self.http.as_deref().map(redacted))
            .field("https", &self.https.as_deref().map(redacted))
            .field("no_proxy", &self.no_proxy)
            .field("from", &self.from)
            .finish()
    }
}

/// Parts of a proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
}

/// Splits `scheme://user:pass@host:port/` (scheme defaults to http, port to 1080 for socks and
/// 3128 otherwise when absent, as curl does for http and the squid default).
pub fn parse_url(url: &str) -> Option<ProxyUrl> {
    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("http".to_string(), url),
    };
    let rest = rest.split('/').next()?;
    let (cred, hostport) = match rest.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, rest),
    };
    let (user, password) = match cred {
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
            None => (Some(c.to_string()), None),
        },
        None => (None, None),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']')?;
        (h.to_string(), p.strip_prefix(':').map(str::to_string))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let default = if scheme.starts_with("socks") {
        1080
    } else {
        3128
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    Some(ProxyUrl {
        scheme,
        user,
        password,
        host,
        port,
    })
}

/// The URL without its password, for messages and the report.
pub fn redacted(url: &str) -> String {
    match parse_url(url) {
        Some(u) if u.password.is_some() => {
            let user = u.user.unwrap_or_default();
            format!("{}://{user}:***@{}:{}", u.scheme, u.host, u.port)
        }
        _ => url.to_string(),
    }
}

const VARS: &[(&str, u8)] = &[
    ("https_proxy", 1),
    ("HTTPS_PROXY", 1),
    ("http_proxy", 0),
    ("HTTP_PROXY", 0),
    ("all_proxy", 2),
    ("ALL_PROXY", 2),
    ("no_proxy", 3),
    ("NO_PROXY", 3),
];

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(x) = v.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return x;
        }
    }
    v
}

/// Fills what `vars` has and `p` lacks.
fn take(p: &mut Proxy, vars: &[(String, String)], what: &str) {
    let mut used = false;
    for (name, slot) in VARS {
        let Some((_, v)) = vars.iter().find(|(k, _)| k == name) else {
            continue;
        };
        let v = unquote(v).to_string();
        if v.is_empty() {
            continue;
        }
        let target = match slot {
            0 => &mut p.http,
            1 => &mut p.https,
            2 => {
                if p.http.is_none() {
                    p.http = Some(v.clone());
                    used = true;
                }
                &mut p.https
            }
            _ => &mut p.no_proxy,
        };
        if target.is_none() {
            *target = Some(v);
            used = true;
        }
    }
    if used {
        p.from.push(what.to_string());
    }
}

fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.strip_prefix("export ").unwrap_or(l))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// apt's proxy settings from one configuration file.
fn apt(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // Flatten `A { B { C "v"; }; };` into `A::B::C "v";` statements.
    let mut stack: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut no_comments = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("//") || l.starts_with('#') {
            continue;
        }
        no_comments.push_str(l);
        no_comments.push(' ');
    }
    let mut in_q = false;
    for ch in no_comments.chars() {
        match ch {
            '"' => {
                in_q = !in_q;
                cur.push(ch);
            }
            '{' if !in_q => {
                stack.push(cur.trim().to_string());
                cur.clear();
            }
            '}' if !in_q => {
                stack.pop();
                cur.clear();
            }
            ';' if !in_q => {
                let stmt = cur.trim().to_string();
                cur.clear();
                let Some((key, val)) = stmt.split_once(char::is_whitespace) else {
                    continue;
                };
                let mut full: Vec<String> = stack.clone();
                full.push(key.to_string());
                let full = full.join("::").to_ascii_lowercase();
                let val = unquote(val).to_string();
                if val.is_empty() || val.eq_ignore_ascii_case("DIRECT") || val == "false" {
                    continue;
                }
                match full.as_str() {
                    "acquire::http::proxy" => out.push(("http_proxy".into(), val)),
                    "acquire::https::proxy" => out.push(("https_proxy".into(), val)),
                    _ => {}
                }
            }
            c => cur.push(c),
        }
    }
    out
}

/// Finds the proxy of the system under `root`; `own_env` is takeover's own environment.
pub fn detect(root: &Root, own_env: &[(String, String)]) -> Option<Proxy> {
    let mut p = Proxy {
        http: None,
        https: None,
        no_proxy: None,
        from: Vec::new(),
    };
    take(&mut p, own_env, "takeover's environment");
    if let Ok(b) = root.read_bytes("/proc/1/environ") {
        let vars: Vec<(String, String)> = b
            .split(|&c| c == 0)
            .filter_map(|kv| {
                let s = String::from_utf8_lossy(kv);
                s.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        take(&mut p, &vars, "the environment of PID 1");
    }
    if let Ok(t) = root.read_string("/etc/environment") {
        take(&mut p, &env_file(&t), "/etc/environment");
    }
    let mut apt_files = vec![Path::new("/etc/apt/apt.conf").to_path_buf()];
    apt_files.extend(
        root.list("/etc/apt/apt.conf.d")
            .into_iter()
            .map(|n| Path::new("/etc/apt/apt.conf.d").join(n)),
    );
    for f in apt_files {
        if let Ok(t) = root.read_string(&f) {
            take(&mut p, &apt(&t), &f.display().to_string());
        }
    }
    if p.http.is_none() && p.https.is_none() {
        return None;
    }
    for u in [&p.http, &p.https].into_iter().flatten() {
        if let Some(pw) = parse_url(u).and_then(|u| u.password) {
            crate::log::add_secret(&pw);
        }
    }
    Some(p)
}

/// The proxy takeover's HTTP children use: `None` until [`install`]ed or first needed (then
/// read from the real system).
static CURRENT: Mutex<Option<Option<Proxy>>> = Mutex::new(None);

/// Makes `p` the proxy of every HTTP client created afterwards.
pub fn install(p: Option<Proxy>) {
    if let Ok(mut g) = CURRENT.lock() {
        *g = Some(p);
    }
}

fn current() -> Option<Proxy> {
    let mut g = CURRENT.lock().ok()?;
    if g.is_none() {
        let own: Vec<(String, String)> = std::env::vars().collect();
        *g = Some(detect(&Root::system(), &own));
    }
    g.clone().flatten()
}

/// Environment variables for an HTTP child (curl and wget read the lower-case forms).
pub fn env_vars(p: &Proxy) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if let Some(h) = &p.http {
        v.push(("http_proxy".to_string(), h.clone()));
    }
    if let Some(h) = p.https.as_ref().or(p.http.as_ref()) {
        v.push(("https_proxy".to_string(), h.clone()));
    }
    if let Some(n) = &p.no_proxy {
        v.push(("no_proxy".to_string(), n.clone()));
    }
    v
}

/// The installed proxy's variables, for the stage 2 plan.
pub fn installed_env() -> Vec<(String, String)> {
    current().map(|p| env_vars(&p)).unwrap_or_default()
}

/// The environment for HTTP children from the installed proxy (empty without one).
pub fn client_env() -> Vec<(OsString, OsString)> {
    current()
        .map(|p| {
            env_vars(&p)
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect()
        })
        .unwrap_or_default()
}

/// balenaOS's `system-proxy/` files for `p`: (name, content, notes). `None` with why when the
/// proxy cannot be expressed there.
/// Files (name, content) and notes for `system-proxy/`.
pub type ProxyFiles = (Vec<(String, Vec<u8>)>, Vec<String>);

pub fn balena_files(p: &Proxy) -> Result<ProxyFiles, String> {
    let url = p.https.as_ref().or(p.http.as_ref()).ok_or("no proxy URL")?;
    let u =
        parse_url(url).ok_or_else(|| format!("proxy URL '{}' not understood", redacted(url)))?;
    let kind = match u.scheme.as_str() {
        "http" | "https" => "http-connect",
        "socks5" | "socks5h" => "socks5",
        "socks4" | "socks4a" => "socks4",
        other => return Err(format!("proxy scheme '{other}' has no redsocks type")),
    };
    let mut notes = Vec::new();
    if u.host.parse::<std::net::IpAddr>().is_err() {
        notes.push(format!(
            "proxy host '{}' is a name: balenaOS's redsocks may need an IP address in \
             system-proxy/redsocks.conf",
            u.host
        ));
    }
    let mut conf = String::from(
        "# Migrated by takeover from the old system's proxy setting\n\
         base {\n    log_debug = off;\n    log_info = on;\n    log = stderr;\n    \
         daemon = off;\n    redirector = iptables;\n}\n\nredsocks {\n",
    );
    conf.push_str(&format!(
        "    type = {kind};\n    ip = {};\n    port = {};\n",
        u.host, u.port
    ));
    conf.push_str("    local_ip = 127.0.0.1;\n    local_port = 12345;\n");
    if let Some(user) = &u.user {
        conf.push_str(&format!("    login = \"{}\";\n", user.replace('"', "")));
    }
    if let Some(pw) = &u.password {
        conf.push_str(&format!("    password = \"{}\";\n", pw.replace('"', "")));
    }
    conf.push_str("}\n");
    let mut files = vec![("redsocks.conf".to_string(), conf.into_bytes())];
    if let Some(np) = &p.no_proxy {
        let mut lines = String::new();
        for item in np
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let addr = item.split('/').next().unwrap_or(item);
            if addr.parse::<std::net::IpAddr>().is_ok() {
                lines.push_str(item);
                lines.push('\n');
            } else {
                notes.push(format!(
                    "no_proxy entry '{item}' left out: balenaOS's no_proxy takes IP addresses \
                     and ranges only"
                ));
            }
        }
        if !lines.is_empty() {
            files.push(("no_proxy".to_string(), lines.into_bytes()));
        }
    }
    Ok((files, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://bob:s3cret@10.1.2.3:8080/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("10.1.2.3", 8080));
        assert_eq!(u.password.as_deref(), Some("s3cret"));
        assert_eq!(
            redacted("http://bob:s3cret@10.1.2.3:8080/"),
            "http://bob:***@10.1.2.3:8080"
        );
        assert_eq!(parse_url("proxy.lan").unwrap().port, 3128);
        assert_eq!(
            parse_url("socks5://[fd00::1]:1081").unwrap().host,
            "fd00::1"
        );
    }

    #[test]
    fn apt_flat_and_nested() {
        let v = apt("// c\nAcquire::http::Proxy \"http://10.0.0.1:3142\";\n\
                     Acquire { https { Proxy \"http://10.0.0.2:3128\"; }; };\n\
                     Acquire::ftp::Proxy \"x\";\n");
        assert_eq!(
            v,
            vec![
                ("http_proxy".to_string(), "http://10.0.0.1:3142".to_string()),
                (
                    "https_proxy".to_string(),
                    "http://10.0.0.2:3128".to_string()
                )
            ]
        );
    }

    #[test]
    fn redsocks_files() {
        let p = Proxy {
            http: Some("http://u:pw-proxy-x@192.168.9.9:8080".into()),
            https: None,
            no_proxy: Some("localhost,10.0.0.0/8,192.168.9.1,.corp".into()),
            from: vec![],
        };
        let (files, notes) = balena_files(&p).unwrap();
        let conf = String::from_utf8(files[0].1.clone()).unwrap();
        assert!(conf.contains("type = http-connect;") && conf.contains("ip = 192.168.9.9;"));
        assert!(conf.contains("port = 8080;") && conf.contains("login = \"u\";"));
        assert_eq!(files[1].1, b"10.0.0.0/8\n192.168.9.1\n");
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(!format!("{p:?}").contains("pw-proxy-x"));
    }
}
