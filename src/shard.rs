//! A shard: one pinned reactor owning its listeners (plain and TLS), its connections (the
//! core) and the driver that does their I/O. One turn of the loop, as nginx's: wait for events →
//! advance the clock → report events and accept (driver) → expired timers (core) →
//! deferred work (the ready list: connections that timed out or yielded their budget).
//! Every part of a turn is bounded (events per wait, budget per connection, accepts per
//! turn). With nothing ready the wait lasts until the core's next deadline (a timer, or
//! the end of a pause in accepting), the access log's next write, or the drain's end,
//! and at most `IDLE_WAKE`: an idle shard wakes once a second, not ten times. `Date` is
//! read afresh at every wake, so a response never carries a stale one.

#![forbid(unsafe_code)]

use crate::access::{AccessLog, LogFormat, WRITE_BATCH};
use crate::conn::Context;
use crate::driver::sys::LogFile;
use crate::driver::{Driver, Sizing};
use crate::lifecycle::{Core, Millis, Timeouts, Token, timer};
use crate::log;
use crate::transport::{Plain, Transport};
use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A shard: a core and the driver that does its I/O.
pub struct Shard<D: Driver, T: Transport = Plain> {
    driver: D,
    core: Core<D::ConnIo, T>,
    clock: Clock,
    access_log: Option<LogFile>,
    /// When the access log was last written (monotonic ms).
    access_written: Millis,
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
        Clock { origin: Instant::now(), mono_at: 0, wall_at: crate::http::date::unix_ms() }
    }

    /// (monotonic ms, wall seconds, monotonic µs)
    fn read(&mut self) -> (u64, u64, u64) {
        let micros = self.origin.elapsed().as_micros() as u64;
        let mono = micros / 1000;
        if mono.saturating_sub(self.mono_at) >= 1000 {
            (self.mono_at, self.wall_at) = (mono, crate::http::date::unix_ms());
        }
        (mono, (self.wall_at + mono.saturating_sub(self.mono_at)) / 1000, micros)
    }
}

impl<D: Driver, T: Transport> Shard<D, T> {
    /// A shard accepting on `listeners`, whose places in the list are their listener
    /// numbers (`Transport::open`).
    pub fn new(listeners: Vec<TcpListener>, ctx: Context, timeouts: Timeouts, sizing: Sizing) -> io::Result<Self> {
        let mut clock = Clock::new();
        let (now, wall, _) = clock.read();
        let core = Core::new(ctx, timeouts, sizing.max_conns, now, wall);
        Ok(Shard { driver: D::new(listeners, &sizing)?, core, clock, access_log: None, access_written: 0 })
    }

    /// What the connections' transports share (TLS: certificates, ticket keys, buffers).
    pub fn transports(&mut self) -> &mut T::Shared {
        self.core.transports()
    }

    /// Log every response to `file`, as `format`, naming this shard `index`.
    pub fn log_access(&mut self, file: LogFile, format: LogFormat, index: usize) {
        self.core.log_access(AccessLog::new(format, index));
        self.access_log = Some(file);
    }

    /// Write the access log's whole lines in one write, once `WRITE_BATCH` bytes or a
    /// tick's worth of them wait (or `now`: at a reopen, which comes first, and at the end).
    fn write_access_log(&mut self, reopen: bool, now: bool) {
        let at = self.core.now();
        let (Some(file), Some(lines)) = (&mut self.access_log, self.core.access_lines()) else { return };
        if !(now || reopen || lines.len() >= WRITE_BATCH || at >= self.access_written + timer::TICK_MS) {
            return;
        }
        self.access_written = at;
        if reopen {
            match file.reopen() {
                Ok(()) => log::info(format_args!("access log reopened")),
                Err(e) => log::error(format_args!("access log: cannot reopen: {e}; writing on to the old file")),
            }
        }
        if !lines.is_empty() {
            if let Err(e) = file.write(lines) {
                log::error(format_args!("access log: {e}; {} bytes of lines lost", lines.len()));
            }
            lines.clear();
        }
    }

    /// Serve until `stop` says so. A drain stops accepting, lets idle connections go,
    /// finishes what is begun and returns when nothing is left, or after `grace`
    /// milliseconds, closing what is left then; an immediate stop closes everything at once.
    pub fn run(mut self, stop: &Stop, grace: Millis) -> io::Result<()> {
        let mut ready = Vec::new();
        let mut drain_until = None;
        let mut announce_drain = false;
        let result = loop {
            if stop.now.load(Ordering::Relaxed) {
                log::info(format_args!(
                    "stopping at once: closing {}",
                    log::count(self.core.len() as u64, "connection")
                ));
                break Ok(());
            }
            if drain_until.is_none() && stop.drain.load(Ordering::Relaxed) {
                drain_until = Some(self.core.now() + grace);
                self.core.drain();
                self.driver.stop_accepting(&mut self.core);
                announce_drain = true;
            }
            // Said once it is true: an io_uring accept cancelled still completes, and
            // may take a connection, until its last completion lets go of the listener.
            if announce_drain && !self.driver.listening() {
                announce_drain = false;
                log::info(format_args!(
                    "draining: accepting no more; {} open, {} s at most",
                    log::count(self.core.len() as u64, "connection"),
                    grace / 1000
                ));
            }
            if let Some(until) = drain_until {
                if self.core.is_empty() && self.driver.quiet() {
                    log::info(format_args!("drained"));
                    break Ok(());
                }
                if self.core.now() >= until {
                    log::warn(format_args!(
                        "shutdown timeout ({} s): closing the {} left",
                        grace / 1000,
                        log::count(self.core.len() as u64, "connection")
                    ));
                    break Ok(());
                }
            }
            let timeout = if self.core.has_ready() { Duration::ZERO } else { self.sleep(drain_until) };
            if let Err(e) = self.driver.wait(timeout) {
                break Err(e);
            }
            let (now, wall, micros) = self.clock.read();
            self.core.advance(now, wall);
            self.core.advance_micros(micros);
            self.driver.dispatch(&mut self.core);
            self.core.expire();
            self.resume_ready(&mut ready);
            // A load first: the swap (a locked write) only when SIGUSR1 came.
            let reopen = stop.reopen.load(Ordering::Relaxed) && stop.reopen.swap(false, Ordering::Relaxed);
            self.write_access_log(reopen, false);
        };
        self.core.close_all();
        self.resume_ready(&mut ready);
        // Connections whose operations were still in flight (io_uring) are released by the
        // shutdown, and their responses cut short are logged then: write after it.
        let quiet = self.driver.shutdown(&mut self.core);
        self.write_access_log(false, true);
        if !quiet {
            // The kernel may still use connection buffers: leak them rather than free them.
            std::mem::forget(self);
        }
        result
    }

    /// How long the loop may wait with nothing ready: until the first thing it has to do
    /// by itself, `IDLE_WAKE` at most.
    fn sleep(&mut self, drain_until: Option<Millis>) -> Duration {
        let now = self.core.now();
        let mut until = now + IDLE_WAKE;
        if let Some(deadline) = self.core.next_deadline() {
            until = until.min(deadline);
        }
        if let Some(end) = drain_until {
            until = until.min(end);
        }
        if self.core.access_lines().is_some_and(|lines| !lines.is_empty()) {
            until = until.min(self.access_written + timer::TICK_MS);
        }
        Duration::from_millis(until.saturating_sub(now))
    }

    /// Carry out the next action of every connection on the core's ready list.
    fn resume_ready(&mut self, ready: &mut Vec<Token>) {
        self.core.take_ready(ready);
        for &token in ready.iter() {
            self.driver.resume(&mut self.core, token);
        }
    }
}

/// The longest a shard with nothing to do sleeps: the stop and reopen flags its signal
/// handlers set are read at every wake (a signal also ends the wait early, unless it comes
/// just before it).
const IDLE_WAKE: Millis = 1000;

/// What the shard's signal handlers ask of it.
#[derive(Default)]
pub struct Stop {
    /// Drain, then exit (SIGTERM).
    pub drain: Arc<AtomicBool>,
    /// Exit now (SIGQUIT).
    pub now: Arc<AtomicBool>,
    /// Reopen the access log (SIGUSR1, after logrotate moved it).
    pub reopen: Arc<AtomicBool>,
}
