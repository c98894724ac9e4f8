//! A shard that is down (dead, in a crash-loop backoff, its replacement not serving yet)
//! gets no new connections: the master steers them to the shards that serve, and says the
//! server is degraded, which and why, in `/healthz`, `/status` and `/metrics`.
mod common;
use common::{Reader, Server, TempDir, signal};
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

for_each_backend!(new_connections_avoid_a_shard_that_is_down);

const INDEX: &[u8] = b"<p>steered</p>\n";

/// The body of `GET path` on the status listener.
fn status_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

fn new_connections_avoid_a_shard_that_is_down() {
    let root = TempDir::new("steering");
    root.write("index.html", INDEX);
    let server = Server::start(root.path(), &["--shards", "2", "--status-listen", "127.0.0.1:0"]);
    let status = server.status_addr();
    // Shard 1 dies, and every replacement dies at its start (its root has gone), so it is
    // soon in a crash-loop backoff; shard 0 keeps its root open and serves on.
    let moved = root.path().with_extension("moved");
    std::fs::rename(root.path(), &moved).unwrap();
    signal(server.shard_pids()[1], Signal::SIGKILL);
    server.wait_line(Duration::from_secs(5), |l| l.text.contains("new connections go to shards [0] only"));
    server.wait_line(Duration::from_secs(15), |l| l.text.contains("restarting it in"));
    // The master publishes what it logged within a turn of its loop.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut health = status_get(status, "/healthz");
    while !health.contains("is down") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        health = status_get(status, "/healthz");
    }
    assert!(
        health.starts_with("HTTP/1.1 200") && health.contains("degraded: shard 1 is down, restarting in"),
        "{health}"
    );
    assert!(status_get(status, "/status").contains("\"state\":\"degraded\""));
    assert!(status_get(status, "/metrics").contains("\nc10k_server_shards_serving 1\n"));

    // 1,000 new clients, all asking at once: every one is answered by shard 0. Without the
    // steering, about half would wait in shard 1's queue for a start that keeps failing.
    let clients: Vec<TcpStream> = (0..1_000)
        .map(|_| {
            let mut c = server.connect();
            c.write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            c
        })
        .collect();
    let start = Instant::now();
    for c in clients {
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let resp = Reader::new(c).response(false).expect("an answer from the shard that serves");
        assert_eq!((resp.status, resp.body.as_slice()), (200, INDEX));
    }
    assert!(start.elapsed() < Duration::from_secs(10), "answered in {:?}", start.elapsed());

    // Its root back, shard 1 serves after its backoff, and gets connections again.
    std::fs::rename(&moved, root.path()).unwrap();
    server.wait_line(Duration::from_secs(40), |l| l.text == "every shard serves again: new connections go to all");
    assert_eq!(status_get(status, "/healthz").lines().last(), Some("ok"));
}
