//! What the status page shows an operator during a load: rates over the last interval, not
//! only totals. The status thread samples the shards' counters every `SAMPLE` and keeps
//! the last `KEEP` samples (five minutes); an interval's figures are the differences
//! between two samples: requests and bytes per second, the median and 99th percentile
//! response time from the histogram's buckets, and the connections open at its end.

use crate::stats::{LATENCY_MS, ShardStats, get};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub(super) const SAMPLE: Duration = Duration::from_secs(2);
const KEEP: usize = 150;

/// The counters an interval is taken from.
#[derive(Clone, Copy, Default)]
struct Counts {
    requests: u64,
    bytes: u64,
    latency: [u64; LATENCY_MS.len() + 1],
    open: u64,
}

impl Counts {
    fn of(s: &ShardStats) -> Counts {
        Counts {
            requests: s.responses.iter().map(get).sum(),
            bytes: get(&s.bytes_sent),
            latency: std::array::from_fn(|b| get(&s.latency[b])),
            open: s.open(),
        }
    }
}

struct Sample {
    at: Instant,
    total: Counts,
    shards: Vec<Counts>,
}

/// One interval's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Interval {
    pub requests_per_second: f64,
    pub bytes_per_second: f64,
    /// Upper bounds of the buckets the median and the 99th percentile fall in (ms); `None`
    /// with no response timed, or past the last bucket.
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub open: u64,
}

impl Interval {
    fn between(a: &Counts, b: &Counts, seconds: f64) -> Interval {
        let timed: Vec<u64> = b.latency.iter().zip(&a.latency).map(|(b, a)| b.saturating_sub(*a)).collect();
        Interval {
            requests_per_second: b.requests.saturating_sub(a.requests) as f64 / seconds,
            bytes_per_second: b.bytes.saturating_sub(a.bytes) as f64 / seconds,
            p50_ms: percentile(&timed, 0.5),
            p99_ms: percentile(&timed, 0.99),
            open: b.open,
        }
    }
}

/// The upper bound (ms) of the bucket the `q` quantile of `counts` falls in.
fn percentile(counts: &[u64], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let want = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (b, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= want {
            return LATENCY_MS.get(b).copied();
        }
    }
    None
}

#[derive(Default)]
pub(super) struct History {
    samples: VecDeque<Sample>,
}

impl History {
    /// When the next sample is due.
    pub(super) fn due(&self) -> Option<Instant> {
        self.samples.back().map(|s| s.at + SAMPLE)
    }

    pub(super) fn sample(&mut self, shards: &[ShardStats], now: Instant) {
        let counts: Vec<Counts> = shards.iter().map(Counts::of).collect();
        let mut total = Counts::default();
        for c in &counts {
            total.requests += c.requests;
            total.bytes += c.bytes;
            total.open += c.open;
            total.latency.iter_mut().zip(&c.latency).for_each(|(t, n)| *t += n);
        }
        if self.samples.len() == KEEP {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample { at: now, total, shards: counts });
    }

    /// The last interval, in all and per shard.
    pub(super) fn last(&self) -> Option<(Interval, Vec<Interval>)> {
        let n = self.samples.len();
        let (a, b) = (self.samples.get(n.checked_sub(2)?)?, self.samples.get(n - 1)?);
        let seconds = b.at.duration_since(a.at).as_secs_f64().max(1e-3);
        let shards = a.shards.iter().zip(&b.shards).map(|(a, b)| Interval::between(a, b, seconds)).collect();
        Some((Interval::between(&a.total, &b.total, seconds), shards))
    }

    /// Every interval kept, oldest first, in all.
    pub(super) fn series(&self) -> Vec<Interval> {
        let v: Vec<&Sample> = self.samples.iter().collect();
        v.windows(2)
            .map(|w| {
                Interval::between(&w[0].total, &w[1].total, w[1].at.duration_since(w[0].at).as_secs_f64().max(1e-3))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::add;

    #[test]
    fn an_interval_is_the_difference_of_two_samples() {
        let shard = ShardStats::default();
        let mut h = History::default();
        let t0 = Instant::now();
        h.sample(std::slice::from_ref(&shard), t0);
        assert!(h.last().is_none(), "one sample is no interval");
        add(&shard.responses[1], 200);
        add(&shard.bytes_sent, 4_000_000);
        add(&shard.accepted, 7);
        add(&shard.latency[0], 98); // ≤ 1 ms
        add(&shard.latency[4], 2); // ≤ 25 ms
        h.sample(std::slice::from_ref(&shard), t0 + Duration::from_secs(2));
        let (total, shards) = h.last().unwrap();
        let want = Interval {
            requests_per_second: 100.0,
            bytes_per_second: 2_000_000.0,
            p50_ms: Some(1),
            p99_ms: Some(25),
            open: 7,
        };
        assert_eq!((total, shards), (want, vec![want]));
        assert_eq!(h.series(), [want]);
        assert_eq!(h.due(), Some(t0 + Duration::from_secs(2) + SAMPLE));
    }
}
