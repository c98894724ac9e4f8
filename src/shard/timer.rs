//! A coarse timer wheel, one slot per second. Deadlines only move later on the hot path
//! (each request pushes a connection's deadline out), so a connection stays filed under
//! its earliest deadline and is refiled lazily when that slot comes due: no timer
//! operation per request.

use crate::driver::Token;

const SLOTS: usize = 128;

pub struct Wheel {
    slots: Vec<Vec<(Token, u64)>>,
    /// The second whose slot is due next.
    next: u64,
}

impl Wheel {
    pub fn new(now: u64) -> Wheel {
        Wheel { slots: (0..SLOTS).map(|_| Vec::new()).collect(), next: now }
    }

    /// File `token` at second `at` (clamped into the wheel's horizon); returns the second
    /// it was actually filed under, which the caller keeps to recognise the entry.
    pub fn schedule(&mut self, token: Token, at: u64) -> u64 {
        let at = at.clamp(self.next, self.next + SLOTS as u64 - 1);
        self.slots[(at % SLOTS as u64) as usize].push((token, at));
        at
    }

    /// Every token filed at a second up to `now`, with the second it was filed under.
    pub fn expire(&mut self, now: u64, due: &mut Vec<(Token, u64)>) {
        due.clear();
        // After a long stall (a suspended VM), visit each slot once, not each second.
        let first = self.next.max(now.saturating_sub(SLOTS as u64 - 1));
        for second in first..=now {
            let slot = &mut self.slots[(second % SLOTS as u64) as usize];
            due.append(slot);
        }
        self.next = self.next.max(now + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_at_or_after_deadline_once() {
        let mut w = Wheel::new(100);
        let mut due = Vec::new();
        assert_eq!(w.schedule(Token(1), 102), 102);
        assert_eq!(w.schedule(Token(2), 50), 100);
        assert_eq!(w.schedule(Token(3), 10_000), 227);
        w.expire(101, &mut due);
        assert_eq!(due, [(Token(2), 100)]);
        w.expire(101, &mut due);
        assert!(due.is_empty());
        w.expire(105, &mut due);
        assert_eq!(due, [(Token(1), 102)]);
        w.expire(1_000, &mut due);
        assert_eq!(due, [(Token(3), 227)]);
    }
}
