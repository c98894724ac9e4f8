//! The configuration file, read and compiled: its process settings become flags (placed
//! before the command line's, so a flag given wins), its listeners and hosts a `Site`.
//! Every error names the file, line, column and key. Relative paths in the file are taken
//! from the file's directory, so a configuration means the same from wherever it is run.

use super::file::{FileConfig, FileError, HostSettings, Listing, PROCESS_KEYS, Source, flag_value};
use crate::files::normalize;
use crate::http::proxy::Net;
use crate::site::glob::Glob;
use crate::site::headers::{HeaderRule, check_field};
use crate::site::redirect::Redirect;
use crate::site::{HostSpec, ListenerRules, SiteSpec, StatusClass, TrailingSlash};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Connections on a `proxy_protocol` listener take the PROXY header: not yet (the parser
/// is in `http::proxy`, the shards' side is to come), so the key is refused rather than
/// accepted and ignored.
const PROXY_PROTOCOL_SERVED: bool = false;

/// The largest configuration file read: far past any real one, and a bound on what a
/// mistaken path (a log, a device) can make the server read.
const MAX_FILE: u64 = 1 << 20;

/// What the file says, ready for `Config`.
#[derive(Debug)]
pub struct Loaded {
    /// Flags and values from its process settings, `root` and default certificate.
    pub args: Vec<OsString>,
    /// Its `[[listen]]` tables: address, TLS, rules.
    pub listeners: Vec<(SocketAddr, bool, ListenerRules)>,
    /// Certificate and key pairs of its hosts, after the default host's (which are flags).
    pub certs: Vec<(PathBuf, PathBuf)>,
    pub site: std::sync::Arc<SiteSpec>,
}

/// Read and compile `path`; `check_flag` parses one flag and its value as the command line
/// would (the message of the refusal, if any).
pub fn load(path: &Path, check_flag: &dyn Fn(&str, &str) -> Result<(), String>) -> Result<Loaded, String> {
    use std::io::Read;
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text));
    match read {
        Err(e) => return Err(format!("{}: {e}; pass --config with a readable TOML file", path.display())),
        Ok(n) if n as u64 > MAX_FILE => return Err(format!("{}: larger than 1 MiB", path.display())),
        Ok(_) => {}
    }
    let source = Source { path, text: &text };
    let file = source.parse().map_err(|e| e.to_string())?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    compile(&source, &file, dir, check_flag).map_err(|e| e.to_string())
}

fn compile(
    source: &Source,
    file: &FileConfig,
    dir: &Path,
    check_flag: &dyn Fn(&str, &str) -> Result<(), String>,
) -> Result<Loaded, FileError> {
    let mut args = Vec::new();
    for (key, value) in file.process() {
        let flag = format!("--{}", key.replace('_', "-"));
        let Some(mut text) = flag_value(value.get_ref()) else {
            return Err(source.at(value, key, "expected a number or a string"));
        };
        if matches!(key, "pid_file" | "tls_cert_dir") || key == "access_log" && !matches!(text.as_str(), "-" | "off") {
            text = dir.join(&text).display().to_string();
        }
        check_flag(&flag, &text).map_err(|why| source.at(value, key, why))?;
        args.extend([OsString::from(flag), OsString::from(text)]);
    }
    debug_assert!(PROCESS_KEYS.len() == 20);
    if let Some(root) = &file.root {
        args.extend(["--root".into(), dir.join(root.get_ref()).into_os_string()]);
    }
    match (&file.tls_cert, &file.tls_key) {
        (Some(cert), Some(key)) => {
            for (flag, value) in [("--tls-cert", cert), ("--tls-key", key)] {
                args.extend([flag.into(), dir.join(value.get_ref()).into_os_string()]);
            }
        }
        (Some(only), None) | (None, Some(only)) => {
            return Err(source.at(only, "", "tls_cert and tls_key go together: give both, or neither"));
        }
        (None, None) => {}
    }
    let mut listeners = Vec::new();
    for table in &file.listen {
        let addr = table.address.get_ref();
        check_flag("--listen", addr).map_err(|why| source.at(&table.address, "address", why))?;
        let addr: SocketAddr = super::parse_listen(addr).map_err(|why| source.at(&table.address, "address", why))?;
        if listeners.iter().any(|&(a, _, _)| a == addr && addr.port() != 0) {
            return Err(source.at(&table.address, "address", "given to two listeners; each needs its own"));
        }
        let proxy_from = if table.proxy_protocol {
            if !table.proxy_from.is_empty() && !PROXY_PROTOCOL_SERVED {
                return Err(source.at(
                    &table.address,
                    "proxy_protocol",
                    "not served by this build yet: the PROXY header is parsed (src/http/proxy.rs) but connections \
                     do not take it; put the proxy's X-Forwarded-For aside, or leave proxy_protocol out",
                ));
            }
            if table.proxy_from.is_empty() {
                return Err(source.at(
                    &table.address,
                    "proxy_from",
                    "proxy_protocol = true needs proxy_from, the proxies' addresses or networks (e.g. \
                     [\"127.0.0.1\", \"10.0.0.0/8\"]): a PROXY header from anyone else is refused",
                ));
            }
            let nets =
                table.proxy_from.iter().map(|n| Net::parse(n.get_ref()).map_err(|e| source.at(n, "proxy_from", e)));
            Some(nets.collect::<Result<Vec<_>, _>>()?)
        } else {
            if let Some(first) = table.proxy_from.first() {
                return Err(source.at(first, "proxy_from", "given without proxy_protocol = true"));
            }
            None
        };
        if table.redirect_to_https && table.tls {
            return Err(source.at(&table.address, "redirect_to_https", "a TLS listener cannot redirect to itself"));
        }
        // Filled in below, once the TLS listeners are known.
        let redirect_to_https = table.redirect_to_https.then_some(0);
        listeners.push((addr, table.tls, ListenerRules { proxy_from, redirect_to_https }));
    }
    let https_port = listeners.iter().find(|(_, tls, _)| *tls).map(|(a, _, _)| a.port());
    for (i, (_, _, rules)) in listeners.iter_mut().enumerate() {
        if rules.redirect_to_https.is_some() {
            let Some(port) = https_port else {
                return Err(source.at(&file.listen[i].address, "redirect_to_https", "no TLS listener to redirect to"));
            };
            rules.redirect_to_https = Some(port);
        }
    }
    let root = file.root.as_ref().map_or_else(|| PathBuf::from("./html"), |r| dir.join(r.get_ref()));
    let mut hosts = vec![host(source, file.host(), Vec::new(), root.clone(), dir)?];
    let mut certs = Vec::new();
    for table in &file.host {
        let mut names = Vec::new();
        for name in table.names.get_ref() {
            names.push(host_name(name.get_ref()).map_err(|why| source.at(name, "names", why))?);
        }
        if names.is_empty() {
            return Err(source.at(&table.names, "names", "a [[host]] needs at least one name"));
        }
        for (name, earlier) in names.iter().zip(table.names.get_ref()) {
            if hosts.iter().any(|h| h.names.contains(name)) {
                return Err(source.at(earlier, "names", format!("{name} is a name of an earlier host")));
            }
        }
        let host_root = table.root.as_ref().map_or_else(|| root.clone(), |r| dir.join(r.get_ref()));
        hosts.push(host(source, table.host(), names, host_root, dir)?);
        match (&table.tls_cert, &table.tls_key) {
            (Some(cert), Some(key)) => certs.push((dir.join(cert.get_ref()), dir.join(key.get_ref()))),
            (Some(only), None) | (None, Some(only)) => {
                return Err(source.at(only, "", "tls_cert and tls_key go together: give both, or neither"));
            }
            (None, None) => {}
        }
    }
    Ok(Loaded { args, listeners, certs, site: std::sync::Arc::new(SiteSpec { hosts }) })
}

/// A host name as configured: lower case, a name or `*.` before one, no port.
fn host_name(name: &str) -> Result<String, String> {
    let name = name.to_ascii_lowercase();
    let bare = name.strip_prefix("*.").unwrap_or(&name);
    let label_ok =
        |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if bare.is_empty() || !bare.split('.').all(label_ok) {
        return Err(format!("{name:?} is not a host name; expected e.g. example.com or *.example.com"));
    }
    Ok(name)
}

/// A path beneath the root as configured (`/404.html`), normalised (`404.html`); one that
/// would leave the root, or is hidden, is refused.
fn local_path(spanned: &Spanned<String>, key: &str, source: &Source) -> Result<Box<[u8]>, FileError> {
    let text = spanned.get_ref();
    if !text.starts_with('/') || text.contains(['?', '#']) {
        return Err(source.at(spanned, key, "expected a path beneath the root, starting with / (e.g. /index.html)"));
    }
    let (mut decoded, mut path) = (Vec::new(), Vec::new());
    match normalize(text.as_bytes(), &mut decoded, &mut path) {
        Ok(t) if !t.trailing_slash => Ok(path.into()),
        Ok(_) => Err(source.at(spanned, key, "names a directory; name a file (e.g. /index.html)")),
        Err(_) => Err(source.at(spanned, key, "leaves the root or names a hidden file; name a file beneath the root")),
    }
}

fn host(
    source: &Source,
    h: HostSettings,
    names: Vec<String>,
    root: PathBuf,
    _dir: &Path,
) -> Result<HostSpec, FileError> {
    let mut spec = HostSpec::plain(root);
    spec.names = names;
    if let Some(index) = h.index {
        spec.index.clear();
        for name in index {
            let n = name.get_ref();
            if n.is_empty() || n.contains('/') || n.starts_with('.') {
                return Err(source.at(name, "index", "expected a file name such as index.html (no /, not hidden)"));
            }
            spec.index.push(n.as_bytes().into());
        }
    }
    spec.fallback = h.fallback.map(|f| local_path(f, "fallback", source)).transpose()?;
    spec.fallback_extensions = h.fallback_extensions;
    for (status, page) in h.error_pages {
        let Some(class) = StatusClass::parse(status) else {
            return Err(source.at(page, status, "expected a 4xx or 5xx status (404) or a hundred (50x) as the key"));
        };
        spec.error_pages.push((class, local_path(page, status, source)?));
    }
    spec.error_pages.sort_by_key(|(class, _)| matches!(class, StatusClass::Hundred(_)));
    if let Some(policy) = h.trailing_slash {
        spec.trailing_slash = TrailingSlash::parse(policy.get_ref())
            .ok_or_else(|| source.at(policy, "trailing_slash", format!("expected {}", TrailingSlash::NAMES)))?;
    }
    if let Some(listing) = h.listing {
        spec.listing = match listing.get_ref() {
            Listing::All(false) => Vec::new(),
            Listing::All(true) => vec![Glob::parse("/**").expect("a valid glob"), Glob::parse("/").expect("valid")],
            Listing::Paths(paths) => {
                let globs = paths.iter().map(|p| Glob::parse(p).map_err(|e| source.at(listing, "listing", e)));
                globs.collect::<Result<_, _>>()?
            }
        };
    }
    if h.security_headers {
        spec.headers = HeaderRule::security_preset();
    }
    for rule in h.headers {
        let glob = Glob::parse(rule.path.get_ref()).map_err(|e| source.at(&rule.path, "path", e))?;
        for (name, value) in &rule.set {
            check_field(name, Some(value.get_ref())).map_err(|e| source.at(value, name, e))?;
        }
        for name in &rule.remove {
            check_field(name.get_ref(), None).map_err(|e| source.at(name, "remove", e))?;
        }
        let set = rule.set.iter().map(|(n, v)| (n.clone(), v.get_ref().clone())).collect();
        let remove = rule.remove.iter().map(|n| n.get_ref().clone()).collect();
        let compiled = HeaderRule::new(glob, set, remove).map_err(|e| source.at(&rule.path, "headers", e))?;
        spec.headers.push(compiled);
    }
    for rule in h.redirects {
        let status = rule.status.as_ref().map_or(301, |s| *s.get_ref());
        let redirect = Redirect::new(rule.from.get_ref(), rule.to.get_ref(), status).map_err(|e| {
            let at = if e.contains("status") {
                rule.status.as_ref().map_or(rule.to.span(), |s| s.span())
            } else {
                rule.to.span()
            };
            source.error(at, "redirects", e)
        })?;
        spec.redirects.push(redirect);
    }
    Ok(spec)
}
