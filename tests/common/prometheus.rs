//! `/metrics` of the status listener, parsed by a Prometheus text-format parser.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A `/metrics` page: its text, and the samples a Prometheus text parser read in it.
pub struct Metrics {
    pub text: String,
    scrape: prometheus_parse::Scrape,
}

/// `/metrics` from the status listener at `status` (`Connection: close`, read to the end).
pub fn metrics(status: SocketAddr) -> Metrics {
    let mut s = TcpStream::connect(status).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (_, text) = raw.split_once("\r\n\r\n").expect("a response");
    Metrics::parse(text.to_string())
}

impl Metrics {
    /// `text` parsed; panics if it is not the Prometheus text format.
    pub fn parse(text: String) -> Metrics {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text");
        Metrics { text, scrape }
    }

    /// The one sample of `name` with `labels` (among others): a counter's or a gauge's
    /// value, a histogram's count.
    #[track_caller]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(ref h) => h.last().map_or(0.0, |b| b.count),
                _ => f64::NAN,
            })
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}\n{}", self.text);
        found[0]
    }
}
