//! Response encoder: status line and fields written into the caller's buffer, no
//! formatting machinery, no allocation once the buffer has grown.

pub const SERVER: &[u8] = b"c10k-server";

/// What the `Connection` field says, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 keep-alive: the default, nothing to say.
    Default,
    /// HTTP/1.0 that asked to keep alive.
    KeepAlive,
    Close,
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// `HTTP/1.1 NNN Reason` and `Server`.
pub fn start(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER);
    out.extend_from_slice(b"\r\n");
}

pub fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

pub fn field_u64(out: &mut Vec<u8>, name: &[u8], value: u64) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    push_u64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// `Date`, `Connection` when it has something to say, and the blank line.
pub fn finish(out: &mut Vec<u8>, date: &[u8], persistence: Persistence) {
    field(out, b"Date", date);
    match persistence {
        Persistence::Default => {}
        Persistence::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        Persistence::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

const PAGE_HEAD: &[u8] = b"<!DOCTYPE html>\n<html><head><title>";
const PAGE_MID: &[u8] = b"</title></head><body><h1>";
const PAGE_TAIL: &[u8] = b"</h1></body></html>\n";

/// A complete response with a small HTML page naming the status; `extra` fields go before
/// `Date`. `head_only` drops the page but keeps its length, as HEAD requires.
pub fn error(
    out: &mut Vec<u8>,
    status: u16,
    date: &[u8],
    persistence: Persistence,
    head_only: bool,
    extra: &[(&[u8], &[u8])],
) {
    let title_len = 4 + reason(status).len();
    start(out, status);
    field(out, b"Content-Type", b"text/html; charset=utf-8");
    field_u64(out, b"Content-Length", (PAGE_HEAD.len() + PAGE_MID.len() + PAGE_TAIL.len() + 2 * title_len) as u64);
    for (name, value) in extra {
        field(out, name, value);
    }
    finish(out, date, persistence);
    if !head_only {
        out.extend_from_slice(PAGE_HEAD);
        title(out, status);
        out.extend_from_slice(PAGE_MID);
        title(out, status);
        out.extend_from_slice(PAGE_TAIL);
    }
}

fn title(out: &mut Vec<u8>, status: u16) {
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_page_length_matches_body() {
        let mut out = Vec::new();
        error(&mut out, 404, b"D", Persistence::Close, false, &[(b"Allow", b"GET")]);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\nServer: c10k-server\r\n"));
        assert!(head.contains("\r\nAllow: GET\r\nDate: D\r\nConnection: close"));
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(body.contains("<h1>404 Not Found</h1>"));
    }

    #[test]
    fn numbers() {
        for v in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }
}
