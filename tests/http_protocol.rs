//! HTTP/1.1 protocol behaviour of the real binary over raw TCP: methods, versions,
//! persistence, pipelining, parse errors and limits, request bodies, smuggling attempts,
//! timeouts and isolation between connections.
mod common;

use common::{Reader, Response, Server, TempDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

for_each_backend!(
    get_serves_files_with_common_fields,
    head_has_get_fields_and_no_body,
    options_is_204_with_allow_and_no_content_length,
    other_methods_are_405_and_keep_the_connection,
    http11_keeps_alive_by_default,
    http10_closes_unless_asked_to_keep_alive,
    connection_close_on_http11_closes,
    http_1_7_is_served_as_1_1,
    http2_is_505_and_http09_is_400,
    pipelined_mixed_requests_answered_in_order,
    two_hundred_pipelined_requests_in_one_write,
    request_sent_one_byte_at_a_time,
    malformed_heads_are_400_and_close,
    bad_percent_escape_is_400,
    leading_empty_lines_are_ignored,
    default_limits,
    limits_from_flags,
    content_length_body_is_skipped,
    post_with_body_is_405_and_connection_goes_on,
    chunked_body_is_discarded,
    chunked_body_in_small_pieces_with_delays,
    body_over_default_limit_is_413,
    bad_framing_is_refused_and_closes,
    smuggling_attempts_get_one_response_then_close,
    valid_transfer_encoding_spellings_are_decoded,
    unfinished_request_gets_408,
    idle_keepalive_connection_is_closed,
    a_broken_connection_does_not_disturb_another,
);

// The course's models serve through the same http/files/conn layers (c10k-models).
for_each_model!(
    http11_keeps_alive_by_default,
    connection_close_on_http11_closes,
    head_has_get_fields_and_no_body,
    pipelined_mixed_requests_answered_in_order,
    two_hundred_pipelined_requests_in_one_write,
    malformed_heads_are_400_and_close;
    a_broken_connection_does_not_disturb_another,
);

const INDEX: &[u8] = b"<!DOCTYPE html>\n<title>idx</title>\n<p>index page</p>\n";
const A: &[u8] = b"alpha file contents\n";
const B: &[u8] = b"bravo\n";
const SECRET: &[u8] = b"TOP SECRET - must never be served by a smuggled request\n";
const ALLOW: &str = "GET, HEAD, OPTIONS";

/// A server on a fixture root; the server is dropped (killed) before the root is removed.
struct Fixture {
    server: Server,
    _root: TempDir,
}

fn fixture(extra: &[&str]) -> Fixture {
    let root = TempDir::new("proto");
    root.write("index.html", INDEX);
    root.write("a.txt", A);
    root.write("b.txt", B);
    root.write("secret", SECRET);
    let server = Server::start(root.path(), extra);
    Fixture { server, _root: root }
}

// ---------------------------------------------------------------------------------------
// Checks on responses
// ---------------------------------------------------------------------------------------

/// An IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn assert_imf_fixdate(d: &str) {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    assert_eq!(d.len(), 29, "Date {d:?} is not 29 characters");
    let b = d.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    assert!(DAYS.contains(&&d[0..3]), "Date {d:?}: day name");
    assert_eq!(&d[3..5], ", ", "Date {d:?}");
    assert!(digits(5..7) && b[7] == b' ', "Date {d:?}: day");
    assert!(MONTHS.contains(&&d[8..11]) && b[11] == b' ', "Date {d:?}: month");
    assert!(digits(12..16) && b[16] == b' ', "Date {d:?}: year");
    assert!(digits(17..19) && b[19] == b':' && digits(20..22) && b[22] == b':' && digits(23..25), "Date {d:?}: time");
    assert_eq!(&d[25..], " GMT", "Date {d:?}");
}

/// What every response carries: `HTTP/1.1`, `Server`, a valid `Date`, and a
/// `Content-Length` that frames the body (none at all on 204).
fn assert_common(r: &Response, head_only: bool) {
    assert_eq!(r.version, "HTTP/1.1", "response version of {r:?}");
    assert_eq!(r.header("Server"), Some("c10k-server"), "Server of {r:?}");
    assert_imf_fixdate(r.header("Date").unwrap_or_else(|| panic!("no Date in {r:?}")));
    if r.status == 204 {
        assert_eq!(r.header("Content-Length"), None, "204 must not carry Content-Length: {r:?}");
        assert!(r.body.is_empty());
    } else {
        let len = r.header("Content-Length").unwrap_or_else(|| panic!("no Content-Length in {r:?}"));
        if !head_only {
            assert_eq!(len.parse::<usize>().unwrap(), r.body.len(), "Content-Length of {r:?}");
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => panic!("no reason phrase listed for {status}"),
    }
}

/// An error response: the status, the common fields and a small HTML page naming it.
fn assert_error_page(r: &Response, status: u16) {
    assert_eq!(r.status, status, "status of {r:?} (body {:?})", String::from_utf8_lossy(&r.body));
    assert_common(r, false);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"), "{r:?}");
    let h1 = format!("<h1>{status} {}</h1>", reason(status));
    assert!(r.body_str().contains(&h1), "body of {status} lacks {h1}: {:?}", r.body_str());
}

fn assert_ok(r: &Response, body: &[u8]) {
    assert_eq!(r.status, 200, "{r:?} (body {:?})", String::from_utf8_lossy(&r.body));
    assert_common(r, false);
    assert_eq!(r.body, body);
}

// ---------------------------------------------------------------------------------------
// Raw sessions
// ---------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum End {
    /// The server closed (FIN).
    Eof,
    /// The server reset the connection.
    Reset,
    /// Nothing more came and the connection stayed open.
    Open,
}

/// Everything the server sends on `s` until it closes or `limit` passes.
fn read_until_end(s: &TcpStream, limit: Duration) -> (Vec<u8>, End) {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, End::Open);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match (&*s).read(&mut buf) {
            Ok(0) => return (out, End::Eof),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (out, End::Open);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return (out, End::Reset),
        }
    }
}

/// Split `bytes` into responses framed by Content-Length; `head_only(i)` says whether the
/// i-th answers a HEAD. Returns the responses and whatever bytes could not be framed.
fn split_responses(mut bytes: &[u8], head_only: impl Fn(usize) -> bool) -> (Vec<Response>, Vec<u8>) {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = std::str::from_utf8(&bytes[..end]).expect("response head is not UTF-8");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap().to_string();
        let Some(Ok(status)) = parts.next().map(str::parse::<u16>) else { break };
        let mut headers = Vec::new();
        for l in lines {
            let (n, v) = l.split_once(": ").unwrap_or_else(|| panic!("bad header line {l:?}"));
            headers.push((n.to_string(), v.to_string()));
        }
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().unwrap());
        let no_body = head_only(out.len()) || status == 204 || status == 304;
        let body_len = if no_body { 0 } else { len.unwrap_or_else(|| panic!("no Content-Length: {head:?}")) };
        if bytes.len() < end + 4 + body_len {
            break;
        }
        let body = bytes[end + 4..end + 4 + body_len].to_vec();
        bytes = &bytes[end + 4 + body_len..];
        out.push(Response { status, version, headers, body });
    }
    (out, bytes.to_vec())
}

struct Session {
    responses: Vec<Response>,
    leftover: Vec<u8>,
    end: End,
}

/// Write `raw` in one write on a new connection and read until the server closes (or
/// `limit` passes).
fn session_for(server: &Server, raw: &[u8], head_only: impl Fn(usize) -> bool, limit: Duration) -> Session {
    let mut s = server.connect();
    s.write_all(raw).unwrap();
    let (bytes, end) = read_until_end(&s, limit);
    let (responses, leftover) = split_responses(&bytes, head_only);
    Session { responses, leftover, end }
}

fn session(server: &Server, raw: &[u8]) -> Session {
    session_for(server, raw, |_| false, Duration::from_secs(8))
}

/// `raw` is answered with exactly one response, `status`, saying `Connection: close`,
/// and then the server closes the connection.
fn assert_refused(server: &Server, raw: &[u8], status: u16) {
    let what = String::from_utf8_lossy(raw);
    let s = session(server, raw);
    assert_eq!(s.responses.len(), 1, "{what:?}: want exactly one response, got {:?}", s.responses);
    assert!(s.leftover.is_empty(), "{what:?}: unframed bytes after the response: {:?}", s.leftover);
    let r = &s.responses[0];
    assert_error_page(r, status);
    assert_eq!(r.header("Connection"), Some("close"), "{what:?}: {r:?}");
    assert_ne!(s.end, End::Open, "{what:?}: connection left open after {status}");
}

/// A connection that reads responses one at a time.
struct Client {
    s: TcpStream,
    r: Reader,
}

impl Client {
    fn new(server: &Server) -> Client {
        let s = server.connect();
        let r = Reader::new(s.try_clone().unwrap());
        Client { s, r }
    }

    fn send(&mut self, raw: &[u8]) {
        self.s.write_all(raw).unwrap();
    }

    fn next(&mut self, head_only: bool) -> Response {
        self.r.response(head_only).expect("a response, not the end of the connection")
    }

    fn roundtrip(&mut self, raw: &str) -> Response {
        self.send(raw.as_bytes());
        self.next(raw.starts_with("HEAD "))
    }

    /// The server closes within `limit` (and sends nothing more).
    fn assert_closed_within(&mut self, limit: Duration) {
        self.s.set_read_timeout(Some(limit)).unwrap();
        assert!(self.r.closed(), "the server did not close the connection within {limit:?}");
    }
}

const GET_A: &str = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
const GET_B: &str = "GET /b.txt HTTP/1.1\r\nHost: x\r\n\r\n";
const GET_B_CLOSE: &str = "GET /b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

// ---------------------------------------------------------------------------------------
// Methods
// ---------------------------------------------------------------------------------------

fn get_serves_files_with_common_fields() {
    let f = fixture(&[]);
    let r = f.server.get("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_ok(&r, INDEX);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("Connection"), None, "HTTP/1.1 keep-alive needs no Connection field");
    assert_ok(&f.server.get("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"), INDEX);
    let r = f.server.get(GET_A);
    assert_ok(&r, A);
    assert!(r.header("Content-Type").unwrap().starts_with("text/plain"), "{r:?}");
    assert_error_page(&f.server.get("GET /missing.txt HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
}

fn head_has_get_fields_and_no_body() {
    let f = fixture(&[]);
    let get = f.server.get(GET_A);
    let head = f.server.get("HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_common(&head, true);
    for name in ["Content-Length", "Content-Type", "Last-Modified", "ETag"] {
        assert_eq!(head.header(name), get.header(name), "{name} differs between HEAD and GET");
    }
    assert_eq!(head.header("Content-Length"), Some(A.len().to_string().as_str()));

    // The response to a pipelined request follows the HEAD's head immediately: no body
    // bytes in between. Read raw bytes to be sure nothing is hidden by framing.
    for target in ["/a.txt", "/missing", "/"] {
        let raw = format!("HEAD {target} HTTP/1.1\r\nHost: x\r\n\r\n{GET_B_CLOSE}");
        let mut s = f.server.connect();
        s.write_all(raw.as_bytes()).unwrap();
        let (bytes, end) = read_until_end(&s, Duration::from_secs(8));
        assert_ne!(end, End::Open, "Connection: close was not honoured");
        let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("HEAD response head") + 4;
        let rest = &bytes[head_end..];
        assert!(
            rest.starts_with(b"HTTP/1.1 "),
            "HEAD {target}: bytes after the head: {:?}",
            String::from_utf8_lossy(rest)
        );
        let (rs, left) = split_responses(rest, |_| false);
        assert!(left.is_empty(), "HEAD {target}: trailing bytes {left:?}");
        assert_eq!(rs.len(), 1);
        assert_ok(&rs[0], B);
        let (heads, _) = split_responses(&bytes[..head_end], |_| true);
        assert_common(&heads[0], true);
    }

    // HEAD of a missing file: 404 head with the page's length, no page.
    let s = session_for(
        &f.server,
        format!("HEAD /missing HTTP/1.1\r\nHost: x\r\n\r\n{GET_B_CLOSE}").as_bytes(),
        |i| i == 0,
        Duration::from_secs(8),
    );
    assert_eq!(s.responses.len(), 2, "{:?} / {:?}", s.responses, s.leftover);
    assert_eq!(s.responses[0].status, 404);
    assert_common(&s.responses[0], true);
    assert_ne!(s.responses[0].header("Content-Length"), Some("0"));
    assert_ok(&s.responses[1], B);
    assert!(s.leftover.is_empty());
}

fn options_is_204_with_allow_and_no_content_length() {
    let f = fixture(&[]);
    for target in ["/", "*"] {
        let mut c = Client::new(&f.server);
        let r = c.roundtrip(&format!("OPTIONS {target} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(r.status, 204, "OPTIONS {target}: {r:?}");
        assert_common(&r, false);
        assert_eq!(r.header("Allow"), Some(ALLOW));
        assert_eq!(r.header("Content-Length"), None);
        // The connection carries on.
        assert_ok(&c.roundtrip(GET_A), A);
    }
    // Pipelined behind an OPTIONS, the next response starts right after the 204's head.
    let s = session(&f.server, format!("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n{GET_B_CLOSE}").as_bytes());
    assert_eq!(s.responses.len(), 2, "{:?}", s.responses);
    assert_eq!(s.responses[0].status, 204);
    assert_ok(&s.responses[1], B);
    assert!(s.leftover.is_empty());
}

fn other_methods_are_405_and_keep_the_connection() {
    let f = fixture(&[]);
    for method in ["POST", "DELETE", "PATCH", "PUT", "get", "Get", "FOO", "CONNECT", "TRACE"] {
        let mut c = Client::new(&f.server);
        let r = c.roundtrip(&format!("{method} /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_error_page(&r, 405);
        assert_eq!(r.header("Allow"), Some(ALLOW), "{method}");
        assert_eq!(r.header("Connection"), None, "{method}: 405 must not close");
        assert_ok(&c.roundtrip(GET_A), A);
    }
}

// ---------------------------------------------------------------------------------------
// Versions and persistence
// ---------------------------------------------------------------------------------------

fn http11_keeps_alive_by_default() {
    let f = fixture(&[]);
    let mut c = Client::new(&f.server);
    for _ in 0..3 {
        let r = c.roundtrip(GET_A);
        assert_ok(&r, A);
        assert_eq!(r.header("Connection"), None);
        let r = c.roundtrip(GET_B);
        assert_ok(&r, B);
    }
}

fn http10_closes_unless_asked_to_keep_alive() {
    let f = fixture(&[]);
    // Without keep-alive: Connection: close, then the server closes. HTTP/1.0 needs no Host.
    let s = session(&f.server, b"GET /a.txt HTTP/1.0\r\n\r\nGET /b.txt HTTP/1.0\r\n\r\n");
    assert_eq!(s.responses.len(), 1, "{:?}", s.responses);
    assert_ok(&s.responses[0], A);
    assert_eq!(s.responses[0].version, "HTTP/1.1");
    assert_eq!(s.responses[0].header("Connection"), Some("close"));
    assert_ne!(s.end, End::Open);
    assert!(s.leftover.is_empty());

    // With keep-alive (any case, possibly in a list): Connection: keep-alive, stays open.
    for value in ["keep-alive", "Keep-Alive", "foo, keep-alive"] {
        let mut c = Client::new(&f.server);
        let req = format!("GET /a.txt HTTP/1.0\r\nConnection: {value}\r\n\r\n");
        let r = c.roundtrip(&req);
        assert_ok(&r, A);
        assert_eq!(r.header("Connection"), Some("keep-alive"), "{value}");
        let r = c.roundtrip(&req);
        assert_ok(&r, A);
        assert_eq!(r.header("Connection"), Some("keep-alive"));
        // And a plain 1.0 request on it closes it.
        let r = c.roundtrip("GET /b.txt HTTP/1.0\r\n\r\n");
        assert_ok(&r, B);
        assert_eq!(r.header("Connection"), Some("close"));
        c.assert_closed_within(Duration::from_secs(8));
    }
}

fn connection_close_on_http11_closes() {
    let f = fixture(&[]);
    for value in ["close", "Close", "keep-alive, close"] {
        let raw = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: {value}\r\n\r\n{GET_B}");
        let s = session(&f.server, raw.as_bytes());
        assert_eq!(s.responses.len(), 1, "{value}: the request after close was answered: {:?}", s.responses);
        assert_ok(&s.responses[0], A);
        assert_eq!(s.responses[0].header("Connection"), Some("close"), "{value}");
        assert_ne!(s.end, End::Open, "{value}");
        assert!(s.leftover.is_empty());
    }
}

fn http_1_7_is_served_as_1_1() {
    let f = fixture(&[]);
    let mut c = Client::new(&f.server);
    let r = c.roundtrip("GET /a.txt HTTP/1.7\r\nHost: x\r\n\r\n");
    assert_ok(&r, A);
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!(r.header("Connection"), None);
    assert_ok(&c.roundtrip("GET /b.txt HTTP/1.7\r\nHost: x\r\n\r\n"), B);
}

fn http2_is_505_and_http09_is_400() {
    let f = fixture(&[]);
    assert_refused(&f.server, b"GET / HTTP/2.0\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", 505);
    assert_refused(&f.server, b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505);
    assert_refused(&f.server, b"GET /\r\n", 400);
    assert_refused(&f.server, b"GET /a.txt\r\n\r\n", 400);
}

// ---------------------------------------------------------------------------------------
// Pipelining
// ---------------------------------------------------------------------------------------

fn pipelined_mixed_requests_answered_in_order() {
    let f = fixture(&[]);
    let raw = [
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        GET_A,
        "GET /nope.html HTTP/1.1\r\nHost: x\r\n\r\n",
        "HEAD /b.txt HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ]
    .concat();
    let s = session_for(&f.server, raw.as_bytes(), |i| i == 3, Duration::from_secs(8));
    assert_eq!(s.responses.len(), 5, "{:?} / leftover {:?}", s.responses, s.leftover);
    assert!(s.leftover.is_empty(), "{:?}", String::from_utf8_lossy(&s.leftover));
    assert_ne!(s.end, End::Open);
    assert_ok(&s.responses[0], INDEX);
    assert_ok(&s.responses[1], A);
    assert_error_page(&s.responses[2], 404);
    assert_eq!(s.responses[3].status, 200);
    assert_common(&s.responses[3], true);
    assert_eq!(s.responses[3].header("Content-Length"), Some(B.len().to_string().as_str()));
    assert_ok(&s.responses[4], B);
    assert_eq!(s.responses[4].header("Connection"), Some("close"));
}

fn two_hundred_pipelined_requests_in_one_write() {
    let f = fixture(&[]);
    let n = 200;
    let expect = |i: usize| -> (u16, Option<&[u8]>) {
        match i % 4 {
            0 => (200, Some(A)),
            1 => (200, Some(B)),
            2 => (404, None),
            _ => (200, Some(INDEX)),
        }
    };
    let mut raw = String::new();
    for i in 0..n {
        let path = match i % 4 {
            0 => "/a.txt".to_string(),
            1 => "/b.txt".to_string(),
            2 => format!("/missing-{i}"),
            _ => "/".to_string(),
        };
        let close = if i == n - 1 { "Connection: close\r\n" } else { "" };
        raw.push_str(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n{close}\r\n"));
    }
    let s = session_for(&f.server, raw.as_bytes(), |_| false, Duration::from_secs(15));
    assert_eq!(s.responses.len(), n, "leftover {:?}", String::from_utf8_lossy(&s.leftover));
    assert!(s.leftover.is_empty());
    assert_ne!(s.end, End::Open);
    for (i, r) in s.responses.iter().enumerate() {
        let (status, body) = expect(i);
        assert_eq!(r.status, status, "response {i}");
        assert_common(r, false);
        if let Some(body) = body {
            assert_eq!(r.body, body, "response {i}");
        }
    }
}

fn request_sent_one_byte_at_a_time() {
    let f = fixture(&[]);
    let mut c = Client::new(&f.server);
    c.s.set_nodelay(true).unwrap();
    for &b in GET_A.as_bytes() {
        c.s.write_all(&[b]).unwrap();
        c.s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_ok(&c.next(false), A);
    // Exactly one response: the next one answers the next request.
    assert_ok(&c.roundtrip(GET_B), B);
}

// ---------------------------------------------------------------------------------------
// Parse errors and limits
// ---------------------------------------------------------------------------------------

fn malformed_heads_are_400_and_close() {
    let f = fixture(&[]);
    let cases: &[(&str, &[u8])] = &[
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n b\r\n\r\n"),
        ("obs-fold with tab", b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n\tb\r\n\r\n"),
        ("whitespace before colon", b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo : bar\r\n\r\n"),
        ("tab before colon", b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo\t: bar\r\n\r\n"),
        ("header line without colon", b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo bar\r\n\r\n"),
        ("NUL in header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\0b\r\n\r\n"),
        ("bare CR in header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\rb\r\n\r\n"),
        ("missing Host on 1.1", b"GET / HTTP/1.1\r\nX-Foo: bar\r\n\r\n"),
        ("duplicate Host", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
        ("duplicate identical Host", b"GET / HTTP/1.1\r\nHost: x\r\nhost: x\r\n\r\n"),
        ("Host with whitespace", b"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n"),
        ("empty header name", b"GET / HTTP/1.1\r\nHost: x\r\n: bar\r\n\r\n"),
        ("bad char in header name", b"GET / HTTP/1.1\r\nHost: x\r\nX@Foo: bar\r\n\r\n"),
        ("two spaces in request line", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("garbage version", b"GET / HTTX/1.1\r\nHost: x\r\n\r\n"),
        ("lowercase version", b"GET / http/1.1\r\nHost: x\r\n\r\n"),
        ("space-only line", b"  \r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ];
    for (what, raw) in cases {
        let s = session(&f.server, raw);
        assert_eq!(s.responses.len(), 1, "{what}: {:?}", s.responses);
        assert_error_page(&s.responses[0], 400);
        assert_eq!(s.responses[0].header("Connection"), Some("close"), "{what}");
        assert_ne!(s.end, End::Open, "{what}: connection left open");
        assert!(s.leftover.is_empty(), "{what}");
    }
}

fn bad_percent_escape_is_400() {
    let f = fixture(&[]);
    for target in ["/%zz", "/%2", "/a%g0.txt"] {
        let r = f.server.get(&format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_error_page(&r, 400);
    }
}

fn leading_empty_lines_are_ignored() {
    let f = fixture(&[]);
    assert_ok(&f.server.get("\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"), A);
    assert_ok(&f.server.get("\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"), A);
    // Also between pipelined requests.
    let s = session(&f.server, format!("{GET_A}\r\n{GET_B_CLOSE}").as_bytes());
    assert_eq!(s.responses.len(), 2, "{:?}", s.responses);
    assert_ok(&s.responses[0], A);
    assert_ok(&s.responses[1], B);
}

fn many_fields(n: usize) -> String {
    let mut raw = String::from("GET /a.txt HTTP/1.1\r\nHost: x\r\n");
    for i in 1..n {
        raw.push_str(&format!("X-Field-{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    raw
}

fn default_limits() {
    let f = fixture(&[]);
    // Request line over 8 KiB.
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    assert_refused(&f.server, long.as_bytes(), 414);
    // Without its end of line yet: still refused once over the limit.
    assert_refused(&f.server, format!("GET /{}", "a".repeat(9000)).as_bytes(), 414);
    // A request line well under the limit is fine (404: no such file).
    let r = f.server.get(&format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(4000)));
    assert_error_page(&r, 404);

    // Header section over 16 KiB: many medium fields, or one huge one.
    let mut big = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..20 {
        big.push_str(&format!("X-Big-{i}: {}\r\n", "b".repeat(1000)));
    }
    big.push_str("\r\n");
    assert_refused(&f.server, big.as_bytes(), 431);
    let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n", "h".repeat(17 * 1024));
    assert_refused(&f.server, huge.as_bytes(), 431);

    // 100 fields are allowed, 101 are not.
    assert_ok(&f.server.get(&many_fields(100)), A);
    assert_refused(&f.server, many_fields(101).as_bytes(), 431);
}

fn limits_from_flags() {
    let f =
        fixture(&["--max-request-line", "100", "--max-header-bytes", "200", "--max-headers", "3", "--max-body", "10"]);
    assert_ok(&f.server.get(GET_A), A);
    // --max-request-line 100
    let line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(150));
    assert_refused(&f.server, line.as_bytes(), 414);
    let ok_line = format!("GET /a.txt?{} HTTP/1.1\r\nHost: x\r\n\r\n", "q".repeat(40));
    assert_ok(&f.server.get(&ok_line), A);
    // --max-header-bytes 200
    let hdr = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(300));
    assert_refused(&f.server, hdr.as_bytes(), 431);
    let small = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Small: {}\r\n\r\n", "s".repeat(50));
    assert_ok(&f.server.get(&small), A);
    // --max-headers 3
    assert_ok(&f.server.get(&many_fields(3)), A);
    assert_refused(&f.server, many_fields(4).as_bytes(), 431);
    // --max-body 10
    let mut c = Client::new(&f.server);
    let r = c.roundtrip("GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
    assert_ok(&r, A);
    assert_ok(&c.roundtrip(GET_B), B);
    assert_refused(&f.server, b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n0123456789a", 413);
    let chunked =
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n01234567890123456789\r\n0\r\n\r\n";
    assert_refused(&f.server, chunked, 413);
    // Many small chunks adding up to more than the limit.
    let pieces = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n4\r\nijkl\r\n0\r\n\r\n";
    assert_refused(&f.server, pieces, 413);
}

// ---------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------

fn content_length_body_is_skipped() {
    let f = fixture(&[]);
    let raw = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello{GET_B_CLOSE}");
    let s = session(&f.server, raw.as_bytes());
    assert_eq!(s.responses.len(), 2, "{:?}", s.responses);
    assert_ok(&s.responses[0], A);
    assert_ok(&s.responses[1], B);
    assert!(s.leftover.is_empty());

    // A body that looks like a request is still only a body.
    let inner = "GET /secret HTTP/1.1\r\nHost: x\r\n\r\n";
    let raw = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{inner}{GET_B_CLOSE}", inner.len());
    let s = session(&f.server, raw.as_bytes());
    assert_eq!(s.responses.len(), 2, "{:?}", s.responses);
    assert_ok(&s.responses[0], A);
    assert_ok(&s.responses[1], B);

    // Content-Length: 0 and the same value twice are fine.
    let raw = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n{GET_B_CLOSE}");
    let s = session(&f.server, raw.as_bytes());
    assert_eq!(s.responses.len(), 2, "{:?}", s.responses);
    assert_ok(&s.responses[1], B);
}

fn post_with_body_is_405_and_connection_goes_on() {
    let f = fixture(&[]);
    let mut c = Client::new(&f.server);
    c.send(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"hello world");
    let r = c.next(false);
    assert_error_page(&r, 405);
    assert_eq!(r.header("Allow"), Some(ALLOW));
    assert_eq!(r.header("Connection"), None);
    assert_ok(&c.roundtrip(GET_A), A);
    // Chunked POST, pipelined with a GET.
    c.send(
        format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n{GET_B}")
            .as_bytes(),
    );
    assert_error_page(&c.next(false), 405);
    assert_ok(&c.next(false), B);
}

fn chunked_body_is_discarded() {
    let f = fixture(&[]);
    let bodies: &[&str] = &[
        "5\r\nhello\r\n0\r\n\r\n",
        "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
        "0\r\n\r\n",
    ];
    // A chunk whose data looks like a request.
    let inner = "GET /secret HTTP/1.1\r\nHost: x\r\n\r\n";
    let disguised = format!("{:x}\r\n{inner}\r\n0\r\n\r\n", inner.len());
    for body in bodies.iter().copied().chain([disguised.as_str()]) {
        let raw = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}{GET_B_CLOSE}");
        let s = session(&f.server, raw.as_bytes());
        assert_eq!(s.responses.len(), 2, "{body:?}: {:?} / {:?}", s.responses, s.leftover);
        assert_ok(&s.responses[0], A);
        assert_ok(&s.responses[1], B);
        assert!(s.leftover.is_empty());
    }
}

fn chunked_body_in_small_pieces_with_delays() {
    let f = fixture(&[]);
    let mut c = Client::new(&f.server);
    let pieces: &[&[u8]] = &[
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5",
        b"\r",
        b"\nhe",
        b"llo",
        b"\r\n",
        b"1",
        b"0\r\n0123456789",
        b"abcdef\r",
        b"\n0\r\n",
        b"\r",
        b"\n",
    ];
    for p in pieces {
        c.send(p);
        std::thread::sleep(Duration::from_millis(30));
    }
    assert_ok(&c.next(false), A);
    assert_ok(&c.roundtrip(GET_B), B);
}

fn body_over_default_limit_is_413() {
    let f = fixture(&[]);
    assert_refused(&f.server, b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413);
    assert_refused(&f.server, b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\nabc", 413);
    // Right at the limit is read and skipped.
    let mut c = Client::new(&f.server);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n");
    c.send(&vec![b'z'; 1 << 20]);
    assert_ok(&c.next(false), A);
    assert_ok(&c.roundtrip(GET_B), B);
}

fn bad_framing_is_refused_and_closes() {
    let f = fixture(&[]);
    let cases: &[(&str, &[u8], u16)] = &[
        ("CL +5", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400),
        ("CL -5", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello", 400),
        ("CL 0x5", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", 400),
        ("CL list", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello", 400),
        ("CL empty", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", 400),
        ("CL 5 5 (space)", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\nhello", 400),
        ("CL overflow", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\nhello", 400),
        ("two CLs", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        (
            "TE with CL",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "CL with TE",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        ("TE gzip", b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("TE on HTTP/1.0", b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (
            "bad chunk size",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "empty chunk size",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "chunk size 0x5",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "chunk size -1",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "chunk data longer than size",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
            400,
        ),
    ];
    for (what, raw, status) in cases {
        let s = session(&f.server, raw);
        assert_eq!(s.responses.len(), 1, "{what}: {:?} / {:?}", s.responses, s.leftover);
        assert_error_page(&s.responses[0], *status);
        assert_eq!(s.responses[0].header("Connection"), Some("close"), "{what}");
        assert_ne!(s.end, End::Open, "{what}: connection left open");
    }
}

// ---------------------------------------------------------------------------------------
// Smuggling
// ---------------------------------------------------------------------------------------

/// Each payload ends with a smuggled `GET /secret`: one error response must come back and
/// the connection must close, without ever answering the inner request.
fn smuggling_attempts_get_one_response_then_close() {
    let f = fixture(&[]);
    let secret = "GET /secret HTTP/1.1\r\nHost: x\r\n\r\n";
    let heads: &[(&str, &str)] = &[
        ("CL.TE", "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n"),
        ("TE.CL", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
        ("TE.TE same", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
        ("TE.TE casing", "Transfer-Encoding: chunked\r\ntransfer-encoding: CHUNKED\r\n"),
        ("TE list chunked twice", "Transfer-Encoding: chunked, chunked\r\n"),
        ("TE.TE with x", "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n"),
        ("TE.TE x first", "Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n"),
        ("TE space before colon", "Transfer-Encoding : chunked\r\n"),
        ("TE space before colon + CL", "Transfer-Encoding : chunked\r\nContent-Length: 6\r\n"),
        ("TE xchunked", "Transfer-Encoding: xchunked\r\n"),
        ("TE chunkedx", "Transfer-Encoding: chunkedx\r\n"),
        ("TE quoted", "Transfer-Encoding: \"chunked\"\r\n"),
        ("TE chunked, identity", "Transfer-Encoding: chunked, identity\r\n"),
        ("TE identity, chunked + CL", "Transfer-Encoding: identity, chunked\r\nContent-Length: 6\r\n"),
        ("TE tab + CL", "Content-Length: 6\r\nTransfer-Encoding:\tchunked\r\n"),
        ("TE vertical tab", "Transfer-Encoding:\x0bchunked\r\n"),
        ("TE form feed", "Transfer-Encoding: chunked\x0c\r\n"),
        ("TE folded", "X-Foo: bar\r\n Transfer-Encoding: chunked\r\n"),
        ("TE folded value", "Transfer-Encoding:\r\n chunked\r\n"),
        ("TE empty", "Transfer-Encoding: \r\n"),
        ("TE NUL", "Transfer-Encoding: chunked\0\r\n"),
        ("TE name without colon", "Transfer-Encoding chunked\r\n"),
        ("CL.CL", "Content-Length: 0\r\nContent-Length: 5\r\n"),
        ("CL with space inside", "Content-Length: 0 5\r\n"),
    ];
    for (what, fields) in heads {
        let raw = format!("POST / HTTP/1.1\r\nHost: x\r\n{fields}\r\n0\r\n\r\n{secret}");
        assert_one_then_close(&f.server, what, raw.as_bytes());
    }
    // HTTP/1.0 with Transfer-Encoding: the framing is faulty.
    let raw = format!("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{secret}");
    assert_one_then_close(&f.server, "TE on 1.0", raw.as_bytes());
    // A smuggled request hidden in a chunk of a bad chunked body.
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{secret}\r\n0x0\r\n\r\n{secret}",
        secret.len()
    );
    assert_one_then_close(&f.server, "bad last-chunk", raw.as_bytes());
    // An over-long chunk size.
    let raw =
        format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1{}\r\n\r\n{secret}", "0".repeat(20));
    assert_one_then_close(&f.server, "chunk size overflow", raw.as_bytes());
}

fn assert_one_then_close(server: &Server, what: &str, raw: &[u8]) {
    let s = session(server, raw);
    let lines = count_status_lines(&s);
    assert_eq!(s.responses.len(), 1, "{what}: want exactly one response, got {lines}: {:?}", s.responses);
    assert!(s.leftover.is_empty(), "{what}: extra bytes {:?}", String::from_utf8_lossy(&s.leftover));
    let r = &s.responses[0];
    assert!(r.status >= 400, "{what}: the ambiguous request was accepted: {r:?}");
    assert_common(r, false);
    assert!(!r.body.windows(SECRET.len()).any(|w| w == SECRET), "{what}: secret served");
    assert_eq!(r.header("Connection"), Some("close"), "{what}");
    assert_ne!(s.end, End::Open, "{what}: connection left open after the error");
}

fn count_status_lines(s: &Session) -> usize {
    s.responses.len() + s.leftover.windows(9).filter(|w| w == b"HTTP/1.1 ").count()
}

/// HTAB is optional whitespace around a field value, and transfer-coding names are
/// case-insensitive: these are plain, valid chunked requests.
fn valid_transfer_encoding_spellings_are_decoded() {
    let f = fixture(&[]);
    for te in ["Transfer-Encoding:\tchunked", "Transfer-Encoding: Chunked", "transfer-encoding:  CHUNKED \t"] {
        let raw = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\n{te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n{GET_B_CLOSE}");
        let s = session(&f.server, raw.as_bytes());
        assert_eq!(s.responses.len(), 2, "{te:?}: {:?} / {:?}", s.responses, s.leftover);
        assert_ok(&s.responses[0], A);
        assert_ok(&s.responses[1], B);
    }
}

// ---------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------

fn unfinished_request_gets_408() {
    let f = fixture(&["--request-timeout", "1"]);
    let partials: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe",
    ];
    // All at once, so the waits overlap.
    let started = Instant::now();
    let streams: Vec<TcpStream> = partials
        .iter()
        .map(|raw| {
            let mut s = f.server.connect();
            s.write_all(raw).unwrap();
            s
        })
        .collect();
    for (raw, s) in partials.iter().zip(&streams) {
        let what = String::from_utf8_lossy(raw);
        let (bytes, end) = read_until_end(s, Duration::from_secs(10));
        let (rs, left) = split_responses(&bytes, |_| false);
        assert_eq!(rs.len(), 1, "{what:?}: {rs:?} / {left:?}");
        assert_error_page(&rs[0], 408);
        assert_eq!(rs[0].header("Connection"), Some("close"));
        assert_ne!(end, End::Open, "{what:?}: not closed after 408");
        // A deadline never fires before its time.
        assert!(started.elapsed() >= Duration::from_secs(1), "408 after {:?}", started.elapsed());
    }
}

fn idle_keepalive_connection_is_closed() {
    let f = fixture(&["--keepalive-timeout", "1"]);
    let mut c = Client::new(&f.server);
    assert_ok(&c.roundtrip(GET_A), A);
    // Still open right after a response.
    assert_ok(&c.roundtrip(GET_B), B);
    let idle_from = Instant::now();
    let (bytes, end) = read_until_end(&c.s, Duration::from_secs(8));
    assert!(idle_from.elapsed() >= Duration::from_secs(1), "closed after {:?} idle", idle_from.elapsed());
    assert!(bytes.is_empty(), "unexpected bytes on an idle connection: {:?}", String::from_utf8_lossy(&bytes));
    assert_ne!(end, End::Open, "idle connection not closed by --keepalive-timeout 1");
}

// ---------------------------------------------------------------------------------------
// Isolation
// ---------------------------------------------------------------------------------------

fn a_broken_connection_does_not_disturb_another() {
    let f = fixture(&[]);
    let mut good = Client::new(&f.server);
    assert_ok(&good.roundtrip(GET_A), A);

    // A connection left half-way through a request.
    let mut partial = f.server.connect();
    partial.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();

    // Garbage, and binary garbage, each on its own connection.
    let garbage: &[&[u8]] = &[
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"\0\0\0\0\r\n\r\n",
    ];
    for g in garbage {
        let s = session(&f.server, g);
        assert!(s.responses.len() <= 1, "{:?}", s.responses);
        if let Some(r) = s.responses.first() {
            assert_error_page(r, 400);
        }
        assert_ne!(s.end, End::Open, "garbage {g:?} left the connection open");
        assert_ok(&good.roundtrip(GET_B), B);
    }

    // An oversized head on another connection.
    assert_refused(&f.server, format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(20000)).as_bytes(), 414);
    assert_ok(&good.roundtrip(GET_A), A);

    // The half-finished request can still be completed.
    partial.write_all(b"st: x\r\n\r\n").unwrap();
    let mut r = Reader::new(partial.try_clone().unwrap());
    assert_ok(&r.response(false).expect("response on the partial connection"), INDEX);
    assert_ok(&good.roundtrip(GET_B), B);
}
