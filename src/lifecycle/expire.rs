//! Deadlines: firing those that passed, and saying when the next one is, so that a shard
//! with nothing to do sleeps until then instead of waking to find nothing.

use super::timer::{NOT_FILED, TICK_MS, tick_of};
use super::{Core, Flags, Millis, Timer};
use crate::stats::TimeoutKind;
use crate::transport::Transport;

impl<C, T: Transport> Core<C, T> {
    /// Fire every deadline that has passed: a request cut off is told 408 and closed, a
    /// stalled send is aborted, an idle or lingering connection is closed. Each goes on
    /// the ready list for its driver to carry out.
    pub fn expire(&mut self) {
        let now = tick_of(self.now);
        self.wheel.expire(now, &mut self.due);
        for i in 0..self.due.len() {
            let token = self.due[i];
            let Some(key) = self.live(token) else { continue };
            let slot = &mut self.slots[key];
            // The slot's entry lies at `filed`, and any other one it has at a later tick
            // (filed before the deadline moved earlier). Filed past `now`, this entry is such
            // a stale one; at or before, it stands for the slot, which is then unfiled or
            // filed past `now`, so a second entry due with it finds nothing to do.
            if slot.filed > now {
                continue;
            }
            slot.filed = NOT_FILED;
            if slot.timer == Timer::None {
                continue;
            }
            if slot.deadline > now {
                slot.filed = self.wheel.schedule(token, slot.deadline);
                continue;
            }
            let stats = self.ctx.stats;
            match slot.timer {
                // A drain letting idle connections go is no timeout.
                Timer::Idle if self.ctx.draining => {}
                // A new connection that sent nothing waited as long as a request may take.
                Timer::Idle if slot.conn.responses > 0 => stats.timeout(TimeoutKind::Keepalive),
                Timer::Request | Timer::Idle => stats.timeout(TimeoutKind::Request),
                Timer::Send => stats.timeout(TimeoutKind::Send),
                Timer::Linger | Timer::None => {}
            }
            match slot.timer {
                Timer::Request => {
                    slot.flags.set(Flags::UNPARSED, false);
                    slot.conn.timed_out(&mut self.ctx, &mut self.scratch);
                    let mut out = self.pool.pop().unwrap_or_default();
                    out.fill_from(&mut self.scratch);
                    self.slots[key].conn.out = Some(out);
                    self.log_records(key);
                }
                Timer::Send => self.close(key, true),
                Timer::Idle | Timer::Linger | Timer::None => self.close(key, false),
            }
            self.settle(key);
            self.wake(key);
        }
    }

    /// When `expire` next has work (a deadline's tick, perhaps one that moved later since
    /// and only needs refiling), or accepting resumes after a pause; `None`: nothing is
    /// pending. What is on the ready list is the caller's to check (`has_ready`).
    pub fn next_deadline(&self) -> Option<Millis> {
        let timer = self.wheel.next_due().map(|tick| u64::from(tick) * TICK_MS);
        match (timer, self.accept_paused()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
