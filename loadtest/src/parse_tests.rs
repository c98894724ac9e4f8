use super::*;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nServer: c10k\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";

/// Feed `chunks` in order; every response, or the first error.
fn run(chunks: &[&[u8]]) -> Result<Vec<Response>, ParseError> {
    let mut r = Reader::default();
    let mut out = Vec::new();
    for c in chunks {
        r.feed(c, &mut out)?;
    }
    Ok(out)
}

/// `input` split in two at every byte, and fed one byte at a time, must give `whole`'s answer.
fn every_split(input: &[u8]) -> Result<Vec<Response>, ParseError> {
    let whole = run(&[input]);
    for i in 0..=input.len() {
        assert_eq!(run(&[&input[..i], &input[i..]]), whole, "split at {i}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes), whole, "byte at a time");
    whole
}

fn one(input: &[u8]) -> Response {
    let out = every_split(input).unwrap();
    assert_eq!(out.len(), 1);
    out[0]
}

fn err(input: &[u8]) -> ParseError {
    every_split(input).unwrap_err()
}

#[test]
fn good_response_split_everywhere() {
    let r = one(OK);
    assert_eq!(r, Response { status: 200, content_length: Some(5), body_len: 5, has_body: true, close: false });
}

#[test]
fn partial_response_waits() {
    let mut r = Reader::default();
    let mut out = Vec::new();
    r.feed(&OK[..OK.len() - 1], &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(r.eof(), Err(ParseError::TruncatedBody));
    r.feed(&OK[OK.len() - 1..], &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert!(r.eof().is_ok());
    r.feed(b"HTTP/1.1 200", &mut out).unwrap();
    assert_eq!(r.eof(), Err(ParseError::TruncatedHead));
}

#[test]
fn pipelined_back_to_back() {
    let mut input = Vec::new();
    input.extend_from_slice(OK);
    input.extend_from_slice(b"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n");
    input.extend_from_slice(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5000\r\nETag: \"1\"\r\n\r\n");
    input.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    input.extend_from_slice(b"HTTP/1.1 301 Moved\r\nlocation: /a/\r\ncontent-length: 3\r\n\r\nabc");
    input.extend_from_slice(OK);
    let out = every_split(&input).unwrap();
    let statuses: Vec<u16> = out.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 204, 304, 404, 301, 200]);
    let bodies: Vec<u64> = out.iter().map(|r| r.body_len).collect();
    assert_eq!(bodies, [5, 0, 0, 0, 3, 5]);
    assert!(!out[1].has_body && !out[2].has_body && out[3].has_body);
    assert_eq!(out[2].content_length, Some(5000));
}

#[test]
fn bodiless_statuses_need_no_length() {
    assert_eq!(one(b"HTTP/1.1 204 No Content\r\n\r\n").body_len, 0);
    assert_eq!(one(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n").body_len, 0);
    assert_eq!(one(b"HTTP/1.1 100 Continue\r\n\r\n").status, 100);
}

#[test]
fn large_body_is_counted_not_buffered() {
    let mut input = b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n".to_vec();
    input.resize(input.len() + 200_000, b'x');
    let chunks: Vec<&[u8]> = input.chunks(4096).collect();
    let out = run(&chunks).unwrap();
    assert_eq!(out[0].body_len, 200_000);
}

#[test]
fn connection_close_and_header_forms() {
    assert!(one(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n").close);
    assert!(!one(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").close);
    // No reason phrase, HTTP/1.0, lower case and repeated equal lengths, tabs around values.
    assert_eq!(one(b"HTTP/1.0 200\r\ncontent-length:\t2 \r\nContent-Length: 2\r\n\r\nok").body_len, 2);
    assert_eq!(one(b"HTTP/1.1 200 \r\nX-Empty:\r\nContent-Length: 0\r\n\r\n").status, 200);
}

#[test]
fn missing_length_is_a_framing_error() {
    assert_eq!(err(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nhello"), ParseError::MissingLength);
    assert_eq!(err(b"HTTP/1.1 404 Not Found\r\n\r\n"), ParseError::MissingLength);
}

#[test]
fn chunked_is_unsupported() {
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ParseError::Unsupported
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n"),
        ParseError::Unsupported
    );
}

#[test]
fn bad_status_lines() {
    for bad in [
        &b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n"[..],
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 099 X\r\n\r\n",
        b"HTTP/1.1 200OK\r\n\r\n",
        b"http/1.1 200 OK\r\n\r\n",
        b"HTTP/1.x 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\n\r\n",
        b"HTTP/1.1 200 O\rK\r\n\r\n",
        b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"garbage",
        b"<html>",
    ] {
        assert_eq!(err(bad), ParseError::StatusLine, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn garbage_is_refused_before_the_head_ends() {
    let mut r = Reader::default();
    assert_eq!(r.feed(b"HTTX", &mut Vec::new()), Err(ParseError::StatusLine));
    let mut r = Reader::default();
    assert_eq!(r.feed(b"HTTP/1.1 2x0 OK\r\nServer:", &mut Vec::new()), Err(ParseError::StatusLine));
}

#[test]
fn bad_field_lines() {
    for bad in [
        &b"HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nName : v\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\nC: d\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\rc\r\nContent-Length: 0\r\n\r\n",
    ] {
        assert_eq!(err(bad), ParseError::Header, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn bad_lengths() {
    for v in ["+5", "0x5", "5, 6", "5,5", "-1", "", "99999999999999999999", "1 2"] {
        let input = format!("HTTP/1.1 200 OK\r\nContent-Length: {v}\r\n\r\n");
        assert_eq!(err(input.as_bytes()), ParseError::BadLength, "{v:?}");
    }
    assert_eq!(err(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), ParseError::BadLength);
}

#[test]
fn head_too_large() {
    let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
    while input.len() <= MAX_HEAD {
        input.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert_eq!(run(&[&input]), Err(ParseError::HeadTooLarge));
    let chunks: Vec<&[u8]> = input.chunks(1000).collect();
    assert_eq!(run(&chunks), Err(ParseError::HeadTooLarge));
}

#[test]
fn error_after_good_responses_keeps_them() {
    let mut input = OK.to_vec();
    input.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
    let mut r = Reader::default();
    let mut out = Vec::new();
    assert_eq!(r.feed(&input, &mut out), Err(ParseError::MissingLength));
    assert_eq!(out.len(), 1);
}
