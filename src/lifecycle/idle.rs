//! The idle list: keep-alive connections between requests, oldest first, linked through
//! their slots so that joining, leaving and finding the oldest are O(1) and allocate
//! nothing. At the cap the oldest is closed to admit a new client, as nginx does with its
//! reusable connections. A new connection that has sent nothing is not on it: its
//! request may be in the socket, unread yet, and closing it would reset a client that
//! did ask; the request timeout bounds how long it may stay silent.

use super::{Core, Flags};
use crate::transport::Transport;

/// No neighbour.
pub const NIL: u32 = u32::MAX;

pub struct IdleList {
    pub(super) head: u32,
    tail: u32,
}

impl Default for IdleList {
    fn default() -> Self {
        IdleList { head: NIL, tail: NIL }
    }
}

impl<C, T: Transport> Core<C, T> {
    /// Join at the young end.
    pub(super) fn idle_push(&mut self, key: usize) {
        let tail = self.idle.tail;
        let slot = &mut self.slots[key];
        debug_assert!(!slot.flags.has(Flags::IDLE));
        slot.flags.set(Flags::IDLE, true);
        slot.idle_prev = tail;
        slot.idle_next = NIL;
        match tail {
            NIL => self.idle.head = key as u32,
            t => self.slots[t as usize].idle_next = key as u32,
        }
        self.idle.tail = key as u32;
    }

    pub(super) fn idle_unlink(&mut self, key: usize) {
        let slot = &mut self.slots[key];
        if !slot.flags.replace(Flags::IDLE, false) {
            return;
        }
        let (prev, next) = (slot.idle_prev, slot.idle_next);
        match prev {
            NIL => self.idle.head = next,
            p => self.slots[p as usize].idle_next = next,
        }
        match next {
            NIL => self.idle.tail = prev,
            n => self.slots[n as usize].idle_prev = prev,
        }
    }

    pub(super) fn idle_oldest(&self) -> Option<usize> {
        (self.idle.head != NIL).then_some(self.idle.head as usize)
    }
}
