//! The master: validate, bind one SO_REUSEPORT listener per shard, start each shard as a
//! worker process (its own fd table and RLIMIT_NOFILE; a crash takes one shard, not the
//! server), forward SIGTERM/SIGINT, and exit when the workers have.

#![forbid(unsafe_code)]

use crate::config::Config;
use crate::conn::Site;
use crate::driver::epoll::EpollDriver;
use crate::driver::uring::{self, UringDriver};
use crate::driver::{Backend, Driver, Sizing, sys};
use crate::files::{Cache, Root};
use crate::shard::Shard;
use crate::tuning;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LISTEN_FD_ENV: &str = "C10K_LISTEN_FD";
const MASTER_PID_ENV: &str = "C10K_MASTER_PID";
/// The backend the master settled on; workers do not probe again.
const BACKEND_ENV: &str = "C10K_BACKEND";
/// The per-shard connection cap from the master's capacity plan.
const MAX_CONNS_ENV: &str = "C10K_MAX_CONNS";

/// Print `c10k-server: <what>` and return the exit code for a start-up failure.
fn fail(what: impl std::fmt::Display) -> i32 {
    eprintln!("c10k-server: {what}");
    1
}

/// One line on stdout; a closed stdout is no reason to stop serving.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
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
            eprintln!("c10k-server: io_uring unusable ({why}); using epoll");
            Backend::Epoll
        })),
    }
}

fn backend_name(b: Backend) -> &'static str {
    if b == Backend::Uring { UringDriver::NAME } else { EpollDriver::NAME }
}

pub fn run(config: &Config) -> i32 {
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
        eprintln!("c10k-server: warning: cannot set RLIMIT_NOFILE to {}: {e}", plan.nofile);
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
    say(format_args!("{}", tuning::capacity_line(&host, &plan)));
    for warning in &plan.warnings {
        eprintln!("c10k-server: warning: {warning}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            return fail(format_args!("cannot handle signals: {e}"));
        }
    }
    let mut children = Vec::with_capacity(shards);
    for (index, listener) in listeners.into_iter().enumerate() {
        match spawn_worker(index, &listener, backend, plan.per_shard) {
            Ok(child) => children.push(Some(child)),
            Err(e) => {
                stop_all(&mut children);
                return fail(format_args!("cannot start shard {index}: {e}"));
            }
        }
        // The worker has its own copy; ours would keep a dead shard's queue alive.
        drop(listener);
    }
    say(format_args!("listening on http://{addr} ({shards} shards, backend {})", backend_name(backend)));
    supervise(&mut children, &stop)
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

fn spawn_worker(index: usize, listener: &TcpListener, backend: Backend, max_conns: u64) -> io::Result<Child> {
    let exe = std::env::current_exe()?;
    let args = std::env::args_os().skip(1).collect::<Vec<_>>();
    sys::set_inheritable(listener, true)?;
    let child = Command::new(exe)
        .args(args)
        .arg("--worker")
        .arg(index.to_string())
        .env(LISTEN_FD_ENV, listener.as_raw_fd().to_string())
        .env(MASTER_PID_ENV, std::process::id().to_string())
        .env(BACKEND_ENV, backend_name(backend))
        .env(MAX_CONNS_ENV, max_conns.to_string())
        .spawn();
    sys::set_inheritable(listener, false)?;
    child
}

/// Wait for the workers; on SIGTERM/SIGINT pass it on and wait for them to finish.
fn supervise(children: &mut [Option<Child>], stop: &AtomicBool) -> i32 {
    loop {
        if stop.load(Ordering::Relaxed) {
            stop_all(children);
            return 0;
        }
        for (index, slot) in children.iter_mut().enumerate() {
            if let Some(child) = slot
                && let Ok(Some(status)) = child.try_wait()
            {
                eprintln!("c10k-server: shard {index} (pid {}) exited: {status}", child.id());
                *slot = None;
            }
        }
        if children.iter().all(Option::is_none) {
            return fail("every shard has exited");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM every worker, wait up to 10 s, then SIGKILL the rest.
fn stop_all(children: &mut [Option<Child>]) {
    for child in children.iter().flatten() {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for child in children.iter_mut().flatten() {
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A worker process: take the inherited listener, pin to a core, serve until told to stop.
pub fn run_worker(config: &Config, index: usize) -> i32 {
    // Die with the master rather than serve on as an orphan.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    let master = std::env::var(MASTER_PID_ENV).ok().and_then(|p| p.parse::<i32>().ok());
    if master != Some(nix::unistd::getppid().as_raw()) {
        return fail(format_args!("shard {index}: the master has gone"));
    }
    let Some(fd) = std::env::var(LISTEN_FD_ENV).ok().and_then(|f| f.parse().ok()) else {
        return fail(format_args!("shard {index}: --worker is internal; run c10k-server without it"));
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            return fail(format_args!("shard {index}: cannot handle signals: {e}"));
        }
    }
    let core = core_affinity::get_core_ids().filter(|ids| !ids.is_empty()).map(|ids| ids[index % ids.len()]);
    let pinned = core.filter(|&c| core_affinity::set_for_current(c)).map(|c| c.id);
    let core = pinned.map_or_else(|| "unpinned".to_string(), |c| c.to_string());
    let result = match std::env::var(BACKEND_ENV).as_deref() {
        Ok("uring") => serve::<UringDriver>(config, index, fd, &core, &stop),
        _ => serve::<EpollDriver>(config, index, fd, &core, &stop),
    };
    match result {
        Ok(()) => 0,
        Err(e) => fail(format_args!("shard {index}: {e}")),
    }
}

fn serve<D: Driver>(config: &Config, index: usize, fd: i32, core: &str, stop: &Arc<AtomicBool>) -> io::Result<()> {
    let listener = sys::inherited_listener(fd)?;
    let root = Root::open(&config.root)?;
    let site = Site::new(root, Cache::new(4096, 64 << 20), config.limits());
    let max_conns = std::env::var(MAX_CONNS_ENV).ok().and_then(|n| n.parse().ok()).unwrap_or(1024);
    let sizing = Sizing { max_conns, recv_buffers: config.uring_buffers };
    let shard = Shard::<D>::new(listener, site, config.timeouts(), sizing)?;
    say(format_args!("shard {index}: pid {}, core {core}, backend {}", std::process::id(), D::NAME));
    shard.run(stop)
}
