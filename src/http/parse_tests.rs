//! Table-driven tests for the request-head parser (`parse`) and the chunked body decoder,
//! in the style of httparse's `req!` tests: an input, and exactly what must come out of it,
//! the `ParseError` variant and its status code included.

use super::chunked::ChunkedDecoder;
use super::parse::{BodyFraming, Limits, Method, ParseError, Request, Status, Version, parse};
use ParseError::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn show(input: &[u8]) -> String {
    let s = String::from_utf8_lossy(input);
    if s.chars().count() > 120 {
        format!("{:?}... ({} bytes)", s.chars().take(120).collect::<String>(), input.len())
    } else {
        format!("{s:?}")
    }
}

/// `input` must parse to a complete head; returns it and the bytes it took.
#[track_caller]
fn complete_with<'a>(input: &'a [u8], limits: &Limits) -> (Request<'a>, usize) {
    match parse(input, limits) {
        Ok(Status::Complete(req, n)) => (req, n),
        other => panic!("{}: expected Complete, got {other:?}", show(input)),
    }
}

#[track_caller]
fn complete(input: &[u8]) -> (Request<'_>, usize) {
    complete_with(input, &Limits::default())
}

/// `input` must be one whole head, every byte of it consumed.
#[track_caller]
fn whole_with<'a>(input: &'a [u8], limits: &Limits) -> Request<'a> {
    let (req, n) = complete_with(input, limits);
    assert_eq!(n, input.len(), "{}: bytes consumed", show(input));
    req
}

#[track_caller]
fn whole(input: &[u8]) -> Request<'_> {
    whole_with(input, &Limits::default())
}

#[track_caller]
fn expect_err_with(input: &[u8], limits: &Limits, want: ParseError, status: u16) {
    match parse(input, limits) {
        Err(e) => {
            assert_eq!(e, want, "{}", show(input));
            assert_eq!(e.status(), status, "{}: status of {e:?}", show(input));
        }
        Ok(other) => panic!("{}: expected Err({want:?}), got Ok({other:?})", show(input)),
    }
}

#[track_caller]
fn expect_err(input: &[u8], want: ParseError, status: u16) {
    expect_err_with(input, &Limits::default(), want, status)
}

#[track_caller]
fn expect_partial_with(input: &[u8], limits: &Limits) {
    match parse(input, limits) {
        Ok(Status::Partial) => {}
        other => panic!("{}: expected Partial, got {other:?}", show(input)),
    }
}

#[track_caller]
fn expect_partial(input: &[u8]) {
    expect_partial_with(input, &Limits::default())
}

/// `GET / HTTP/1.1`, `Host: a`, then `fields` (whole lines, CRLF included), then the end.
fn get11(fields: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n").into_bytes()
}

/// `GET / HTTP/1.0` without Host, then `fields`, then the end.
fn get10(fields: &str) -> Vec<u8> {
    format!("GET / HTTP/1.0\r\n{fields}\r\n").into_bytes()
}

/// `GET / HTTP/1.1`, `Host: a`, then one raw field line `line` (CRLF added), then the end.
fn with_field(line: &[u8]) -> Vec<u8> {
    let mut v = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    v.extend_from_slice(line);
    v.extend_from_slice(b"\r\n\r\n");
    v
}

/// A request line of exactly `len` bytes, CRLF included: `GET /aaa…a HTTP/1.1\r\n`.
fn request_line_of(len: usize) -> Vec<u8> {
    let fixed = "GET /".len() + " HTTP/1.1\r\n".len();
    let mut v = b"GET /".to_vec();
    v.resize(len - fixed + 5, b'a');
    v.extend_from_slice(b" HTTP/1.1\r\n");
    assert_eq!(v.len(), len);
    v
}

/// `httparse`-style one-case tests: `req!(name, input, |req| { checks })` for a head that
/// must parse whole, `req!(name, input, Err(Variant) => status)` for one that must be refused.
macro_rules! req {
    ($name:ident, $input:expr, |$req:ident| $body:block) => {
        #[test]
        fn $name() {
            let input: &[u8] = $input;
            let $req = whole(input);
            $body
        }
    };
    ($name:ident, $input:expr, Err($err:ident) => $status:expr) => {
        #[test]
        fn $name() {
            expect_err($input, ParseError::$err, $status);
        }
    };
}

// ---------------------------------------------------------------------------------------
// Status codes
// ---------------------------------------------------------------------------------------

#[test]
fn status_codes() {
    let cases = [
        (MissingVersion, 400),
        (BadRequestLine, 400),
        (BadMethod, 400),
        (BadTarget, 400),
        (BadVersion, 400),
        (VersionNotSupported, 505),
        (RequestLineTooLong, 414),
        (HeaderTooLarge, 431),
        (TooManyHeaders, 431),
        (BadHeaderName, 400),
        (WhitespaceBeforeColon, 400),
        (ObsFold, 400),
        (MissingColon, 400),
        (BadHeaderValue, 400),
        (BareCr, 400),
        (MissingHost, 400),
        (DuplicateHost, 400),
        (BadHost, 400),
        (BadContentLength, 400),
        (ConflictingContentLength, 400),
        (TransferEncodingWithContentLength, 400),
        (TransferEncodingOnHttp10, 400),
        (UnsupportedTransferCoding, 501),
        (BadTransferEncoding, 400),
        (BadChunk, 400),
        (BodyTooLarge, 413),
    ];
    for (e, status) in cases {
        assert_eq!(e.status(), status, "{e:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Request line
// ---------------------------------------------------------------------------------------

req!(simple_get, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", |req| {
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.target, b"/");
    assert_eq!(req.version, Version::Http11);
    assert!(req.keep_alive);
    assert_eq!(req.body, BodyFraming::None);
    assert_eq!(req.header("host"), Some(&b"example.com"[..]));
});

req!(simple_head_http10, b"HEAD /index.html HTTP/1.0\r\n\r\n", |req| {
    assert_eq!(req.method, Method::Head);
    assert_eq!(req.target, b"/index.html");
    assert_eq!(req.version, Version::Http10);
    assert!(!req.keep_alive);
    assert_eq!(req.body, BodyFraming::None);
    assert_eq!(req.header("host"), None);
});

req!(options_asterisk, b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", |req| {
    assert_eq!(req.method, Method::Options);
    assert_eq!(req.target, b"*");
});

req!(absolute_form_target, b"GET http://a.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\n\r\n", |req| {
    assert_eq!(req.target, b"http://a.example/x?y=1");
});

req!(
    target_of_every_visible_byte,
    b"GET /!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~ HTTP/1.1\r\nHost: a\r\n\r\n",
    |req| {
        assert_eq!(req.target, b"/!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~");
    }
);

req!(get_http09, b"GET /\r\n", Err(MissingVersion) => 400);
req!(get_http09_with_crlf_end, b"GET /\r\n\r\n", Err(MissingVersion) => 400);
req!(get_http09_lf, b"GET /index.html\n\n", Err(MissingVersion) => 400);
req!(head_http09, b"HEAD /x\r\nHost: a\r\n\r\n", Err(MissingVersion) => 400);

#[test]
fn methods_are_case_sensitive_tokens() {
    let cases: &[(&str, Method)] = &[
        ("GET", Method::Get),
        ("HEAD", Method::Head),
        ("OPTIONS", Method::Options),
        ("get", Method::Other(b"get")),
        ("Get", Method::Other(b"Get")),
        ("head", Method::Other(b"head")),
        ("options", Method::Other(b"options")),
        ("PATCH", Method::Other(b"PATCH")),
        ("POST", Method::Other(b"POST")),
        ("FOO", Method::Other(b"FOO")),
        ("GETS", Method::Other(b"GETS")),
        ("GE", Method::Other(b"GE")),
        ("M-SEARCH", Method::Other(b"M-SEARCH")),
        ("!#$%&'*+-.^_`|~09azAZ", Method::Other(b"!#$%&'*+-.^_`|~09azAZ")),
    ];
    for &(m, want) in cases {
        let input = format!("{m} / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(whole(input.as_bytes()).method, want, "{m}");
    }
}

#[test]
fn bad_methods() {
    let cases: &[&[u8]] = &[
        b"",
        b"G@T",
        b"GE(T",
        b"GE)T",
        b"G,T",
        b"GE:T",
        b"G/T",
        b"G\"T",
        b"[GET]",
        b"G=T",
        b"G{T}",
        b"GET\t",
        b"G\x00T",
        b"\x00GET",
        b"G\x7fT",
        b"G\x01T",
        b"G\x0bT",
        b"G\xc3\x89T",
        b"\xff",
    ];
    for m in cases {
        let mut input = m.to_vec();
        input.extend_from_slice(b" / HTTP/1.1\r\nHost: a\r\n\r\n");
        expect_err(&input, BadMethod, 400);
    }
}

#[test]
fn request_line_shape() {
    let cases: &[(&[u8], ParseError)] = &[
        // exactly one SP between method and target, and between target and version
        (b"GET  / HTTP/1.1\r\n", BadTarget),
        (b"GET /  HTTP/1.1\r\n", BadVersion),
        (b"GET / HTTP/1.1 \r\n", BadVersion),
        (b" GET / HTTP/1.1\r\n", BadMethod),
        (b"GET / HTTP/1.1 extra\r\n", BadVersion),
        (b"GET / / HTTP/1.1\r\n", BadVersion),
        // HTAB is not a separator
        (b"GET\t/\tHTTP/1.1\r\n", BadRequestLine),
        (b"GET\t/ HTTP/1.1\r\n", BadMethod),
        (b"GET /\tHTTP/1.1\r\n", BadRequestLine),
        // too few parts
        (b"GET\r\n", BadRequestLine),
        (b"GET \r\n", BadRequestLine),
        (b"GET  \r\n", BadTarget),
        (b"/\r\n", BadRequestLine),
        (b"HTTP/1.1\r\n", BadRequestLine),
    ];
    for &(line, want) in cases {
        let mut input = line.to_vec();
        input.extend_from_slice(b"Host: a\r\n\r\n");
        expect_err(&input, want, 400);
        // A request line is judged as soon as it is whole, before any field arrives.
        expect_err(line, want, 400);
    }
}

#[test]
fn bad_targets() {
    let cases: &[&[u8]] = &[
        b"/a\x7fb",
        b"/\xff",
        b"/\x80",
        b"/caf\xc3\xa9",
        b"/a\x00b",
        b"\x00",
        b"/a\x01",
        b"/a\tb",
        b"/a\x0bb",
        b"/a\x0cb",
        b"/a\x1bb",
    ];
    for t in cases {
        let mut input = b"GET ".to_vec();
        input.extend_from_slice(t);
        input.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
        expect_err(&input, BadTarget, 400);
    }
}

#[test]
fn versions() {
    for (v, want) in [
        ("HTTP/1.1", Version::Http11),
        ("HTTP/1.0", Version::Http10),
        ("HTTP/1.7", Version::Http11),
        ("HTTP/1.9", Version::Http11),
    ] {
        let input = format!("GET / {v}\r\nHost: a\r\n\r\n");
        assert_eq!(whole(input.as_bytes()).version, want, "{v}");
    }
    let not_supported = ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/0.0", "HTTP/2.1", "HTTP/9.9"];
    for v in not_supported {
        let input = format!("GET / {v}\r\nHost: a\r\n\r\n");
        expect_err(input.as_bytes(), VersionNotSupported, 505);
        // answered as soon as the request line is in
        expect_err(format!("GET / {v}\r\n").as_bytes(), VersionNotSupported, 505);
    }
    let bad: &[&[u8]] = &[
        b"http/1.1",
        b"Http/1.1",
        b"HTTP/1.10",
        b"HTTP/1.1 ",
        b"HTTP/11",
        b"HTTP/1",
        b"HTTP/2",
        b"HTTP/1.",
        b"HTTP/.1",
        b"HTTP/",
        b"HTTP",
        b"HTTP/1.x",
        b"HTTP/a.1",
        b"HTTPS/1.1",
        b"HTTP/1,1",
        b"HTTP/01.1",
        b"HTTP/+1.1",
        b"HTTP/1.1x",
        b"xHTTP/1.1",
        b"HTTP/1.1\t",
        b"HTTP/1.1\x00",
        b"HTTP/\x00.1",
        b"HTTP/\xd9\xa1.1",
    ];
    for v in bad {
        let mut input = b"GET / ".to_vec();
        input.extend_from_slice(v);
        input.extend_from_slice(b"\r\nHost: a\r\n\r\n");
        expect_err(&input, BadVersion, 400);
    }
}

// ---------------------------------------------------------------------------------------
// NUL and bare CR
// ---------------------------------------------------------------------------------------

#[test]
fn nul_anywhere_is_refused() {
    let cases: &[(&[u8], ParseError)] = &[
        (b"G\x00ET / HTTP/1.1\r\nHost: a\r\n\r\n", BadMethod),
        (b"\x00GET / HTTP/1.1\r\nHost: a\r\n\r\n", BadMethod),
        (b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
        (b"GET / HTTP/1.1\x00\r\nHost: a\r\n\r\n", BadVersion),
        (b"GET / HTTP/1.1\r\nHo\x00st: a\r\n\r\n", BadHeaderName),
        (b"GET / HTTP/1.1\r\n\x00Host: a\r\n\r\n", BadHeaderName),
        (b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", BadHeaderValue),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n", BadHeaderValue),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", BadHeaderValue),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\x00\r\n\r\n", MissingColon),
        (b"\r\n\x00\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine),
    ];
    for &(input, want) in cases {
        expect_err(input, want, 400);
    }
}

#[test]
fn bare_cr_anywhere_is_refused() {
    let cases: &[(&[u8], ParseError)] = &[
        // in the request line
        (b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", BareCr),
        (b"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", BareCr),
        (b"G\rET / HTTP/1.1\r\nHost: a\r\n\r\n", BareCr),
        (b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", BareCr),
        (b"GET\r/ HTTP/1.1\r\nHost: a\r\n\r\n", BareCr),
        (b"GET / HTTP/1.1\rHost: a\r\n\r\n", BareCr),
        (b"\r\n\r\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", BareCr),
        // in a field value
        (b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", BareCr),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", BareCr),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n", BareCr),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX:\r\r\n\r\n", BareCr),
        (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", BareCr),
        // in a field name
        (b"GET / HTTP/1.1\r\nHost: a\r\nX\r: b\r\n\r\n", BadHeaderName),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\rX: b\r\n\r\n", BadHeaderName),
    ];
    for &(input, want) in cases {
        expect_err(input, want, 400);
    }
    // CR CR LF where the empty line should be: refused, whichever way it is named.
    let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n";
    let e = parse(input, &Limits::default()).expect_err("CR CR LF as the end of the head");
    assert!(matches!(e, BareCr | MissingColon), "{e:?}");
    assert_eq!(e.status(), 400);
}

#[test]
fn crlf_and_bare_lf_line_endings() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\nX: b\n\n",
        b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\n",
        b"GET / HTTP/1.1\nHost: a\r\nX: b\n\r\n",
    ];
    for &input in cases {
        let req = whole(input);
        assert_eq!(req.version, Version::Http11);
        assert_eq!(req.header("Host"), Some(&b"a"[..]));
        assert_eq!(req.header("x"), Some(&b"b"[..]), "{}", show(input));
    }
}

// ---------------------------------------------------------------------------------------
// Field lines
// ---------------------------------------------------------------------------------------

req!(obs_fold_space, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", Err(ObsFold) => 400);
req!(obs_fold_tab, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", Err(ObsFold) => 400);
req!(obs_fold_lf, b"GET / HTTP/1.1\nHost: a\nX: a\n b\n\n", Err(ObsFold) => 400);
req!(obs_fold_first_line, b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", Err(ObsFold) => 400);
req!(obs_fold_whitespace_only_line, b"GET / HTTP/1.1\r\nHost: a\r\n \r\n\r\n", Err(ObsFold) => 400);
req!(obs_fold_on_partial_input, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n", Err(ObsFold) => 400);

#[test]
fn field_line_errors() {
    let cases: &[(&[u8], ParseError)] = &[
        (b"Host : b", WhitespaceBeforeColon),
        (b"Host\t: b", WhitespaceBeforeColon),
        (b"X-A  : b", WhitespaceBeforeColon),
        (b"X-A \t: b", WhitespaceBeforeColon),
        (b"X-A b", MissingColon),
        (b"X-A", MissingColon),
        (b"X-A=b", MissingColon),
        (b": b", BadHeaderName),
        (b":b", BadHeaderName),
        (b"X A: b", BadHeaderName),
        (b"X@A: b", BadHeaderName),
        (b"[x]: b", BadHeaderName),
        (b"X\"A: b", BadHeaderName),
        (b"X/A: b", BadHeaderName),
        (b"X(A): b", BadHeaderName),
        (b"X\x7f: b", BadHeaderName),
        (b"X\x01: b", BadHeaderName),
        (b"X\tA: b", BadHeaderName),
        (b"H\xc3\xb3st: b", BadHeaderName),
        (b"X: a\x7fb", BadHeaderValue),
        (b"X: \x01", BadHeaderValue),
        (b"X: a\x1bb", BadHeaderValue),
        (b"X: a\x0bb", BadHeaderValue),
        (b"X: a\x0cb", BadHeaderValue),
        (b"X: a\x08", BadHeaderValue),
    ];
    for &(line, want) in cases {
        expect_err(&with_field(line), want, 400);
        // judged as soon as the line is whole, without waiting for the end of the head
        let mut partial = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        partial.extend_from_slice(line);
        partial.extend_from_slice(b"\r\n");
        expect_err(&partial, want, 400);
    }
}

#[test]
fn field_values_accepted() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"X: b", b"b"),
        (b"X:b", b"b"),
        (b"X:", b""),
        (b"X: ", b""),
        (b"X: \t ", b""),
        (b"X:   a b\tc  \t", b"a b\tc"),
        (b"X: caf\xc3\xa9", b"caf\xc3\xa9"),
        (b"X: \x80\xff", b"\x80\xff"),
        (b"X: a:b:c", b"a:b:c"),
        (b"X:: b", b": b"),
        (b"!#$%&'*+-.^_`|~09azAZ: v", b"v"),
        (b"X: \"quoted, string\"; p=1", b"\"quoted, string\"; p=1"),
    ];
    for &(line, want) in cases {
        let input = with_field(line);
        let req = whole(&input);
        let name = &line[..line.iter().position(|&b| b == b':').unwrap()];
        let name = std::str::from_utf8(name).unwrap();
        assert_eq!(req.header(name), Some(want), "{}", show(line));
    }
}

// ---------------------------------------------------------------------------------------
// Host
// ---------------------------------------------------------------------------------------

req!(host_missing_http11, b"GET / HTTP/1.1\r\n\r\n", Err(MissingHost) => 400);
req!(host_missing_http11_other_fields, b"GET / HTTP/1.1\r\nX-Host: a\r\nHosts: b\r\n\r\n", Err(MissingHost) => 400);
req!(host_missing_http10, b"GET / HTTP/1.0\r\nX: y\r\n\r\n", |req| {
    assert_eq!(req.version, Version::Http10);
    assert_eq!(req.header("host"), None);
});
req!(host_duplicate_http11, b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", Err(DuplicateHost) => 400);
req!(host_duplicate_http11_case, b"GET / HTTP/1.1\r\nhost: a\r\nHOST: b\r\n\r\n", Err(DuplicateHost) => 400);
req!(host_duplicate_apart, b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nHost: b\r\n\r\n", Err(DuplicateHost) => 400);
req!(host_duplicate_http10, b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", Err(DuplicateHost) => 400);
req!(host_internal_space, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Err(BadHost) => 400);
req!(host_internal_tab, b"GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", Err(BadHost) => 400);
req!(host_internal_space_http10, b"GET / HTTP/1.0\r\nHost: a  b\r\n\r\n", Err(BadHost) => 400);
req!(host_list, b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", Err(BadHost) => 400);
req!(host_ows_trimmed, b"GET / HTTP/1.1\r\nHost: \t a.example:8080 \t \r\n\r\n", |req| {
    assert_eq!(req.header("host"), Some(&b"a.example:8080"[..]));
});
req!(host_no_ows, b"GET / HTTP/1.1\r\nHost:a\r\n\r\n", |req| {
    assert_eq!(req.header("Host"), Some(&b"a"[..]));
});
req!(host_name_case_insensitive, b"GET / HTTP/1.1\r\nhOsT: a\r\n\r\n", |req| {
    assert_eq!(req.header("HOST"), Some(&b"a"[..]));
});
req!(host_http10, b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", |req| {
    assert_eq!(req.header("host"), Some(&b"a"[..]));
});

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

#[test]
fn default_limits() {
    let l = Limits::default();
    assert_eq!(l.max_request_line, 8 * 1024);
    assert_eq!(l.max_header_bytes, 16 * 1024);
    assert_eq!(l.max_headers, 100);
}

#[test]
fn request_line_limit() {
    let max = Limits::default().max_request_line;
    // The limit counts the whole line, its line ending included.
    let mut at = request_line_of(max);
    at.extend_from_slice(b"Host: a\r\n\r\n");
    assert_eq!(whole(&at).target.len(), max - "GET  HTTP/1.1\r\n".len());

    let mut over = request_line_of(max + 1);
    expect_err(&over, RequestLineTooLong, 414);
    over.extend_from_slice(b"Host: a\r\n\r\n");
    expect_err(&over, RequestLineTooLong, 414);
    expect_err(&request_line_of(max + 1000), RequestLineTooLong, 414);
}

#[test]
fn request_line_limit_on_partial_input() {
    let max = Limits::default().max_request_line;
    // No LF yet, and already longer than any request line may be: refuse now.
    for len in [max + 1, max + 2, 3 * max] {
        let mut input = b"GET /".to_vec();
        input.resize(len, b'a');
        expect_err(&input, RequestLineTooLong, 414);
    }
    let mut input = b"GET /".to_vec();
    input.resize(max - 100, b'a');
    expect_partial(&input);
}

#[test]
fn leading_empty_lines_count_against_the_request_line_limit() {
    let max = Limits::default().max_request_line;
    // an endless stream of CRLF cannot make the buffer grow without bound
    expect_err(&b"\r\n".repeat(max), RequestLineTooLong, 414);
    expect_err(&b"\n".repeat(max + 1), RequestLineTooLong, 414);
    expect_partial(&b"\r\n".repeat(max / 2 - 10));
    expect_partial(&b"\n".repeat(max - 10));
}

#[test]
fn header_block_limit() {
    let max = Limits::default().max_header_bytes;
    // The field block is every field line and the empty line, line endings included:
    // `Host: a\r\n` (9) + `X: v\r\n` (5 + v) + `\r\n` (2).
    let at = with_field(format!("X: {}", "v".repeat(max - 16)).as_bytes());
    assert_eq!(whole(&at).header("x").unwrap().len(), max - 16);
    let over = with_field(format!("X: {}", "v".repeat(max - 15)).as_bytes());
    expect_err(&over, HeaderTooLarge, 431);

    // many lines, each well-formed and fewer than max_headers, still too much in all
    let fields: String = (0..60).map(|i| format!("X-{i}: {}\r\n", "v".repeat(400))).collect();
    expect_err(&get11(&fields), HeaderTooLarge, 431);
    // ...refused before the empty line arrives
    expect_err(format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}").as_bytes(), HeaderTooLarge, 431);
    // and a large block just under the limit passes
    let fields: String = (0..35).map(|i| format!("X-{i:02}: {}\r\n", "v".repeat(450))).collect();
    let input = get11(&fields);
    let req = whole(&input);
    assert_eq!(req.headers("x-34").count(), 1);
}

#[test]
fn header_block_limit_on_partial_input() {
    let max = Limits::default().max_header_bytes;
    // one unfinished field line longer than the block may be
    for len in [max + 1, max + 100, 2 * max] {
        let mut input = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        input.resize("GET / HTTP/1.1\r\n".len() + len, b'v');
        expect_err(&input, HeaderTooLarge, 431);
    }
    let mut input = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    input.resize(max, b'v');
    expect_partial(&input);
}

#[test]
fn field_count_limit() {
    let max = Limits::default().max_headers;
    let fields = |n: usize| -> String { (1..n).map(|i| format!("X-{i}: {i}\r\n")).collect() };
    // Host and 99 more: exactly 100 fields
    let input = get11(&fields(max));
    let req = whole(&input);
    assert_eq!(req.header("x-99"), Some(&b"99"[..]));
    assert_eq!(req.header("x-100"), None);
    // Host and 100 more: 101
    expect_err(&get11(&fields(max + 1)), TooManyHeaders, 431);
    expect_err(&get11(&fields(max + 50)), TooManyHeaders, 431);
    // refused before the empty line arrives; 100 so far is not yet a reason
    let head = |n: usize| format!("GET / HTTP/1.1\r\nHost: a\r\n{}", fields(n)).into_bytes();
    expect_err(&head(max + 1), TooManyHeaders, 431);
    expect_partial(&head(max));
    // HTTP/1.0 without Host: 100 of anything
    let fields10: String = (0..max).map(|i| format!("X-{i}: {i}\r\n")).collect();
    whole(&get10(&fields10)[..]);
    let fields10: String = (0..=max).map(|i| format!("X-{i}: {i}\r\n")).collect();
    expect_err(&get10(&fields10), TooManyHeaders, 431);
}

#[test]
fn custom_limits() {
    let l = Limits { max_request_line: 32, max_header_bytes: 64, max_headers: 3, max_body: 16 };

    // request line: 32 bytes with its CRLF is fine, 33 is not, whole or partial
    let mut at = request_line_of(32);
    at.extend_from_slice(b"Host: a\r\n\r\n");
    whole_with(&at, &l);
    expect_err_with(&request_line_of(33), &l, RequestLineTooLong, 414);
    let mut partial = b"GET /".to_vec();
    partial.resize(33, b'a');
    expect_err_with(&partial, &l, RequestLineTooLong, 414);
    partial.truncate(20);
    expect_partial_with(&partial, &l);
    expect_err_with(&b"\r\n".repeat(17), &l, RequestLineTooLong, 414);

    // field block: 64 bytes in all is fine, 65 is not, whole or partial
    let at = with_field(format!("X: {}", "v".repeat(48)).as_bytes());
    whole_with(&at, &l);
    let over = with_field(format!("X: {}", "v".repeat(49)).as_bytes());
    expect_err_with(&over, &l, HeaderTooLarge, 431);
    let mut partial = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    partial.resize(16 + 65, b'v');
    expect_err_with(&partial, &l, HeaderTooLarge, 431);
    partial.truncate(16 + 40);
    expect_partial_with(&partial, &l);

    // field count: 3 is fine, 4 is not, whole or partial
    whole_with(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", &l);
    expect_err_with(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &l, TooManyHeaders, 431);
    expect_err_with(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n", &l, TooManyHeaders, 431);
    expect_partial_with(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n", &l);

    // the same heads pass under the default limits
    whole(&request_line_of(33).into_iter().chain(*b"Host: a\r\n\r\n").collect::<Vec<_>>());
    whole(&over);
    whole(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
}

// ---------------------------------------------------------------------------------------
// Leading empty lines, pipelining, partial input
// ---------------------------------------------------------------------------------------

req!(leading_crlf, b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", |req| {
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.target, b"/");
});
req!(leading_lf, b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", |req| {
    assert_eq!(req.method, Method::Get);
});
req!(leading_mixed_empty_lines, b"\r\n\n\r\n\n\nHEAD /x HTTP/1.0\n\n", |req| {
    assert_eq!(req.method, Method::Head);
    assert_eq!(req.target, b"/x");
});
req!(leading_space_line, b" \r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Err(BadMethod) => 400);

/// Parse every request in `buf` one after the other; returns (target, consumed) of each.
fn parse_all(mut buf: &[u8]) -> Vec<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (req, n) = complete(buf);
        assert!(n > 0 && n <= buf.len());
        let mut len = n;
        if let BodyFraming::Length(body) = req.body {
            len += body as usize;
        }
        out.push((req.target.to_vec(), len));
        buf = &buf[len..];
    }
    out
}

#[test]
fn pipelined_two() {
    let a = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
    let b = b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    let buf = [&a[..], &b[..]].concat();
    let (req, n) = complete(&buf);
    assert_eq!(req.target, b"/1");
    assert_eq!(n, a.len());
    assert_eq!(whole(&buf[n..]).target, b"/2");
}

#[test]
fn pipelined_three() {
    let reqs: [&[u8]; 3] = [
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\r\nHEAD /2 HTTP/1.1\nHost: a\nX: y\n\n",
        b"GET /3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ];
    let buf = reqs.concat();
    let got = parse_all(&buf);
    let want: Vec<(Vec<u8>, usize)> =
        [b"/1", b"/2", b"/3"].iter().zip(reqs).map(|(t, r)| (t.to_vec(), r.len())).collect();
    assert_eq!(got, want);
}

#[test]
fn pipelined_with_bodies() {
    let buf = b"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\nHost: a\r\n\r\n\
                POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
                GET /4 HTTP/1.1\r\nHost: a\r\n\r\n";
    let (req, n) = complete(buf);
    assert_eq!(req.body, BodyFraming::Length(5));
    assert_eq!(&buf[n..n + 5], b"hello");
    let rest = &buf[n + 5..];
    let (req, n) = complete(rest);
    assert_eq!(req.target, b"/2");
    let rest = &rest[n..];
    let (req, n) = complete(rest);
    assert_eq!((req.target, req.body), (&b"/3"[..], BodyFraming::Chunked));
    let rest = &rest[n..];
    let mut dec = ChunkedDecoder::new(1 << 20);
    let taken = dec.feed(rest).unwrap();
    assert!(dec.is_done());
    assert_eq!(taken, b"5\r\nhello\r\n0\r\n\r\n".len());
    assert_eq!(whole(&rest[taken..]).target, b"/4");
}

#[test]
fn the_head_ends_where_the_body_begins() {
    // whatever follows the empty line is not the parser's: not even a broken request
    for tail in [&b""[..], b"\r\n", b"\x00\x01garbage", b"GET", b" \r\n", b"\r"] {
        let buf = [&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..], tail].concat();
        let (_, n) = complete(&buf);
        assert_eq!(n, buf.len() - tail.len(), "{}", show(tail));
    }
}

#[test]
fn every_strict_prefix_is_partial() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\n\nGET /x HTTP/1.1\nHost: a\r\n\n",
        b"HEAD /index.html HTTP/1.0\r\n\r\n",
        b"POST /upload?x=1 HTTP/1.1\r\nHost: a.example\r\nContent-Length: 12\r\nConnection: keep-alive, close\r\n\
          Accept: */*\r\nX-Empty:\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for &input in cases {
        whole(input);
        for k in 0..input.len() {
            expect_partial(&input[..k]);
        }
    }
}

#[test]
fn empty_input_is_partial() {
    expect_partial(b"");
    expect_partial(b"\r");
    expect_partial(b"\r\n");
    expect_partial(b"\n\n\n");
}

// ---------------------------------------------------------------------------------------
// Content-Length
// ---------------------------------------------------------------------------------------

#[test]
fn content_length_values() {
    let ok: &[(&str, BodyFraming)] = &[
        ("0", BodyFraming::None),
        ("00", BodyFraming::None),
        ("5", BodyFraming::Length(5)),
        ("005", BodyFraming::Length(5)),
        ("  5\t", BodyFraming::Length(5)),
        ("1048576", BodyFraming::Length(1 << 20)),
        ("18446744073709551615", BodyFraming::Length(u64::MAX)),
    ];
    for &(v, want) in ok {
        let input = get11(&format!("Content-Length: {v}\r\n"));
        let req = whole(&input);
        assert_eq!(req.body, want, "{v:?}");
    }
    let bad: &[&[u8]] = &[
        b"+5",
        b"-5",
        b"0x5",
        b"5, 6",
        b"5,6",
        b"5 6",
        b"5,5",
        b"5, 5",
        b"",
        b" ",
        b"18446744073709551616",
        b"99999999999999999999999",
        b"5.0",
        b"1e3",
        b"five",
        b"5;",
        b"\"5\"",
        b"\xd9\xa5",
        b"\xef\xbc\x95",
    ];
    for v in bad {
        let line = [&b"Content-Length: "[..], v].concat();
        expect_err(&with_field(&line), BadContentLength, 400);
    }
}

req!(content_length_repeated_equal, &get11("Content-Length: 5\r\nContent-Length: 5\r\n"), |req| {
    assert_eq!(req.body, BodyFraming::Length(5));
});
req!(content_length_repeated_zero, &get11("Content-Length: 0\r\ncontent-length: 0\r\n"), |req| {
    assert_eq!(req.body, BodyFraming::None);
});
req!(content_length_conflicting, &get11("Content-Length: 5\r\nContent-Length: 6\r\n"), Err(ConflictingContentLength) => 400);
req!(content_length_conflicting_apart, &get11("Content-Length: 5\r\nX: y\r\nContent-Length: 5\r\ncontent-length: 0\r\n"), Err(ConflictingContentLength) => 400);
req!(content_length_bad_after_good, &get11("Content-Length: 5\r\nContent-Length: 5x\r\n"), Err(BadContentLength) => 400);
req!(content_length_name_case, &get11("cONTENT-lENGTH: 7\r\n"), |req| {
    assert_eq!(req.body, BodyFraming::Length(7));
});
req!(content_length_http10, &get10("Content-Length: 3\r\n"), |req| {
    assert_eq!(req.body, BodyFraming::Length(3));
});

// ---------------------------------------------------------------------------------------
// Transfer-Encoding
// ---------------------------------------------------------------------------------------

#[test]
fn transfer_encoding_chunked() {
    for v in ["chunked", "Chunked", "CHUNKED", "cHuNkEd", "  chunked \t", "chunked,", ", chunked"] {
        let input = get11(&format!("Transfer-Encoding: {v}\r\n"));
        let req = whole(&input);
        assert_eq!(req.body, BodyFraming::Chunked, "{v:?}");
    }
    let input = get11("transfer-encoding: chunked\r\n");
    let req = whole(&input);
    assert_eq!(req.body, BodyFraming::Chunked);
}

#[test]
fn transfer_encoding_unsupported() {
    for v in ["gzip", "gzip, chunked", "identity", "chunked, gzip", "deflate", "compress", "x-custom", "gzip,chunked"] {
        expect_err(&get11(&format!("Transfer-Encoding: {v}\r\n")), UnsupportedTransferCoding, 501);
    }
    // split over two lines: still a coding other than chunked
    expect_err(&get11("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), UnsupportedTransferCoding, 501);
}

#[test]
fn transfer_encoding_malformed() {
    for v in ["chunked, chunked", "chunked,chunked", "", " ", ",", " , ,"] {
        expect_err(&get11(&format!("Transfer-Encoding: {v}\r\n")), BadTransferEncoding, 400);
    }
    expect_err(&get11("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), BadTransferEncoding, 400);
}

req!(te_with_cl, &get11("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), Err(TransferEncodingWithContentLength) => 400);
req!(cl_with_te, &get11("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), Err(TransferEncodingWithContentLength) => 400);
req!(te_with_cl_zero, &get11("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n"), Err(TransferEncodingWithContentLength) => 400);
req!(te_on_http10, &get10("Transfer-Encoding: chunked\r\n"), Err(TransferEncodingOnHttp10) => 400);
req!(te_on_http10_with_host, &get10("Host: a\r\nTransfer-Encoding: chunked\r\n"), Err(TransferEncodingOnHttp10) => 400);

// ---------------------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------------------

#[test]
fn keep_alive() {
    let cases: &[(&str, &str, bool)] = &[
        ("1.1", "", true),
        ("1.1", "Connection: close\r\n", false),
        ("1.1", "Connection: Close\r\n", false),
        ("1.1", "Connection: CLOSE\r\n", false),
        ("1.1", "connection: close\r\n", false),
        ("1.1", "Connection: keep-alive, close\r\n", false),
        ("1.1", "Connection: close, keep-alive\r\n", false),
        ("1.1", "Connection: upgrade,close\r\n", false),
        ("1.1", "Connection:  close  \r\n", false),
        ("1.1", "Connection: keep-alive\r\nConnection: close\r\n", false),
        ("1.1", "Connection: keep-alive\r\n", true),
        ("1.1", "Connection: upgrade\r\n", true),
        ("1.1", "Connection: closed\r\n", true),
        ("1.1", "Connection: \r\n", true),
        ("1.0", "", false),
        ("1.0", "Connection: keep-alive\r\n", true),
        ("1.0", "Connection: Keep-Alive\r\n", true),
        ("1.0", "Connection: foo, keep-alive\r\n", true),
        ("1.0", "Connection: foo\r\nConnection: keep-alive\r\n", true),
        ("1.0", "Connection: close\r\n", false),
        ("1.0", "Connection: keep-alive, close\r\n", false),
        ("1.0", "Connection: keep-alives\r\n", false),
    ];
    for &(version, fields, want) in cases {
        let input = if version == "1.1" { get11(fields) } else { get10(fields) };
        assert_eq!(whole(&input).keep_alive, want, "HTTP/{version} {fields:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Request::header / headers
// ---------------------------------------------------------------------------------------

req!(
    header_lookup,
    b"GET / HTTP/1.1\r\nX-A:  one  \r\nHost: a\r\nx-a: two\r\nX-B: three\r\nX-A:\tfour\t\r\nX-C:\r\n\r\n",
    |req| {
        assert_eq!(req.header("X-A"), Some(&b"one"[..]));
        assert_eq!(req.header("x-a"), Some(&b"one"[..]));
        assert_eq!(req.headers("X-a").collect::<Vec<_>>(), [&b"one"[..], b"two", b"four"]);
        assert_eq!(req.header("x-b"), Some(&b"three"[..]));
        assert_eq!(req.headers("X-B").count(), 1);
        assert_eq!(req.header("x-c"), Some(&b""[..]));
        assert_eq!(req.header("x"), None);
        assert_eq!(req.header("x-a "), None);
        assert_eq!(req.headers("missing").count(), 0);
        assert_eq!(req.header("host"), Some(&b"a"[..]));
    }
);

req!(header_lookup_lf, b"GET / HTTP/1.1\nHost: a\nAccept: x \nAccept: y\n\n", |req| {
    assert_eq!(req.headers("accept").collect::<Vec<_>>(), [&b"x"[..], b"y"]);
});

#[test]
fn header_values_outlive_the_request() {
    let buf = b"GET /p HTTP/1.1\r\nHost: h\r\nX: v\r\n\r\n".to_vec();
    let (target, value) = {
        let req = whole(&buf);
        (req.target, req.header("x").unwrap())
    };
    assert_eq!((target, value), (&b"/p"[..], &b"v"[..]));
}

// ---------------------------------------------------------------------------------------
// Chunked bodies
// ---------------------------------------------------------------------------------------

const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n";

/// Feed `buf` whole; (bytes taken, done).
fn feed_whole(body: &[u8], limit: u64) -> Result<(usize, bool), ParseError> {
    let mut d = ChunkedDecoder::new(limit);
    let n = d.feed(body)?;
    assert!(n <= body.len());
    Ok((n, d.is_done()))
}

/// Feed `buf` one byte at a time; (bytes taken, done).
fn feed_bytewise(body: &[u8], limit: u64) -> Result<(usize, bool), ParseError> {
    let mut d = ChunkedDecoder::new(limit);
    let mut taken = 0;
    for b in body {
        if d.is_done() {
            assert_eq!(d.feed(std::slice::from_ref(b))?, 0, "a finished decoder takes nothing");
            continue;
        }
        let n = d.feed(std::slice::from_ref(b))?;
        assert_eq!(n, 1, "a running decoder takes every byte it is given");
        taken += n;
    }
    Ok((taken, d.is_done()))
}

#[test]
fn chunked_valid_bodies() {
    let bodies: &[&[u8]] = &[
        b"0\r\n\r\n",
        b"00\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"5;a=b\r\nhello\r\n0\r\n\r\n",
        b"5;a=b;c=\"d e\"\r\nhello\r\n0;last\r\n\r\n",
        b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
        b"a\r\n0123456789\r\n0\r\n\r\n",
        b"A\r\n0123456789\r\n0\r\n\r\n",
        b"1f\r\n0123456789012345678901234567890\r\n0\r\n\r\n",
        b"1F\r\n0123456789012345678901234567890\r\n0\r\n\r\n",
        b"000005\r\nhello\r\n0\r\n\r\n",
        b"3\r\n\r\n\r\r\n0\r\n\r\n",
        b"0\r\nX-Trailer: 1\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: two words\r\n\r\n",
        b"4\r\n0\r\n\r\r\n0\r\n\r\n",
    ];
    for &body in bodies {
        let buf = [body, NEXT].concat();
        assert_eq!(feed_whole(&buf, 1 << 20), Ok((body.len(), true)), "{}", show(body));
        assert_eq!(feed_bytewise(&buf, 1 << 20), Ok((body.len(), true)), "{}", show(body));
        // every split in two
        for cut in 0..=buf.len() {
            let mut d = ChunkedDecoder::new(1 << 20);
            let a = d.feed(&buf[..cut]).unwrap();
            let b = if d.is_done() { 0 } else { d.feed(&buf[cut..]).unwrap() };
            assert!(d.is_done());
            assert_eq!(a + b, body.len(), "{} cut at {cut}", show(body));
        }
        // and what follows is intact
        assert_eq!(whole(&buf[body.len()..]).target, b"/next");
    }
}

#[test]
fn chunked_body_not_yet_done() {
    for body in
        [&b""[..], b"5", b"5\r", b"5\r\n", b"5\r\nhel", b"5\r\nhello", b"5\r\nhello\r\n", b"5\r\nhello\r\n0\r\n"]
    {
        assert_eq!(feed_whole(body, 1 << 20), Ok((body.len(), false)), "{}", show(body));
        assert_eq!(feed_bytewise(body, 1 << 20), Ok((body.len(), false)), "{}", show(body));
    }
}

#[test]
fn chunked_bad_bodies() {
    let bodies: &[&[u8]] = &[
        b"zz\r\n",
        b"g\r\n",
        b"\r\n",
        b"\n",
        b";a=b\r\n",
        b"-1\r\n",
        b"+1\r\n",
        b" 5\r\n",
        b"0x5\r\n",
        b"5\rX",
        b"5\r\nhelloX",
        b"5\r\nhello\n",
        b"5\r\nhello\r\r",
        b"5\r\nhello world\r\n",
        b"5\r\nhell\r\n0\r\n\r\n",
        b"5;a\x00\r\n",
        b"5;a\x7f\r\n",
        b"0\r\nX: a\x00\r\n\r\n",
        b"0\r\nX: a\r\r\n",
        b"0\r\n\rX",
        // 16 hex digits and more: no chunk is that large, and the size would overflow
        b"0000000000000000\r\n",
        b"10000000000000000\r\n",
        b"ffffffffffffffffffff\r\n",
    ];
    for &body in bodies {
        assert_eq!(feed_whole(body, u64::MAX), Err(BadChunk), "{}", show(body));
        assert_eq!(feed_bytewise(body, u64::MAX), Err(BadChunk), "{}", show(body));
        assert_eq!(BadChunk.status(), 400);
    }
    // 15 hex digits is still a size
    assert_eq!(feed_whole(b"fffffffffffffff\r\n", u64::MAX), Ok((17, false)));
}

#[test]
fn chunked_body_limit() {
    // exactly the limit passes
    assert_eq!(feed_whole(b"a\r\n0123456789\r\n0\r\n\r\n", 10), Ok((20, true)));
    assert_eq!(feed_whole(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 10), Ok((25, true)));
    // one more does not, and is refused at the size line, before the data is sent
    for body in [&b"b\r\n"[..], b"B;x=y\r\n", b"5\r\nhello\r\n6\r\n", b"fffffffffffffff\r\n"] {
        assert_eq!(feed_whole(body, 10), Err(BodyTooLarge), "{}", show(body));
        assert_eq!(feed_bytewise(body, 10), Err(BodyTooLarge), "{}", show(body));
    }
    assert_eq!(BodyTooLarge.status(), 413);
    // trailers count too, so they cannot stream forever
    let trailer = [&b"0\r\nX: "[..], &b"v".repeat(100), b"\r\n\r\n"].concat();
    assert_eq!(feed_whole(&trailer, 50), Err(BodyTooLarge));
    assert_eq!(feed_whole(&trailer, 1000), Ok((trailer.len(), true)));
}

#[test]
fn a_request_line_is_refused_at_its_first_impossible_byte() {
    // A TLS ClientHello on the plain-text port: record type 0x16, version 3.1.
    expect_err(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", BadMethod, 400);
    expect_err(b"\x00", BadMethod, 400);
    expect_err(b"\r\n\x80", BadMethod, 400);
    expect_err(b"GET\x01", BadMethod, 400);
    expect_err(b" GET", BadMethod, 400);
    expect_err(b"GET /a\x7fb", BadTarget, 400);
    expect_err(b"GET  /", BadTarget, 400);
    expect_err(b"GET / HTTX", BadVersion, 400);
    expect_err(b"GET / HTTP/1.1\rX", BadVersion, 400);
    expect_err(b"GET / HTTP/1.1 ", BadVersion, 400);
}

#[test]
fn every_prefix_of_a_valid_request_line_waits_for_more() {
    for line in [&b"\r\nGET /a?b=c HTTP/1.1\r"[..], b"OPTIONS * HTTP/1.0", b"GET /", b"GET /\r", b"X-Y / HTTP/2.0"] {
        for k in 0..=line.len() {
            expect_partial(&line[..k]);
        }
    }
}
