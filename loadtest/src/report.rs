//! The end of a run: the human summary (stdout), the JSON object (`--json FILE`), and the
//! hints that explain connect failures.

use std::fmt::Write;

use crate::cli::Config;
use crate::stats::{ErrorKind, Stats};

const QUANTILES: [(&str, &str, f64); 4] =
    [("p50", "p50_us", 0.5), ("p90", "p90_us", 0.9), ("p99", "p99_us", 0.99), ("p99.9", "p999_us", 0.999)];

pub fn summary(cfg: &Config, st: &Stats) -> String {
    let mut s = String::new();
    let urls = &cfg.args.urls;
    let more = if urls.len() > 1 { format!(" (+{} more paths)", urls.len() - 1) } else { String::new() };
    let mode = match cfg.rate {
        Some(r) => format!("open loop at {r} req/s"),
        None => "closed loop".to_string(),
    };
    let _ = writeln!(s, "c10k-load: {}{more}", urls[0]);
    let _ = writeln!(
        s,
        "  {} connections + {} idle, pipeline {}, {mode}, {} thread(s) x {} process(es), {:.2} s",
        st.connections, st.idle, cfg.pipeline, cfg.threads, cfg.procs, st.duration_s
    );
    let _ = writeln!(
        s,
        "  requests  {} ({:.1}/s), {:.1} MB of bodies, {} connects, {} in flight at the end",
        st.requests,
        st.rps(),
        st.bytes as f64 / 1e6,
        st.connects,
        st.inflight
    );
    let _ = write!(s, "  latency  ");
    for (name, _, q) in QUANTILES {
        let _ = write!(s, " {name} {}", fmt_us(st.quantile_us(q)));
    }
    let mean = if st.hist.is_empty() { 0.0 } else { st.hist.mean() };
    let _ = writeln!(s, "  max {}  (mean {})", fmt_us(st.max_us()), fmt_us(mean as u64));
    if st.idle > 0 {
        let ready = match st.idle_ready_s {
            Some(t) => format!("all open after {t:.2} s"),
            None => "never all open at once".to_string(),
        };
        let _ = writeln!(
            s,
            "  idle      {} of {} still open ({ready}; {} answered their request)",
            st.idle_open, st.idle, st.idle_answered
        );
    }
    let total = st.errors_total();
    if total == 0 {
        let _ = writeln!(s, "  errors    none");
    } else {
        let kinds: Vec<String> = ErrorKind::ALL
            .iter()
            .filter(|k| st.errors[**k as usize] > 0)
            .map(|k| format!("{} {}", k.name(), st.errors[*k as usize]))
            .collect();
        let _ = writeln!(s, "  errors    {total}: {}", kinds.join(", "));
    }
    s
}

/// `123 us`, `4.56 ms`, `1.23 s`.
fn fmt_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} us"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// One JSON object with everything measured.
pub fn json(cfg: &Config, st: &Stats) -> String {
    let mut s = String::from("{");
    let _ = write!(s, "\"requests\":{},\"duration_s\":{:.3},\"rps\":{:.1}", st.requests, st.duration_s, st.rps());
    for (_, key, q) in QUANTILES {
        let _ = write!(s, ",\"{key}\":{}", st.quantile_us(q));
    }
    let mean = if st.hist.is_empty() { 0.0 } else { st.hist.mean() };
    let _ = write!(s, ",\"max_us\":{},\"mean_us\":{mean:.1},\"errors\":{{", st.max_us());
    for (i, k) in ErrorKind::ALL.iter().enumerate() {
        let _ = write!(s, "{}\"{}\":{}", if i > 0 { "," } else { "" }, k.name(), st.errors[*k as usize]);
    }
    let _ = write!(
        s,
        "}},\"errors_total\":{},\"connections\":{},\"idle\":{},\"idle_open\":{},\"idle_answered\":{},\
         \"idle_ready_s\":{},\"pipeline\":{},\"rate\":{}",
        st.errors_total(),
        st.connections,
        st.idle,
        st.idle_open,
        st.idle_answered,
        st.idle_ready_s.map_or("null".to_string(), |t| format!("{t:.3}")),
        cfg.pipeline,
        cfg.rate.map_or("null".to_string(), |r| r.to_string())
    );
    let _ = write!(
        s,
        ",\"threads\":{},\"procs\":{},\"connects\":{},\"bytes\":{},\"inflight\":{},\"urls\":[",
        cfg.threads, cfg.procs, st.connects, st.bytes, st.inflight
    );
    for (i, u) in cfg.args.urls.iter().enumerate() {
        let _ = write!(s, "{}{}", if i > 0 { "," } else { "" }, json_string(u));
    }
    s.push_str("]}\n");
    s
}

fn json_string(v: &str) -> String {
    let mut s = String::from("\"");
    for ch in v.chars() {
        match ch {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Lines that explain why connects failed, and what to do.
pub fn hints(st: &Stats) -> Vec<String> {
    let mut out = Vec::new();
    if st.no_ports > 0 {
        out.push(format!(
            "{} connects failed with EADDRNOTAVAIL: no local port left for this source address and server \
             (about 28 k each); spread the connections with --source-ips 127.0.0.2-127.0.0.40",
            st.no_ports
        ));
    }
    if st.no_fds > 0 {
        out.push(format!(
            "{} connects failed for lack of file descriptors (EMFILE/ENFILE); spread the connections over \
             processes with --procs",
            st.no_fds
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_key_and_escapes() {
        use clap::Parser;
        let args = crate::cli::Args::parse_from(["c10k-load", "--url", "http://127.0.0.1:9/a\"b", "--idle", "3"]);
        let cfg = Config::from_args(args).unwrap();
        let mut st = Stats { requests: 10, duration_s: 2.0, connections: 10, idle: 3, ..Stats::default() };
        st.record_us(100);
        let j = json(&cfg, &st);
        for key in ["requests", "duration_s", "rps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "errors"] {
            assert!(j.contains(&format!("\"{key}\":")), "{key} in {j}");
        }
        for key in ["connections", "idle", "idle_open", "pipeline", "rate", "timeout", "unsupported"] {
            assert!(j.contains(&format!("\"{key}\":")), "{key} in {j}");
        }
        assert!(j.contains("\"rate\":null") && j.contains("\"rps\":5.0") && j.contains(r#""http://127.0.0.1:9/a\"b""#));
        assert_eq!(fmt_us(999), "999 us");
        assert_eq!(fmt_us(1500), "1.50 ms");
    }
}
