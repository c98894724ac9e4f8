//! Capacity before serving: what this host lets the server hold, which limit binds
//! first, and whether that covers `--target-conns`. `Host` is read once from the kernel;
//! `plan` is pure arithmetic over it, so every decision is unit-tested with injected
//! values and nothing real is changed by a test.
#![forbid(unsafe_code)]

mod host;

pub use host::{Host, raise_nofile};

/// Descriptors each shard keeps for itself: stdio, listener, poller or ring, the
/// cache's open files (`files::cache::MAX_FDS`), and slack.
pub const RESERVE_FDS: u64 = 64 + crate::files::cache::MAX_FDS as u64;
/// Kernel memory one mostly idle connection costs (socket, TCP state, the smallest
/// buffers) plus its slot here: a deliberately round estimate.
pub const KERNEL_BYTES_PER_CONN: u64 = 10 * 1024;
/// What the plan counts for each connection: the kernel's part, and the most a connection
/// being served holds in the shard (`lifecycle::CONN_BUDGET`), so that the memory limit
/// holds even when every connection is a client that pipelines and stopped reading.
pub const BYTES_PER_CONN: u64 = KERNEL_BYTES_PER_CONN + crate::lifecycle::CONN_BUDGET as u64;
/// Connections the server is expected to hold when `--target-conns` does not say: below
/// this, the start warns which limit stands in the way.
pub const DEFAULT_TARGET: u64 = 10_000;
/// The listen backlog a shard wants; the kernel caps it at net.core.somaxconn.
pub const WANTED_BACKLOG: u64 = 4096;

/// A limit that can bind the connection count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Nofile,
    NrOpen,
    FileMax,
    Memory,
}

/// What the host allows and what was decided about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub shards: u64,
    /// RLIMIT_NOFILE each worker runs with (soft = hard after raising).
    pub nofile: u64,
    /// Raise the hard RLIMIT_NOFILE to this first (CAP_SYS_RESOURCE, a target that needs it).
    pub raise_hard_to: Option<u64>,
    /// Connections one shard accepts at most.
    pub per_shard: u64,
    /// Connections the whole server can hold, and the limit that sets it.
    pub capacity: u64,
    pub binding: Limit,
    /// One line per limit worth a warning, each with the command that lifts it.
    pub warnings: Vec<String>,
}

/// Why a target cannot be held: the limit, and what to run to lift it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Work out capacity for `shards` shards, and check it against `target` if given.
pub fn plan(host: &Host, shards: u64, target: Option<u64>, uring: bool) -> Result<Plan, Refusal> {
    let shards = shards.max(1);
    let need_per_shard = target.map(|t| t.div_ceil(shards) + RESERVE_FDS);
    let mut nofile = host.nofile_hard;
    let mut raise_hard_to = None;
    if let Some(need) = need_per_shard
        && need > host.nofile_hard
        && host.cap_sys_resource
    {
        let ceiling = host.nr_open.unwrap_or(host.nofile_hard);
        nofile = need.min(ceiling).max(host.nofile_hard);
        raise_hard_to = (nofile > host.nofile_hard).then_some(nofile);
    }
    let per_shard_fds = nofile.saturating_sub(RESERVE_FDS);
    let bounds = [
        (Limit::Nofile, per_shard_fds.saturating_mul(shards)),
        (
            Limit::FileMax,
            host.file_max.map_or(u64::MAX, |m| {
                m.saturating_sub(host.files_in_use.unwrap_or(0)).saturating_sub(RESERVE_FDS * shards)
            }),
        ),
        (Limit::Memory, host.mem_available.map_or(u64::MAX, |m| m / BYTES_PER_CONN)),
    ];
    let (mut binding, capacity) = bounds.into_iter().min_by_key(|&(_, n)| n).expect("three bounds");
    if binding == Limit::Nofile
        && host.cap_sys_resource
        && need_per_shard.is_some_and(|need| host.nr_open.is_some_and(|n| n < need))
    {
        binding = Limit::NrOpen;
    }
    let per_shard = per_shard_fds.min(capacity.div_ceil(shards)).max(1);

    let mut warnings = Vec::new();
    if let Some(target) = target
        && target > capacity
    {
        return Err(Refusal(refusal(host, binding, target, capacity, shards)));
    }
    if target.is_none() && capacity < DEFAULT_TARGET {
        let fix = match binding {
            Limit::Nofile | Limit::NrOpen => format!(
                "RLIMIT_NOFILE hard is {} ({per_shard_fds} connections a shard); raise it (LimitNOFILE= in \
                 the unit, nofile in /etc/security/limits.d/) or run more shards",
                host.nofile_hard
            ),
            Limit::FileMax => "fs.file-max binds first; raise it with sysctl -w fs.file-max=N".to_string(),
            Limit::Memory => "memory binds first".to_string(),
        };
        warnings.push(format!("this server can hold {capacity} connections, fewer than {DEFAULT_TARGET}: {fix}"));
    }
    if shards > host.cpus {
        warnings.push(format!(
            "{shards} shards on {} CPUs: shards share the cores (shard N runs on core N mod {}), each a \
             process with its own buffers and file cache; more shards than CPUs pays only where the \
             per-process RLIMIT_NOFILE, not CPU, bounds the connections",
            host.cpus, host.cpus
        ));
    }
    if let Some(s) = host.somaxconn
        && s < WANTED_BACKLOG
    {
        warnings.push(format!(
            "net.core.somaxconn is {s}: each listen backlog is capped there, so bursts of new connections \
             may be dropped; sysctl -w net.core.somaxconn={WANTED_BACKLOG}"
        ));
    }
    if uring {
        match host.io_uring_disabled {
            Some(1) => warnings.push(
                "kernel.io_uring_disabled=1: io_uring only for the io_uring group; \
                                      sysctl -w kernel.io_uring_disabled=0"
                    .to_string(),
            ),
            Some(2) => warnings.push(
                "kernel.io_uring_disabled=2: io_uring is off, the epoll backend serves; \
                                      sysctl -w kernel.io_uring_disabled=0"
                    .to_string(),
            ),
            _ => {}
        }
    }
    Ok(Plan { shards, nofile, raise_hard_to, per_shard, capacity, binding, warnings })
}

fn refusal(host: &Host, binding: Limit, target: u64, capacity: u64, shards: u64) -> String {
    let per = target.div_ceil(shards) + RESERVE_FDS;
    let head = format!("--target-conns {target} is more than this host can hold ({capacity})");
    match binding {
        Limit::Nofile => format!(
            "{head}: RLIMIT_NOFILE hard is {} and each of {shards} shards needs {per}; {}",
            host.nofile_hard,
            if host.cap_sys_resource {
                format!("raise it: ulimit -Hn {per}")
            } else {
                let enough = target.div_ceil(host.nofile_hard.saturating_sub(RESERVE_FDS).max(1));
                let cost = if enough > host.cpus {
                    format!(
                        " ({enough} processes on {} CPUs: they share the cores, each with its own buffers and \
                         file cache; raising the limit is the better fix)",
                        host.cpus
                    )
                } else {
                    String::new()
                };
                format!(
                    "this process lacks CAP_SYS_RESOURCE to raise it: set LimitNOFILE={per} in the systemd unit \
                     or nofile {per} in /etc/security/limits.d/, or run --shards {enough}{cost}"
                )
            }
        ),
        Limit::NrOpen => format!(
            "{head}: fs.nr_open is {} and each of {shards} shards needs {per}; sysctl -w fs.nr_open={per}, or run more shards",
            host.nr_open.unwrap_or(0)
        ),
        Limit::FileMax => format!(
            "{head}: fs.file-max is {} ({} in use); sysctl -w fs.file-max={}",
            host.file_max.unwrap_or(0),
            host.files_in_use.unwrap_or(0),
            (target + host.files_in_use.unwrap_or(0) + RESERVE_FDS * shards) * 11 / 10
        ),
        Limit::Memory => format!(
            "{head}: about {} MiB of memory are needed at {} KiB a connection and {} MiB are available",
            (target * BYTES_PER_CONN) >> 20,
            BYTES_PER_CONN >> 10,
            host.mem_available.unwrap_or(0) >> 20
        ),
    }
}

/// `capacity: 2 shards × 19,744 = 39,488 connections (RLIMIT_NOFILE hard 20000; ...)`
pub fn capacity_line(host: &Host, plan: &Plan) -> String {
    let cap = if host.cap_sys_resource { "CAP_SYS_RESOURCE to raise it" } else { "no CAP_SYS_RESOURCE to raise it" };
    let mut line = format!(
        "capacity: {} × {} = {} connections (RLIMIT_NOFILE hard {}{}; {cap}; {} per shard kept for listener, \
         poller and cached files",
        crate::log::count(plan.shards, "shard"),
        thousands(plan.per_shard),
        thousands(plan.capacity),
        host.nofile_hard,
        plan.raise_hard_to.map_or(String::new(), |n| format!(", raised to {n}")),
        RESERVE_FDS,
    );
    if let Some(m) = host.file_max {
        line += &format!("; system fs.file-max {m}");
    }
    line += &format!(
        "; bound by {})",
        match plan.binding {
            Limit::Nofile => "RLIMIT_NOFILE",
            Limit::NrOpen => "fs.nr_open",
            Limit::FileMax => "fs.file-max",
            Limit::Memory => "memory",
        }
    );
    line
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
