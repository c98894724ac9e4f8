//! A shard: one pinned reactor owning a listener, a slab of connections, a timer wheel
//! and its site (file cache, Date). One pass of the loop: wait → events (accepts and
//! connection I/O) → expired timers. Nothing here is shared with another shard.

mod timer;

use crate::conn::{Conn, Outbox, Site};
use crate::driver::{Driver, Event, Token, sys};
use slab::Slab;
use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use timer::Wheel;

/// Per-shard read buffer: one pass reads at most this much from one socket.
const READ_BUF: usize = 64 * 1024;

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

struct Slot {
    stream: TcpStream,
    generation: u32,
    conn: Conn,
    deadline: u64,
    /// The second this slot is filed under in the wheel, 0 when it is not.
    filed: u64,
    /// The socket may have unread input we left there because output was blocked.
    read_paused: bool,
    /// Our side is shut; we only read and discard until the peer closes.
    lingering: bool,
    /// The peer has shut its side: read to the end of the stream.
    hangup: bool,
}

pub struct Shard<D> {
    driver: D,
    listener: TcpListener,
    slots: Slab<Slot>,
    site: Site,
    timeouts: Timeouts,
    max_conns: usize,
    read_buf: Box<[u8]>,
    out: Outbox,
    wheel: Wheel,
    generation: u32,
    accept_paused: bool,
}

/// The slot `token` names, unless it was closed (and maybe reused) since.
fn live(slots: &mut Slab<Slot>, token: Token) -> Option<&mut Slot> {
    slots.get_mut(token.index()).filter(|s| s.generation == token.generation())
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl<D: Driver> Shard<D> {
    pub fn new(listener: TcpListener, mut site: Site, timeouts: Timeouts, max_conns: usize) -> io::Result<Self> {
        let driver = D::new(listener.as_fd())?;
        let now = now_secs();
        site.tick(now);
        Ok(Shard {
            driver,
            listener,
            slots: Slab::new(),
            site,
            timeouts,
            max_conns,
            read_buf: vec![0; READ_BUF].into_boxed_slice(),
            out: Outbox::default(),
            wheel: Wheel::new(now),
            generation: 0,
            accept_paused: false,
        })
    }

    /// Run until `stop` is set (by a signal handler).
    pub fn run(&mut self, stop: &Arc<AtomicBool>) -> io::Result<()> {
        let mut events = Vec::with_capacity(512);
        let mut due = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            // While accepting is paused (fd limit), retry it often; otherwise wake once a
            // second for Date and timers.
            let timeout = if self.accept_paused { 100 } else { 1000 };
            self.driver.wait(&mut events, timeout)?;
            let now = now_secs();
            self.site.tick(now);
            for &ev in &events {
                if ev.token == Token::LISTENER {
                    self.accept_all();
                } else {
                    self.on_event(ev);
                }
            }
            if self.accept_paused {
                self.accept_all();
            }
            self.wheel.expire(now, &mut due);
            for &(token, filed) in &due {
                self.on_timer(token, filed, now);
            }
        }
        Ok(())
    }

    fn accept_all(&mut self) {
        self.accept_paused = false;
        while self.slots.len() < self.max_conns {
            let stream = match sys::accept(&self.listener) {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::ConnectionAborted) => continue,
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS: leave the rest in the backlog, retry soon.
                    if !matches!(e.raw_os_error(), Some(nix::libc::EMFILE | nix::libc::ENFILE)) {
                        eprintln!("accept: {e}");
                    }
                    break;
                }
            };
            self.generation = self.generation.wrapping_add(1) % u32::MAX;
            let entry = self.slots.vacant_entry();
            let token = Token::new(entry.key(), self.generation);
            if self.driver.watch(stream.as_fd(), token).is_err() {
                continue;
            }
            let slot = Slot {
                stream,
                generation: self.generation,
                conn: Conn::default(),
                deadline: 0,
                filed: 0,
                read_paused: false,
                lingering: false,
                hangup: false,
            };
            entry.insert(slot);
            self.set_deadline(token.index(), self.timeouts.request);
        }
        self.accept_paused = true;
    }

    fn on_event(&mut self, ev: Event) {
        let Some(slot) = live(&mut self.slots, ev.token) else { return };
        let paused = slot.conn.out.is_some();
        if ev.readable {
            if slot.lingering {
                return self.linger(ev.token.index());
            }
            slot.hangup |= ev.hangup;
            if paused {
                slot.read_paused = true;
            } else {
                self.read(ev.token.index());
            }
        }
        if ev.writable && paused && self.slots.contains(ev.token.index()) {
            self.write(ev.token.index());
        }
    }

    /// Read until EAGAIN, answering as we go; stop early when output blocks.
    fn read(&mut self, key: usize) {
        let before = (self.slots[key].conn.mid_request(), self.slots[key].conn.answered);
        let mut buf = std::mem::take(&mut self.read_buf);
        loop {
            let n = match sys::read(&self.slots[key].stream, &mut buf) {
                Ok(0) => {
                    self.peer_closed(key);
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(key);
                    break;
                }
            };
            if !self.process(key, &buf[..n]) {
                break;
            }
            // A short read drained the socket: any later byte brings a new edge, so the
            // read that would only say EAGAIN is skipped (one syscall per request saved).
            if n < buf.len() && !self.slots.get(key).is_some_and(|s| s.hangup) {
                break;
            }
        }
        self.read_buf = buf;
        if let Some(slot) = self.slots.get(key)
            && !slot.lingering
            && slot.conn.out.is_none()
        {
            // A request gets `request` seconds from its first byte, not from its latest:
            // trickling a byte at a time does not keep a connection alive.
            if !slot.conn.mid_request() {
                self.set_deadline(key, self.timeouts.keepalive);
            } else if before != (true, slot.conn.answered) {
                self.set_deadline(key, self.timeouts.request);
            }
        }
    }

    /// Feed `input` (plus any pending tail) to the connection and send what it answers.
    /// Returns whether to keep reading this socket.
    fn process(&mut self, key: usize, input: &[u8]) -> bool {
        let slot = &mut self.slots[key];
        let mut pending = std::mem::take(&mut slot.conn.pending);
        let from_pending = !pending.is_empty();
        if from_pending {
            pending.extend_from_slice(input);
        }
        let mut rest: &[u8] = if from_pending { &pending } else { input };
        let keep_reading = loop {
            let used = slot.conn.feed(rest, &mut self.site, &mut self.out);
            rest = &rest[used..];
            match sys::send(&slot.stream, &mut self.out) {
                Ok(true) => {}
                Ok(false) => slot.conn.out = Some(Box::new(self.out.take_rest())),
                Err(_) => {
                    self.out.clear();
                    self.close(key);
                    return false;
                }
            }
            if slot.conn.closing || slot.conn.out.is_some() || used == 0 || rest.is_empty() {
                break !slot.conn.closing && slot.conn.out.is_none();
            }
        };
        // Only an unparsed tail stays with the connection, and only as long as it must.
        let tail = rest.len();
        if from_pending {
            pending.drain(..pending.len() - tail);
            slot.conn.pending = if tail == 0 { Vec::new() } else { pending };
        } else if tail > 0 {
            slot.conn.pending = rest.to_vec();
        }
        if slot.conn.out.is_some() {
            slot.read_paused = true;
            self.set_deadline(key, self.timeouts.send);
        } else if slot.conn.closing {
            self.finish(key);
        }
        keep_reading
    }

    /// The socket took more: send what waited, then resume reading where we stopped.
    fn write(&mut self, key: usize) {
        let slot = &mut self.slots[key];
        let Some(out) = slot.conn.out.as_mut() else { return };
        match sys::send(&slot.stream, out) {
            Ok(false) => return self.set_deadline(key, self.timeouts.send),
            Ok(true) => slot.conn.out = None,
            Err(_) => return self.close(key),
        }
        if slot.conn.closing {
            return self.finish(key);
        }
        if std::mem::take(&mut slot.read_paused) {
            // Requests parsed but held back go first, then whatever the socket has.
            if self.process(key, &[]) {
                self.read(key);
            }
        } else {
            self.set_deadline(key, self.timeouts.keepalive);
        }
    }

    /// End of the client's stream. Answers already queued still go out.
    fn peer_closed(&mut self, key: usize) {
        let slot = &mut self.slots[key];
        slot.conn.closing = true;
        if slot.conn.out.is_none() {
            self.close(key);
        }
    }

    /// Everything queued has gone out and the connection is to close: shut our side and
    /// drain the client's input for a while, so unread input does not make the kernel
    /// reset the connection before the client has read our last response.
    fn finish(&mut self, key: usize) {
        let slot = &mut self.slots[key];
        if sys::shutdown_write(&slot.stream).is_err() {
            return self.close(key);
        }
        slot.lingering = true;
        slot.conn = Conn::default();
        self.set_deadline(key, self.timeouts.linger);
        self.linger(key);
    }

    fn linger(&mut self, key: usize) {
        // Not the shard's read buffer: this may run while a read holds it.
        let mut sink = [0u8; 4096];
        loop {
            match sys::read(&self.slots[key].stream, &mut sink) {
                Ok(0) => return self.close(key),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.close(key),
            }
        }
    }

    fn close(&mut self, key: usize) {
        // Dropping the stream closes the socket, which also removes it from epoll.
        self.slots.remove(key);
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

    fn on_timer(&mut self, token: Token, filed: u64, now: u64) {
        let Some(slot) = live(&mut self.slots, token) else { return };
        if slot.filed != filed {
            return;
        }
        slot.filed = 0;
        if slot.deadline > now {
            slot.filed = self.wheel.schedule(token, slot.deadline);
            return;
        }
        let key = token.index();
        if slot.lingering || slot.conn.out.is_some() || !slot.conn.mid_request() {
            return self.close(key);
        }
        // A request that never finished: say so, best effort, and close.
        slot.conn = Conn::default();
        crate::http::response::error(
            &mut self.out.bytes,
            408,
            &self.site.date,
            crate::http::response::Persistence::Close,
            false,
            &[],
        );
        let _ = sys::send(&slot.stream, &mut self.out);
        self.out.clear();
        self.close(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection costs its slot and nothing else: no buffers, no boxes.
    #[test]
    fn idle_connection_is_small() {
        // The slab adds a discriminant (and a free-list index) to each slot.
        let slot_size = std::mem::size_of::<Slot>() + 8;
        assert!(slot_size <= 128, "slab entry of an idle connection is about {slot_size} bytes");
        let conn = Conn::default();
        assert!(conn.pending.capacity() == 0 && conn.out.is_none());
    }
}
