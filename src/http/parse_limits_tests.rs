//! Table-driven tests for the limits `parse` enforces (request line, field block, field
//! count), whole and on partial input, and for where one head ends and the next begins:
//! leading empty lines, pipelining, partial input.

use super::chunked::ChunkedDecoder;
use super::parse::{BodyFraming, Limits, Method, ParseError};
use super::test_util::{
    complete, expect_err, expect_err_with, expect_partial, expect_partial_with, get10, get11, req, request_line_of,
    show, whole, whole_with, with_field,
};
use ParseError::*;

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

/// A line over the limit gets the same answer however it arrives: 414 when what fits in the
/// limit is a valid start of a request line, the error of its first bad byte otherwise
/// (the fuzzer's conn target found 414 for a whole line and 400 for the same line cut).
#[test]
fn an_overlong_malformed_line_is_refused_alike_whole_and_in_pieces() {
    let l = Limits { max_request_line: 32, ..Limits::default() };
    let mut bad = b"GET /a{b HTTP/1.1 ".to_vec();
    bad.resize(60, b'x');
    let mut whole_line = bad.clone();
    whole_line.extend_from_slice(b"\r\nHost: a\r\n\r\n");
    for input in [&bad[..], &bad[..40], &whole_line[..]] {
        expect_err_with(input, &l, BadVersion, 400);
    }
    expect_err_with(b"G{T /", &l, BadMethod, 400);
    let mut bad_method = b"G{T /".to_vec();
    bad_method.resize(60, b'a');
    expect_err_with(&bad_method, &l, BadMethod, 400);
    // A bad byte past the limit is never seen: the line was too long by then.
    let mut late = b"GET /".to_vec();
    late.resize(40, b'a');
    late.extend_from_slice(b"{ HTTP/1.1\r\n\r\n");
    expect_err_with(&late, &l, RequestLineTooLong, 414);
    expect_err_with(&late[..35], &l, RequestLineTooLong, 414);
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
