//! What a shard counts, for `/metrics` and `/status`. Shards are processes, so the counters
//! live in memory the master shares with every shard (a memfd each maps; `driver::sys`):
//! cache-line-aligned blocks updated with relaxed atomic adds and read by the master. No
//! lock and no message per request.
//!
//! Each shard *process* counts in a block of its own (`BLOCKS_PER_SHARD` per shard index),
//! and the status endpoint shows, per index, the sum over that index's blocks: totals over
//! the server's life, across replacements and generations. A block of its own is what
//! keeps `connections_open` (accepted − closed) true. A process killed outright (SIGKILL, a
//! crash) never counts the closes of the connections it held, which the kernel closed when
//! it died; once the master has reaped it, nothing writes its block any more, so the
//! master counts what the block still holds as closed (`settle`) before the block is used
//! again. With one block per shard index, shared by both generations of a reload and by a
//! replacement, the master could not tell what the dead process held, and the gauge grew
//! by that much with every crash.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the response-time buckets, in milliseconds (Prometheus' `le`, in
/// seconds, is these / 1000); a last bucket holds everything slower.
pub const LATENCY_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/// Timeouts by kind, in `ShardStats::timeouts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutKind {
    /// A request (or a new connection's first one) did not arrive in time.
    Request = 0,
    /// An idle keep-alive connection was closed.
    Keepalive = 1,
    /// A response made no progress.
    Send = 2,
}

/// TLS handshakes by outcome, in `ShardStats::tls_handshakes`: how they ended, and why
/// those that failed did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    Full = 0,
    Resumed = 1,
    /// Plain HTTP sent to a TLS port (answered 400, as nginx does).
    PlainHttp = 2,
    /// Bytes that are no TLS, or a message out of place or that did not decrypt.
    Protocol = 3,
    /// No version, cipher suite, key exchange or application protocol in common.
    Incompatible = 4,
    /// The client ended it with an alert (e.g. it did not trust the certificate).
    Alert = 5,
    /// The connection closed (or timed out) before the handshake was done.
    Closed = 6,
    Other = 7,
}

/// `Handshake`'s names, by position: the outcome's label in `/metrics`.
pub const HANDSHAKES: [&str; 8] =
    ["full", "resumed", "plain_http", "protocol", "incompatible", "alert", "closed", "other"];

/// Statuses counted as parse errors (a request that could not be read), by position.
pub const ERROR_STATUSES: [u16; 7] = [400, 408, 413, 414, 431, 501, 505];

/// One shard's counters.
#[repr(C, align(64))]
#[derive(Default)]
pub struct ShardStats {
    pub accepted: AtomicU64,
    /// Connections released (closed for any reason).
    pub closed: AtomicU64,
    /// Keep-alive connections closed at the cap to admit new ones.
    pub evicted: AtomicU64,
    /// Responses by status class: 1xx … 5xx.
    pub responses: [AtomicU64; 5],
    pub bytes_sent: AtomicU64,
    /// By `TimeoutKind`.
    pub timeouts: [AtomicU64; 3],
    /// Requests refused as unreadable, by `ERROR_STATUSES` position.
    pub parse_errors: [AtomicU64; ERROR_STATUSES.len()],
    /// Responses by time from the request's first byte to its last byte sent: one count
    /// per `LATENCY_MS` bucket (not cumulative), then the rest.
    pub latency: [AtomicU64; LATENCY_MS.len() + 1],
    pub latency_sum_ms: AtomicU64,
    /// By `Handshake`.
    pub tls_handshakes: [AtomicU64; HANDSHAKES.len()],
    /// TLS connections accepted and closed (open: the difference).
    pub tls_opened: AtomicU64,
    pub tls_closed: AtomicU64,
    /// Written by the master: the shard's current pid and generation, when it started
    /// (Unix seconds), and how often it was replaced after dying.
    pub pid: AtomicU64,
    pub generation: AtomicU64,
    pub started: AtomicU64,
    pub restarts: AtomicU64,
}

/// Shard processes of one index that count at once, each in its own block: the one serving,
/// a new generation's starting beside it during a reload, and up to two older generations
/// still draining (a reload every few seconds). Past that, a process shares a block
/// (`block_for`), and that block's open count is settled only when all its processes
/// have exited.
pub const BLOCKS_PER_SHARD: usize = 4;

/// Blocks in the shared memory of a server of `shards` shards.
pub fn blocks(shards: usize) -> usize {
    shards * BLOCKS_PER_SHARD
}

/// The blocks of shard `index` among `shards`: the first shard index's first block is block
/// 0 and so on, so a server's first generation counts in blocks `0..shards`.
pub fn blocks_of(index: usize, shards: usize) -> impl Iterator<Item = usize> {
    (0..BLOCKS_PER_SHARD).map(move |k| k * shards + index)
}

/// Add `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl ShardStats {
    /// A block of its own, for a core that no master shares (tests, tools).
    pub fn detached() -> &'static ShardStats {
        Box::leak(Box::default())
    }

    /// Every counter that only grows, in one order, for `merged`: all but the pid,
    /// generation and start, which say who counts here now.
    fn counters(&self) -> impl Iterator<Item = &AtomicU64> {
        [&self.accepted, &self.closed, &self.evicted, &self.bytes_sent, &self.latency_sum_ms, &self.restarts]
            .into_iter()
            .chain([&self.tls_opened, &self.tls_closed])
            .chain(&self.tls_handshakes)
            .chain(&self.responses)
            .chain(&self.timeouts)
            .chain(&self.parse_errors)
            .chain(&self.latency)
    }

    /// One shard index's figures: the counters summed over its `blocks`, and the pid,
    /// generation and start of the newest process that counts in one of them (pid 0 when
    /// none does, e.g. a shard waiting out its restart backoff).
    pub fn merged<'a>(blocks: impl IntoIterator<Item = &'a ShardStats>) -> ShardStats {
        let sum = ShardStats::default();
        let mut newest: Option<&ShardStats> = None;
        for block in blocks {
            sum.counters().zip(block.counters()).for_each(|(s, b)| add(s, get(b)));
            let key = |b: &ShardStats| (get(&b.pid) != 0, get(&b.generation), get(&b.started));
            if newest.is_none_or(|n| key(block) > key(n)) {
                newest = Some(block);
            }
        }
        if let Some(n) = newest {
            for (to, from) in [(&sum.pid, &n.pid), (&sum.generation, &n.generation), (&sum.started, &n.started)] {
                to.store(get(from), Ordering::Relaxed);
            }
        }
        sum
    }

    /// The processes that counted here have all exited and been reaped, so nothing adds
    /// to this block until the master gives it to a new one: count the connections they
    /// still held as closed (the kernel closed them when each died), and say no process
    /// counts here.
    pub fn settle(&self) {
        add(&self.closed, get(&self.accepted).saturating_sub(get(&self.closed)));
        add(&self.tls_closed, get(&self.tls_opened).saturating_sub(get(&self.tls_closed)));
        self.pid.store(0, Ordering::Relaxed);
    }

    /// Connections held now: accepted and not yet closed.
    pub fn open(&self) -> u64 {
        get(&self.accepted).saturating_sub(get(&self.closed))
    }

    /// TLS connections held now.
    pub fn tls_open(&self) -> u64 {
        get(&self.tls_opened).saturating_sub(get(&self.tls_closed))
    }

    pub fn handshake(&self, outcome: Handshake) {
        add(&self.tls_handshakes[outcome as usize], 1);
    }

    pub fn response(&self, status: u16) {
        if let Some(class) = self.responses.get(usize::from(status / 100).wrapping_sub(1)) {
            add(class, 1);
        }
    }

    pub fn parse_error(&self, status: u16) {
        if let Some(i) = ERROR_STATUSES.iter().position(|&s| s == status) {
            add(&self.parse_errors[i], 1);
        }
    }

    pub fn timeout(&self, kind: TimeoutKind) {
        add(&self.timeouts[kind as usize], 1);
    }

    /// `answers` responses that took `ms` each.
    pub fn latency(&self, ms: u64, answers: u64) {
        let bucket = LATENCY_MS.iter().position(|&le| ms <= le).unwrap_or(LATENCY_MS.len());
        add(&self.latency[bucket], answers);
        add(&self.latency_sum_ms, ms * answers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_whole_cache_lines_and_counts_land_where_named() {
        assert_eq!(std::mem::align_of::<ShardStats>(), 64);
        assert_eq!(std::mem::size_of::<ShardStats>() % 64, 0);
        let s = ShardStats::default();
        s.response(204);
        s.response(404);
        s.response(99);
        s.parse_error(431);
        s.latency(0, 2);
        s.latency(3, 1);
        s.latency(60_000, 1);
        assert_eq!(s.responses.iter().map(get).collect::<Vec<_>>(), [0, 1, 0, 1, 0]);
        assert_eq!(get(&s.parse_errors[4]), 1);
        assert_eq!((get(&s.latency[0]), get(&s.latency[2]), get(&s.latency[LATENCY_MS.len()])), (2, 1, 1));
        assert_eq!(get(&s.latency_sum_ms), 60_003);
    }

    #[test]
    fn a_settled_block_holds_nothing_open_and_merging_keeps_the_newest_process() {
        let shards = 2;
        let all: Vec<ShardStats> = (0..blocks(shards)).map(|_| ShardStats::default()).collect();
        assert_eq!(blocks_of(1, shards).collect::<Vec<_>>(), [1, 3, 5, 7]);
        let (old, new) = (&all[1], &all[3]);
        add(&old.accepted, 5);
        add(&old.closed, 2);
        old.pid.store(100, Ordering::Relaxed);
        old.generation.store(1, Ordering::Relaxed);
        add(&new.accepted, 4);
        add(&new.closed, 1);
        new.pid.store(200, Ordering::Relaxed);
        new.generation.store(2, Ordering::Relaxed);
        let shard = ShardStats::merged(blocks_of(1, shards).map(|b| &all[b]));
        assert_eq!((shard.open(), get(&shard.accepted), get(&shard.pid), get(&shard.generation)), (6, 9, 200, 2));
        // The new generation's process was killed holding 3 connections.
        new.settle();
        let shard = ShardStats::merged(blocks_of(1, shards).map(|b| &all[b]));
        assert_eq!((shard.open(), get(&shard.accepted), get(&shard.closed), get(&shard.pid)), (3, 9, 6, 100));
        old.settle();
        let shard = ShardStats::merged(blocks_of(1, shards).map(|b| &all[b]));
        assert_eq!((shard.open(), get(&shard.pid), get(&shard.generation)), (0, 0, 2));
    }
}
