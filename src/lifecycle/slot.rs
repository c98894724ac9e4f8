//! A connection's slot in the shard's slab: its protocol state, where it is in its life,
//! its deadline and its neighbours on the idle list, its transport and the driver's part.
//! Every byte here is paid by every connection held, idle or not.

use crate::conn::Conn;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Phase {
    Open,
    /// Our side is shut; input is read and discarded until the client closes.
    Lingering,
    /// Over: the driver closes it and releases the slot.
    Closed,
}

/// Which timeout the slot's deadline stands for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Timer {
    None,
    Idle,
    Request,
    Send,
    Linger,
}

/// A slot's yes-or-no state, a bit each: a byte each would cost every connection held 4
/// bytes more.
#[derive(Clone, Copy, Default)]
pub(super) struct Flags(u8);

impl Flags {
    /// The client ended its stream: answer what it sent, then close.
    pub(super) const PEER_EOF: u8 = 1;
    /// `conn` holds input the parser has not seen (it arrived behind output).
    pub(super) const UNPARSED: u8 = 1 << 1;
    /// Close with a reset.
    pub(super) const RESET: u8 = 1 << 2;
    /// On the ready list.
    pub(super) const QUEUED: u8 = 1 << 3;
    /// On the idle list.
    pub(super) const IDLE: u8 = 1 << 4;

    pub(super) fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    pub(super) fn set(&mut self, flag: u8, on: bool) {
        self.0 = if on { self.0 | flag } else { self.0 & !flag };
    }

    /// Set `flag` to `on`; whether it was set.
    pub(super) fn replace(&mut self, flag: u8, on: bool) -> bool {
        let was = self.has(flag);
        self.set(flag, on);
        was
    }
}

/// One connection: its protocol state, its lifecycle, and the driver's part.
pub(super) struct Slot<C, T> {
    pub(super) conn: Conn,
    pub(super) generation: u32,
    pub(super) phase: Phase,
    pub(super) timer: Timer,
    pub(super) flags: Flags,
    /// The deadline as the wheel tick that ends at or after it (`timer::tick_at_or_after`):
    /// no timer fires finer than a tick, and 4 bytes hold it where milliseconds took 8.
    pub(super) deadline: u32,
    /// The wheel tick this slot is filed under, `timer::NOT_FILED` when none.
    pub(super) filed: u32,
    /// The turn `spent` counts for.
    pub(super) turn: u32,
    pub(super) spent: u32,
    /// Neighbours on the idle list (slab keys, `idle::NIL` at the ends).
    pub(super) idle_prev: u32,
    pub(super) idle_next: u32,
    /// When the requests being answered began (their first byte; µs on the shard's
    /// clock).
    pub(super) began: u64,
    pub(super) transport: T,
    pub(super) io: C,
}

/// What one connection held costs in its shard's slab, with `C` as its driver's part: the
/// slot and the slab's tag around it (the layout of `slab`'s own entry, which fits its tag
/// in the slot's unused bit patterns). The drivers' tests keep their part within budget.
#[cfg(test)]
pub const fn slot_bytes<C>() -> usize {
    #[allow(dead_code)]
    enum SlabEntry<T> {
        Vacant(usize),
        Occupied(T),
    }
    size_of::<SlabEntry<Slot<C, crate::transport::Plain>>>()
}
