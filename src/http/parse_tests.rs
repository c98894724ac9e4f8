//! Table-driven tests for the request line of `parse`: every error's status code, methods,
//! targets, versions, NUL and bare CR, line endings. Field lines and body framing are in
//! `parse_fields_tests`, limits and pipelining in `parse_limits_tests`, the chunked decoder
//! in `chunked`; the helpers and `req!` are in `test_util`.

use super::parse::{BodyFraming, Limits, Method, ParseError, Version, parse};
use super::test_util::{expect_err, expect_partial, req, show, whole};
use ParseError::*;

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
