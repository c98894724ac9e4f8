//! Responses read off any byte stream (a TCP socket, a TLS stream, bytes already read),
//! strictly: CRLF lines, `Name: value` headers, bodies framed by Content-Length.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (case-insensitive); panics if it appears twice.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut it = self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let v = it.next().map(|(_, v)| v.as_str());
        assert!(it.next().is_none(), "header {name} appears twice");
        v
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Reads responses framed by Content-Length (every response of this server has one,
/// except 204 and 304 which have no body, and any to HEAD) from `R`, through a buffer;
/// it is itself a `BufRead`, for a test that reads on past a response.
pub struct Reader<R: Read = TcpStream> {
    inner: BufReader<R>,
}

impl<R: Read> Reader<R> {
    pub fn new(s: R) -> Reader<R> {
        Reader { inner: BufReader::new(s) }
    }

    /// The stream read from.
    pub fn get_ref(&self) -> &R {
        self.inner.get_ref()
    }

    /// The stream read from, to write to (what is buffered stays buffered).
    pub fn get_mut(&mut self) -> &mut R {
        self.inner.get_mut()
    }

    /// The next response, or `None` if the stream ended before a status line.
    pub fn response(&mut self, head_only: bool) -> Option<Response> {
        let mut line = String::new();
        match self.inner.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let status_line = line.trim_end_matches("\r\n").to_string();
        assert!(line.ends_with("\r\n"), "status line not CRLF-terminated: {line:?}");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap().to_string();
        let status: u16 = parts.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.inner.read_line(&mut line).expect("header line");
            assert!(line.ends_with("\r\n"), "header line not CRLF-terminated: {line:?}");
            let l = line.trim_end_matches("\r\n");
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(": ").expect("name: value");
            headers.push((n.to_string(), v.to_string()));
        }
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().unwrap());
        let no_body = head_only || status == 204 || status == 304;
        let mut body = vec![0; if no_body { 0 } else { len.expect("Content-Length") }];
        self.inner.read_exact(&mut body).expect("body");
        Some(Response { status, version, headers, body })
    }

    /// True if the server closed the connection (EOF) within the read timeout.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.inner.read(&mut b), Ok(0))
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        self.inner.read_to_end(buf)
    }
}

impl<R: Read> BufRead for Reader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount)
    }
}

/// Status and Content-Length of the response head at the start of `r` (0 without one),
/// leaving `r` at the body.
pub fn read_head(r: &mut impl BufRead) -> (u16, usize) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
    let mut len = 0;
    loop {
        line.clear();
        r.read_line(&mut line).expect("header line");
        if line == "\r\n" {
            return (status, len);
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.trim().parse().unwrap();
        }
    }
}

/// True if the server closed `s` (EOF or reset) rather than leaving it open.
pub fn is_closed(s: &TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut b = [0u8; 1];
    match (&*s).read(&mut b) {
        Ok(0) => true,
        Ok(_) => panic!("unexpected extra bytes after the last response"),
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}
