//! A shard: one pinned reactor owning a listener, its connections (the core) and the
//! driver that does their I/O. One turn of the loop, as nginx's: wait for events →
//! advance the clock → report events and accept (driver) → expired timers (core) →
//! deferred work (the ready list: connections that timed out or yielded their budget).
//! Every part of a turn is bounded (events per wait, budget per connection, accepts per
//! turn), and the wait itself lasts at most `timer::TICK_MS`, so timers and `Date`
//! advance at least that often under any load.

#![forbid(unsafe_code)]

use crate::conn::Site;
use crate::core::{Core, Timeouts, timer};
use crate::driver::{Driver, Sizing};
use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A shard: a core and the driver that does its I/O.
pub struct Shard<D: Driver> {
    driver: D,
    core: Core<D::ConnIo>,
    clock: Clock,
}

/// Both clocks from one reading a turn: monotonic milliseconds since the shard started,
/// for deadlines (which never see the wall clock step), and wall seconds since the epoch,
/// for `Date` and the file cache only, read afresh once a second and advanced by the
/// monotonic clock in between.
struct Clock {
    origin: Instant,
    /// Monotonic and wall milliseconds at the last wall reading.
    mono_at: u64,
    wall_at: u64,
}

impl Clock {
    fn new() -> Clock {
        Clock { origin: Instant::now(), mono_at: 0, wall_at: wall_ms() }
    }

    /// (monotonic ms, wall seconds)
    fn read(&mut self) -> (u64, u64) {
        let mono = self.origin.elapsed().as_millis() as u64;
        if mono.saturating_sub(self.mono_at) >= 1000 {
            (self.mono_at, self.wall_at) = (mono, wall_ms());
        }
        (mono, (self.wall_at + mono.saturating_sub(self.mono_at)) / 1000)
    }
}

fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl<D: Driver> Shard<D> {
    pub fn new(listener: TcpListener, site: Site, timeouts: Timeouts, sizing: Sizing) -> io::Result<Self> {
        let mut clock = Clock::new();
        let (now, wall) = clock.read();
        let core = Core::new(site, timeouts, sizing.max_conns, now, wall);
        Ok(Shard { driver: D::new(listener, &sizing)?, core, clock })
    }

    /// Run until `stop` is set (by a signal handler), then close every connection.
    pub fn run(mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut ready = Vec::new();
        let result = loop {
            if stop.load(Ordering::Relaxed) {
                break Ok(());
            }
            let timeout = if self.core.has_ready() { Duration::ZERO } else { Duration::from_millis(timer::TICK_MS) };
            if let Err(e) = self.driver.wait(timeout) {
                break Err(e);
            }
            let (now, wall) = self.clock.read();
            self.core.advance(now, wall);
            self.driver.dispatch(&mut self.core);
            self.core.expire();
            self.core.take_ready(&mut ready);
            for &token in &ready {
                self.driver.resume(&mut self.core, token);
            }
        };
        if !self.driver.shutdown(&mut self.core) {
            // The kernel may still use connection buffers: leak them rather than free them.
            std::mem::forget(self);
        }
        result
    }
}
