//! Admission: whether a driver should accept, and what to do with a connection it
//! accepted. One policy for every backend, whatever it can see of the kernel's queue:
//!
//! - Below the cap, take it.
//! - At the cap, room comes first from connections already closing (their slots are
//!   released as soon as the kernel lets go of them), and beyond those from closing the
//!   keep-alive connection idle the longest (never a new, mid-request or mid-response one),
//!   as nginx does with its reusable connections. With none idle, the connection waits.
//! - A driver holds at most `EVICT_AHEAD` accepted connections waiting for room at the
//!   cap: past that further clients wait in the listen backlog, not in our memory, and
//!   each one held costs a descriptor out of the shard's reserve.
//! - After an accept error (EMFILE, ENFILE, ENOBUFS), accepting pauses for
//!   `ACCEPT_RETRY`, for closes to free descriptors, instead of spinning on the error.

use super::{Admission, Core, Millis};
use crate::stats;
use crate::transport::Transport;

/// At the cap, accepted connections a driver may hold waiting for the room that closing
/// idle keep-alive connections makes.
pub const EVICT_AHEAD: usize = 8;
/// How long accepting pauses after an accept error.
pub const ACCEPT_RETRY: Millis = 100;

impl<C, T: Transport> Core<C, T> {
    /// Whether to accept more, with `waiting` connections accepted and not yet admitted.
    pub fn wants_accepts(&self, waiting: usize) -> bool {
        if self.now < self.accept_paused_until {
            return false;
        }
        self.slots.len() + waiting < self.max_conns || (self.idle_oldest().is_some() && waiting < EVICT_AHEAD)
    }

    /// What to do with the first of `waiting` (≥ 1) accepted connections.
    pub fn admit(&mut self, waiting: usize) -> Admission {
        if self.slots.len() < self.max_conns {
            return Admission::Take;
        }
        if waiting <= self.closing {
            return Admission::Wait;
        }
        let Some(key) = self.idle_oldest() else { return Admission::Wait };
        stats::add(&self.ctx.stats.evicted, 1);
        self.close(key, false);
        self.settle(key);
        Admission::Evict(self.token(key))
    }

    /// Accepting failed for lack of something that closes give back (descriptors, memory):
    /// pause it for a while.
    pub fn accept_failed(&mut self) {
        self.accept_paused_until = self.now + ACCEPT_RETRY;
    }

    /// When accepting resumes, if it is paused.
    pub(super) fn accept_paused(&self) -> Option<Millis> {
        (self.now < self.accept_paused_until).then_some(self.accept_paused_until)
    }
}
