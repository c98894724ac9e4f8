//! Hostile clients on the status listener (`--status-listen`) through the real binary: 500
//! clients that connect and send nothing, or a byte every 100 ms, must not hold up the
//! master. With them all open, a fresh `/healthz` is answered, a shard killed is replaced,
//! garbage is refused and SIGTERM stops the server, each at once.
//!
//! The bounds below are wall-clock, but they bound *blocking*, not speed: each is a second
//! or more for something that takes milliseconds, against a master that served status
//! clients one by one, a second each, on its only thread: behind 20 silent clients
//! `/healthz` took 20 s, a shard's replacement 20 s and SIGTERM 19.5 s; run against that
//! master, this test saw a TLS hello refused after 1.03 s and `/healthz` after 7.6 s.
//! Coarse enough for a loaded 2-core VM, strict enough that blocking fails.

mod common;

use common::{Server, TempDir};
use nix::sys::signal::Signal;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

for_each_backend!(hostile_status_clients_do_not_hold_up_the_master);

/// Clients of each kind: silent, and trickling a valid head a byte at a time.
const SILENT: usize = 250;
const TRICKLING: usize = 250;
/// The bound on anything the master does at once (see the module's comment).
const AT_ONCE: Duration = Duration::from_secs(1);

/// `raw` on a new connection; the answer's status line (empty if none came within 10 s)
/// and how long it took from connect to the end of the answer.
fn timed(addr: SocketAddr, raw: &[u8]) -> (String, Duration) {
    let start = Instant::now();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(10)) else {
        return (String::new(), start.elapsed());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let line = String::from_utf8_lossy(&out).lines().next().unwrap_or_default().to_string();
    (line, start.elapsed())
}

/// The shard pids `/status` names.
fn shard_pids(addr: SocketAddr) -> Vec<u64> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["shards"].as_array().unwrap().iter().map(|s| s["pid"].as_u64().unwrap()).collect()
}

/// Open the hostile clients; the trickling ones get a byte every 100 ms on a thread until
/// `stop` is set. Connects that do not complete within a second are given up on: a master
/// that leaves its backlog full is what the checks after this catch.
fn open_hostile_clients(addr: SocketAddr, stop: Arc<AtomicBool>) -> (Vec<TcpStream>, std::thread::JoinHandle<()>) {
    let connect = || TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok();
    let silent: Vec<TcpStream> = (0..SILENT).filter_map(|_| connect()).collect();
    let trickling: Vec<TcpStream> = (0..TRICKLING).filter_map(|_| connect()).collect();
    let trickler = std::thread::spawn(move || {
        let head = b"GET /healthz HTTP/1.1\r\nHost: trickle\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let mut at = 0;
        while !stop.load(Ordering::Relaxed) {
            for mut s in &trickling {
                // One the server closed answers with an error; the others go on.
                let _ = s.write(&head[at % head.len()..][..1]);
            }
            at += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    (silent, trickler)
}

fn hostile_status_clients_do_not_hold_up_the_master() {
    let root = TempDir::new("status-port");
    root.write("index.html", "x");
    let mut server = Server::start(root.path(), &["--status-listen", "127.0.0.1:0"]);
    let status = server.status_addr();

    // Garbage is refused when it is seen, not when a deadline for the rest of it passes.
    let (line, took) = timed(status, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    assert!(line.starts_with("HTTP/1.1 400 "), "a TLS hello: {line:?}");
    assert!(took < AT_ONCE / 2, "a TLS hello refused after {took:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let (silent, trickler) = open_hostile_clients(status, Arc::clone(&stop));
    // Let every one of them reach the master before the checks.
    std::thread::sleep(Duration::from_millis(300));

    let (line, took) = timed(status, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    eprintln!("/healthz with {SILENT} silent and {TRICKLING} trickling clients: {line:?} in {took:?}");
    assert!(line.starts_with("HTTP/1.1 200 "), "/healthz: {line:?} after {took:?}");
    assert!(took < AT_ONCE, "/healthz took {took:?}");

    let (line, took) = timed(status, b"BREW /pot HTCPCP/1.0\r\n");
    eprintln!("garbage with the hostile clients open: {line:?} in {took:?}");
    assert!(line.starts_with("HTTP/1.1 400 ") && took < AT_ONCE, "garbage: {line:?} after {took:?}");
    let (line, took) = timed(status, &[b'a'; 20 << 10]);
    assert!(line.starts_with("HTTP/1.1 400 ") && took < AT_ONCE, "20 KiB of a: {line:?} after {took:?}");

    // A shard killed is replaced; the master's log says by whom.
    let old = server.shard_pids()[0];
    let killed = Instant::now();
    common::signal(old, Signal::SIGKILL);
    let line = server.wait_line(Duration::from_secs(30), |l| l.text.contains("replaced by pid"));
    let replaced = killed.elapsed();
    eprintln!("shard replaced in {replaced:?}: {}", line.text);
    assert!(replaced < AT_ONCE * 2, "the shard was replaced after {replaced:?}");
    let new: u64 = line.text.rsplit(' ').next().unwrap().parse().unwrap();
    assert_ne!(new, u64::from(old));
    // The status thread sees the new pid as soon as the master has spawned it.
    assert_eq!(shard_pids(status), [new]);

    // SIGTERM stops the server: no client connection holds a drain, so at once.
    let termed = Instant::now();
    common::signal(server.pid(), Signal::SIGTERM);
    let deadline = termed + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the master did not exit within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    let stopped = termed.elapsed();
    eprintln!("stopped {stopped:?} after SIGTERM ({exit})");
    assert!(exit.success(), "{exit}");
    assert!(stopped < AT_ONCE * 2, "the master exited {stopped:?} after SIGTERM");

    stop.store(true, Ordering::Relaxed);
    trickler.join().unwrap();
    // The clients' connections were closed with the master, not left open.
    let mut byte = [0u8; 1];
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        match s.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("a silent client after the master exited: {other:?}"),
        }
    }
}
