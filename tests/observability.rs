//! The status listener through the real binary: after a known mix of requests over two
//! shards, `/metrics` (parsed by a Prometheus text-format parser) and `/status` (JSON)
//! count exactly that; `/healthz` turns 503 during a graceful stop; only GET and HEAD of
//! the three paths are served.

mod common;

use common::{Server, TempDir};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

for_each_backend!(
    counters_match_a_known_mix_of_requests,
    healthz_turns_503_while_draining_and_bad_input_is_refused,
    the_page_shows_the_figures_of_status,
);

/// A server with two shards and its status listener on a free port; the listener's address.
fn start(root: &TempDir, extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["--shards", "2", "--status-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Server::start(root.path(), &args);
    let status = server.status_addr();
    (server, status)
}

/// One request on a new connection, `Connection: close`; every byte the server sent.
fn fetch(addr: SocketAddr, raw: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

fn status_line(resp: &[u8]) -> String {
    String::from_utf8_lossy(resp).lines().next().unwrap_or_default().to_string()
}

fn body(resp: &[u8]) -> String {
    let text = String::from_utf8_lossy(resp).into_owned();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
    fetch(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
}

fn counters_match_a_known_mix_of_requests() {
    let root = TempDir::new("observability");
    root.write("index.html", "<p>hello</p>\n");
    let (server, status) = start(&root, &[]);
    let mut received = 0;
    let mut ok = |path: &str| {
        let resp = get(server.addr, path);
        received += resp.len();
        resp
    };
    for _ in 0..20 {
        assert!(status_line(&ok("/index.html")).starts_with("HTTP/1.1 200 "));
    }
    for i in 0..5 {
        assert!(status_line(&ok(&format!("/missing-{i}"))).starts_with("HTTP/1.1 404 "));
    }
    let first = ok("/index.html");
    let etag = String::from_utf8_lossy(&first)
        .lines()
        .find_map(|l| l.strip_prefix("ETag: ").map(str::to_string))
        .expect("an ETag");
    for _ in 0..3 {
        let raw = format!("GET /index.html HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n");
        let resp = fetch(server.addr, &raw);
        received += resp.len();
        assert!(status_line(&resp).starts_with("HTTP/1.1 304 "));
    }
    let bad = fetch(server.addr, "GET / HTTP/1.1 extra\r\n\r\n");
    received += bad.len();
    assert!(status_line(&bad).starts_with("HTTP/1.1 400 "));
    let connections = 30u64;

    // Closes are counted when each shard sees them: wait until all are in.
    let deadline = Instant::now() + Duration::from_secs(10);
    let json = loop {
        let json: serde_json::Value = serde_json::from_str(&body(&get(status, "/status"))).expect("/status is JSON");
        let closed: u64 =
            json["shards"].as_array().unwrap().iter().map(|s| s["connections_closed_total"].as_u64().unwrap()).sum();
        if closed == connections || Instant::now() > deadline {
            break json;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let shards = json["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    let sum = |f: &dyn Fn(&serde_json::Value) -> u64| shards.iter().map(f).sum::<u64>();
    assert_eq!(sum(&|s| s["connections_accepted_total"].as_u64().unwrap()), connections, "{json}");
    assert_eq!(sum(&|s| s["connections_closed_total"].as_u64().unwrap()), connections, "{json}");
    assert_eq!(sum(&|s| s["connections_open"].as_u64().unwrap()), 0, "{json}");
    for (class, n) in [("2xx", 21), ("3xx", 3), ("4xx", 6), ("5xx", 0)] {
        assert_eq!(sum(&|s| s["responses_total"][class].as_u64().unwrap()), n, "{class}: {json}");
    }
    assert_eq!(sum(&|s| s["parse_errors_total"]["400"].as_u64().unwrap()), 1, "{json}");
    assert_eq!(sum(&|s| s["sent_bytes_total"].as_u64().unwrap()), received as u64, "{json}");
    let pids = server.shard_pids();
    let mut reported: Vec<u32> = shards.iter().map(|s| s["pid"].as_u64().unwrap() as u32).collect();
    reported.sort();
    let mut pids_sorted = pids.clone();
    pids_sorted.sort();
    assert_eq!(reported, pids_sorted, "{json}");
    assert_eq!((json["state"].as_str(), json["backend"].as_str()), (Some("serving"), Some(common::backend().as_str())));

    // The same figures in the Prometheus text format, parsed by a real parser.
    let m = common::Metrics::parse(body(&get(status, "/metrics")));
    assert_eq!(m.value("c10k_server_responses_total", &[("class", "2xx")]), 21.0);
    assert_eq!(m.value("c10k_server_responses_total", &[("class", "4xx")]), 6.0);
    assert_eq!(m.value("c10k_server_connections_accepted_total", &[]), connections as f64);
    assert_eq!(m.value("c10k_server_parse_errors_total", &[("status", "400")]), 1.0);
    assert_eq!(m.value("c10k_server_sent_bytes_total", &[]), received as f64);
    let per_shard = m.value("c10k_responses_total", &[("shard", "0"), ("class", "2xx")])
        + m.value("c10k_responses_total", &[("shard", "1"), ("class", "2xx")]);
    assert_eq!(per_shard, 21.0, "the shards add up to the total");
    // Every answered request (not the unreadable one) has a response time.
    assert_eq!(m.value("c10k_server_response_seconds", &[]), 29.0);
    assert_eq!(m.value("c10k_server_reloads_total", &[]), 0.0);
}

fn healthz_turns_503_while_draining_and_bad_input_is_refused() {
    let root = TempDir::new("observability-health");
    root.write("index.html", "x");
    root.write("big.bin", vec![7u8; 16 << 20]);
    let (mut server, status) = start(&root, &[]);
    assert_eq!(body(&get(status, "/healthz")), "ok\n");
    assert!(status_line(&get(status, "/healthz")).starts_with("HTTP/1.1 200 "));
    let page = fetch(status, "GET /status HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nConnection: close\r\n\r\n");
    // A page that redraws itself from /status (its own script, no external one).
    let html = body(&page);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("fetch('/status'") && !html.contains("src=\"http"));
    for (raw, want) in [
        ("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 "),
        ("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 "),
        ("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 "),
        ("nonsense\r\n\r\n", "HTTP/1.1 400 "),
    ] {
        let resp = fetch(status, raw);
        assert!(status_line(&resp).starts_with(want), "{raw:?}: {}", status_line(&resp));
    }
    let head = fetch(status, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(status_line(&head).starts_with("HTTP/1.1 200 ") && body(&head).is_empty(), "{head:?}");

    // A download the client does not read keeps the drain going.
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    common::signal(server.pid(), nix::sys::signal::Signal::SIGTERM);
    server.wait_line(Duration::from_secs(5), |l| l.text.starts_with("stopping: draining"));
    let health = get(status, "/healthz");
    assert!(status_line(&health).starts_with("HTTP/1.1 503 "), "{}", String::from_utf8_lossy(&health));
    assert_eq!(body(&health), "stopping\n");
    drop(stalled);
    let _ = server.child.wait();
}

/// The page (at / and, for a browser, at /status) shows what /status says: each shard's
/// state and connections open, and the requests/s, bytes/s and p99 of the last interval,
/// in all and per shard (its cells carry the raw figure beside the one in human units).
fn the_page_shows_the_figures_of_status() {
    let root = TempDir::new("observability-page");
    root.write("index.html", vec![b'p'; 10_000]);
    let (server, status) = start(&root, &[]);
    // Requests within one sampled interval, and two connections left open.
    let held: Vec<_> = (0..2).map(|_| server.connect()).collect();
    for mut c in &held {
        c.write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    }
    for _ in 0..200 {
        assert_eq!(server.get("GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status, 200);
    }
    let raw = |html: &str, key: &str| -> Vec<f64> {
        html.split(&format!("data-k=\"{key}\" data-v=\""))
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let json: serde_json::Value = serde_json::from_str(&body(&get(status, "/status"))).unwrap();
        let html = body(&get(status, "/"));
        let again: serde_json::Value = serde_json::from_str(&body(&get(status, "/status"))).unwrap();
        // Only compare when no sample fell between the two reads, and the requests are in
        // the interval shown.
        let settled = json["rate"] == again["rate"] && json["rate"]["requests_per_second"].as_f64() > Some(0.0);
        if !settled {
            assert!(Instant::now() < deadline, "no stable interval with the requests in it: {json}");
            std::thread::sleep(Duration::from_millis(300));
            continue;
        }
        let shards = json["shards"].as_array().unwrap();
        let want = |field: &str| {
            let f = |r: &serde_json::Value| r[field].as_f64().unwrap_or(-1.0);
            std::iter::once(f(&json["rate"])).chain(shards.iter().map(|s| f(&s["rate"]))).collect::<Vec<_>>()
        };
        for (key, field) in
            [("rps", "requests_per_second"), ("bps", "bytes_per_second"), ("p99", "p99_ms"), ("open", "open")]
        {
            let shown = raw(&html, key);
            let wanted = want(field);
            assert_eq!(shown.len(), wanted.len(), "{key}: {html}");
            for (s, w) in shown.iter().zip(&wanted) {
                assert!(
                    (s - w).abs() <= 0.5 + w.abs() * 1e-6,
                    "{key}: the page shows {shown:?}, /status says {wanted:?}"
                );
            }
        }
        assert_eq!(json["rate"]["open"], 2, "{json}");
        for s in shards {
            let state = s["state"].as_str().unwrap();
            assert!(state.starts_with("serving (generation 1)"), "{state}");
            assert!(html.contains(&format!("<td data-k=\"state\">{state}</td>")), "{state}: {html}");
        }
        assert!(html.contains("requests/s") && html.contains("bytes/s") && html.contains("<svg id=\"c-rps\">"));
        break;
    }
    drop(held);
}
