//! HTTPS through the real binary, on every backend, with a rustls client and curl: the
//! bytes of a download, ranges, conditionals and keep-alive over TLS; the certificate SNI
//! picks; ALPN; sessions resumed on whichever shard a reconnect lands; plain HTTP and
//! garbage on the TLS port; the handshake counters of `/metrics`; the access log's TLS
//! fields; the start lines of certificates, and every key format.
mod common;

use common::tls::{TLS_BOTH, cert_args, certs, client, client_any_name, client_with, connect, start};
use common::{Metrics, Reader, Server, TempDir, metrics, within};
use rustls::HandshakeKind;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

for_each_backend!(
    a_download_is_byte_identical_with_rustls_and_curl,
    ranges_conditionals_and_head_work_on_one_kept_alive_connection,
    sni_picks_the_certificate_and_an_unknown_name_gets_the_default,
    alpn_negotiates_http_1_1_and_refuses_a_client_offering_only_h2,
    a_session_resumes_on_either_shard,
    plain_http_gets_nginx_400_and_garbage_gets_an_alert,
    handshake_counters_say_how_each_handshake_ended,
    json_access_log_names_the_protocol_and_cipher,
    certificate_start_lines_warn_of_expiry_and_every_key_format_serves,
);

fn a_download_is_byte_identical_with_rustls_and_curl() {
    let root = TempDir::new("tls-download");
    let body = common::pattern(3 << 20);
    root.write("big.bin", &body);
    let keys = TempDir::new("tls-download-keys");
    let mut args = cert_args(&keys, &[("localhost", &certs().localhost)]);
    args.extend(["--listen", "127.0.0.1:0"].map(String::from));
    let (server, addr) = start(&root, &args);

    let mut tls = connect(addr, "localhost", &client()).expect("handshake");
    let resp = tls.get("GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!((resp.status, resp.header("Content-Length")), (200, Some("3145728")));
    assert!(resp.body == body, "rustls: {} bytes, not the file's", resp.body.len());

    let got = keys.path().join("curl.bin");
    let out = common::tls::curl(
        &keys,
        addr,
        "/big.bin",
        &["-o", got.to_str().unwrap(), "-w", "%{http_code} %{http_version}"],
    );
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200 1.1", "curl offers h2 too; http/1.1 is chosen");
    assert!(std::fs::read(&got).unwrap() == body, "curl: not the file's bytes");

    // The plain listener beside it serves the same bytes.
    assert!(server.get("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").body == body);
}

fn ranges_conditionals_and_head_work_on_one_kept_alive_connection() {
    let root = TempDir::new("tls-http");
    let data = common::pattern(1000);
    root.write("data.bin", &data);
    let keys = TempDir::new("tls-http-keys");
    let (_server, addr) = start(&root, &cert_args(&keys, &[("localhost", &certs().localhost)]));
    let mut tls = connect(addr, "localhost", &client()).expect("handshake");
    let get = |extra: &str| format!("GET /data.bin HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n");

    let full = tls.get(&get(""));
    assert_eq!((full.status, full.body == data), (200, true));
    let etag = full.header("ETag").expect("an ETag").to_string();

    let not_modified = tls.get(&get(&format!("If-None-Match: {etag}\r\n")));
    assert_eq!((not_modified.status, not_modified.header("ETag")), (304, Some(etag.as_str())));

    let part = tls.get(&get("Range: bytes=100-199\r\n"));
    assert_eq!((part.status, part.header("Content-Range")), (206, Some("bytes 100-199/1000")));
    assert_eq!(part.body, &data[100..200]);

    let beyond = tls.get(&get("Range: bytes=5000-\r\n"));
    assert_eq!((beyond.status, beyond.header("Content-Range")), (416, Some("bytes */1000")));

    let head = tls.get("HEAD /data.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!((head.status, head.header("Content-Length"), head.body.len()), (200, Some("1000"), 0));

    // A pipelined pair, the last asking to close: both answered, then the end.
    tls.send((get("Range: bytes=-10\r\n") + &get("Connection: close\r\n")).as_bytes());
    let tail = tls.response(false).expect("the first of two pipelined");
    assert_eq!((tail.status, tail.body.as_slice()), (206, &data[990..]));
    let last = tls.response(false).expect("the second of two pipelined");
    assert_eq!((last.status, last.header("Connection"), last.body == data), (200, Some("close"), true));
    let (rest, end) = tls.read_to_end(Duration::from_secs(3));
    assert!(rest.is_empty() && end.is_ok(), "after Connection: close: {rest:?} {end:?}, not a close_notify");
    // All of it on the one connection, one handshake.
    assert_eq!(tls.conn().handshake_kind(), Some(HandshakeKind::Full));
}

fn sni_picks_the_certificate_and_an_unknown_name_gets_the_default() {
    let c = certs();
    let root = TempDir::new("tls-sni");
    root.write("index.html", "sni\n");
    // Pairs on the command line, the first the default.
    let keys = TempDir::new("tls-sni-keys");
    let pairs = cert_args(&keys, &[("localhost", &c.localhost), ("a", &c.a_test), ("b", &c.b_wild)]);
    // A directory: `default.*` is the default; `.crt` or `.pem`.
    let dir = TempDir::new("tls-sni-dir");
    dir.write("default.crt", &c.a_test.cert);
    dir.write("default.key", &c.a_test.key);
    dir.write("host.pem", &c.localhost.cert);
    dir.write("host.key", &c.localhost.key);
    c.b_wild.write(&dir, "wild");
    let from_dir: Vec<String> =
        ["--tls-listen", "127.0.0.1:0", "--tls-cert-dir", dir.path().to_str().unwrap()].map(String::from).into();
    for (how, args, default) in [("pairs", pairs, &c.localhost), ("--tls-cert-dir", from_dir, &c.a_test)] {
        let (_server, addr) = start(&root, &args);
        let any = client_any_name();
        for (name, want) in [
            ("localhost", &c.localhost),
            ("a.test", &c.a_test),
            ("x.b.test", &c.b_wild),
            ("WWW.B.TEST", &c.b_wild),
            // A wildcard covers one label, not its parent nor two.
            ("b.test", default),
            ("deep.x.b.test", default),
            ("unknown.test", default),
            // An IP address sends no SNI.
            ("127.0.0.1", default),
        ] {
            let mut tls = connect(addr, name, &any).unwrap_or_else(|e| panic!("{how}: {name}: {e}"));
            assert!(tls.peer_cert() == want.der, "{how}: {name}: not the certificate expected");
            assert_eq!(tls.get("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").body, b"sni\n");
        }
        // The names a certificate covers verify against the CA with a strict client.
        for name in ["localhost", "a.test", "x.b.test"] {
            connect(addr, name, &client()).unwrap_or_else(|e| panic!("{how}: {name}: {e}"));
        }
    }
}

fn alpn_negotiates_http_1_1_and_refuses_a_client_offering_only_h2() {
    let root = TempDir::new("tls-alpn");
    root.write("index.html", "alpn\n");
    let keys = TempDir::new("tls-alpn-keys");
    let (_server, addr) = start(&root, &cert_args(&keys, &[("localhost", &certs().localhost)]));
    let offers: [&[&[u8]]; 3] = [&[b"http/1.1"], &[b"h2", b"http/1.1"], &[]];
    for offer in offers {
        let config = std::sync::Arc::new(client_with(offer, TLS_BOTH));
        let mut tls = connect(addr, "localhost", &config).unwrap_or_else(|e| panic!("offering {offer:?}: {e}"));
        let want: Option<&[u8]> = if offer.is_empty() { None } else { Some(b"http/1.1") };
        assert_eq!(tls.conn().alpn_protocol(), want, "offering {offer:?}");
        assert_eq!(tls.get("GET / HTTP/1.1\r\nHost: x\r\n\r\n").body, b"alpn\n");
    }
    let h2_only = std::sync::Arc::new(client_with(&[b"h2"], TLS_BOTH));
    let Err(e) = connect(addr, "localhost", &h2_only) else { panic!("a handshake offering only h2 succeeded") };
    assert_eq!(
        common::tls::tls_error(&e),
        Some(&rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)),
        "{e}"
    );
}

fn a_session_resumes_on_either_shard() {
    let root = TempDir::new("tls-resume");
    root.write("index.html", "resumed\n");
    let keys = TempDir::new("tls-resume-keys");
    let mut args = cert_args(&keys, &[("localhost", &certs().localhost)]);
    args.extend(["--shards", "2", "--status-listen", "127.0.0.1:0"].map(String::from));
    let (server, addr) = start(&root, &args);
    let config = client();
    const RECONNECTS: usize = 20;
    for i in 0..=RECONNECTS {
        let mut tls = connect(addr, "localhost", &config).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        let want = if i == 0 { HandshakeKind::Full } else { HandshakeKind::Resumed };
        assert_eq!(tls.conn().handshake_kind(), Some(want), "connection {i}");
        // Reading the response reads the ticket sent before it, for the next connection.
        assert_eq!(tls.get("GET / HTTP/1.1\r\nHost: x\r\n\r\n").body, b"resumed\n", "connection {i}");
    }
    let status = server.status_addr();
    let per_shard = |m: &Metrics, shard: &str, result: &str| {
        m.value("c10k_tls_handshakes_total", &[("shard", shard), ("result", result)]) as u64
    };
    let mut m = metrics(status);
    within(Duration::from_secs(10), || {
        m = metrics(status);
        m.value("c10k_server_tls_handshakes_total", &[("result", "resumed")]) as usize == RECONNECTS
    });
    let resumed = [per_shard(&m, "0", "resumed"), per_shard(&m, "1", "resumed")];
    assert_eq!(resumed.iter().sum::<u64>(), RECONNECTS as u64, "{}", m.text);
    assert_eq!(per_shard(&m, "0", "full") + per_shard(&m, "1", "full"), 1, "{}", m.text);
    assert!(resumed.iter().all(|&n| n > 0), "resumed per shard {resumed:?}: a shard resumed none");
}

/// Every byte the server sends on `s` until it closes (3 s at most), and how long it took.
fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("not closed within 3 s ({e}); got {:?}", String::from_utf8_lossy(&got)),
    }
    (got, started.elapsed())
}

/// Bytes that are neither a TLS record (0x16 first) nor a request line (a capital first).
fn garbage() -> Vec<u8> {
    let mut junk = common::pattern(64);
    junk[0] = 0x80;
    junk
}

fn plain_http_gets_nginx_400_and_garbage_gets_an_alert() {
    let root = TempDir::new("tls-plain");
    root.write("index.html", "x\n");
    let keys = TempDir::new("tls-plain-keys");
    let (_server, addr) = start(&root, &cert_args(&keys, &[("localhost", &certs().localhost)]));

    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (got, took) = read_until_closed(&mut s);
    let mut r = Reader::new(&got[..]);
    let resp = r.response(false).expect("an HTTP response");
    assert_eq!((resp.status, resp.header("Connection")), (400, Some("close")));
    assert!(resp.body_str().contains("The plain HTTP request was sent to HTTPS port"), "{}", resp.body_str());
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "bytes after the 400: {rest:?}");
    assert!(took < Duration::from_secs(1), "closed after {took:?}");

    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&garbage()).unwrap();
    let (got, took) = read_until_closed(&mut s);
    assert_eq!(got.first(), Some(&0x15), "not an alert record: {got:02x?}");
    assert!(took < Duration::from_secs(1), "closed after {took:?}");
}

fn handshake_counters_say_how_each_handshake_ended() {
    let root = TempDir::new("tls-counters");
    root.write("index.html", "counted\n");
    let keys = TempDir::new("tls-counters-keys");
    let mut args = cert_args(&keys, &[("localhost", &certs().localhost)]);
    args.extend(["--shards", "2", "--status-listen", "127.0.0.1:0"].map(String::from));
    let (server, addr) = start(&root, &args);
    let request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // Three full handshakes that keep no ticket, then one that does and four resumptions.
    let fresh = common::tls::client_without_resumption();
    for _ in 0..3 {
        let mut tls = connect(addr, "localhost", &fresh).unwrap();
        assert_eq!((tls.conn().handshake_kind(), tls.get(request).status), (Some(HandshakeKind::Full), 200));
    }
    let keeping = client();
    for i in 0..5 {
        let mut tls = connect(addr, "localhost", &keeping).unwrap();
        let want = if i == 0 { HandshakeKind::Full } else { HandshakeKind::Resumed };
        assert_eq!((tls.conn().handshake_kind(), tls.get(request).status), (Some(want), 200));
    }
    // Plain HTTP, garbage, only h2, a client that does not trust the certificate, and
    // one that closes without a word.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.write_all(request.as_bytes()).unwrap();
    assert!(read_until_closed(&mut plain).0.starts_with(b"HTTP/1.1 400 "));
    let mut junk = TcpStream::connect(addr).unwrap();
    junk.write_all(&garbage()).unwrap();
    assert_eq!(read_until_closed(&mut junk).0.first(), Some(&0x15));
    let h2 = std::sync::Arc::new(client_with(&[b"h2"], TLS_BOTH));
    assert!(connect(addr, "localhost", &h2).is_err());
    let untrusting = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    );
    let e = connect(addr, "localhost", &untrusting).err().expect("a client trusting no CA accepted the certificate");
    assert!(matches!(common::tls::tls_error(&e), Some(rustls::Error::InvalidCertificate(_))), "{e}");
    drop(TcpStream::connect(addr).unwrap());

    let want = [("full", 4), ("resumed", 4), ("plain_http", 1), ("protocol", 1)];
    let want: Vec<(&str, u64)> =
        [&want[..], &[("incompatible", 1), ("alert", 1), ("closed", 1), ("other", 0)]].concat();
    let status = server.status_addr();
    let mut m = metrics(status);
    within(Duration::from_secs(10), || {
        m = metrics(status);
        m.handshakes() == want && m.value("c10k_server_tls_connections_open", &[]) == 0.0
    });
    assert_eq!(m.handshakes(), want, "{}", m.text);
    assert_eq!(m.value("c10k_server_tls_connections_open", &[]), 0.0, "{}", m.text);
    for (result, n) in &want {
        let shards: f64 =
            ["0", "1"].iter().map(|s| m.value("c10k_tls_handshakes_total", &[("shard", s), ("result", result)])).sum();
        assert_eq!(shards as u64, *n, "{result}: the shards add up to the total");
    }
}

/// The IANA name of the suite `conn` negotiated, as OpenSSL and nginx log it.
fn iana_suite(conn: &rustls::ClientConnection) -> String {
    let suite = conn.negotiated_cipher_suite().expect("a suite").suite();
    suite.as_str().expect("a known suite").replacen("TLS13_", "TLS_", 1)
}

fn json_access_log_names_the_protocol_and_cipher() {
    let root = TempDir::new("tls-log");
    root.write("index.html", "logged\n");
    let keys = TempDir::new("tls-log-keys");
    let path = keys.path().join("access.json");
    let mut args = cert_args(&keys, &[("localhost", &certs().localhost)]);
    args.extend(
        ["--listen", "127.0.0.1:0", "--access-log", path.to_str().unwrap(), "--access-log-format", "json"]
            .map(String::from),
    );
    let (server, addr) = start(&root, &args);
    let request = |agent: &str| format!("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\n\r\n");
    let mut suites = Vec::new();
    let tls12 = std::sync::Arc::new(client_with(&[b"http/1.1"], &[&rustls::version::TLS12]));
    for (agent, config, version) in
        [("tls13", client(), rustls::ProtocolVersion::TLSv1_3), ("tls12", tls12, rustls::ProtocolVersion::TLSv1_2)]
    {
        let mut tls = connect(addr, "localhost", &config).unwrap();
        assert_eq!(tls.conn().protocol_version(), Some(version));
        assert_eq!(tls.get(&request(agent)).status, 200);
        suites.push(iana_suite(tls.conn()));
    }
    assert_eq!(server.get(&request("plain")).status, 200);

    let mut lines = Vec::new();
    within(Duration::from_secs(10), || {
        lines = std::fs::read_to_string(&path).unwrap_or_default().lines().map(String::from).collect();
        lines.len() >= 3
    });
    let parsed: Vec<serde_json::Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"))).collect();
    assert_eq!(parsed.len(), 3, "{lines:#?}");
    let line = |agent: &str| parsed.iter().find(|l| l["user_agent"] == agent).unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!((&line("tls13")["tls"], &line("tls13")["cipher"]), (&"TLSv1.3".into(), &suites[0].as_str().into()));
    assert_eq!((&line("tls12")["tls"], &line("tls12")["cipher"]), (&"TLSv1.2".into(), &suites[1].as_str().into()));
    let plain = line("plain").as_object().unwrap();
    assert!(!plain.contains_key("tls") && !plain.contains_key("cipher"), "a plain request's line: {plain:?}");
    assert!(lines.iter().all(|l| l.ends_with('}')));
}

/// The first line, in the banner or printed within 5 s, whose log text satisfies `want`.
fn start_line(server: &Server, want: impl Fn(&str) -> bool) -> String {
    match server.banner.iter().map(|l| common::text(l)).find(|t| want(t)) {
        Some(text) => text,
        None => server.wait_line(Duration::from_secs(5), |l| want(&l.text)).text,
    }
}

fn certificate_start_lines_warn_of_expiry_and_every_key_format_serves() {
    let c = certs();
    let root = TempDir::new("tls-formats");
    root.write("index.html", "formats\n");
    let keys = TempDir::new("tls-formats-keys");
    // RSA with a PKCS#1 key (the default), ECDSA with SEC1 and with PKCS#8 keys.
    let pairs = [("rsa", &c.rsa), ("a", &c.a_test), ("b", &c.b_wild), ("soon", &c.expiring)];
    let (server, addr) = start(&root, &cert_args(&keys, &pairs));
    let file = |name: &str| keys.path().join(format!("{name}.crt")).display().to_string();
    for (name, _) in pairs {
        let line = start_line(&server, |t| t.starts_with(&format!("certificate {}", file(name))));
        assert_eq!(line.starts_with(&format!("certificate {} (default): ", file(name))), name == "rsa", "{line}");
        assert!(line.contains(", expires "), "{line}");
    }
    let line = |name: &str| start_line(&server, |t| t.starts_with(&format!("certificate {}", file(name))));
    assert!(line("b").contains(", names *.b.test, "), "{}", line("b"));
    assert!(line("rsa").contains(", names localhost, "), "{}", line("rsa"));
    let warning = start_line(&server, |t| t.contains(&file("soon")) && t.contains("expires in"));
    assert!(warning.contains("expires in 2 days") || warning.contains("expires in 3 days"), "{warning}");
    // Only it warns: the others are good for 30 days.
    let warnings = server.banner.iter().filter(|l| l.contains("expires in") || l.contains("has expired")).count();
    assert!(warnings <= 1, "{:#?}", server.banner);

    for (name, pair, what) in [
        ("localhost", &c.rsa, "RSA, PKCS#1 key"),
        ("a.test", &c.a_test, "ECDSA, SEC1 key"),
        ("x.b.test", &c.b_wild, "ECDSA, PKCS#8 key"),
        ("soon.test", &c.expiring, "expiring in 3 days"),
    ] {
        let mut tls = connect(addr, name, &client()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(tls.peer_cert() == pair.der, "{what}: not its certificate");
        assert_eq!(tls.get("GET / HTTP/1.1\r\nHost: x\r\n\r\n").body, b"formats\n", "{what}");
    }
}
