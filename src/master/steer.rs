//! Which shards new connections go to, and what the status port says of the shards: the
//! master's side of `driver::sys::steer_to`, redone at every turn of its loop, for every
//! listener's address (each its own SO_REUSEPORT group).

use super::*;

impl Master {
    /// Steer new connections to the shards that serve, away from any that is down (dead,
    /// in a crash-loop backoff, or its replacement not serving yet), and say which are
    /// down and why for `/healthz`, `/status` and `/metrics`.
    pub(super) fn steer(&mut self) {
        // One socket of each address's group names the group.
        let Some(groups) = self.slots.first().map(|s| &s.listeners).filter(|l| !l.is_empty()) else { return };
        let serving = |i: usize| self.workers.iter().any(|w| w.index == i && w.serving && !w.stopped);
        let up: Vec<u16> = (0..self.slots.len()).filter(|&i| serving(i)).map(|i| i as u16).collect();
        let now = Instant::now();
        let down: Vec<String> = (0..self.slots.len())
            .filter(|&i| !serving(i))
            .map(|i| match self.slots[i].restart_at {
                Some(at) => {
                    format!("shard {i} is down, restarting in {} s", at.saturating_duration_since(now).as_secs() + 1)
                }
                None => format!("shard {i} is starting"),
            })
            .collect();
        let down = down.join("; ");
        let states: Vec<String> = (0..self.slots.len())
            .map(|i| {
                let mut state = match self.workers.iter().find(|w| w.index == i && w.serving && !w.stopped) {
                    Some(w) => format!("serving (generation {})", w.generation),
                    None => match self.slots[i].restart_at {
                        Some(at) => format!("backoff, {} s left", at.saturating_duration_since(now).as_secs() + 1),
                        None => "starting".to_string(),
                    },
                };
                for w in self.workers.iter().filter(|w| w.index == i && w.stopped) {
                    state.push_str(&format!("; generation {} draining", w.generation));
                }
                state
            })
            .collect();
        if states != self.shard_states {
            self.published.set_shard_states(states.clone());
            self.shard_states = states;
        }
        if down != self.down {
            self.published.set_shards(up.len() as u64, down.clone());
            self.down = down;
        }
        if up == self.steered {
            return;
        }
        // All up: no program, the kernel spreads connections as it does by itself. None up
        // (only while starting or stopping): no program either; they wait, not refused.
        let steer: &[u16] = if up.len() == self.slots.len() { &[] } else { &up };
        // Every group, even past one that fails: the first error is said.
        match groups.iter().map(|listener| sys::steer_to(listener, steer)).fold(Ok(()), Result::and) {
            Ok(()) if !self.down.is_empty() && self.serving => {
                self.said_down = true;
                log::warn(format_args!("new connections go to shards {up:?} only: {}", self.down))
            }
            // Said only after a line that some were down (not when the start completes).
            Ok(()) if self.down.is_empty() && std::mem::take(&mut self.said_down) => {
                log::info(format_args!("every shard serves again: new connections go to all"))
            }
            Ok(()) => {}
            Err(e) => log::error(format_args!("cannot steer new connections away from the shards down: {e}")),
        }
        self.steered = up;
    }
}
