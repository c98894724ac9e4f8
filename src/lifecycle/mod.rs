//! The connection lifecycle, without I/O: every decision about a connection's life is made
//! here, once, for both backends.
//!
//! A driver reports what happened to a connection as an `Event` (bytes received, bytes
//! sent, end of stream, an error, our side shut, or nothing new) through `Core::step`, and
//! gets back the one next thing to do as an `Action` (receive, send this chunk, shut our
//! side, drain, yield to other connections, close, abort), with the deadline that applies
//! already set. Time comes from outside (`advance`), so every edge case is a test with a
//! fake clock; expired deadlines and connections that yielded their turn come back to the
//! driver through the ready list (`take_ready`). This is the shape of quinn-proto's
//! `Connection` (events in, transmits and timeouts out), with one difference: the core
//! holds every connection of a shard, because the cap, the idle list and fairness are
//! decisions across connections.
//!
//! A slot is removed in one place, `release`, which a driver calls when it carries out
//! `Close` or `Abort` and the kernel no longer holds anything of the connection. Everything
//! else names a connection by `Token`, checked against the slot's generation, so an event,
//! timer or queue entry that outlived its connection finds nothing.

#![forbid(unsafe_code)]

mod idle;
#[cfg(test)]
mod tests;
pub mod timer;
mod token;
mod transitions;

use crate::access::AccessLog;
use crate::conn::{Conn, Context, Outbox, Segment};
use crate::stats;
use slab::Slab;
pub use token::Token;

/// Milliseconds on the shard's monotonic clock.
pub type Millis = u64;

/// Work one connection may do in one turn of the loop, in bytes moved (received or sent);
/// an answered request counts as `ANSWER_COST` bytes. Past it the connection yields.
pub const TURN_BUDGET: u32 = 1 << 20;
pub const ANSWER_COST: u32 = 16 << 10;
/// Input held while output waits: past this the connection takes no more input
/// (io_uring stops its receive) until the output has gone.
pub const PENDING_CAP: usize = 256 * 1024;

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
    /// This many bytes of the chunk last handed out went out.
    Sent(usize),
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
    /// Take input: read if the socket has any, else wait for it.
    Receive,
    /// Send (a prefix of) this chunk and report `Sent`. The bytes stay put until then.
    Send(Segment<'a>),
    /// Shut our side of the connection (FIN) and report `Shut`.
    Shutdown,
    /// Read and discard input until the client closes or the linger deadline passes.
    Drain,
    /// This connection had its share of this turn; it is on the ready list for the next.
    Yield,
    /// Close the socket; once the kernel holds nothing of it, `release` the slot.
    Close,
    /// As `Close`, but with a reset (SO_LINGER 0): the client stalled, and what it did
    /// not take is dropped at once rather than held by the kernel.
    Abort,
}

/// The action and what the driver keeps for the connection.
pub struct Step<'a, C> {
    pub action: Action<'a>,
    /// Whether input is wanted now (a completion backend keeps a receive posted while it
    /// is): false once the connection is closed, the client has ended its stream, or
    /// `PENDING_CAP` bytes wait behind unsent output.
    pub receive: bool,
    pub io: &'a mut C,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Open,
    /// Our side is shut; input is read and discarded until the client closes.
    Lingering,
    /// Over: the driver closes it and releases the slot.
    Closed,
}

/// Which timeout the slot's deadline stands for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Timer {
    None,
    Idle,
    Request,
    Send,
    Linger,
}

/// A slot's yes-or-no state, a bit each: a byte each would cost every connection held 4
/// bytes more.
#[derive(Clone, Copy, Default)]
struct Flags(u8);

impl Flags {
    /// The client ended its stream: answer what it sent, then close.
    const PEER_EOF: u8 = 1;
    /// `conn` holds input the parser has not seen (it arrived behind output).
    const UNPARSED: u8 = 1 << 1;
    /// Close with a reset.
    const RESET: u8 = 1 << 2;
    /// On the ready list.
    const QUEUED: u8 = 1 << 3;
    /// On the idle list.
    const IDLE: u8 = 1 << 4;

    fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    fn set(&mut self, flag: u8, on: bool) {
        self.0 = if on { self.0 | flag } else { self.0 & !flag };
    }

    /// Set `flag` to `on`; whether it was set.
    fn replace(&mut self, flag: u8, on: bool) -> bool {
        let was = self.has(flag);
        self.set(flag, on);
        was
    }
}

/// One connection: its protocol state, its lifecycle, and the driver's part.
struct Slot<C> {
    conn: Conn,
    generation: u32,
    phase: Phase,
    timer: Timer,
    flags: Flags,
    /// The deadline as the wheel tick that ends at or after it (`timer::tick_at_or_after`):
    /// no timer fires finer than a tick, and 4 bytes hold it where milliseconds took 8.
    deadline: u32,
    /// The wheel tick this slot is filed under, `timer::NOT_FILED` when none.
    filed: u32,
    /// The turn `spent` counts for.
    turn: u32,
    spent: u32,
    /// Neighbours on the idle list (slab keys, `idle::NIL` at the ends).
    idle_prev: u32,
    idle_next: u32,
    /// When the requests being answered began (their first byte; µs on the shard's
    /// clock).
    began: u64,
    io: C,
}

/// Every connection of a shard and what serves them; no I/O.
pub struct Core<C> {
    slots: Slab<Slot<C>>,
    pub ctx: Context,
    timeouts: Timeouts,
    max_conns: usize,
    /// Where answers are built; moved into a connection (swapped with a pooled outbox)
    /// so the bytes stay put while the driver sends them.
    scratch: Outbox,
    /// Boxed as `conn.out` holds them (a pointer keeps an idle `Conn` small), so moving
    /// one in or out of the pool allocates nothing.
    #[allow(clippy::vec_box)]
    pool: Vec<Box<Outbox>>,
    wheel: timer::Wheel,
    due: Vec<Token>,
    generation: u32,
    now: Millis,
    turn: u32,
    ready: Vec<Token>,
    idle: idle::IdleList,
    /// Slots closed and not yet released.
    closing: usize,
    /// The clock in µs (`advance_micros`; else `now` × 1000).
    now_us: u64,
    access: Option<AccessLog>,
}

/// What one connection held costs in its shard's slab, with `C` as its driver's part: the
/// slot and the slab's tag around it (the layout of `slab`'s own entry, which fits its tag
/// in the slot's unused bit patterns). The drivers' tests keep their part within budget.
#[cfg(test)]
pub const fn slot_bytes<C>() -> usize {
    #[allow(dead_code)]
    enum SlabEntry<T> {
        Vacant(usize),
        Occupied(T),
    }
    size_of::<SlabEntry<Slot<C>>>()
}

/// Slots the slab is given room for at the start (within the cap). Room not yet used costs
/// address space, not memory; a slab grown by doubling from nothing leaves each smaller
/// copy behind in the heap, resident, which measured ~10 bytes more per connection held at
/// 5,000 a shard.
const SLAB_RESERVE: usize = 16 * 1024;

/// Pooled outboxes that grew past this are dropped rather than kept.
const POOLED_CAPACITY: usize = 256 * 1024;

impl<C> Core<C> {
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
            wheel: timer::Wheel::new(now),
            due: Vec::new(),
            generation: 0,
            now,
            turn: 0,
            ready: Vec::new(),
            idle: idle::IdleList::default(),
            closing: 0,
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

    /// The access log's whole lines waiting to be written, if there is a log.
    pub fn access_lines(&mut self) -> Option<&mut Vec<u8>> {
        self.access.as_mut().map(|log| &mut log.buf)
    }

    /// The peer of a connection just accepted, for the access log.
    pub fn set_peer(&mut self, token: Token, peer: Option<std::net::SocketAddr>) {
        if let (Some(key), Some(log)) = (self.live(token), &mut self.access) {
            log.opened(key, peer);
        }
    }

    /// Whether connections' peers are wanted (`set_peer`).
    pub fn wants_peers(&self) -> bool {
        self.access.is_some()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.slots.len() >= self.max_conns
    }

    /// Connections held at most.
    pub fn capacity(&self) -> usize {
        self.max_conns
    }

    /// Connections closed whose slots are not released yet (their driver waits for the
    /// kernel to let go): room that is coming.
    pub fn closing(&self) -> usize {
        self.closing
    }

    /// Take a new connection, or hand `io` back when every slot is taken (see
    /// `evict_idle`). The driver then resumes it.
    pub fn accept(&mut self, io: C) -> Result<Token, C> {
        if self.is_full() {
            return Err(io);
        }
        // Generations wrap below 2^24 so a token fits beside an opcode in 64 bits.
        self.generation = (self.generation + 1) & Token::GENERATION_MASK;
        let entry = self.slots.vacant_entry();
        let (key, token) = (entry.key(), Token::new(entry.key(), self.generation));
        entry.insert(Slot {
            conn: Conn::default(),
            generation: self.generation,
            phase: Phase::Open,
            timer: Timer::None,
            flags: Flags::default(),
            deadline: 0,
            filed: timer::NOT_FILED,
            turn: self.turn,
            spent: 0,
            idle_prev: idle::NIL,
            idle_next: idle::NIL,
            began: self.now_us,
            io,
        });
        if let Some(log) = &mut self.access {
            log.opened(key, None);
        }
        stats::add(&self.ctx.stats.accepted, 1);
        self.settle(key);
        Ok(token)
    }

    /// The slot `token` names, unless it was released (and maybe reused) since.
    fn live(&self, token: Token) -> Option<usize> {
        let slot = self.slots.get(token.index())?;
        (slot.generation == token.generation()).then_some(token.index())
    }

    fn token(&self, key: usize) -> Token {
        Token::new(key, self.slots[key].generation)
    }

    /// The driver's part of a live connection.
    pub fn io(&mut self, token: Token) -> Option<&mut C> {
        let key = self.live(token)?;
        Some(&mut self.slots[key].io)
    }

    /// Report `event` for `token`; the next action, or `None` if the connection is gone.
    pub fn step(&mut self, token: Token, event: Event<'_>) -> Option<Step<'_, C>> {
        let key = self.live(token)?;
        self.apply(key, event);
        let next = self.decide(key);
        self.settle(key);
        if matches!(next, Next::Yield) {
            self.wake(key);
        }
        let slot = &mut self.slots[key];
        let receive =
            slot.phase != Phase::Closed && !slot.flags.has(Flags::PEER_EOF) && slot.conn.held_len() < PENDING_CAP;
        let Slot { conn, io, .. } = slot;
        let action = match next {
            Next::Receive => Action::Receive,
            Next::Send => match conn.out.as_deref().and_then(Outbox::next_segment) {
                Some(chunk) => Action::Send(chunk),
                None => unreachable!("decide says Send only while output is queued"),
            },
            Next::Shutdown => Action::Shutdown,
            Next::Drain => Action::Drain,
            Next::Yield => Action::Yield,
            Next::Close => Action::Close,
            Next::Abort => Action::Abort,
        };
        Some(Step { action, receive, io })
    }

    /// Free a connection's slot, the one place a slot is removed; its driver's part comes
    /// back (to be dropped, which closes the socket).
    pub fn release(&mut self, token: Token) -> Option<C> {
        let key = self.live(token)?;
        self.idle_unlink(key);
        let slot = self.slots.remove(key);
        stats::add(&self.ctx.stats.closed, 1);
        if let Some(log) = &mut self.access {
            log.closed(key, self.now_us);
        }
        self.closing -= usize::from(slot.phase == Phase::Closed);
        if let Some(out) = slot.conn.out {
            self.recycle(out);
        }
        Some(slot.io)
    }

    /// Put `key` on the ready list (once) for the driver's next `take_ready`.
    fn wake(&mut self, key: usize) {
        let token = self.token(key);
        let slot = &mut self.slots[key];
        if !slot.flags.replace(Flags::QUEUED, true) {
            self.ready.push(token);
        }
    }

    /// Ask for `token` to be resumed next turn (a driver whose operation ended without
    /// news, e.g. a receive that found no free buffer).
    pub fn wake_later(&mut self, token: Token) {
        if let Some(key) = self.live(token) {
            self.wake(key);
        }
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Move the ready list into `into` (cleared first): connections whose deadline passed
    /// or that yielded, to be resumed with `Event::Resume`.
    pub fn take_ready(&mut self, into: &mut Vec<Token>) {
        into.clear();
        std::mem::swap(into, &mut self.ready);
        for &token in into.iter() {
            if let Some(key) = self.live(token) {
                self.slots[key].flags.set(Flags::QUEUED, false);
            }
        }
    }

    /// Stop keeping connections alive: every answer from now on says `Connection: close`;
    /// connections idle between requests (or new, with nothing received) and lingering
    /// ones are closed within `DRAIN_IDLE`. Requests received are answered and responses
    /// in flight finish; the shard is done when `is_empty`.
    pub fn drain(&mut self) {
        if std::mem::replace(&mut self.ctx.draining, true) {
            return;
        }
        let keys: Vec<usize> = self.slots.iter().map(|(key, _)| key).collect();
        for key in keys {
            let slot = &mut self.slots[key];
            if matches!(slot.timer, Timer::Idle | Timer::Linger) {
                // Set again, under the drain's limit.
                slot.timer = Timer::None;
                self.settle(key);
            }
        }
    }

    /// Close every connection now (a drain ran out of time, or the stop is immediate): one
    /// with a response still unsent is reset, so the kernel drops what the client did not
    /// take instead of holding it; the others are closed. Each goes on the ready list for
    /// its driver to carry out.
    pub fn close_all(&mut self) {
        let keys: Vec<usize> = self.slots.iter().map(|(key, _)| key).collect();
        for key in keys {
            if self.slots[key].phase != Phase::Closed {
                let reset = self.slots[key].conn.out.is_some();
                self.close(key, reset);
                self.settle(key);
                self.wake(key);
            }
        }
    }

    /// Every connection held, closed or not (for a shutdown).
    pub fn tokens(&self) -> Vec<Token> {
        self.slots.iter().map(|(key, slot)| Token::new(key, slot.generation)).collect()
    }

    fn recycle(&mut self, mut out: Box<Outbox>) {
        out.clear();
        if out.bytes.capacity() <= POOLED_CAPACITY {
            self.pool.push(out);
        }
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
