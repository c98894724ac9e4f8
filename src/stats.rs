//! What a shard counts, for `/metrics` and `/status`. Shards are processes, so the counters
//! live in memory the master shares with every shard (a memfd each maps; `driver::sys`):
//! one cache-line-aligned block per shard index, updated with relaxed atomic adds and read
//! by the master. No lock and no message per request; a replacement (or a new generation)
//! of a shard adds to the same block, so the figures are totals over the server's life.

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
    /// Written by the master: the shard's current pid and generation, when it started
    /// (Unix seconds), and how often it was replaced after dying.
    pub pid: AtomicU64,
    pub generation: AtomicU64,
    pub started: AtomicU64,
    pub restarts: AtomicU64,
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
}
