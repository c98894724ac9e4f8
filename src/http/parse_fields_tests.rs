//! Table-driven tests for the field lines of `parse`: their syntax, Host, the body framing
//! they imply (Content-Length, Transfer-Encoding), Connection, and `Request::header`.

use super::parse::{BodyFraming, ParseError, Version};
use super::test_util::{expect_err, get10, get11, req, show, whole, with_field};
use ParseError::*;

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
