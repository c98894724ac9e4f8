//! The connection lifecycle, without I/O: every decision about a connection's life is made
//! here, once, for both backends.
//!
//! A driver reports what happened to a connection as an `Event` (bytes received, bytes
//! sent, end of stream, an error, our side shut, or nothing new) through `Core::step`, and
//! gets back the one next thing to do as an `Action` (receive, send this segment, shut our
//! side, drain, yield to other connections, close, abort), with the deadline that applies
//! already set. Time comes from outside (`advance`), so every edge case is a test with a
//! fake clock; expired deadlines and connections that yielded their turn come back to the
//! driver through the ready list (`take_ready`), and `next_deadline` says how long the
//! shard may sleep. This is the shape of quinn-proto's `Connection` (events in, transmits
//! and timeouts out), with one difference: the core holds every connection of a shard,
//! because the cap, the idle list, admission and fairness are decisions across
//! connections.
//!
//! New connections are admitted here too (`admit`, `wants_accepts`, `accept_failed`): at
//! the cap the longest-idle keep-alive connection is closed to make room, a driver holds at
//! most `EVICT_AHEAD` accepted connections waiting for that room, and after an accept error
//! (EMFILE) accepting pauses for `ACCEPT_RETRY`. A driver only carries this out.
//!
//! A slot is removed in one place, `release`, which a driver calls when it carries out
//! `Close` or `Abort` and the kernel no longer holds anything of the connection. Everything
//! else names a connection by `Token`, checked against the slot's generation, so an event,
//! timer or queue entry that outlived its connection finds nothing. Output a driver takes
//! on loan from `Action::Send` (`conn::Offer::lend`) stays lent until it reports `Sent`
//! or `SendFailed`: nothing changes or frees it meanwhile, by construction.
//!
//! The layers a connection's bytes cross: driver ⇄ transport (`crate::transport`: plain,
//! or TLS decrypting what was received and encrypting what is lent) ⇄ protocol
//! (`conn::Conn`, HTTP/1.1) ⇄ the serving context. HTTP/2 fits above the transport and
//! beside `Conn`: one connection, one slot, one deadline and one outgoing queue here, and
//! many streams inside its protocol state, each answered from the same context. The
//! lifecycle's rules then apply to the connection as a whole (the send timeout is "no
//! progress on the connection", the turn budget counts bytes across streams, a drain
//! becomes GOAWAY), so nothing in this module needs to know about streams.

#![forbid(unsafe_code)]

#[cfg(test)]
mod admission_tests;
mod admit;
mod conns;
mod expire;
mod idle;
#[cfg(any(test, feature = "fuzzing"))]
pub mod invariants;
mod slot;
#[cfg(test)]
mod tests;
pub mod timer;
mod token;
mod transitions;

use crate::access::AccessLog;
use crate::conn::{Context, Offer, Outbox, Outgoing};
use crate::transport::{Plain, Transport};
pub use admit::{ACCEPT_RETRY, EVICT_AHEAD};
use slab::Slab;
#[cfg(test)]
pub use slot::slot_bytes;
use slot::{Flags, Phase, Slot, Timer};
pub use token::Token;

/// Milliseconds on the shard's monotonic clock.
pub type Millis = u64;

/// Work one connection may do in one turn of the loop, in bytes moved (received or sent);
/// an answered request counts as `ANSWER_COST` bytes. Past it the connection yields.
pub const TURN_BUDGET: u32 = 1 << 20;
pub const ANSWER_COST: u32 = 16 << 10;
/// The memory budget of a connection being served, beside its slot: at most `INPUT_HELD`
/// bytes of input waiting behind output or a spent budget (a connection stops taking input
/// once that much waits: epoll reads no more, and io_uring's receive ends at the room the
/// core gives, where the kernel has limited receives, 6.17+), a read of at most
/// `INPUT_READ` bytes, and at most `conn::outbox::OUTPUT_BOUND` bytes of responses and
/// their access-log records queued (plus the last response, which may hold a cached file
/// of up to 64 KiB). A request's head in pieces is bounded by the parser's limits. In all,
/// `CONN_BUDGET`: a client that pipelines and never reads measured 50 KiB (epoll) and
/// 63 KiB (io_uring, its share of the shard's receive buffers included) of shard memory,
/// where it took 165 and 508 before these bounds (`make loadtest`, `stalled pipelining`).
pub const INPUT_HELD: usize = 12 * 1024;
/// What the capacity plan counts for a connection in the shard (see `INPUT_HELD`).
pub const CONN_BUDGET: usize = 64 * 1024;
/// The most one read takes from a socket (epoll's read buffer; io_uring's buffers are
/// smaller). A read this size of pipelined requests answers what fits in the output and
/// holds the rest.
pub const INPUT_READ: usize = 16 * 1024;

/// Once the shard drains, a connection idle between requests (or new, with nothing
/// received) is kept this long at most, and one lingering after our FIN as long: a client
/// whose next request is already on its way is answered (with `Connection: close`) instead
/// of finding the connection closed under it, and one with nothing to send is let go soon.
pub const DRAIN_IDLE: Millis = 500;

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Idle between requests (keep-alive). A new connection waits for its first request
    /// for `request` instead.
    pub keepalive: Millis,
    /// From a request's first byte to its last; the client is told 408.
    pub request: Millis,
    /// Output queued and none of it taken for this long: the client stopped reading.
    pub send: Millis,
    /// Draining the client's input after our last response, before closing.
    pub linger: Millis,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { keepalive: 75_000, request: 30_000, send: 60_000, linger: 5_000 }
    }
}

/// What happened to a connection, as its driver saw it.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// Nothing new: a timer fired, the turn the connection yielded came round, or the
    /// socket became ready. The core says what to do now.
    Resume,
    Received(&'a [u8]),
    /// This many bytes of the segment lent by `Action::Send` went out; the loan is over.
    Sent(usize),
    /// Sending the segment lent by `Action::Send` failed: the loan is over, and so is the
    /// connection. (Any other error is `Failed`, which ends no loan: a send may still be
    /// in flight.)
    SendFailed,
    /// The client's end of stream.
    PeerClosed,
    /// An error on the socket: the connection is over.
    Failed,
    /// Our side is shut, as `Action::Shutdown` asked.
    Shut,
}

/// The one next thing a driver does for a connection.
#[derive(Debug)]
pub enum Action<'a> {
    /// Take input: read if the socket has any, else wait for it. The action stands until
    /// the next event: a readiness backend that found the socket empty may carry it out
    /// when input arrives without asking again, as a posted io_uring receive does.
    Receive,
    /// Send (a prefix of) the offered segment and report `Sent` or `SendFailed`; or, with
    /// no room in the socket, wait for it and ask again. A backend whose kernel reads the
    /// bytes after the call returns takes them on loan (`Offer::lend`), and they stay put
    /// and unchanged until it reports that send's outcome.
    Send(Offer<'a>),
    /// Shut our side of the connection (FIN) and report `Shut`.
    Shutdown,
    /// Read and discard input until the client closes or the linger deadline passes
    /// (standing, as `Receive`).
    Drain,
    /// This connection had its share of this turn; it is on the ready list for the next.
    Yield,
    /// Close the socket; once the kernel holds nothing of it, `release` the slot.
    Close,
    /// As `Close`, but with a reset (SO_LINGER 0): the client stalled, and what it did
    /// not take is dropped at once rather than held by the kernel.
    Abort,
}

/// What to do with a connection the driver accepted and has not yet given to the core.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Admission {
    /// A slot is free: `accept` it.
    Take,
    /// At the cap: this keep-alive connection, idle the longest, is closed to make room;
    /// resume it (the core says `Close`), then ask again.
    Evict(Token),
    /// No room now, nor any to make: leave the connection waiting (or unaccepted).
    Wait,
}

/// The action and what the driver keeps for the connection.
pub struct Step<'a, C> {
    pub action: Action<'a>,
    /// How much input the connection takes now, in bytes; 0: none (a completion backend
    /// keeps a receive posted, taking at most this much, while it is more). 0 once the
    /// connection is closed or the client has ended its stream, and while `INPUT_HELD`
    /// bytes wait behind output or the output is at its bound.
    pub room: usize,
    pub io: &'a mut C,
}

/// Every connection of a shard and what serves them; no I/O. `C` is the driver's part of a
/// connection, `T` its transport.
pub struct Core<C, T: Transport = Plain> {
    slots: Slab<Slot<C, T>>,
    pub ctx: Context,
    timeouts: Timeouts,
    max_conns: usize,
    /// Where answers are built; moved into a connection's outgoing queue (swapped with a
    /// pooled one's empty buffers) so the bytes stay put while the driver sends them.
    scratch: Outbox,
    /// Boxed as `conn.out` holds them (a pointer keeps an idle `Conn` small), so moving
    /// one in or out of the pool allocates nothing.
    #[allow(clippy::vec_box)]
    pool: Vec<Box<Outgoing>>,
    /// What the connections' transports share (TLS: configurations, buffers).
    shared: T::Shared,
    wheel: timer::Wheel,
    due: Vec<Token>,
    generation: u32,
    now: Millis,
    turn: u32,
    ready: Vec<Token>,
    idle: idle::IdleList,
    /// Slots closed and not yet released.
    closing: usize,
    /// No accepting before this (an accept failed: EMFILE and the like).
    accept_paused_until: Millis,
    /// The clock in µs (`advance_micros`; else `now` × 1000).
    now_us: u64,
    access: Option<AccessLog>,
}

/// Slots the slab is given room for at the start (within the cap). Room not yet used costs
/// address space, not memory; a slab grown by doubling from nothing leaves each smaller
/// copy behind in the heap, resident, which measured ~10 bytes more per connection held at
/// 5,000 a shard.
const SLAB_RESERVE: usize = 16 * 1024;

/// Outgoing queues kept for reuse at most, and the largest kept: the pool serves the
/// connections busy at one time without an allocation each, and gives back what a burst
/// of them (many clients that stopped reading) grew, rather than keep its peak forever.
const POOLED: usize = 256;
const POOLED_CAPACITY: usize = 64 * 1024;

impl<C, T: Transport> Core<C, T> {
    /// A core whose clock reads `now`, serving `ctx` (its `Date` set from `wall`, seconds
    /// since the epoch), holding at most `max_conns` connections.
    pub fn new(mut ctx: Context, timeouts: Timeouts, max_conns: usize, now: Millis, wall: u64) -> Self {
        ctx.tick(wall);
        Core {
            slots: Slab::with_capacity(max_conns.min(SLAB_RESERVE)),
            ctx,
            timeouts,
            max_conns,
            scratch: Outbox::default(),
            pool: Vec::new(),
            shared: T::Shared::default(),
            wheel: timer::Wheel::new(now),
            due: Vec::new(),
            generation: 0,
            now,
            turn: 0,
            ready: Vec::new(),
            idle: idle::IdleList::default(),
            closing: 0,
            accept_paused_until: 0,
            now_us: now * 1000,
            access: None,
        }
    }

    /// A new turn of the loop: the monotonic clock reads `now` (a reading behind the
    /// last one is ignored), the wall clock `wall` (for `Date` only), and every
    /// connection's budget is whole again.
    pub fn advance(&mut self, now: Millis, wall: u64) {
        self.now = self.now.max(now);
        self.now_us = self.now_us.max(self.now * 1000);
        self.turn = self.turn.wrapping_add(1);
        self.ctx.tick(wall);
    }

    /// What the connections' transports share, for the shard to set up.
    pub fn transports(&mut self) -> &mut T::Shared {
        &mut self.shared
    }

    pub fn now(&self) -> Millis {
        self.now
    }

    /// The clock to the microsecond, for response times (never behind `advance`'s).
    pub fn advance_micros(&mut self, now_us: u64) {
        self.now_us = self.now_us.max(now_us);
    }

    /// Log every response from now on into `log` (its buffer is the shard's to write).
    pub fn log_access(&mut self, log: AccessLog) {
        self.ctx.records = Some(Vec::new());
        self.access = Some(log);
    }

    /// The turn should end before more events are handled: the access log holds a write's
    /// worth of lines (`access::WRITE_BATCH`) for the shard to write. Drivers check it
    /// between events and keep the rest for the next turn.
    pub fn turn_full(&self) -> bool {
        self.access.as_ref().is_some_and(|log| log.buf.len() >= crate::access::WRITE_BATCH)
    }

    /// The access log's whole lines waiting to be written, if there is a log.
    pub fn access_lines(&mut self) -> Option<&mut Vec<u8>> {
        self.access.as_mut().map(|log| &mut log.buf)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// `Action` before it borrows the chunk to send.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Next {
    Receive,
    Send,
    Shutdown,
    Drain,
    Yield,
    Close,
    Abort,
}
