//! `--procs P`: re-execute this binary P times as hidden `--worker I` processes, each with
//! its share of the connections, idle connections and rate (so each stays within its own fd
//! limit), read their progress and final reports from their stdout, and merge.
//!
//! A worker's stdout is line-based: `progress REQUESTS ERRORS OPEN IDLE_OPEN` once a
//! second, `idle_ready SECONDS` once when all its idle connections are held, then `result`,
//! the `key value` lines of [`Stats::to_wire`], and `end`. Its stdin carries one line from
//! the parent, `go`, once every worker said `idle_ready` (or at `--idle-timeout`): the
//! workers' loads begin together, and none starts while another is still ramping.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::{Config, worker_args};
use crate::run::{Ramp, announce_load, progress_loop};
use crate::stats::{Progress, Stats};

type Report = (usize, Result<Stats, String>);

pub fn run(cfg: &Config, stop: &AtomicBool) -> Result<Stats, String> {
    let launch = Instant::now();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable to start workers: {e}"))?;
    let progress: Vec<Arc<Progress>> = (0..cfg.procs).map(|_| Arc::default()).collect();
    let (tx, rx) = channel();
    // Set when a worker ends without a report: the others are stopped early.
    let failed = Arc::new(AtomicBool::new(false));
    let mut children: Vec<Child> = Vec::new();
    let mut gos: Vec<ChildStdin> = Vec::new();
    for (i, p) in progress.iter().enumerate() {
        let spawned = Command::new(&exe)
            .args(worker_args(cfg, i))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                signal_all(&children, Signal::SIGKILL);
                reap(children);
                return Err(format!("cannot start worker {i}: {e}"));
            }
        };
        let stdout = child.stdout.take().expect("piped stdout");
        gos.push(child.stdin.take().expect("piped stdin"));
        let (tx, p, failed) = (tx.clone(), p.clone(), failed.clone());
        std::thread::spawn(move || read_worker(i, BufReader::new(stdout), launch, &p, &tx, &failed));
        children.push(child);
    }
    drop(tx);
    // Workers report on their own second; tick a little after them.
    let start = Instant::now() + Duration::from_millis(250);
    let mut forwarded = false;
    let mut poll = || {
        if (stop.load(Relaxed) || failed.load(Relaxed)) && !forwarded {
            signal_all(&children, Signal::SIGTERM);
            forwarded = true;
        }
    };
    // The load begins in every worker at once: `go` to each (a worker that already ended
    // makes its write fail, which changes nothing), and their stdin closed after it.
    let mut began = None;
    let mut begin = || {
        began = Some(Instant::now());
        for mut w in gos.drain(..) {
            let _ = w.write_all(b"go\n");
        }
        announce_load(cfg, launch);
    };
    let ramp = if cfg.load_during_ramp {
        begin();
        Ramp::Leave
    } else {
        Ramp::Decide { deadline: launch + cfg.idle_timeout, begin: &mut begin }
    };
    let results = progress_loop(&rx, cfg.procs, &progress, start, false, cfg.idle, ramp, &mut poll);
    let statuses = reap(children);
    let mut stats = Stats::default();
    let mut got = vec![false; cfg.procs];
    for (i, r) in results {
        stats.merge(&r.map_err(|e| format!("worker {i}: {e}"))?);
        got[i] = true;
    }
    if let Some(i) = got.iter().position(|g| !g) {
        return Err(format!("worker {i} ended without a report ({})", statuses[i]));
    }
    // The ramp as this process saw it, from its start (the workers count from theirs).
    stats.idle_phase_s = began.map(|t| t.duration_since(launch).as_secs_f64());
    if cfg.idle > 0 {
        stats.idle_ready_s = Progress::idle_ready_s(&progress);
    }
    Ok(stats)
}

/// Follow worker `i`'s stdout: progress into `p` (its `idle_ready` as seconds since
/// `launch`), the final report (or why there is none) into `tx`; `failed` when it ended
/// without one.
fn read_worker(i: usize, out: impl BufRead, launch: Instant, p: &Progress, tx: &Sender<Report>, failed: &AtomicBool) {
    let mut lines = out.lines().map_while(Result::ok);
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("progress ") {
            let v: Vec<u64> = rest.split_ascii_whitespace().filter_map(|v| v.parse().ok()).collect();
            if let [requests, errors, open, idle_open] = v[..] {
                p.set(requests, errors, open, idle_open);
            }
        } else if line.starts_with("idle_ready ") {
            let _ = p.idle_ready_s.set(launch.elapsed().as_secs_f64());
        } else if line == "result" {
            let report: Vec<String> = lines.by_ref().collect();
            let _ = tx.send((i, Stats::from_wire(report.iter().map(String::as_str))));
            return;
        }
    }
    failed.store(true, Relaxed);
}

fn signal_all(children: &[Child], sig: Signal) {
    for c in children {
        let _ = kill(Pid::from_raw(c.id() as i32), sig);
    }
}

/// Wait for every worker; how each ended, in words.
fn reap(children: Vec<Child>) -> Vec<String> {
    children
        .into_iter()
        .map(|mut c| match c.wait() {
            Ok(s) => s.to_string(),
            Err(e) => format!("wait failed: {e}"),
        })
        .collect()
}
