//! The master: validate, bind one SO_REUSEPORT listener per shard for each address (plain
//! and TLS, `listen`) and keep them for the server's life, run each shard as a worker
//! process (its own fd table and RLIMIT_NOFILE; a crash takes one shard, not the server),
//! and supervise them.
//!
//! - A shard that dies is replaced at once with its index, core and listeners, so what
//!   waits in its accept queues is served by the replacement instead of being reset; one
//!   that keeps dying is restarted with a growing delay.
//! - SIGTERM or SIGINT drains every shard (`Shard::run`) and exits 0 once they have; a
//!   second one, or SIGQUIT, stops them at once.
//! - SIGHUP starts a new generation of shards from the executable on disk on the same
//!   listeners, waits until each says it serves, then drains the old generation; a new
//!   generation that fails to start is stopped and the old one keeps serving. With TLS,
//!   certificates that would not load refuse the reload, and the session-ticket keys stay.
//! - With `NOTIFY_SOCKET` set (systemd `Type=notify`) the master reports READY, RELOADING
//!   and STOPPING.
//!
//! The master's loop wakes at least every `TICK`: on a shard's report that it serves (a
//! line on a pipe every shard inherits), on a signal, or at the tick, when it reads signals
//! and reaps exits. It never waits on a client: the status listener has a thread of its
//! own (`status_port`), which reads what the loop publishes. Here: start-up; `listen` the
//! listeners, the start's lines, certificates and ticket keys; `control` the loop and
//! stops; `supervise` spawning, exits, restarts and reloads; `status` what the status
//! listener answers; `notify` systemd; `worker` what a shard process runs.

#![forbid(unsafe_code)]

mod control;
mod listen;
mod notify;
mod pid_file;
mod privileges;
mod reconfigure;
mod status;
mod status_history;
mod status_page;
mod status_port;
mod steer;
mod supervise;
mod worker;

use notify::Notify;
use status_port::{Published, State};
use supervise::ended;
pub use worker::run_worker;

use crate::config::Config;
use crate::conn::Context;
use crate::driver::epoll::EpollDriver;
use crate::driver::uring::{self, UringDriver};
use crate::driver::{Backend, Driver, Sizing, sys};
// The names by which a worker takes its inherited descriptors (`sys::take_inherited`).
use crate::driver::sys::{LISTEN_FD_ENV, READY_FD_ENV, STATS_BLOCKS_ENV, STATS_FD_ENV, TICKETS_FD_ENV};
use crate::files::{Cache, Root};
use crate::log;
use crate::shard::{Shard, Stop};
use crate::stats::{self, ShardStats};
use crate::tuning;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::iterator::Signals;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const MASTER_PID_ENV: &str = "C10K_MASTER_PID";
/// The backend the master settled on; workers do not probe again.
const BACKEND_ENV: &str = "C10K_BACKEND";
/// The per-shard connection cap from the master's capacity plan.
const MAX_CONNS_ENV: &str = "C10K_MAX_CONNS";
const GENERATION_ENV: &str = "C10K_GENERATION";
/// The block of the shared counters the worker counts in (`stats::blocks_of`).
const STATS_BLOCK_ENV: &str = "C10K_STATS_BLOCK";

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

/// `--check-config`: what a start would refuse (the file and flags were checked already),
/// without binding; the effective configuration on stdout when it would start.
pub fn check_config(config: &Config) -> i32 {
    if let Err(e) = Root::open(&config.root) {
        return fail(format_args!("root {}: {e}", config.root.display()));
    }
    if let Err(e) = config.open_site() {
        return fail(e);
    }
    if config.has_tls()
        && let Err(why) = listen::check_certificates(&config.cert_sources())
    {
        return fail(why);
    }
    if let Err(why) = privileges::resolve(config) {
        return fail(why);
    }
    print!("{}", config.describe());
    let file = config.config.as_ref().map_or_else(|| "the flags".to_string(), |f| f.display().to_string());
    eprintln!("c10k-server: the configuration in {file} is valid");
    0
}

pub fn run(config: &Config) -> i32 {
    log::set_who("master".to_string());
    let backend = match backend(config) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    if let Err(why) = privileges::resolve(config) {
        return fail(why);
    }
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
    let cert_sources = config.has_tls().then(|| config.cert_sources());
    if let Some(sources) = &cert_sources
        && let Err(why) = listen::check_certificates(sources)
    {
        return fail(why);
    }
    let tickets = match config.has_tls().then(crate::tls::TicketKeys::generate).transpose() {
        Ok(keys) => keys,
        Err(e) => return fail(format_args!("cannot make the TLS session-ticket keys: {e}")),
    };
    let listeners = match listen::bind_all(config, shards) {
        Ok(l) => l,
        Err(why) => return fail(why),
    };
    // As bound: port 0 resolved.
    let addrs: Vec<(SocketAddr, bool)> = (listeners[0].iter().zip(config.listeners()))
        .map(|(listener, (asked, tls))| (listener.local_addr().unwrap_or(asked), tls))
        .collect();
    if config.access_log != "off"
        && let Err(e) = sys::LogFile::open(&config.access_log)
    {
        let dir = std::path::Path::new(&config.access_log).parent().filter(|d| !d.as_os_str().is_empty());
        return match dir {
            Some(dir) if e.kind() == io::ErrorKind::NotFound && !dir.exists() => fail(format_args!(
                "--access-log {}: the directory {} does not exist; create it first, or pass - or off",
                config.access_log,
                dir.display()
            )),
            _ => fail(format_args!("--access-log {}: {e}; pass a writable file, - or off", config.access_log)),
        };
    }
    let status_listener = match config.status_listen.map(sys::status_listener).transpose() {
        Ok(l) => l,
        Err(e) => {
            let at = config.status_listen.map_or(String::new(), |a| a.to_string());
            return fail(format_args!("--status-listen {at}: {e}; pass a free ADDR:PORT"));
        }
    };
    let stats_fd = match sys::stats_memfd(stats::blocks(shards)) {
        Ok(fd) => fd,
        Err(e) => return fail(format_args!("cannot create the shared counters: {e}")),
    };
    let stats = match sys::map_stats(&stats_fd, stats::blocks(shards)) {
        Ok(s) => s,
        Err(e) => return fail(format_args!("cannot map the shared counters: {e}")),
    };
    // The path, not /proc/self/exe: a binary installed over it since is what a reload runs.
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(format_args!("cannot find this executable: {e}")),
    };
    // Every signal an operator may send is handled or ignored with a line: left to their
    // defaults, SIGUSR2 (nginx's binary upgrade) and SIGALRM would end the master without a
    // word, and SIGWINCH (nginx: stop the workers) would do nothing without one.
    let signals = match Signals::new([SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM]) {
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
    let published = Arc::new(Published::default());
    if let Some(listener) = status_listener {
        let facts = status_port::Facts {
            backend: backend_name(backend),
            started: unix_now(),
            capacity: plan.capacity,
            shards,
            stats,
        };
        if let Err(e) = status_port::spawn(listener, Arc::clone(&published), facts) {
            return fail(format_args!("cannot start the status listener's thread: {e}"));
        }
    }
    let mut master = Master {
        exe,
        args: std::env::args_os().skip(1).collect(),
        backend,
        per_shard: plan.per_shard,
        grace: Duration::from_secs(config.shutdown_timeout),
        slots: listeners
            .into_iter()
            .map(|listeners| Slot { listeners, deaths: VecDeque::new(), backoff: BACKOFF_FIRST, restart_at: None })
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
        published,
        serving: false,
        reloads: 0,
        access_log: config.access_log != "off",
        steered: (0..shards as u16).collect(),
        said_down: false,
        down: String::new(),
        shard_states: Vec::new(),
        cert_sources,
        configured: config.listeners(),
        retained: None,
        tickets,
    };
    let pid_file = match config.pid_file.as_deref().map(pid_file::PidFile::write).transpose() {
        Ok(file) => file,
        Err(e) => return fail(format_args!("{e}")),
    };
    let code = master.start(signals, &addrs).err().unwrap_or(0);
    drop(pid_file);
    code
}

/// One shard's place: its listeners, held for the server's life, and its record of deaths.
struct Slot {
    /// By listener number; none once the server stops: the shards' copies are then the
    /// last.
    listeners: Vec<TcpListener>,
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
    /// The block of the shared counters it counts in.
    block: usize,
    child: Child,
    started: Instant,
    /// It said it serves.
    serving: bool,
    /// Told to drain or to stop: it is not replaced when it exits.
    stopped: bool,
    /// When it gets SIGKILL if it has not exited by then.
    kill_at: Option<Instant>,
    /// The master sent it SIGKILL (its exit is no crash).
    killed: bool,
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
    /// Every block, `BLOCKS_PER_SHARD` per shard (`stats::blocks_of`).
    stats: &'static [ShardStats],
    /// What the status listener's thread reads (`publish`).
    published: Arc<Published>,
    /// Every shard of the first generation has served.
    serving: bool,
    reloads: u64,
    /// An access log is written (SIGUSR1 has something to reopen).
    access_log: bool,
    /// The shards new connections are steered to (`steer`): all of them, unless some are
    /// down.
    steered: Vec<u16>,
    /// A line said some shards were down.
    said_down: bool,
    /// Which shards are down and why, as published ("" when none).
    down: String,
    /// Each shard's state, as published.
    shard_states: Vec<String>,
    /// Where the certificates come from, with a TLS listener: loaded again at each reload.
    cert_sources: Option<crate::tls::CertSources>,
    /// The listeners as configured (not as bound: port 0 stays 0), in listener order.
    configured: Vec<(SocketAddr, bool)>,
    /// A reload's listeners' predecessors, until it is done or failed.
    retained: Option<reconfigure::Retained>,
    /// The session-ticket keys every shard seals with, with a TLS listener: made once,
    /// moved on in the loop, handed to each worker at its start.
    tickets: Option<crate::tls::TicketKeys>,
}

impl Master {
    /// Tell the status listener's thread what the server is doing now: at each change, before
    /// the line that logs it, so whoever reads that line and asks `/healthz` sees the change.
    pub(super) fn publish(&self) {
        let state = match (self.stopping, self.serving, &self.reload) {
            (Some(_), _, _) => State::Stopping,
            (None, false, _) => State::Starting,
            (None, true, Some(_)) => State::Reloading,
            (None, true, None) => State::Serving,
        };
        self.published.set(state, self.reloads);
    }
}

fn unix_now() -> u64 {
    crate::http::date::unix_ms() / 1000
}
