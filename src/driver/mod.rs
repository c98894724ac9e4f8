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
//! New connections: each turn a driver accepts at most `ACCEPT_BUDGET`; at the cap it has
//! the core close its longest-idle keep-alive connection to make room, and when none is
//! idle it leaves the rest in the listen backlog. A draining shard accepts what its
//! listener holds once more and then closes its copy of it (`stop_accepting`).
//!
//! Reads land first in memory the shard owns (epoll: one read buffer per shard; io_uring:
//! a provided-buffer ring), and only an unparsed tail is copied into the connection, so an
//! idle connection holds no buffer. Backends are chosen once at start (`Backend`); the
//! shard is generic over `Driver`, so each backend is monomorphised.
//!
//! Errors: an error on one connection is reported to the core as `Event::Failed` and ends
//! that connection only. An error from waiting itself ends the shard.

pub mod epoll;
mod ring;
pub mod sys;
pub mod uring;

use crate::lifecycle::{Core, Token};
use std::io;
use std::net::TcpListener;
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

    /// A driver for a shard listening on `listener`.
    fn new(listener: TcpListener, sizing: &Sizing) -> io::Result<Self>;

    /// Work is left from the last turn that needs no new event: the next wait must not
    /// block.
    fn busy(&self) -> bool;

    /// Wait in the kernel until something happens or `timeout` passes.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;

    /// Report what happened since the last wait and carry out the actions that follow;
    /// accept new connections.
    fn dispatch(&mut self, core: &mut Core<Self::ConnIo>);

    /// Carry out the next action of a connection from the core's ready list.
    fn resume(&mut self, core: &mut Core<Self::ConnIo>, token: Token);

    /// Stop taking new connections: those the listener holds now are accepted (within the
    /// cap) and served, then the driver lets go of the listener. What arrives later waits
    /// for another process holding the same listener, or is refused once none does.
    fn stop_accepting(&mut self, core: &mut Core<Self::ConnIo>);

    /// No accepted connection waits for a slot and no accept is in flight: with the core
    /// empty, a draining shard is done.
    fn quiet(&self) -> bool;

    /// Close every connection. True when the kernel holds nothing of ours any more; false
    /// if it may still (io_uring operations that would not cancel), in which case the
    /// caller must leak the core rather than free memory the kernel may use.
    fn shutdown(&mut self, core: &mut Core<Self::ConnIo>) -> bool;
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
