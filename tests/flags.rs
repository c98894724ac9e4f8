//! Flag errors a new user meets: each names the flag, says what was wrong and shows a good
//! value, on one line, with exit status 2; a flag given twice takes the last value.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_c10k-server");

/// stderr of a start with `args` after valid defaults; it must exit 2.
fn refused(args: &[&str]) -> String {
    let root = common::TempDir::new("flags");
    let root_s = root.path().display().to_string();
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--shards", "1", "--root", &root_s])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run c10k-server");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line, was {stderr:?}");
    assert!(out.stdout.is_empty(), "{args:?}");
    stderr
}

#[test]
fn each_bad_flag_says_what_and_how() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--backend", "bogus"], &["--backend", "'bogus'", "possible values: auto, epoll, uring"]),
        (&["--max-body", "abc"], &["--max-body", "'abc'", "whole number of bytes", "e.g. 1048576 or 1m"]),
        (&["--shards", "-1"], &["--shards", "'-1'", "at least 1, e.g. 2"]),
        (
            &["--listen", "127.0.0.1:99999"],
            &["--listen", "port 99999 is out of range (0 to 65535)", "e.g. 127.0.0.1:8080"],
        ),
        (&["--listen", "127.0.0.1"], &["--listen", "expected ADDR:PORT", "e.g. 127.0.0.1:8080"]),
        (
            &["--listen", "no-such-host.invalid:80"],
            &["--listen", "cannot resolve no-such-host.invalid", "give an address"],
        ),
        (&["--keepalive-timeout", "0"], &["--keepalive-timeout", "between 1 and 3600"]),
        // Each count's example fits its flag; a size too large is called too large; a limit
        // that would refuse every request is refused at start.
        (&["--max-headers", "0"], &["--max-headers", "at least 1, e.g. 100"]),
        (&["--max-request-line", "x"], &["--max-request-line", "whole number of bytes", "e.g. 8192 or 8k"]),
        (&["--max-request-line", "5"], &["--max-request-line", "below 16 bytes", "every request would be refused"]),
        (&["--max-header-bytes", "8"], &["--max-header-bytes", "below 16 bytes", "e.g. 16384 or 16k"]),
        (&["--max-body", "99999999999g"], &["--max-body", "99999999999g is too large"]),
        (&["--max-headers", "99999999999999999999999"], &["--max-headers", "is too large"]),
    ];
    for &(args, wanted) in cases {
        let line = refused(args);
        for want in wanted {
            assert!(line.contains(want), "{args:?}: {line:?} does not say {want:?}");
        }
    }
}

#[test]
fn sizes_take_a_unit() {
    // 1k of body allowed: a 2000-byte body is refused with 413; with the default it is not.
    let root = common::TempDir::new("flags-units");
    root.write("index.html", "x");
    for (limit, status) in [("1k", "413"), ("1m", "200")] {
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--shards", "1", "--backend", "epoll", "--max-body", limit, "--root"])
            .arg(root.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = listening_on(&mut child);
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let body = vec![b'a'; 2000];
        let head = "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n";
        std::io::Write::write_all(&mut s, head.as_bytes()).unwrap();
        let _ = std::io::Write::write_all(&mut s, &body);
        let mut resp = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut resp);
        let _ = child.kill();
        let _ = child.wait();
        // POST is 405 once read; a body past the limit is refused first.
        let want = if status == "413" { "HTTP/1.1 413 " } else { "HTTP/1.1 405 " };
        assert!(resp.starts_with(want), "--max-body {limit}: {resp:?}");
    }
}

/// The address of a server started with stdout piped.
fn listening_on(child: &mut std::process::Child) -> std::net::SocketAddr {
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if let Some(rest) = common::text(&line.unwrap()).strip_prefix("listening on http://") {
            return rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    panic!("no listening line");
}

/// A host name is resolved; a flag given again overrides the first (`make run ARGS=…`).
#[test]
fn a_host_name_listens_and_the_last_flag_wins() {
    let root = common::TempDir::new("flags-host");
    root.write("index.html", "x");
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:1", "--shards", "1", "--backend", "epoll", "--root"])
        .arg(root.path())
        .args(["--listen", "localhost:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_on(&mut child);
    let _ = child.kill();
    let _ = child.wait();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
}
