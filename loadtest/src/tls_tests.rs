//! The TLS flags, and the TLS client end to end against an in-process rustls server on
//! loopback (keep-alive and pipelining, an idle connection, `--new-conn` with and without
//! resumption, `--cacert` and `--sni`, the groups and suites offered, `--warmup`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use rustls::pki_types::PrivateKeyDer;
use rustls::{CipherSuite, NamedGroup, ServerConfig, ServerConnection, StreamOwned};

use super::*;
use crate::cli::{Config, worker_args};
use crate::client::{self, Gate, Plan};
use crate::run::run_local;
use crate::stats::{ErrorKind, Progress, Stats};

/// A test CA (valid until 2126), and a certificate it signed for `localhost` with its key;
/// made with openssl for these tests only.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBkDCCATWgAwIBAgIUImhayCY7OtyIW5CQp6iYdJliye4wCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRYzEway1sb2FkIHRlc3QgQ0EwIBcNMjYxMjA3MDQ1NTUwWhgP
MjEyNjExMTMwNDU1NTBaMBwxGjAYBgNVBAMMEWMxMGstbG9hZCB0ZXN0IENBMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGI91DJWjBewSWcSpyznXeHi8Auj8EB8+
4JKETYZIu0y7tDtx6gA8n6aFY5iRd9U7DrQiWQePa92GDdc/it3T7qNTMFEwHQYD
VR0OBBYEFDrpJ7h2tDd+xUoZJFlJwaJM3kZ1MB8GA1UdIwQYMBaAFDrpJ7h2tDd+
xUoZJFlJwaJM3kZ1MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIh
AKSkkHyYeGUaSAqFE6VnXVrBqBYXgyEuAb9nBi9JaYvQAiEA119qAebNJXupEbzk
dYegCsIv2ZsMORvUAECih0Q3r24=
-----END CERTIFICATE-----
";
const LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBuzCCAWGgAwIBAgIUaUwEl+oo92RjSoBZzWePnImWrzcwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRYzEway1sb2FkIHRlc3QgQ0EwIBcNMjYxMjA3MDQ1NTUwWhgP
MjEyNjExMTMwNDU1NTBaMBQxEjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABFX7ZKpiZyCcnUYQpjsgA+Nj3WllqCPJp83pV3VUgdA/
SL9WlHp0yWQ30/ubB+F7LgtHL6kprhgeDKIB9F4doSOjgYYwgYMwFAYDVR0RBA0w
C4IJbG9jYWxob3N0MAkGA1UdEwQCMAAwCwYDVR0PBAQDAgeAMBMGA1UdJQQMMAoG
CCsGAQUFBwMBMB0GA1UdDgQWBBS2V6ibVcDAvujFLVKO8PflGlCg0zAfBgNVHSME
GDAWgBQ66Se4drQ3fsVKGSRZScGiTN5GdTAKBggqhkjOPQQDAgNIADBFAiBjPdcK
OMdg9zTuvQPNiHeDtseG3TPUip1Tb3US6oq51QIhAM1Mp6YzadLK2ytcldykdVW3
t780eqCCLi2xtWYcrj7a
-----END CERTIFICATE-----
";
const LEAF_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQ2F/Ijp+JeKg80gn
Hm3jPUAb8SmRLU7h9GoKh1kspp6hRANCAARV+2SqYmcgnJ1GEKY7IAPjY91pZagj
yafN6Vd1VIHQP0i/VpR6dMlkN9P7mwfhey4LRy+pKa4YHgyiAfReHaEj
-----END PRIVATE KEY-----
";

fn config(args: &[&str]) -> Result<Config, String> {
    Config::from_args(Args::parse_from([&["c10k-load"][..], args].concat()))
}

fn error(args: &[&str]) -> String {
    config(args).expect_err("refused")
}

/// A file under the temp directory holding `text`, named for the test and this process.
fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("c10k-load-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn tls_flags_need_tls() {
    const URL: &str = "http://127.0.0.1:9/";
    for flag in [&["--tls-resume"][..], &["--sni", "a.example"], &["--cacert", "ca.pem"], &["--tls-kx", "x25519"]] {
        let e = error(&[&["--url", URL][..], flag].concat());
        assert!(e.starts_with(flag[0]) && e.ends_with("add --tls"), "{e}");
    }
    assert!(config(&["--url", URL]).unwrap().tls.is_none());
    let e = error(&["--url", "https://127.0.0.1:9/x"]);
    assert!(e.contains("write it as http://127.0.0.1:9/x and add --tls"), "{e}");
}

#[test]
fn server_name_defaults_to_the_host_or_localhost() {
    let name = |args: &[&str]| config(args).unwrap().tls.unwrap().server_name.to_str().into_owned();
    assert_eq!(name(&["--url", "http://127.0.0.1:9/", "--tls"]), "localhost");
    assert_eq!(name(&["--url", "http://[::1]:9/", "--tls"]), "localhost");
    assert_eq!(name(&["--url", "http://localhost:9/", "--tls"]), "localhost");
    assert_eq!(name(&["--url", "http://127.0.0.1:9/", "--tls", "--sni", "www.example"]), "www.example");
    let e = error(&["--url", "http://127.0.0.1:9/", "--tls", "--sni", "not a name"]);
    assert!(e.starts_with("--sni not a name: "), "{e}");
}

#[test]
fn cacert_must_be_a_pem_file_of_certificates() {
    let url = ["--url", "http://127.0.0.1:9/", "--tls", "--cacert"];
    let e = error(&[&url[..], &["/nonexistent/ca.pem"]].concat());
    assert!(e.starts_with("--cacert /nonexistent/ca.pem: no such file"), "{e}");
    let key_only = temp_file("key-only.pem", LEAF_KEY_PEM);
    let e = error(&[&url[..], &[key_only.to_str().unwrap()]].concat());
    assert!(e.contains("no CERTIFICATE in it"), "{e}");
    let ca = temp_file("flags-ca.pem", CA_PEM);
    let cfg = config(&[&url[..], &[ca.to_str().unwrap()]].concat()).unwrap();
    assert_eq!(cfg.tls.unwrap().roots.unwrap().len(), 1);
    let _ = std::fs::remove_file(key_only);
    let _ = std::fs::remove_file(ca);
}

#[test]
fn new_conn_is_one_request_per_connection() {
    let e = error(&["--url", "http://127.0.0.1:9/", "--new-conn", "--pipeline", "4"]);
    assert!(e.contains("--new-conn") && e.contains("--pipeline 4"), "{e}");
    assert!(error(&["--url", "http://127.0.0.1:9/", "--new-conn", "--conns", "0", "--idle", "5"]).contains("--conns"));
    assert!(config(&["--url", "http://127.0.0.1:9/", "--new-conn"]).unwrap().new_conn);
}

#[test]
fn workers_get_the_tls_flags() {
    let url = ["--url", "http://127.0.0.1:9/", "--procs", "2", "--conns", "4"];
    let args = worker_args(
        &config(&[&url[..], &["--tls", "--tls-resume", "--sni", "a.example", "--new-conn"]].concat()).unwrap(),
        1,
    );
    for flag in ["--tls", "--tls-resume", "--new-conn"] {
        assert!(args.iter().any(|a| a == flag), "{flag} in {args:?}");
    }
    assert!(args.windows(2).any(|w| w == ["--sni", "a.example"]), "{args:?}");
    let plain = worker_args(&config(&url).unwrap(), 1);
    assert!(!plain.iter().any(|a| a.starts_with("--tls") || a == "--new-conn" || a == "--sni"), "{plain:?}");
}

#[test]
fn tls_kx_takes_a_group_or_rustls_default() {
    const URL: [&str; 3] = ["--url", "http://127.0.0.1:9/", "--tls"];
    let kx = |extra: &[&str]| config(&[&URL[..], extra].concat()).unwrap().tls.unwrap().kx;
    assert_eq!(kx(&[]), Kx::Default);
    for (value, want) in [("default", Kx::Default), ("x25519", Kx::X25519), ("p256", Kx::P256)] {
        assert_eq!(kx(&["--tls-kx", value]), want);
        assert_eq!(want.name(), value);
    }
    let e = Args::try_parse_from(["c10k-load", URL[0], URL[1], "--tls", "--tls-kx", "x448"]).unwrap_err().to_string();
    assert!(e.contains("invalid value 'x448' for '--tls-kx <GROUPS>'") && e.contains("default, x25519, p256"), "{e}");
    let names = |k: Kx| k.groups(aws_lc_rs::default_provider().kx_groups).iter().map(|g| g.name()).collect::<Vec<_>>();
    assert_eq!(names(Kx::X25519), [NamedGroup::X25519]);
    assert_eq!(names(Kx::P256), [NamedGroup::secp256r1]);
    let default = names(Kx::Default);
    assert_eq!(default[0], NamedGroup::X25519MLKEM768, "{default:?}");
    assert!(default.contains(&NamedGroup::X25519) && default.contains(&NamedGroup::secp256r1), "{default:?}");
}

#[test]
fn the_client_offers_rustls_suites_aes_128_first() {
    let default = aws_lc_rs::default_provider().cipher_suites;
    assert_eq!(CLIENT_SUITES.len(), default.len());
    assert!(default.iter().all(|s| CLIENT_SUITES.contains(s)));
    let names: Vec<String> = CLIENT_SUITES.iter().map(|s| format!("{:?}", s.suite())).collect();
    assert_eq!(names[0], "TLS13_AES_128_GCM_SHA256");
    // In each version: every AES-128 suite before every AES-256 one, and those before ChaCha20.
    for tls13 in [true, false] {
        let rank = |n: &String| ["AES_128", "AES_256", "CHACHA20"].iter().position(|b| n.contains(b)).unwrap();
        let ranks: Vec<usize> = names.iter().filter(|n| n.starts_with("TLS13") == tls13).map(rank).collect();
        assert!(ranks.is_sorted() && ranks.len() >= 3, "{names:?}");
    }
}

#[test]
fn every_server_agrees_on_aes_128_and_the_group_asked_for() {
    let (port, seen) = tls_server_noting();
    // The test server follows the client's order (rustls' default, as OpenSSL's).
    let aes128 = Some(CipherSuite::TLS13_AES_128_GCM_SHA256);
    for (kx, group) in
        [("x25519", NamedGroup::X25519), ("p256", NamedGroup::secp256r1), ("default", NamedGroup::X25519MLKEM768)]
    {
        seen.lock().unwrap().clear();
        let st = run_against(port, &["--conns", "2", "--tls-kx", kx]);
        assert_eq!(st.errors_total(), 0, "{kx}: {:?}", st.errors);
        let seen = seen.lock().unwrap().clone();
        assert!(seen.len() == 2 && seen.iter().all(|s| *s == (Some(group), aes128)), "{kx}: {seen:?}");
    }
}

#[test]
fn warmup_opens_every_connection_first_and_counts_only_the_window() {
    let port = tls_server();
    let url = format!("http://127.0.0.1:{port}/");
    let base = ["--url", &url, "--tls", "--expect-bytes", "2", "--duration", "0.4"];
    let run = |extra: &[&str]| {
        let cfg = config(&[&base[..], extra].concat()).unwrap();
        let t0 = Instant::now();
        let st = run_local(&cfg, &Arc::new(AtomicBool::new(false))).unwrap();
        (st, t0.elapsed().as_secs_f64())
    };
    let (st, wall) = run(&["--conns", "3", "--threads", "2", "--warmup", "0.3"]);
    assert_eq!(st.errors_total(), 0, "{:?}", st.errors);
    // Each connection opened once, its handshake (and its one request) before the window.
    assert_eq!((st.connects, st.warmed, st.handshakes), (3, 3, 0));
    assert!(st.uncounted > 3 && st.requests > 10, "{} uncounted, {} requests", st.uncounted, st.requests);
    assert!((0.35..0.7).contains(&st.duration_s) && wall >= 0.7, "{} s measured of {wall} s", st.duration_s);
    // Open loop: only what was meant for the window counts (200/s for 0.4 s), after only the opening.
    let (st, _) = run(&["--conns", "4", "--rate", "200", "--warmup", "0"]);
    assert_eq!(st.errors_total(), 0, "{:?}", st.errors);
    assert_eq!((st.warmed, st.uncounted, st.handshakes), (4, 4, 0));
    assert!((60..=82).contains(&st.requests), "{}", st.requests);
    // A new connection per request: nothing is opened first, the handshakes count in the window.
    let (st, _) = run(&["--conns", "2", "--new-conn", "--warmup", "0.2"]);
    assert_eq!(st.errors_total(), 0, "{:?}", st.errors);
    assert_eq!(st.warmed, 0);
    assert!(st.uncounted > 0 && st.requests > 5, "{} uncounted, {} requests", st.uncounted, st.requests);
    assert!((st.requests..=st.requests + 4).contains(&st.handshakes), "{} for {}", st.handshakes, st.requests);
    assert!(st.connects > st.handshakes, "{} connects, {} handshakes", st.connects, st.handshakes);
}

/// A TLS server on a loopback port answering every request with `ok` (keep-alive), one
/// thread per connection; it lives as long as the test process.
fn tls_server() -> u16 {
    tls_server_noting().0
}

/// What one connection's handshake agreed on.
type Agreed = (Option<NamedGroup>, Option<CipherSuite>);

/// [`tls_server`], noting what each connection agreed on once its handshake completed.
fn tls_server_noting() -> (u16, Arc<Mutex<Vec<Agreed>>>) {
    let certs = CertificateDer::pem_slice_iter(LEAF_PEM.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(LEAF_KEY_PEM.as_bytes()).unwrap();
    let provider = Arc::new(aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Agreed>>> = Arc::default();
    let noted = seen.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let (config, noted) = (config.clone(), noted.clone());
            std::thread::spawn(move || serve(ServerConnection::new(config).unwrap(), tcp, &noted));
        }
    });
    (port, seen)
}

fn serve(session: ServerConnection, tcp: TcpStream, seen: &Mutex<Vec<Agreed>>) {
    let mut stream = StreamOwned::new(session, tcp);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut noted = false;
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        if !noted {
            noted = true;
            let group = stream.conn.negotiated_key_exchange_group().map(|g| g.name());
            let suite = stream.conn.negotiated_cipher_suite().map(|s| s.suite());
            seen.lock().unwrap().push((group, suite));
        }
        got.extend_from_slice(&buf[..n]);
        while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            got.drain(..end + 4);
            if stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").is_err() {
                return;
            }
        }
    }
}

/// One thread's run of `args` (plus the URL of `port` and a short duration) to its end.
fn run_against(port: u16, args: &[&str]) -> Stats {
    let url = format!("http://127.0.0.1:{port}/");
    let cfg =
        config(&[&["--url", &url, "--tls", "--duration", "0.4", "--expect-bytes", "2"][..], args].concat()).unwrap();
    let plan = Plan { conns: cfg.conns, idle: cfg.idle, rate: None, first_slot: 0 };
    let gate = Gate::new().unwrap();
    gate.open();
    client::run(&cfg, plan, Instant::now(), &gate, &AtomicBool::new(false), &Progress::default()).unwrap()
}

#[test]
fn keep_alive_pipelined_and_idle_over_tls() {
    let port = tls_server();
    let ca = temp_file("e2e-ca.pem", CA_PEM);
    let args = ["--conns", "2", "--pipeline", "4", "--idle", "1", "--cacert", ca.to_str().unwrap()];
    let st = run_against(port, &args);
    assert_eq!(st.errors_total(), 0, "{:?}", st.errors);
    assert!(st.requests > 20, "{}", st.requests);
    assert_eq!((st.connects, st.handshakes, st.resumed, st.idle_answered), (3, 3, 0, 1));
    let _ = std::fs::remove_file(ca);
}

#[test]
fn requests_beyond_the_tls_buffer_limit_all_go_out() {
    // 1500 requests of ~60 bytes: more than rustls takes at once (64 KiB).
    let st = run_against(tls_server(), &["--conns", "1", "--pipeline", "1500"]);
    assert_eq!(st.errors_total(), 0, "{:?}", st.errors);
    assert!(st.requests >= 1500, "{}", st.requests);
}

#[test]
fn new_conn_handshakes_resume_only_when_asked() {
    let port = tls_server();
    let st = run_against(port, &["--conns", "1", "--new-conn", "--tls-resume"]);
    assert_eq!(st.errors_total(), 0, "{:?}", st.errors);
    assert!(st.handshakes > 5 && st.handshakes >= st.requests, "{} for {}", st.handshakes, st.requests);
    // Only the first is full: each handshake leaves tickets for the next.
    assert_eq!(st.resumed, st.handshakes - 1);
    let st = run_against(port, &["--conns", "2", "--new-conn"]);
    assert_eq!(st.errors_total(), 0, "{:?}", st.errors);
    assert!(st.handshakes > 5 && st.resumed == 0, "{} handshakes, {} resumed", st.handshakes, st.resumed);
}

#[test]
fn a_certificate_for_another_name_is_a_tls_error() {
    let port = tls_server();
    let ca = temp_file("sni-ca.pem", CA_PEM);
    let st = run_against(port, &["--conns", "1", "--cacert", ca.to_str().unwrap(), "--sni", "other.example"]);
    assert!(st.errors[ErrorKind::Tls as usize] > 0 && st.requests == 0 && st.handshakes == 0, "{:?}", st.errors);
    let _ = std::fs::remove_file(ca);
}
