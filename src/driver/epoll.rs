//! Edge-triggered epoll: each socket is registered once, for both directions, and never
//! modified. An edge only sets the connection's readiness; the core's action says whether
//! to read or write, and a syscall is made only while the socket is ready in that
//! direction. Readiness is cleared only by EAGAIN (or a short read or write, which means
//! the same), so no edge is ever lost, even when the core yields a connection before it
//! drained the socket. One read buffer serves every connection of the shard.

use super::{ACCEPT_BUDGET, Admitted, Driver, Sizing, accept_failed, admit, sys};
use crate::conn::Segment;
use crate::lifecycle::{Action, Core, Event, INPUT_READ, Step, Token};
use crate::transport::Transport;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

/// Listener number `i`'s token is `LISTENER | i`: a connection's token has its top byte
/// clear (`Token`).
const LISTENER: u64 = 0xff << 56;
const BATCH: usize = 512;

/// A connection's socket and what epoll last said of it.
pub struct ConnIo {
    stream: TcpStream,
    readable: bool,
    writable: bool,
    /// The client shut its side (or the socket failed): a read must go on to see it.
    hangup: bool,
    /// The core's last action was to take input and the socket had none: the action stands
    /// (see `Action::Receive`), so the next input edge carries it out without asking again.
    awaiting_input: bool,
}

pub struct EpollDriver {
    epoll: Epoll,
    events: Box<[EpollEvent]>,
    /// Events the last wait returned, and the next of them to handle (a dispatch stops
    /// early when the core's turn is full; the rest wait for the next).
    pending: usize,
    next: usize,
    /// By listener number; empty once the shard stopped accepting.
    listeners: Vec<TcpListener>,
    buf: Box<[u8]>,
    /// By listener number: it may have connections waiting.
    accept_ready: Vec<bool>,
    /// The listener to accept from next: each ready one gives a connection in turn, so a
    /// busy one does not take every accept of a turn.
    accept_next: usize,
    /// Accepting stopped at the turn's budget, not at EAGAIN.
    accept_more: bool,
    /// Accepted, waiting for the core to admit them (at the cap, for room being made), with
    /// their listener's number.
    waiting: VecDeque<(TcpStream, usize)>,
}

impl Driver for EpollDriver {
    const NAME: &'static str = "epoll";
    type ConnIo = ConnIo;

    fn new(listeners: Vec<TcpListener>, _sizing: &Sizing) -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        for (i, listener) in listeners.iter().enumerate() {
            let token = LISTENER | i as u64;
            epoll.add(listener.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, token))?;
        }
        Ok(EpollDriver {
            epoll,
            events: vec![EpollEvent::empty(); BATCH].into_boxed_slice(),
            pending: 0,
            next: 0,
            buf: vec![0; INPUT_READ].into_boxed_slice(),
            accept_ready: vec![false; listeners.len()],
            accept_next: 0,
            listeners,
            accept_more: false,
            waiting: VecDeque::new(),
        })
    }

    fn busy(&self) -> bool {
        self.accept_more || self.next < self.pending
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        if self.next < self.pending {
            return Ok(());
        }
        let ms = if self.busy() { 0 } else { timeout.as_millis().min(u128::from(u16::MAX)) as u16 };
        self.pending = match self.epoll.wait(&mut self.events, ms) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        self.next = 0;
        Ok(())
    }

    fn dispatch<T: Transport>(&mut self, core: &mut Core<ConnIo, T>) {
        let input = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        let hangup = EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        let output = EpollFlags::EPOLLOUT | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        while self.next < self.pending && !core.turn_full() {
            let i = self.next;
            self.next += 1;
            let (flags, data) = (self.events[i].events(), self.events[i].data());
            if data & LISTENER == LISTENER {
                // A stale edge of a listener let go of finds no flag.
                if let Some(ready) = self.accept_ready.get_mut((data & !LISTENER) as usize) {
                    *ready = true;
                }
                continue;
            }
            let token = Token(data);
            let Some(io) = core.io(token) else { continue };
            io.readable |= flags.intersects(input);
            io.hangup |= flags.intersects(hangup);
            io.writable |= flags.intersects(output);
            let standing = if io.awaiting_input && io.readable { None } else { Some(Event::Resume) };
            self.drive(core, token, standing);
        }
        self.accept(core, ACCEPT_BUDGET);
    }

    fn resume<T: Transport>(&mut self, core: &mut Core<ConnIo, T>, token: Token) {
        self.drive(core, token, Some(Event::Resume));
    }

    fn stop_accepting<T: Transport>(&mut self, core: &mut Core<ConnIo, T>) {
        // A listener's open file may live on in other processes (the master, a new
        // generation of shards), and epoll watches the file, not this descriptor: without
        // the delete, its edges would keep coming after the close.
        for listener in &self.listeners {
            let _ = self.epoll.delete(listener.as_fd());
        }
        self.accept_ready.fill(true);
        self.accept(core, usize::MAX);
        self.listeners.clear();
        self.accept_ready.clear();
        self.accept_more = false;
    }

    fn listening(&self) -> bool {
        !self.listeners.is_empty()
    }

    fn quiet(&self) -> bool {
        self.waiting.is_empty()
    }

    fn shutdown<T: Transport>(&mut self, core: &mut Core<ConnIo, T>) -> bool {
        // Dropping a socket closes it, which also removes it from epoll.
        for token in core.tokens() {
            core.release(token);
        }
        self.waiting.clear();
        true
    }
}

impl EpollDriver {
    /// Report `first` (or, with `None`, carry out the standing receive first), then carry
    /// out actions and report their outcomes until one has to wait for the socket.
    fn drive<T: Transport>(&mut self, core: &mut Core<ConnIo, T>, token: Token, first: Option<Event<'static>>) {
        let mut event: Event = match first {
            Some(event) => event,
            None => match core.io(token).and_then(|io| receive(io, &mut self.buf)) {
                Some(event) => event,
                None => return,
            },
        };
        loop {
            let Some(Step { action, io, .. }) = core.step(token, event) else { return };
            io.awaiting_input = false;
            let outcome = match action {
                Action::Receive | Action::Drain => {
                    let got = receive(io, &mut self.buf);
                    io.awaiting_input = got.is_none();
                    got
                }
                Action::Send(offer) => send(io, offer.segment()),
                Action::Shutdown => Some(sys::shutdown_write(&io.stream).map_or(Event::Failed, |()| Event::Shut)),
                Action::Yield => None,
                Action::Close | Action::Abort => {
                    let abort = matches!(action, Action::Abort);
                    if let Some(io) = core.release(token)
                        && abort
                    {
                        let _ = sys::reset_on_close(&io.stream);
                    }
                    None
                }
            };
            match outcome {
                Some(next) => event = next,
                None => return,
            }
        }
    }

    /// Accept while the core wants more, up to the turn's budget, giving each connection
    /// to the core as it admits them.
    fn accept<T: Transport>(&mut self, core: &mut Core<ConnIo, T>, mut budget: usize) {
        self.accept_more = false;
        self.admit(core, &mut budget);
        while let Some(i) = self.next_ready()
            && core.wants_accepts(self.waiting.len())
        {
            if budget == 0 {
                self.accept_more = true;
                return;
            }
            self.accept_next = i + 1;
            match sys::accept(&self.listeners[i]) {
                Ok(stream) => self.waiting.push_back((stream, i)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.accept_ready[i] = false,
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::ConnectionAborted) => {}
                Err(e) => return accept_failed(core, &e),
            }
            self.admit(core, &mut budget);
        }
    }

    /// The first listener that may have connections waiting, from `accept_next` round.
    fn next_ready(&self) -> Option<usize> {
        let n = self.accept_ready.len();
        (0..n).map(|k| (self.accept_next + k) % n).find(|&i| self.accept_ready[i])
    }

    /// Start what the core admits of the connections waiting.
    fn admit<T: Transport>(&mut self, core: &mut Core<ConnIo, T>, budget: &mut usize) {
        let new_io = |stream| ConnIo { stream, readable: false, writable: true, hangup: false, awaiting_input: true };
        while let Some(admitted) = admit(core, &mut self.waiting, budget, new_io) {
            match admitted {
                Admitted::New(token) => {
                    let flags =
                        EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
                    let registered =
                        core.io(token).map(|io| self.epoll.add(io.stream.as_fd(), EpollEvent::new(flags, token.0)));
                    if let Some(Err(_)) = registered {
                        self.drive(core, token, Some(Event::Failed));
                    }
                }
                Admitted::Closing(victim) => self.drive(core, victim, Some(Event::Resume)),
            }
        }
    }
}

/// Read once if the socket has input; what the read came to, or `None` to wait.
fn receive<'b>(io: &mut ConnIo, buf: &'b mut [u8]) -> Option<Event<'b>> {
    while io.readable {
        match sys::read(&io.stream, buf) {
            Ok(0) => return Some(Event::PeerClosed),
            Ok(n) => {
                // A short read drained the socket: any later byte brings a new edge, so the
                // read that would only say EAGAIN is skipped (one syscall per request
                // saved) unless the peer hung up, which no later edge would announce.
                io.readable = n == buf.len() || io.hangup;
                return Some(Event::Received(&buf[..n]));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => io.readable = false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Some(Event::Failed),
        }
    }
    None
}

/// Send once if the socket has room.
fn send(io: &mut ConnIo, segment: Segment<'_>) -> Option<Event<'static>> {
    while io.writable {
        let (sent, len) = match segment {
            Segment::Bytes(bytes) => (sys::write(&io.stream, bytes), bytes.len()),
            Segment::File(range) => (sys::send_file(&io.stream, range), sys::send_file_len(range)),
        };
        match sent {
            // A file that shrank under us, or a socket that takes nothing: the response
            // can no longer match its Content-Length, so the connection must end.
            Ok(0) => return Some(Event::SendFailed),
            Ok(n) => {
                // A short send filled the socket; the next would only say EAGAIN.
                io.writable = n == len;
                return Some(Event::Sent(n));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => io.writable = false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Some(Event::SendFailed),
        }
    }
    None
}
