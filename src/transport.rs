//! The transport: how a connection's bytes are carried between the socket and the protocol.
//! Plain today (the bytes as they are); TLS next, which decrypts what the driver received
//! before the protocol reads it and encrypts what the protocol queued before the driver
//! sends it. No I/O here either: the core calls the transport on the way in (`inbound`)
//! and on the way out (`outbound`, `sent`), and drivers only ever see the bytes on the wire.
//!
//! The core is generic over its connections' transport, so plain compiles to nothing: no
//! state in the slot, no branch, no copy (instructions per request measured unchanged).
//! A shard serving plain and TLS listeners at once will use an enum of the two.
//!
//! What TLS will add beside these calls: bytes of its own to send with no response queued
//! (the handshake, alerts, session tickets), which the core must send before it asks for
//! input; a handshake that counts as a request for the request timeout; and file ranges
//! read with `pread` into a shard buffer and encrypted, where plain sends them with
//! `sendfile`. After a handshake, kernel TLS would turn a connection back into plain
//! (the kernel encrypts), which is why the choice is per connection, not per shard.

#![forbid(unsafe_code)]

use crate::conn::{Offer, Outgoing};

/// A connection's transport state.
pub trait Transport: Default {
    /// What the protocol reads of `received`, the bytes the driver got from the socket.
    /// `scratch` is the shard's, for a transport that must produce other bytes (TLS: the
    /// plaintext).
    fn inbound<'a>(&mut self, received: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8];

    /// What to put on the wire for the output queued (TLS: records it encrypted from it,
    /// kept in an `Outgoing` of its own, so a loan works the same).
    fn outbound<'a>(&'a mut self, out: &'a mut Outgoing) -> Option<Offer<'a>>;

    /// `n` bytes of what `outbound` offered went out (0: the send failed); a loan of it is
    /// over.
    fn sent(&mut self, n: usize, out: &mut Outgoing);
}

/// The bytes as they are.
#[derive(Clone, Copy, Default, Debug)]
pub struct Plain;

impl Transport for Plain {
    #[inline(always)]
    fn inbound<'a>(&mut self, received: &'a [u8], _scratch: &'a mut Vec<u8>) -> &'a [u8] {
        received
    }

    #[inline(always)]
    fn outbound<'a>(&'a mut self, out: &'a mut Outgoing) -> Option<Offer<'a>> {
        Offer::new(out)
    }

    #[inline(always)]
    fn sent(&mut self, n: usize, out: &mut Outgoing) {
        out.give_back(n);
    }
}
