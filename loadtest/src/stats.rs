//! What a run measured: the latency histogram (microseconds), counters and errors by kind;
//! merged across threads and processes, and written by a worker for its parent as text.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hdrhistogram::Histogram;

use crate::parse::ParseError;

/// Every kind of error, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A connection could not be established (refused, unreachable, no local port, no fd,
    /// or not within --timeout).
    Connect,
    /// ECONNRESET or EPIPE on an established connection.
    Reset,
    /// The server closed a connection that was waiting for an answer or being held.
    Closed,
    /// A request unanswered within --timeout.
    Timeout,
    /// A status outside 2xx/3xx.
    Status,
    /// A malformed response: status line, field lines, missing or bad Content-Length.
    Framing,
    /// A body shorter than its Content-Length, or not --expect-bytes long.
    Length,
    /// Transfer-Encoding (chunked).
    Unsupported,
    /// A TLS session that could not be established or carried on: a certificate not trusted
    /// by --cacert, an alert from the server, a record that does not decrypt.
    Tls,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Closed,
        ErrorKind::Timeout,
        ErrorKind::Status,
        ErrorKind::Framing,
        ErrorKind::Length,
        ErrorKind::Unsupported,
        ErrorKind::Tls,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status => "status",
            ErrorKind::Framing => "framing",
            ErrorKind::Length => "length",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Tls => "tls",
        }
    }
}

impl From<ParseError> for ErrorKind {
    fn from(e: ParseError) -> ErrorKind {
        match e {
            ParseError::Unsupported => ErrorKind::Unsupported,
            ParseError::TruncatedBody => ErrorKind::Length,
            _ => ErrorKind::Framing,
        }
    }
}

/// Highest latency the histogram holds: an hour, in microseconds.
const MAX_US: u64 = 3_600_000_000;

#[derive(Debug, Clone)]
pub struct Stats {
    pub hist: Histogram<u64>,
    /// Responses received on active connections (good or not); each has its latency.
    pub requests: u64,
    /// Responses received on idle connections (their one request each).
    pub idle_answered: u64,
    /// Body bytes received.
    pub bytes: u64,
    pub errors: [u64; ErrorKind::ALL.len()],
    /// Connections established, reconnections included.
    pub connects: u64,
    /// Active and idle connections this run was asked for.
    pub connections: u64,
    pub idle: u64,
    /// Idle connections still open when the run ended.
    pub idle_open: u64,
    /// Seconds from the start until every idle connection was open and answered (`None`:
    /// never).
    pub idle_ready_s: Option<f64>,
    /// Seconds from the start until the load began: the idle ramp (`None`: it never began,
    /// the run was stopped during the ramp).
    pub idle_phase_s: Option<f64>,
    /// Idle connections open and answered when the load began.
    pub idle_at_start: u64,
    /// Requests sent and not answered when the run ended (not errors).
    pub inflight: u64,
    /// Seconds of the measured phase, from the load's beginning until the last thread
    /// stopped (0 when it never began).
    pub duration_s: f64,
    /// Connects failed with EADDRNOTAVAIL (no local port) / EMFILE or ENFILE (no fd).
    pub no_ports: u64,
    pub no_fds: u64,
    /// TLS handshakes completed (in the measured window, and the idle connections' in the
    /// ramp), and how many of them resumed an earlier session.
    pub handshakes: u64,
    pub resumed: u64,
    /// `--warmup`: active connections open and answered when the load began.
    pub warmed: u64,
    /// Answers on active connections to requests sent before the measured window (the
    /// warm-up's): checked, not counted in `requests` nor in the latency.
    pub uncounted: u64,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            hist: Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"),
            requests: 0,
            idle_answered: 0,
            bytes: 0,
            errors: [0; ErrorKind::ALL.len()],
            connects: 0,
            connections: 0,
            idle: 0,
            idle_open: 0,
            idle_ready_s: Some(0.0),
            idle_phase_s: Some(0.0),
            idle_at_start: 0,
            inflight: 0,
            duration_s: 0.0,
            no_ports: 0,
            no_fds: 0,
            handshakes: 0,
            resumed: 0,
            warmed: 0,
            uncounted: 0,
        }
    }
}

impl Stats {
    pub fn error(&mut self, kind: ErrorKind) {
        self.errors[kind as usize] += 1;
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn record_us(&mut self, us: u64) {
        self.hist.saturating_record(us.max(1));
    }

    /// Add `other` (another thread's or process's share) to this one.
    pub fn merge(&mut self, other: &Stats) {
        self.hist.add(&other.hist).expect("histograms with the same bounds");
        self.requests += other.requests;
        self.idle_answered += other.idle_answered;
        self.bytes += other.bytes;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.connects += other.connects;
        self.connections += other.connections;
        self.idle += other.idle;
        self.idle_open += other.idle_open;
        self.idle_ready_s = self.idle_ready_s.zip(other.idle_ready_s).map(|(a, b)| a.max(b));
        self.idle_phase_s = self.idle_phase_s.zip(other.idle_phase_s).map(|(a, b)| a.max(b));
        self.idle_at_start += other.idle_at_start;
        self.inflight += other.inflight;
        self.duration_s = self.duration_s.max(other.duration_s);
        self.no_ports += other.no_ports;
        self.no_fds += other.no_fds;
        self.handshakes += other.handshakes;
        self.resumed += other.resumed;
        self.warmed += other.warmed;
        self.uncounted += other.uncounted;
    }

    pub fn rps(&self) -> f64 {
        if self.duration_s > 0.0 { self.requests as f64 / self.duration_s } else { 0.0 }
    }

    /// Latency at quantile `q` in microseconds (0 when nothing was recorded).
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.hist.is_empty() { 0 } else { self.hist.value_at_quantile(q) }
    }

    pub fn max_us(&self) -> u64 {
        if self.hist.is_empty() { 0 } else { self.hist.max() }
    }

    /// The worker's report to its parent: `key value` lines, the histogram as `hist VALUE
    /// COUNT` per recorded bucket, then `end`.
    pub fn to_wire(&self) -> String {
        let mut s = String::from("result\n");
        let mut kv = |k: &str, v: String| s.push_str(&format!("{k} {v}\n"));
        kv("requests", self.requests.to_string());
        kv("idle_answered", self.idle_answered.to_string());
        kv("idle_ready_s", self.idle_ready_s.map_or("-".to_string(), |s| s.to_string()));
        kv("idle_phase_s", self.idle_phase_s.map_or("-".to_string(), |s| s.to_string()));
        kv("idle_at_start", self.idle_at_start.to_string());
        kv("bytes", self.bytes.to_string());
        kv("connects", self.connects.to_string());
        kv("connections", self.connections.to_string());
        kv("idle", self.idle.to_string());
        kv("idle_open", self.idle_open.to_string());
        kv("inflight", self.inflight.to_string());
        kv("duration_s", self.duration_s.to_string());
        kv("no_ports", self.no_ports.to_string());
        kv("no_fds", self.no_fds.to_string());
        kv("handshakes", self.handshakes.to_string());
        kv("resumed", self.resumed.to_string());
        kv("warmed", self.warmed.to_string());
        kv("uncounted", self.uncounted.to_string());
        for k in ErrorKind::ALL {
            kv("error", format!("{} {}", k.name(), self.errors[k as usize]));
        }
        for v in self.hist.iter_recorded() {
            kv("hist", format!("{} {}", v.value_iterated_to(), v.count_at_value()));
        }
        s.push_str("end\n");
        s
    }

    /// Parse [`Stats::to_wire`]'s lines (after `result`, up to `end`).
    pub fn from_wire<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Stats, String> {
        let mut st = Stats::default();
        for line in lines {
            let mut f = line.split_ascii_whitespace();
            let (key, a, b) = (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""));
            let bad = || format!("bad worker report line {line:?}");
            let num = |v: &str| v.parse::<u64>().map_err(|_| bad());
            match key {
                "end" => return Ok(st),
                "requests" => st.requests = num(a)?,
                "idle_answered" => st.idle_answered = num(a)?,
                "idle_ready_s" if a == "-" => st.idle_ready_s = None,
                "idle_ready_s" => st.idle_ready_s = Some(a.parse().map_err(|_| bad())?),
                "idle_phase_s" if a == "-" => st.idle_phase_s = None,
                "idle_phase_s" => st.idle_phase_s = Some(a.parse().map_err(|_| bad())?),
                "idle_at_start" => st.idle_at_start = num(a)?,
                "bytes" => st.bytes = num(a)?,
                "connects" => st.connects = num(a)?,
                "connections" => st.connections = num(a)?,
                "idle" => st.idle = num(a)?,
                "idle_open" => st.idle_open = num(a)?,
                "inflight" => st.inflight = num(a)?,
                "duration_s" => st.duration_s = a.parse().map_err(|_| bad())?,
                "no_ports" => st.no_ports = num(a)?,
                "no_fds" => st.no_fds = num(a)?,
                "handshakes" => st.handshakes = num(a)?,
                "resumed" => st.resumed = num(a)?,
                "warmed" => st.warmed = num(a)?,
                "uncounted" => st.uncounted = num(a)?,
                "error" => {
                    let k = ErrorKind::ALL.into_iter().find(|k| k.name() == a).ok_or_else(bad)?;
                    st.errors[k as usize] = num(b)?;
                }
                "hist" => st.hist.saturating_record_n(num(a)?, num(b)?),
                _ => return Err(bad()),
            }
        }
        Err("worker report ended without `end`".into())
    }
}

/// Live counters one thread (or one worker's reader) publishes for the progress line.
#[derive(Default)]
pub struct Progress {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub open: AtomicU64,
    pub idle_open: AtomicU64,
    /// Seconds from the run's start until every idle connection of this thread (or worker),
    /// and with `--warmup` every active one, was open and answered; set once.
    pub idle_ready_s: OnceLock<f64>,
}

impl Progress {
    pub fn set(&self, requests: u64, errors: u64, open: u64, idle_open: u64) {
        self.requests.store(requests, Relaxed);
        self.errors.store(errors, Relaxed);
        self.open.store(open, Relaxed);
        self.idle_open.store(idle_open, Relaxed);
    }

    /// The sums over `all`: (requests, errors, open, idle_open).
    pub fn sum(all: &[std::sync::Arc<Progress>]) -> [u64; 4] {
        let mut s = [0; 4];
        for p in all {
            for (acc, v) in s.iter_mut().zip([&p.requests, &p.errors, &p.open, &p.idle_open]) {
                *acc += v.load(Relaxed);
            }
        }
        s
    }

    /// When every one of `all` has its idle connections open: the latest of their times.
    pub fn idle_ready_s(all: &[std::sync::Arc<Progress>]) -> Option<f64> {
        all.iter().try_fold(0.0, |latest: f64, p| Some(latest.max(*p.idle_ready_s.get()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_and_merge() {
        let mut a = Stats { requests: 3, connections: 2, idle: 5, idle_open: 4, duration_s: 1.5, ..Stats::default() };
        (a.handshakes, a.resumed, a.warmed, a.uncounted) = (7, 6, 2, 9);
        a.idle_ready_s = None;
        a.idle_phase_s = Some(2.5);
        a.idle_at_start = 4;
        for us in [10, 250, 9_999_999] {
            a.record_us(us);
        }
        a.error(ErrorKind::Timeout);
        let wire = a.to_wire();
        let b = Stats::from_wire(wire.lines().skip(1)).unwrap();
        assert_eq!((b.requests, b.connections, b.idle, b.idle_open), (3, 2, 5, 4));
        assert_eq!((b.handshakes, b.resumed, b.warmed, b.uncounted), (7, 6, 2, 9));
        assert_eq!(b.errors[ErrorKind::Timeout as usize], 1);
        assert_eq!((b.idle_ready_s, b.idle_phase_s, b.idle_at_start), (None, Some(2.5), 4));
        assert_eq!(b.hist.len(), 3);
        assert_eq!(b.max_us(), a.max_us());
        assert_eq!(b.quantile_us(0.5), a.quantile_us(0.5));
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!((m.requests, m.connections, m.hist.len(), m.errors_total()), (6, 4, 6, 2));
        assert_eq!((m.idle_phase_s, m.idle_at_start), (Some(2.5), 8));
        assert_eq!((m.handshakes, m.resumed, m.warmed, m.uncounted), (14, 12, 4, 18));
        let mut r = Stats { idle_ready_s: Some(0.5), ..Stats::default() };
        r.merge(&Stats { idle_ready_s: Some(0.25), ..Stats::default() });
        assert_eq!(r.idle_ready_s, Some(0.5));
        r.merge(&b);
        assert_eq!(r.idle_ready_s, None);
        assert!(Stats::from_wire(["requests x"]).is_err());
        assert!(Stats::from_wire(["requests 1"]).is_err());
    }

    #[test]
    fn idle_ready_is_the_latest_once_all_are_ready() {
        let all: Vec<std::sync::Arc<Progress>> = (0..2).map(|_| Default::default()).collect();
        assert_eq!(Progress::idle_ready_s(&all), None);
        all[1].idle_ready_s.set(1.25).unwrap();
        assert_eq!(Progress::idle_ready_s(&all), None);
        all[0].idle_ready_s.set(0.5).unwrap();
        assert_eq!(Progress::idle_ready_s(&all), Some(1.25));
    }
}
