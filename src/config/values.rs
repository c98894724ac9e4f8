//! The flags' values: their types and parsers, each refusal saying what to pass instead.

use std::net::{SocketAddr, ToSocketAddrs};

/// Where shards run (`--cpu-affinity`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuAffinity {
    Auto,
    Off,
    List(Vec<usize>),
}

impl CpuAffinity {
    /// The core shard `index` is pinned to, if any, among the `cores` this process may use.
    pub fn core_for(&self, index: usize, cores: &[usize]) -> Option<usize> {
        match self {
            CpuAffinity::Off => None,
            CpuAffinity::Auto => (!cores.is_empty()).then(|| cores[index % cores.len()]),
            CpuAffinity::List(list) => Some(list[index % list.len()]),
        }
    }
}

pub(super) fn parse_affinity(s: &str) -> Result<CpuAffinity, String> {
    const EXAMPLE: &str = "auto, off or a list of CPUs such as 0,2,4-7";
    match s {
        "auto" => return Ok(CpuAffinity::Auto),
        "off" => return Ok(CpuAffinity::Off),
        _ => {}
    }
    let mut list = Vec::new();
    for part in s.split(',') {
        let number =
            |n: &str| n.trim().parse::<usize>().map_err(|_| format!("{part:?} is not a CPU number; {EXAMPLE}"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b || b - a > 4096 {
                    return Err(format!("{part:?} is not a range of CPUs; {EXAMPLE}"));
                }
                list.extend(a..=b);
            }
            None => list.push(number(part)?),
        }
    }
    Ok(CpuAffinity::List(list))
}

/// --listen when neither it nor --tls-listen is given.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 8080));

const LISTEN_EXAMPLE: &str = "e.g. 127.0.0.1:8080, [::]:8080 or localhost:8080";

pub(crate) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("expected ADDR:PORT, {LISTEN_EXAMPLE}"));
    };
    let port: u16 = match port.parse::<u64>() {
        Ok(p) if p <= u64::from(u16::MAX) => p as u16,
        Ok(p) => return Err(format!("port {p} is out of range (0 to 65535), {LISTEN_EXAMPLE}")),
        Err(_) => return Err(format!("{port:?} is not a port number, {LISTEN_EXAMPLE}")),
    };
    if host.is_empty() {
        return Err(format!("no address before the port, {LISTEN_EXAMPLE}"));
    }
    // A host name: the resolver's first address, as nginx's `listen` takes it.
    match (host.trim_matches(['[', ']']), port).to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| format!("{host} has no address, {LISTEN_EXAMPLE}")),
        Err(e) => Err(format!("cannot resolve {host}: {e}; give an address, {LISTEN_EXAMPLE}")),
    }
}

/// A whole number of at least 1; `example` is one that makes sense for the flag.
pub(super) fn count(s: &str, example: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Err(format!("{s} is too large, {example}")),
        _ => Err(format!("expected a whole number of at least 1, {example}")),
    }
}

pub(super) fn parse_count(s: &str) -> Result<usize, String> {
    count(s, "e.g. 2")
}

pub(super) fn parse_headers(s: &str) -> Result<usize, String> {
    count(s, "e.g. 100")
}

pub(super) fn parse_target(s: &str) -> Result<usize, String> {
    count(s, "e.g. 10000")
}

/// Bytes, optionally with a binary suffix (`1048576`, `64k`, `1m`, `2g`), at least `min`
/// (`why` says what is refused below it); `example` is a good value for the flag.
pub(super) fn bytes(s: &str, min: u64, why: &str, example: &str) -> Result<u64, String> {
    let (digits, unit) = match s.as_bytes().last().map(u8::to_ascii_lowercase) {
        Some(b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected a whole number of bytes, optionally with k, m or g, {example}"));
    }
    let n = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit));
    match n {
        None => Err(format!("{s} is too large, {example}")),
        Some(n) if n < min => Err(format!("{s} is below {min} bytes, {why}; {example}")),
        Some(n) => Ok(n),
    }
}

pub(super) fn parse_bytes(s: &str) -> Result<u64, String> {
    bytes(s, 0, "", "e.g. 1048576 or 1m")
}

/// The shortest request line is `GET / HTTP/1.1` and its CRLF.
const MIN_REQUEST_LINE: u64 = 16;

pub(super) fn parse_request_line(s: &str) -> Result<usize, String> {
    let why = "the length of `GET / HTTP/1.1`, so every request would be refused";
    bytes(s, MIN_REQUEST_LINE, why, "e.g. 8192 or 8k").map(|n| n as usize)
}

pub(super) fn parse_header_bytes(s: &str) -> Result<usize, String> {
    let why = "too few for `Host: example.com`, so every HTTP/1.1 request would be refused";
    bytes(s, MIN_REQUEST_LINE, why, "e.g. 16384 or 16k").map(|n| n as usize)
}

pub(super) fn parse_buffers(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n) if n.is_power_of_two() && n <= 32768 => Ok(n),
        _ => Err("expected a power of two from 1 to 32768, e.g. 256".to_string()),
    }
}

pub(super) fn parse_seconds(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if (1..=3600).contains(&n) => Ok(n),
        _ => Err("expected whole seconds between 1 and 3600".to_string()),
    }
}
