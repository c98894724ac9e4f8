//! A timer wheel of `TICK_MS` ticks. Deadlines mostly move later on the hot path (each
//! request or send pushes a connection's deadline out), so a connection stays filed under
//! its earliest tick and is refiled lazily when that tick comes due: no timer operation
//! per request. A deadline is filed at the tick that ends at or after it, so it never
//! fires early.
//!
//! An entry is only the token: every entry in a slot was filed at the one tick of the
//! horizon that maps to it, so the tick it stands for is known from where it lies, and the
//! caller recognises its current entry by the tick it keeps (see `Core::expire`). At 8
//! bytes an entry, the wheel is about 8 to 16 bytes per idle connection.

use super::Token;

/// Resolution of deadlines, in milliseconds: a timeout fires at most this much late
/// (plus the length of one turn of the loop).
pub const TICK_MS: u64 = 100;
/// 1024 ticks of 100 ms: a horizon of 102 s, so the default timeouts are filed once.
const SLOTS: usize = 1024;
/// The `filed` value of a connection that is in no slot of the wheel.
pub const NOT_FILED: u32 = u32::MAX;

pub struct Wheel {
    slots: Vec<Vec<Token>>,
    /// A bit per slot, set while the slot holds entries: the next deadline is found in 16
    /// words, not 1,024 slots.
    occupied: [u64; SLOTS / 64],
    /// The tick whose slot is due next.
    next: u32,
}

/// The tick that ends at or after `ms`.
pub fn tick_at_or_after(ms: u64) -> u32 {
    ms.div_ceil(TICK_MS).min(u64::from(NOT_FILED - 1)) as u32
}

/// The tick `ms` falls in (every tick up to it is due).
pub fn tick_of(ms: u64) -> u32 {
    (ms / TICK_MS).min(u64::from(NOT_FILED - 1)) as u32
}

impl Wheel {
    pub fn new(now_ms: u64) -> Wheel {
        Wheel { slots: (0..SLOTS).map(|_| Vec::new()).collect(), occupied: [0; SLOTS / 64], next: tick_of(now_ms) }
    }

    /// File `token` at tick `at` (clamped into the wheel's horizon); returns the tick it
    /// was actually filed under, which the caller keeps to recognise the entry.
    pub fn schedule(&mut self, token: Token, at: u32) -> u32 {
        let at = at.clamp(self.next, self.next + SLOTS as u32 - 1);
        let slot = at as usize % SLOTS;
        self.slots[slot].push(token);
        self.occupied[slot / 64] |= 1 << (slot % 64);
        at
    }

    /// The earliest tick with an entry filed (stale ones included), if any.
    pub fn next_due(&self) -> Option<u32> {
        // Every entry lies within the horizon from `next`, so the first occupied slot in
        // wheel order from `next`'s holds the earliest.
        let start = self.next as usize % SLOTS;
        let words = self.occupied.len();
        for i in 0..=words {
            let w = (start / 64 + i) % words;
            let mut bits = self.occupied[w];
            if i == 0 {
                bits &= u64::MAX << (start % 64);
            } else if i == words {
                bits &= !(u64::MAX << (start % 64));
            }
            if bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                return Some(self.next + ((slot + SLOTS - start) % SLOTS) as u32);
            }
        }
        None
    }

    /// Whether `token` is filed at `tick`.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn holds(&self, token: Token, tick: u32) -> bool {
        tick >= self.next && tick < self.next + SLOTS as u32 && self.slots[tick as usize % SLOTS].contains(&token)
    }

    /// Entries filed, stale ones included.
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }

    /// Every token filed at a tick up to `now`.
    pub fn expire(&mut self, now: u32, due: &mut Vec<Token>) {
        due.clear();
        if now < self.next {
            return;
        }
        // After a long stall (a suspended VM), visit each slot once, not each tick.
        let first = self.next.max(now.saturating_sub(SLOTS as u32 - 1));
        for tick in first..=now {
            let slot = tick as usize % SLOTS;
            due.append(&mut self.slots[slot]);
            self.occupied[slot / 64] &= !(1 << (slot % 64));
        }
        self.next = now + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_at_or_after_deadline_once() {
        let mut w = Wheel::new(10_000);
        let mut due = Vec::new();
        assert_eq!(w.schedule(Token(1), 102), 102);
        assert_eq!(w.schedule(Token(2), 50), 100);
        assert_eq!(w.schedule(Token(3), 10_000), 100 + SLOTS as u32 - 1);
        w.expire(101, &mut due);
        assert_eq!(due, [Token(2)]);
        w.expire(101, &mut due);
        assert!(due.is_empty());
        w.expire(105, &mut due);
        assert_eq!(due, [Token(1)]);
        w.expire(100_000, &mut due);
        assert_eq!(due, [Token(3)]);
    }

    #[test]
    fn the_next_due_tick_is_the_earliest_filed_across_the_wrap() {
        let mut w = Wheel::new(0);
        let mut due = Vec::new();
        assert_eq!(w.next_due(), None);
        w.schedule(Token(1), 700);
        w.schedule(Token(2), 300);
        assert_eq!(w.next_due(), Some(300));
        w.expire(300, &mut due);
        assert_eq!(w.next_due(), Some(700));
        // Past the wrap: tick 1,100 lies in slot 76, before `next`'s slot (301).
        w.schedule(Token(3), 1_100);
        w.expire(700, &mut due);
        assert_eq!(w.next_due(), Some(1_100));
        // In `next`'s own word, below it: a full turn of the wheel later.
        let mut w = Wheel::new(70 * TICK_MS);
        w.schedule(Token(4), 70 + SLOTS as u32 - 6);
        assert_eq!(w.next_due(), Some(70 + SLOTS as u32 - 6));
        w.schedule(Token(5), 71);
        assert_eq!(w.next_due(), Some(71));
        w.expire(71, &mut due);
        assert_eq!(due, [Token(5)]);
        assert_eq!(w.next_due(), Some(70 + SLOTS as u32 - 6));
    }

    #[test]
    fn an_entry_is_8_bytes() {
        // Every connection held has an entry: at 10,000 idle ones each byte is 10 kB.
        let mut w = Wheel::new(0);
        let at = w.schedule(Token(7), 5);
        assert_eq!(size_of_val(w.slots[at as usize % SLOTS].as_slice()), 8);
    }

    #[test]
    fn ticks_round_deadlines_up_and_the_clock_down() {
        assert_eq!((tick_at_or_after(5_000), tick_at_or_after(5_001)), (50, 51));
        assert_eq!((tick_of(5_000), tick_of(5_099)), (50, 50));
    }
}
