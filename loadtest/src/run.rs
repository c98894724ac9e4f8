//! One process's run: its threads, each with a share of the connections and rate, the
//! ramp (the idle connections open first; the load begins once all are, or at
//! `--idle-timeout`), and the once-a-second progress line while they work.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::cli::{Config, share};
use crate::client::{self, Gate, Plan};
use crate::stats::{Progress, Stats};

/// How often the progress loop looks whether the ramp is over, while it runs.
const RAMP_POLL: Duration = Duration::from_millis(5);

/// Run this process's share on `cfg.threads` threads and merge their results.
pub fn run_local(cfg: &Config, stop: &Arc<AtomicBool>) -> Result<Stats, String> {
    let total = cfg.conns + cfg.idle;
    let threads = cfg.threads.min(total).max(1);
    // A worker's connections follow those of the workers before it (for source rotation).
    let mut first_slot = cfg.worker.unwrap_or(0) * total;
    let plans: Vec<Plan> = (0..threads)
        .map(|i| {
            let conns = share(cfg.conns, threads, i);
            let idle = share(cfg.idle, threads, i);
            let rate = cfg.rate.filter(|_| conns > 0).map(|r| r * conns as f64 / cfg.conns as f64);
            let plan = Plan { conns, idle, rate, first_slot };
            first_slot += conns + idle;
            plan
        })
        .collect();
    let progress: Vec<Arc<Progress>> = plans.iter().map(|_| Arc::default()).collect();
    let gate = Arc::new(Gate::new()?);
    let start = Instant::now();
    if cfg.worker.is_some() {
        follow_parent(gate.clone(), stop.clone());
    } else if cfg.load_during_ramp {
        gate.open();
    }
    let (tx, rx) = channel();
    let results = std::thread::scope(|s| {
        for (plan, p) in plans.iter().zip(&progress) {
            let tx = tx.clone();
            let gate = &gate;
            s.spawn(move || {
                let _ = tx.send(client::run(cfg, *plan, start, gate, stop, p));
            });
        }
        drop(tx);
        let mut begin = || {
            gate.open();
            announce_load(cfg, start);
        };
        let ramp = if cfg.worker.is_none() && !cfg.load_during_ramp {
            Ramp::Decide { deadline: start + cfg.idle_timeout, begin: &mut begin }
        } else {
            Ramp::Leave
        };
        progress_loop(&rx, plans.len(), &progress, start, cfg.worker.is_some(), cfg.idle, ramp, &mut || {})
    });
    let mut stats = Stats::default();
    for r in results {
        stats.merge(&r?);
    }
    Ok(stats)
}

/// With `--warmup`, say on stderr when the load began: `c10k-load: load began 2.013 s in;
/// measured after 2.000 s of warm-up` (from which make loadtest times the measured window).
pub fn announce_load(cfg: &Config, start: Instant) {
    if let Some(w) = cfg.warmup {
        let (at, w) = (start.elapsed().as_secs_f64(), w.as_secs_f64());
        eprintln!("c10k-load: load began {at:.3} s in; measured after {w:.3} s of warm-up");
    }
}

/// A worker begins its load when its parent writes `go` on its stdin; a parent that goes
/// away before (stdin at its end) stops it, rather than leaving it holding connections.
fn follow_parent(gate: Arc<Gate>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(n) if n > 0 && line.trim() == "go" => gate.open(),
            _ => stop.store(true, Relaxed),
        }
    });
}

/// Who ends the ramp.
pub enum Ramp<'a> {
    /// This loop does: it calls `begin` once every idle share is held, or at `deadline`
    /// (`--idle-timeout` after the run's start) without them, saying so on stderr.
    Decide { deadline: Instant, begin: &'a mut dyn FnMut() },
    /// Someone else does (a worker's parent), or it is already over (`--load-during-ramp`).
    Leave,
}

/// Collect `expected` results from `rx`, printing a progress line every second: on stderr,
/// or for a worker as a `progress` line on stdout for its parent. `poll` runs every 100 ms
/// (every 5 ms during the ramp). Within 5 ms of the moment all `idle` connections are held
/// (each thread or worker of `progress` holding its share), one line says so: `c10k-load:
/// idle ready N in S s` on stderr (what `make loadtest` waits for to sample the server's
/// memory), or for a worker `idle_ready S` on stdout; and `ramp` begins the load then.
#[allow(clippy::too_many_arguments)]
pub fn progress_loop<T>(
    rx: &Receiver<T>,
    expected: usize,
    progress: &[Arc<Progress>],
    start: Instant,
    worker: bool,
    idle: usize,
    mut ramp: Ramp,
    poll: &mut dyn FnMut(),
) -> Vec<T> {
    let mut out = Vec::with_capacity(expected);
    let mut tick = 1u64;
    let mut last = (start, 0u64);
    // A worker tells its parent even with no idle share (the parent waits for every worker).
    let mut idle_told = idle == 0 && !worker;
    while out.len() < expected {
        let next = start + Duration::from_secs(tick);
        let mut wait = next.saturating_duration_since(Instant::now()).min(Duration::from_millis(100));
        if !idle_told || matches!(ramp, Ramp::Decide { .. }) {
            wait = wait.min(RAMP_POLL);
        }
        match rx.recv_timeout(wait) {
            Ok(v) => out.push(v),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        poll();
        let ready = Progress::idle_ready_s(progress);
        if !idle_told && let Some(secs) = ready {
            idle_told = true;
            if worker {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "idle_ready {secs}").and_then(|()| out.flush());
            } else {
                eprintln!("c10k-load: idle ready {idle} in {secs:.3} s");
            }
        }
        if let Ramp::Decide { deadline, begin } = &mut ramp
            && (ready.is_some() || Instant::now() >= *deadline)
        {
            if ready.is_none() {
                eprintln!(
                    "c10k-load: the connections to open before the load ({idle} idle, and the active ones with \
                     --warmup) were not all open and answered by the --idle-timeout; starting the load without \
                     the rest (the run will fail)"
                );
            }
            begin();
            ramp = Ramp::Leave;
        }
        let now = Instant::now();
        if now < next {
            continue;
        }
        tick = now.duration_since(start).as_secs() + 1;
        let [requests, errors, open, idle_open] = Progress::sum(progress);
        if worker {
            // A parent that went away is no reason to panic.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "progress {requests} {errors} {open} {idle_open}").and_then(|()| out.flush());
        } else {
            let rps = requests.saturating_sub(last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            let secs = now.duration_since(start).as_secs();
            eprintln!("c10k-load: {secs:>4}s {rps:>10.0} req/s {open:>7} open ({idle_open} idle) {errors:>6} errors");
        }
        last = (now, requests);
    }
    out
}
