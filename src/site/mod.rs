//! A site: what the configuration file says about serving, compiled for the request path.
//! Virtual hosts (chosen by Host and SNI), per-path response headers, redirects, error
//! pages, fallbacks, index names and directory listings. No sockets, no unsafe.
#![forbid(unsafe_code)]

pub mod glob;
pub mod headers;
pub mod redirect;

use glob::Glob;
use headers::HeaderRule;
use redirect::Redirect;
use std::path::PathBuf;

/// What a directory without its trailing `/`, or a file with one, gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrailingSlash {
    /// `/docs` (a directory) is redirected to `/docs/` (301), as nginx does.
    #[default]
    Add,
    /// `/docs/` is redirected to `/docs` (301), which serves the directory's index.
    Remove,
    /// Both serve the directory's index; no redirect.
    Off,
}

impl TrailingSlash {
    pub const NAMES: &str = "add, remove or off";

    pub fn parse(s: &str) -> Option<TrailingSlash> {
        match s {
            "add" => Some(TrailingSlash::Add),
            "remove" => Some(TrailingSlash::Remove),
            "off" => Some(TrailingSlash::Off),
            _ => None,
        }
    }
}

/// Which statuses an error page is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    One(u16),
    /// `50x`: 500 to 599.
    Hundred(u16),
}

impl StatusClass {
    /// `404`, or `50x`/`4xx` for a hundred; only 4xx and 5xx statuses have pages.
    pub fn parse(s: &str) -> Option<StatusClass> {
        let b = s.as_bytes();
        let class = match b {
            [c @ (b'4' | b'5'), b'0', b'x'] | [c @ (b'4' | b'5'), b'x', b'x'] => {
                StatusClass::Hundred(u16::from(c - b'0') * 100)
            }
            _ => StatusClass::One(s.parse().ok().filter(|n| (400..600).contains(n))?),
        };
        Some(class)
    }

    pub fn contains(self, status: u16) -> bool {
        match self {
            StatusClass::One(s) => s == status,
            StatusClass::Hundred(h) => (h..h + 100).contains(&status),
        }
    }
}

/// One host as configured, compiled: every path in it is a normalised path beneath its
/// root (no leading `/`), checked at load.
#[derive(Debug)]
pub struct HostSpec {
    /// Lower-case exact names and `*.suffix` wildcards; empty for the default host.
    pub names: Vec<String>,
    pub root: PathBuf,
    pub index: Vec<Box<[u8]>>,
    pub fallback: Option<Box<[u8]>>,
    pub fallback_extensions: bool,
    /// Searched in order: exact statuses first (`StatusClass::One` sorts first).
    pub error_pages: Vec<(StatusClass, Box<[u8]>)>,
    pub trailing_slash: TrailingSlash,
    /// Paths a directory listing is given for (none: no listing).
    pub listing: Vec<Glob>,
    pub headers: Vec<HeaderRule>,
    pub redirects: Vec<Redirect>,
}

/// The names index.html a directory is served by when none are configured.
pub const DEFAULT_INDEX: &[u8] = b"index.html";

impl HostSpec {
    /// The host a flag-only server has: everything as before the configuration file.
    pub fn plain(root: PathBuf) -> HostSpec {
        HostSpec {
            names: Vec::new(),
            root,
            index: vec![DEFAULT_INDEX.into()],
            fallback: None,
            fallback_extensions: false,
            error_pages: Vec::new(),
            trailing_slash: TrailingSlash::Add,
            listing: Vec::new(),
            headers: Vec::new(),
            redirects: Vec::new(),
        }
    }

    /// Whether `name` (lower case, no port) is one of this host's exact names, or (with
    /// `wildcard`) falls under one of its `*.suffix` names.
    pub fn serves(&self, name: &[u8], wildcard: bool) -> bool {
        self.names.iter().any(|n| match n.strip_prefix('*') {
            Some(suffix) => wildcard && name.len() > suffix.len() && name.ends_with(suffix.as_bytes()),
            None => n.as_bytes() == name,
        })
    }

    /// Nothing configured beyond the root: requests take exactly the path they took
    /// before the configuration file existed.
    pub fn is_plain(&self) -> bool {
        self.index.len() == 1
            && *self.index[0] == *DEFAULT_INDEX
            && self.fallback.is_none()
            && self.error_pages.is_empty()
            && self.trailing_slash == TrailingSlash::Add
            && self.listing.is_empty()
            && self.headers.is_empty()
            && self.redirects.is_empty()
    }
}

/// A listener's own rule beyond plain or TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerRules {
    /// Connections begin with a PROXY header, taken only from these peers.
    pub proxy_from: Option<Vec<crate::http::proxy::Net>>,
    /// Every request gets a redirect to https on the same host (and `https_port` when it
    /// is not 443).
    pub redirect_to_https: Option<u16>,
}

/// Every host, the default one first.
#[derive(Debug)]
pub struct SiteSpec {
    pub hosts: Vec<HostSpec>,
}

impl SiteSpec {
    /// The host for a Host field's or SNI's name (lower case, no port): the first whose
    /// names hold it, else the default (0).
    /// An exact name wins over a wildcard, as in nginx.
    pub fn host_for(&self, name: &[u8]) -> usize {
        let find = |wildcard| self.hosts.iter().position(|h| h.serves(name, wildcard));
        find(false).or_else(|| find(true)).unwrap_or(0)
    }

    /// Only the default host, with nothing configured for it.
    pub fn is_plain(&self) -> bool {
        self.hosts.len() == 1 && self.hosts[0].is_plain()
    }
}

/// A site at serving time, in one shard: the hosts as configured, the roots and file
/// caches of the hosts beyond the default one (whose are the shard's own), and each
/// listener's rules by listener number.
pub struct Site {
    pub spec: std::sync::Arc<SiteSpec>,
    pub extra: Vec<(crate::files::Root, crate::files::Cache)>,
    pub listeners: Vec<ListenerRules>,
    pub scratch: Scratch,
}

/// Buffers an answer builds in, kept between requests.
#[derive(Default)]
pub struct Scratch {
    /// The Host field's name.
    pub name: Vec<u8>,
    /// The request's path with its leading `/`, as rules see it.
    pub path: Vec<u8>,
    pub location: Vec<u8>,
    pub captures: Vec<std::ops::Range<usize>>,
    /// An edited head, a listing's body.
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

impl Site {
    /// Open every host's root but the default one's; each host's cache gets `cache_bytes`.
    pub fn open(
        spec: std::sync::Arc<SiteSpec>,
        listeners: Vec<ListenerRules>,
        cache_bytes: usize,
    ) -> std::io::Result<Site> {
        let mut extra = Vec::new();
        for host in &spec.hosts[1..] {
            let root = crate::files::Root::open(&host.root).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("the root of host {}: {}: {e}", host.names[0], host.root.display()),
                )
            })?;
            extra.push((root, crate::files::Cache::new(1024, cache_bytes)));
        }
        Ok(Site { spec, extra, listeners, scratch: Scratch::default() })
    }
}

/// What a request's answer depends on of its connection, beyond the request: set by the
/// lifecycle before each read is parsed, and only when there is a `Site`.
#[derive(Default, Debug)]
pub struct Via {
    pub tls: bool,
    pub listener: usize,
    /// The name the TLS client asked for (SNI), lower case; empty if none.
    pub sni: Vec<u8>,
}
