//! Numbers from the wire through the real binary: a date or a position too large for its
//! field is refused or bounded, never wrapped (a release build answered 304 to a huge
//! year) and never a panic (a debug build lost the shard, and the connection with it).

mod common;

use common::{Server, TempDir};
use std::time::{Duration, UNIX_EPOCH};

for_each_backend!(huge_dates_are_ignored, huge_positions_are_bounded, huge_lengths_are_refused);

const BODY: &[u8] = b"hello numbers\n";
const MTIME: u64 = 1_577_836_800; // Wed, 01 Jan 2020 00:00:00 GMT

fn site() -> (TempDir, Server) {
    let dir = TempDir::new("wire-numbers");
    let p = dir.write("a.txt", BODY);
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(MTIME)).unwrap();
    let server = Server::start(dir.path(), &[]);
    (dir, server)
}

fn get(server: &Server, header: &str) -> common::Response {
    server.get(&format!("GET /a.txt HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n"))
}

/// RFC 9110 §13.1.3: an invalid date is ignored, so each of these is a 200 with the body;
/// and the shard still serves afterwards.
fn huge_dates_are_ignored() {
    let (_dir, server) = site();
    let dates = [
        "Sun Nov  6 08:49:37 99999999999999",
        "Sunday, 06-Nov-99999999999999 08:49:37 GMT",
        "Sun Nov  6 08:49:37 9223372036854775807",
        "Sunday, 06-Nov-9223372036854775807 08:49:37 GMT",
        "Sun, 06 Nov 99999999999999 08:49:37 GMT",
        "Sun, 06 Nov 2020 99999999999999999999:49:37 GMT",
        "Sun, 99999999999 Nov 2020 08:49:37 GMT",
        "Sun, 31 Nov 2020 08:49:37 GMT",
        "Sun Nov  6 08:49:37 10000",
    ];
    for date in dates {
        let r = get(&server, &format!("If-Modified-Since: {date}"));
        assert_eq!(r.status, 200, "If-Modified-Since: {date}");
        assert_eq!(r.body, BODY, "If-Modified-Since: {date}");
        // If-Range with such a date does not hold: the Range is ignored, the whole is sent
        let r = get(&server, &format!("Range: bytes=0-0\r\nIf-Range: {date}"));
        assert_eq!((r.status, r.body.as_slice()), (200, BODY), "If-Range: {date}");
    }
    // the same forms with a year in range still work
    for date in ["Sun Nov  6 08:49:37 9999", "Sunday, 06-Nov-9999 08:49:37 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"] {
        assert_eq!(get(&server, &format!("If-Modified-Since: {date}")).status, 304, "{date}");
    }
}

fn huge_positions_are_bounded() {
    let (_dir, server) = site();
    let n = BODY.len();
    let cases: &[(&str, u16, &[u8])] = &[
        ("bytes=0-99999999999999999999999999", 206, BODY),
        ("bytes=-99999999999999999999999999", 206, BODY),
        ("bytes=3-18446744073709551616", 206, &BODY[3..]),
        ("bytes=0000000000000000000000000000003-0000000000000000000000000000004", 206, &BODY[3..5]),
        ("bytes=18446744073709551615-", 416, b""),
        ("bytes=99999999999999999999999999-", 416, b""),
        ("bytes=99999999999999999999999999-1", 200, BODY),
    ];
    for &(range, status, body) in cases {
        let r = get(&server, &format!("Range: {range}"));
        assert_eq!(r.status, status, "Range: {range}");
        if status != 416 {
            assert_eq!(r.body, body, "Range: {range}");
        } else {
            assert_eq!(r.header("Content-Range"), Some(format!("bytes */{n}").as_str()), "Range: {range}");
        }
    }
    // q-values of many digits are not q-values; the file is still served
    let r = get(&server, "Accept-Encoding: gzip;q=0.99999999999999999999, br;q=18446744073709551617");
    assert_eq!((r.status, r.body.as_slice()), (200, BODY));
}

/// A Content-Length or chunk size past u64 is a 400, not a wrapped small body whose
/// remaining bytes would be read as the next request.
fn huge_lengths_are_refused() {
    let (_dir, server) = site();
    let cases = [
        ("Content-Length: 18446744073709551616", 400),
        ("Content-Length: 99999999999999999999999999", 400),
        ("Transfer-Encoding: chunked\r\n\r\n10000000000000001", 400),
        // the largest that fit are read, and are over the body limit
        ("Content-Length: 18446744073709551615", 413),
        ("Transfer-Encoding: chunked\r\n\r\nfffffffffffffff", 413),
    ];
    for (framing, status) in cases {
        let r = server.get(&format!("POST /a.txt HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n"));
        assert_eq!(r.status, status, "{framing}");
    }
}
