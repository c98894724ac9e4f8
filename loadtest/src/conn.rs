//! One connection's life inside a thread's loop: connect, send (closed loop: keep
//! `--pipeline` requests in flight; open loop: send each at its intended time, at most
//! `--pipeline` in flight), read and check the answers, and replace it when it fails.
//!
//! An idle connection sends one request, reads the answer and then stays silent; it is not
//! replaced once it was established (so `idle_open` says how many the server still holds).
//! It is *held* once its answer arrived: the server has accepted it and done all it will
//! do for it. With `--warmup`, an active connection opens the same way before the load (it
//! is *warming*: one request, not counted, then held), and joins the load when it begins.
//! Only answers to requests meant for the measured window (from `Ctx::measure_from`) count.
//!
//! With `--tls` a connection's bytes pass through its TLS state ([`tls`]); without, the
//! socket is read into the response reader and written from `out` directly, as before.

mod connect;
mod plain;
mod tls;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollFlags};

use crate::cli::Config;
use crate::net;
use crate::parse::{Reader, Response};
use crate::stats::{ErrorKind, Stats};
use crate::tls::ThreadTls;

/// Connections per thread at most that were started and have not had their first answer
/// (connecting, or idle or warming and waiting for its answer). On loopback a connect
/// completes within the connect() call, before the server has accepted it, so counting only
/// connects in progress would not bound what waits in the server's accept queue; counting
/// until the answer does (a listener whose queue is full drops the SYN, and the client resends it
/// only after a second). 512 per thread stays under one listener's default backlog
/// (net.core.somaxconn 4096) even at 8 threads or processes on one shard.
pub const MAX_CONNECTING: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// In the connect queue.
    Queued,
    /// Waiting to retry a failed connect.
    Waiting(Instant),
    Connecting(Instant),
    Open,
    /// An idle connection that ended; never reopened.
    Done,
}

struct Flight {
    intended: Instant,
    sent: Instant,
}

pub struct Conn {
    fd: Option<OwnedFd>,
    /// Bumped on every connect and close, so events of an earlier socket are ignored.
    pub generation: u32,
    pub state: State,
    pub idle: bool,
    reader: Reader,
    out: Vec<u8>,
    out_pos: usize,
    flights: VecDeque<Flight>,
    next_path: usize,
    /// Open loop: when the next request is due, and whether the heap holds an entry for it.
    next_at: Instant,
    scheduled: bool,
    /// An idle or warming connection's one request was sent.
    idle_sent: bool,
    /// Its answer arrived (it counts in `Ctx::idle_held` or `Ctx::warm_held` while open).
    idle_answered: bool,
    /// An active connection opening before the load (`--warmup`): it does as an idle one
    /// does until the load begins.
    pub warming: bool,
    /// `--tls`: the session, from the TCP connect's completion to the close. Boxed, so a
    /// plain connection carries one pointer for it.
    tls: Option<Box<rustls::ClientConnection>>,
}

impl Conn {
    pub fn new(idle: bool, first_path: usize) -> Conn {
        Conn {
            fd: None,
            generation: 0,
            state: State::Queued,
            idle,
            reader: Reader::default(),
            out: Vec::new(),
            out_pos: 0,
            flights: VecDeque::new(),
            next_path: first_path,
            next_at: Instant::now(),
            scheduled: false,
            idle_sent: false,
            idle_answered: false,
            warming: false,
            tls: None,
        }
    }

    /// Open loop: the first request is due at `at`.
    pub fn start_at(&mut self, at: Instant) {
        self.next_at = at;
    }

    /// The oldest unanswered request was sent before `t`.
    pub fn overdue(&self, t: Instant) -> bool {
        self.flights.front().is_some_and(|f| f.sent < t)
    }

    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }
}

/// A thread's state shared by all its connections.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub epoll: Epoll,
    pub stats: Stats,
    /// Open loop: the interval between one connection's requests.
    pub interval: Option<Duration>,
    pub buf: Vec<u8>,
    responses: Vec<Response>,
    pub queue: VecDeque<usize>,
    pub heap: BinaryHeap<Reverse<(Instant, usize)>>,
    pub connecting: usize,
    pub open: u64,
    pub idle_open: u64,
    /// Idle connections open whose answer arrived.
    pub idle_held: u64,
    /// Warming connections open, and those of them whose answer arrived.
    pub warm_open: u64,
    pub warm_held: u64,
    /// Requests meant for this moment or later are measured (`None`: the load has not begun).
    pub measure_from: Option<Instant>,
    /// This thread's first connection's index in the whole run (spreads source addresses).
    pub first_slot: usize,
    pub now: Instant,
    /// `--tls`: what this thread's connections start their sessions with.
    tls: Option<ThreadTls>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        cfg: &'a Config,
        epoll: Epoll,
        interval: Option<Duration>,
        first_slot: usize,
        tls: Option<ThreadTls>,
    ) -> Ctx<'a> {
        Ctx {
            cfg,
            epoll,
            stats: Stats::default(),
            interval,
            buf: vec![0; 64 * 1024],
            responses: Vec::new(),
            queue: VecDeque::new(),
            heap: BinaryHeap::new(),
            connecting: 0,
            open: 0,
            idle_open: 0,
            idle_held: 0,
            warm_open: 0,
            warm_held: 0,
            measure_from: None,
            first_slot,
            now: Instant::now(),
            tls,
        }
    }

    /// Connections started and not yet answered (what [`MAX_CONNECTING`] bounds).
    pub fn in_progress(&self) -> usize {
        self.connecting + (self.idle_open - self.idle_held + self.warm_open - self.warm_held) as usize
    }

    /// Whether the measured window has begun.
    pub fn measuring(&self) -> bool {
        self.measure_from.is_some_and(|m| self.now >= m)
    }

    /// The load begins for `c`, an active connection that was warming (or not yet open).
    pub fn begin_load(&mut self, c: &mut Conn, slot: usize) {
        if c.warming && c.state == State::Open {
            self.warm_open -= 1;
            self.warm_held -= u64::from(c.idle_answered);
        }
        c.warming = false;
        self.pump(c, slot);
    }

    // Inlined into the loop, and `deliver` into the plain read, as they were before the TLS
    // path (another codegen unit) came in between.
    #[inline]
    pub fn on_event(&mut self, c: &mut Conn, slot: usize, ev: EpollFlags) {
        match c.state {
            State::Connecting(since) => {
                if !ev.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
                    return;
                }
                if let Some(e) = net::socket_error(c.fd.as_ref().expect("connecting has an fd")) {
                    return self.abandon_connect(c, e);
                }
                self.connecting -= 1;
                c.state = State::Open;
                self.stats.connects += 1;
                self.open += 1;
                self.idle_open += u64::from(c.idle);
                self.warm_open += u64::from(c.warming);
                if self.tls.is_some() && !self.tls_begin(c) {
                    return self.end(c, slot);
                }
                self.pump(c, slot);
                // --new-conn, closed loop: the latency of the connection's one request counts
                // its connect (open loop counts from the intended time, whatever came before).
                if self.cfg.new_conn
                    && self.interval.is_none()
                    && let Some(f) = c.flights.front_mut()
                {
                    f.sent = since;
                }
            }
            State::Open => {
                let read_ev =
                    EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
                if ev.intersects(read_ev) {
                    self.read(c, slot, ev.contains(EpollFlags::EPOLLRDHUP));
                }
                // A TLS connection may have records to send (its handshake) with `out` empty.
                if c.state == State::Open
                    && ev.contains(EpollFlags::EPOLLOUT)
                    && (c.out_pos < c.out.len() || c.tls.is_some())
                {
                    self.flush(c, slot);
                }
            }
            _ => {}
        }
    }

    /// Check and record the responses just parsed; true when the connection must close.
    #[inline]
    fn deliver(&mut self, c: &mut Conn) -> bool {
        let mut close = false;
        for resp in self.responses.drain(..) {
            let Some(f) = c.flights.pop_front() else {
                // An answer to nothing: the stream cannot be trusted any more.
                self.stats.error(ErrorKind::Framing);
                return true;
            };
            // An idle or warming connection's one answer is checked and counted apart: its
            // latency belongs to the ramp-up, not to the load; so does a warm-up's.
            if c.idle || c.warming {
                if c.idle {
                    self.stats.idle_answered += 1;
                } else {
                    self.stats.uncounted += 1;
                }
                if !c.idle_answered {
                    c.idle_answered = true;
                    *(if c.idle { &mut self.idle_held } else { &mut self.warm_held }) += 1;
                }
            } else if self.measure_from.is_none_or(|m| f.intended < m) {
                self.stats.uncounted += 1;
            } else {
                let from = if self.interval.is_none() { f.sent } else { f.intended };
                self.stats.record_us(self.now.saturating_duration_since(from).as_micros() as u64);
                self.stats.requests += 1;
            }
            self.stats.bytes += resp.body_len;
            if !(200..400).contains(&resp.status) {
                self.stats.error(ErrorKind::Status);
            } else if self.cfg.expect_bytes.is_some_and(|n| resp.has_body && resp.body_len != n) {
                self.stats.error(ErrorKind::Length);
            }
            // --new-conn: the client ends the connection once its one request is answered.
            close |= resp.close || (self.cfg.new_conn && !c.idle);
        }
        close
    }

    /// The server closed the connection.
    fn eof(&mut self, c: &mut Conn, slot: usize) {
        if let Err(e) = c.reader.eof() {
            self.stats.error(e.into());
        } else if !c.flights.is_empty() || c.idle {
            self.stats.error(ErrorKind::Closed);
        }
        // An active connection closed between requests is legal HTTP: just replace it.
        self.end(c, slot);
    }

    /// Close the connection (whatever is in flight is dropped, counted by the caller) and
    /// queue its replacement; an idle one that was established is not replaced.
    pub fn end(&mut self, c: &mut Conn, slot: usize) {
        if let State::Connecting(_) = c.state {
            self.connecting -= 1;
        }
        if c.state == State::Open {
            self.open -= 1;
            self.idle_open -= u64::from(c.idle);
            self.idle_held -= u64::from(c.idle && c.idle_answered);
            self.warm_open -= u64::from(c.warming);
            self.warm_held -= u64::from(c.warming && c.idle_answered);
        }
        c.fd = None;
        c.tls = None;
        c.generation = c.generation.wrapping_add(1);
        c.reader = Reader::default();
        c.out.clear();
        c.out_pos = 0;
        c.flights.clear();
        if c.idle && c.idle_sent {
            c.state = State::Done;
        } else {
            // Its replacement (a warming one's too) sends its one request again.
            (c.idle_sent, c.idle_answered) = (false, false);
            c.state = State::Queued;
            self.queue.push_back(slot);
        }
    }

    /// Send whatever is due on `c`.
    pub fn pump(&mut self, c: &mut Conn, slot: usize) {
        if c.state != State::Open {
            return;
        }
        let depth = self.cfg.pipeline;
        if c.idle || c.warming {
            if !c.idle_sent {
                c.idle_sent = true;
                self.send(c, self.now);
            }
        } else if let Some(iv) = self.interval {
            while c.flights.len() < depth && c.next_at <= self.now {
                let at = c.next_at;
                self.send(c, at);
                c.next_at += iv;
            }
            if c.flights.len() < depth && !c.scheduled {
                self.heap.push(Reverse((c.next_at, slot)));
                c.scheduled = true;
            }
        } else {
            while c.flights.len() < depth {
                self.send(c, self.now);
            }
        }
        if c.out_pos < c.out.len() || c.tls.is_some() {
            self.flush(c, slot);
        }
    }

    /// A heap entry for `c` came due.
    pub fn due(&mut self, c: &mut Conn, slot: usize) {
        c.scheduled = false;
        self.pump(c, slot);
    }

    fn send(&mut self, c: &mut Conn, intended: Instant) {
        let reqs = &self.cfg.requests;
        c.out.extend_from_slice(&reqs[c.next_path]);
        c.next_path = (c.next_path + 1) % reqs.len();
        c.flights.push_back(Flight { intended, sent: self.now });
    }
}
