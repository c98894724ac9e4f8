//! Redirect rules: a path glob, and a Location written from what its wildcards captured.
//!
//! A request chooses the captured bytes, so they are kept where they can do no harm: never
//! in the scheme or authority of an absolute Location (a request could choose the host it
//! is sent to), never first in a relative one (`//evil.example/` is another host to a
//! client), and a relative Location that would lead to a `.`, `..` or hidden segment, or
//! to a path `normalize` refuses, is not given at all.

use super::glob::Glob;
use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum RedirectStatus {
    Moved = 301,
    Found = 302,
    Temporary = 307,
    Permanent = 308,
}

impl RedirectStatus {
    pub fn code(self) -> u16 {
        self as u16
    }
}

#[derive(Debug, Clone)]
pub struct Redirect {
    from: Glob,
    to: Vec<Piece>,
    /// `to` starts with `/`: on this host, so where it leads is checked as `normalize` would.
    relative: bool,
    /// `to` has a query of its own, so the request's is not carried.
    has_query: bool,
    status: RedirectStatus,
}

#[derive(Debug, Clone)]
enum Piece {
    Literal(Box<[u8]>),
    /// `$1` is 0.
    Capture(usize),
}

impl Redirect {
    /// `from`: a glob starting with `/` (exact when it has no wildcard). `to`: starts with
    /// `/` (not `//`), `http://` or `https://`; `$1`..`$9` name captures of `from`, `$$` is a
    /// literal `$`. A capture may not stand in the scheme or authority of an absolute `to`,
    /// nor start a relative one. `to` holds only bytes a URI may (percent-encode the rest)
    /// and no fragment, and a relative `to` names no `.`, `..` or hidden segment (this
    /// server serves none). `status`: 301, 302, 307 or 308.
    pub fn new(from: &str, to: &str, status: u16) -> Result<Redirect, String> {
        let status = match status {
            301 => RedirectStatus::Moved,
            302 => RedirectStatus::Found,
            307 => RedirectStatus::Temporary,
            308 => RedirectStatus::Permanent,
            _ => return Err(format!("status {status} is not a redirect: use 301, 302, 307 or 308")),
        };
        if !from.starts_with('/') {
            return Err(format!("from {from:?} does not start with /"));
        }
        let from = Glob::parse(from).map_err(|e| format!("from: {e}"))?;
        let authority_end = authority_end(to)?;
        let pieces = pieces(to, authority_end, from.wildcards())?;
        let relative = authority_end == 0;
        let redirect = Redirect { from, to: pieces, relative, has_query: to.contains('?'), status };
        if relative && !stays_beneath_root(&redirect.template()) {
            return Err(format!("to {to:?} names a ., .. or hidden segment, or an escaped NUL or backslash"));
        }
        Ok(redirect)
    }

    /// If `path` (leading `/`) matches, write the Location value into `location` (cleared
    /// first) and return the status. Captured bytes are percent-encoded (all but
    /// unreserved, sub-delims, `:`, `@` and `/`). The request's query, when there is one and
    /// `to` has none, is carried as `?query`, unchanged (as nginx's rewrite does). A
    /// relative Location that would lead to a `.`, `..` or hidden segment (an empty capture
    /// before `/..`, or one that was part of a segment, like `..` from `/x*` on `/x..`), or
    /// begin with `//`, is not given: None, as if the rule did not match.
    pub fn apply(
        &self,
        path: &[u8],
        query: Option<&[u8]>,
        scratch: &mut Vec<Range<usize>>,
        location: &mut Vec<u8>,
    ) -> Option<RedirectStatus> {
        if !self.from.captures(path, scratch) {
            return None;
        }
        location.clear();
        for piece in &self.to {
            match piece {
                Piece::Literal(bytes) => location.extend_from_slice(bytes),
                Piece::Capture(n) => percent_encode(&path[scratch[*n].clone()], location),
            }
        }
        if self.relative && !stays_beneath_root(location) {
            location.clear();
            return None;
        }
        if let Some(query) = query.filter(|q| !q.is_empty() && !self.has_query) {
            location.push(b'?');
            location.extend_from_slice(query);
        }
        Some(self.status)
    }

    pub fn from(&self) -> &Glob {
        &self.from
    }

    /// `to` with every capture taken as `x`: what the rule's own bytes say, checked at load.
    fn template(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in &self.to {
            match piece {
                Piece::Literal(bytes) => out.extend_from_slice(bytes),
                Piece::Capture(_) => out.push(b'x'),
            }
        }
        out
    }
}

/// Where the scheme and authority of `to` end: 0 for a relative `to`.
fn authority_end(to: &str) -> Result<usize, String> {
    if to.starts_with("//") {
        return Err("to starts with //, which a client takes for another host".to_string());
    }
    if to.starts_with('/') {
        return Ok(0);
    }
    let Some(rest) = to.strip_prefix("http://").or_else(|| to.strip_prefix("https://")) else {
        return Err(format!("to {to:?} starts with none of /, http:// and https://"));
    };
    let host_at = to.len() - rest.len();
    let end = rest.find(['/', '?']).map_or(to.len(), |i| host_at + i);
    if end == host_at {
        return Err("to has no host after ://".to_string());
    }
    Ok(end)
}

/// `to` split into literal bytes and captures, checked byte by byte.
fn pieces(to: &str, authority_end: usize, wildcards: usize) -> Result<Vec<Piece>, String> {
    let bytes = to.as_bytes();
    let (mut pieces, mut literal) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'#' {
            return Err(format!("to has a fragment (# at byte {i}), which a carried query would follow"));
        }
        if !uri_byte(b) {
            return Err(format!("byte {i} of to ({:?}) has no place in a URI: percent-encode it", b as char));
        }
        if b == b'%' && !(hex(bytes.get(i + 1)) && hex(bytes.get(i + 2))) {
            return Err(format!("% at byte {i} of to is not followed by two hex digits"));
        }
        if b != b'$' {
            literal.push(b);
            i += 1;
            continue;
        }
        if i < authority_end {
            return Err(format!("$ at byte {i} of to is in its scheme or host, which a request could then choose"));
        }
        match bytes.get(i + 1) {
            Some(b'$') => literal.push(b'$'),
            Some(&d @ b'1'..=b'9') => {
                let n = usize::from(d - b'0');
                if n > wildcards {
                    return Err(format!("to names ${n} but from has {wildcards} wildcards"));
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal).into()));
                }
                pieces.push(Piece::Capture(n - 1));
            }
            _ => return Err(format!("$ at byte {i} of to names no capture ($1 to $9; $$ for a $)")),
        }
        i += 2;
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal.into()));
    }
    Ok(pieces)
}

/// Whether a relative Location leads where `normalize` follows it: one leading `/`, and,
/// once decoded, no segment that starts with `.` (so no `.`, `..` or hidden one), no NUL
/// or backslash, no bad escape. Only the path counts; from `?` on is the query.
fn stays_beneath_root(location: &[u8]) -> bool {
    let path = &location[..location.iter().position(|&b| b == b'?').unwrap_or(location.len())];
    let [b'/', rest @ ..] = path else { return false };
    if matches!(rest.first(), Some(b'/' | b'\\')) {
        return false;
    }
    let mut segment_start = true;
    let mut i = 0;
    while i < rest.len() {
        let byte = if rest[i] == b'%' {
            let digit = |at: usize| rest.get(at).and_then(|&b| (b as char).to_digit(16));
            let (Some(high), Some(low)) = (digit(i + 1), digit(i + 2)) else { return false };
            i += 3;
            (high * 16 + low) as u8
        } else {
            i += 1;
            rest[i - 1]
        };
        match byte {
            0 | b'\\' => return false,
            b'.' if segment_start => return false,
            _ => segment_start = byte == b'/',
        }
    }
    true
}

/// Unreserved, sub-delims, `:`, `@` and `/`: the bytes a captured piece of a path keeps.
fn keeps(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b)
}

/// The bytes a literal `to` may hold: those a capture keeps, the rest of the reserved
/// set, and `%` (whose escape the caller checks).
fn uri_byte(b: u8) -> bool {
    keeps(b) || b"?#[]%".contains(&b)
}

fn hex(b: Option<&u8>) -> bool {
    b.is_some_and(u8::is_ascii_hexdigit)
}

fn percent_encode(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if keeps(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

#[cfg(test)]
#[path = "redirect_tests.rs"]
mod tests;
