//! A TLS connection's state, and `Mixed`: plain or TLS per connection.
//!
//! In: what the driver received goes through rustls (`read_tls`, `process_new_packets`) and
//! the plaintext it yields is what the protocol reads. Out: the protocol's queue is
//! encrypted a batch at a time (`BATCH`, four full records: one send's worth) into a
//! record queue of the connection's own, an `Outgoing` like the protocol's, so a driver
//! lends it to the kernel the same way; file ranges are read with `pread` into the shard's
//! buffer first, since the kernel cannot encrypt what `sendfile` sends here. The record
//! queue goes back to the shard's pool once sent: between requests a TLS connection holds
//! rustls' state and its 4 KiB read buffer, no record or file buffer.
//!
//! The handshake needs no deadline of its own: to the core, a connection mid-handshake is a
//! new one whose first request has not begun, which must begin within the request timeout
//! (a silent or trickling client is dropped then, as a plain one would be).

use super::Shared;
use crate::conn::{Offer, Outgoing, Segment};
use crate::stats::{self, Handshake};
use crate::transport::{Inbound, Plain, Transport, Unsendable};
use rustls::ServerConnection;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Plaintext encrypted at a time: four full records.
const BATCH: usize = 64 * 1024;

/// Record queues the shard keeps for reuse at most, and the largest kept.
const POOLED: usize = 64;
const POOLED_CAPACITY: usize = 2 * BATCH;

/// nginx's answer to plain HTTP on a TLS port, word for word but for the server's name.
const PLAIN_HTTP_BODY: &str = "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port</center>\r\n</body>\r\n</html>\r\n";

/// A connection's transport on a shard with TLS listeners: plain (`None`) or TLS. A
/// pointer, so a connection costs 8 bytes more in its slot, and a plain one nothing else.
#[derive(Default)]
pub struct Mixed(Option<Box<TlsConn>>);

struct TlsConn {
    session: ServerConnection,
    /// Records to send (handshake, alerts, encrypted output), lent while a send is in
    /// flight; `None` when all have gone.
    records: Option<Box<Outgoing>>,
    /// Bytes of the protocol's output the records carry.
    carried: usize,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Nothing received yet.
    New,
    Handshaking,
    Open,
    /// Our close_notify is queued: nothing more is encrypted.
    Notified,
    /// A fatal error: its alert (or the plain-HTTP answer) goes out, then the connection
    /// closes.
    Failed,
}

impl Transport for Mixed {
    type Shared = Shared;

    fn open(shared: &mut Shared, listener: usize) -> Option<Mixed> {
        if shared.tls_listeners.get(listener) != Some(&true) {
            return Some(Mixed(None));
        }
        let session = ServerConnection::new(Arc::clone(shared.config.as_ref()?)).ok()?;
        if let Some(stats) = shared.stats {
            stats::add(&stats.tls_opened, 1);
        }
        Some(Mixed(Some(Box::new(TlsConn { session, records: None, carried: 0, state: State::New }))))
    }

    fn inbound<'a>(&mut self, received: &'a [u8], shared: &'a mut Shared) -> Inbound<'a> {
        match self.0.as_deref_mut() {
            None => Inbound::Data(received),
            Some(tls) => tls.receive(received, shared),
        }
    }

    fn pending(&self) -> bool {
        self.0.as_deref().is_some_and(|tls| tls.records.is_some() || tls.session.wants_write())
    }

    fn prepare(&mut self, out: Option<&mut Outgoing>, shared: &mut Shared) -> Result<(), Unsendable> {
        match self.0.as_deref_mut() {
            None => Ok(()),
            Some(tls) => tls.prepare(out, shared),
        }
    }

    fn queue<'a>(&'a mut self, out: Option<&'a mut Outgoing>) -> Option<&'a mut Outgoing> {
        match self.0.as_deref_mut() {
            None => out,
            Some(tls) => tls.records.as_deref_mut(),
        }
    }

    fn sent(&mut self, n: usize, out: Option<&mut Outgoing>, shared: &mut Shared) -> usize {
        let Some(tls) = self.0.as_deref_mut() else { return Plain.sent(n, out, &mut ()) };
        let Some(records) = tls.records.as_deref_mut() else { return 0 };
        records.give_back(n);
        if !records.is_empty() {
            return 0;
        }
        recycle(tls.records.take(), shared);
        std::mem::take(&mut tls.carried)
    }

    fn close_notify(&mut self) -> bool {
        match self.0.as_deref_mut() {
            Some(tls) if tls.state == State::Open => {
                tls.session.send_close_notify();
                tls.state = State::Notified;
                true
            }
            _ => false,
        }
    }

    fn finish(self, shared: &mut Shared) {
        let Some(mut tls) = self.0 else { return };
        if let Some(stats) = shared.stats {
            stats::add(&stats.tls_closed, 1);
            if matches!(tls.state, State::New | State::Handshaking) {
                stats.handshake(Handshake::Closed);
            }
        }
        // Lent records (a shard stopping with sends in flight) are leaked by their drop,
        // never freed under the kernel.
        if tls.records.as_deref().is_some_and(|r| !r.is_lent()) {
            recycle(tls.records.take(), shared);
        }
    }

    fn server_name(&self) -> Option<&str> {
        self.0.as_deref()?.session.server_name()
    }

    fn describe(&self) -> Option<(&'static str, &'static str)> {
        let tls = self.0.as_deref()?;
        let version = match tls.session.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            other => other.as_str()?,
        };
        // The IANA name, as OpenSSL's and nginx's logs give TLS 1.3's: rustls says TLS13_….
        let suite = match tls.session.negotiated_cipher_suite()?.suite() {
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
            other => other.as_str()?,
        };
        Some((version, suite))
    }
}

fn recycle(records: Option<Box<Outgoing>>, shared: &mut Shared) {
    if let Some(mut records) = records
        && records.clear() <= POOLED_CAPACITY
        && shared.pool.len() < POOLED
    {
        shared.pool.push(records);
    }
}

/// Why a handshake failed, for `/metrics`.
fn outcome(e: &rustls::Error) -> Handshake {
    use rustls::Error as E;
    match e {
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::DecryptError
        | E::PeerMisbehaved(_)
        | E::PeerSentOversizedRecord => Handshake::Protocol,
        E::PeerIncompatible(_) | E::NoApplicationProtocol => Handshake::Incompatible,
        E::AlertReceived(_) => Handshake::Alert,
        _ => Handshake::Other,
    }
}

/// Hand `data` to rustls to encrypt and move the records it made into `records`; how much
/// of `data` it took.
fn encrypt(session: &mut ServerConnection, data: &[u8], records: &mut Vec<u8>) -> usize {
    let n = session.writer().write(data).unwrap_or(0);
    flush(session, records);
    n
}

fn flush(session: &mut ServerConnection, records: &mut Vec<u8>) {
    while session.wants_write() {
        if session.write_tls(records).is_err() {
            break;
        }
    }
}

impl TlsConn {
    fn fail(&mut self, shared: &Shared, why: Handshake) {
        if matches!(self.state, State::New | State::Handshaking)
            && let Some(stats) = shared.stats
        {
            stats.handshake(why);
        }
        self.state = State::Failed;
    }

    fn receive<'a>(&mut self, mut received: &[u8], shared: &'a mut Shared) -> Inbound<'a> {
        shared.plaintext.clear();
        if self.state == State::Failed {
            return Inbound::Data(&shared.plaintext);
        }
        if self.state == State::New {
            // A TLS record starts with its type (20 to 24); a request line with a method.
            if received.first().is_some_and(u8::is_ascii_uppercase) {
                self.fail(shared, Handshake::PlainHttp);
                let bytes = &mut shared.records.bytes;
                let _ = write!(
                    bytes,
                    "HTTP/1.1 400 Bad Request\r\nServer: c10k-server\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_HTTP_BODY}",
                    PLAIN_HTTP_BODY.len()
                );
                let mut records = shared.pool.pop().unwrap_or_default();
                records.fill_from(&mut shared.records);
                self.records = Some(records);
                return Inbound::Failed;
            }
            self.state = State::Handshaking;
        }
        let mut closed = false;
        while !received.is_empty() {
            let read = self.session.read_tls(&mut received);
            let processed = match read {
                Ok(_) => self.session.process_new_packets().map_err(|e| outcome(&e)),
                Err(_) => Err(Handshake::Protocol),
            };
            match processed {
                Ok(state) => {
                    let n = state.plaintext_bytes_to_read();
                    if n > 0 {
                        let at = shared.plaintext.len();
                        shared.plaintext.resize(at + n, 0);
                        let got = self.session.reader().read(&mut shared.plaintext[at..]).unwrap_or(0);
                        shared.plaintext.truncate(at + got);
                    }
                    closed |= state.peer_has_closed();
                }
                Err(why) => {
                    self.fail(shared, why);
                    return Inbound::Failed;
                }
            }
        }
        if self.state == State::Handshaking && !self.session.is_handshaking() {
            self.state = State::Open;
            if let Some(stats) = shared.stats {
                let resumed = self.session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                stats.handshake(if resumed { Handshake::Resumed } else { Handshake::Full });
            }
        }
        if closed && shared.plaintext.is_empty() {
            return Inbound::Closed;
        }
        Inbound::Data(&shared.plaintext)
    }

    fn prepare(&mut self, out: Option<&mut Outgoing>, shared: &mut Shared) -> Result<(), Unsendable> {
        if self.records.is_some() {
            // The records in flight go first.
            return Ok(());
        }
        let mut carried = 0;
        if let Some(out) = out {
            match self.state {
                State::Open => carried = self.encrypt(out, shared)?,
                // Nothing can be encrypted (failed, closing, or no handshake yet): what the
                // protocol queued is dropped.
                _ if !out.is_lent() => {
                    out.clear();
                }
                _ => {}
            }
        }
        flush(&mut self.session, &mut shared.records.bytes);
        if !shared.records.bytes.is_empty() {
            let mut records = shared.pool.pop().unwrap_or_default();
            records.fill_from(&mut shared.records);
            self.records = Some(records);
            self.carried = carried;
        }
        Ok(())
    }

    /// Encrypt up to `BATCH` bytes of `out` into the shard's record buffer; how many.
    /// `Err`: a file range could not be read (it shrank under its Content-Length).
    fn encrypt(&mut self, out: &mut Outgoing, shared: &mut Shared) -> Result<usize, Unsendable> {
        let mut carried = 0;
        while carried < BATCH {
            let Some(offer) = Offer::new(out) else { break };
            let room = BATCH - carried;
            let n = match offer.segment() {
                Segment::Bytes(bytes) => {
                    encrypt(&mut self.session, &bytes[..bytes.len().min(room)], &mut shared.records.bytes)
                }
                Segment::File(range) => {
                    let len = room.min(usize::try_from(range.len).unwrap_or(usize::MAX));
                    if shared.file.len() < len {
                        shared.file.resize(BATCH, 0);
                    }
                    let got = match range.file.read_at(&mut shared.file[..len], range.offset) {
                        Ok(0) | Err(_) => return Err(Unsendable),
                        Ok(got) => got,
                    };
                    encrypt(&mut self.session, &shared.file[..got], &mut shared.records.bytes)
                }
            };
            if n == 0 {
                break;
            }
            out.give_back(n);
            carried += n;
        }
        Ok(carried)
    }
}
