//! The process lifecycle through the real binary: a killed shard is replaced on the same
//! listener, SIGTERM drains, SIGHUP reloads without losing a connection, a crash loop backs
//! off, and systemd hears READY/RELOADING/STOPPING.

mod common;

use common::{LogLine, Reader, Server, TempDir, signal};
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

for_each_backend!(
    a_killed_shard_is_replaced_and_its_queue_served,
    sigterm_finishes_downloads_serves_the_queue_and_lets_idle_connections_go,
    the_shutdown_timeout_and_a_second_signal_bound_the_stop,
    sighup_under_load_loses_nothing_and_a_failed_reload_keeps_the_old_shards,
    a_crash_loop_backs_off,
    systemd_hears_ready_reloading_and_stopping,
    every_signal_an_operator_sends_is_handled_or_ignored_with_a_line,
);

const BIG: usize = 32 << 20;
const INDEX: &[u8] = b"<p>index</p>\n";
const GET_INDEX: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";

/// A site with index.html and a big file of bytes that differ from offset to offset, so a
/// truncated or shifted download cannot compare equal.
fn site() -> (TempDir, Vec<u8>) {
    let root = TempDir::new("process");
    root.write("index.html", INDEX);
    let big = common::pattern(BIG);
    root.write("big.bin", &big);
    (root, big)
}

/// The processes `pid` started that are still running, sorted.
fn children(pid: u32) -> Vec<u32> {
    let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let mut pids: Vec<u32> = list.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    pids.sort();
    pids
}

/// Whether `pid` is stopped (by SIGSTOP): state `T` in /proc/PID/stat.
fn stopped(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('T'))
}

/// Wait for the master to exit within `limit`.
#[track_caller]
fn exit_within(server: &mut Server, limit: Duration) -> (ExitStatus, Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = server.child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the master still runs {limit:?} after it was told to stop");
}

/// Write `raw` on a new connection (the server may not have accepted it yet).
fn send_on_new(server: &Server, raw: &[u8]) -> TcpStream {
    let mut s = server.connect();
    s.write_all(raw).unwrap();
    s
}

/// The one response on `s`, which must then be closed by the server.
#[track_caller]
fn last_response(s: TcpStream) -> common::Response {
    let mut reader = Reader::new(s);
    let resp = reader.response(false).expect("a response, not a closed or reset connection");
    assert!(reader.closed(), "the connection stays open after its last response");
    resp
}

/// A GET of big.bin whose head and first `first` bytes of body have been read.
fn download(server: &Server, first: usize) -> (TcpStream, Vec<u8>) {
    let mut s = send_on_new(server, b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200 "), "{}", String::from_utf8_lossy(&head));
    let mut body = vec![0u8; first];
    s.read_exact(&mut body).unwrap();
    (s, body)
}

/// `kill -9` of a shard whose accept queue holds connections: the master replaces it on
/// the same listener, so those connections are served by the replacement, not reset.
fn a_killed_shard_is_replaced_and_its_queue_served() {
    let (root, _) = site();
    let server = Server::start(root.path(), &["--shards", "2"]);
    let master = server.pid();
    let shards = server.shard_pids();
    // Stopped, shard 0 accepts nothing: what the kernel sends its way stays queued.
    signal(shards[0], Signal::SIGSTOP);
    while !stopped(shards[0]) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let queued: Vec<TcpStream> = (0..24)
        .map(|_| send_on_new(&server, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        .collect();
    signal(shards[0], Signal::SIGKILL);
    let replaced =
        server.wait_line(Duration::from_secs(10), |l| l.who == "master" && l.text.contains("replaced by pid"));
    assert!(
        replaced.text.starts_with(&format!("shard 0 (pid {}, generation 1) was killed by SIGKILL", shards[0])),
        "{replaced:?}"
    );
    for s in queued {
        let resp = last_response(s);
        assert_eq!((resp.status, resp.body.as_slice()), (200, INDEX), "a queued connection");
    }
    let new_pid: u32 = replaced.text.rsplit(' ').next().unwrap().parse().unwrap();
    let mut want = vec![shards[1], new_pid];
    want.sort();
    assert_eq!(children(master), want, "shard 1 and the replacement of shard 0");
    // Fresh connections, spread over both listeners by the kernel: every one is served.
    for _ in 0..100 {
        let resp =
            last_response(send_on_new(&server, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        assert_eq!((resp.status, resp.body.as_slice()), (200, INDEX));
    }
}

/// SIGTERM with downloads half done, idle keep-alive connections, a request half sent and
/// connections waiting in the accept queue: the downloads arrive whole, the idle
/// connections are closed at once, the half-sent request and the queued ones are answered
/// with `Connection: close`, and the master exits 0.
fn sigterm_finishes_downloads_serves_the_queue_and_lets_idle_connections_go() {
    let (root, big) = site();
    let mut server = Server::start(root.path(), &[]);
    let shard = server.shard_pids()[0];
    let downloads: Vec<(TcpStream, Vec<u8>)> = (0..8).map(|_| download(&server, BIG / 2)).collect();
    let idle: Vec<TcpStream> = (0..50)
        .map(|_| {
            let s = send_on_new(&server, GET_INDEX);
            let mut reader = Reader::new(s.try_clone().unwrap());
            assert_eq!(reader.response(false).unwrap().status, 200);
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    let mut half = send_on_new(&server, b"GET /index.html HTTP/1.1\r\nHo");
    std::thread::sleep(Duration::from_millis(200));
    signal(shard, Signal::SIGSTOP);
    let queued: Vec<TcpStream> = (0..5).map(|_| send_on_new(&server, GET_INDEX)).collect();
    signal(server.pid(), Signal::SIGTERM);
    server.wait_line(Duration::from_secs(5), |l| l.who == "master" && l.text.starts_with("stopping: draining"));
    let stopped = Instant::now();
    signal(shard, Signal::SIGCONT);

    // Idle keep-alive connections: closed, each within a second of the stop.
    for mut s in idle {
        let mut b = [0u8; 1];
        assert!(matches!(s.read(&mut b), Ok(0)), "an idle keep-alive connection stays open");
    }
    let idle_closed = stopped.elapsed();
    assert!(idle_closed < Duration::from_secs(3), "idle connections closed {idle_closed:?} after the stop");
    half.write_all(b"st: x\r\n\r\n").unwrap();
    for s in queued.into_iter().chain([half]) {
        let resp = last_response(s);
        assert_eq!((resp.status, resp.body.as_slice()), (200, INDEX));
        assert_eq!(resp.header("Connection"), Some("close"), "the last response of a draining shard says so");
    }
    for (mut s, mut body) in downloads {
        s.read_to_end(&mut body).unwrap();
        assert!(body == big, "a download cut or damaged by the stop: {} of {BIG} bytes", body.len());
    }
    let (status, took) = exit_within(&mut server, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(took < Duration::from_secs(15), "the drain took {took:?}, near the 30 s shutdown timeout");
}

/// A client that stops reading holds a drain only until `--shutdown-timeout`; a second
/// SIGTERM, or SIGQUIT, ends it at once.
fn the_shutdown_timeout_and_a_second_signal_bound_the_stop() {
    let (root, _) = site();
    let mut server = Server::start(root.path(), &["--shutdown-timeout", "2"]);
    let (stalled, _) = download(&server, 1);
    signal(server.pid(), Signal::SIGTERM);
    let (status, took) = exit_within(&mut server, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(took >= Duration::from_millis(1_800), "left after {took:?}, before the 2 s shutdown timeout");
    assert!(took < Duration::from_secs(6), "left after {took:?} with --shutdown-timeout 2");
    shard_ended_by_itself(&server, "shutdown timeout (2 s): closing the 1 connection left");
    drop(stalled);

    for second in [Signal::SIGTERM, Signal::SIGQUIT] {
        let mut server = Server::start(root.path(), &[]);
        let (stalled, _) = download(&server, 1);
        signal(server.pid(), Signal::SIGTERM);
        server.wait_line(Duration::from_secs(5), |l| l.text.starts_with("draining"));
        signal(server.pid(), second);
        let (status, took) = exit_within(&mut server, Duration::from_secs(15));
        assert_eq!(status.code(), Some(0), "{second}: {status:?}");
        assert!(took < Duration::from_secs(5), "{second} during a drain: the master left after {took:?}");
        shard_ended_by_itself(&server, "stopping at once: closing 1 connection");
        drop(stalled);
    }
}

/// The server (exited) printed `said` from its shard, and the shard exited by itself, not
/// by the master's SIGKILL.
#[track_caller]
fn shard_ended_by_itself(server: &Server, said: &str) {
    let lines = server.lines_until(Instant::now() + Duration::from_secs(5));
    let texts: Vec<String> = lines.iter().map(|l| format!("{}: {}", l.who, l.text)).collect();
    assert!(lines.iter().any(|l| l.who == "shard 0" && l.text.ends_with(said)), "{texts:#?}");
    let exit = lines.iter().find(|l| l.who == "master" && l.text.starts_with("shard 0 ("));
    assert!(exit.is_some_and(|l| l.text.ends_with(" exited")), "{texts:#?}");
}

/// 200 connections in closed loop, each sending its next request the moment its response
/// is in; a connection told `Connection: close` opens a new one. Every failure (refused,
/// reset, closed before the whole response) counts.
struct Hammer {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Hammer {
    fn start(server: &Server) -> Hammer {
        let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let threads = (0..8)
            .map(|_| {
                let (stop, done, addr) = (Arc::clone(&stop), Arc::clone(&done), server.addr);
                std::thread::spawn(move || {
                    let open = || -> std::io::Result<(TcpStream, Reader)> {
                        let s = TcpStream::connect(addr)?;
                        s.set_read_timeout(Some(Duration::from_secs(10)))?;
                        Ok((s.try_clone()?, Reader::new(s)))
                    };
                    let mut errors = Vec::new();
                    let mut conns: Vec<(TcpStream, Reader)> = (0..25).filter_map(|_| open().ok()).collect();
                    assert_eq!(conns.len(), 25, "connect");
                    while !stop.load(Ordering::Relaxed) {
                        for (s, _) in &mut conns {
                            if let Err(e) = s.write_all(GET_INDEX) {
                                errors.push(format!("write: {e}"));
                            }
                        }
                        for slot in &mut conns {
                            let resp =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| slot.1.response(false)));
                            match resp {
                                Ok(Some(r)) if r.status == 200 && r.body == INDEX => {
                                    done.fetch_add(1, Ordering::Relaxed);
                                    if r.header("Connection") == Some("close") {
                                        match open() {
                                            Ok(fresh) => *slot = fresh,
                                            Err(e) => errors.push(format!("connect: {e}")),
                                        }
                                    }
                                }
                                Ok(Some(r)) => errors.push(format!("status {}", r.status)),
                                Ok(None) => errors.push("closed before a response".into()),
                                Err(_) => errors.push("a response cut short".into()),
                            }
                        }
                        if errors.len() > 10 {
                            break;
                        }
                    }
                    errors
                })
            })
            .collect();
        Hammer { stop, done, threads }
    }

    /// Responses so far.
    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    }
}

/// SIGHUP under a closed-loop client: a new generation of shards takes over, the old one
/// drains, the client sees no error; the master stays. A reload whose shards cannot start
/// (the root moved away) leaves the old shards serving.
fn sighup_under_load_loses_nothing_and_a_failed_reload_keeps_the_old_shards() {
    let (root, _) = site();
    let server = Server::start(root.path(), &["--shards", "2"]);
    let master = server.pid();
    let old = children(master);
    assert_eq!(old.len(), 2);
    let hammer = Hammer::start(&server);
    // Until the client has `n` responses; false if it gave up on errors or stalled.
    let at = |hammer: &Hammer, n| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while hammer.done() < n {
            if hammer.threads.iter().any(|t| t.is_finished()) || Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    };
    assert!(at(&hammer, 2_000), "before the reload: {:?}", hammer.finish());
    signal(master, Signal::SIGHUP);
    let serving = server.wait_line(Duration::from_secs(10), |l| l.text.starts_with("reload: generation 2 serving"));
    let before = hammer.done();
    for _ in &old {
        server.wait_line(Duration::from_secs(20), |l| l.who == "master" && l.text.contains("generation 1) exited"));
    }
    let went_on = at(&hammer, before + 2_000);
    let errors = hammer.finish();
    assert!(went_on || !errors.is_empty(), "the client stalled after the reload");
    assert!(errors.is_empty(), "the client saw {} errors through a reload: {errors:?}", errors.len());
    let new = children(master);
    assert_eq!(new.len(), 2, "{serving:?}");
    assert!(new.iter().all(|p| !old.contains(p)), "old shards {old:?}, now {new:?}");
    assert!(std::path::Path::new(&format!("/proc/{master}")).exists(), "the master is the same process");

    // The new generation cannot open the root; the one serving keeps it open.
    let moved = root.path().with_extension("moved");
    std::fs::rename(root.path(), &moved).unwrap();
    signal(master, Signal::SIGHUP);
    let failed = server.wait_line(Duration::from_secs(15), |l| l.text.starts_with("reload failed: "));
    std::fs::rename(&moved, root.path()).unwrap();
    assert!(failed.text.contains("before serving; generation 2 keeps serving"), "{failed:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(children(master), new, "the failed generation is gone and the serving one stays");
    let resp = last_response(send_on_new(&server, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    assert_eq!((resp.status, resp.body.as_slice()), (200, INDEX));
}

/// A shard that dies at every start (its root is gone) is restarted at a falling rate,
/// with a line saying so, and serves again once it can.
fn a_crash_loop_backs_off() {
    let (root, _) = site();
    let server = Server::start(root.path(), &[]);
    let moved = root.path().with_extension("moved");
    std::fs::rename(root.path(), &moved).unwrap();
    signal(server.shard_pids()[0], Signal::SIGKILL);
    let lines = server.lines_until(Instant::now() + Duration::from_secs(3));
    std::fs::rename(&moved, root.path()).unwrap();
    let spawned = lines.iter().filter(|l| l.text.contains("replaced by pid") || l.text.contains("restarted as pid"));
    let spawned = spawned.count();
    let backoff = lines.iter().find(|l| l.text.contains("restarting it in"));
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert!(backoff.is_some_and(|l| l.text.contains("5 exits in 10 s")), "{texts:#?}");
    assert!((4..=7).contains(&spawned), "{spawned} starts in 3 s: {texts:#?}");
    // The backoff is 4 s at most by now; then it serves.
    server.wait_line(Duration::from_secs(15), |l: &LogLine| l.text.starts_with("serving: "));
    let resp = last_response(send_on_new(&server, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    assert_eq!((resp.status, resp.body.as_slice()), (200, INDEX));
}

/// With `NOTIFY_SOCKET` set, the master reports to it as systemd's Type=notify expects.
fn systemd_hears_ready_reloading_and_stopping() {
    let (root, _) = site();
    let dir = TempDir::new("notify");
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let next = || {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut server = Server::start_with(root.path(), &[], None, &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    assert_eq!(next(), "READY=1");
    signal(server.pid(), Signal::SIGHUP);
    assert_eq!(next(), "RELOADING=1");
    assert_eq!(next(), "READY=1");
    signal(server.pid(), Signal::SIGTERM);
    assert_eq!(next(), "STOPPING=1");
    let (status, _) = exit_within(&mut server, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
}

/// SIGUSR2 (nginx's binary upgrade) reloads from the binary on disk; SIGALRM and SIGWINCH
/// are ignored with a line saying which signals do what; sent to every process at once
/// (`kill -USR2 $(pidof c10k-server)`), none ends a shard. Left to their defaults, SIGUSR2
/// and SIGALRM ended the server without a word.
fn every_signal_an_operator_sends_is_handled_or_ignored_with_a_line() {
    let (root, _) = site();
    let server = Server::start(root.path(), &["--shards", "2"]);
    let master = server.pid();
    let old = children(master);
    signal(master, Signal::SIGUSR2);
    let upgrade =
        server.wait_line(Duration::from_secs(10), |l| l.text.starts_with("SIGUSR2: upgrade: reloading from "));
    assert!(upgrade.text.ends_with("c10k-server"), "{upgrade:?}");
    server.wait_line(Duration::from_secs(10), |l| l.text.starts_with("reload: generation 2 serving"));
    for _ in &old {
        server.wait_line(Duration::from_secs(20), |l| l.who == "master" && l.text.contains("generation 1) exited"));
    }
    // With no access log, SIGUSR1 says there is none instead of claiming a reopen.
    signal(master, Signal::SIGUSR1);
    server.wait_line(Duration::from_secs(5), |l| l.text == "SIGUSR1: no access log to reopen (--access-log off)");
    for (sig, name) in [(Signal::SIGALRM, "SIGALRM"), (Signal::SIGWINCH, "SIGWINCH")] {
        signal(master, sig);
        let line = server.wait_line(Duration::from_secs(5), |l| l.text.starts_with(&format!("{name}: ignored")));
        assert!(line.text.contains("SIGHUP or SIGUSR2 reloads"), "{line:?}");
    }
    let shards = children(master);
    for &pid in &shards {
        signal(pid, Signal::SIGUSR2);
        signal(pid, Signal::SIGALRM);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(children(master), shards, "a shard ended on SIGUSR2 or SIGALRM");
    let resp = last_response(send_on_new(&server, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    assert_eq!((resp.status, resp.body.as_slice()), (200, INDEX));
}
