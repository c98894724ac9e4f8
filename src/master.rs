//! The master: validate, bind one SO_REUSEPORT listener per shard and keep it for the
//! server's life, run each shard as a worker process (its own fd table and RLIMIT_NOFILE;
//! a crash takes one shard, not the server), and supervise them.
//!
//! - A shard that dies is replaced at once with its index, core and listener, so what
//!   waits in its accept queue is served by the replacement instead of being reset; one
//!   that keeps dying is restarted with a growing delay.
//! - SIGTERM or SIGINT drains every shard (`Shard::run`) and exits 0 once they have; a
//!   second one, or SIGQUIT, stops them at once.
//! - SIGHUP starts a new generation of shards from the executable on disk on the same
//!   listeners, waits until each says it serves, then drains the old generation; a new
//!   generation that fails to start is stopped and the old one keeps serving.
//! - With `NOTIFY_SOCKET` set (systemd `Type=notify`) the master reports READY, RELOADING
//!   and STOPPING.
//!
//! The master is one thread that wakes at least every `TICK`: on a shard's report that it
//! serves (a line on a pipe every shard inherits) or at the tick, when it reads signals
//! and reaps exits.

#![forbid(unsafe_code)]

use crate::config::Config;
use crate::conn::Site;
use crate::driver::epoll::EpollDriver;
use crate::driver::uring::{self, UringDriver};
use crate::driver::{Backend, Driver, Sizing, sys};
use crate::files::{Cache, Root};
use crate::log;
use crate::shard::{Shard, Stop};
use crate::stats::{self, ShardStats};
use crate::status;
use crate::tuning;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LISTEN_FD_ENV: &str = "C10K_LISTEN_FD";
const MASTER_PID_ENV: &str = "C10K_MASTER_PID";
/// The backend the master settled on; workers do not probe again.
const BACKEND_ENV: &str = "C10K_BACKEND";
/// The per-shard connection cap from the master's capacity plan.
const MAX_CONNS_ENV: &str = "C10K_MAX_CONNS";
/// The pipe a worker writes its pid to, as a line, once it serves.
const READY_FD_ENV: &str = "C10K_READY_FD";
const GENERATION_ENV: &str = "C10K_GENERATION";
/// The shared counters (a memfd of one `ShardStats` per shard) and how many blocks it holds.
const STATS_FD_ENV: &str = "C10K_STATS_FD";
const STATS_BLOCKS_ENV: &str = "C10K_STATS_BLOCKS";

/// The longest the master sleeps between looks at signals and exits.
const TICK: Duration = Duration::from_millis(50);
/// How long a new shard may take to say it serves.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// A shard that died this many times within `CRASH_WINDOW` is restarted after a delay
/// that starts at `BACKOFF_FIRST` and doubles up to `BACKOFF_MAX`.
const CRASH_DEATHS: usize = 5;
const CRASH_WINDOW: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Past a shard's own shutdown timeout (or after SIGQUIT), how long before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);

/// Print `c10k-server: <what>` and return the exit code for a refusal to start: a bad
/// flag, root or address, before anything runs.
fn fail(what: impl std::fmt::Display) -> i32 {
    eprintln!("c10k-server: {what}");
    1
}

/// The backend every shard runs: `auto` is io_uring when the probe passes, else epoll
/// with one line saying why.
fn backend(config: &Config) -> Result<Backend, String> {
    match config.backend {
        Backend::Epoll => Ok(Backend::Epoll),
        Backend::Uring => uring::probe()
            .map(|()| Backend::Uring)
            .map_err(|why| format!("--backend uring: {why}; use --backend epoll")),
        Backend::Auto => Ok(uring::probe().map(|()| Backend::Uring).unwrap_or_else(|why| {
            log::warn(format_args!("io_uring unusable ({why}); using epoll"));
            Backend::Epoll
        })),
    }
}

fn backend_name(b: Backend) -> &'static str {
    if b == Backend::Uring { UringDriver::NAME } else { EpollDriver::NAME }
}

pub fn run(config: &Config) -> i32 {
    log::set_who("master".to_string());
    let backend = match backend(config) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    if let Err(e) = Root::open(&config.root) {
        return fail(format_args!("--root {}: {e}; pass --root DIR with an existing directory", config.root.display()));
    }
    let shards = config.shard_count();
    let host = match tuning::Host::read() {
        Ok(h) => h,
        Err(e) => return fail(format_args!("cannot read this host's limits: {e}")),
    };
    let target = config.target_conns.map(|n| n as u64);
    let plan = match tuning::plan(&host, shards as u64, target, backend == Backend::Uring) {
        Ok(p) => p,
        Err(tuning::Refusal(why)) => return fail(why),
    };
    // Workers inherit it: soft up to hard, and hard itself when the target needs it.
    if let Err(e) = tuning::raise_nofile(plan.nofile) {
        log::warn(format_args!("cannot set RLIMIT_NOFILE to {}: {e}", plan.nofile));
    }
    let listeners = match bind_all(config, shards) {
        Ok(l) => l,
        Err(e) => {
            let hint = match e.kind() {
                io::ErrorKind::AddrInUse => "address already in use; stop what holds it or pass --listen ADDR:PORT",
                io::ErrorKind::AddrNotAvailable => "no such local address; pass --listen with an address of this host",
                io::ErrorKind::PermissionDenied => {
                    "permission denied; use a port above 1023 or run with CAP_NET_BIND_SERVICE"
                }
                _ => "pass --listen ADDR:PORT with a free local address",
            };
            return fail(format_args!("cannot listen on {}: {e}: {hint}", config.listen));
        }
    };
    let addr = listeners[0].local_addr().unwrap_or(config.listen);
    if config.access_log != "off"
        && let Err(e) = sys::LogFile::open(&config.access_log)
    {
        return fail(format_args!("--access-log {}: {e}; pass a writable file, - or off", config.access_log));
    }
    let status_listener = match config.status_listen.map(sys::status_listener).transpose() {
        Ok(l) => l,
        Err(e) => {
            let at = config.status_listen.map_or(String::new(), |a| a.to_string());
            return fail(format_args!("--status-listen {at}: {e}; pass a free ADDR:PORT"));
        }
    };
    let stats_fd = match sys::stats_memfd(shards) {
        Ok(fd) => fd,
        Err(e) => return fail(format_args!("cannot create the shared counters: {e}")),
    };
    let stats = match sys::map_stats(&stats_fd, shards) {
        Ok(s) => s,
        Err(e) => return fail(format_args!("cannot map the shared counters: {e}")),
    };
    // The path, not /proc/self/exe: a binary installed over it since is what a reload runs.
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(format_args!("cannot find this executable: {e}")),
    };
    let signals = match Signals::new([SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1]) {
        Ok(s) => s,
        Err(e) => return fail(format_args!("cannot handle signals: {e}")),
    };
    let (ready_rx, ready_tx) = match io::pipe() {
        Ok(p) => p,
        Err(e) => return fail(format_args!("cannot make a pipe: {e}")),
    };
    log::info(format_args!("{}", tuning::capacity_line(&host, &plan)));
    if let Some(status) = status_listener.as_ref().and_then(|l| l.local_addr().ok()) {
        log::info(format_args!("status on http://{status}/status (also /metrics, /healthz)"));
    }
    for warning in &plan.warnings {
        log::warn(format_args!("{warning}"));
    }
    let mut master = Master {
        exe,
        args: std::env::args_os().skip(1).collect(),
        backend,
        per_shard: plan.per_shard,
        grace: Duration::from_secs(config.shutdown_timeout),
        slots: listeners
            .into_iter()
            .map(|listener| Slot {
                listener: Some(listener),
                deaths: VecDeque::new(),
                backoff: BACKOFF_FIRST,
                restart_at: None,
            })
            .collect(),
        workers: Vec::new(),
        generation: 1,
        reload: None,
        stopping: None,
        ready_rx,
        ready_tx,
        ready_buf: Vec::new(),
        notify: Notify::from_env(),
        stats_fd,
        stats,
        status_listener,
        capacity: plan.capacity,
        started_unix: unix_now(),
        serving: false,
        reloads: 0,
    };
    if let Err(code) = master.start(signals, addr) {
        return code;
    }
    0
}

fn bind_all(config: &Config, shards: usize) -> io::Result<Vec<TcpListener>> {
    let mut addr = config.listen;
    if addr.port() != 0 {
        sys::check_port_free(addr)?;
    }
    let mut listeners = Vec::with_capacity(shards);
    for _ in 0..shards {
        let listener = sys::reuseport_listener(addr)?;
        // Port 0 is resolved once; the other shards join that port.
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// One shard's place: its listener, held for the server's life, and its record of deaths.
struct Slot {
    /// `None` once the server stops: the shards' copies are then the last.
    listener: Option<TcpListener>,
    deaths: VecDeque<Instant>,
    /// The delay before the next restart of a shard that keeps dying.
    backoff: Duration,
    /// A restart waiting out its backoff.
    restart_at: Option<Instant>,
}

/// A worker process.
struct Worker {
    index: usize,
    generation: u32,
    child: Child,
    started: Instant,
    /// It said it serves.
    serving: bool,
    /// Told to drain or to stop: it is not replaced when it exits.
    stopped: bool,
    /// When it gets SIGKILL if it has not exited by then.
    kill_at: Option<Instant>,
}

/// A new generation starting.
struct Reload {
    generation: u32,
    started: Instant,
}

struct Master {
    exe: PathBuf,
    args: Vec<OsString>,
    backend: Backend,
    per_shard: u64,
    grace: Duration,
    slots: Vec<Slot>,
    workers: Vec<Worker>,
    /// The generation serving (the newest one that started).
    generation: u32,
    reload: Option<Reload>,
    /// A stop under way; true once it is immediate.
    stopping: Option<bool>,
    ready_rx: PipeReader,
    /// Every worker inherits it; the master's copy keeps the pipe open between workers.
    ready_tx: PipeWriter,
    ready_buf: Vec<u8>,
    notify: Notify,
    /// The shards' counters: every worker inherits the memfd and maps it.
    stats_fd: std::os::fd::OwnedFd,
    stats: &'static [ShardStats],
    status_listener: Option<TcpListener>,
    capacity: u64,
    started_unix: u64,
    /// Every shard of the first generation has served.
    serving: bool,
    reloads: u64,
}

impl Master {
    /// Start the first generation, then supervise until stopped. `Err` with the exit code
    /// when the server cannot start at all.
    fn start(&mut self, mut signals: Signals, addr: std::net::SocketAddr) -> Result<(), i32> {
        for index in 0..self.slots.len() {
            if let Err(e) = self.spawn(index, 1) {
                log::error(format_args!("cannot start shard {index}: {e}"));
                self.stop_now();
                return Err(1);
            }
        }
        loop {
            let started = self.serving;
            self.wait_for_reports();
            for signal in signals.pending() {
                match signal {
                    SIGHUP if !started || self.reload.is_some() || self.stopping.is_some() => {
                        log::info(format_args!("SIGHUP: a start, reload or stop is under way; ignored"))
                    }
                    SIGHUP => self.reload(),
                    SIGUSR1 => {
                        log::info(format_args!("SIGUSR1: every shard reopens its access log"));
                        for w in &self.workers {
                            let _ = kill(Pid::from_raw(w.child.id() as i32), Signal::SIGUSR1);
                        }
                    }
                    SIGQUIT => self.stop(true),
                    _ => self.stop(self.stopping.is_some()),
                }
            }
            if !started && self.stopping.is_none() {
                if let Some(why) = self.first_generation_failed() {
                    log::error(format_args!("cannot start: {why}"));
                    self.stop_now();
                    return Err(1);
                }
                if self.workers.iter().all(|w| w.serving) {
                    self.serving = true;
                    log::info(format_args!(
                        "listening on http://{addr} ({} shards, backend {})",
                        self.slots.len(),
                        backend_name(self.backend)
                    ));
                    self.notify.send("READY=1");
                }
            }
            if self.serving || self.stopping.is_some() {
                self.reap();
            }
            self.enforce_kill_deadlines();
            if self.stopping.is_some() {
                if self.workers.is_empty() {
                    log::info(format_args!("stopped"));
                    return Ok(());
                }
                continue;
            }
            self.progress_reload();
            self.restart_due();
        }
    }

    /// SIGKILL the workers that outstayed their stop.
    fn enforce_kill_deadlines(&mut self) {
        let now = Instant::now();
        for w in &mut self.workers {
            if w.kill_at.is_some_and(|at| now >= at) {
                log::warn(format_args!("shard {} (pid {}) outstayed its stop: SIGKILL", w.index, w.child.id()));
                let _ = w.child.kill();
                w.kill_at = None;
            }
        }
    }

    /// Tell worker `i` to drain (SIGTERM) or to stop at once (SIGQUIT, SIGKILL).
    fn tell(&mut self, i: usize, signal: Signal) {
        let now = Instant::now();
        let w = &mut self.workers[i];
        let _ = kill(Pid::from_raw(w.child.id() as i32), signal);
        w.stopped = true;
        w.kill_at = match signal {
            Signal::SIGTERM => Some(now + self.grace + KILL_GRACE),
            Signal::SIGKILL => None,
            _ => Some(now + KILL_GRACE),
        };
    }

    /// Sleep until a worker reports that it serves or `TICK` passes; mark those that did.
    fn wait_for_reports(&mut self) {
        let mut fds = vec![PollFd::new(self.ready_rx.as_fd(), PollFlags::POLLIN)];
        if let Some(listener) = &self.status_listener {
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        }
        let ms = TICK.as_millis() as u16;
        if !matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0) {
            return;
        }
        let status = fds.get(1).and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
        let reports = fds[0].revents().is_some_and(|r| !r.is_empty());
        drop(fds);
        if status {
            self.serve_status();
        }
        if !reports {
            return;
        }
        let mut buf = [0u8; 512];
        let n = match self.ready_rx.read(&mut buf) {
            Ok(n) => n,
            Err(_) => return,
        };
        self.ready_buf.extend_from_slice(&buf[..n]);
        while let Some(end) = self.ready_buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.ready_buf.drain(..=end).collect();
            let pid = std::str::from_utf8(&line).ok().and_then(|l| l.trim().parse::<u32>().ok());
            if let Some(w) = self.workers.iter_mut().find(|w| Some(w.child.id()) == pid) {
                w.serving = true;
            }
        }
    }

    /// Why the first generation will not serve: a shard exited or is late.
    fn first_generation_failed(&mut self) -> Option<String> {
        for w in &mut self.workers {
            if let Ok(Some(status)) = w.child.try_wait() {
                return Some(format!("shard {} (pid {}) {} before serving", w.index, w.child.id(), ended(status)));
            }
            if !w.serving && w.started.elapsed() > START_TIMEOUT {
                return Some(format!(
                    "shard {} (pid {}) did not serve within {START_TIMEOUT:?}",
                    w.index,
                    w.child.id()
                ));
            }
        }
        None
    }

    /// Start a worker for shard `index` of `generation` on the shard's listener.
    fn spawn(&mut self, index: usize, generation: u32) -> io::Result<u32> {
        let Some(listener) = &self.slots[index].listener else {
            return Err(io::Error::other("the server is stopping"));
        };
        sys::set_inheritable(listener, true)?;
        sys::set_inheritable(&self.ready_tx, true)?;
        sys::set_inheritable(&self.stats_fd, true)?;
        let child = Command::new(&self.exe)
            .args(&self.args)
            .arg("--worker")
            .arg(index.to_string())
            .env(LISTEN_FD_ENV, listener.as_raw_fd().to_string())
            .env(READY_FD_ENV, self.ready_tx.as_raw_fd().to_string())
            .env(MASTER_PID_ENV, std::process::id().to_string())
            .env(BACKEND_ENV, backend_name(self.backend))
            .env(MAX_CONNS_ENV, self.per_shard.to_string())
            .env(GENERATION_ENV, generation.to_string())
            .env(STATS_FD_ENV, self.stats_fd.as_raw_fd().to_string())
            .env(STATS_BLOCKS_ENV, self.slots.len().to_string())
            .env_remove("NOTIFY_SOCKET")
            .spawn();
        sys::set_inheritable(listener, false)?;
        sys::set_inheritable(&self.ready_tx, false)?;
        sys::set_inheritable(&self.stats_fd, false)?;
        let child = child?;
        let pid = child.id();
        let block = &self.stats[index];
        block.pid.store(u64::from(pid), Ordering::Relaxed);
        block.generation.store(u64::from(generation), Ordering::Relaxed);
        block.started.store(unix_now(), Ordering::Relaxed);
        let started = Instant::now();
        self.workers.push(Worker { index, generation, child, started, serving: false, stopped: false, kill_at: None });
        Ok(pid)
    }

    /// Collect the workers that exited: log each, replace a dead shard of the serving
    /// generation, and fail a reload whose new shard died before serving.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.workers.len() {
            let status = match self.workers[i].child.try_wait() {
                Ok(Some(status)) => status,
                _ => {
                    i += 1;
                    continue;
                }
            };
            let w = self.workers.swap_remove(i);
            let who = format!("shard {} (pid {}, generation {})", w.index, w.child.id(), w.generation);
            if w.stopped {
                log::info(format_args!("{who} {}", ended(status)));
            } else if self.reload.as_ref().is_some_and(|r| r.generation == w.generation) {
                let when = if w.serving { "before its generation served" } else { "before serving" };
                self.fail_reload(&format!("{who} {} {when}", ended(status)));
            } else {
                self.died(w.index, &who, status);
            }
        }
    }

    /// A shard of the serving generation died: replace it now, or after a backoff if it
    /// keeps dying.
    fn died(&mut self, index: usize, who: &str, status: ExitStatus) {
        let now = Instant::now();
        stats::add(&self.stats[index].restarts, 1);
        let slot = &mut self.slots[index];
        slot.deaths.push_back(now);
        while slot.deaths.front().is_some_and(|&t| now.duration_since(t) > CRASH_WINDOW) {
            slot.deaths.pop_front();
        }
        if slot.deaths.len() >= CRASH_DEATHS {
            let delay = slot.backoff;
            slot.backoff = (delay * 2).min(BACKOFF_MAX);
            slot.restart_at = Some(now + delay);
            log::error(format_args!(
                "{who} {}: {} exits in {} s, restarting it in {} s",
                ended(status),
                slot.deaths.len(),
                CRASH_WINDOW.as_secs(),
                delay.as_secs()
            ));
            return;
        }
        slot.backoff = BACKOFF_FIRST;
        match self.spawn(index, self.generation) {
            Ok(pid) => log::error(format_args!("{who} {}; replaced by pid {pid}", ended(status))),
            Err(e) => {
                log::error(format_args!("{who} {}; cannot replace it ({e}), retrying in 1 s", ended(status)));
                self.slots[index].restart_at = Some(now + BACKOFF_FIRST);
            }
        }
    }

    /// Start the shards whose backoff has passed.
    fn restart_due(&mut self) {
        let now = Instant::now();
        for index in 0..self.slots.len() {
            if self.slots[index].restart_at.is_none_or(|at| at > now) {
                continue;
            }
            self.slots[index].restart_at = None;
            match self.spawn(index, self.generation) {
                Ok(pid) => log::info(format_args!("shard {index}: restarted as pid {pid} after its backoff")),
                Err(e) => {
                    log::error(format_args!("shard {index}: cannot restart it ({e}), retrying in 1 s"));
                    self.slots[index].restart_at = Some(now + BACKOFF_FIRST);
                }
            }
        }
    }

    /// SIGHUP: a new generation of every shard from the executable on disk.
    fn reload(&mut self) {
        let generation = self.generation + 1;
        self.notify.send("RELOADING=1");
        log::info(format_args!("reload: starting generation {generation} from {}", self.exe.display()));
        self.reload = Some(Reload { generation, started: Instant::now() });
        for index in 0..self.slots.len() {
            if let Err(e) = self.spawn(index, generation) {
                return self.fail_reload(&format!("cannot start shard {index} from {}: {e}", self.exe.display()));
            }
        }
    }

    /// Once every shard of the new generation serves, drain the old one; fail the reload
    /// if one is late.
    fn progress_reload(&mut self) {
        let Some(reload) = &self.reload else { return };
        let (generation, started) = (reload.generation, reload.started);
        let new = || self.workers.iter().filter(|w| w.generation == generation);
        if new().any(|w| !w.serving) {
            if started.elapsed() > START_TIMEOUT {
                self.fail_reload(&format!("generation {generation} did not serve within {START_TIMEOUT:?}"));
            }
            return;
        }
        let pids: Vec<String> = new().map(|w| w.child.id().to_string()).collect();
        let old = self.generation;
        self.generation = generation;
        self.reload = None;
        self.reloads += 1;
        for slot in &mut self.slots {
            slot.restart_at = None;
        }
        for i in 0..self.workers.len() {
            if self.workers[i].generation != generation && !self.workers[i].stopped {
                self.tell(i, Signal::SIGTERM);
            }
        }
        log::info(format_args!(
            "reload: generation {generation} serving (pids {}); generation {old} draining",
            pids.join(", ")
        ));
        self.notify.send("READY=1");
    }

    /// Stop the new generation; the old one keeps serving.
    fn fail_reload(&mut self, why: &str) {
        let Some(reload) = self.reload.take() else { return };
        for i in 0..self.workers.len() {
            let w = &self.workers[i];
            if w.generation == reload.generation && !w.stopped {
                // One not serving yet has no connection to lose.
                self.tell(i, if w.serving { Signal::SIGTERM } else { Signal::SIGKILL });
            }
        }
        log::error(format_args!("reload failed: {why}; generation {} keeps serving", self.generation));
        self.notify.send("READY=1");
    }

    /// SIGTERM/SIGINT: drain every shard; a second one, or SIGQUIT (`immediate`), stops
    /// them at once.
    fn stop(&mut self, immediate: bool) {
        if self.stopping == Some(true) {
            return;
        }
        if self.stopping.is_none() {
            self.notify.send("STOPPING=1");
        }
        self.reload = None;
        // The shards' copies of the listeners are the last: once each shard has taken
        // what its queue holds and closed its copy, new connections are refused.
        for slot in &mut self.slots {
            slot.listener = None;
            slot.restart_at = None;
        }
        if immediate {
            log::info(format_args!("stopping at once"));
        } else {
            log::info(format_args!("stopping: draining connections, {} s at most", self.grace.as_secs()));
        }
        for i in 0..self.workers.len() {
            // A shard draining already (the old generation of a reload) keeps its deadline.
            if immediate || !self.workers[i].stopped {
                self.tell(i, if immediate { Signal::SIGQUIT } else { Signal::SIGTERM });
            }
        }
        self.stopping = Some(immediate);
    }

    /// Start-up failed: stop whatever started, without waiting on it.
    fn stop_now(&mut self) {
        for w in &mut self.workers {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
        self.workers.clear();
    }
}

impl Master {
    /// Answer the status listener's waiting connections, one request each. The master
    /// blocks on a slow client for at most a second: it is an operator's port.
    fn serve_status(&mut self) {
        let Some(listener) = &self.status_listener else { return };
        while let Ok(stream) = sys::accept(listener) {
            let request = sys::read_request_head(&stream, Duration::from_secs(1));
            let state = match (self.stopping, self.serving, &self.reload) {
                (Some(_), _, _) => "stopping",
                (None, false, _) => "starting",
                (None, true, Some(_)) => "reloading",
                (None, true, None) => "serving",
            };
            let server = status::Server {
                version: env!("CARGO_PKG_VERSION"),
                backend: backend_name(self.backend),
                started: self.started_unix,
                now: unix_now(),
                capacity: self.capacity,
                reloads: self.reloads,
                state,
                shards: self.stats,
            };
            let date = crate::http::date::format(unix_now());
            let _ = sys::write_all_blocking(&stream, &status::answer(&request, &server, &date), Duration::from_secs(1));
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How a worker ended, for a log line.
fn ended(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => "exited".to_string(),
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.as_str().to_string());
            format!("was killed by {name}")
        }
        _ => format!("ended ({status})"),
    }
}

/// systemd's readiness protocol: one datagram per state to `$NOTIFY_SOCKET` (a path, or
/// `@name` in the abstract namespace), when it is set.
struct Notify(Option<(std::os::unix::net::UnixDatagram, std::os::unix::net::SocketAddr)>);

impl Notify {
    fn from_env() -> Notify {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Notify(None) };
        let path = path.to_string_lossy().into_owned();
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name),
            None => SocketAddr::from_pathname(&path),
        };
        match (UnixDatagram::unbound(), addr) {
            (Ok(socket), Ok(addr)) => Notify(Some((socket, addr))),
            (Err(e), _) | (_, Err(e)) => {
                log::warn(format_args!("NOTIFY_SOCKET={path}: {e}; systemd will not hear from this server"));
                Notify(None)
            }
        }
    }

    fn send(&self, state: &str) {
        if let Some((socket, addr)) = &self.0
            && let Err(e) = socket.send_to_addr(state.as_bytes(), addr)
        {
            log::warn(format_args!("cannot tell systemd {state}: {e}"));
        }
    }
}

/// A worker process: take the inherited listener, pin to a core, say it serves, serve
/// until told to stop.
pub fn run_worker(config: &Config, index: usize) -> i32 {
    log::set_who(format!("shard {index}"));
    let failed = |what: std::fmt::Arguments<'_>| {
        log::error(what);
        1
    };
    // Drain (SIGTERM below) rather than serve on as an orphan if the master dies.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    let master = std::env::var(MASTER_PID_ENV).ok().and_then(|p| p.parse::<i32>().ok());
    if master != Some(nix::unistd::getppid().as_raw()) {
        return failed(format_args!("the master has gone"));
    }
    let env_fd = |name| std::env::var(name).ok().and_then(|f| f.parse::<i32>().ok());
    let (Some(listen_fd), Some(ready_fd)) = (env_fd(LISTEN_FD_ENV), env_fd(READY_FD_ENV)) else {
        return failed(format_args!("--worker is internal; run c10k-server without it"));
    };
    // SIGTERM drains, SIGQUIT stops at once. SIGINT (a terminal's ^C reaches the whole
    // process group) and SIGHUP (a terminal hanging up) are the master's to act on: it
    // passes on what the shards must do.
    let stop = Stop::default();
    let ignored = Arc::new(AtomicBool::new(false));
    let handlers =
        [(SIGTERM, &stop.drain), (SIGQUIT, &stop.now), (SIGUSR1, &stop.reopen), (SIGINT, &ignored), (SIGHUP, &ignored)];
    for (signal, flag) in handlers {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(flag)) {
            return failed(format_args!("cannot handle signals: {e}"));
        }
    }
    let core = core_affinity::get_core_ids().filter(|ids| !ids.is_empty()).map(|ids| ids[index % ids.len()]);
    let pinned = core.filter(|&c| core_affinity::set_for_current(c)).map(|c| c.id);
    let core = pinned.map_or_else(|| "unpinned".to_string(), |c| c.to_string());
    let result = match std::env::var(BACKEND_ENV).as_deref() {
        Ok("uring") => serve::<UringDriver>(config, listen_fd, ready_fd, &core, &stop),
        _ => serve::<EpollDriver>(config, listen_fd, ready_fd, &core, &stop),
    };
    match result {
        Ok(()) => 0,
        Err(e) => failed(format_args!("{e}")),
    }
}

fn serve<D: Driver>(config: &Config, listen_fd: i32, ready_fd: i32, core: &str, stop: &Stop) -> io::Result<()> {
    let listener = sys::inherited_listener(listen_fd)?;
    let mut ready = sys::inherited_pipe(ready_fd)?;
    let root = Root::open(&config.root)
        .map_err(|e| io::Error::new(e.kind(), format!("--root {}: {e}", config.root.display())))?;
    let mut site = Site::new(root, Cache::new(4096, 64 << 20), config.limits());
    let blocks = std::env::var(STATS_BLOCKS_ENV).ok().and_then(|n| n.parse().ok());
    if let (Some(fd), Some(blocks)) = (std::env::var(STATS_FD_ENV).ok().and_then(|f| f.parse().ok()), blocks) {
        let index = config.worker.unwrap_or(0);
        site.stats = sys::inherited_stats(fd, blocks)?
            .get(index)
            .ok_or_else(|| io::Error::other(format!("no counters for shard {index}")))?;
    }
    let max_conns = std::env::var(MAX_CONNS_ENV).ok().and_then(|n| n.parse().ok()).unwrap_or(1024);
    let sizing = Sizing { max_conns, recv_buffers: config.uring_buffers };
    let mut shard = Shard::<D>::new(listener, site, config.timeouts(), sizing)?;
    if config.access_log != "off" {
        let file = sys::LogFile::open(&config.access_log)
            .map_err(|e| io::Error::new(e.kind(), format!("--access-log {}: {e}", config.access_log)))?;
        shard.log_access(file, config.access_log_format, config.worker.unwrap_or(0));
    }
    let generation = std::env::var(GENERATION_ENV).unwrap_or_else(|_| "1".to_string());
    log::info(format_args!("serving: core {core}, backend {}, generation {generation}", D::NAME));
    ready.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    drop(ready);
    shard.run(stop, config.shutdown_timeout * 1000)
}
