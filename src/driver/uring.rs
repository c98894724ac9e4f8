//! io_uring: completions, not readiness. One ring per shard (created in the shard's own
//! process), a multishot accept on the shard's listener, a multishot receive per
//! connection into a ring of provided buffers (an idle connection holds none), and one
//! send in flight per connection, over bytes that stay put in the connection's outbox
//! until it completes. File ranges go out with sendfile(2) on the non-blocking socket,
//! waiting for room with a poll operation: measured against reading each chunk through
//! the ring and sending it, it costs a quarter of the CPU (see README). Each completion is
//! one event for the core; a slot is released only when none of its operations is in
//! flight.

use super::probe::{limited_receive, receive_limit_works};
use super::ring::{BUF_GROUP, Completion, OP_CANCEL, Ring, Uring};
use super::{ACCEPT_BUDGET, Admitted, Driver, Sizing, accept_failed, admit, sys};
use crate::conn::Segment;
use crate::lifecycle::{Action, Core, Event, Step, Token};
use io_uring::types::{CancelBuilder, Fd};
use io_uring::{cqueue, opcode};
use nix::libc;
use std::collections::VecDeque;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

pub use super::ring::probe;

// Operation tags, in the top byte of user_data beside the connection's token.
const OP_ACCEPT: u64 = 1 << 56;
const OP_RECV: u64 = 2 << 56;
const OP_SEND: u64 = 3 << 56;
/// Waiting for a full socket to take more of a file range.
const OP_POLL: u64 = 4 << 56;
const OP_MASK: u64 = 0xff << 56;

/// Provided receive buffers: small, since requests are; a larger read arrives in several.
const RECV_BUF: usize = 4096;

/// A connection's socket and its operations in flight: at most a receive and a send (or a
/// poll); cancellations are the ring's, not the connection's.
pub struct ConnIo {
    stream: TcpStream,
    /// A receive is in flight (its last completion has not arrived).
    recv_armed: bool,
    /// The receive is being cancelled to stop input (the core wants none for now).
    recv_cancelling: bool,
    /// A send, or a poll for room to send a file range, is in flight.
    sending: Sending,
    /// Closing: everything in flight on the socket is being cancelled.
    cancelled: bool,
}

/// What of a connection's output is in flight.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sending {
    Nothing,
    /// A send over the bytes the core lent (`OP_SEND`).
    Bytes,
    /// A poll for room to send a file range (`OP_POLL`).
    Poll,
}

pub struct UringDriver {
    uring: Uring,
    /// `None` once the shard stopped accepting and the multishot accept on it ended: the
    /// listener is kept open until then, so the accept never names a closed descriptor.
    listener: Option<TcpListener>,
    /// `stop_accepting` was called.
    stopped: bool,
    /// The kernel ends a multishot receive at a byte limit (`probe::limited_receive`).
    limited: bool,
    accept_armed: bool,
    accept_cancelling: bool,
    /// Completions reaped, and the next of them to handle (a dispatch stops early when the
    /// core's turn is full; the rest wait for the next).
    completions: Vec<Completion>,
    next: usize,
    /// Connections accepted and not yet given a slot.
    overflow: VecDeque<TcpStream>,
    /// Admitting stopped at the turn's budget.
    admit_more: bool,
}

impl Driver for UringDriver {
    const NAME: &'static str = "uring";
    type ConnIo = ConnIo;

    fn new(listener: TcpListener, sizing: &Sizing) -> io::Result<Self> {
        // One 4 KiB buffer per 64 connections, within [64, 256] (at most 1 MiB a shard):
        // enough for a turn's burst of requests, nothing for connections that are idle.
        // The ring hands buffers out in order, so every one gets touched: a bigger ring
        // is resident memory (1024 buffers measured ~430 B more RSS per held connection
        // at 10,000). A burst beyond it ends receives with ENOBUFS, which re-arm next turn.
        let derived = (sizing.max_conns / 64).clamp(64, 256).next_power_of_two() as u16;
        let uring = Uring::new(1024, sizing.recv_buffers.unwrap_or(derived), RECV_BUF)?;
        let mut driver = UringDriver {
            uring,
            listener: Some(listener),
            stopped: false,
            limited: receive_limit_works(),
            accept_armed: false,
            accept_cancelling: false,
            completions: Vec::new(),
            next: 0,
            overflow: VecDeque::new(),
            admit_more: false,
        };
        // Posted before the first wait: connections that arrive meanwhile are taken at
        // once, not after the first wait times out.
        driver.accepting(true);
        Ok(driver)
    }

    fn busy(&self) -> bool {
        self.admit_more || self.uring.ring.has_backlog() || self.next < self.completions.len()
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        if let Some(e) = self.uring.ring.take_failure() {
            return Err(e);
        }
        let timeout = if self.busy() { Duration::ZERO } else { timeout };
        self.uring.ring.submit_and_wait(timeout)
    }

    fn dispatch(&mut self, core: &mut Core<ConnIo>) {
        if self.next == self.completions.len() {
            self.completions.clear();
            self.next = 0;
            self.uring.ring.reap(&mut self.completions);
        }
        while self.next < self.completions.len() && !core.turn_full() {
            let (user_data, result, flags) = self.completions[self.next];
            self.next += 1;
            self.complete(core, user_data, result, flags);
        }
        self.uring.bufs.publish();
        self.admit(core);
        self.arm_accept(core);
    }

    fn resume(&mut self, core: &mut Core<ConnIo>, token: Token) {
        drive(&mut self.uring.ring, self.limited, core, token, Event::Resume);
    }

    fn stop_accepting(&mut self, core: &mut Core<ConnIo>) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        // What the multishot accept takes before its cancellation lands still arrives, and
        // is served; what is queued now is taken here. The listener closes once the
        // accept's last completion is in (`accepted`).
        self.accepting(false);
        if let Some(listener) = &self.listener {
            loop {
                match sys::accept(listener) {
                    Ok(stream) => self.overflow.push_back(stream),
                    Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => {}
                    Err(_) => break,
                }
            }
        }
        self.release_listener();
        self.admit(core);
    }

    fn quiet(&self) -> bool {
        !self.accept_armed && self.overflow.is_empty()
    }

    fn shutdown(&mut self, core: &mut Core<ConnIo>) -> bool {
        if !self.uring.ring.quiesce() {
            return false;
        }
        core.quiesced();
        for token in core.tokens() {
            core.release(token);
        }
        self.overflow.clear();
        true
    }
}

impl UringDriver {
    fn complete(&mut self, core: &mut Core<ConnIo>, user_data: u64, result: i32, flags: u32) {
        let op = user_data & OP_MASK;
        if op == OP_ACCEPT {
            return self.accepted(core, result, flags);
        }
        let token = Token(user_data & !OP_MASK);
        let more = cqueue::more(flags);
        let io = match core.io(token) {
            Some(io) if op != OP_CANCEL => io,
            // A slot is released only when none of its operations is in flight, so only a
            // cancellation lands here; a buffer must still go back.
            _ => {
                if let Some(bid) = cqueue::buffer_select(flags) {
                    self.uring.bufs.release(bid, result.max(0) as usize, cqueue::buffer_more(flags));
                }
                return;
            }
        };
        let event = match op {
            OP_RECV => {
                if !more {
                    io.recv_armed = false;
                    io.recv_cancelling = false;
                }
                match result {
                    n if n > 0 => {
                        let bid = cqueue::buffer_select(flags).expect("a receive into a provided buffer names it");
                        let Uring { ring, bufs } = &mut self.uring;
                        drive(ring, self.limited, core, token, Event::Received(bufs.get(bid, n as usize)));
                        bufs.release(bid, n as usize, cqueue::buffer_more(flags));
                        return;
                    }
                    0 => Event::PeerClosed,
                    // Every provided buffer was in use: they are back (published) before the
                    // next submission, and the ring gets more (within its size) for the next
                    // burst. The receive ended without news: the core says whether to post
                    // another.
                    e if e == -libc::ENOBUFS => {
                        self.uring.bufs.grow();
                        Event::Resume
                    }
                    e if e == -libc::ECANCELED => Event::Resume,
                    _ => Event::Failed,
                }
            }
            OP_SEND => {
                io.sending = Sending::Nothing;
                if result > 0 { Event::Sent(result as usize) } else { Event::SendFailed }
            }
            // Room in the socket for the file range (or the poll failed): the send the core
            // offered is still to be made, and the core offers it again.
            _ => {
                io.sending = Sending::Nothing;
                if result >= 0 { Event::Resume } else { Event::SendFailed }
            }
        };
        drive(&mut self.uring.ring, self.limited, core, token, event);
    }

    fn accepted(&mut self, core: &mut Core<ConnIo>, result: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.accept_armed = false;
            self.accept_cancelling = false;
            self.release_listener();
        }
        if result == -libc::ECANCELED {
            return;
        }
        if result < 0 {
            return accept_failed(core, &io::Error::from_raw_os_error(-result));
        }
        // SAFETY: the accept completion hands over a new descriptor that nothing else owns.
        let stream = unsafe { TcpStream::from_raw_fd(result) };
        if sys::prepare_accepted(&stream).is_ok() {
            self.overflow.push_back(stream);
        }
    }

    /// Close the listener once the shard stopped accepting and no accept on it is in flight.
    fn release_listener(&mut self) {
        if self.stopped && !self.accept_armed {
            self.listener = None;
        }
    }

    /// Give accepted connections the slots the core admits them to, up to the turn's
    /// budget, and start them.
    fn admit(&mut self, core: &mut Core<ConnIo>) {
        let mut budget = ACCEPT_BUDGET;
        let new_io = |stream| ConnIo {
            stream,
            recv_armed: false,
            recv_cancelling: false,
            sending: Sending::Nothing,
            cancelled: false,
        };
        while let Some(admitted) = admit(core, &mut self.overflow, &mut budget, new_io) {
            let (Admitted::New(token) | Admitted::Closing(token)) = admitted;
            drive(&mut self.uring.ring, self.limited, core, token, Event::Resume);
        }
        self.admit_more = budget == 0 && !self.overflow.is_empty();
    }

    /// Keep the multishot accept posted while the core wants more connections; otherwise
    /// cancel it, so that further connections wait in the backlog rather than being
    /// accepted only to be held or closed. What one turn's completions accept before the
    /// cancel takes effect still waits here.
    fn arm_accept(&mut self, core: &Core<ConnIo>) {
        self.accepting(!self.stopped && core.wants_accepts(self.overflow.len()));
    }

    fn accepting(&mut self, want: bool) {
        if want
            && !self.accept_armed
            && let Some(listener) = &self.listener
        {
            let accept = opcode::AcceptMulti::new(Fd(listener.as_raw_fd()))
                .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
                .build();
            // SAFETY: an accept points at no memory of ours; the listener stays open until
            // the accept's last completion (`release_listener`).
            unsafe { self.uring.ring.push(accept.user_data(OP_ACCEPT)) };
            self.accept_armed = true;
        } else if !want && self.accept_armed && !self.accept_cancelling {
            cancel(&mut self.uring.ring, OP_ACCEPT);
            self.accept_cancelling = true;
        }
    }
}

/// Report `event`, then carry out actions (submitting operations) and report what
/// finishes at once, until one has to wait for a completion.
/// `limited`: receives end at the room the core gives (`probe::limited_receive`).
fn drive(ring: &mut Ring, limited: bool, core: &mut Core<ConnIo>, token: Token, event: Event<'_>) {
    let mut event = event;
    loop {
        let Some(Step { action, room, io }) = core.step(token, event) else { return };
        let receive = room > 0;
        let fd = Fd(io.stream.as_raw_fd());
        if receive && !io.recv_armed && !io.cancelled {
            io.recv_armed = true;
            let limit = if limited { room.min(u32::MAX as usize) as u32 } else { 0 };
            let recv = limited_receive(fd, BUF_GROUP, limit).user_data(OP_RECV | token.0);
            // SAFETY: the receive writes only into the provided buffers, which live until
            // the ring is quiesced (`Uring`'s drop).
            unsafe { ring.push(recv) };
        } else if !receive && io.recv_armed && !io.recv_cancelling && !io.cancelled {
            io.recv_cancelling = true;
            cancel(ring, OP_RECV | token.0);
        }
        event = match action {
            Action::Receive | Action::Drain | Action::Yield => return,
            Action::Send(_) if io.sending != Sending::Nothing => return,
            Action::Send(offer) => match offer.segment() {
                Segment::Bytes(_) => {
                    let Segment::Bytes(bytes) = offer.lend() else { unreachable!("the segment offered") };
                    let len = bytes.len().min(u32::MAX as usize) as u32;
                    io.sending = Sending::Bytes;
                    let send = opcode::Send::new(fd, bytes.as_ptr(), len).build().user_data(OP_SEND | token.0);
                    // SAFETY: the bytes are on loan (`Offer::lend`): the core keeps them put,
                    // unchanged and allocated until this send's completion is reported as
                    // `Sent` or `SendFailed` (`conn::Outgoing`: changing or recycling lent
                    // output panics, dropping it leaks the bytes); the slot is not released
                    // while `sending` is set, and at shutdown the ring is quiesced before the
                    // loans end (`Core::quiesced`).
                    return unsafe { ring.push(send) };
                }
                // sendfile(2) reads the file within the call: no loan.
                Segment::File(range) => match sys::send_file(&io.stream, range) {
                    Ok(n) if n > 0 => Event::Sent(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        io.sending = Sending::Poll;
                        let poll = opcode::PollAdd::new(fd, libc::POLLOUT as u32).build();
                        // SAFETY: a poll points at no memory of ours.
                        return unsafe { ring.push(poll.user_data(OP_POLL | token.0)) };
                    }
                    // Nothing sent: the file shrank, and the response can no longer match
                    // its Content-Length.
                    _ => Event::SendFailed,
                },
            },
            Action::Shutdown => sys::shutdown_write(&io.stream).map_or(Event::Failed, |()| Event::Shut),
            Action::Close | Action::Abort => {
                if matches!(action, Action::Abort) && !io.cancelled {
                    let _ = sys::reset_on_close(&io.stream);
                }
                if !io.recv_armed && io.sending == Sending::Nothing {
                    core.release(token);
                } else if !std::mem::replace(&mut io.cancelled, true) {
                    // Each operation is named by its own user_data, never by the socket's
                    // descriptor number, which a later connection may reuse.
                    if io.recv_armed && !io.recv_cancelling {
                        cancel(ring, OP_RECV | token.0);
                    }
                    match io.sending {
                        Sending::Bytes => cancel(ring, OP_SEND | token.0),
                        Sending::Poll => cancel(ring, OP_POLL | token.0),
                        Sending::Nothing => {}
                    }
                }
                return;
            }
        };
    }
}

/// Cancel the operation whose user_data is `user_data`.
fn cancel(ring: &mut Ring, user_data: u64) {
    let cancel = opcode::AsyncCancel2::new(CancelBuilder::user_data(user_data)).build();
    // SAFETY: a cancellation points at no memory.
    unsafe { ring.push(cancel.user_data(OP_CANCEL)) };
}
