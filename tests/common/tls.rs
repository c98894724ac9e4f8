//! TLS helpers for the integration tests: certificates made with the `openssl` CLI once per
//! test process (no key is committed), a rustls client that speaks HTTP/1.1 through the
//! harness's `Response`, the server's HTTPS address, `curl`, and `/metrics` read back.
//! Included by each TLS test file as `#[path = "common/tls.rs"] mod tls_support;`.
#![allow(dead_code)]

use crate::common::{Response, Server, TempDir};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A certificate (PEM, and its DER) and its private key (PEM).
pub struct Pair {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub der: Vec<u8>,
}

impl Pair {
    /// Write `NAME.crt` and `NAME.key` into `dir`; their paths.
    pub fn write(&self, dir: &TempDir, name: &str) -> (PathBuf, PathBuf) {
        (dir.write(&format!("{name}.crt"), &self.cert), dir.write(&format!("{name}.key"), &self.key))
    }
}

/// The test certificates, all signed by `ca` (ECDSA P-256) but `other_key`, which is a key
/// of none of them.
pub struct Certs {
    /// The CA certificate, PEM.
    pub ca: Vec<u8>,
    /// `localhost` and `127.0.0.1`; ECDSA P-256, PKCS#8 key (`BEGIN PRIVATE KEY`).
    pub localhost: Pair,
    /// `a.test`; ECDSA P-256, SEC1 key (`BEGIN EC PRIVATE KEY`).
    pub a_test: Pair,
    /// `*.b.test`; ECDSA P-256, PKCS#8 key.
    pub b_wild: Pair,
    /// `localhost` and `127.0.0.1` again, another certificate: RSA 2048, PKCS#1 key
    /// (`BEGIN RSA PRIVATE KEY`).
    pub rsa: Pair,
    /// `soon.test`, valid for 3 days.
    pub expiring: Pair,
    /// A PKCS#8 key that matches no certificate.
    pub other_key: Vec<u8>,
}

/// The certificates, made on first use (some 10 `openssl` runs) and kept for the process.
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(generate)
}

/// `openssl ARGS` in `dir` (`args` split at spaces); panics with its stderr if it fails.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl").current_dir(dir).args(args.split(' ')).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

fn generate() -> Certs {
    let dir = TempDir::new("tls-certs");
    let d = dir.path();
    let p256 = |key: &str| openssl(d, &format!("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {key}"));
    p256("ca.key");
    dir.write(
        "ca.cnf",
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = c10k test CA\n[ca]\n\
         basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n",
    );
    openssl(d, "req -x509 -new -key ca.key -config ca.cnf -extensions ca -days 30 -out ca.crt");
    let read = |file: &str| std::fs::read(d.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut serial = 1000;
    // A leaf `NAME.crt` for the key `NAME.key`, signed by the CA.
    let mut leaf = |name: &str, cn: &str, san: &str, days: u32| -> Pair {
        serial += 1;
        dir.write(&format!("{name}.cnf"), format!("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {cn}\n"));
        dir.write(
            &format!("{name}.ext"),
            format!(
                "subjectAltName = {san}\nbasicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\n\
                 subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
            ),
        );
        openssl(d, &format!("req -new -key {name}.key -config {name}.cnf -out {name}.csr"));
        openssl(
            d,
            &format!(
                "x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -set_serial {serial} -days {days} -sha256 \
                 -extfile {name}.ext -out {name}.crt"
            ),
        );
        let cert = read(&format!("{name}.crt"));
        let der = CertificateDer::from_pem_slice(&cert).expect("a PEM certificate").as_ref().to_vec();
        Pair { cert, key: read(&format!("{name}.key")), der }
    };
    p256("localhost.key");
    let localhost = leaf("localhost", "localhost", "DNS:localhost,IP:127.0.0.1", 30);
    openssl(d, "ecparam -genkey -noout -name prime256v1 -out a.key");
    let a_test = leaf("a", "a.test", "DNS:a.test", 30);
    p256("b.key");
    let b_wild = leaf("b", "wildcard b.test", "DNS:*.b.test", 30);
    openssl(d, "genrsa -traditional -out rsa.key 2048");
    let rsa = leaf("rsa", "localhost rsa", "DNS:localhost,IP:127.0.0.1", 30);
    p256("soon.key");
    let expiring = leaf("soon", "soon.test", "DNS:soon.test", 3);
    p256("other.key");
    let certs = Certs { ca: read("ca.crt"), localhost, a_test, b_wild, rsa, expiring, other_key: read("other.key") };
    // The key formats are what the tests say they are.
    for (pair, header) in [
        (&certs.localhost, "-----BEGIN PRIVATE KEY-----"),
        (&certs.a_test, "-----BEGIN EC PRIVATE KEY-----"),
        (&certs.rsa, "-----BEGIN RSA PRIVATE KEY-----"),
    ] {
        assert!(String::from_utf8_lossy(&pair.key).starts_with(header), "{header}");
    }
    certs
}

/// `--tls-listen 127.0.0.1:0 --tls-cert C --tls-key K` for each of `pairs` (the first the
/// default), written into `dir` as `NAME.crt`/`NAME.key`.
pub fn cert_args(dir: &TempDir, pairs: &[(&str, &Pair)]) -> Vec<String> {
    let mut args: Vec<String> = vec!["--tls-listen".into(), "127.0.0.1:0".into()];
    for (name, pair) in pairs {
        let (cert, key) = pair.write(dir, name);
        args.extend(["--tls-cert".into(), cert.display().to_string(), "--tls-key".into(), key.display().to_string()]);
    }
    args
}

/// `Server::start` with `args` (from `cert_args`, and more); the server and its HTTPS address.
pub fn start(root: &TempDir, args: &[String]) -> (Server, SocketAddr) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(root.path(), &args);
    let addr = tls_addr(&server);
    (server, addr)
}

/// The first HTTPS listener's address (the harness reads the master's `listening on
/// https://ADDR (TLS…)` lines).
pub fn tls_addr(server: &Server) -> SocketAddr {
    *server.tls_addrs.first().unwrap_or_else(|| panic!("no `listening on https://` line: {:#?}", server.banner))
}

/// A client configuration trusting the test CA, offering `alpn` and `versions`.
pub fn client_with(alpn: &[&[u8]], versions: &[&'static rustls::SupportedProtocolVersion]) -> ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(&certs().ca).unwrap()).unwrap();
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// TLS 1.3 and 1.2, ALPN `http/1.1`, trusting the test CA; it keeps session tickets.
pub fn client() -> Arc<ClientConfig> {
    Arc::new(client_with(&[b"http/1.1"], &[&rustls::version::TLS13, &rustls::version::TLS12]))
}

/// `client()` that never resumes: each handshake is a full one.
pub fn client_without_resumption() -> Arc<ClientConfig> {
    let mut config = client_with(&[b"http/1.1"], &[&rustls::version::TLS13, &rustls::version::TLS12]);
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// `client()` that checks the chain up to the test CA but not the name, so that a test
/// can see which certificate a name it is not for gets.
pub fn client_any_name() -> Arc<ClientConfig> {
    let mut config = client_with(&[b"http/1.1"], &[&rustls::version::TLS13, &rustls::version::TLS12]);
    let roots = {
        let mut r = rustls::RootCertStore::empty();
        r.add(CertificateDer::from_pem_slice(&certs().ca).unwrap()).unwrap();
        Arc::new(r)
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(roots, provider).build().unwrap();
    config.dangerous().set_certificate_verifier(Arc::new(AnyName(inner)));
    Arc::new(config)
}

#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A TLS connection, handshake done, read through a buffer.
pub struct Tls {
    pub r: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

/// The rustls error behind an I/O error of a handshake or read, if there is one.
pub fn tls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Connect to `addr` asking for `name` (a DNS name sends SNI, an IP address none) and
/// complete the handshake.
pub fn connect(addr: SocketAddr, name: &str, config: &Arc<ClientConfig>) -> std::io::Result<Tls> {
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    sock.set_nodelay(true)?;
    handshake(sock, name, config)
}

/// Complete a handshake on `sock`, connected already.
pub fn handshake(mut sock: TcpStream, name: &str, config: &Arc<ClientConfig>) -> std::io::Result<Tls> {
    let server_name = ServerName::try_from(name.to_string()).expect("a DNS name or an IP address");
    let mut conn = ClientConnection::new(Arc::clone(config), server_name).map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(Tls { r: BufReader::new(StreamOwned::new(conn, sock)) })
}

impl Tls {
    pub fn conn(&self) -> &ClientConnection {
        &self.r.get_ref().conn
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.r.get_ref().sock
    }

    /// The certificate the server presented (its leaf, DER).
    pub fn peer_cert(&self) -> Vec<u8> {
        self.conn().peer_certificates().expect("a certificate")[0].as_ref().to_vec()
    }

    pub fn send(&mut self, raw: &[u8]) {
        let s = self.r.get_mut();
        s.write_all(raw).expect("send over TLS");
        s.flush().expect("send over TLS");
    }

    /// The next response, or `None` if the connection ended before a status line.
    pub fn response(&mut self, head_only: bool) -> Option<Response> {
        read_response(&mut self.r, head_only)
    }

    /// `raw` sent, its response read.
    #[track_caller]
    pub fn get(&mut self, raw: &str) -> Response {
        self.send(raw.as_bytes());
        self.response(raw.starts_with("HEAD ")).unwrap_or_else(|| panic!("no response to {raw:?}"))
    }

    /// Read until the server ends the connection (close_notify, FIN or reset, within
    /// `limit`); what arrived meanwhile, and how it ended.
    pub fn read_to_end(&mut self, limit: Duration) -> (Vec<u8>, std::io::Result<()>) {
        self.tcp().set_read_timeout(Some(limit)).unwrap();
        let mut got = Vec::new();
        let end = self.r.read_to_end(&mut got).map(drop);
        (got, end)
    }
}

/// A response framed as the harness's `Reader` frames it (Content-Length; none for HEAD,
/// 204 and 304), from any buffered stream.
pub fn read_response(r: &mut impl BufRead, head_only: bool) -> Option<Response> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) | Err(_) => return None,
        Ok(_) => {}
    }
    assert!(line.ends_with("\r\n"), "status line not CRLF-terminated: {line:?}");
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap().to_string();
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("header line");
        assert!(line.ends_with("\r\n"), "header line not CRLF-terminated: {line:?}");
        let l = line.trim_end_matches("\r\n");
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(": ").expect("name: value");
        headers.push((n.to_string(), v.to_string()));
    }
    let len = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.parse().unwrap());
    let no_body = head_only || status == 204 || status == 304;
    let mut body = vec![0; if no_body { 0 } else { len.expect("Content-Length") }];
    r.read_exact(&mut body).expect("body");
    Some(Response { status, version, headers, body })
}

/// The ClientHello a client would send to `name`, as bytes on the wire.
pub fn client_hello(name: &str) -> Vec<u8> {
    let mut conn = ClientConnection::new(client(), ServerName::try_from(name.to_string()).unwrap()).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    hello
}

/// `curl -sS --cacert CA --resolve localhost:PORT:127.0.0.1 ARGS https://localhost:PORT/PATH`,
/// with the CA written into `dir`; its output.
pub fn curl(dir: &TempDir, addr: SocketAddr, path: &str, args: &[&str]) -> std::process::Output {
    let ca = dir.write("curl-ca.pem", &certs().ca);
    let port = addr.port();
    Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&ca)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(args)
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("run curl")
}

/// `/metrics` from the status listener at `status`, parsed by a Prometheus text parser.
pub struct Metrics {
    pub text: String,
    scrape: prometheus_parse::Scrape,
}

pub fn metrics(status: SocketAddr) -> Metrics {
    let mut s = TcpStream::connect(status).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (_, text) = raw.split_once("\r\n\r\n").expect("a response");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
    Metrics { text: text.to_string(), scrape }
}

impl Metrics {
    /// The one sample of `name` with `labels` (among others).
    #[track_caller]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}\n{}", self.text);
        found[0]
    }

    /// `c10k_server_tls_handshakes_total{result=R}` for each result, in `RESULTS` order.
    pub fn handshakes(&self) -> Vec<(&'static str, u64)> {
        RESULTS.iter().map(|&r| (r, self.value("c10k_server_tls_handshakes_total", &[("result", r)]) as u64)).collect()
    }
}

/// The outcomes `c10k_tls_handshakes_total` counts.
pub const RESULTS: [&str; 8] =
    ["full", "resumed", "plain_http", "protocol", "incompatible", "alert", "closed", "other"];

/// SIGHUP to the master; returns once the new generation serves and every shard of the old
/// one (pids `old`) has said it accepts no more: from then on a new connection is the new
/// generation's. The new generation's pids.
pub fn reload(server: &Server, old: &[u32]) -> Vec<u32> {
    crate::common::signal(server.pid(), nix::sys::signal::Signal::SIGHUP);
    let (mut new, mut draining) = (None, 0);
    while new.is_none() || draining < old.len() {
        let line = server.wait_line(Duration::from_secs(10), |l| {
            l.text.starts_with("reload: generation ") && l.text.contains(" serving (pids ")
                || old.contains(&l.pid) && l.text.starts_with("draining: accepting no more")
        });
        if old.contains(&line.pid) {
            draining += 1;
        } else {
            let pids = line.text.split("(pids ").nth(1).and_then(|p| p.split(')').next()).unwrap_or_default();
            new = Some(pids.split(", ").map(|p| p.parse().unwrap_or_else(|_| panic!("{line:?}"))).collect());
        }
    }
    new.unwrap()
}

/// Poll `what` every 20 ms for up to `limit`; whether it came true.
pub fn within(limit: Duration, mut what: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !what() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
