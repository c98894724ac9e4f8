//! latest.csv → what the panels show: rows, each server's style, the panels' series.

use super::Args;
use plotters::prelude::*;
use std::error::Error;
use std::ops::Range;

/// One server in one scenario: a line of latest.csv (the columns run.py writes).
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) backend: String,
    pub(crate) scenario: String,
    pub(crate) connections: Option<f64>,
    pub(crate) pipeline: Option<f64>,
    pub(crate) duration_s: Option<f64>,
    pub(crate) rounds: Option<f64>,
    pub(crate) rps: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) cpu_us: Option<f64>,
    pub(crate) rss_idle: Option<f64>,
    pub(crate) shards: Option<String>,
    pub(crate) host: Option<String>,
}

pub(crate) fn parse(text: &str) -> std::result::Result<Vec<Row>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let head: Vec<&str> = lines.next().ok_or("is empty")?.split(',').map(str::trim).collect();
    let col = |name: &str| head.iter().position(|h| *h == name);
    let need = |name: &str| col(name).ok_or(format!("has no column {name}"));
    let (backend, scenario) = (need("backend")?, need("scenario")?);
    let numeric = ["connections", "pipeline", "duration_s", "rounds", "rps", "p99_us"]
        .into_iter()
        .chain(["server_cpu_us_per_req", "server_rss_bytes_per_idle_conn"])
        .map(col)
        .collect::<Vec<_>>();
    let (shards, host) = (col("shards"), col("host"));
    let mut rows = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let text = |c: Option<usize>| c.and_then(|i| f.get(i)).filter(|s| !s.is_empty()).map(|s| s.to_string());
        let n: Vec<Option<f64>> =
            numeric.iter().map(|c| text(*c).and_then(|s| s.parse::<f64>().ok()).filter(|v| v.is_finite())).collect();
        rows.push(Row {
            backend: text(Some(backend)).ok_or(format!("has a row without a backend: {line}"))?,
            scenario: text(Some(scenario)).unwrap_or_default(),
            connections: n[0],
            pipeline: n[1],
            duration_s: n[2],
            rounds: n[3],
            rps: n[4],
            p99_us: n[5],
            cpu_us: n[6],
            rss_idle: n[7],
            shards: text(shards),
            host: text(host),
        });
    }
    if rows.is_empty() {
        return Err("has no rows".into());
    }
    Ok(rows)
}

/// The colour of each server, fixed so that a server looks the same in every report.
pub(crate) const STYLES: [(&str, RGBColor); 6] = [
    ("epoll", RGBColor(31, 119, 180)),    // blue
    ("uring", RGBColor(214, 39, 40)),     // red
    ("nginx", RGBColor(44, 160, 44)),     // green
    ("h2o", RGBColor(148, 103, 189)),     // purple
    ("lighttpd", RGBColor(255, 127, 14)), // orange
    ("ceiling", RGBColor(0, 0, 0)),       // black: c10k-ceiling, the least-work responder
];
/// Any other server: picked by a hash of its name, so it too is the same in every run.
pub(crate) const OTHERS: [RGBColor; 4] =
    [RGBColor(140, 86, 75), RGBColor(227, 119, 194), RGBColor(127, 127, 127), RGBColor(23, 190, 207)];

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Style {
    pub(crate) color: RGBColor,
    /// `X@baseline` (any `X@build`): X's hue, lighter, dashed.
    pub(crate) baseline: bool,
}

impl Style {
    pub(crate) fn of(label: &str) -> Style {
        let (kind, build) = label.split_once('@').unwrap_or((label, ""));
        let color = match STYLES.iter().find(|s| s.0 == kind) {
            Some(s) => s.1,
            None => OTHERS[kind.bytes().fold(0, |h: usize, b| h.wrapping_mul(31) ^ b as usize) % OTHERS.len()],
        };
        Style { color, baseline: !build.is_empty() }
    }

    pub(crate) fn line(self) -> ShapeStyle {
        if self.baseline { self.color.mix(0.6).stroke_width(2) } else { self.color.stroke_width(2) }
    }

    pub(crate) fn fill(self) -> ShapeStyle {
        if self.baseline { self.color.mix(0.4).filled() } else { self.color.filled() }
    }
}

/// The servers in the run with their styles, known ones first (in `STYLES` order), each
/// followed by its baseline.
pub(crate) fn servers(rows: &[Row]) -> Vec<(String, Style)> {
    let mut labels: Vec<&str> = rows.iter().map(|r| r.backend.as_str()).collect();
    labels.sort_by_key(|l| {
        let (kind, build) = l.split_once('@').unwrap_or((l, ""));
        (STYLES.iter().position(|s| s.0 == kind).unwrap_or(STYLES.len()), kind.to_string(), build.to_string())
    });
    labels.dedup();
    labels.into_iter().map(|l| (l.to_string(), Style::of(l))).collect()
}

/// A log axis over whole decades, from below the smallest positive value to above the largest
/// (plotters puts a log axis' labels at powers of ten and their multiples).
pub(crate) fn log_range(values: impl IntoIterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi == 0.0 {
        return 1.0..10.0;
    }
    let decade = |v: f64, round: fn(f64) -> f64| 10f64.powf(round(v.log10()));
    decade(lo / 1.2, f64::floor)..decade(hi * 1.2, f64::ceil)
}

/// The `index cN` scenarios: the same file at N connections.
pub(crate) fn on_curve(r: &Row) -> bool {
    r.scenario.strip_prefix("index c").is_some_and(|n| n.parse::<u64>().is_ok()) && r.connections.is_some()
}

/// The body size in bytes a scenario named `100KiB c100` or `1MiB c100` fetches.
pub(crate) fn body_size(scenario: &str) -> Option<f64> {
    let word = scenario.split(' ').next()?;
    [("KiB", 1024.0), ("MiB", 1048576.0), ("GiB", 1073741824.0)]
        .into_iter()
        .find_map(|(unit, scale)| Some(word.strip_suffix(unit)?.parse::<f64>().ok()? * scale))
}

pub(crate) fn subtitle(rows: &[Row], args: &Args, mtime: Option<std::time::SystemTime>) -> String {
    let mut parts = Vec::new();
    let since_epoch = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).ok();
    if let Some(date) = args.date.clone().or_else(|| mtime.and_then(since_epoch).map(|d| utc(d.as_secs()))) {
        parts.push(format!("run {date}"));
    }
    let seconds: Vec<f64> = rows.iter().filter_map(|r| r.duration_s).collect();
    let (lo, hi) = seconds.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
    if !seconds.is_empty() {
        parts.push(if lo == hi { format!("{lo} s per scenario") } else { format!("{lo}–{hi} s per scenario") });
    }
    let rounds = rows.iter().filter_map(|r| r.rounds).fold(1.0, f64::max);
    if rounds > 1.0 {
        parts.push(format!("median of {rounds} rounds"));
    }
    let known = |cli: &Option<String>, column: fn(&Row) -> &Option<String>, env: &str| {
        cli.clone().or_else(|| rows.iter().find_map(|r| column(r).clone())).or_else(|| std::env::var(env).ok())
    };
    if let Some(shards) = known(&args.shards, |r| &r.shards, "SHARDS") {
        parts.push(format!("{shards} shards per server"));
    }
    if let Some(host) = known(&args.host, |r| &r.host, "HOST") {
        parts.push(format!("host {host}"));
    }
    parts.join("  ·  ")
}

/// `YYYY-MM-DD HH:MM UTC` from seconds since the epoch (Howard Hinnant's civil_from_days).
pub(crate) fn utc(secs: u64) -> String {
    let z = (secs / 86400) as i64 + 719468;
    let (era, doe) = (z.div_euclid(146097), z.rem_euclid(146097));
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let (d, m) = (doy - (153 * mp + 2) / 5 + 1, if mp < 10 { mp + 3 } else { mp - 9 });
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", secs % 86400 / 3600, secs % 3600 / 60)
}

/// 123456 → "123k", 1.5 → "1.5": short tick and bar labels.
pub(crate) fn short(v: f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.0}k", v / 1e3),
        a if a >= 100.0 || a == 0.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{:.1}", v).trim_end_matches(".0").to_string(),
        _ => format!("{v:.2}").trim_end_matches('0').to_string(),
    }
}

pub(crate) type Result<T> = std::result::Result<T, Box<dyn Error>>;
pub(crate) type Curves = Vec<(Style, Vec<(f64, f64)>)>;

/// A bar panel: one group per scenario (in the CSV's order), one bar per server.
pub(crate) struct Bars {
    pub(crate) caption: &'static str,
    pub(crate) x_desc: &'static str,
    pub(crate) groups: Vec<(String, Vec<(Style, f64)>)>,
    pub(crate) label: fn(f64) -> String,
}

/// What the report shows, taken from the rows before anything is drawn.
pub(crate) struct Charts {
    pub(crate) servers: Vec<(String, Style)>,
    pub(crate) rps: Curves,
    pub(crate) p99_ms: Curves,
    pub(crate) bars: [Bars; 4],
}

pub(crate) fn charts(rows: &[Row]) -> Charts {
    let servers = servers(rows);
    let curve = |value: fn(&Row) -> Option<f64>| -> Curves {
        let line = |label: &str| {
            let on = rows.iter().filter(|r| r.backend == label && on_curve(r));
            let mut points: Vec<(f64, f64)> = on.filter_map(|r| Some((r.connections?, value(r)?))).collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            points
        };
        servers.iter().map(|(label, style)| (*style, line(label))).filter(|c| !c.1.is_empty()).collect()
    };
    let groups = |keep: fn(&Row) -> bool, value: fn(&Row) -> Option<f64>| {
        let mut names: Vec<&str> = Vec::new();
        for r in rows.iter().filter(|r| keep(r) && value(r).is_some()) {
            if !names.contains(&r.scenario.as_str()) {
                names.push(&r.scenario);
            }
        }
        let bars = |name: &str| -> Vec<(Style, f64)> {
            let row = |label: &str| rows.iter().find(|r| r.scenario == name && r.backend == label);
            servers.iter().filter_map(|(label, style)| Some((*style, value(row(label)?)?))).collect()
        };
        names.into_iter().map(|n| (n.to_string(), bars(n))).collect()
    };
    let bars = [
        Bars {
            caption: "server CPU per request (less is better)",
            x_desc: "µs of CPU per request",
            groups: groups(|_| true, |r| r.cpu_us),
            label: short,
        },
        Bars {
            caption: "server RSS per idle connection (less is better)",
            x_desc: "bytes per held connection",
            groups: groups(|_| true, |r| r.rss_idle),
            label: |b| format!("{} B", short(b)),
        },
        Bars {
            caption: "pipelining x16 against one request at a time, c100",
            x_desc: "requests/s",
            groups: groups(|r| r.scenario == "index c100" || r.pipeline.is_some_and(|p| p > 1.0), |r| r.rps),
            label: short,
        },
        Bars {
            caption: "large files: throughput (more is better)",
            x_desc: "MiB/s (requests/s × size)",
            groups: groups(
                |r| body_size(&r.scenario).is_some(),
                |r| Some(r.rps? * body_size(&r.scenario)? / 1048576.0),
            ),
            label: short,
        },
    ];
    let rps = curve(|r| r.rps);
    let p99_ms = curve(|r| r.p99_us.map(|us| us / 1000.0).filter(|ms| *ms > 0.0));
    Charts { servers, rps, p99_ms, bars }
}
