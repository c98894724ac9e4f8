//! The transport: how a connection's bytes are carried between the socket and the protocol.
//! Plain (the bytes as they are), or TLS (the `tls` module above), which decrypts what the driver
//! received before the protocol reads it and encrypts what the protocol queued before the
//! driver sends it. No I/O on the socket here either: the core calls the transport on the
//! way in (`inbound`) and on the way out (`prepare`, `outbound`, `sent`), and drivers only
//! ever see the bytes on the wire.
//!
//! The core is generic over its connections' transport, so plain compiles to nothing: no
//! state in the slot, no branch, no copy (instructions per request measured unchanged). A
//! shard with a TLS listener uses `tls::Mixed`, which is plain or TLS per connection, as
//! its listener says (8 bytes more in the slot, a pointer).
//!
//! What TLS adds beside the protocol's output: bytes of its own to send with no response
//! queued (the handshake, alerts, session tickets: `pending`), which the core sends before
//! it asks for input; an end of its own (`close_notify`, `finish`); and file ranges read
//! with `pread` into a shard buffer and encrypted (`prepare`), where plain sends them with
//! `sendfile`. After a handshake, kernel TLS would turn a connection back into plain (the
//! kernel encrypts), which is why the choice is per connection, not per shard.

#![forbid(unsafe_code)]

use crate::conn::{Offer, Outgoing};

/// What the protocol gets of bytes received.
pub enum Inbound<'a> {
    /// Bytes for the protocol (none, mid-handshake).
    Data(&'a [u8]),
    /// The peer ended its stream (TLS: close_notify).
    Closed,
    /// The transport failed (TLS: a bad record, no common parameters, plain HTTP on a TLS
    /// port): what it queued to say so (`pending`) goes out, then the connection closes.
    Failed,
}

/// What the protocol queued cannot be sent as promised (a file shrank under its
/// Content-Length): the connection must end with a reset.
#[derive(Debug)]
pub struct Unsendable;

/// A connection's transport state.
pub trait Transport: Sized {
    /// What the shard's connections of this transport share: per-listener settings, buffers,
    /// counters. The default is a shard with no listener of its own kind.
    type Shared: Default;

    /// The transport of a connection accepted on the shard's listener number `listener`
    /// (in the order the shard was given them); `None`: it cannot start, close it.
    fn open(shared: &mut Self::Shared, listener: usize) -> Option<Self>;

    /// What the protocol reads of `received`, the bytes the driver got from the socket.
    fn inbound<'a>(&mut self, received: &'a [u8], shared: &'a mut Self::Shared) -> Inbound<'a>;

    /// Bytes of its own wait to go out (or are going): the core sends before anything else.
    fn pending(&self) -> bool;

    /// Make what the protocol queued in `out` ready to offer (TLS: encrypt a batch of it).
    fn prepare(&mut self, out: Option<&mut Outgoing>, shared: &mut Self::Shared) -> Result<(), Unsendable>;

    /// The queue a send takes from: the protocol's output `out` as it is (plain), or the
    /// transport's own (TLS: records encrypted from it).
    fn queue<'a>(&'a mut self, out: Option<&'a mut Outgoing>) -> Option<&'a mut Outgoing>;

    /// `queue` has something to offer.
    fn ready(&mut self, out: Option<&mut Outgoing>) -> bool {
        self.queue(out).is_some_and(|queue| !queue.is_empty())
    }

    /// What to put on the wire now, after `prepare`.
    fn outbound<'a>(&'a mut self, out: Option<&'a mut Outgoing>) -> Option<Offer<'a>> {
        self.queue(out).and_then(Offer::new)
    }

    /// `n` bytes of what `outbound` offered went out (0: the send failed); a loan of it is
    /// over. Returns how many bytes of the protocol's output are now wholly sent.
    fn sent(&mut self, n: usize, out: Option<&mut Outgoing>, shared: &mut Self::Shared) -> usize;

    /// What `outbound` offered is lent to the kernel.
    fn lent(&mut self, out: Option<&mut Outgoing>) -> bool {
        self.queue(out).is_some_and(|queue| queue.is_lent())
    }

    /// The protocol is done with the connection and everything queued has gone: queue the
    /// transport's own end (TLS: close_notify) if it has one and has not yet; whether it did.
    fn close_notify(&mut self) -> bool;

    /// The connection is over: give back what it holds of the shard's.
    fn finish(self, shared: &mut Self::Shared);

    /// (protocol version, cipher) of an established secure connection, for the access log.
    fn describe(&self) -> Option<(&'static str, &'static str)>;

    /// The name the client asked for in its handshake (TLS SNI), once known.
    fn server_name(&self) -> Option<&str> {
        None
    }
}

/// The bytes as they are.
#[derive(Clone, Copy, Default, Debug)]
pub struct Plain;

impl Transport for Plain {
    type Shared = ();

    #[inline(always)]
    fn open(_: &mut (), _: usize) -> Option<Plain> {
        Some(Plain)
    }

    #[inline(always)]
    fn inbound<'a>(&mut self, received: &'a [u8], _: &'a mut ()) -> Inbound<'a> {
        Inbound::Data(received)
    }

    #[inline(always)]
    fn pending(&self) -> bool {
        false
    }

    #[inline(always)]
    fn prepare(&mut self, _: Option<&mut Outgoing>, _: &mut ()) -> Result<(), Unsendable> {
        Ok(())
    }

    #[inline(always)]
    fn queue<'a>(&'a mut self, out: Option<&'a mut Outgoing>) -> Option<&'a mut Outgoing> {
        out
    }

    #[inline(always)]
    fn sent(&mut self, n: usize, out: Option<&mut Outgoing>, _: &mut ()) -> usize {
        if let Some(out) = out {
            out.give_back(n);
        }
        n
    }

    #[inline(always)]
    fn close_notify(&mut self) -> bool {
        false
    }

    #[inline(always)]
    fn finish(self, _: &mut ()) {}

    #[inline(always)]
    fn describe(&self) -> Option<(&'static str, &'static str)> {
        None
    }
}
