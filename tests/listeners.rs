//! Several listeners a shard: a plain one (`--listen`) and TLS ones (`--tls-listen`). The
//! flags that do not go together are refused with what to do; certificates that do not
//! load refuse the start and a reload; and every listener serves, on every backend, with
//! sessions resumed on whichever shard and across a reload (the master's ticket keys).

mod common;

use common::tls::client_any_certificate;
use common::{Server, TempDir, text};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// A self-signed certificate for `localhost` (P-256, valid until 2126) and its key.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUa0VhL4MZKwahNmRJPLiz2ZWoRn4wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNzA0NTY0NloYDzIxMjYxMTEz
MDQ1NjQ2WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAS1QzWEKfdPKCUOP4D4pw/AN+xspRBVWkZP0vX6Sr36gqWj4vNQi6my
Difp6jf4Ou0NWJ6bmUdJk0x0vrLIQty4o2kwZzAdBgNVHQ4EFgQU6XMH3UhuXxSO
an+QMimqNYwSqJowHwYDVR0jBBgwFoAU6XMH3UhuXxSOan+QMimqNYwSqJowDwYD
VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
SAAwRQIgE8wc8vHyEceOSI1+wkh5w1/txdlHu6QqBPqRCAVmIlECIQDRfxbSdpPw
NsddBhGmtGb7TOnUQOeclKhLQXl0vzQYUg==
-----END CERTIFICATE-----
";
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxkIH/MfnmzHW+8kv
gU+cqxSZY/3oB/ondpZE58e+YyShRANCAAS1QzWEKfdPKCUOP4D4pw/AN+xspRBV
WkZP0vX6Sr36gqWj4vNQi6myDifp6jf4Ou0NWJ6bmUdJk0x0vrLIQty4
-----END PRIVATE KEY-----
";

/// A site with an index page, and the certificate and key beside it.
struct Site {
    dir: TempDir,
    cert: String,
    key: String,
}

impl Site {
    fn new() -> Site {
        let dir = TempDir::new("listeners");
        dir.write("root/index.html", "hello over every listener\n");
        let cert = dir.write("cert.pem", CERT).display().to_string();
        let key = dir.write("key.pem", KEY).display().to_string();
        Site { dir, cert, key }
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }
}

/// stderr of a start with `args` (after a root and one shard), which must exit with
/// `code`, having said one line.
fn refused(args: &[&str], code: i32) -> String {
    let site = Site::new();
    let out = Command::new(common::BIN)
        .args(["--shards", "1", "--root"])
        .arg(site.root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run c10k-server");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line, was {stderr:?}");
    stderr
}

#[test]
fn tls_flags_that_do_not_go_together_say_what_to_do() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--tls-listen", "127.0.0.1:0", "--tls-cert", "a.pem"],
            &["1 --tls-cert and 0 --tls-key", "pass one --tls-key for each --tls-cert"],
        ),
        (
            &["--tls-listen", "127.0.0.1:0", "--tls-key", "a.key"],
            &["0 --tls-cert and 1 --tls-key", "pass one --tls-key for each --tls-cert"],
        ),
        (&["--tls-listen", "127.0.0.1:0"], &["--tls-listen needs a certificate", "--tls-cert PEM --tls-key PEM"]),
        (&["--tls-cert", "a.pem", "--tls-key", "a.key"], &["--tls-cert without --tls-listen", "pass --tls-listen"]),
        (&["--tls-cert-dir", "certs"], &["--tls-cert-dir without --tls-listen"]),
        (
            &["--listen", "127.0.0.1:8443", "--tls-listen", "127.0.0.1:8443", "--tls-cert-dir", "certs"],
            &["127.0.0.1:8443 is given to --listen and --tls-listen", "an address of its own"],
        ),
        (
            &["--tls-listen", "127.0.0.1:8443", "--tls-listen", "127.0.0.1:8443", "--tls-cert-dir", "certs"],
            &["127.0.0.1:8443 is given to --tls-listen twice"],
        ),
        (&["--tls-listen", "127.0.0.1"], &["--tls-listen", "expected ADDR:PORT"]),
    ];
    for &(args, wanted) in cases {
        let line = refused(args, 2);
        for want in wanted {
            assert!(line.contains(want), "{args:?}: {line:?} does not say {want:?}");
        }
    }
}

/// The master loads the certificates before it binds anything: one that will not load
/// refuses the start with the file and why.
#[test]
fn a_certificate_that_does_not_load_refuses_the_start() {
    let site = Site::new();
    let missing = site.dir.path().join("missing.pem").display().to_string();
    let tls = ["--tls-listen", "127.0.0.1:0", "--tls-cert"];
    let line = refused(&[&tls[..], &[&missing, "--tls-key", &site.key]].concat(), 1);
    assert!(line.contains(&missing), "{line:?}");
    // A key that is not the certificate's.
    let line = refused(&[&tls[..], &[&site.cert, "--tls-key", &site.cert]].concat(), 1);
    assert!(line.contains(&site.cert), "{line:?}");
}

/// A plain listener and two TLS ones, on two shards: each serves, the HTTPS start lines come
/// before the plain one (which scripts wait for), and plain HTTP on a TLS port is no answer.
fn plain_and_tls_listeners_all_serve() {
    let site = Site::new();
    let tls = ["--tls-listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"];
    let certs = ["--tls-cert", &site.cert, "--tls-key", &site.key];
    let args = [&["--listen", "127.0.0.1:0", "--shards", "2"][..], &tls, &certs].concat();
    let server = Server::start(&site.root(), &args);
    assert_eq!(server.tls_addrs.len(), 2, "{:?}", server.banner);
    let lines: Vec<String> = server.banner.iter().map(|l| text(l)).filter(|l| l.starts_with("listening")).collect();
    assert!(lines[0].ends_with("(TLS)") && lines[1].ends_with("(TLS)"), "{lines:?}");
    assert!(lines[2].starts_with(&format!("listening on http://{} (2 shards", server.addr)), "{lines:?}");
    let plain = server.get("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((plain.status, plain.body_str()), (200, "hello over every listener\n"));
    let client = client_any_certificate();
    for &addr in &server.tls_addrs {
        for _ in 0..4 {
            let (response, _) = https_get(addr, &client);
            assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{addr}: {response:?}");
            assert!(response.ends_with("hello over every listener\n"), "{addr}: {response:?}");
        }
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        assert!(!answer.starts_with(b"HTTP/1.1 200"), "{addr}: plain HTTP served on a TLS port");
    }
    // A drain lets go of every listener: each shard ends, then the master.
    common::signal(server.pid(), nix::sys::signal::Signal::SIGTERM);
    server.wait_line(Duration::from_secs(10), |l| l.who == "master" && l.text == "stopped");
}

/// HTTPS alone (no --listen: no plain listener), on two shards: a client resumes its session
/// on whichever shard its connection lands, and after a reload. A reload whose certificate
/// would not load is refused, and the running generation keeps serving.
fn tls_alone_resumes_across_shards_and_reloads() {
    let site = Site::new();
    let args = ["--tls-listen", "127.0.0.1:0", "--tls-cert", &site.cert, "--tls-key", &site.key, "--shards", "2"];
    let server = Server::start(&site.root(), &args);
    assert_eq!(server.tls_addrs, [server.addr]);
    assert!(!server.banner.iter().any(|l| text(l).starts_with("listening on http://")), "{:?}", server.banner);
    let client = client_any_certificate();
    let addr = server.addr;
    assert_eq!(https_get(addr, &client).1, Some(HandshakeKind::Full));
    // Connections spread over both shards; every one resumes.
    for _ in 0..8 {
        assert_eq!(https_get(addr, &client).1, Some(HandshakeKind::Resumed));
    }
    let moved = site.dir.path().join("cert.moved");
    std::fs::rename(&site.cert, &moved).unwrap();
    common::signal(server.pid(), nix::sys::signal::Signal::SIGHUP);
    let refusal = server.wait_line(Duration::from_secs(10), |l| l.text.starts_with("reload refused: "));
    assert!(refusal.text.contains(&site.cert) && refusal.text.ends_with("the running generation keeps serving"));
    assert_eq!(https_get(addr, &client).1, Some(HandshakeKind::Resumed));
    std::fs::rename(&moved, &site.cert).unwrap();
    common::signal(server.pid(), nix::sys::signal::Signal::SIGHUP);
    server.wait_line(Duration::from_secs(15), |l| l.text.starts_with("reload: generation 2 serving"));
    for _ in 0..4 {
        assert_eq!(https_get(addr, &client).1, Some(HandshakeKind::Resumed), "after the reload");
    }
}

/// Steering applies to every listener's group: with shard 1 down (its replacements die at
/// start, their root gone), new TLS connections all go to shard 0, none waits in shard 1's
/// queue for a start that keeps failing.
fn a_shard_down_gets_no_new_connection_on_any_listener() {
    let site = Site::new();
    let certs = ["--tls-cert", &site.cert, "--tls-key", &site.key];
    let args = [&["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--shards", "2"][..], &certs].concat();
    let server = Server::start(&site.root(), &args);
    let moved = site.dir.path().join("root.moved");
    std::fs::rename(site.root(), &moved).unwrap();
    common::signal(server.shard_pids()[1], nix::sys::signal::Signal::SIGKILL);
    server.wait_line(Duration::from_secs(5), |l| l.text.contains("new connections go to shards [0] only"));
    // All connected first, so that each lands in a shard's queue before any is served.
    let tcp: Vec<TcpStream> = (0..100).map(|_| TcpStream::connect(server.tls_addrs[0]).unwrap()).collect();
    let client = client_any_certificate();
    for tcp in tcp {
        tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let conn = ClientConnection::new(Arc::clone(&client), ServerName::try_from("localhost").unwrap()).unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut head = [0; 12];
        tls.read_exact(&mut head).expect("an answer from the shard that serves");
        assert_eq!(&head, b"HTTP/1.1 200");
    }
    std::fs::rename(&moved, site.root()).unwrap();
}

for_each_backend!(
    plain_and_tls_listeners_all_serve,
    tls_alone_resumes_across_shards_and_reloads,
    a_shard_down_gets_no_new_connection_on_any_listener
);

/// `GET /` over TLS on a new connection: the whole response, and how the handshake went.
fn https_get(addr: SocketAddr, config: &Arc<ClientConfig>) -> (String, Option<HandshakeKind>) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = ClientConnection::new(Arc::clone(config), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        Ok(_) => {}
        // A close without close_notify, after the whole response: the response is still
        // checked whole by the caller.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("{addr}: {e}"),
    }
    (String::from_utf8_lossy(&response).into_owned(), tls.conn.handshake_kind())
}
