//! io_uring: completions, not readiness. One ring per shard (created in the shard's own
//! process), a multishot accept on each of the shard's listeners (`accept`), a multishot
//! receive per connection into a ring of provided buffers (an idle connection holds none),
//! and one send in flight per connection, over bytes that stay put in the connection's
//! outbox until it completes. File ranges go out with sendfile(2) on the non-blocking
//! socket, waiting for room with a poll operation: measured against reading each chunk
//! through the ring and sending it, it costs a quarter of the CPU (see README). Each
//! completion is one event for the core; a slot is released only when none of its
//! operations is in flight.

use super::probe::{limited_receive, receive_limit_works};
use super::ring::{BUF_GROUP, Completion, OP_CANCEL, Ring, Uring};
use super::{ACCEPT_BUDGET, Admitted, Driver, Sizing, admit, sys};
use crate::conn::Segment;
use crate::lifecycle::{Action, Core, Event, Step, Token};
use crate::transport::Transport;
use io_uring::types::{CancelBuilder, Fd};
use io_uring::{cqueue, opcode};
use nix::libc;
use std::collections::VecDeque;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

pub use super::ring::probe;

mod accept;
use accept::Acceptor;

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
    /// By listener number: each listener and its multishot accept.
    acceptors: Vec<Acceptor>,
    /// `stop_accepting` was called.
    stopped: bool,
    /// The kernel ends a multishot receive at a byte limit (`probe::limited_receive`).
    limited: bool,
    /// Completions reaped, and the next of them to handle (a dispatch stops early when the
    /// core's turn is full; the rest wait for the next).
    completions: Vec<Completion>,
    next: usize,
    /// Connections accepted and not yet given a slot, with their listener's number.
    overflow: VecDeque<(TcpStream, usize)>,
    /// Admitting stopped at the turn's budget.
    admit_more: bool,
}

impl Driver for UringDriver {
    const NAME: &'static str = "uring";
    type ConnIo = ConnIo;

    fn new(listeners: Vec<TcpListener>, sizing: &Sizing) -> io::Result<Self> {
        // One 4 KiB buffer per 64 connections, within [64, 256] (at most 1 MiB a shard):
        // enough for a turn's burst of requests, nothing for connections that are idle.
        // The ring hands buffers out in order, so every one gets touched: a bigger ring
        // is resident memory (1024 buffers measured ~430 B more RSS per held connection
        // at 10,000). A burst beyond it ends receives with ENOBUFS, which re-arm next turn.
        let derived = (sizing.max_conns / 64).clamp(64, 256).next_power_of_two() as u16;
        let uring = Uring::new(1024, sizing.recv_buffers.unwrap_or(derived), RECV_BUF)?;
        let mut driver = UringDriver {
            uring,
            acceptors: listeners.into_iter().map(Acceptor::new).collect(),
            stopped: false,
            limited: receive_limit_works(),
            completions: Vec::new(),
            next: 0,
            overflow: VecDeque::new(),
            admit_more: false,
        };
        // In the kernel before the shard says it serves (which at a reload stops the old
        // generation's accepts), not at the first wait.
        driver.accepting(true);
        driver.uring.ring.submit()?;
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

    fn dispatch<T: Transport>(&mut self, core: &mut Core<ConnIo, T>) {
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

    fn resume<T: Transport>(&mut self, core: &mut Core<ConnIo, T>, token: Token) {
        drive(&mut self.uring.ring, self.limited, core, token, Event::Resume);
    }

    fn stop_accepting<T: Transport>(&mut self, core: &mut Core<ConnIo, T>) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        // What a multishot accept takes before its cancellation lands still arrives, and
        // is served; what is queued now is taken here. The cancellations go to the kernel
        // now, not at the next wait: once the shard says it accepts no more, a connection
        // is another process's (a new generation's). Each listener closes once its
        // accept's last completion is in (`accepted`).
        self.accepting(false);
        // Failing, they go at the next wait.
        let _ = self.uring.ring.submit();
        self.accept_queued();
        self.release_listeners();
        self.admit(core);
    }

    fn listening(&self) -> bool {
        self.acceptors.iter().any(Acceptor::listening)
    }

    fn quiet(&self) -> bool {
        !self.acceptors.iter().any(Acceptor::armed) && self.overflow.is_empty()
    }

    fn shutdown<T: Transport>(&mut self, core: &mut Core<ConnIo, T>) -> bool {
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
    fn complete<T: Transport>(&mut self, core: &mut Core<ConnIo, T>, user_data: u64, result: i32, flags: u32) {
        let op = user_data & OP_MASK;
        if op == OP_ACCEPT {
            return self.accepted(core, (user_data & !OP_MASK) as usize, result, flags);
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

    /// Give accepted connections the slots the core admits them to, up to the turn's
    /// budget, and start them.
    fn admit<T: Transport>(&mut self, core: &mut Core<ConnIo, T>) {
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
}

/// Report `event`, then carry out actions (submitting operations) and report what
/// finishes at once, until one has to wait for a completion.
/// `limited`: receives end at the room the core gives (`probe::limited_receive`).
fn drive<T: Transport>(ring: &mut Ring, limited: bool, core: &mut Core<ConnIo, T>, token: Token, event: Event<'_>) {
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
