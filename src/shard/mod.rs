//! A shard: one pinned reactor owning a listener, a slab of connections, a timer wheel
//! and its site (file cache, Date). One pass of the loop: the driver's turn (wait, then
//! accepts and connection I/O, reported to the core) → expired timers. Nothing here is
//! shared with another shard, and nothing here talks to the kernel: the driver does.

#![forbid(unsafe_code)]

mod timer;

use crate::conn::{Conn, Outbox, Site};
use crate::driver::{Driver, Sizing, Token};
use crate::http::response::{self, Persistence};
use slab::Slab;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use timer::Wheel;

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Idle keep-alive connection, between requests.
    pub keepalive: u64,
    /// A request (head or body) started but not finished; the client is told 408.
    pub request: u64,
    /// Output the client does not read.
    pub send: u64,
    /// Draining the client's input after our last response, before closing.
    pub linger: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { keepalive: 75, request: 30, send: 60, linger: 5 }
    }
}

/// One connection: its socket, its protocol state, and the driver's state for it.
pub struct Slot<C> {
    pub stream: TcpStream,
    generation: u32,
    pub conn: Conn,
    deadline: u64,
    /// The second this slot is filed under in the wheel, 0 when it is not.
    filed: u64,
    /// Input is waiting (in `conn.pending` or the socket) until the output has gone.
    pub read_paused: bool,
    /// Our side is shut; input is read and discarded until the peer closes.
    pub lingering: bool,
    /// The peer has shut its side: read to the end of the stream.
    pub hangup: bool,
    /// Tear down as soon as the driver can: an I/O error, a timeout, or the peer gone.
    pub doomed: bool,
    pub io: C,
}

/// Connections and what serves them, without I/O: the driver reports what happened and
/// the core decides (answers queued in `conn.out`, `closing`, `doomed`, deadlines).
pub struct Core<C> {
    pub slots: Slab<Slot<C>>,
    pub site: Site,
    timeouts: Timeouts,
    max_conns: usize,
    /// Where answers are built; moved into a connection (swapped with a pooled outbox)
    /// so the bytes stay put while the driver sends them.
    scratch: Outbox,
    /// Boxed as `conn.out` holds them (a pointer keeps an idle `Conn` small), so moving
    /// one in or out of the pool allocates nothing.
    #[allow(clippy::vec_box)]
    pool: Vec<Box<Outbox>>,
    wheel: Wheel,
    generation: u32,
}

/// Pooled outboxes that grew past this are dropped rather than kept.
const POOLED_CAPACITY: usize = 256 * 1024;

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl<C: Default> Core<C> {
    pub fn new(mut site: Site, timeouts: Timeouts, max_conns: usize) -> Self {
        let now = now_secs();
        site.tick(now);
        Core {
            slots: Slab::new(),
            site,
            timeouts,
            max_conns,
            scratch: Outbox::default(),
            pool: Vec::new(),
            wheel: Wheel::new(now),
            generation: 0,
        }
    }

    pub fn is_full(&self) -> bool {
        self.slots.len() >= self.max_conns
    }

    /// Take a new connection (the caller checked `is_full`).
    pub fn accept(&mut self, stream: TcpStream) -> Token {
        // Generations wrap below 2^24 so a token fits beside an opcode in 64 bits.
        self.generation = (self.generation + 1) & Token::GENERATION_MASK;
        let entry = self.slots.vacant_entry();
        let token = Token::new(entry.key(), self.generation);
        entry.insert(Slot {
            stream,
            generation: self.generation,
            conn: Conn::default(),
            deadline: 0,
            filed: 0,
            read_paused: false,
            lingering: false,
            hangup: false,
            doomed: false,
            io: C::default(),
        });
        self.set_deadline(token.index(), self.timeouts.request);
        token
    }

    pub fn token(&self, key: usize) -> Token {
        Token::new(key, self.slots[key].generation)
    }

    /// The slot `token` names, unless it was closed (and maybe reused) since.
    pub fn live(&self, token: Token) -> Option<usize> {
        let slot = self.slots.get(token.index())?;
        (slot.generation == token.generation()).then_some(token.index())
    }

    /// What a read is measured against: whether a request was in progress, and how many
    /// had been answered.
    pub fn progress(&self, key: usize) -> (bool, u32) {
        let conn = &self.slots[key].conn;
        (conn.mid_request(), conn.answered)
    }

    /// Bytes arrived. While earlier output is still going out they only queue; otherwise
    /// every complete request is answered into `conn.out`.
    pub fn input(&mut self, key: usize, data: &[u8]) {
        let slot = &mut self.slots[key];
        if slot.lingering || slot.doomed {
            return;
        }
        if slot.conn.out.is_some() || slot.conn.closing {
            if !slot.conn.closing {
                slot.conn.pending.extend_from_slice(data);
                slot.read_paused = true;
            }
            return;
        }
        let mut pending = std::mem::take(&mut slot.conn.pending);
        let from_pending = !pending.is_empty();
        if from_pending {
            pending.extend_from_slice(data);
        }
        let rest: &[u8] = if from_pending { &pending } else { data };
        let used = slot.conn.feed(rest, &mut self.site, &mut self.scratch);
        // Only an unparsed tail stays with the connection, and only as long as it must.
        let tail = rest.len() - used;
        if from_pending {
            pending.drain(..used);
            slot.conn.pending = if tail == 0 { Vec::new() } else { pending };
        } else if tail > 0 {
            slot.conn.pending = data[used..].to_vec();
        }
        if !self.scratch.is_empty() {
            let mut out = self.pool.pop().unwrap_or_default();
            std::mem::swap(&mut *out, &mut self.scratch);
            slot.conn.out = Some(out);
        }
        if slot.conn.out.is_some() && tail > 0 {
            // Stopped early with requests left: they wait for the output to go.
            slot.read_paused = true;
        }
    }

    /// Everything in `conn.out` went out: recycle it and answer what waited meanwhile.
    pub fn sent(&mut self, key: usize) {
        let slot = &mut self.slots[key];
        if let Some(mut out) = slot.conn.out.take() {
            out.clear();
            if out.bytes.capacity() <= POOLED_CAPACITY {
                self.pool.push(out);
            }
        }
        if !slot.conn.pending.is_empty() && !slot.conn.closing {
            self.input(key, &[]);
        }
        let slot = &self.slots[key];
        if slot.conn.out.is_none() && !slot.conn.closing {
            let timeout = if slot.conn.mid_request() { self.timeouts.request } else { self.timeouts.keepalive };
            self.set_deadline(key, timeout);
        }
    }

    /// The socket would not take all of `conn.out`.
    pub fn blocked(&mut self, key: usize) {
        self.set_deadline(key, self.timeouts.send);
    }

    /// A read has been answered: the deadline that applies now. A request gets `request`
    /// seconds from its first byte, not from its latest, so trickling bytes does not keep
    /// a connection alive.
    pub fn read_done(&mut self, key: usize, before: (bool, u32)) {
        let Some(slot) = self.slots.get(key) else { return };
        if slot.lingering || slot.doomed || slot.conn.out.is_some() {
            return;
        }
        if !slot.conn.mid_request() {
            self.set_deadline(key, self.timeouts.keepalive);
        } else if before != (true, slot.conn.answered) {
            self.set_deadline(key, self.timeouts.request);
        }
    }

    /// End of the client's stream. Answers already queued still go out.
    pub fn peer_closed(&mut self, key: usize) {
        let slot = &mut self.slots[key];
        slot.conn.closing = true;
        slot.doomed |= slot.conn.out.is_none() || slot.lingering;
    }

    pub fn fail(&mut self, key: usize) {
        self.slots[key].doomed = true;
    }

    /// The driver shut our side after the last answer; drain input for a while.
    pub fn linger(&mut self, key: usize) {
        let slot = &mut self.slots[key];
        slot.lingering = true;
        slot.conn = Conn::default();
        self.set_deadline(key, self.timeouts.linger);
    }

    pub fn remove(&mut self, key: usize) -> Slot<C> {
        self.slots.remove(key)
    }

    /// Push the slot's deadline `secs` from now. Filing happens only when the slot is not
    /// filed already at an earlier second (see `timer`).
    fn set_deadline(&mut self, key: usize, secs: u64) {
        let slot = &mut self.slots[key];
        slot.deadline = self.site.now + secs;
        if slot.filed == 0 || slot.deadline < slot.filed {
            slot.filed = self.wheel.schedule(Token::new(key, slot.generation), slot.deadline);
        }
    }

    /// Advance the clock; every connection whose deadline passed is either told 408 (a
    /// request was cut off) and set to close, or doomed. Their keys go to `touched`.
    pub fn expire(&mut self, now: u64, due: &mut Vec<(Token, u64)>, touched: &mut Vec<usize>) {
        self.site.tick(now);
        touched.clear();
        self.wheel.expire(now, due);
        for &(token, filed) in due.iter() {
            let Some(key) = self.live(token) else { continue };
            let slot = &mut self.slots[key];
            if slot.filed != filed {
                continue;
            }
            slot.filed = 0;
            if slot.deadline > now {
                slot.filed = self.wheel.schedule(token, slot.deadline);
                continue;
            }
            if slot.lingering || slot.conn.out.is_some() || !slot.conn.mid_request() {
                slot.doomed = true;
            } else {
                // A request that never finished: say so, then close.
                slot.conn = Conn::default();
                slot.conn.closing = true;
                let mut out = self.pool.pop().unwrap_or_default();
                response::error(&mut out.bytes, 408, &self.site.date, Persistence::Close, false, &[]);
                slot.conn.out = Some(out);
                self.set_deadline(key, self.timeouts.linger);
            }
            touched.push(key);
        }
    }
}

/// A shard: a core and the driver that does its I/O.
pub struct Shard<D: Driver> {
    driver: D,
    core: Core<D::ConnIo>,
}

impl<D: Driver> Shard<D> {
    pub fn new(listener: TcpListener, site: Site, timeouts: Timeouts, sizing: Sizing) -> io::Result<Self> {
        let core = Core::new(site, timeouts, sizing.max_conns);
        Ok(Shard { driver: D::new(listener, &sizing)?, core })
    }

    /// Run until `stop` is set (by a signal handler).
    pub fn run(&mut self, stop: &Arc<AtomicBool>) -> io::Result<()> {
        let (mut due, mut touched) = (Vec::new(), Vec::new());
        while !stop.load(Ordering::Relaxed) {
            self.driver.turn(&mut self.core)?;
            self.core.expire(now_secs(), &mut due, &mut touched);
            for &key in &touched {
                self.driver.settle(&mut self.core, key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection costs its slot and nothing else: no buffers, no boxes.
    #[test]
    fn idle_connection_is_small() {
        // The slab adds a discriminant (and a free-list index) to each slot.
        let slot_size = std::mem::size_of::<Slot<()>>() + 8;
        assert!(slot_size <= 128, "slab entry of an idle connection is about {slot_size} bytes");
        let conn = Conn::default();
        assert!(conn.pending.capacity() == 0 && conn.out.is_none());
    }
}
