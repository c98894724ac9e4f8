//! HTTPS under stress and change, through the real binary on every backend: a reload swaps
//! the certificate under a download in flight; a certificate that does not load fails the
//! start and is refused by a reload; handshakes that stall meet the request timeout; slow
//! readers are served whole and stalled ones dropped; clients that reset mid-download
//! leave nothing behind.
mod common;

use common::tls::{Pair, cert_args, certs, client, connect, start};
use common::{TempDir, download_site, metrics, read_head, signal, socket_fds, within};
use nix::sys::signal::Signal;
use nix::sys::socket::{setsockopt, sockopt};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

for_each_backend!(
    a_reload_swaps_the_certificate_under_a_download_in_flight,
    after_every_reload_the_next_connection_is_served_with_the_new_certificate,
    a_certificate_that_does_not_load_fails_the_start,
    a_reload_with_a_bad_certificate_is_refused_and_the_old_one_serves,
    a_silent_or_trickling_handshake_is_dropped_at_the_request_timeout,
    a_slow_tls_reader_is_served_whole,
    a_stalled_tls_reader_is_dropped_at_the_send_timeout,
    tls_clients_that_reset_mid_download_leave_nothing_behind,
);

const GET_BIG: &[u8] = b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n";
const GET_SMALL: &str = "GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";

fn small_rcvbuf(s: &TcpStream) {
    setsockopt(s, sockopt::RcvBuf, &(64 << 10)).unwrap();
}

fn a_reload_swaps_the_certificate_under_a_download_in_flight() {
    let (root, body) = download_site("tls-reload", 16 << 20);
    let keys = TempDir::new("tls-reload-keys");
    let c = certs();
    let (server, addr) = start(&root, &cert_args(&keys, &[("site", &c.localhost)]));
    let mut old = connect(addr, "localhost", &client()).expect("handshake");
    assert!(old.peer_cert() == c.localhost.der);
    small_rcvbuf(old.tcp());
    old.send(GET_BIG);
    assert_eq!(read_head(&mut old.r), (200, body.len()));
    let mut got = vec![0; 1 << 20];
    old.r.read_exact(&mut got).unwrap();

    // The files now hold another certificate for the same name; the reload reads them.
    c.rsa.write(&keys, "site");
    common::tls::reload(&server, &server.shard_pids());
    let mut new = connect(addr, "localhost", &client()).expect("handshake after the reload");
    assert!(new.peer_cert() == c.rsa.der, "a new connection after the reload: the old certificate");
    assert_eq!(new.get(GET_SMALL).body, b"small\n");

    // The download of the old generation goes on, slowly, to its last byte.
    let mut buf = vec![0; 64 << 10];
    while got.len() < body.len() {
        let want = (body.len() - got.len()).min(buf.len());
        let n = old.r.read(&mut buf[..want]).unwrap_or_else(|e| panic!("after {} bytes: {e}", got.len()));
        assert!(n > 0, "cut short at {} of {} bytes", got.len(), body.len());
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_micros(500));
    }
    assert!(got == body, "the download across the reload: not the file's bytes");
    assert!(old.peer_cert() == c.localhost.der);
}

/// Run the binary with `args` and the TLS flags of one pair; its exit status and output,
/// once it exits (10 s at most).
fn start_fails(root: &TempDir, cert: &std::path::Path, key: &std::path::Path) -> (Option<i32>, String) {
    let mut child = Command::new(common::BIN)
        .args(["--listen", "127.0.0.1:0", "--backend", &common::backend(), "--root"])
        .arg(root.path())
        .args(["--tls-listen", "127.0.0.1:0", "--tls-cert"])
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if !within(Duration::from_secs(10), || child.try_wait().unwrap().is_some()) {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "still running after 10 s: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn a_certificate_that_does_not_load_fails_the_start() {
    let root = TempDir::new("tls-bad-start");
    let keys = TempDir::new("tls-bad-start-keys");
    let c = certs();
    let (good_cert, good_key) = c.localhost.write(&keys, "good");
    let not_pem = keys.write("not-pem.crt", "this is no certificate\n");
    let other_key = keys.write("other.key", &c.other_key);
    let missing = keys.path().join("missing.crt");
    for (what, cert, key, named) in [
        ("a file with no certificate", &not_pem, &good_key, &not_pem),
        ("a missing file", &missing, &good_key, &missing),
        ("a key that is not the certificate's", &good_cert, &other_key, &other_key),
    ] {
        let (code, out) = start_fails(&root, cert, key);
        assert_eq!(code, Some(1), "{what}: {out}");
        let named = named.display().to_string();
        let line = out.lines().find(|l| l.contains(&named));
        assert!(line.is_some(), "{what}: no line names {named}: {out}");
        assert!(!out.contains("listening on"), "{what}: {out}");
    }
}

fn a_reload_with_a_bad_certificate_is_refused_and_the_old_one_serves() {
    let (root, _) = download_site("tls-bad-reload", 1);
    let keys = TempDir::new("tls-bad-reload-keys");
    let c = certs();
    let (server, addr) = start(&root, &cert_args(&keys, &[("site", &c.localhost)]));
    let (cert, key) = (keys.path().join("site.crt"), keys.path().join("site.key"));
    let serves = |want: &Pair, when: &str| {
        let mut tls = connect(addr, "localhost", &client()).unwrap_or_else(|e| panic!("{when}: {e}"));
        assert!(tls.peer_cert() == want.der, "{when}: not the certificate expected");
        assert_eq!(tls.get(GET_SMALL).body, b"small\n", "{when}");
    };
    for (what, cert_pem, key_pem, named) in [
        ("a file with no certificate", &b"garbage\n"[..], &c.localhost.key[..], &cert),
        ("a key that is not the certificate's", &c.localhost.cert[..], &c.other_key[..], &key),
    ] {
        keys.write("site.crt", cert_pem);
        keys.write("site.key", key_pem);
        signal(server.pid(), Signal::SIGHUP);
        let refused = server.wait_line(Duration::from_secs(10), |l| l.text.starts_with("reload refused:"));
        assert!(refused.text.contains(&named.display().to_string()), "{what}: {refused:?}");
        serves(&c.localhost, what);
    }
    // A good pair after them reloads.
    c.rsa.write(&keys, "site");
    common::tls::reload(&server, &server.shard_pids());
    serves(&c.rsa, "after a good reload");
}

/// Reload after reload, each swapping the certificate: the first connection after each
/// (once the old generation accepts no more) is answered at once, with the new certificate.
fn after_every_reload_the_next_connection_is_served_with_the_new_certificate() {
    let (root, _) = download_site("tls-reloads", 1);
    let keys = TempDir::new("tls-reloads-keys");
    let c = certs();
    let (server, addr) = start(&root, &cert_args(&keys, &[("site", &c.localhost)]));
    let mut pids = server.shard_pids();
    for reload in 1..=20 {
        let pair = if reload % 2 == 1 { &c.rsa } else { &c.localhost };
        pair.write(&keys, "site");
        pids = common::tls::reload(&server, &pids);
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut tls = common::tls::handshake(sock, "localhost", &client()).unwrap_or_else(|e| {
            panic!("reload {reload}: the first connection after it: no handshake within 3 s ({e})")
        });
        assert!(tls.peer_cert() == pair.der, "reload {reload}: the old certificate");
        assert_eq!(tls.get(GET_SMALL).body, b"small\n", "reload {reload}");
    }
}

/// How long `s` (connected at `since`) took to be closed by the server (EOF or reset)
/// while `poke` runs between reads of `every`; `None` if it was not within `limit`.
fn closed_after(
    s: &mut TcpStream,
    since: Instant,
    limit: Duration,
    every: Duration,
    mut poke: impl FnMut(&mut TcpStream) -> bool,
) -> Option<Duration> {
    s.set_read_timeout(Some(every)).unwrap();
    let mut buf = [0u8; 4096];
    while since.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(since.elapsed()),
        }
        if !poke(s) {
            return Some(since.elapsed());
        }
    }
    None
}

fn a_silent_or_trickling_handshake_is_dropped_at_the_request_timeout() {
    let (root, _) = download_site("tls-handshake-timeout", 1);
    let keys = TempDir::new("tls-handshake-timeout-keys");
    let mut args = cert_args(&keys, &[("localhost", &certs().localhost)]);
    args.extend(["--request-timeout", "1", "--status-listen", "127.0.0.1:0"].map(String::from));
    let (server, addr) = start(&root, &args);
    let limit = Duration::from_secs(3);

    let since = Instant::now();
    let mut silent = TcpStream::connect(addr).unwrap();
    let took = closed_after(&mut silent, since, Duration::from_secs(6), Duration::from_millis(100), |_| true);
    assert!(took.is_some_and(|t| t < limit), "a silent client, --request-timeout 1: closed after {took:?}");

    // Half a real ClientHello, then a byte every 300 ms.
    let hello = common::tls::client_hello("localhost");
    let since = Instant::now();
    let mut trickle = TcpStream::connect(addr).unwrap();
    trickle.set_nodelay(true).unwrap();
    trickle.write_all(&hello[..hello.len() / 2]).unwrap();
    let mut next = hello.len() / 2;
    let took = closed_after(&mut trickle, since, Duration::from_secs(6), Duration::from_millis(300), |s| {
        next += 1;
        next < hello.len() && s.write_all(&hello[next - 1..next]).is_ok()
    });
    assert!(next < hello.len(), "the whole ClientHello went: the test trickled too fast");
    assert!(took.is_some_and(|t| t < limit), "a trickling ClientHello, --request-timeout 1: closed after {took:?}");

    // Both count as handshakes that closed before they were done; the server serves on.
    let status = server.status_addr();
    let closed = || metrics(status).value("c10k_server_tls_handshakes_total", &[("result", "closed")]);
    within(Duration::from_secs(5), || closed() == 2.0);
    assert_eq!(closed(), 2.0);
    assert_eq!(connect(addr, "localhost", &client()).unwrap().get(GET_SMALL).body, b"small\n");
}

fn a_slow_tls_reader_is_served_whole() {
    let (root, body) = download_site("tls-slow", 16 << 20);
    let keys = TempDir::new("tls-slow-keys");
    let mut args = cert_args(&keys, &[("localhost", &certs().localhost)]);
    args.extend(["--send-timeout", "1", "--request-timeout", "1", "--keepalive-timeout", "1"].map(String::from));
    let (_server, addr) = start(&root, &args);
    let mut tls = connect(addr, "localhost", &client()).expect("handshake");
    // A small receive buffer: the kernels hold a small part of the file (this buffer and
    // the server's send buffer, 4 MiB at most by default), so the server waits on this
    // reader for most of it.
    small_rcvbuf(tls.tcp());
    tls.send(GET_BIG);
    assert_eq!(read_head(&mut tls.r), (200, body.len()));
    // 16 KiB at a time at about 4 MB/s: some four seconds in all, past twice the send
    // timeout, never a pause near it.
    const RATE: f64 = 4e6;
    let started = Instant::now();
    let (mut got, mut buf) = (Vec::with_capacity(body.len()), vec![0; 16 << 10]);
    while got.len() < body.len() {
        let want = (body.len() - got.len()).min(buf.len());
        let n = tls
            .r
            .read(&mut buf[..want])
            .unwrap_or_else(|e| panic!("after {} bytes, {:?}: {e}", got.len(), started.elapsed()));
        assert!(n > 0, "cut short: {} of {} bytes after {:?}", got.len(), body.len(), started.elapsed());
        got.extend_from_slice(&buf[..n]);
        let due = Duration::from_secs_f64(got.len() as f64 / RATE);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
    assert!(started.elapsed() > Duration::from_secs(2), "read in {:?}", started.elapsed());
    assert!(got == body, "the body arrived, but not the bytes of the file");
    // And the connection is kept alive.
    assert_eq!(tls.get(GET_SMALL).body, b"small\n");
}

fn a_stalled_tls_reader_is_dropped_at_the_send_timeout() {
    let (root, body) = download_site("tls-stall", 16 << 20);
    let keys = TempDir::new("tls-stall-keys");
    let mut args = cert_args(&keys, &[("localhost", &certs().localhost)]);
    args.extend(["--send-timeout", "1", "--status-listen", "127.0.0.1:0"].map(String::from));
    let (server, addr) = start(&root, &args);
    let pid = server.shard_pids()[0];
    let before = socket_fds(pid);
    let mut tls = connect(addr, "localhost", &client()).expect("handshake");
    small_rcvbuf(tls.tcp());
    tls.send(GET_BIG);
    // It reads nothing more for 3 s: by then the shard has let it go.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        within(Duration::from_secs(5), || socket_fds(pid) == before),
        "a TLS client that reads nothing is still held 8 s past --send-timeout 1"
    );
    let (got, end) = tls.read_to_end(Duration::from_secs(5));
    let ended = match &end {
        Ok(()) => true,
        Err(e) => matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset),
    };
    assert!(ended, "the stream did not end: {end:?}");
    assert!(got.len() < body.len(), "all {} bytes arrived: nothing was dropped", got.len());
    let timeouts = metrics(server.status_addr()).value("c10k_server_timeouts_total", &[("kind", "send")]);
    assert!(timeouts >= 1.0, "send timeouts: {timeouts}");
}

fn tls_clients_that_reset_mid_download_leave_nothing_behind() {
    let (root, _) = download_site("tls-resets", 1 << 20);
    let keys = TempDir::new("tls-resets-keys");
    let mut args = cert_args(&keys, &[("localhost", &certs().localhost)]);
    args.extend(["--status-listen", "127.0.0.1:0"].map(String::from));
    let (server, addr) = start(&root, &args);
    let pid = server.shard_pids()[0];
    let baseline = socket_fds(pid);
    let config = client();
    // Fill the file cache first: its descriptors are not the connections'.
    assert_eq!(connect(addr, "localhost", &config).unwrap().get(GET_SMALL).status, 200);
    let mut warm = connect(addr, "localhost", &config).unwrap();
    warm.send(GET_BIG);
    assert_eq!(read_head(&mut warm.r).0, 200);
    drop(warm);
    assert!(within(Duration::from_secs(5), || socket_fds(pid) == baseline), "warm-up connections still held");
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let before = fds();

    const THREADS: usize = 8;
    const EACH: usize = 250;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let config = &config;
            scope.spawn(move || {
                for i in 0..EACH {
                    let mut tls = connect(addr, "localhost", config).unwrap_or_else(|e| panic!("{t}/{i}: {e}"));
                    tls.send(GET_BIG);
                    let mut some = [0u8; 4096];
                    tls.r.read_exact(&mut some).unwrap_or_else(|e| panic!("{t}/{i}: {e}"));
                    assert!(some.starts_with(b"HTTP/1.1 200 "), "{t}/{i}");
                    let linger = nix::libc::linger { l_onoff: 1, l_linger: 0 };
                    setsockopt(tls.tcp(), sockopt::Linger, &linger).unwrap();
                }
            });
        }
    });
    assert!(
        within(Duration::from_secs(10), || socket_fds(pid) == baseline && fds() == before),
        "the shard holds {} sockets ({baseline} before) and {} descriptors ({before} before) after {} resets",
        socket_fds(pid),
        fds(),
        THREADS * EACH
    );
    let status = server.status_addr();
    let open = || metrics(status).value("c10k_server_tls_connections_open", &[]);
    within(Duration::from_secs(10), || open() == 0.0);
    assert_eq!(open(), 0.0, "TLS connections open after every client reset");
    // The same shard serves.
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the shard died");
    let mut tls = connect(addr, "localhost", &client()).unwrap();
    assert_eq!(tls.get(GET_SMALL).body, b"small\n");
}
