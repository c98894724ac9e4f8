//! The driver: the only layer that talks to the kernel.
//!
//! # Contract
//!
//! A shard owns its connections (a slab of `Conn` state machines and their sockets) and
//! one driver. The driver watches the shard's listener and every connection socket it is
//! handed, and reports what happened as `Event`s carrying the connection's `Token`
//! (slab index and generation: a token whose generation no longer matches its slot is
//! stale and the shard drops the event). Events say *the socket can make progress* in a
//! direction, not *how much*: the shard then calls the I/O functions of `sys` until they
//! say `WouldBlock`, because the epoll backend is edge-triggered and will not say it
//! twice (a read shorter than the buffer also proves the socket drained, unless the
//! event says the peer hung up: then read on to the end of the stream). Everything a connection reads goes first into one read buffer per shard; only
//! an unparsed tail is copied into the connection, so an idle connection holds none.
//! Everything a pass of the loop queues for a connection leaves in one write (or
//! sendfile, for a file range) and only what the socket refuses stays with the
//! connection.
//!
//! A completion backend (io_uring) fits the same shard loop by reporting the same events
//! after its operations complete: a receive completion is "readable" with the bytes
//! already in a provided buffer, a send completion is "writable". Its buffers come and
//! go with completions; the HTTP core, files and the connection state machine stay as
//! they are. Backends are chosen once at start (`Backend`), and the shard loop is
//! generic over `Driver`, so each backend is monomorphised.
//!
//! Errors: every call returns `io::Result`; an error on one connection closes that
//! connection only. An error from `wait` itself ends the shard.

pub mod epoll;
pub mod sys;

use std::io;
use std::os::fd::BorrowedFd;

/// Which backend a shard runs, chosen once at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// io_uring when usable, else epoll.
    Auto,
    /// Edge-triggered epoll.
    Epoll,
    /// io_uring (not built yet).
    Uring,
}

/// Slab index in the low 32 bits, generation in the high 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token(pub u64);

impl Token {
    /// Reserved for the listener; never a connection (generation `u32::MAX` is skipped).
    pub const LISTENER: Token = Token(u64::MAX);

    pub fn new(index: usize, generation: u32) -> Token {
        Token(u64::from(generation) << 32 | index as u64)
    }

    pub fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// What a socket can do now.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub token: Token,
    /// Bytes to read, end of stream, or an error to collect by reading.
    pub readable: bool,
    pub writable: bool,
    /// The peer shut its side (or the socket failed): read on to the end of the stream
    /// even after a short read, since no further event will announce it.
    pub hangup: bool,
}

pub trait Driver: Sized {
    const NAME: &'static str;

    /// A driver watching `listener` (non-blocking).
    fn new(listener: BorrowedFd<'_>) -> io::Result<Self>;

    /// Start watching a connection socket under `token`, for both directions.
    fn watch(&mut self, socket: BorrowedFd<'_>, token: Token) -> io::Result<()>;

    /// Wait up to `timeout_ms` for events; replaces the contents of `events`.
    fn wait(&mut self, events: &mut Vec<Event>, timeout_ms: u16) -> io::Result<()>;
}
