//! Flags, and their validation into a [`Config`]: the target (every `--url` must share one
//! `host:port`), the prebuilt request bytes, the source addresses and the run's shape.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::tls::{Kx, TlsSettings};

/// Closed- and open-loop HTTP/1.1 load generator: keep-alive connections, pipelining, a held
/// population of idle connections, HDR latency percentiles, every response checked.
#[derive(Parser, Debug, Clone)]
#[command(name = "c10k-load", version)]
pub struct Args {
    /// http://HOST:PORT/PATH to request; repeat it to rotate over several paths (one host:port)
    #[arg(long = "url", value_name = "URL", required = true)]
    pub urls: Vec<String>,
    /// Active keep-alive connections, each keeping --pipeline requests in flight
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub conns: usize,
    /// Extra connections that send one request, read the answer, then stay open and silent;
    /// they are all opened first, and the active connections start once they are
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub idle: usize,
    /// How long the idle connections may take to open before the load starts without the
    /// rest (the run then fails): seconds, or with a unit
    #[arg(long = "idle-timeout", value_name = "S", default_value = "60")]
    pub idle_timeout: String,
    /// Start the active connections at once, while the idle ones still open (the measured
    /// window then includes the ramp)
    #[arg(long = "load-during-ramp")]
    pub load_during_ramp: bool,
    /// Requests in flight per active connection
    #[arg(long, value_name = "D", default_value_t = 1)]
    pub pipeline: usize,
    /// Total requests per second, open loop (latency from the intended send time); without it,
    /// closed loop
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// How long to run the load, once the idle connections are open (and the --warmup is
    /// over): seconds, or with a unit (500ms, 10s, 2m)
    #[arg(long, value_name = "S", default_value = "10")]
    pub duration: String,
    /// Threads per process, each its own epoll loop and share of the connections
    #[arg(long, value_name = "T", default_value_t = 1)]
    pub threads: usize,
    /// Worker processes (past one process's fd limit), each a share of conns, idle and rate
    #[arg(long, value_name = "P", default_value_t = 1)]
    pub procs: usize,
    /// Source addresses to bind, round-robin: A-B ranges and single addresses, comma-separated
    #[arg(long = "source-ips", value_name = "RANGE")]
    pub source_ips: Option<String>,
    /// A request unanswered this long counts as a timeout and its connection is replaced
    #[arg(long, value_name = "S", default_value = "5")]
    pub timeout: String,
    /// Every response body must be exactly N bytes
    #[arg(long = "expect-bytes", value_name = "N")]
    pub expect_bytes: Option<u64>,
    /// Each request on a fresh connection: the client closes it once the answer arrived and
    /// connects again (the latency then counts the connect, and with --tls the handshake)
    #[arg(long = "new-conn")]
    pub new_conn: bool,
    /// Speak TLS (rustls, ALPN http/1.1) to the --url's host:port, which stays http://. The
    /// client offers TLS 1.3 and 1.2 with AES-128-GCM first, then AES-256-GCM, then
    /// ChaCha20-Poly1305, so a server that follows the client's order (OpenSSL's default)
    /// agrees on the suite a server preferring AES-128-GCM (rustls') picks; groups: --tls-kx
    #[arg(long)]
    pub tls: bool,
    /// With --tls: verify the server's certificate against the CA certificates in this PEM
    /// file (without it, any certificate is accepted)
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// With --tls: the server name to send and verify (default: the --url's host, or
    /// localhost when that is an IP address)
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// With --tls: reconnections resume an earlier session (each thread keeps what its server
    /// sent it, at most 8 TLS 1.3 tickets: past 8 connections of a thread reconnecting at
    /// once, the rest do full handshakes); without it every handshake is a full one
    #[arg(long = "tls-resume")]
    pub tls_resume: bool,
    /// With --tls: the key exchange groups offered. default: rustls' (X25519MLKEM768 first,
    /// as browsers offer; a server on OpenSSL 3.0 cannot do it and takes X25519); x25519 or
    /// p256: that group alone, so every server does the same key exchange
    #[arg(long = "tls-kx", value_name = "GROUPS", value_enum)]
    pub tls_kx: Option<Kx>,
    /// Open every active connection before the load, as the idle ones are (its connect, its
    /// TLS handshake and one request, not counted), then run the load S seconds more, not
    /// measured, before --duration's window: nothing sent before the window counts. 0: only
    /// the opening; with --new-conn (no connection is kept) only the S seconds
    #[arg(long, value_name = "S")]
    pub warmup: Option<String>,
    /// Also write the results as one JSON object to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Internal: run as worker I of a --procs run, reporting on stdout
    #[arg(long, value_name = "I", hide = true)]
    pub worker: Option<usize>,
}

/// A validated run.
#[derive(Debug, Clone)]
pub struct Config {
    pub args: Args,
    pub addr: SocketAddr,
    /// One prebuilt `GET` request per `--url`, in order.
    pub requests: Vec<Vec<u8>>,
    pub conns: usize,
    pub idle: usize,
    pub pipeline: usize,
    pub rate: Option<f64>,
    pub duration: Duration,
    pub idle_timeout: Duration,
    pub load_during_ramp: bool,
    pub threads: usize,
    pub procs: usize,
    pub sources: Vec<IpAddr>,
    pub timeout: Duration,
    pub expect_bytes: Option<u64>,
    pub worker: Option<usize>,
    pub new_conn: bool,
    /// `--warmup`: the unmeasured load before `duration` (`None`: no warm-up).
    pub warmup: Option<Duration>,
    /// `--warmup` without `--new-conn`: the active connections open (and answer one request)
    /// before the load, as the idle ones do.
    pub open_first: bool,
    /// `None`: plain TCP.
    pub tls: Option<TlsSettings>,
}

/// Where a URL points and what to put in its request.
#[derive(Debug, PartialEq)]
pub struct Url {
    /// `host:port` as written (the `Host` header, and what is resolved).
    pub authority: String,
    pub host: String,
    pub port: u16,
    pub path: String,
}

pub fn parse_url(url: &str) -> Result<Url, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        if let Some(rest) = url.strip_prefix("https://") {
            format!("--url {url}: write it as http://{rest} and add --tls")
        } else {
            format!("--url {url}: expected http://HOST:PORT/PATH")
        }
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!("--url {url}: the path may not contain spaces or control characters"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| format!("--url {url}: unclosed [ in the host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains('@') {
        return Err(format!("--url {url}: missing or unsupported host"));
    }
    let port = match port {
        None => 80,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("--url {url}: bad port {p:?}"))?,
    };
    let path = path.split('#').next().unwrap_or("/").to_string();
    Ok(Url { authority: authority.to_string(), host: host.to_string(), port, path })
}

/// `1.5`, `1500ms`, `10s`, `2m` → a positive duration.
pub fn parse_duration(flag: &str, s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale < 1e9 => Ok(Duration::from_secs_f64(v * scale)),
        _ => Err(format!("{flag} {s}: expected a positive number of seconds (or 500ms, 10s, 2m)")),
    }
}

/// `--warmup`: [`parse_duration`]'s, or none at all (`0`, `0s`, `0ms`).
pub fn parse_warmup(s: &str) -> Result<Duration, String> {
    let num = s.strip_suffix("ms").or_else(|| s.strip_suffix(['s', 'm'])).unwrap_or(s);
    if num.trim().parse::<f64>().is_ok_and(|v| v == 0.0) {
        return Ok(Duration::ZERO);
    }
    parse_duration("--warmup", s).map_err(|e| e.replace("a positive number", "a number"))
}

/// `127.0.0.2-127.0.0.40,10.0.0.1` → every address, in order (IPv4 ranges; IPv6 singly).
pub fn parse_sources(s: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("--source-ips {s}: {part:?} is not an address or an A-B range of IPv4 addresses");
        if let Some((a, b)) = part.split_once('-') {
            let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
            let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a {
                return Err(format!("--source-ips {s}: the range {part} ends before it starts"));
            }
            if b - a >= 1 << 16 {
                return Err(format!("--source-ips {s}: the range {part} is longer than 65536 addresses"));
            }
            out.extend((a..=b).map(|v| IpAddr::V4(Ipv4Addr::from(v))));
        } else {
            out.push(part.parse::<IpAddr>().map_err(|_| bad())?);
        }
    }
    if out.is_empty() {
        return Err(format!("--source-ips {s}: no addresses"));
    }
    Ok(out)
}

/// The `GET` sent for `path`.
pub fn request_bytes(path: &str, authority: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: c10k-load\r\n\r\n").into_bytes()
}

impl Config {
    /// Validate `args`; the error is one line for the user (exit 2).
    pub fn from_args(args: Args) -> Result<Config, String> {
        let urls = args.urls.iter().map(|u| parse_url(u)).collect::<Result<Vec<_>, _>>()?;
        let first = &urls[0];
        if let Some(other) = urls.iter().find(|u| (&u.host, u.port) != (&first.host, first.port)) {
            return Err(format!(
                "every --url must share one host:port, but {}:{} differs from {}:{}",
                other.host, other.port, first.host, first.port
            ));
        }
        let sources = args.source_ips.as_deref().map(parse_sources).transpose()?.unwrap_or_default();
        let want_v6 = sources.first().is_some_and(IpAddr::is_ipv6);
        if sources.iter().any(|s| s.is_ipv6() != want_v6) {
            return Err("--source-ips: mix of IPv4 and IPv6 addresses".into());
        }
        let addrs: Vec<SocketAddr> = (first.host.as_str(), first.port)
            .to_socket_addrs()
            .map_err(|e| format!("--url {}: cannot resolve {}: {e}", args.urls[0], first.host))?
            .collect();
        let addr = if sources.is_empty() {
            addrs.iter().find(|a| a.is_ipv4()).or(addrs.first())
        } else {
            addrs.iter().find(|a| a.is_ipv6() == want_v6)
        };
        let addr = *addr.ok_or_else(|| format!("--url {}: no address of the --source-ips family", args.urls[0]))?;
        let duration = parse_duration("--duration", &args.duration)?;
        let timeout = parse_duration("--timeout", &args.timeout)?;
        let idle_timeout = parse_duration("--idle-timeout", &args.idle_timeout)?;
        if args.conns + args.idle == 0 {
            return Err("--conns and --idle are both 0: nothing to do".into());
        }
        if args.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if args.threads == 0 || args.procs == 0 {
            return Err("--threads and --procs must be at least 1".into());
        }
        if args.procs > args.conns + args.idle {
            return Err(format!(
                "--procs {} is more than the {} connections to share",
                args.procs,
                args.conns + args.idle
            ));
        }
        if let Some(r) = args.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(format!("--rate {r}: expected a positive number of requests per second"));
            }
            if args.conns == 0 {
                return Err("--rate needs at least one active connection (--conns)".into());
            }
        }
        if args.new_conn && args.pipeline > 1 {
            return Err(format!(
                "--new-conn sends one request per connection, so --pipeline {} cannot apply; drop one of them",
                args.pipeline
            ));
        }
        if args.new_conn && args.conns == 0 {
            return Err("--new-conn applies to the active connections, and --conns is 0".into());
        }
        let warmup = args.warmup.as_deref().map(parse_warmup).transpose()?;
        if let Some(w) = warmup {
            if args.conns == 0 {
                return Err("--warmup applies to the active connections, and --conns is 0".into());
            }
            if args.load_during_ramp {
                return Err("--warmup opens the active connections before the load, --load-during-ramp starts \
                            the load at once: drop one of them"
                    .into());
            }
            if args.new_conn && w.is_zero() {
                return Err("--warmup 0 with --new-conn warms nothing (no connection is kept): give it seconds".into());
            }
        }
        let tls = TlsSettings::from_args(&args, &first.host)?;
        let requests = urls.iter().map(|u| request_bytes(&u.path, &first.authority)).collect();
        Ok(Config {
            addr,
            requests,
            conns: args.conns,
            idle: args.idle,
            pipeline: args.pipeline,
            rate: args.rate,
            duration,
            idle_timeout,
            load_during_ramp: args.load_during_ramp,
            threads: args.threads,
            procs: args.procs,
            sources,
            timeout,
            expect_bytes: args.expect_bytes,
            worker: args.worker,
            new_conn: args.new_conn,
            warmup,
            open_first: warmup.is_some() && !args.new_conn,
            tls,
            args,
        })
    }
}

/// Share `i` of `total` split into `parts` (the first ones get the remainder).
pub fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

/// The flags that run worker `i` of a `--procs` run with its share.
pub fn worker_args(cfg: &Config, i: usize) -> Vec<String> {
    let conns = share(cfg.conns, cfg.procs, i);
    let idle = share(cfg.idle, cfg.procs, i);
    let mut out = Vec::new();
    for u in &cfg.args.urls {
        out.extend(["--url".to_string(), u.clone()]);
    }
    let mut flag = |k: &str, v: String| out.extend([k.to_string(), v]);
    flag("--conns", conns.to_string());
    flag("--idle", idle.to_string());
    flag("--pipeline", cfg.pipeline.to_string());
    if let Some(r) = cfg.rate.filter(|_| conns > 0) {
        flag("--rate", (r * conns as f64 / cfg.conns as f64).to_string());
    }
    flag("--duration", cfg.duration.as_secs_f64().to_string());
    flag("--threads", cfg.threads.min(conns + idle).max(1).to_string());
    flag("--timeout", cfg.timeout.as_secs_f64().to_string());
    if let Some(n) = cfg.expect_bytes {
        flag("--expect-bytes", n.to_string());
    }
    if let Some(s) = &cfg.args.source_ips {
        flag("--source-ips", s.clone());
    }
    if let Some(path) = &cfg.args.cacert {
        flag("--cacert", path.display().to_string());
    }
    if let Some(name) = &cfg.args.sni {
        flag("--sni", name.clone());
    }
    if let Some(kx) = cfg.args.tls_kx {
        flag("--tls-kx", kx.name().to_string());
    }
    if let Some(w) = cfg.warmup {
        flag("--warmup", w.as_secs_f64().to_string());
    }
    let switches = [("--new-conn", cfg.new_conn), ("--tls", cfg.args.tls), ("--tls-resume", cfg.args.tls_resume)];
    flag("--worker", i.to_string());
    out.extend(switches.iter().filter(|(_, on)| *on).map(|(name, _)| name.to_string()));
    out
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
