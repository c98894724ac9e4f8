//! TLS helpers for the integration tests: certificates made with the `openssl` CLI once per
//! test process (no key is committed), rustls clients that speak HTTP/1.1 through the
//! harness's `Reader`, the server's HTTPS address, `curl`, and the handshake counters.

use super::{Metrics, Reader, Response, Server, TempDir};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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

/// TLS 1.3 and 1.2.
pub const TLS_BOTH: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The test CA, as the one root of a store.
fn ca_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(&certs().ca).unwrap()).unwrap();
    roots
}

/// A client configuration trusting the test CA, offering `alpn` and `versions`.
pub fn client_with(alpn: &[&[u8]], versions: &[&'static rustls::SupportedProtocolVersion]) -> ClientConfig {
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(ca_roots())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// TLS 1.3 and 1.2, ALPN `http/1.1`, trusting the test CA; it keeps session tickets.
pub fn client() -> Arc<ClientConfig> {
    Arc::new(client_with(&[b"http/1.1"], TLS_BOTH))
}

/// `client()` that never resumes: each handshake is a full one.
pub fn client_without_resumption() -> Arc<ClientConfig> {
    let mut config = client_with(&[b"http/1.1"], TLS_BOTH);
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// `client()` that checks the chain up to the test CA but not the name, so that a test
/// can see which certificate a name it is not for gets.
pub fn client_any_name() -> Arc<ClientConfig> {
    let mut config = client_with(&[b"http/1.1"], TLS_BOTH);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(ca_roots()), provider).build().unwrap();
    config.dangerous().set_certificate_verifier(Arc::new(Lenient { chain: Some(chain), algorithms }));
    Arc::new(config)
}

/// TLS 1.3 and 1.2, no ALPN, that takes any certificate (a self-signed one too), with the
/// default session cache, so a second connection resumes.
pub fn client_any_certificate() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(Lenient { chain: None, algorithms: provider.signature_verification_algorithms });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}

/// Checks that the server holds the key of its certificate (the handshake's signatures),
/// never the name the certificate is for; with `chain`, that the certificate chains up to
/// a root of it, without, nothing more: any certificate will do.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS connection, handshake done, read through the harness's `Reader`.
pub struct Tls {
    pub r: Reader<StreamOwned<ClientConnection, TcpStream>>,
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
    Ok(Tls { r: Reader::new(StreamOwned::new(conn, sock)) })
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
        self.r.response(head_only)
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

impl Metrics {
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
    super::signal(server.pid(), nix::sys::signal::Signal::SIGHUP);
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
