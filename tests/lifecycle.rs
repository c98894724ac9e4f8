//! A connection's life over real sockets, on every backend: slow readers are never cut,
//! stalled ones are dropped, broken clients leave nothing behind, the cap admits new
//! clients by closing idle ones, and a byte that cannot start a request is refused at once.
mod common;

use common::{Server, TempDir, download_site, read_head, socket_fds, within};
use nix::sys::socket::{setsockopt, sockopt};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

for_each_backend!(
    a_slow_download_outlasting_every_timeout_arrives_whole,
    a_client_that_stops_reading_is_dropped_after_the_send_timeout,
    resets_and_half_closes_mid_response_leave_nothing_behind,
    at_the_cap_a_new_client_is_served_by_closing_the_longest_idle,
    a_tls_client_hello_is_refused_at_once,
);

const GET_BIG: &[u8] = b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
const GET_SMALL: &[u8] = b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n";

/// FNV-1a, 64 bits, continued from `hash`.
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap_or_else(|e| panic!("shard pid {pid}: {e}")).count()
}

fn reset(s: &TcpStream) {
    setsockopt(s, sockopt::Linger, &nix::libc::linger { l_onoff: 1, l_linger: 0 }).unwrap();
}

fn a_slow_download_outlasting_every_timeout_arrives_whole() {
    let (root, body) = download_site("slow", 64 << 20);
    let server =
        Server::start(root.path(), &["--request-timeout", "1", "--keepalive-timeout", "1", "--send-timeout", "1"]);
    let whole = fnv(FNV_START, &body);
    let mut s = server.connect();
    // A small receive buffer, so that what the kernels hold (this and the server's send
    // buffer, 4 MiB at most by default) is a small part of the file: the server has output
    // waiting on this reader until the last few mebibytes.
    setsockopt(&s, sockopt::RcvBuf, &(256 << 10)).unwrap();
    s.write_all(GET_BIG).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert_eq!(read_head(&mut r), (200, body.len()));
    // About 12 MB/s in pieces of 64 KiB at most, a few milliseconds apart: some five and a
    // half seconds for the whole, well past the three timeouts together (3 s), and never
    // near a second (the send timeout) without taking more.
    const RATE: f64 = 12e6;
    let started = Instant::now();
    let (mut hash, mut got, mut buf) = (FNV_START, 0, vec![0; 64 << 10]);
    while got < body.len() {
        let want = (body.len() - got).min(buf.len());
        let n = r.read(&mut buf[..want]).unwrap_or_else(|e| panic!("after {got} bytes, {:?}: {e}", started.elapsed()));
        assert!(n > 0, "cut short: {got} of {} bytes after {:?}", body.len(), started.elapsed());
        hash = fnv(hash, &buf[..n]);
        got += n;
        let due = Duration::from_secs_f64(got as f64 / RATE);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
    // The next request goes at once: the keep-alive timeout runs from the last byte sent.
    s.write_all(GET_SMALL).unwrap();
    // The pacing alone makes it so; this says the test did what it claims.
    assert!(started.elapsed() > Duration::from_secs(5), "read in {:?}", started.elapsed());
    assert!(hash == whole, "the body arrived, but not the bytes of the file");
    // Whole, and the connection kept alive.
    assert_eq!(read_head(&mut r).0, 200);
}

fn a_client_that_stops_reading_is_dropped_after_the_send_timeout() {
    let (root, body) = download_site("stall", 64 << 20);
    let server = Server::start(root.path(), &["--send-timeout", "2"]);
    let pid = server.shard_pids()[0];
    let before = socket_fds(pid);
    let mut s = server.connect();
    s.write_all(GET_BIG).unwrap();
    assert!(within(Duration::from_secs(5), || socket_fds(pid) == before + 1), "the shard never held it");
    // It is still held a moment later: the output is stuck, not finished.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(socket_fds(pid), before + 1, "dropped before the send timeout");
    assert!(
        within(Duration::from_secs(10), || socket_fds(pid) == before),
        "a client that reads nothing is still held 10 s past --send-timeout 2"
    );
    // What the kernels had buffered is there, then the stream ends, short.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let end = s.read_to_end(&mut got);
    assert!(end.is_ok() || end.as_ref().is_err_and(|e| e.kind() == ErrorKind::ConnectionReset), "{end:?}");
    assert!(got.len() < body.len(), "all {} bytes arrived: nothing was dropped", got.len());
}

fn resets_and_half_closes_mid_response_leave_nothing_behind() {
    let (root, _) = download_site("resets", 1 << 20);
    root.write("mid.bin", common::pattern(256 << 10));
    let server = Server::start(root.path(), &[]);
    let pid = server.shard_pids()[0];
    // Fill the file cache first: its descriptors are not the connections'.
    for get in [GET_BIG, b"GET /mid.bin HTTP/1.1\r\nHost: x\r\n\r\n"] {
        let (resps, _) = server.exchange(get, 1, false);
        assert_eq!(resps[0].status, 200);
    }
    // Once the warm-up connections are gone, only the listener is a socket.
    assert!(within(Duration::from_secs(5), || socket_fds(pid) == 1), "warm-up connections still held");
    let before = fds(pid);
    for round in 0..20 {
        // Fifty that reset in the middle of a 1 MiB body, fifty that half-close after
        // asking for 256 KiB and must still get all of it.
        let resetting: Vec<_> = (0..50).map(|_| server.connect()).collect();
        for mut s in &resetting {
            s.write_all(GET_BIG).unwrap();
        }
        let half_closed: Vec<_> = (0..50).map(|_| server.connect()).collect();
        for mut s in &half_closed {
            s.write_all(b"GET /mid.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
        }
        for mut s in &resetting {
            let mut some = [0u8; 1000];
            assert!(s.read(&mut some).unwrap() > 0, "round {round}: no response began");
            reset(s);
        }
        drop(resetting);
        for s in &half_closed {
            let mut r = BufReader::new(s.try_clone().unwrap());
            assert_eq!(read_head(&mut r), (200, 256 << 10), "round {round}");
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).unwrap();
            assert_eq!(rest, common::pattern(256 << 10), "round {round}: body of a half-closed client");
        }
    }
    assert!(
        within(Duration::from_secs(10), || fds(pid) == before),
        "the shard holds {} descriptors, {before} before 2,000 broken clients",
        fds(pid)
    );
    // The same shard process is alive and serves.
    assert_eq!(server.shard_pids(), [pid]);
    assert_eq!(server.get("GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
}

fn at_the_cap_a_new_client_is_served_by_closing_the_longest_idle() {
    let (root, body) = download_site("evict", 32 << 20);
    // RLIMIT_NOFILE 300: a shard keeps 256 descriptors for itself and takes 44 connections.
    let server = Server::start_with_nofile(root.path(), &[], Some(300));
    let capacity = server.banner.iter().find(|l| common::text(l).starts_with("capacity:")).expect("capacity line");
    assert!(capacity.contains("1 shard × 44 = 44 connections"), "{capacity}");
    // The oldest connection is mid-response (it does not read its 32 MiB yet): never evicted.
    let mut busy = server.connect();
    busy.write_all(GET_BIG).unwrap();
    let idle: Vec<_> = (0..43)
        .map(|_| {
            let mut c = server.connect();
            c.write_all(GET_SMALL).unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            assert_eq!(read_head(&mut r), (200, 6));
            c
        })
        .collect();
    let mut newcomer = server.connect();
    newcomer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    newcomer.write_all(GET_SMALL).unwrap();
    let mut answer = [0u8; 12];
    newcomer.read_exact(&mut answer).expect("no answer within a second at the cap");
    assert_eq!(&answer, b"HTTP/1.1 200");
    // The room came from the connection idle the longest, and from it alone.
    assert!(common::is_closed(&idle[0]), "the longest-idle connection is still open");
    let mut second = BufReader::new(idle[1].try_clone().unwrap());
    (&idle[1]).write_all(GET_SMALL).unwrap();
    assert_eq!(read_head(&mut second), (200, 6));
    let mut r = BufReader::new(busy.try_clone().unwrap());
    assert_eq!(read_head(&mut r), (200, body.len()));
    let mut got = Vec::with_capacity(body.len());
    let _ = r.take(body.len() as u64).read_to_end(&mut got);
    assert!(got == body, "the busy connection's body: {} of {} bytes", got.len(), body.len());
}

fn a_tls_client_hello_is_refused_at_once() {
    let root = TempDir::new("tls");
    let server = Server::start(root.path(), &[]);
    let mut s = server.connect();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    // A TLS record header (handshake, version 3.1, length), then a ClientHello; no LF
    // anywhere, so nothing but its first byte says it is no request line.
    let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03];
    hello.extend(common::pattern(0xc4).into_iter().map(|b| if b == b'\n' { 0 } else { b }));
    s.write_all(&hello).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => assert!(got.is_empty() || got.starts_with(b"HTTP/1.1 400 "), "{:?}", String::from_utf8_lossy(&got)),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("no 400 and no close within a second ({e}); got {:?}", String::from_utf8_lossy(&got)),
    }
}
