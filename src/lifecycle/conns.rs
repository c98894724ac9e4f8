//! The slab of connections: taking one, naming it by token, stepping it, releasing it, the
//! ready list, and the shard-wide moves (drain, close everything).

use super::idle::NIL;
use super::{
    Action, Core, Event, Flags, INPUT_HELD, INPUT_READ, Next, Outgoing, POOLED, POOLED_CAPACITY, Phase, Slot, Step,
    Timer, Token, timer,
};
use crate::conn::Conn;
use crate::stats;
use crate::transport::Transport;
use std::net::SocketAddr;

impl<C, T: Transport> Core<C, T> {
    /// Whether connections' peers are wanted (`accept`'s `peer`), for the access log.
    pub fn wants_peers(&self) -> bool {
        self.access.is_some()
    }

    /// Take a new connection (`peer`: its address, when `wants_peers`), or hand `io` back
    /// when every slot is taken (see `admit`). The driver then resumes it.
    pub fn accept(&mut self, io: C, peer: Option<SocketAddr>) -> Result<Token, C> {
        self.accept_on(io, peer, 0)
    }

    /// `accept`, for a connection that came in on the shard's listener number `listener`
    /// (which says its transport); `io` comes back also when the transport cannot start.
    pub fn accept_on(&mut self, io: C, peer: Option<SocketAddr>, listener: usize) -> Result<Token, C> {
        if self.slots.len() >= self.max_conns {
            return Err(io);
        }
        let Some(transport) = T::open(&mut self.shared, listener) else { return Err(io) };
        // Generations wrap below 2^24 so a token fits beside an opcode in 64 bits.
        self.generation = (self.generation + 1) & Token::GENERATION_MASK;
        let entry = self.slots.vacant_entry();
        let (key, token) = (entry.key(), Token::new(entry.key(), self.generation));
        entry.insert(Slot {
            conn: Conn::on_listener(listener),
            generation: self.generation,
            phase: Phase::Open,
            timer: Timer::None,
            flags: Flags::default(),
            deadline: 0,
            filed: timer::NOT_FILED,
            turn: self.turn,
            spent: 0,
            idle_prev: NIL,
            idle_next: NIL,
            began: self.now_us,
            transport,
            io,
        });
        if let Some(log) = &mut self.access {
            log.opened(key, peer);
        }
        stats::add(&self.ctx.stats.accepted, 1);
        self.settle(key);
        Ok(token)
    }

    /// The slot `token` names, unless it was released (and maybe reused) since.
    pub(super) fn live(&self, token: Token) -> Option<usize> {
        let slot = self.slots.get(token.index())?;
        (slot.generation == token.generation()).then_some(token.index())
    }

    pub(super) fn token(&self, key: usize) -> Token {
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
        let room = match slot.phase {
            Phase::Closed => 0,
            Phase::Lingering => INPUT_READ,
            _ if slot.flags.has(Flags::PEER_EOF) => 0,
            // Input waits behind output (or a spent budget): take it only up to the bound,
            // and none while the output is at its own bound (a client that stopped
            // reading).
            Phase::Open if slot.conn.out.is_some() || slot.flags.has(Flags::UNPARSED) => {
                if slot.conn.out.as_ref().is_some_and(|out| out.is_full()) {
                    0
                } else {
                    INPUT_HELD.saturating_sub(slot.conn.held_len())
                }
            }
            // All that can be held is one request's head in pieces, which the parser bounds.
            Phase::Open => INPUT_READ,
        };
        let Slot { conn, transport, io, .. } = slot;
        let action = match next {
            Next::Receive => Action::Receive,
            Next::Send => match transport.outbound(conn.out.as_deref_mut()) {
                Some(offer) => Action::Send(offer),
                None => unreachable!("decide says Send only while output is queued"),
            },
            Next::Shutdown => Action::Shutdown,
            Next::Drain => Action::Drain,
            Next::Yield => Action::Yield,
            Next::Close => Action::Close,
            Next::Abort => Action::Abort,
        };
        Some(Step { action, room, io })
    }

    /// Free a connection's slot, the one place a slot is removed; its driver's part comes
    /// back (to be dropped, which closes the socket). The driver calls it once the kernel
    /// holds nothing of the connection: releasing one whose output is still lent is a
    /// broken contract, and panics (the output's bytes are leaked, never freed).
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
        slot.transport.finish(&mut self.shared);
        Some(slot.io)
    }

    /// The kernel holds nothing of any connection any more (the driver cancelled and reaped
    /// every operation): every loan is over, whatever its send came to.
    pub fn quiesced(&mut self) {
        for (_, slot) in self.slots.iter_mut() {
            if slot.transport.lent(slot.conn.out.as_deref_mut()) {
                slot.transport.sent(0, slot.conn.out.as_deref_mut(), &mut self.shared);
            }
        }
    }

    /// Put `key` on the ready list (once) for the driver's next `take_ready`.
    pub(super) fn wake(&mut self, key: usize) {
        let token = self.token(key);
        let slot = &mut self.slots[key];
        if !slot.flags.replace(Flags::QUEUED, true) {
            self.ready.push(token);
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
                let slot = &self.slots[key];
                let reset = slot.conn.out.is_some() || slot.transport.pending();
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

    pub(super) fn recycle(&mut self, mut out: Box<Outgoing>) {
        if out.clear() <= POOLED_CAPACITY && self.pool.len() < POOLED {
            self.pool.push(out);
        }
    }
}
