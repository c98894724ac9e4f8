//! Command line and configuration file → `Config`, validated before anything starts.

#![forbid(unsafe_code)]

mod describe;
pub mod file;
pub mod load;
mod values;

use values::*;
pub use values::{CpuAffinity, DEFAULT_LISTEN};

use crate::access::LogFormat;
use crate::driver::Backend;
use clap::{ArgAction, Parser};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "c10k-server",
    version,
    about = "A sharded static-file HTTP/1.1 server, over HTTPS too (--tls-listen)",
    allow_negative_numbers = true,
    // A flag given again overrides the earlier one: `make run ARGS="--listen …"` works.
    args_override_self = true
)]
pub struct Config {
    /// Address to listen on for plain HTTP (a host name is resolved, its first address
    /// used); port 0 picks a free port (the address chosen is printed) [default:
    /// 0.0.0.0:8080, unless --tls-listen is given: then none]
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,

    /// Address to listen on for HTTPS, as --listen; repeat it for more
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen, action = ArgAction::Append)]
    pub tls_listen: Vec<SocketAddr>,

    /// A certificate chain (PEM) for HTTPS, with the --tls-key given in the same place; repeat
    /// both for more (chosen by the name the client asks for, SNI); the first is the default
    #[arg(long, value_name = "PEM", action = ArgAction::Append)]
    pub tls_cert: Vec<PathBuf>,

    /// The private key (PEM) of the --tls-cert given in the same place
    #[arg(long, value_name = "PEM", action = ArgAction::Append)]
    pub tls_key: Vec<PathBuf>,

    /// A directory of more certificates and their keys for HTTPS, chosen by SNI
    #[arg(long, value_name = "DIR")]
    pub tls_cert_dir: Option<PathBuf>,

    /// Directory to serve
    #[arg(long, value_name = "DIR", default_value = "./html")]
    pub root: PathBuf,

    /// Worker processes, one per core [default: number of CPUs]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub shards: Option<usize>,

    /// I/O backend
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,

    /// Pin shard N to a core: `auto` (core N mod CPUs), `off` (the scheduler moves them,
    /// better when clients or other servers share the cores), or a list (`0,2,4-7`: shard N
    /// on its N-th entry, mod the list's length)
    #[arg(long, value_name = "auto|off|LIST", default_value = "auto", value_parser = parse_affinity)]
    pub cpu_affinity: CpuAffinity,

    /// Longest request line, in bytes; k, m or g multiply by 1024s, as in 8k (414 beyond)
    #[arg(long, value_name = "BYTES", default_value_t = 8192, value_parser = parse_request_line)]
    pub max_request_line: usize,

    /// Largest header section, in bytes; k, m or g multiply by 1024s, as in 16k (431 beyond)
    #[arg(long, value_name = "BYTES", default_value_t = 16384, value_parser = parse_header_bytes)]
    pub max_header_bytes: usize,

    /// Most header fields in one request (431 beyond)
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = parse_headers)]
    pub max_headers: usize,

    /// Largest request body read and discarded, in bytes; k, m or g multiply by 1024s, as
    /// in 1m (413 beyond)
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, value_parser = parse_bytes)]
    pub max_body: u64,

    /// Seconds an idle keep-alive connection is kept
    #[arg(long, value_name = "SECS", default_value_t = 75, value_parser = parse_seconds)]
    pub keepalive_timeout: u64,

    /// Seconds a started request may take to arrive (408 beyond)
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = parse_seconds)]
    pub request_timeout: u64,

    /// Seconds a response may make no progress (the client reads none of it) before the
    /// connection is dropped; a client that keeps reading, however slowly, is never cut
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = parse_seconds)]
    pub send_timeout: u64,

    /// Seconds a graceful stop (SIGTERM, SIGINT) or the old generation of a reload (SIGHUP)
    /// may take to finish the responses in flight; what is left then is closed
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = parse_seconds)]
    pub shutdown_timeout: u64,

    /// Connections this server must be able to hold; refuse to start if the host's limits
    /// (RLIMIT_NOFILE, fs.file-max, memory) cannot, naming the limit and its fix
    #[arg(long, value_name = "N", value_parser = parse_target)]
    pub target_conns: Option<usize>,

    /// io_uring provided receive buffers (4 KiB each) per shard, a power of two up to
    /// 32768 [default: one per 64 connections, 64 to 256]
    #[arg(long, value_name = "N", value_parser = parse_buffers)]
    pub uring_buffers: Option<u16>,

    /// Log every response to PATH (appended; `-` is stdout; `off` logs nothing); SIGUSR1
    /// to the master reopens it, after logrotate moved it
    #[arg(long, value_name = "PATH|-|off", default_value = "off")]
    pub access_log: String,

    /// Access log lines: nginx's combined format plus the response time in µs and the
    /// shard, or one JSON object a line
    #[arg(long, value_enum, default_value_t = LogFormat::Combined)]
    pub access_log_format: LogFormat,

    /// Serve /metrics (Prometheus), /status (JSON, or HTML for a browser) and /healthz
    /// from the master on this address (off by default)
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen)]
    pub status_listen: Option<SocketAddr>,

    /// Write the master's pid to PATH once it listens, and remove it at exit (for
    /// logrotate's `kill -USR1 $(cat PATH)` and init scripts)
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<std::path::PathBuf>,

    /// Read settings, listeners and virtual hosts from FILE (TOML; see the README's
    /// configuration reference); flags given too win over the file
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check the configuration (file, flags, roots, certificates), print the effective
    /// configuration and exit: 0 when it is valid, 1 with the error when not
    #[arg(long)]
    pub check_config: bool,

    /// Run the shards as this user (the master binds, loads keys and opens roots first)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Run the shards with this group [default: the --user's primary group]
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,

    /// What the configuration file says (none without --config).
    #[arg(skip)]
    pub file: Option<std::sync::Arc<load::Loaded>>,

    /// Run as worker N of a master (internal)
    #[arg(long, hide = true, value_name = "N")]
    pub worker: Option<usize>,
}

impl Config {
    /// Parse the process arguments (and the configuration file they name); on a bad one,
    /// or flags that do not go together, print one line and exit 2 (1 for the file).
    pub fn from_args() -> Config {
        match Config::from_argv(std::env::args_os().collect()) {
            Ok(config) => config,
            Err(Refusal::Help(e)) => e.exit(),
            Err(Refusal::Flags(why)) => {
                eprintln!("c10k-server: {why}");
                std::process::exit(2);
            }
            Err(Refusal::File(why)) => {
                eprintln!("c10k-server: {why}");
                std::process::exit(1);
            }
        }
    }

    /// Parse `argv` (the program's name first), reading the configuration file it names:
    /// the file's settings go before the command line's flags, so those win.
    pub fn from_argv(argv: Vec<std::ffi::OsString>) -> Result<Config, Refusal> {
        let flags = |e: clap::Error| match e.use_stderr() {
            true => Refusal::Flags(format!("{} (see c10k-server --help)", one_line(&e))),
            false => Refusal::Help(e),
        };
        let mut config = Config::try_parse_from(&argv).map_err(flags)?;
        if let Some(path) = config.config.clone() {
            let check = |flag: &str, value: &str| {
                Config::try_parse_from(["c10k-server", flag, value]).map(drop).map_err(|e| one_line(&e))
            };
            let loaded = load::load(&path, &check).map_err(Refusal::File)?;
            let mut with_file = argv[..1].to_vec();
            with_file.extend(loaded.args.iter().cloned());
            with_file.extend(argv[1..].iter().cloned());
            config = Config::try_parse_from(with_file).map_err(flags)?;
            config.file = Some(std::sync::Arc::new(loaded));
        }
        config.check().map_err(|why| match config.config.is_some() {
            true => Refusal::File(format!(
                "{}: {why}",
                config.config.as_ref().map_or_else(String::new, |p| p.display().to_string())
            )),
            false => Refusal::Flags(why),
        })?;
        Ok(config)
    }

    /// Whether the flags go together; why not, and what to do, if not.
    pub fn check(&self) -> Result<(), String> {
        let (certs, keys) = (self.tls_cert.len(), self.tls_key.len());
        if certs != keys {
            return Err(format!(
                "{certs} --tls-cert and {keys} --tls-key: pass one --tls-key for each --tls-cert, the Nth key for \
                 the Nth certificate"
            ));
        }
        let file_certs = self.file.as_ref().is_some_and(|f| !f.certs.is_empty());
        let has_certs = certs > 0 || self.tls_cert_dir.is_some() || file_certs;
        if self.has_tls() && !has_certs {
            let listener = if self.tls_listen.is_empty() { "a listener with tls = true" } else { "--tls-listen" };
            return Err(format!(
                "{listener} needs a certificate: pass --tls-cert PEM --tls-key PEM, or --tls-cert-dir DIR (tls_cert \
                 and tls_key in the configuration file)"
            ));
        }
        if !self.has_tls() && has_certs {
            let flag = if certs > 0 { "--tls-cert" } else { "--tls-cert-dir" };
            return Err(format!("{flag} without --tls-listen: pass --tls-listen ADDR:PORT to serve HTTPS"));
        }
        let listeners = self.listeners();
        for (i, &(addr, _)) in listeners.iter().enumerate() {
            // Port 0 is a new port for each.
            let earlier = listeners[..i].iter().find(|&&(other, _)| other == addr && addr.port() != 0);
            if let Some(&(_, earlier_tls)) = earlier {
                let flags = if earlier_tls { "--tls-listen twice" } else { "--listen and --tls-listen" };
                return Err(format!("{addr} is given to {flags}: give each listener an address of its own"));
            }
        }
        Ok(())
    }

    /// Every listener a shard has, in the order of its listener numbers: the plain one
    /// first (if any), then the TLS ones as given; `true` for TLS. The configuration
    /// file's `[[listen]]` tables, in their order, unless --listen or --tls-listen is given.
    pub fn listeners(&self) -> Vec<(SocketAddr, bool)> {
        self.listener_rules().into_iter().map(|(addr, tls, _)| (addr, tls)).collect()
    }

    /// `listeners`, each with its rules (PROXY protocol, redirect to HTTPS).
    pub fn listener_rules(&self) -> Vec<(SocketAddr, bool, crate::site::ListenerRules)> {
        let flags_name_none = self.listen.is_none() && self.tls_listen.is_empty();
        if let Some(file) = self.file.as_ref().filter(|f| flags_name_none && !f.listeners.is_empty()) {
            return file.listeners.clone();
        }
        let plain = match (self.listen, self.tls_listen.is_empty()) {
            (Some(addr), _) => Some(addr),
            // nginx's way: HTTPS alone unless a plain address is asked for too.
            (None, true) => Some(DEFAULT_LISTEN),
            (None, false) => None,
        };
        let tls = self.tls_listen.iter().map(|&addr| (addr, true));
        let rules = crate::site::ListenerRules::default;
        plain.map(|addr| (addr, false)).into_iter().chain(tls).map(|(addr, tls)| (addr, tls, rules())).collect()
    }

    /// Where the certificates come from: the --tls-cert/--tls-key pairs in order, and the
    /// --tls-cert-dir.
    pub fn cert_sources(&self) -> crate::tls::CertSources {
        crate::tls::CertSources {
            pairs: (self.tls_cert.iter().cloned().zip(self.tls_key.iter().cloned()))
                .chain(self.file.iter().flat_map(|f| f.certs.iter().cloned()))
                .collect(),
            dir: self.tls_cert_dir.clone(),
        }
    }

    /// Some listener is TLS.
    pub fn has_tls(&self) -> bool {
        self.listeners().iter().any(|&(_, tls)| tls)
    }

    /// The hosts, the default one first (it serves --root, whatever its `root` says);
    /// `None` when the server has only the default host with nothing configured for it,
    /// which serves as it always did.
    pub fn site(&self) -> Option<&std::sync::Arc<crate::site::SiteSpec>> {
        self.file.as_ref().map(|f| &f.site).filter(|site| !site.is_plain())
    }

    /// The site a shard serves with: its hosts' roots opened and each listener's rules;
    /// `None` for a server with nothing configured beyond the flags' root and listeners.
    pub fn open_site(&self) -> std::io::Result<Option<crate::site::Site>> {
        let rules: Vec<_> = self.listener_rules().into_iter().map(|(_, _, rules)| rules).collect();
        let any_rules = rules.iter().any(|r| *r != crate::site::ListenerRules::default());
        let spec = match (&self.file, self.site()) {
            (_, Some(site)) => std::sync::Arc::clone(site),
            (Some(file), None) if any_rules => std::sync::Arc::clone(&file.site),
            _ => return Ok(None),
        };
        crate::site::Site::open(spec, rules, 16 << 20).map(Some)
    }

    pub fn shard_count(&self) -> usize {
        self.shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn timeouts(&self) -> crate::lifecycle::Timeouts {
        crate::lifecycle::Timeouts {
            keepalive: self.keepalive_timeout * 1000,
            request: self.request_timeout * 1000,
            send: self.send_timeout * 1000,
            ..crate::lifecycle::Timeouts::default()
        }
    }

    pub fn limits(&self) -> crate::http::Limits {
        crate::http::Limits {
            max_request_line: self.max_request_line,
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            max_body: self.max_body,
        }
    }
}

/// Why the arguments were refused.
#[derive(Debug)]
pub enum Refusal {
    /// --help or --version: clap prints it.
    Help(clap::Error),
    /// A bad flag, or flags that do not go together: the line to print.
    Flags(String),
    /// The configuration file: file:line:column, key and why.
    File(String),
}

/// A clap error as one line: its message, and the accepted values when it lists them.
fn one_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    if let Some(values) = lines.find(|l| l.starts_with("[possible values:")) {
        line = format!("{line}; {}", values.trim_matches(['[', ']']));
    }
    line
}

#[cfg(test)]
mod tests;
