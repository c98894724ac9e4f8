//! c10k-load against small misbehaving servers written here: every kind of bad answer is
//! counted under its name and fails the run; `Connection: close` answers do not.

mod common;

use common::read_head;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const LOAD: &str = env!("CARGO_BIN_EXE_c10k-load");

/// A server on a free loopback port that runs `serve` for every connection on its own
/// thread; its URL.
fn fake(serve: fn(TcpStream)) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming().map_while(Result::ok) {
            std::thread::spawn(move || serve(s));
        }
    });
    url
}

/// Answer every request with `answer`; stop after the first when `once`.
fn answer(mut s: TcpStream, answer: &[u8], once: bool) {
    while read_head(&mut s) {
        if s.write_all(answer).is_err() || once {
            return;
        }
    }
}

/// Run c10k-load for half a second with `extra` flags (`--conns 2` unless they say);
/// exit code and the JSON report.
fn run(url: &str, extra: &[&str]) -> (Option<i32>, String) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let json = std::env::temp_dir().join(format!("c10k-load-fake-{}-{n}.json", std::process::id()));
    let json = json.to_str().unwrap();
    let conns: &[&str] = if extra.contains(&"--conns") { &[] } else { &["--conns", "2"] };
    let out = Command::new(LOAD)
        .args(["--url", url, "--duration", "0.5", "--json", json])
        .args(conns)
        .args(extra)
        .output()
        .unwrap();
    let report = std::fs::read_to_string(json).unwrap_or_default();
    let _ = std::fs::remove_file(json);
    eprintln!("{}{}{report}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), report)
}

fn count(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("no {key} in {json:?}")) + pat.len();
    json[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

#[test]
fn good_fake_server_passes() {
    let url = fake(|s| answer(s, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false));
    let (code, json) = run(&url, &["--pipeline", "4", "--expect-bytes", "3"]);
    assert_eq!(code, Some(0));
    assert!(count(&json, "requests") > 0 && count(&json, "errors_total") == 0, "{json}");
}

#[test]
fn connection_close_answers_reconnect_without_errors() {
    let url = fake(|s| answer(s, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true));
    let (code, json) = run(&url, &[]);
    assert_eq!(code, Some(0));
    assert!(count(&json, "connects") > 2 && count(&json, "errors_total") == 0, "{json}");
}

#[test]
fn silent_server_times_out() {
    let url = fake(|mut s| {
        read_head(&mut s);
        std::thread::sleep(Duration::from_secs(3));
    });
    let (code, json) = run(&url, &["--timeout", "150ms"]);
    assert_eq!(code, Some(1));
    assert!(count(&json, "timeout") >= 2 && count(&json, "requests") == 0, "{json}");
}

#[test]
fn chunked_is_unsupported() {
    let url = fake(|s| answer(s, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false));
    let (code, json) = run(&url, &[]);
    assert_eq!(code, Some(1));
    assert!(count(&json, "unsupported") > 0 && count(&json, "framing") == 0, "{json}");
}

#[test]
fn garbage_and_missing_length_are_framing_errors() {
    for url in [
        fake(|s| answer(s, b"HTTX/1.1 200 OK\r\n\r\n", false)),
        fake(|s| answer(s, b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody", false)),
    ] {
        let (code, json) = run(&url, &[]);
        assert_eq!(code, Some(1));
        assert!(count(&json, "framing") > 0 && count(&json, "requests") == 0, "{json}");
    }
}

#[test]
fn truncated_body_is_a_length_error() {
    let url = fake(|s| answer(s, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", true));
    let (code, json) = run(&url, &[]);
    assert_eq!(code, Some(1));
    assert!(count(&json, "length") > 0, "{json}");
}

#[test]
fn dropped_idle_connections_are_counted() {
    // Answers, then closes after a moment: held connections are lost.
    let url = fake(|mut s| {
        if read_head(&mut s) {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (code, json) = run(&url, &["--conns", "0", "--idle", "5"]);
    assert_eq!(code, Some(1));
    assert_eq!((count(&json, "idle_answered"), count(&json, "idle_open"), count(&json, "closed")), (5, 0, 5), "{json}");
}
