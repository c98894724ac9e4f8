//! Request-head parser (RFC 9112 §2–§7), strict: anything ambiguous is an error, because
//! a lenient parser in front of or behind another parser is how requests get smuggled.

use super::syntax::{is_field_byte, is_tchar, request_line, request_line_prefix};
use memchr::memchr;

/// Size limits a request head must stay within; each has its own status code.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_request_line: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_request_line: 8 * 1024, max_header_bytes: 16 * 1024, max_headers: 100, max_body: 1 << 20 }
    }
}

/// Why a request was refused. Every variant closes the connection after its answer:
/// once the head is in doubt, so is where the next request starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A request line without a version: HTTP/0.9, which has no headers and no framing.
    MissingVersion,
    BadRequestLine,
    BadMethod,
    BadTarget,
    BadVersion,
    VersionNotSupported,
    RequestLineTooLong,
    HeaderTooLarge,
    TooManyHeaders,
    BadHeaderName,
    WhitespaceBeforeColon,
    ObsFold,
    MissingColon,
    BadHeaderValue,
    BareCr,
    MissingHost,
    DuplicateHost,
    BadHost,
    BadContentLength,
    ConflictingContentLength,
    TransferEncodingWithContentLength,
    TransferEncodingOnHttp10,
    UnsupportedTransferCoding,
    BadTransferEncoding,
    BadChunk,
    BodyTooLarge,
}

impl ParseError {
    pub fn status(self) -> u16 {
        use ParseError::*;
        match self {
            VersionNotSupported => 505,
            RequestLineTooLong => 414,
            HeaderTooLarge | TooManyHeaders => 431,
            UnsupportedTransferCoding => 501,
            BodyTooLarge => 413,
            _ => 400,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method<'a> {
    Get,
    Head,
    Options,
    Other(&'a [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head. Every slice borrows the caller's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The request line as received, without its line ending (for the access log).
    pub line: &'a [u8],
    pub method: Method<'a>,
    pub target: &'a [u8],
    pub version: Version,
    pub keep_alive: bool,
    pub body: BodyFraming,
    /// The header lines, already validated; `header`/`headers` scan them on demand so
    /// that parsing stores nothing per field.
    fields: &'a [u8],
    /// Which of the `SPARSE` fields occur at all (bit i for `SPARSE[i]`): a lookup of one
    /// that does not, the common case for conditionals and ranges, scans nothing.
    present: u8,
}

/// Fields looked up on most requests and present on few: the parser notes whether each
/// occurs, so that `headers` skips the scan of every line when it does not.
const SPARSE: [&str; 7] =
    ["if-none-match", "if-modified-since", "range", "if-range", "accept-encoding", "referer", "user-agent"];

/// The bit of `name` in `Request::present`, if it is one of `SPARSE`: their lengths
/// differ, so one comparison decides. The arms restate the lengths because a match on them
/// compiles to a jump to a comparison with a known string (a table of indices measured 70
/// instructions a request more); `each_sparse_name_has_its_bit` holds the two together.
fn sparse_bit(name: &[u8]) -> Option<u8> {
    let i = match name.len() {
        13 => 0,
        17 => 1,
        5 => 2,
        8 => 3,
        15 => 4,
        7 => 5,
        10 => 6,
        _ => return None,
    };
    SPARSE[i].as_bytes().eq_ignore_ascii_case(name).then_some(1 << i)
}

#[derive(Debug)]
pub enum Status<'a> {
    /// A whole head, and how many bytes of the buffer it took.
    Complete(Request<'a>, usize),
    Partial,
}

impl<'a> Request<'a> {
    /// The first value of the field `name` (case-insensitive), OWS trimmed.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers(name).next()
    }

    /// Every value of the field `name`, in order (list fields may be split over lines).
    pub fn headers<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        let absent = sparse_bit(name.as_bytes()).is_some_and(|bit| self.present & bit == 0);
        let fields = if absent { &[][..] } else { self.fields };
        FieldLines(fields).filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }
}

/// Iterates `name: value` lines of an already validated field block.
struct FieldLines<'a>(&'a [u8]);

impl<'a> Iterator for FieldLines<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let lf = memchr(b'\n', self.0)?;
        let line = strip_cr(&self.0[..lf]);
        self.0 = &self.0[lf + 1..];
        let colon = memchr(b':', line)?;
        Some((&line[..colon], trim_ows(&line[colon + 1..])))
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Parse one request head from the start of `buf`.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Result<Status<'a>, ParseError> {
    // Leading empty lines are skipped (RFC 9112 §2.2) but count against the line limit,
    // so a stream of CRLFs cannot grow the buffer without bound.
    let mut start = 0;
    while let Some(rest) = buf.get(start..) {
        match rest {
            [b'\r', b'\n', ..] => start += 2,
            [b'\n', ..] => start += 1,
            _ => break,
        }
    }
    // A line over the limit is refused for its length only if its first `max_request_line`
    // bytes are a valid start: the same bytes, whether the line came whole or in pieces
    // (the fuzzer's conn target found 414 whole and 400 in pieces).
    let over_limit = |buf: &[u8]| {
        let limit = limits.max_request_line;
        request_line_prefix(&buf[start.min(limit)..limit]).and(Err(ParseError::RequestLineTooLong))
    };
    let Some(lf) = memchr(b'\n', &buf[start..]) else {
        // Without its LF yet, a line already this long can only end over the limit.
        if buf.len() >= limits.max_request_line {
            return over_limit(buf);
        }
        request_line_prefix(&buf[start..])?;
        return Ok(Status::Partial);
    };
    let line_end = start + lf;
    if line_end + 1 > limits.max_request_line {
        return over_limit(buf);
    }
    let line = strip_cr(&buf[start..line_end]);
    let (method, target, version) = request_line(line)?;

    let fields_start = line_end + 1;
    let mut pos = fields_start;
    let mut seen = Seen::default();
    let mut present = 0u8;
    let mut count = 0usize;
    loop {
        let Some(lf) = memchr(b'\n', &buf[pos..]) else {
            return if buf.len() - fields_start > limits.max_header_bytes {
                Err(ParseError::HeaderTooLarge)
            } else {
                Ok(Status::Partial)
            };
        };
        let line = strip_cr(&buf[pos..pos + lf]);
        pos += lf + 1;
        if pos - fields_start > limits.max_header_bytes {
            return Err(ParseError::HeaderTooLarge);
        }
        if line.is_empty() {
            break;
        }
        count += 1;
        if count > limits.max_headers {
            return Err(ParseError::TooManyHeaders);
        }
        let (name, value) = field_line(line)?;
        seen.note(name, value)?;
        present |= sparse_bit(name).unwrap_or(0);
    }
    let fields = &buf[fields_start..pos];
    let body = seen.framing(version)?;
    match (version, seen.hosts) {
        (_, 2..) => return Err(ParseError::DuplicateHost),
        (Version::Http11, 0) => return Err(ParseError::MissingHost),
        _ => {}
    }
    let keep_alive = match version {
        Version::Http11 => !seen.close,
        Version::Http10 => seen.keep_alive && !seen.close,
    };
    Ok(Status::Complete(Request { line, method, target, version, keep_alive, body, fields, present }, pos))
}

fn field_line(line: &[u8]) -> Result<(&[u8], &[u8]), ParseError> {
    if let [b' ' | b'\t', ..] = line {
        return Err(ParseError::ObsFold);
    }
    let colon = memchr(b':', line).ok_or(ParseError::MissingColon)?;
    let name = &line[..colon];
    match name {
        [] => return Err(ParseError::BadHeaderName),
        [.., b' ' | b'\t'] => return Err(ParseError::WhitespaceBeforeColon),
        _ if !name.iter().all(|&b| is_tchar(b)) => return Err(ParseError::BadHeaderName),
        _ => {}
    }
    let value = &line[colon + 1..];
    if let Some(&bad) = value.iter().find(|&&b| !is_field_byte(b)) {
        return Err(if bad == b'\r' { ParseError::BareCr } else { ParseError::BadHeaderValue });
    }
    Ok((name, trim_ows(value)))
}

/// What the parser must know about the fields while it reads them: framing, Host, and
/// the connection options.
#[derive(Default)]
struct Seen {
    hosts: u8,
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

impl Seen {
    fn note(&mut self, name: &[u8], value: &[u8]) -> Result<(), ParseError> {
        // Only the lengths of the four names below can match: most lines compare nothing.
        if !matches!(name.len(), 4 | 14 | 17 | 10) {
            return Ok(());
        }
        if name.eq_ignore_ascii_case(b"host") {
            self.hosts = self.hosts.saturating_add(1);
            if value.iter().any(|&b| b == b' ' || b == b'\t') {
                return Err(ParseError::BadHost);
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_length(value).ok_or(ParseError::BadContentLength)?;
            if self.content_length.is_some_and(|m| m != n) {
                return Err(ParseError::ConflictingContentLength);
            }
            self.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding = true;
            let mut any = false;
            for coding in value.split(|&b| b == b',').map(trim_ows).filter(|c| !c.is_empty()) {
                any = true;
                if !coding.eq_ignore_ascii_case(b"chunked") {
                    return Err(ParseError::UnsupportedTransferCoding);
                }
                if self.chunked {
                    // chunked applied twice has no meaning (RFC 9112 §6.1)
                    return Err(ParseError::BadTransferEncoding);
                }
                self.chunked = true;
            }
            if !any {
                return Err(ParseError::BadTransferEncoding);
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(trim_ows) {
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        Ok(())
    }

    fn framing(&self, version: Version) -> Result<BodyFraming, ParseError> {
        if self.transfer_encoding {
            if version == Version::Http10 {
                return Err(ParseError::TransferEncodingOnHttp10);
            }
            if self.content_length.is_some() {
                return Err(ParseError::TransferEncodingWithContentLength);
            }
            return Ok(BodyFraming::Chunked);
        }
        Ok(match self.content_length {
            None | Some(0) => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
        })
    }
}

/// 1*DIGIT, nothing else: no sign, no hex, no list, no overflow.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(
        0u64,
        |n, &b| {
            if b.is_ascii_digit() { n.checked_mul(10)?.checked_add(u64::from(b - b'0')) } else { None }
        },
    )
}

#[cfg(test)]
mod sparse_tests {
    use super::*;

    /// Every sparse name finds its own bit, in any case, and only its own.
    #[test]
    fn each_sparse_name_has_its_bit() {
        for (i, name) in SPARSE.iter().enumerate() {
            assert_eq!(sparse_bit(name.as_bytes()), Some(1 << i), "{name}");
            assert_eq!(sparse_bit(name.to_ascii_uppercase().as_bytes()), Some(1 << i), "{name}");
        }
        for other in ["host", "content-length", "connection", "transfer-encoding", "if-match", "rangex"] {
            assert_eq!(sparse_bit(other.as_bytes()), None, "{other}");
        }
    }
}
