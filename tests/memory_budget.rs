//! What a hostile client makes a shard hold: clients that pipeline requests and never read
//! an answer grow the shard by at most a connection's budget each (`lifecycle::CONN_BUDGET`,
//! 64 KiB), with the access log on and long fields too, on both backends. Before the
//! bounds, the same clients cost 165 KiB (epoll) and 508 KiB (io_uring) each.
mod common;
use common::{Server, TempDir};
use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

for_each_backend!(stalled_pipelining_clients_hold_a_bounded_amount);

const CLIENTS: usize = 100;
/// What each client tries to send: far more than its budget, more than the kernel buffers.
const STALL_BYTES: usize = 1_200_000;
/// A connection's budget with some room for the allocator's rounding: a measure of memory,
/// not of time, so it does not drift with the machine's load.
const PER_CLIENT_MAX: u64 = 96 * 1024;

fn stalled_pipelining_clients_hold_a_bounded_amount() {
    let root = TempDir::new("stall");
    root.write("index.html", vec![b'x'; 1_300]);
    let long = "x".repeat(7_000);
    let log = root.path().join("access.log");
    for (extra, headers) in [
        (vec![], String::new()),
        (vec!["--access-log", log.to_str().unwrap()], format!("Referer: http://{long}\r\nUser-Agent: {long}\r\n")),
    ] {
        let server = Server::start(root.path(), &extra);
        let shard = server.shard_pids()[0];
        let before = rss(shard);
        let request = format!("GET /index.html HTTP/1.1\r\nHost: x\r\n{headers}\r\n").into_bytes();
        let chunk = request.repeat(65_536 / request.len());
        let mut clients: Vec<_> = (0..CLIENTS).map(|_| (server.connect(), 0usize)).collect();
        for (c, _) in &clients {
            c.set_nonblocking(true).unwrap();
        }
        // Send until every socket refuses more (the server stopped taking input) or all
        // of it went, never reading.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut quiet_rounds = 0;
        while quiet_rounds < 3 && Instant::now() < deadline {
            let mut progress = false;
            for (c, sent) in &mut clients {
                if *sent >= STALL_BYTES {
                    continue;
                }
                match c.write(&chunk[..chunk.len().min(STALL_BYTES - *sent)]) {
                    Ok(n) => {
                        *sent += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("a stalled client's connection failed: {e}"),
                }
            }
            quiet_rounds = if progress { 0 } else { quiet_rounds + 1 };
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_millis(500));
        let per_client = rss(shard).saturating_sub(before) / CLIENTS as u64;
        let log_on = !extra.is_empty();
        assert!(
            per_client <= PER_CLIENT_MAX,
            "access log {log_on}: {per_client} bytes of shard memory per stalled client (at most {PER_CLIENT_MAX})"
        );
        drop(clients);
    }
}

/// Resident bytes of process `pid`.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS in /proc/PID/status");
    kib.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
}
