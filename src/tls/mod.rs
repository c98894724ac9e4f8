//! TLS (rustls 0.23 over aws-lc-rs), as a transport: a TLS listener's connections decrypt
//! what the driver received and encrypt what the protocol queued, in the core, with no I/O
//! of their own but `pread` of file ranges. `Mixed` is the transport of a shard with a TLS
//! listener: plain or TLS per connection, as its listener says.
//!
//! What is offered: TLS 1.3 and 1.2, forward-secret AEAD suites only (aws-lc-rs' defaults:
//! AES-GCM and ChaCha20-Poly1305 with ECDHE), ALPN `http/1.1`, no renegotiation (rustls has
//! none), no 0-RTT (replayable), one session ticket per handshake and no session-ID cache
//! (a cache would be per process; tickets work across shards, `tickets`).
//!
//! Certificates (`certs`) are loaded by every process from the same files (the master
//! first, to refuse a start or a reload that would not load). Encryption is in user space:
//! the kernels this runs on have no kernel TLS (`CONFIG_TLS`); a connection switched to it
//! after its handshake would become plain to the core again (sendfile included), which is
//! why the choice of transport is per connection.

#![forbid(unsafe_code)]

pub mod certs;
mod session;
pub mod tickets;

use crate::conn::{Outbox, Outgoing};
use crate::stats::ShardStats;
pub use certs::{CertSources, Certificates};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
pub use session::Mixed;
use std::sync::Arc;
pub use tickets::TicketKeys;

/// The crypto provider: aws-lc-rs, which measured 12-15 % less CPU a handshake and 11 %
/// less a megabyte encrypted than rustls' ring provider (docs/measurements.md), with its
/// suites in the server's order of preference (`ignore_client_order`): AES-128-GCM
/// first (the cheapest with AES instructions, and as strong as needed), ChaCha20 after the
/// AES ones; ECDSA before RSA for TLS 1.2.
pub(crate) fn provider() -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::cipher_suite as suite;
    CryptoProvider {
        cipher_suites: vec![
            suite::TLS13_AES_128_GCM_SHA256,
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_CHACHA20_POLY1305_SHA256,
            suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::aws_lc_rs::default_provider()
    }
}

/// What a shard's TLS connections share: the configuration (certificates, ticket keys,
/// protocol choices), which listeners are TLS, buffers and counters.
#[derive(Default)]
pub struct Shared {
    /// By the shard's listener number: whether it is TLS.
    tls_listeners: Vec<bool>,
    config: Option<Arc<ServerConfig>>,
    stats: Option<&'static ShardStats>,
    /// What the connection being read decrypted.
    plaintext: Vec<u8>,
    /// File ranges read to be encrypted.
    file: Vec<u8>,
    /// Records being written, moved into a connection's queue when whole.
    records: Outbox,
    /// Record queues of connections that have nothing in flight, for reuse: a connection
    /// between requests holds none.
    #[allow(clippy::vec_box)]
    pool: Vec<Box<Outgoing>>,
}

impl Shared {
    /// For a shard whose listener number `i` is TLS when `tls_listeners[i]`, serving
    /// `certs`, sealing tickets with `keys`, counting in `stats`.
    pub fn new(
        certs: Certificates,
        keys: TicketKeys,
        tls_listeners: Vec<bool>,
        stats: &'static ShardStats,
    ) -> Result<Shared, String> {
        let config = server_config(&certs, keys)?;
        Ok(Shared { tls_listeners, config: Some(config), stats: Some(stats), ..Shared::default() })
    }
}

fn server_config(certs: &Certificates, keys: TicketKeys) -> Result<Arc<ServerConfig>, String> {
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(certs.resolver());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // The server's order, not the client's: every suite offered is strong, and a fixed
    // order is what audits (testssl.sh) ask for.
    config.ignore_client_order = true;
    config.ticketer = Arc::new(tickets::Ticketer::new(keys));
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    // One ticket a handshake: a client uses one per connection, and each costs a seal.
    config.send_tls13_tickets = 1;
    config.max_early_data_size = 0;
    Ok(Arc::new(config))
}
