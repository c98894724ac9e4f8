//! One connection's life inside a thread's loop: connect, send (closed loop: keep
//! `--pipeline` requests in flight; open loop: send each at its intended time, at most
//! `--pipeline` in flight), read and check the answers, and replace it when it fails.
//!
//! An idle connection sends one request, reads the answer and then stays silent; it is not
//! replaced once it was established (so `idle_open` says how many the server still holds).
//! It is *held* once its answer arrived: the server has accepted it and done all it will
//! do for it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use nix::sys::socket::{self, MsgFlags};

use crate::cli::Config;
use crate::net;
use crate::parse::{Reader, Response};
use crate::stats::{ErrorKind, Stats};

/// Connections per thread at most that were started and have not had their first answer
/// (connecting, or idle and waiting for its answer). On loopback a connect completes within
/// the connect() call, before the server has accepted it, so counting only connects in
/// progress would not bound what waits in the server's accept queue; counting until the
/// answer does (a listener whose queue is full drops the SYN, and the client resends it
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
    idle_sent: bool,
    /// An idle connection's answer arrived (it counts in `Ctx::idle_held` while open).
    idle_answered: bool,
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
    /// This thread's first connection's index in the whole run (spreads source addresses).
    pub first_slot: usize,
    pub now: Instant,
}

impl<'a> Ctx<'a> {
    pub fn new(cfg: &'a Config, epoll: Epoll, interval: Option<Duration>, first_slot: usize) -> Ctx<'a> {
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
            first_slot,
            now: Instant::now(),
        }
    }

    /// Connections started and not yet answered (what [`MAX_CONNECTING`] bounds).
    pub fn in_progress(&self) -> usize {
        self.connecting + (self.idle_open - self.idle_held) as usize
    }

    pub fn start_connect(&mut self, c: &mut Conn, slot: usize) {
        let sources = &self.cfg.sources;
        let src = (!sources.is_empty()).then(|| sources[(self.first_slot + slot) % sources.len()]);
        let fd = match net::connect(self.cfg.addr, src) {
            Ok(fd) => fd,
            Err(e) => return self.connect_failed(c, e),
        };
        c.generation = c.generation.wrapping_add(1);
        let data = (slot as u64) << 32 | u64::from(c.generation);
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        if let Err(e) = self.epoll.add(&fd, EpollEvent::new(flags, data)) {
            return self.connect_failed(c, e);
        }
        c.fd = Some(fd);
        c.state = State::Connecting(self.now);
        self.connecting += 1;
    }

    /// Count a failed connect and schedule the retry.
    pub fn connect_failed(&mut self, c: &mut Conn, e: Errno) {
        self.stats.error(ErrorKind::Connect);
        let starved = match e {
            Errno::EADDRNOTAVAIL => {
                self.stats.no_ports += 1;
                true
            }
            Errno::EMFILE | Errno::ENFILE => {
                self.stats.no_fds += 1;
                true
            }
            _ => false,
        };
        let backoff = Duration::from_millis(if starved { 1000 } else { 100 });
        c.state = State::Waiting(self.now + backoff);
    }

    /// A connect in progress failed (`e`) or timed out (ETIMEDOUT): close it, retry later.
    pub fn abandon_connect(&mut self, c: &mut Conn, e: Errno) {
        self.connecting -= 1;
        c.fd = None;
        c.generation = c.generation.wrapping_add(1);
        self.connect_failed(c, e);
    }

    pub fn on_event(&mut self, c: &mut Conn, slot: usize, ev: EpollFlags) {
        match c.state {
            State::Connecting(_) => {
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
                self.pump(c, slot);
            }
            State::Open => {
                let read_ev =
                    EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
                if ev.intersects(read_ev) {
                    self.read(c, slot, ev.contains(EpollFlags::EPOLLRDHUP));
                }
                if c.state == State::Open && ev.contains(EpollFlags::EPOLLOUT) && c.out_pos < c.out.len() {
                    self.flush(c, slot);
                }
            }
            _ => {}
        }
    }

    fn read(&mut self, c: &mut Conn, slot: usize, hup: bool) {
        loop {
            let fd = c.fd.as_ref().expect("open has an fd");
            match nix::unistd::read(fd, &mut self.buf) {
                Ok(0) => return self.eof(c, slot),
                Ok(n) => {
                    let parsed = c.reader.feed(&self.buf[..n], &mut self.responses);
                    let close = self.deliver(c);
                    if let Err(e) = parsed {
                        self.stats.error(e.into());
                        return self.end(c, slot);
                    }
                    if close {
                        return self.end(c, slot);
                    }
                    // A short read drained the socket; a later arrival is a new edge.
                    if n < self.buf.len() && !hup {
                        break;
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    self.stats.error(ErrorKind::Reset);
                    return self.end(c, slot);
                }
            }
        }
        self.pump(c, slot);
    }

    /// Check and record the responses just parsed; true when the connection must close.
    fn deliver(&mut self, c: &mut Conn) -> bool {
        let mut close = false;
        for resp in self.responses.drain(..) {
            let Some(f) = c.flights.pop_front() else {
                // An answer to nothing: the stream cannot be trusted any more.
                self.stats.error(ErrorKind::Framing);
                return true;
            };
            // An idle connection's one answer is checked and counted apart: its latency
            // belongs to the ramp-up, not to the load.
            if c.idle {
                self.stats.idle_answered += 1;
                if !c.idle_answered {
                    c.idle_answered = true;
                    self.idle_held += 1;
                }
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
            close |= resp.close;
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
            self.idle_held -= u64::from(c.idle_answered);
        }
        c.fd = None;
        c.generation = c.generation.wrapping_add(1);
        c.reader = Reader::default();
        c.out.clear();
        c.out_pos = 0;
        c.flights.clear();
        if c.idle && c.idle_sent {
            c.state = State::Done;
        } else {
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
        if c.idle {
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
        if c.out_pos < c.out.len() {
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

    fn flush(&mut self, c: &mut Conn, slot: usize) {
        while c.out_pos < c.out.len() {
            let fd = c.fd.as_ref().expect("open has an fd").as_raw_fd();
            match socket::send(fd, &c.out[c.out_pos..], MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => c.out_pos += n,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    self.stats.error(ErrorKind::Reset);
                    return self.end(c, slot);
                }
            }
        }
        c.out.clear();
        c.out_pos = 0;
    }
}
