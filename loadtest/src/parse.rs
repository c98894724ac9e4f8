//! The response reader: bytes in (split anywhere), complete responses out, in order.
//!
//! Strict enough to catch a broken server: a status line `HTTP/1.x SSS reason`, CRLF field
//! lines `name: value`, and `Content-Length` framing (digits only; two different values are
//! an error). A response without a body (1xx, 204, 304; `HEAD` is never sent) needs no
//! length; any other without `Content-Length` is a framing error, and `Transfer-Encoding`
//! (chunked) is unsupported. Body bytes are counted, never stored, so an incomplete head is
//! the only thing buffered between reads.

use memchr::memmem;

/// A head larger than this is refused.
pub const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The `Content-Length`, when present.
    pub content_length: Option<u64>,
    /// Body bytes read (equal to `content_length` when it framed the body).
    pub body_len: u64,
    /// Whether the response has a body at all (not 1xx, 204 or 304).
    pub has_body: bool,
    /// `Connection: close`: nothing follows on this connection.
    pub close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not `HTTP/1.x SSS ...`.
    StatusLine,
    /// A field line that is not `name: value`, obs-fold, a bare CR or LF.
    Header,
    /// A response with a body but no `Content-Length`.
    MissingLength,
    /// A `Content-Length` that is not digits, overflows, or two different ones.
    BadLength,
    /// More than [`MAX_HEAD`] bytes without the end of the head.
    HeadTooLarge,
    /// `Transfer-Encoding` (chunked or another coding): not supported.
    Unsupported,
    /// The connection ended inside a head.
    TruncatedHead,
    /// The connection ended inside a body: fewer bytes than `Content-Length`.
    TruncatedBody,
}

#[derive(Default)]
pub struct Reader {
    /// An incomplete head carried over from earlier reads.
    head: Vec<u8>,
    /// The response whose body is being read, and the bytes of it still to come.
    body: Option<(Response, u64)>,
}

impl Reader {
    /// Consume `data`, appending every response it completes to `out`. After an error the
    /// connection cannot be resynchronised and must be closed.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Response>) -> Result<(), ParseError> {
        loop {
            if let Some((_, left)) = &mut self.body {
                let take = (*left).min(data.len() as u64);
                *left -= take;
                data = &data[take as usize..];
                if *left > 0 {
                    return Ok(());
                }
                out.push(self.body.take().unwrap().0);
            }
            if data.is_empty() {
                return Ok(());
            }
            let parsed = if self.head.is_empty() {
                match parse_head(data)? {
                    Some((resp, n)) => Some((resp, n)),
                    None => {
                        self.head.extend_from_slice(data);
                        None
                    }
                }
            } else {
                let old = self.head.len();
                self.head.extend_from_slice(data);
                let parsed = parse_head(&self.head)?.map(|(resp, n)| (resp, n - old));
                if parsed.is_some() {
                    self.head.clear();
                }
                parsed
            };
            let Some((resp, n)) = parsed else {
                return if self.head.len() > MAX_HEAD { Err(ParseError::HeadTooLarge) } else { Ok(()) };
            };
            data = &data[n..];
            match resp.content_length.filter(|_| resp.has_body) {
                Some(len) if len > 0 => self.body = Some((resp, len)),
                _ => out.push(resp),
            }
        }
    }

    /// The peer closed the connection: an error when it was inside a response.
    pub fn eof(&self) -> Result<(), ParseError> {
        if self.body.is_some() {
            Err(ParseError::TruncatedBody)
        } else if !self.head.is_empty() {
            Err(ParseError::TruncatedHead)
        } else {
            Ok(())
        }
    }
}

/// Parse one head at the start of `buf`: the response and the head's length, `None` when
/// the head is not complete yet (an impossible start is refused at once).
pub fn parse_head(buf: &[u8]) -> Result<Option<(Response, usize)>, ParseError> {
    const PREFIX: &[u8] = b"HTTP/1.";
    let n = buf.len().min(PREFIX.len());
    if buf[..n] != PREFIX[..n] {
        return Err(ParseError::StatusLine);
    }
    let Some(end) = memmem::find(buf, b"\r\n\r\n") else {
        if let Some(eol) = memchr::memchr(b'\n', buf) {
            status_line(&buf[..eol])?;
        }
        return if buf.len() > MAX_HEAD { Err(ParseError::HeadTooLarge) } else { Ok(None) };
    };
    // Through the first CRLF of the terminator, less its LF: every line keeps its CR.
    let head = &buf[..end + 1];
    let mut lines = head.split(|&b| b == b'\n');
    let status = status_line(lines.next().unwrap_or_default())?;
    let mut content_length = None;
    let mut close = false;
    for line in lines {
        let line = line.strip_suffix(b"\r").ok_or(ParseError::Header)?;
        let colon = memchr::memchr(b':', line).ok_or(ParseError::Header)?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) || value.contains(&b'\r') {
            return Err(ParseError::Header);
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = parse_length(value).ok_or(ParseError::BadLength)?;
            if content_length.is_some_and(|old| old != v) {
                return Err(ParseError::BadLength);
            }
            content_length = Some(v);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(ParseError::Unsupported);
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= value.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(b"close"));
        }
    }
    let has_body = !(status < 200 || status == 204 || status == 304);
    if has_body && content_length.is_none() {
        return Err(ParseError::MissingLength);
    }
    let body_len = if has_body { content_length.unwrap_or(0) } else { 0 };
    Ok(Some((Response { status, content_length, body_len, has_body, close }, end + 4)))
}

/// `HTTP/1.x SSS[ reason]` (with its CR) → the status code.
fn status_line(line: &[u8]) -> Result<u16, ParseError> {
    let line = line.strip_suffix(b"\r").ok_or(ParseError::StatusLine)?;
    let ok = line.len() >= 12
        && line.starts_with(b"HTTP/1.")
        && line[7].is_ascii_digit()
        && line[8] == b' '
        && line[9..12].iter().all(u8::is_ascii_digit)
        && line[9] != b'0'
        && (line.len() == 12 || line[12] == b' ')
        && !line[12..].iter().any(|&b| b == b'\r' || b == 0);
    if !ok {
        return Err(ParseError::StatusLine);
    }
    Ok(line[9..12].iter().fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0')))
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
