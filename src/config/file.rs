//! The configuration file (`--config FILE`, TOML): its shape, and its errors with file,
//! line, column and key. The top level holds the process settings (each the value of the
//! flag of the same name, which wins when given too), the listeners, and the default
//! host's settings; `[[host]]` tables add virtual hosts with the same settings.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Settings a host has, the default one (top level) and each `[[host]]` alike: written once
/// here for both tables.
macro_rules! host_table {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
            /// Directory served.
            pub root: Option<Spanned<String>>,
            /// Names tried, in order, for a path ending in `/`.
            pub index: Option<Vec<Spanned<String>>>,
            /// A path that is no file gets this file, with 200 (a single-page app).
            pub fallback: Option<Spanned<String>>,
            /// The fallback is given to paths whose last segment has an extension too.
            #[serde(default)]
            pub fallback_extensions: bool,
            /// Status (`404`, or `50x` for 500 to 599) to a page beneath the root.
            #[serde(default)]
            pub error_pages: BTreeMap<String, Spanned<String>>,
            /// `add` (a directory without its `/` is redirected to it), `remove` or `off`.
            pub trailing_slash: Option<Spanned<String>>,
            /// Directory listings: `true` everywhere, or path globs.
            pub listing: Option<Spanned<Listing>>,
            #[serde(default)]
            pub security_headers: bool,
            #[serde(default)]
            pub headers: Vec<HeaderTable>,
            #[serde(default)]
            pub redirects: Vec<RedirectTable>,
        }

        impl $name {
            pub fn host(&self) -> HostSettings<'_> {
                HostSettings {
                    root: self.root.as_ref(),
                    index: self.index.as_deref(),
                    fallback: self.fallback.as_ref(),
                    fallback_extensions: self.fallback_extensions,
                    error_pages: &self.error_pages,
                    trailing_slash: self.trailing_slash.as_ref(),
                    listing: self.listing.as_ref(),
                    security_headers: self.security_headers,
                    headers: &self.headers,
                    redirects: &self.redirects,
                }
            }
        }
    };
}

/// One host's settings, from either table.
#[derive(Clone, Copy)]
pub struct HostSettings<'a> {
    pub root: Option<&'a Spanned<String>>,
    pub index: Option<&'a [Spanned<String>]>,
    pub fallback: Option<&'a Spanned<String>>,
    pub fallback_extensions: bool,
    pub error_pages: &'a BTreeMap<String, Spanned<String>>,
    pub trailing_slash: Option<&'a Spanned<String>>,
    pub listing: Option<&'a Spanned<Listing>>,
    pub security_headers: bool,
    pub headers: &'a [HeaderTable],
    pub redirects: &'a [RedirectTable],
}

/// The process settings, each the value of the flag of the same name (`_` for `-`): a
/// number or a string, checked by the flag's own parser.
macro_rules! process_keys {
    ($($key:ident),*) => {
        /// The file's process settings' names, for the message naming an unknown key.
        pub const PROCESS_KEYS: &[&str] = &[$(stringify!($key)),*];

        impl FileConfig {
            /// Each process setting given: its key and value.
            pub fn process(&self) -> Vec<(&'static str, &Spanned<toml::Value>)> {
                [$((stringify!($key), self.$key.as_ref())),*]
                    .into_iter()
                    .filter_map(|(key, value)| Some((key, value?)))
                    .collect()
            }
        }
    };
}

process_keys!(
    shards,
    backend,
    cpu_affinity,
    max_request_line,
    max_header_bytes,
    max_headers,
    max_body,
    keepalive_timeout,
    request_timeout,
    send_timeout,
    shutdown_timeout,
    target_conns,
    uring_buffers,
    access_log,
    access_log_format,
    status_listen,
    pid_file,
    user,
    group,
    tls_cert_dir
);

host_table! {
    /// The whole file.
    pub struct FileConfig {
        pub shards: Option<Spanned<toml::Value>>,
        pub backend: Option<Spanned<toml::Value>>,
        pub cpu_affinity: Option<Spanned<toml::Value>>,
        pub max_request_line: Option<Spanned<toml::Value>>,
        pub max_header_bytes: Option<Spanned<toml::Value>>,
        pub max_headers: Option<Spanned<toml::Value>>,
        pub max_body: Option<Spanned<toml::Value>>,
        pub keepalive_timeout: Option<Spanned<toml::Value>>,
        pub request_timeout: Option<Spanned<toml::Value>>,
        pub send_timeout: Option<Spanned<toml::Value>>,
        pub shutdown_timeout: Option<Spanned<toml::Value>>,
        pub target_conns: Option<Spanned<toml::Value>>,
        pub uring_buffers: Option<Spanned<toml::Value>>,
        pub access_log: Option<Spanned<toml::Value>>,
        pub access_log_format: Option<Spanned<toml::Value>>,
        pub status_listen: Option<Spanned<toml::Value>>,
        pub pid_file: Option<Spanned<toml::Value>>,
        pub user: Option<Spanned<toml::Value>>,
        pub group: Option<Spanned<toml::Value>>,
        pub tls_cert_dir: Option<Spanned<toml::Value>>,
        #[serde(default)]
        pub listen: Vec<ListenTable>,
        #[serde(default)]
        pub host: Vec<HostTable>,
        /// The default host's certificate (SNI default), a chain and its key.
        pub tls_cert: Option<Spanned<String>>,
        pub tls_key: Option<Spanned<String>>,
    }
}

host_table! {
    /// A virtual host.
    pub struct HostTable {
        /// Exact names and `*.suffix` wildcards, matched against Host and SNI.
        pub names: Spanned<Vec<Spanned<String>>>,
        pub tls_cert: Option<Spanned<String>>,
        pub tls_key: Option<Spanned<String>>,
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ListenTable {
    pub address: Spanned<String>,
    #[serde(default)]
    pub tls: bool,
    /// Connections start with a PROXY header (v1 or v2) naming the client.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// The peers a PROXY header is taken from (addresses or networks).
    #[serde(default)]
    pub proxy_from: Vec<Spanned<String>>,
    /// Every request is answered with a redirect to the same URL over HTTPS.
    #[serde(default)]
    pub redirect_to_https: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct HeaderTable {
    /// A path glob (`/assets/**`, `*.woff2`).
    pub path: Spanned<String>,
    #[serde(default)]
    pub set: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub remove: Vec<Spanned<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RedirectTable {
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    pub status: Option<Spanned<u16>>,
}

/// `listing = true` (or `false`), or a list of path globs.
#[derive(Debug, Clone)]
pub enum Listing {
    All(bool),
    Paths(Vec<String>),
}

impl<'de> Deserialize<'de> for Listing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Listing, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Listing;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or a list of path globs such as [\"/downloads/**\"]")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Listing, E> {
                Ok(Listing::All(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Listing, A::Error> {
                let mut paths = Vec::new();
                while let Some(p) = seq.next_element::<String>()? {
                    paths.push(p);
                }
                Ok(Listing::Paths(paths))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A configuration error: where (file, line and column from 1, the key) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The file's text and name, to place errors.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// An error at `span` (bytes of the text) about `key` (found from the line when empty).
    pub fn error(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> FileError {
        let at = span.start.min(self.text.len());
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.text[line_start..at].chars().count() + 1;
        let key = if key.is_empty() { self.key_at(line_start) } else { key.to_string() };
        FileError { file: self.path.to_path_buf(), line, column, key, message: message.into() }
    }

    /// The key of the `key = value` line starting at `line_start`, or the table of a header
    /// line, or nothing.
    fn key_at(&self, line_start: usize) -> String {
        let line = self.text[line_start..].lines().next().unwrap_or_default().trim();
        if let Some((key, _)) = line.split_once('=') {
            return key.trim().trim_matches('"').to_string();
        }
        line.trim_matches(['[', ']']).trim().to_string()
    }

    pub fn at<T>(&self, spanned: &Spanned<T>, key: &str, message: impl Into<String>) -> FileError {
        self.error(spanned.span(), key, message)
    }

    /// Parse the text into the file's shape: TOML syntax, unknown keys and wrong types are
    /// errors here.
    pub fn parse(&self) -> Result<FileConfig, FileError> {
        let config: FileConfig = toml::from_str(self.text).map_err(|e| {
            let message = e.message().trim().to_string();
            self.error(e.span().unwrap_or(0..0), "", message)
        })?;
        Ok(config)
    }
}

/// A process setting's value as its flag takes it: a number or a string.
pub fn flag_value(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}
