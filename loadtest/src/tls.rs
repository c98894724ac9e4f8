//! `--tls`: the flags that shape the client's TLS (rustls over aws-lc-rs), validated once,
//! and the configuration each thread builds from them for its connections.
//!
//! One `ClientConfig` per thread, shared by every connection of that thread: with
//! `--tls-resume` its in-memory session store is what lets a reconnection resume (so a
//! ticket is only ever offered by the thread that received it, with no lock between
//! threads); without it, resumption is disabled so every handshake is a full one.
//!
//! What the client offers decides what is compared when servers are: `--tls-kx` picks the
//! key exchange groups (rustls' default puts the post-quantum hybrid X25519MLKEM768 first,
//! which servers on OpenSSL 3.0 cannot do, so they agree on X25519 while a rustls server
//! takes the costlier hybrid), and the cipher suites are offered AES-128-GCM first
//! ([`CLIENT_SUITES`]), so a server that follows the client's order (OpenSSL's default)
//! agrees on the same suite as one that follows its own (rustls', AES-128-GCM first).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::aws_lc_rs::{self, cipher_suite as cs, kx_group};
use rustls::crypto::{SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme, SupportedCipherSuite};

use crate::cli::Args;

/// The validated TLS flags.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// What is sent as SNI and, with `--cacert`, what the certificate must name.
    pub server_name: ServerName<'static>,
    /// `--cacert`'s certificates; `None`: the server's certificate is not verified.
    pub roots: Option<Arc<RootCertStore>>,
    pub resume: bool,
    pub kx: Kx,
}

/// `--tls-kx`: the key exchange groups the client offers (and makes a key share for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Kx {
    /// rustls' groups and order, the post-quantum hybrid first (as browsers offer it).
    #[default]
    Default,
    /// X25519 alone.
    X25519,
    /// P-256 (secp256r1) alone.
    P256,
}

impl Kx {
    /// The flag's value, as it is written.
    pub fn name(self) -> &'static str {
        match self {
            Kx::Default => "default",
            Kx::X25519 => "x25519",
            Kx::P256 => "p256",
        }
    }

    /// The groups offered, in order of preference, given rustls' `default`.
    pub fn groups(self, default: Vec<&'static dyn SupportedKxGroup>) -> Vec<&'static dyn SupportedKxGroup> {
        match self {
            Kx::Default => default,
            Kx::X25519 => vec![kx_group::X25519],
            Kx::P256 => vec![kx_group::SECP256R1],
        }
    }
}

/// The cipher suites the client offers, in its order: rustls' defaults with AES-128-GCM
/// first, then AES-256-GCM, then ChaCha20-Poly1305, in TLS 1.3 and in TLS 1.2 alike.
pub const CLIENT_SUITES: [SupportedCipherSuite; 9] = [
    cs::TLS13_AES_128_GCM_SHA256,
    cs::TLS13_AES_256_GCM_SHA384,
    cs::TLS13_CHACHA20_POLY1305_SHA256,
    cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// What a thread's connections share to start their TLS sessions.
pub struct ThreadTls {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl TlsSettings {
    /// The TLS flags of `args` for a server at `host` (`None` without `--tls`); the error is
    /// one line for the user.
    pub fn from_args(args: &Args, host: &str) -> Result<Option<TlsSettings>, String> {
        if !args.tls {
            let only_with_tls = [
                ("--cacert", args.cacert.is_some()),
                ("--sni", args.sni.is_some()),
                ("--tls-resume", args.tls_resume),
                ("--tls-kx", args.tls_kx.is_some()),
            ];
            return match only_with_tls.iter().find(|(_, given)| *given) {
                Some((flag, _)) => Err(format!("{flag} applies to TLS connections: add --tls")),
                None => Ok(None),
            };
        }
        let name = args.sni.clone().unwrap_or_else(|| default_sni(host));
        let server_name =
            ServerName::try_from(name.clone()).map_err(|_| format!("--sni {name}: not a DNS name or an IP address"))?;
        let roots = args.cacert.as_deref().map(load_roots).transpose()?.map(Arc::new);
        let kx = args.tls_kx.unwrap_or_default();
        Ok(Some(TlsSettings { server_name, roots, resume: args.tls_resume, kx }))
    }

    /// A fresh configuration (with its own session store) for one thread's connections.
    pub fn for_thread(&self) -> Result<ThreadTls, String> {
        let mut provider = aws_lc_rs::default_provider();
        provider.cipher_suites = CLIENT_SUITES.to_vec();
        provider.kx_groups = self.kx.groups(std::mem::take(&mut provider.kx_groups));
        let provider = Arc::new(provider);
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let mut config = match &self.roots {
            Some(roots) => builder.with_root_certificates(roots.clone()).with_no_client_auth(),
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider.signature_verification_algorithms)))
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = if self.resume { Resumption::default() } else { Resumption::disabled() };
        Ok(ThreadTls { config: Arc::new(config), server_name: self.server_name.clone() })
    }
}

/// A certificate names a host, rarely an address: `localhost` is what a test
/// certificate for a loopback server names.
fn default_sni(host: &str) -> String {
    if host.parse::<IpAddr>().is_ok() { "localhost".to_string() } else { host.to_string() }
}

/// Every certificate in the PEM file at `path`, as trust anchors.
fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    if !path.is_file() {
        return Err(format!(
            "--cacert {shown}: no such file; give the PEM file of the CA that signed the server's certificate"
        ));
    }
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--cacert {shown}: cannot read it as PEM: {e}"))?;
    let mut roots = RootCertStore::empty();
    let (added, unusable) = roots.add_parsable_certificates(certs);
    match (added, unusable) {
        (0, 0) => Err(format!("--cacert {shown}: no CERTIFICATE in it (a PEM file of CA certificates is expected)")),
        (0, _) => Err(format!("--cacert {shown}: none of its {unusable} certificates can be a trust anchor")),
        _ => Ok(roots),
    }
}

/// Accepts whatever certificate the server shows, but still checks that the server holds its
/// key (the handshake's signatures), so a run without `--cacert` does the same work as one
/// with it, less the chain.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
