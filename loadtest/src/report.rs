//! The end of a run: the human summary (stdout), the JSON object (`--json FILE`), and the
//! hints that explain connect failures.

use std::fmt::Write;

use crate::cli::Config;
use crate::stats::{ErrorKind, Stats};
use crate::tls::TlsSettings;

const QUANTILES: [(&str, &str, f64); 4] =
    [("p50", "p50_us", 0.5), ("p90", "p90_us", 0.9), ("p99", "p99_us", 0.99), ("p99.9", "p999_us", 0.999)];

pub fn summary(cfg: &Config, st: &Stats) -> String {
    let mut s = String::new();
    let urls = &cfg.args.urls;
    let more = if urls.len() > 1 { format!(" (+{} more paths)", urls.len() - 1) } else { String::new() };
    let mut mode = match cfg.rate {
        Some(r) => format!("open loop at {r} req/s"),
        None => "closed loop".to_string(),
    };
    if cfg.new_conn {
        mode.push_str(", a new connection per request");
    }
    if cfg.tls.is_some() {
        mode.push_str(", TLS");
    }
    let _ = writeln!(s, "c10k-load: {}{more}", urls[0]);
    let _ = writeln!(
        s,
        "  {} connections + {} idle, pipeline {}, {mode}, {} thread(s) x {} process(es), {:.2} s of load",
        st.connections, st.idle, cfg.pipeline, cfg.threads, cfg.procs, st.duration_s
    );
    if st.idle > 0 {
        let _ = writeln!(s, "  ramp      {}", ramp(cfg, st));
    }
    if let Some(w) = cfg.warmup {
        let _ = writeln!(s, "  warm-up   {}", warmup(cfg, w.as_secs_f64(), st));
    }
    let _ = writeln!(
        s,
        "  requests  {} ({:.1}/s), {:.1} MB of bodies, {} connects, {} in flight at the end",
        st.requests,
        st.rps(),
        st.bytes as f64 / 1e6,
        st.connects,
        st.inflight
    );
    if let Some(tls) = &cfg.tls {
        let _ = writeln!(s, "  tls       {}", tls_line(tls, st, cfg.warmup.is_some()));
    }
    let _ = write!(s, "  latency  ");
    for (name, _, q) in QUANTILES {
        let _ = write!(s, " {name} {}", fmt_us(st.quantile_us(q)));
    }
    let mean = if st.hist.is_empty() { 0.0 } else { st.hist.mean() };
    let _ = writeln!(s, "  max {}  (mean {})", fmt_us(st.max_us()), fmt_us(mean as u64));
    if st.idle > 0 {
        let _ = writeln!(
            s,
            "  idle      {} of {} still open at the end ({} answered their request)",
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

/// How the idle population opened before the load: `idle 100000 of 100000 open in 7.30 s
/// before the load began`, or what went otherwise.
fn ramp(cfg: &Config, st: &Stats) -> String {
    let ready = match st.idle_ready_s {
        Some(t) => format!("all open after {t:.2} s"),
        None => "never all open".to_string(),
    };
    let (held, idle) = (st.idle_at_start, st.idle);
    match st.idle_phase_s {
        None => format!("stopped during the ramp, before the load began ({} of {idle} idle open)", st.idle_open),
        Some(_) if cfg.load_during_ramp => {
            format!("idle and active connections started together (--load-during-ramp); idle {ready}")
        }
        Some(t) if held == idle => format!("idle {held} of {idle} open in {t:.2} s before the load began"),
        Some(t) => format!(
            "INCOMPLETE: idle {held} of {idle} open and answered when the load began, {t:.2} s in \
             (--idle-timeout {} s); {ready}",
            cfg.idle_timeout.as_secs_f64()
        ),
    }
}

/// What came before the measured window with `--warmup`: `10000 of 10000 active connections
/// open and answered in 3.10 s, then 2.00 s of load; 12000 answers not counted`.
fn warmup(cfg: &Config, secs: f64, st: &Stats) -> String {
    let opened = match st.idle_phase_s {
        _ if !cfg.open_first => String::new(),
        None => "stopped before the load began; ".to_string(),
        Some(t) => {
            format!("{} of {} active connections open and answered in {t:.2} s, then ", st.warmed, st.connections)
        }
    };
    format!("{opened}{secs:.2} s of load; {} answers not counted", st.uncounted)
}

/// `1000 handshakes, 990 resumed (99.0%); resumption on, groups x25519, SNI localhost,
/// certificate not verified` (after a warm-up: `1000 handshakes in the measured window, ...`).
fn tls_line(tls: &TlsSettings, st: &Stats, warmup: bool) -> String {
    let window = if warmup { " in the measured window" } else { "" };
    let resumption = if tls.resume { "on" } else { "off" };
    let verified = if tls.roots.is_some() { "verified (--cacert)" } else { "not verified" };
    let name = tls.server_name.to_str();
    let kx = tls.kx.name();
    format!(
        "{} handshakes{window}, {} resumed ({:.1}%); resumption {resumption}, groups {kx}, SNI {name}, certificate {verified}",
        st.handshakes,
        st.resumed,
        resumed_pct(st).unwrap_or(0.0)
    )
}

/// The share of handshakes that resumed a session, in percent (`None`: no handshake).
fn resumed_pct(st: &Stats) -> Option<f64> {
    (st.handshakes > 0).then(|| st.resumed as f64 * 100.0 / st.handshakes as f64)
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
        ",\"idle_phase_s\":{},\"idle_open_at_start\":{},\"idle_complete\":{},\"idle_timeout_s\":{},\
         \"load_during_ramp\":{}",
        st.idle_phase_s.map_or("null".to_string(), |t| format!("{t:.3}")),
        st.idle_at_start,
        st.idle_phase_s.is_some() && st.idle_at_start >= st.idle,
        cfg.idle_timeout.as_secs_f64(),
        cfg.load_during_ramp
    );
    let _ = write!(
        s,
        ",\"new_conn\":{},\"tls\":{},\"tls_resume\":{},\"handshakes\":{},\"resumed\":{},\"resumed_pct\":{}",
        cfg.new_conn,
        cfg.tls.is_some(),
        cfg.tls.as_ref().is_some_and(|t| t.resume),
        st.handshakes,
        st.resumed,
        resumed_pct(st).map_or("null".to_string(), |p| format!("{p:.1}"))
    );
    let _ = write!(
        s,
        ",\"tls_kx\":{},\"warmup_s\":{},\"warmed\":{},\"uncounted\":{}",
        cfg.tls.as_ref().map_or("null".to_string(), |t| json_string(t.kx.name())),
        cfg.warmup.map_or("null".to_string(), |w| w.as_secs_f64().to_string()),
        st.warmed,
        st.uncounted
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
    fn ramp_says_how_the_idle_population_opened() {
        use clap::Parser;
        let cfg = |extra: &[&str]| {
            let args = [&["c10k-load", "--url", "http://127.0.0.1:9/", "--idle", "10"][..], extra].concat();
            Config::from_args(crate::cli::Args::parse_from(args)).unwrap()
        };
        let st = |phase, at_start, ready| Stats {
            idle: 10,
            idle_phase_s: phase,
            idle_at_start: at_start,
            idle_ready_s: ready,
            ..Stats::default()
        };
        let plain = cfg(&[]);
        let done = st(Some(7.3), 10, Some(7.29));
        assert_eq!(ramp(&plain, &done), "idle 10 of 10 open in 7.30 s before the load began");
        assert!(summary(&plain, &done).contains("  ramp      idle 10 of 10 open in 7.30 s before the load began\n"));
        assert!(
            json(&plain, &done).contains("\"idle_phase_s\":7.300,\"idle_open_at_start\":10,\"idle_complete\":true")
        );
        let short = cfg(&["--idle-timeout", "2"]);
        let late = ramp(&short, &st(Some(2.0), 6, None));
        assert!(late.starts_with("INCOMPLETE: idle 6 of 10 open") && late.contains("(--idle-timeout 2 s)"), "{late}");
        assert!(late.ends_with("never all open"), "{late}");
        assert!(ramp(&plain, &st(None, 0, None)).starts_with("stopped during the ramp"));
        let overlap = ramp(&cfg(&["--load-during-ramp"]), &st(Some(0.0), 0, Some(3.0)));
        assert!(overlap.contains("--load-during-ramp") && overlap.ends_with("all open after 3.00 s"), "{overlap}");
        assert!(json(&plain, &st(None, 0, None)).contains("\"idle_phase_s\":null"));
    }

    #[test]
    fn tls_runs_say_how_many_handshakes_resumed() {
        use clap::Parser;
        let cfg = |extra: &[&str]| {
            let args = [&["c10k-load", "--url", "http://127.0.0.1:9/"][..], extra].concat();
            Config::from_args(crate::cli::Args::parse_from(args)).unwrap()
        };
        let st = Stats { handshakes: 40, resumed: 39, ..Stats::default() };
        let tls = cfg(&["--tls", "--tls-resume", "--new-conn"]);
        let text = summary(&tls, &st);
        assert!(text.contains("closed loop, a new connection per request, TLS, "), "{text}");
        let line = "  tls       40 handshakes, 39 resumed (97.5%); resumption on, groups default, SNI localhost, certificate not \
             verified\n";
        assert!(text.contains(line), "{text}");
        let j = json(&tls, &st);
        let keys =
            "\"new_conn\":true,\"tls\":true,\"tls_resume\":true,\"handshakes\":40,\"resumed\":39,\"resumed_pct\":97.5";
        assert!(j.contains(keys), "{j}");
        let plain = cfg(&[]);
        assert!(!summary(&plain, &Stats::default()).contains("tls"));
        let j = json(&plain, &Stats::default());
        assert!(
            j.contains("\"tls\":false,\"tls_resume\":false,\"handshakes\":0,\"resumed\":0,\"resumed_pct\":null"),
            "{j}"
        );
        assert!(j.contains("\"unsupported\":0,\"tls\":0}"), "{j}");
    }

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
        for key in ["idle_phase_s", "idle_open_at_start", "idle_complete", "idle_timeout_s", "load_during_ramp"] {
            assert!(j.contains(&format!("\"{key}\":")), "{key} in {j}");
        }
        assert!(j.contains("\"rate\":null") && j.contains("\"rps\":5.0") && j.contains(r#""http://127.0.0.1:9/a\"b""#));
        assert!(j.contains("\"idle_complete\":false"), "{j}");
        assert_eq!(fmt_us(999), "999 us");
        assert_eq!(fmt_us(1500), "1.50 ms");
    }
}
