//! c10k-load: a closed- and open-loop HTTP/1.1 load generator on its own epoll loops, over
//! TCP or TLS.
//!
//! Exit status: 0 when the run completed with zero errors, 1 when there were errors or it
//! could not run, 2 for bad flags.

mod cli;
mod client;
mod conn;
mod net;
mod parse;
mod procs;
mod report;
mod run;
mod stats;
mod tls;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};

use cli::{Args, Config};
use stats::Stats;

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match Config::from_args(args) {
        Ok(cfg) => cfg,
        Err(msg) => {
            eprintln!("c10k-load: {msg}");
            return ExitCode::from(2);
        }
    };
    let limit = net::raise_nofile();
    // The first SIGINT/SIGTERM ends the run early (with its report); a second one exits.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone());
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    let result = prepare(&cfg, limit).and_then(|()| {
        if cfg.procs > 1 && cfg.worker.is_none() { procs::run(&cfg, &stop) } else { run::run_local(&cfg, &stop) }
    });
    let stats = match result {
        Ok(stats) => stats,
        Err(msg) => {
            eprintln!("c10k-load: {msg}");
            return ExitCode::from(1);
        }
    };
    if cfg.worker.is_some() {
        let _ = std::io::stdout().write_all(stats.to_wire().as_bytes());
        return ExitCode::SUCCESS;
    }
    finish(&cfg, &stats)
}

/// What can be known to fail before the run: fds, ports, and the server answering at all.
fn prepare(cfg: &Config, limit: u64) -> Result<(), String> {
    net::check_fds(cfg, limit)?;
    if cfg.worker.is_none() {
        net::check_ports(cfg)?;
        net::check_sources(cfg)?;
    }
    net::probe(cfg)
}

fn finish(cfg: &Config, stats: &Stats) -> ExitCode {
    print!("{}", report::summary(cfg, stats));
    let mut ok = stats.errors_total() == 0;
    if let Some(path) = &cfg.args.json
        && let Err(e) = std::fs::write(path, report::json(cfg, stats))
    {
        eprintln!("c10k-load: cannot write {}: {e}", path.display());
        ok = false;
    }
    for hint in report::hints(stats) {
        eprintln!("c10k-load: {hint}");
    }
    if stats.idle_phase_s.is_some() && !cfg.load_during_ramp && stats.idle_at_start < stats.idle {
        eprintln!(
            "c10k-load: the load began with only {} of {} idle connections open and answered, {:.2} s in \
             (--idle-timeout {} s); see the errors, or give a large population more --idle-timeout",
            stats.idle_at_start,
            stats.idle,
            stats.idle_phase_s.unwrap_or(0.0),
            cfg.idle_timeout.as_secs_f64()
        );
        ok = false;
    }
    if cfg.open_first && stats.idle_phase_s.is_some() && stats.warmed < stats.connections {
        eprintln!(
            "c10k-load: the load began with only {} of {} active connections open and answered (--warmup), \
             {:.2} s in (--idle-timeout {} s); see the errors",
            stats.warmed,
            stats.connections,
            stats.idle_phase_s.unwrap_or(0.0),
            cfg.idle_timeout.as_secs_f64()
        );
        ok = false;
    }
    if stats.idle_open < stats.idle {
        eprintln!(
            "c10k-load: only {} of {} idle connections were open at the end ({} answered); see the errors",
            stats.idle_open, stats.idle, stats.idle_answered
        );
        ok = false;
    }
    if stats.requests + stats.idle_answered == 0 {
        eprintln!("c10k-load: no response arrived within the run");
        ok = false;
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
