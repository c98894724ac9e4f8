//! The driver: the only layer that talks to the kernel, and it decides nothing.
//!
//! # Contract
//!
//! A shard is a `Core` (every connection's state and lifecycle, timers, the site; no I/O)
//! and one driver. Each turn of the shard's loop the driver `wait`s in the kernel (never
//! longer than the timeout the shard gives, nor at all while it is `busy`), the shard
//! advances the core's clock, and the driver `dispatch`es what happened: it reports each
//! connection's news to the core as an `Event` through `Core::step` and carries out the
//! `Action` it gets back, reporting the outcome, until the action is to wait (for
//! readiness or a completion). Then the core fires its timers, and the driver `resume`s
//! every connection on the core's ready list (timed out, or yielded the last turn) the
//! same way.
//!
//! What a driver keeps per connection (`ConnIo`: the socket, readiness, operations in
//! flight) lives in the connection's slot and is its own; it never reads the core's state
//! to decide what to do, only the action. A connection is named by its `Token` (slab
//! index and generation): an event, completion or queue entry whose token is stale finds
//! nothing in the core and is dropped. A driver frees a slot only by `Core::release`,
//! when the core said `Close` or `Abort` and the kernel holds nothing of the connection
//! any more (io_uring: every operation completed or cancelled), so no buffer the kernel
//! may still read or write is ever freed.
//!
//! New connections: a shard has one or more listeners (plain and TLS ones), numbered in the
//! order it was given them. A driver accepts from every one of them, only while
//! `Core::wants_accepts` says so, reports an accept error with `Core::accept_failed`, and
//! gives each accepted connection, with its listener's number (which says its transport),
//! to `admit` (below), which asks the core what to do with it: take it, resume the idle
//! connection the core closed to make room, or leave it waiting. The policy (the cap,
//! which idle connection makes room, how many may wait, the pause after an error) is the
//! core's; a driver decides none of it. At most `ACCEPT_BUDGET` are admitted a turn. A
//! draining shard accepts what its listeners hold once more and then lets go of them
//! (`stop_accepting`).
//!
//! Sends: `Action::Send` offers the connection's next segment. A send made within the
//! call (a write, sendfile) uses `Offer::segment`; one the kernel carries out later (an
//! io_uring send) takes the bytes on loan with `Offer::lend`, and reports `Sent` or
//! `SendFailed` for it before anything else can end the loan (at shutdown,
//! `Core::quiesced` once the ring holds nothing). Meanwhile the core neither changes nor
//! frees those bytes (`conn::Outgoing` checks it), which is what makes handing the kernel
//! a pointer into them sound.
//!
//! Reads land first in memory the shard owns (epoll: one read buffer per shard; io_uring:
//! a provided-buffer ring), and only an unparsed tail is copied into the connection, so an
//! idle connection holds no buffer. Backends are chosen once at start (`Backend`); the
//! shard is generic over `Driver`, so each backend is monomorphised.
//!
//! Errors: an error on one connection is reported to the core as `Event::Failed` and ends
//! that connection only. An error from waiting itself ends the shard.

mod bufring;
pub mod epoll;
mod probe;
mod ring;
pub mod sys;
pub mod uring;

use crate::lifecycle::{Admission, Core, Token};
use crate::transport::Transport;
use std::collections::VecDeque;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// New connections taken per turn; the rest wait for the next turn (or in the backlog).
pub const ACCEPT_BUDGET: usize = 64;

/// Which backend a shard runs, chosen once at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// io_uring when usable, else epoll.
    Auto,
    /// Edge-triggered epoll.
    Epoll,
    /// io_uring, completion-driven.
    Uring,
}

/// What a driver sizes its resources by.
#[derive(Clone, Copy, Debug)]
pub struct Sizing {
    /// Connections the shard accepts at most.
    pub max_conns: usize,
    /// io_uring provided receive buffers (a power of two); `None`: derived from `max_conns`.
    pub recv_buffers: Option<u16>,
}

pub trait Driver: Sized {
    const NAME: &'static str;
    /// What the driver keeps per connection, inside the connection's slot.
    type ConnIo;

    /// A driver for a shard listening on `listeners`; a connection's listener number (what
    /// `Core::accept_on` is told) is its listener's place in the list.
    fn new(listeners: Vec<TcpListener>, sizing: &Sizing) -> io::Result<Self>;

    /// Work is left from the last turn that needs no new event: the next wait must not
    /// block.
    fn busy(&self) -> bool;

    /// Wait in the kernel until something happens or `timeout` passes.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;

    /// Report what happened since the last wait and carry out the actions that follow;
    /// accept new connections.
    fn dispatch<T: Transport>(&mut self, core: &mut Core<Self::ConnIo, T>);

    /// Carry out the next action of a connection from the core's ready list.
    fn resume<T: Transport>(&mut self, core: &mut Core<Self::ConnIo, T>, token: Token);

    /// Stop taking new connections: those the listeners hold now are accepted (within the
    /// cap) and served, then the driver lets go of every listener. What arrives later waits
    /// for another process holding the same listener, or is refused once none does.
    fn stop_accepting<T: Transport>(&mut self, core: &mut Core<Self::ConnIo, T>);

    /// A listener is still held, so a connection may yet be accepted: after
    /// `stop_accepting`, until an accept still in flight has ended.
    fn listening(&self) -> bool;

    /// No accepted connection waits for a slot and no accept is in flight: with the core
    /// empty, a draining shard is done.
    fn quiet(&self) -> bool;

    /// Close every connection. True when the kernel holds nothing of ours any more; false
    /// if it may still (io_uring operations that would not cancel), in which case the
    /// caller must leak the core rather than free memory the kernel may use.
    fn shutdown<T: Transport>(&mut self, core: &mut Core<Self::ConnIo, T>) -> bool;
}

/// A connection `admit` gave the core, to be started by its driver.
pub enum Admitted {
    /// Newly taken: the driver starts its I/O and resumes it.
    New(Token),
    /// An idle connection the core closed to make room: the driver resumes it (the core
    /// says `Close`).
    Closing(Token),
}

/// Give the first of `waiting` (accepted, not yet in the core, each with the number of the
/// listener it came in on) to the core if it admits it, within the turn's `budget`; `None`
/// once nothing more can be admitted now. One whose transport cannot start is closed. The
/// peer's address is read here, once for every backend, only when the core logs it.
pub fn admit<C, T: Transport>(
    core: &mut Core<C, T>,
    waiting: &mut VecDeque<(TcpStream, usize)>,
    budget: &mut usize,
    mut new_io: impl FnMut(TcpStream) -> C,
) -> Option<Admitted> {
    while *budget > 0 && !waiting.is_empty() {
        match core.admit(waiting.len()) {
            Admission::Take => {
                let (stream, listener) = waiting.pop_front()?;
                let peer = if core.wants_peers() { stream.peer_addr().ok() } else { None };
                *budget -= 1;
                // With a slot free (`Take`), only the transport refuses: the connection is
                // dropped, so closed, and the next one may go in.
                if let Ok(token) = core.accept_on(new_io(stream), peer, listener) {
                    return Some(Admitted::New(token));
                }
            }
            Admission::Evict(victim) => return Some(Admitted::Closing(victim)),
            Admission::Wait => return None,
        }
    }
    None
}

/// An accept failed (other than for want of a connection, or for one aborted): tell the
/// core, which pauses accepting for closes to free what ran out. Running out of
/// descriptors is expected at the cap's edge and is not logged; anything else is.
pub fn accept_failed<C, T: Transport>(core: &mut Core<C, T>, e: &io::Error) {
    if !matches!(e.raw_os_error(), Some(nix::libc::EMFILE | nix::libc::ENFILE)) {
        crate::log::error(format_args!("accept: {e}"));
    }
    core.accept_failed();
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_connection_costs_at_most_72_bytes_of_slab() {
        // At 10,000 idle connections every byte here is 10 kB of the shard's memory.
        for (backend, bytes) in [
            ("epoll", crate::lifecycle::slot_bytes::<super::epoll::ConnIo>()),
            ("io_uring", crate::lifecycle::slot_bytes::<super::uring::ConnIo>()),
        ] {
            assert!(bytes <= 72, "an {backend} connection's slab entry is {bytes} bytes");
        }
    }
}
