//! A connection's bytes with `--tls`: rustls as a sans-I/O state machine between the socket
//! and the response reader.
//!
//! The socket is read into the thread's buffer as a plain connection's is (one read per
//! 64 KiB, drained the same way for the edge-triggered epoll), the ciphertext is handed to
//! rustls from there, and the plaintext it yields goes to the response reader without a copy
//! (its `fill_buf`). Requests go from `out` into rustls' writer, which keeps them until the
//! handshake completes, and the records it makes go onto the socket with `write_tls`.
//!
//! The entry points are never inlined: the plain path that branches to them stays as small,
//! and as inlined, as it was before they existed.
//!
//! What a held idle connection keeps: its session's keys and rustls' receive buffer (4 KiB,
//! shrunk to that whenever it is empty); what it sent and received is not kept.

use std::io::{self, BufRead, IoSlice, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use nix::errno::Errno;
use nix::sys::socket::{self, MsgFlags, SockaddrStorage};
use rustls::{ClientConnection, HandshakeKind};

use super::{Conn, Ctx};
use crate::parse::Response;
use crate::stats::{ErrorKind, Stats};

/// Whether this process already said why a TLS session failed: the first reason is what a
/// run's `tls` errors need explained, and the same line a thousand times would bury it.
static FAILURE_SHOWN: AtomicBool = AtomicBool::new(false);

/// The socket as rustls' transport: never blocks, never raises SIGPIPE, and sends a flight
/// of records (the handshake's Finished with the first requests) in one call.
struct Sock<'a>(&'a OwnedFd);

impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(socket::send(self.0.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL)?)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(socket::sendmsg(self.0.as_raw_fd(), bufs, &[], MsgFlags::MSG_NOSIGNAL, None::<&SockaddrStorage>)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Ctx<'_> {
    /// Start the session of `c`, whose TCP connect just completed; false when it cannot be.
    #[inline(never)]
    pub(super) fn tls_begin(&mut self, c: &mut Conn) -> bool {
        let tls = self.tls.as_ref().expect("a --tls run");
        match ClientConnection::new(tls.config.clone(), tls.server_name.clone()) {
            Ok(session) => {
                c.tls = Some(Box::new(session));
                true
            }
            Err(e) => {
                show_failure(&e.to_string());
                self.stats.error(ErrorKind::Tls);
                false
            }
        }
    }

    /// [`Ctx::read`] for a TLS connection.
    #[inline(never)]
    pub(super) fn tls_read(&mut self, c: &mut Conn, slot: usize, hup: bool) {
        loop {
            let fd = c.fd.as_ref().expect("open has an fd");
            let n = match nix::unistd::read(fd, &mut self.buf) {
                Ok(0) => return self.eof(c, slot),
                Ok(n) => n,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    self.stats.error(ErrorKind::Reset);
                    return self.end(c, slot);
                }
            };
            // A handshake counts in the measured window (and an idle connection's in the ramp).
            let count = c.idle || self.measuring();
            let decrypted = decrypt(c, &self.buf[..n], &mut self.responses, &mut self.stats, count);
            let close = self.deliver(c);
            match decrypted {
                Err(kind) => {
                    self.stats.error(kind);
                    // The alert rustls queued tells the server why, as far as the socket takes it.
                    send_pending(c);
                    return self.end(c, slot);
                }
                _ if close => return self.tls_close(c, slot),
                Ok(Session::Closed) => return self.eof(c, slot),
                Ok(Session::Open) => {}
            }
            // A short read drained the socket; a later arrival is a new edge.
            if n < self.buf.len() && !hup {
                break;
            }
        }
        self.pump(c, slot);
    }

    /// [`Ctx::flush`] for a TLS connection: the requests in `out` into the session, and what
    /// it has to send (handshake or requests) onto the socket.
    #[inline(never)]
    pub(super) fn tls_flush(&mut self, c: &mut Conn, slot: usize) {
        let session = c.tls.as_mut().expect("a TLS connection");
        let mut sock = Sock(c.fd.as_ref().expect("open has an fd"));
        loop {
            if c.out_pos < c.out.len() {
                // It takes what its buffer limit (64 KiB) allows: before the handshake completes,
                // to send right after it; after, encrypted at once.
                c.out_pos += session.writer().write(&c.out[c.out_pos..]).unwrap_or(0);
                if c.out_pos == c.out.len() {
                    c.out.clear();
                    c.out_pos = 0;
                }
            }
            if !session.wants_write() {
                // What `out` still holds waits for the handshake (its next step is a read).
                return;
            }
            while session.wants_write() {
                match session.write_tls(&mut sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => {
                        self.stats.error(ErrorKind::Reset);
                        return self.end(c, slot);
                    }
                }
            }
            // The socket took it all without blocking, so no EPOLLOUT edge will come for the
            // rest of `out`: go round for it.
            if c.out.is_empty() {
                return;
            }
        }
    }

    /// The client ends the connection (`Connection: close`, or `--new-conn`): close_notify
    /// first, so the server sees a clean end of the session.
    fn tls_close(&mut self, c: &mut Conn, slot: usize) {
        if let Some(session) = c.tls.as_mut() {
            session.send_close_notify();
        }
        send_pending(c);
        self.end(c, slot);
    }
}

/// What the server did with the session.
enum Session {
    Open,
    /// It sent close_notify: nothing more will come.
    Closed,
}

/// Feed the ciphertext `data` to `c`'s session and the plaintext it yields to `c`'s response
/// reader (whose responses go to `responses`), counting the handshake when it completes
/// (if `count`).
fn decrypt(
    c: &mut Conn,
    mut data: &[u8],
    responses: &mut Vec<Response>,
    stats: &mut Stats,
    count: bool,
) -> Result<Session, ErrorKind> {
    let session = c.tls.as_mut().expect("a TLS connection");
    while !data.is_empty() {
        // It takes what fits its buffer (up to a record); processing empties that for the rest.
        if let Err(e) = session.read_tls(&mut data) {
            show_failure(&e.to_string());
            return Err(ErrorKind::Tls);
        }
        let handshaking = session.is_handshaking();
        if let Err(e) = session.process_new_packets() {
            show_failure(&format!("{e}{}", hint(&e)));
            return Err(ErrorKind::Tls);
        }
        if count && handshaking && !session.is_handshaking() {
            stats.handshakes += 1;
            stats.resumed += u64::from(session.handshake_kind() == Some(HandshakeKind::Resumed));
        }
        let mut plaintext = session.reader();
        loop {
            match plaintext.fill_buf() {
                Ok([]) => return Ok(Session::Closed),
                Ok(bytes) => {
                    let n = bytes.len();
                    let parsed = c.reader.feed(bytes, responses);
                    plaintext.consume(n);
                    parsed.map_err(ErrorKind::from)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // An end without close_notify shows here only after a TCP EOF, which is
                // handled before anything reaches rustls; count it as the end all the same.
                Err(_) => return Ok(Session::Closed),
            }
        }
    }
    Ok(Session::Open)
}

/// Write what the session has queued (an alert, close_notify), as far as the socket takes
/// it at once: the connection is about to close, so nothing waits for the rest.
fn send_pending(c: &mut Conn) {
    if let (Some(session), Some(fd)) = (c.tls.as_mut(), c.fd.as_ref()) {
        while session.wants_write() && session.write_tls(&mut Sock(fd)).is_ok_and(|n| n > 0) {}
    }
}

/// What to do about the commonest failures.
fn hint(e: &rustls::Error) -> &'static str {
    match e {
        // What `openssl req -x509` makes: webpki takes a CA certificate for an anchor only.
        rustls::Error::InvalidCertificate(c) if format!("{c:?}").contains("CaUsedAsEndEntity") => {
            "; the server's certificate is a CA certificate (as openssl req -x509 makes): give --cacert \
             the CA that signed a leaf certificate for the server, or leave --cacert out"
        }
        rustls::Error::InvalidCertificate(_) => {
            "; the certificate is checked against --cacert, for the name --sni (default: the --url's host, \
             or localhost for an address)"
        }
        rustls::Error::InvalidMessage(_) => "; is the server speaking TLS on that port?",
        _ => "",
    }
}

/// Say why a session failed, once per process (the caller counts the error).
fn show_failure(why: &str) {
    if !FAILURE_SHOWN.swap(true, Relaxed) {
        eprintln!("c10k-load: TLS failed: {why} (the first TLS failure; later ones are only counted)");
    }
}
