//! The lexical pieces of a request head (RFC 9110 §5.6, RFC 9112 §3): the byte classes a
//! head's bytes are checked against, and the request line, whole or as a prefix that can
//! already be refused. `parse` puts them together.

use super::parse::{Method, ParseError, Version};
use memchr::memchr;

/// Byte classes, one table lookup per byte of a head instead of a chain of comparisons
/// (a head is mostly field lines, and each byte of them is checked once).
const TCHAR: u8 = 1;
const FIELD: u8 = 2;
static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        // tchar (RFC 9110 §5.6.2).
        if c.is_ascii_alphanumeric()
            || matches!(c, b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'^'..=b'`' | b'|' | b'~')
        {
            table[b] |= TCHAR;
        }
        // field-vchar, SP and HTAB; obs-text is allowed, every other control byte is not.
        if c == b'\t' || (c >= b' ' && c != 0x7f) {
            table[b] |= FIELD;
        }
        b += 1;
    }
    table
};

/// tchar (RFC 9110 §5.6.2).
pub(super) fn is_tchar(b: u8) -> bool {
    CLASS[usize::from(b)] & TCHAR != 0
}

pub(super) fn is_field_byte(b: u8) -> bool {
    CLASS[usize::from(b)] & FIELD != 0
}

/// Refuse a request line as soon as a byte makes it invalid whatever follows (a TLS
/// handshake or binary noise on the plain-text port), rather than when its LF arrives or
/// the request times out. Only bytes no valid line can hold there are refused, so no
/// prefix of a valid request is.
pub(super) fn request_line_prefix(line: &[u8]) -> Result<(), ParseError> {
    let method_len = line.iter().position(|&b| !is_tchar(b)).unwrap_or(line.len());
    let rest = &line[method_len..];
    match rest {
        [] => return Ok(()),
        // A lone CR may yet be the start of an empty line's CRLF.
        [b'\r'] if method_len == 0 => return Ok(()),
        [b' ', ..] if method_len > 0 => {}
        _ => return Err(ParseError::BadMethod),
    }
    let rest = &rest[1..];
    let target_len = rest.iter().position(|&b| !b.is_ascii_graphic()).unwrap_or(rest.len());
    let after = &rest[target_len..];
    match after {
        [] => return Ok(()),
        // HTTP/0.9's line ends here; it is refused (MissingVersion) once the LF is in.
        [b'\r'] => return Ok(()),
        [b' ', ..] if target_len > 0 => {}
        _ => return Err(ParseError::BadTarget),
    }
    const VERSION: &[u8] = b"HTTP/9.9\r";
    let fits =
        after[1..].iter().zip(VERSION).all(|(&b, &want)| if want == b'9' { b.is_ascii_digit() } else { b == want });
    if after.len() - 1 > VERSION.len() || !fits {
        return Err(ParseError::BadVersion);
    }
    Ok(())
}

pub(super) fn request_line(line: &[u8]) -> Result<(Method<'_>, &[u8], Version), ParseError> {
    if line.contains(&b'\r') {
        return Err(ParseError::BareCr);
    }
    let sp = memchr(b' ', line).ok_or(ParseError::BadRequestLine)?;
    let method = &line[..sp];
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::BadMethod);
    }
    let rest = &line[sp + 1..];
    let Some(sp) = memchr(b' ', rest) else {
        return Err(if !rest.is_empty() && rest.iter().all(|&b| b.is_ascii_graphic()) {
            ParseError::MissingVersion
        } else {
            ParseError::BadRequestLine
        });
    };
    let target = &rest[..sp];
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(ParseError::BadTarget);
    }
    let version = match &rest[sp + 1..] {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            match (major, minor) {
                (b'1', b'0') => Version::Http10,
                (b'1', _) => Version::Http11,
                _ => return Err(ParseError::VersionNotSupported),
            }
        }
        _ => return Err(ParseError::BadVersion),
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"OPTIONS" => Method::Options,
        other => Method::Other(other),
    };
    Ok((method, target, version))
}
