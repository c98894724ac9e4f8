//! A worker process: what `c10k-server --worker N` runs, started by the master.

use super::privileges::{self, Ids};
use super::*;
use crate::tls;
use crate::transport::Transport;

/// A worker process: take the inherited listeners, pin to a core, say it serves, serve
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
    let inherited = match sys::take_inherited() {
        Ok(Some(inherited)) => inherited,
        Ok(None) => return failed(format_args!("--worker is internal; run c10k-server without it")),
        Err(e) => return failed(format_args!("{e}")),
    };
    // SIGTERM drains, SIGQUIT stops at once. SIGINT (a terminal's ^C reaches the whole
    // process group), SIGHUP (a terminal hanging up) and the other signals an operator may
    // send to every c10k-server process at once (SIGUSR2, SIGALRM) are the master's to act
    // on: it passes on what the shards must do.
    let stop = Stop::default();
    let ignored = Arc::new(AtomicBool::new(false));
    let handlers = [
        (SIGTERM, &stop.drain),
        (SIGQUIT, &stop.now),
        (SIGUSR1, &stop.reopen),
        (SIGINT, &ignored),
        (SIGHUP, &ignored),
        (SIGUSR2, &ignored),
        (SIGALRM, &ignored),
    ];
    for (signal, flag) in handlers {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(flag)) {
            return failed(format_args!("cannot handle signals: {e}"));
        }
    }
    let cores: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
    let core = config.cpu_affinity.core_for(index, &cores).map(|id| core_affinity::CoreId { id });
    let pinned = core.filter(|&c| core_affinity::set_for_current(c)).map(|c| c.id);
    let core = pinned.map_or_else(|| "unpinned".to_string(), |c| c.to_string());
    let result = match std::env::var(BACKEND_ENV).as_deref() {
        Ok("uring") => serve::<UringDriver>(config, inherited, &core, &stop),
        _ => serve::<EpollDriver>(config, inherited, &core, &stop),
    };
    match result {
        Ok(()) => 0,
        Err(e) => failed(format_args!("{e}")),
    }
}

/// Serve as shard `config.worker` on the inherited listeners: plain only (`Plain`, no cost),
/// or with TLS listeners among them (`tls::Mixed`, plain or TLS by listener).
fn serve<D: Driver>(config: &Config, inherited: sys::Inherited, core: &str, stop: &Stop) -> io::Result<()> {
    let sys::Inherited { listeners, ready, stats, tickets } = inherited;
    let ids = privileges::resolve(config).map_err(io::Error::other)?;
    let tls_listeners: Vec<bool> = config.listeners().iter().map(|&(_, tls)| tls).collect();
    if listeners.len() != tls_listeners.len() {
        let (got, want) = (listeners.len(), tls_listeners.len());
        return Err(io::Error::other(format!("inherited {got} listeners for the {want} configured")));
    }
    let root = Root::open(&config.root)
        .map_err(|e| io::Error::new(e.kind(), format!("--root {}: {e}", config.root.display())))?;
    let mut ctx = Context::new(root, Cache::new(4096, 64 << 20), config.limits());
    ctx.site = config.open_site()?.map(Box::new);
    if let Some(stats) = stats {
        // A master from before per-process blocks names none: its block per shard index.
        let index = config.worker.unwrap_or(0);
        let block = std::env::var(STATS_BLOCK_ENV).ok().and_then(|b| b.parse().ok()).unwrap_or(index);
        ctx.stats = stats.get(block).ok_or_else(|| io::Error::other(format!("no counters block {block}")))?;
    }
    let max_conns = std::env::var(MAX_CONNS_ENV).ok().and_then(|n| n.parse().ok()).unwrap_or(1024);
    let sizing = Sizing { max_conns, recv_buffers: config.uring_buffers };
    if !tls_listeners.contains(&true) {
        let shard = Shard::<D>::new(listeners, ctx, config.timeouts(), sizing)?;
        return run_shard(shard, config, ready, core, stop, ids.as_ref());
    }
    // Before the shard takes anything of the kernel's: a shard that cannot serve TLS fails
    // its start, and the master says why.
    let certs = tls::Certificates::load(&config.cert_sources()).map_err(io::Error::other)?;
    let keys = tickets.ok_or_else(|| io::Error::other("the master handed no TLS session-ticket keys"))?;
    let keys = tls::TicketKeys::decode(&keys).map_err(|e| io::Error::other(format!("the ticket keys: {e}")))?;
    let shared = tls::Shared::new(certs, keys, tls_listeners, ctx.stats).map_err(io::Error::other)?;
    let mut shard = Shard::<D, tls::Mixed>::new(listeners, ctx, config.timeouts(), sizing)?;
    *shard.transports() = shared;
    run_shard(shard, config, ready, core, stop, ids.as_ref())
}

/// Log access if asked, drop to `--user` if asked, say the shard serves, and serve until
/// told to stop.
fn run_shard<D: Driver, T: Transport>(
    mut shard: Shard<D, T>,
    config: &Config,
    mut ready: std::fs::File,
    core: &str,
    stop: &Stop,
    ids: Option<&Ids>,
) -> io::Result<()> {
    if config.access_log != "off" {
        let file = sys::LogFile::open(&config.access_log)
            .map_err(|e| io::Error::new(e.kind(), format!("--access-log {}: {e}", config.access_log)))?;
        shard.log_access(file, config.access_log_format, config.worker.unwrap_or(0));
    }
    if let Some(ids) = ids {
        let master = nix::unistd::getppid();
        privileges::drop_to(ids).map_err(io::Error::other)?;
        // A change of ids clears the parent-death signal (prctl(2)).
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
            .map_err(|e| io::Error::other(format!("cannot set the parent-death signal again: {e}")))?;
        if nix::unistd::getppid() != master {
            return Err(io::Error::other("the master has gone"));
        }
        log::info(format_args!("running as user {} ({}), group {} ({})", ids.user, ids.uid, ids.group, ids.gid));
    }
    let generation = std::env::var(GENERATION_ENV).unwrap_or_else(|_| "1".to_string());
    log::info(format_args!("serving: core {core}, backend {}, generation {generation}", D::NAME));
    ready.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    drop(ready);
    shard.run(stop, config.shutdown_timeout * 1000)
}
