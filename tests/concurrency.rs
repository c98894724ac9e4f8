//! Many connections at once: every one answered, whatever the backend does with bursts
//! (io_uring: more receives in one turn than the provided-buffer ring holds).
mod common;
use common::{Reader, Server, TempDir, socket_fds};
use nix::sys::socket::{setsockopt, sockopt};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};

for_each_backend!(
    burst_of_connections_all_answered,
    large_pipelined_bodies_under_backpressure,
    receive_buffers_running_out_loses_nothing,
    connection_cap_leaves_the_rest_in_the_backlog,
);

fn burst_of_connections_all_answered() {
    let root = TempDir::new("burst");
    root.write("a.txt", "burst\n");
    let server = Server::start(root.path(), &[]);
    let conns: Vec<_> = (0..1500).map(|_| server.connect()).collect();
    // Every request goes out before any answer is read, so they arrive together.
    for mut c in &conns {
        c.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    }
    for c in &conns {
        let mut r = Reader::new(c.try_clone().unwrap());
        for _ in 0..2 {
            let resp = r.response(false).expect("response");
            assert_eq!((resp.status, resp.body.as_slice()), (200, &b"burst\n"[..]));
        }
    }
}

/// Ten or more pipelined requests for a mebibyte each, read in small pieces with pauses
/// from the first byte to the last: the server's output fills the socket and has to stop
/// and resume hundreds of times, and must lose, repeat or reorder no byte.
fn large_pipelined_bodies_under_backpressure() {
    let root = TempDir::new("backpressure");
    // Bytes that differ from position to position, so a lost or repeated piece shows.
    let big: Vec<u8> = (0..1usize << 20).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect();
    root.write("big.bin", &big);
    let server = Server::start(root.path(), &[]);
    let c = server.connect();
    // What the kernels can hold is the server's send buffer (at most tcp_wmem's maximum)
    // and this receive buffer; three times that is asked for, so output waits on this
    // reader nearly all the way through.
    setsockopt(&c, sockopt::RcvBuf, &(64 << 10)).unwrap();
    let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|v| v.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20);
    let count = (3 * wmem_max).div_ceil(big.len()).max(10);
    (&c).write_all(&b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n".repeat(count)).unwrap();
    let mut r = BufReader::with_capacity(4 << 10, c);
    let mut piece = vec![0; 16 << 10];
    for i in 0..count {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200 "), "response {i}: {line:?}");
        let mut len = None;
        while line != "\r\n" {
            line.clear();
            r.read_line(&mut line).unwrap();
            len = len.or(line.strip_prefix("Content-Length: ").map(|v| v.trim().parse::<usize>().unwrap()));
        }
        assert_eq!(len, Some(big.len()), "response {i}");
        let mut got = 0;
        while got < big.len() {
            let want = (big.len() - got).min(piece.len());
            let n = r.read(&mut piece[..want]).unwrap_or_else(|e| panic!("response {i}, after {got} bytes: {e}"));
            assert!(n > 0, "response {i} cut short at {got} bytes");
            assert!(piece[..n] == big[got..got + n], "response {i}: bytes {got}..{} differ from the file", got + n);
            got += n;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// With a single provided receive buffer, io_uring receives keep running out (ENOBUFS)
/// whenever two connections' bytes arrive together; each must be re-armed and nothing
/// lost. Under epoll the flag is accepted and does nothing.
fn receive_buffers_running_out_loses_nothing() {
    let root = TempDir::new("enobufs");
    root.write("a.txt", "tiny\n");
    let server = Server::start(root.path(), &["--uring-buffers", "1"]);
    let conns: Vec<_> = (0..200).map(|_| server.connect()).collect();
    for round in 0..3 {
        for mut c in &conns {
            c.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        }
        for c in &conns {
            let resp = Reader::new(c.try_clone().unwrap()).response(false).expect("response");
            assert_eq!((resp.status, resp.body.as_slice()), (200, &b"tiny\n"[..]), "round {round}");
        }
    }
}

/// With RLIMIT_NOFILE 300 a shard keeps 256 descriptors for itself and takes 44
/// connections. When none of them is idle (each is in the middle of a request), the rest
/// wait in the listen backlog (not accepted: neither answered, nor closed, nor held by
/// the shard) and are served as soon as slots free.
fn connection_cap_leaves_the_rest_in_the_backlog() {
    let root = TempDir::new("cap");
    root.write("a.txt", "cap\n");
    let server = Server::start_with_nofile(root.path(), &[], Some(300));
    let capacity = server.banner.iter().find(|l| common::text(l).starts_with("capacity:")).expect("capacity line");
    assert!(capacity.contains("1 shard × 44 = 44 connections"), "{capacity}");
    let pid = server.shard_pids()[0];
    let listener_only = socket_fds(pid);
    let busy: Vec<_> = (0..44)
        .map(|_| {
            let mut c = server.connect();
            c.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\n").unwrap();
            assert_eq!(Reader::new(c.try_clone().unwrap()).response(false).expect("response").status, 200);
            c
        })
        .collect();
    assert_eq!(socket_fds(pid), listener_only + 44, "the shard holds every busy connection");
    let waiting: Vec<_> = (0..10)
        .map(|_| {
            let mut c = server.connect();
            c.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            c
        })
        .collect();
    // Time to accept and answer them, were there no cap.
    std::thread::sleep(std::time::Duration::from_millis(300));
    for (i, c) in waiting.iter().enumerate() {
        c.set_nonblocking(true).unwrap();
        let mut nothing = [0u8; 1];
        let early = (&*c).read(&mut nothing);
        assert!(
            early.as_ref().is_err_and(|e| e.kind() == ErrorKind::WouldBlock),
            "connection {i} beyond the cap was answered or closed while every slot was mid-request: {early:?}"
        );
        c.set_nonblocking(false).unwrap();
    }
    assert_eq!(
        socket_fds(pid),
        listener_only + 44,
        "connections beyond the cap were accepted, not left in the backlog"
    );
    drop(busy);
    for c in &waiting {
        let resp = Reader::new(c.try_clone().unwrap()).response(false).expect("served once slots freed");
        assert_eq!((resp.status, resp.body.as_slice()), (200, &b"cap\n"[..]));
    }
}
