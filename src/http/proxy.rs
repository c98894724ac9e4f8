//! The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): the header a load
//! balancer sends before the client's first byte, naming the client it accepted. `parse`
//! reads it from the start of a connection's input, without I/O or allocation; `Net` is
//! how the configuration names the peers trusted to send one.
//!
//! The input comes from anyone who can connect, so `parse` decides as early as the bytes
//! allow: `Partial` only while what came is still the start of a valid header no longer than
//! `MAX_HEADER`, an error at the first byte that rules that out. An answer other than
//! `Partial` never changes as more bytes arrive, so a header read whole or in pieces gets
//! the same one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 1 starts with this (the spec's "PROXY" and its single space): `PROXYFIND /` may
/// be an HTTP request, and is `NotProxy`.
const V1_SIGNATURE: &[u8] = b"PROXY ";
/// The longest version 1 line, its CRLF included (the spec's worst case, an UNKNOWN line).
const V1_MAX: usize = 107;
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version and command, family, and the body's length.
const V2_HEAD: usize = 16;
/// The longest version 2 body we take: IPv6 addresses plus a few TLVs. A longer one is
/// refused rather than buffered.
pub const MAX_V2_BODY: usize = 1024;
/// Longest header we accept: version 1's 107 bytes; version 2's 16-byte head plus at most
/// `MAX_V2_BODY`.
pub const MAX_HEADER: usize = V2_HEAD + MAX_V2_BODY;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed (what came so far is a valid prefix).
    Partial,
    /// The header ended after `len` bytes; `source` is the client's address (None for LOCAL,
    /// UNKNOWN, UNSPEC or a non-TCP family: the connection's own peer stands).
    Complete { len: usize, source: Option<SocketAddr> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// The input does not start with either signature.
    NotProxy,
    /// Bad syntax, bad address, bad port, wrong family length, version not 2, command not
    /// LOCAL or PROXY, an unknown family.
    Malformed,
    /// No header ends within `MAX_HEADER` bytes (version 1: 107).
    TooLong,
}

use ProxyError::{Malformed, NotProxy, TooLong};

/// Reads a PROXY header, version 1 or 2, from the start of `input`; the bytes after it are
/// the client's.
pub fn parse(input: &[u8]) -> Result<Parsed, ProxyError> {
    if input.starts_with(V2_SIGNATURE) {
        parse_v2(input)
    } else if input.starts_with(V1_SIGNATURE) {
        parse_v1(input)
    } else if V2_SIGNATURE.starts_with(input) || V1_SIGNATURE.starts_with(input) {
        Ok(Parsed::Partial)
    } else {
        Err(NotProxy)
    }
}

fn parse_v1(input: &[u8]) -> Result<Parsed, ProxyError> {
    let window = &input[..input.len().min(V1_MAX)];
    let rest = &window[V1_SIGNATURE.len()..];
    // The first CR ends the line's content, whether or not its LF has come yet.
    let (line, ended, len) = match rest.iter().position(|&b| b == b'\r') {
        None => (rest, false, None),
        Some(cr) => match rest.get(cr + 1) {
            Some(b'\n') => (&rest[..cr], true, Some(V1_SIGNATURE.len() + cr + 2)),
            Some(_) => return Err(Malformed),
            None => (&rest[..cr], true, None),
        },
    };
    let source = v1_line(line, ended)?;
    match len {
        Some(len) => Ok(Parsed::Complete { len, source }),
        None if input.len() >= V1_MAX => Err(TooLong),
        None => Ok(Parsed::Partial),
    }
}

/// Checks a version 1 line after "PROXY ", without its CRLF: whole when `ended`, else the
/// start of one (its last field may be cut). Gives the source once `ended`.
fn v1_line(line: &[u8], ended: bool) -> Result<Option<SocketAddr>, ProxyError> {
    const PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];
    let mut fields = line.split(|&b| b == b' ');
    let protocol = fields.next().unwrap_or_default();
    let more = line.len() > protocol.len();
    let scan_address: fn(&[u8]) -> Scan = match protocol {
        // The spec has the receiver ignore whatever follows UNKNOWN on its line.
        b"UNKNOWN" => return Ok(None),
        b"TCP4" if more => scan_ipv4,
        b"TCP6" if more => scan_ipv6,
        _ if !ended && !more && PROTOCOLS.iter().any(|p| p.starts_with(protocol)) => return Ok(None),
        _ => return Err(Malformed),
    };
    // Source address, destination address, source port, destination port.
    let mut parts: [&[u8]; 4] = [&[]; 4];
    let mut count = 0;
    for field in fields {
        *parts.get_mut(count).ok_or(Malformed)? = field;
        count += 1;
    }
    for (i, field) in parts[..count].iter().enumerate() {
        let scan = if i < 2 { scan_address(field) } else { scan_port(field) };
        let cut = !ended && i + 1 == count;
        if scan == Scan::Invalid || (scan == Scan::Prefix && !cut) {
            return Err(Malformed);
        }
    }
    if !ended {
        return Ok(None);
    }
    if count < 4 {
        return Err(Malformed);
    }
    let ip = std::str::from_utf8(parts[0]).ok().and_then(|s| s.parse::<IpAddr>().ok()).ok_or(Malformed)?;
    let port = std::str::from_utf8(parts[2]).ok().and_then(|s| s.parse::<u16>().ok()).ok_or(Malformed)?;
    Ok(Some(SocketAddr::new(ip, port)))
}

fn parse_v2(input: &[u8]) -> Result<Parsed, ProxyError> {
    let Some(&version_command) = input.get(12) else { return Ok(Parsed::Partial) };
    if version_command >> 4 != 2 || version_command & 0x0f > 1 {
        return Err(Malformed);
    }
    // LOCAL (a health check from the proxy itself): the spec ignores its family and body.
    let proxied = version_command & 0x0f == 1;
    let Some(&family) = input.get(13) else { return Ok(Parsed::Partial) };
    let addresses_len = if proxied { v2_addresses_len(family).ok_or(Malformed)? } else { 0 };
    let (Some(&high), Some(&low)) = (input.get(14), input.get(15)) else { return Ok(Parsed::Partial) };
    let body_len = usize::from(u16::from_be_bytes([high, low]));
    if body_len > MAX_V2_BODY {
        return Err(TooLong);
    }
    if body_len < addresses_len {
        return Err(Malformed);
    }
    let len = V2_HEAD + body_len;
    let Some(body) = input.get(V2_HEAD..len) else { return Ok(Parsed::Partial) };
    let port_at = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    let source = match (proxied, family) {
        (true, 0x11) => {
            let ip = Ipv4Addr::from([body[0], body[1], body[2], body[3]]);
            Some(SocketAddr::new(ip.into(), port_at(8)))
        }
        (true, 0x21) => {
            let mut octets = [0; 16];
            octets.copy_from_slice(&body[..16]);
            Some(SocketAddr::new(Ipv6Addr::from(octets).into(), port_at(32)))
        }
        _ => None,
    };
    Ok(Parsed::Complete { len, source })
}

/// The address block's size for each family version 2 defines; any other "must be rejected".
/// UNSPEC, UDP and UNIX are accepted but name no TCP client.
fn v2_addresses_len(family: u8) -> Option<usize> {
    match family {
        0x00 => Some(0),
        0x11 | 0x12 => Some(12),
        0x21 | 0x22 => Some(36),
        0x31 | 0x32 => Some(216),
        _ => None,
    }
}

/// How far a field of a version 1 line has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// No bytes added after these make it valid.
    Invalid,
    /// Not valid yet, but more bytes could make it so.
    Prefix,
    /// Valid as it stands.
    Valid,
}

/// A decimal port: no sign, no leading zero but "0" itself.
fn scan_port(s: &[u8]) -> Scan {
    match s {
        [] => Scan::Prefix,
        [b'0', _, ..] => Scan::Invalid,
        _ if s.len() <= 5
            && s.iter().all(u8::is_ascii_digit)
            && s.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535 =>
        {
            Scan::Valid
        }
        _ => Scan::Invalid,
    }
}

/// A dotted quad read so far: the octets done (by their dots) and the one under way.
#[derive(Debug, Clone, Copy, Default)]
struct Dotted {
    dots: u8,
    digits: u8,
    octet: u16,
}

impl Dotted {
    /// The quad with `b` added, or None if no quad starts so: leading zeros are refused, as
    /// std refuses them (some readers take them for octal).
    fn pushed(mut self, b: u8) -> Option<Dotted> {
        match b {
            b'0'..=b'9' if !(self.digits > 0 && self.octet == 0) => {
                self.octet = self.octet * 10 + u16::from(b - b'0');
                self.digits += 1;
                (self.octet <= 255).then_some(self)
            }
            b'.' if self.digits > 0 && self.dots < 3 => Some(Dotted { dots: self.dots + 1, ..Dotted::default() }),
            _ => None,
        }
    }

    fn is_whole(&self) -> bool {
        self.dots == 3 && self.digits > 0
    }
}

fn scan_ipv4(s: &[u8]) -> Scan {
    match s.iter().try_fold(Dotted::default(), |quad, &b| quad.pushed(b)) {
        None => Scan::Invalid,
        Some(quad) if quad.is_whole() => Scan::Valid,
        Some(_) => Scan::Prefix,
    }
}

/// Where an IPv6 address's text has got to.
#[derive(Clone, Copy)]
enum Place {
    Start,
    LeadingColon,
    /// In a group of hex digits; `quad` is the same digits read as an embedded IPv4 address's
    /// first octet, while they can be one.
    Group {
        digits: u8,
        quad: Option<Dotted>,
    },
    Colon,
    DoubleColon,
    /// In the embedded IPv4 address that ends it (`::ffff:10.0.0.1`).
    Quad(Dotted),
}

/// RFC 4291's text forms, as std's parser takes them: eight groups of 1 to 4 hex digits, one
/// "::" standing for at least one group of zeros, the last two groups perhaps a dotted quad.
fn scan_ipv6(s: &[u8]) -> Scan {
    let mut place = Place::Start;
    let mut groups = 0u8; // finished, before `place`
    let mut elided = false;
    for &b in s {
        let most = if elided { 7 } else { 8 };
        place = match (place, b) {
            (Place::Start, b':') => Place::LeadingColon,
            (Place::LeadingColon, b':') => {
                elided = true;
                Place::DoubleColon
            }
            (Place::Colon, b':') if !elided => {
                elided = true;
                Place::DoubleColon
            }
            // Room must stay for the group or the "::" that a colon promises.
            (Place::Group { .. }, b':') if groups + 1 < most => {
                groups += 1;
                Place::Colon
            }
            (Place::Start | Place::Colon | Place::DoubleColon, _) if b.is_ascii_hexdigit() && groups < most => {
                Place::Group { digits: 1, quad: Dotted::default().pushed(b) }
            }
            (Place::Group { digits, quad }, _) if b.is_ascii_hexdigit() && digits < 4 => {
                Place::Group { digits: digits + 1, quad: quad.and_then(|q| q.pushed(b)) }
            }
            // A quad is the last two groups: nothing can follow it.
            (Place::Group { quad: Some(quad), .. }, b'.') if groups + 2 <= most && (elided || groups == 6) => {
                match quad.pushed(b) {
                    Some(quad) => Place::Quad(quad),
                    None => return Scan::Invalid,
                }
            }
            (Place::Quad(quad), _) => match quad.pushed(b) {
                Some(quad) => Place::Quad(quad),
                None => return Scan::Invalid,
            },
            _ => return Scan::Invalid,
        };
    }
    match place {
        Place::Group { .. } if elided || groups == 7 => Scan::Valid,
        Place::DoubleColon => Scan::Valid,
        Place::Quad(quad) if quad.is_whole() && (elided || groups == 6) => Scan::Valid,
        _ => Scan::Prefix,
    }
}

/// A network, `10.0.0.0/8`, `::1/128`, or a bare address (a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    /// Its host bits are zero (`parse` refuses them set).
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Result<Net, String> {
        let (addr_text, prefix_text) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("{s:?}: expected an address or address/prefix such as 10.0.0.0/8 or ::1"))?;
        let (family, max) = if addr.is_ipv4() { ("IPv4", 32) } else { ("IPv6", 128) };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(format!("{s:?}: the prefix of an {family} network is a number from 0 to {max}")),
            },
        };
        let net = Net { addr: masked(addr, prefix), prefix };
        if net.addr != addr {
            return Err(format!("{s:?} has bits set beyond its /{prefix} prefix: did you mean {net}?"));
        }
        Ok(net)
    }

    /// An IPv4 address and its IPv4-mapped IPv6 form (`::ffff:10.0.0.1`, what a dual-stack
    /// socket reports) are one: each is in a network that names the other. So `::/0` holds
    /// every IPv4 address too, and `0.0.0.0/0` no IPv6 one but the mapped.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let prefix = match self.addr {
            IpAddr::V4(_) => 96 + u32::from(self.prefix),
            IpAddr::V6(_) => u32::from(self.prefix),
        };
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        (as_ipv6_bits(self.addr) ^ as_ipv6_bits(ip)) & mask == 0
    }
}

fn as_ipv6_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    }
}

fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Ipv4Addr::from_bits(a.to_bits() & mask).into()
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Ipv6Addr::from_bits(a.to_bits() & mask).into()
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
