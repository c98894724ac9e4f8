//! Helpers shared by the http core's table-driven tests, in the style of httparse's `req!`
//! tests: an input, and exactly what must come out of it, the `ParseError` variant and its
//! status code included. Kept in one place so every test file judges a head the same way.

use super::parse::{Limits, ParseError, Request, Status, parse};

pub(super) fn show(input: &[u8]) -> String {
    let s = String::from_utf8_lossy(input);
    if s.chars().count() > 120 {
        format!("{:?}... ({} bytes)", s.chars().take(120).collect::<String>(), input.len())
    } else {
        format!("{s:?}")
    }
}

/// `input` must parse to a complete head; returns it and the bytes it took.
#[track_caller]
pub(super) fn complete_with<'a>(input: &'a [u8], limits: &Limits) -> (Request<'a>, usize) {
    match parse(input, limits) {
        Ok(Status::Complete(req, n)) => (req, n),
        other => panic!("{}: expected Complete, got {other:?}", show(input)),
    }
}

#[track_caller]
pub(super) fn complete(input: &[u8]) -> (Request<'_>, usize) {
    complete_with(input, &Limits::default())
}

/// `input` must be one whole head, every byte of it consumed.
#[track_caller]
pub(super) fn whole_with<'a>(input: &'a [u8], limits: &Limits) -> Request<'a> {
    let (req, n) = complete_with(input, limits);
    assert_eq!(n, input.len(), "{}: bytes consumed", show(input));
    req
}

#[track_caller]
pub(super) fn whole(input: &[u8]) -> Request<'_> {
    whole_with(input, &Limits::default())
}

#[track_caller]
pub(super) fn expect_err_with(input: &[u8], limits: &Limits, want: ParseError, status: u16) {
    match parse(input, limits) {
        Err(e) => {
            assert_eq!(e, want, "{}", show(input));
            assert_eq!(e.status(), status, "{}: status of {e:?}", show(input));
        }
        Ok(other) => panic!("{}: expected Err({want:?}), got Ok({other:?})", show(input)),
    }
}

#[track_caller]
pub(super) fn expect_err(input: &[u8], want: ParseError, status: u16) {
    expect_err_with(input, &Limits::default(), want, status)
}

#[track_caller]
pub(super) fn expect_partial_with(input: &[u8], limits: &Limits) {
    match parse(input, limits) {
        Ok(Status::Partial) => {}
        other => panic!("{}: expected Partial, got {other:?}", show(input)),
    }
}

#[track_caller]
pub(super) fn expect_partial(input: &[u8]) {
    expect_partial_with(input, &Limits::default())
}

/// `GET / HTTP/1.1`, `Host: a`, then `fields` (whole lines, CRLF included), then the end.
pub(super) fn get11(fields: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n").into_bytes()
}

/// `GET / HTTP/1.0` without Host, then `fields`, then the end.
pub(super) fn get10(fields: &str) -> Vec<u8> {
    format!("GET / HTTP/1.0\r\n{fields}\r\n").into_bytes()
}

/// `GET / HTTP/1.1`, `Host: a`, then one raw field line `line` (CRLF added), then the end.
pub(super) fn with_field(line: &[u8]) -> Vec<u8> {
    let mut v = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    v.extend_from_slice(line);
    v.extend_from_slice(b"\r\n\r\n");
    v
}

/// A request line of exactly `len` bytes, CRLF included: `GET /aaa…a HTTP/1.1\r\n`.
pub(super) fn request_line_of(len: usize) -> Vec<u8> {
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
            let $req = $crate::http::test_util::whole(input);
            $body
        }
    };
    ($name:ident, $input:expr, Err($err:ident) => $status:expr) => {
        #[test]
        fn $name() {
            $crate::http::test_util::expect_err($input, $crate::http::ParseError::$err, $status);
        }
    };
}
// Exported by path rather than `#[macro_export]`: it stays private to the http tests, and
// each test file imports it by name whatever order `mod.rs` declares the modules in.
pub(super) use req;
