//! The accepts of an io_uring shard: one multishot accept per listener, its listener
//! number in the user_data beside `OP_ACCEPT`. Each is kept posted while the core wants
//! connections and cancelled while it does not, so that further connections wait in the
//! backlog rather than being accepted only to be held or closed; once the shard stops
//! accepting, each listener is closed after its own accept's last completion, so no accept
//! ever names a closed descriptor.

use super::{ConnIo, OP_ACCEPT, UringDriver, cancel};
use crate::driver::{accept_failed, sys};
use crate::lifecycle::Core;
use crate::transport::Transport;
use io_uring::types::Fd;
use io_uring::{cqueue, opcode};
use nix::libc;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};

/// A listener and its multishot accept.
pub(super) struct Acceptor {
    /// `None` once the shard stopped accepting and the accept on it ended.
    listener: Option<TcpListener>,
    armed: bool,
    cancelling: bool,
}

impl Acceptor {
    pub(super) fn new(listener: TcpListener) -> Acceptor {
        Acceptor { listener: Some(listener), armed: false, cancelling: false }
    }

    pub(super) fn armed(&self) -> bool {
        self.armed
    }

    pub(super) fn listening(&self) -> bool {
        self.listener.is_some()
    }
}

impl UringDriver {
    /// A completion of listener number `i`'s accept.
    pub(super) fn accepted<T: Transport>(&mut self, core: &mut Core<ConnIo, T>, i: usize, result: i32, flags: u32) {
        if !cqueue::more(flags) {
            let acceptor = &mut self.acceptors[i];
            acceptor.armed = false;
            acceptor.cancelling = false;
            if self.stopped {
                // The accept was cancelled as the shard stopped accepting. A connection that
                // came as it was cancelled may have had its wakeup taken by it (the accept is
                // exclusive, and with DEFER_TASKRUN it would have run only at our next
                // wait), leaving the connection queued with no other process woken for it
                // (seen on 6.18): take what is queued before letting go of the listener.
                self.accept_queued();
            }
            self.release_listeners();
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
            self.overflow.push_back((stream, i));
        }
    }

    /// Take what every listener still held holds now, without waiting (the shard stops
    /// accepting).
    pub(super) fn accept_queued(&mut self) {
        for (i, acceptor) in self.acceptors.iter().enumerate() {
            let Some(listener) = &acceptor.listener else { continue };
            loop {
                match sys::accept(listener) {
                    Ok(stream) => self.overflow.push_back((stream, i)),
                    Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => {}
                    Err(_) => break,
                }
            }
        }
    }

    /// Close each listener once the shard stopped accepting and no accept on it is in
    /// flight.
    pub(super) fn release_listeners(&mut self) {
        if !self.stopped {
            return;
        }
        for acceptor in self.acceptors.iter_mut().filter(|a| !a.armed) {
            acceptor.listener = None;
        }
    }

    /// Keep the accepts posted while the core wants more connections; otherwise cancel
    /// them. What one turn's completions accept before the cancel takes effect still waits
    /// in `overflow`.
    pub(super) fn arm_accept<T: Transport>(&mut self, core: &Core<ConnIo, T>) {
        self.accepting(!self.stopped && core.wants_accepts(self.overflow.len()));
    }

    pub(super) fn accepting(&mut self, want: bool) {
        for (i, acceptor) in self.acceptors.iter_mut().enumerate() {
            let user_data = OP_ACCEPT | i as u64;
            if want
                && !acceptor.armed
                && let Some(listener) = &acceptor.listener
            {
                let accept = opcode::AcceptMulti::new(Fd(listener.as_raw_fd()))
                    .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
                    .build();
                // SAFETY: an accept points at no memory of ours; the listener stays open
                // until the accept's last completion (`release_listeners`).
                unsafe { self.uring.ring.push(accept.user_data(user_data)) };
                acceptor.armed = true;
            } else if !want && acceptor.armed && !acceptor.cancelling {
                cancel(&mut self.uring.ring, user_data);
                acceptor.cancelling = true;
            }
        }
    }
}
