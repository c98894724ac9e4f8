//! `connections_open` through the real binary counts what is open, also when a shard is
//! killed outright (SIGKILL: it never counts the closes of the connections it held) and
//! while two generations of a shard live side by side during a reload. Read from both
//! `/metrics` (parsed by a Prometheus text-format parser) and `/status` (JSON).

mod common;

use common::{Server, TempDir};
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

for_each_backend!(
    the_open_gauge_does_not_drift_when_shards_are_killed,
    a_shard_killed_while_draining_takes_its_connections_out
);

/// A server with `--status-listen`; the listener's address.
fn start(root: &TempDir) -> (Server, SocketAddr) {
    let server = Server::start(root.path(), &["--status-listen", "127.0.0.1:0"]);
    let status = server.status_addr();
    (server, status)
}

/// The body of `GET path` on the status listener.
fn get(status: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(status).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// What the server says is open: `c10k_server_connections_open` from `/metrics`, and from
/// `/status` the sum of the shards' `connections_open`, each of which must be its
/// accepted less its closed.
fn open_gauge(status: SocketAddr) -> (u64, u64) {
    let text = get(status, "/metrics");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("/metrics parses");
    let total = scrape
        .samples
        .iter()
        .find(|s| s.metric == "c10k_server_connections_open")
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v as u64,
            ref other => panic!("connections_open is {other:?}"),
        })
        .expect("c10k_server_connections_open");
    let json: serde_json::Value = serde_json::from_str(&get(status, "/status")).expect("/status is JSON");
    let mut sum = 0;
    for shard in json["shards"].as_array().unwrap() {
        let field = |name: &str| shard[name].as_u64().unwrap();
        let open = field("connections_open");
        assert_eq!(open, field("connections_accepted_total") - field("connections_closed_total"), "{shard}");
        sum += open;
    }
    (total, sum)
}

/// Wait (5 s at most) until the server says `want` connections are open, in both forms;
/// then that it still says so a moment later.
#[track_caller]
fn expect_open(status: SocketAddr, want: u64, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = open_gauge(status);
    while seen != (want, want) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        seen = open_gauge(status);
    }
    assert_eq!(seen, (want, want), "{when}: (/metrics, /status) open, want {want}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(open_gauge(status), (want, want), "{when}: a moment later");
}

/// `n` keep-alive connections, each answered once, so each shard has surely counted it.
fn keep_alive(server: &Server, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let s = server.connect();
            let mut reader = common::Reader::new(s.try_clone().unwrap());
            (&s).write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            assert_eq!(reader.response(false).expect("a response").status, 200);
            s
        })
        .collect()
}

/// Kill the shard, wait until the master has replaced it; the replacement's pid.
fn kill_and_wait_for_replacement(server: &Server, pid: u32) -> u32 {
    common::signal(pid, Signal::SIGKILL);
    // The replacement may say it serves before the master says it replaced the shard.
    let before = std::cell::RefCell::new(Vec::new());
    let line = server.wait_line(Duration::from_secs(10), |l| {
        before.borrow_mut().push(l.clone());
        l.text.contains("replaced by pid")
    });
    assert!(line.text.contains(&format!("(pid {pid},")), "{}", line.text);
    let new: u32 = line.text.rsplit(' ').next().unwrap().parse().unwrap();
    let serving = |l: &common::LogLine| l.pid == new && l.text.starts_with("serving:");
    if !before.borrow().iter().any(serving) {
        server.wait_line(Duration::from_secs(10), serving);
    }
    new
}

fn the_open_gauge_does_not_drift_when_shards_are_killed() {
    let root = TempDir::new("gauge-kill");
    root.write("index.html", "hello\n");
    let (server, status) = start(&root);
    let mut pid = server.shard_pids()[0];
    let mut held = keep_alive(&server, 5);
    expect_open(status, 5, "5 keep-alive connections");
    for (round, opened) in [3, 7, 0, 2].into_iter().enumerate() {
        pid = kill_and_wait_for_replacement(&server, pid);
        for s in held.drain(..) {
            assert!(common::is_closed(&s), "a connection of the killed shard is still open");
        }
        expect_open(status, 0, &format!("round {round}: after the kill"));
        held = keep_alive(&server, opened);
        expect_open(status, opened as u64, &format!("round {round}: {opened} new connections"));
    }
    drop(held);
    expect_open(status, 0, "every connection closed");
}

fn a_shard_killed_while_draining_takes_its_connections_out() {
    let root = TempDir::new("gauge-reload");
    root.write("index.html", "hello\n");
    root.write("big.bin", vec![7u8; 16 << 20]);
    let (server, status) = start(&root);
    let old = server.shard_pids()[0];
    // A download the client does not read holds the old generation's drain open; the
    // idle keep-alive connections it closes as it starts draining.
    let stalled = server.connect();
    (&stalled).write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let idle = keep_alive(&server, 3);
    expect_open(status, 4, "generation 1");

    common::signal(server.pid(), Signal::SIGHUP);
    let line = server.wait_line(Duration::from_secs(10), |l| l.text.starts_with("reload: generation 2 serving"));
    let new: u32 = line.text.split("(pids ").nth(1).unwrap().split(')').next().unwrap().parse().unwrap();
    for s in &idle {
        assert!(common::is_closed(s), "an idle connection of the draining generation is still open");
    }
    let fresh = keep_alive(&server, 2);
    expect_open(status, 3, "the stalled download on generation 1, 2 connections on generation 2");

    // The draining shard, killed, never counts the download's close.
    common::signal(old, Signal::SIGKILL);
    server.wait_line(Duration::from_secs(10), |l| l.text.contains(&format!("(pid {old}, generation 1) was killed")));
    expect_open(status, 2, "generation 1 killed while draining");

    // And the serving one, killed, is replaced with nothing open.
    kill_and_wait_for_replacement(&server, new);
    for s in &fresh {
        assert!(common::is_closed(s), "a connection of the killed shard is still open");
    }
    expect_open(status, 0, "generation 2 killed and replaced");
    let again = keep_alive(&server, 1);
    expect_open(status, 1, "one connection to the replacement");
    drop((stalled, again));
}
