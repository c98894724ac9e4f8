//! One thread's epoll loop over its share of the connections: edge-triggered sockets, a
//! connect queue (at most [`MAX_CONNECTING`] connects whose first answer has not arrived),
//! a sweep every 50 ms for timeouts and retries, and in open loop a heap of due sends woken
//! by a timerfd (so sends leave at their intended time to the microsecond, not to epoll's
//! millisecond).
//!
//! Two phases: the ramp, when only the idle connections are queued (with `--warmup`, the
//! active ones too, each answering one request before it waits), and once the [`Gate`]
//! opens (every thread and process holding its share, or the ramp's timeout) the load, when
//! the active ones join (or begin) for `--warmup`'s seconds and then `--duration`. Only
//! `--duration` is measured.

use std::cmp::Reverse;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::cli::Config;
use crate::conn::{Conn, Ctx, MAX_CONNECTING, State};
use crate::stats::{Progress, Stats};

const SWEEP: Duration = Duration::from_millis(50);
/// Time one pass of the loop may spend starting connects.
const CONNECT_BUDGET: Duration = Duration::from_millis(5);
/// The epoll data of the timerfd and of the gate's eventfd (sockets carry slot << 32 |
/// generation).
const TIMER: u64 = u64::MAX;
const GATE: u64 = u64::MAX - 1;

/// One thread's share of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub conns: usize,
    pub idle: usize,
    pub rate: Option<f64>,
    /// The index of this thread's first connection in the whole run.
    pub first_slot: usize,
}

/// The start of the load, for every thread of a process at once: opened once (by whoever
/// decides the ramp is over), it wakes every thread's loop through one eventfd that each
/// has in its epoll set edge-triggered (so each sees the write once and none spins on it).
pub struct Gate {
    at: OnceLock<Instant>,
    wake: EventFd,
}

impl Gate {
    pub fn new() -> Result<Gate, String> {
        let wake = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(|e| format!("eventfd: {}", e.desc()))?;
        Ok(Gate { at: OnceLock::new(), wake })
    }

    /// Begin the load now (once; later calls change nothing).
    pub fn open(&self) {
        if self.at.set(Instant::now()).is_ok() {
            let _ = self.wake.write(1);
        }
    }

    /// When the load began.
    pub fn opened(&self) -> Option<Instant> {
        self.at.get().copied()
    }
}

/// Run `plan` from `start` (the run's start, which the ramp's times count from): the idle
/// connections at once, the active ones from the moment `gate` opens until `--duration`
/// later (or `stop`).
pub fn run(
    cfg: &Config,
    plan: Plan,
    start: Instant,
    gate: &Gate,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<Stats, String> {
    let sys = |what: &str, e: Errno| format!("{what}: {}", e.desc());
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| sys("epoll_create", e))?;
    let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)
        .map_err(|e| sys("timerfd_create", e))?;
    epoll.add(&timer, EpollEvent::new(EpollFlags::EPOLLIN, TIMER)).map_err(|e| sys("epoll_ctl", e))?;
    let gate_ev = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, GATE);
    epoll.add(&gate.wake, gate_ev).map_err(|e| sys("epoll_ctl", e))?;
    // Open loop: each connection sends every conns/rate seconds, the connections staggered
    // so the thread's requests are evenly spaced.
    let interval = plan.rate.map(|r| Duration::from_secs_f64(plan.conns as f64 / r));
    if interval.is_some() {
        // The timer's default 50 us of slack would make every send that much late.
        let _ = nix::sys::prctl::set_timerslack(1);
    }
    let tls = cfg.tls.as_ref().map(|t| t.for_thread()).transpose()?;
    let mut ctx = Ctx::new(cfg, epoll, interval, plan.first_slot, tls);
    let n_paths = cfg.requests.len();
    let mut conns: Vec<Conn> =
        (0..plan.conns + plan.idle).map(|i| Conn::new(i >= plan.conns, (plan.first_slot + i) % n_paths)).collect();
    // The ramp: only the idle connections are queued; the active ones wait for the gate, or
    // with --warmup open too.
    ctx.queue.extend(plan.conns..conns.len());
    if cfg.open_first {
        ctx.queue.extend(0..plan.conns);
        conns[..plan.conns].iter_mut().for_each(|c| c.warming = true);
    }
    let warm_target = if cfg.open_first { plan.conns as u64 } else { 0 };
    let mut events = vec![EpollEvent::empty(); 1024];
    let mut next_sweep = start;
    let mut armed: Option<Instant> = None;
    let mut idle_ready = (plan.idle == 0 && warm_target == 0).then_some(0.0);
    if let Some(s) = idle_ready {
        let _ = progress.idle_ready_s.set(s);
    }
    // The load, once the gate opened: (its start, its end); it is measured from
    // `ctx.measure_from`, after the warm-up.
    let mut load: Option<(Instant, Instant)> = None;
    let (mut idle_at_start, mut warmed) = (0, 0);
    let warmup = cfg.warmup.unwrap_or_default();
    loop {
        ctx.now = Instant::now();
        if stop.load(Relaxed) || load.is_some_and(|(_, end)| ctx.now >= end) {
            break;
        }
        if load.is_none()
            && let Some(at) = gate.opened()
        {
            load = Some((at, at + warmup + cfg.duration));
            ctx.measure_from = Some(at + warmup);
            (idle_at_start, warmed) = (ctx.idle_held, ctx.warm_held);
            for i in (0..plan.conns).rev() {
                if let Some(r) = plan.rate {
                    conns[i].start_at(at + Duration::from_secs_f64(i as f64 / r));
                }
                if cfg.open_first {
                    // Open ones send now; the rest are queued already.
                    ctx.begin_load(&mut conns[i], i);
                } else {
                    // Ahead of any idle connection still waiting (the ramp timed out), so the
                    // load starts with all its connections.
                    ctx.queue.push_front(i);
                }
            }
        }
        if ctx.now >= next_sweep {
            sweep(&mut ctx, &mut conns);
            next_sweep = ctx.now + SWEEP;
        }
        // connect() costs more the more local ports a source address already uses (the
        // kernel searches for a free one), up to milliseconds: bound the time one pass
        // spends on it, so open connections are still served while a large population ramps.
        let budget = ctx.now + CONNECT_BUDGET;
        while ctx.in_progress() < MAX_CONNECTING
            && let Some(slot) = ctx.queue.pop_front()
        {
            ctx.start_connect(&mut conns[slot], slot);
            if Instant::now() >= budget {
                break;
            }
        }
        while let Some(&Reverse((t, slot))) = ctx.heap.peek()
            && t <= ctx.now
        {
            ctx.heap.pop();
            ctx.due(&mut conns[slot], slot);
        }
        // The next due send (always in the future here) arms the timer when it is earlier
        // than what the timer holds.
        if let Some(&Reverse((t, _))) = ctx.heap.peek()
            && armed.is_none_or(|a| t < a)
        {
            let wait = TimeSpec::from_duration((t - ctx.now).max(Duration::from_nanos(1)));
            timer.set(Expiration::OneShot(wait), TimerSetTimeFlags::empty()).map_err(|e| sys("timerfd_settime", e))?;
            armed = Some(t);
        }
        let wake = load.map_or(next_sweep, |(_, end)| next_sweep.min(end));
        let ms = wake.saturating_duration_since(ctx.now).as_micros().div_ceil(1000).min(1000) as u16;
        let n = match ctx.epoll.wait(&mut events, EpollTimeout::from(ms)) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(sys("epoll_wait", e)),
        };
        ctx.now = Instant::now();
        for ev in &events[..n] {
            if ev.data() == TIMER {
                let _ = nix::unistd::read(&timer, &mut [0u8; 8]);
                armed = None;
                continue;
            }
            if ev.data() == GATE {
                // Seen at the top of the next pass; the eventfd stays written for the others.
                continue;
            }
            let slot = (ev.data() >> 32) as usize;
            let c = &mut conns[slot];
            if c.generation == ev.data() as u32 && matches!(c.state, State::Connecting(_) | State::Open) {
                ctx.on_event(c, slot, ev.events());
            }
        }
        if idle_ready.is_none()
            && ctx.idle_held == plan.idle as u64
            && (warm_target == 0 || load.is_none() && ctx.warm_held == warm_target)
        {
            let s = start.elapsed().as_secs_f64();
            idle_ready = Some(s);
            let _ = progress.idle_ready_s.set(s);
        }
        let st = &ctx.stats;
        progress.set(st.requests, st.errors_total(), ctx.open, ctx.idle_open);
    }
    let mut stats = ctx.stats;
    stats.duration_s = ctx.measure_from.map_or(0.0, |m| Instant::now().saturating_duration_since(m).as_secs_f64());
    stats.idle_phase_s = load.map(|(at, _)| at.saturating_duration_since(start).as_secs_f64());
    stats.idle_at_start = idle_at_start;
    stats.warmed = warmed;
    stats.connections = plan.conns as u64;
    stats.idle = plan.idle as u64;
    stats.idle_ready_s = idle_ready;
    stats.idle_open = conns.iter().filter(|c| c.idle && c.state == State::Open).count() as u64;
    stats.inflight = conns.iter().map(|c| c.in_flight() as u64).sum();
    progress.set(stats.requests, stats.errors_total(), ctx.open, stats.idle_open);
    Ok(stats)
}

/// Timeouts (connects and requests) and due retries.
fn sweep(ctx: &mut Ctx, conns: &mut [Conn]) {
    let limit = ctx.now.checked_sub(ctx.cfg.timeout);
    for (slot, c) in conns.iter_mut().enumerate() {
        match c.state {
            State::Waiting(t) if t <= ctx.now => {
                c.state = State::Queued;
                ctx.queue.push_back(slot);
            }
            State::Connecting(since) if limit.is_some_and(|l| since <= l) => ctx.abandon_connect(c, Errno::ETIMEDOUT),
            State::Open if limit.is_some_and(|l| c.overdue(l)) => {
                ctx.stats.error(crate::stats::ErrorKind::Timeout);
                ctx.end(c, slot);
            }
            _ => {}
        }
    }
}
