//! Many connections at once: every one answered, whatever the backend does with bursts
//! (io_uring: more receives in one turn than the provided-buffer ring holds).
mod common;
use common::{Reader, Server, TempDir};
use std::io::{Read, Write};

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

fn large_pipelined_bodies_under_backpressure() {
    let root = TempDir::new("backpressure");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    root.write("big.bin", &big);
    let server = Server::start(root.path(), &[]);
    let mut c = server.connect();
    // Ten pipelined requests for a file larger than the socket buffers, read slowly:
    // the server must stop and resume without losing or reordering a byte.
    let req = b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n".repeat(10);
    c.write_all(&req).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut r = Reader::new(c.try_clone().unwrap());
    for _ in 0..10 {
        let resp = r.response(false).expect("response");
        assert_eq!(resp.status, 200);
        assert!(resp.body == big, "body differs");
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
/// wait in the listen backlog (not accepted and dropped) and are served as soon as slots
/// free.
fn connection_cap_leaves_the_rest_in_the_backlog() {
    let root = TempDir::new("cap");
    root.write("a.txt", "cap\n");
    let server = Server::start_with_nofile(root.path(), &[], Some(300));
    let capacity = server.banner.iter().find(|l| common::text(l).starts_with("capacity:")).expect("capacity line");
    assert!(capacity.contains("1 shards × 44 = 44 connections"), "{capacity}");
    let busy: Vec<_> = (0..44)
        .map(|_| {
            let mut c = server.connect();
            c.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\n").unwrap();
            assert_eq!(Reader::new(c.try_clone().unwrap()).response(false).expect("response").status, 200);
            c
        })
        .collect();
    let waiting: Vec<_> = (0..10)
        .map(|_| {
            let mut c = server.connect();
            c.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            c
        })
        .collect();
    waiting[0].set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    let mut nothing = [0u8; 1];
    let early = (&waiting[0]).read(&mut nothing);
    assert!(early.is_err(), "answered while every slot was mid-request: {early:?}");
    waiting[0].set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    drop(busy);
    for c in &waiting {
        let resp = Reader::new(c.try_clone().unwrap()).response(false).expect("served once slots freed");
        assert_eq!((resp.status, resp.body.as_slice()), (200, &b"cap\n"[..]));
    }
}
