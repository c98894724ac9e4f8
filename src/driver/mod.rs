//! The driver: the only layer that talks to the kernel.
//!
//! # Contract
//!
//! A shard is a `Core` (connections in a slab, the site, timers; no I/O) and one driver.
//! Each pass of the shard's loop calls `Driver::turn`: the driver waits (at most a
//! second, so Date and timers advance), then performs whatever I/O is ready (epoll) or
//! has completed (io_uring), and reports each step to the core: a new connection
//! (`Core::accept`), bytes received (`Core::input`), everything queued sent
//! (`Core::sent`) or not yet (`Core::blocked`), end of stream (`Core::peer_closed`), an
//! error (`Core::fail`). The core answers by changing the slot: answers queued in
//! `conn.out` (moved there whole, so its bytes stay put while a send is in flight),
//! `conn.closing` (shut our side once `out` has gone, then linger), `read_paused` (input
//! waits for the output), `doomed` (tear down now). After the core changes a slot outside
//! I/O (a timer fired) the shard calls `Driver::settle` for it.
//!
//! A connection is identified to the kernel by its `Token` (slab index and generation):
//! an event or completion whose generation no longer matches its slot is stale and
//! dropped. A driver never frees a slot the kernel may still write into: epoll owns no
//! buffers the kernel holds; io_uring frees a slot only when every operation it had in
//! flight has completed or been cancelled.
//!
//! Reads land first in memory the shard owns (epoll: one read buffer per shard; io_uring:
//! a provided-buffer ring), and only an unparsed tail is copied into the connection, so an
//! idle connection holds no buffer. Every answer produced from one read leaves in one
//! write (or sendfile / read-and-send for a file range). Backends are chosen once at start
//! (`Backend`); the shard is generic over `Driver`, so each backend is monomorphised.
//!
//! Errors: every call returns `io::Result`; an error on one connection closes that
//! connection only. An error from waiting itself ends the shard.

pub mod epoll;
pub mod sys;
pub mod uring;

use crate::shard::Core;
use std::io;
use std::net::TcpListener;

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

/// Slab index in the low 32 bits, generation (24 bits) above it; the top byte is free
/// for a backend to tag operations with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token(pub u64);

impl Token {
    pub const GENERATION_MASK: u32 = 0x00ff_ffff;

    pub fn new(index: usize, generation: u32) -> Token {
        Token(u64::from(generation & Self::GENERATION_MASK) << 32 | index as u64)
    }

    pub fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32 & Self::GENERATION_MASK
    }
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
    type ConnIo: Default;

    /// A driver for a shard listening on `listener`.
    fn new(listener: TcpListener, sizing: &Sizing) -> io::Result<Self>;

    /// One pass: wait, then do and report all I/O that is ready or complete.
    fn turn(&mut self, core: &mut Core<Self::ConnIo>) -> io::Result<()>;

    /// Act on a slot the core changed outside I/O: send what it queued, close what it
    /// doomed.
    fn settle(&mut self, core: &mut Core<Self::ConnIo>, key: usize);
}
