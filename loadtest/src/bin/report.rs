//! `make report`: loadtest/results/latest.csv → loadtest/results/report.svg, six panels:
//! requests/s and p99 latency (log axis) against connections for the `index cN` scenarios,
//! server CPU per request in every scenario, server RSS per held idle connection, pipelined
//! against one request at a time, and large-file throughput. Each server has one colour
//! whatever else ran (`STYLES`); `X@baseline` is X's hue, lighter, with dashed lines.
//!
//!     c10k-report [CSV] [SVG] [TITLE] [--shards N] [--host NAME] [--date TEXT]
//!
//! The subtitle gives the run's date (--date, else the CSV's modification time in UTC), the
//! seconds per scenario (duration_s), the shards and the host: --shards/--host, else a `shards`
//! or `host` column of the CSV, else $SHARDS/$HOST; what is not known is left out.

use clap::Parser;
use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::error::Error;
use std::ops::Range;

#[derive(Parser)]
#[command(about = "Draws the load-test chart (SVG) from loadtest/run.py's latest.csv")]
struct Args {
    #[arg(default_value = "loadtest/results/latest.csv")]
    csv: String,
    #[arg(default_value = "loadtest/results/report.svg")]
    svg: String,
    #[arg(default_value = "c10k-server load test")]
    title: String,
    /// Shards per server in the run (run.py's SHARDS; it defaults to the CPU count).
    #[arg(long)]
    shards: Option<String>,
    /// The machine the run was on.
    #[arg(long)]
    host: Option<String>,
    /// When the run was (default: the CSV's modification time).
    #[arg(long)]
    date: Option<String>,
}

/// One server in one scenario: a line of latest.csv (the columns run.py writes).
#[derive(Debug)]
struct Row {
    backend: String,
    scenario: String,
    connections: Option<f64>,
    pipeline: Option<f64>,
    duration_s: Option<f64>,
    rounds: Option<f64>,
    rps: Option<f64>,
    p99_us: Option<f64>,
    cpu_us: Option<f64>,
    rss_idle: Option<f64>,
    shards: Option<String>,
    host: Option<String>,
}

fn parse(text: &str) -> std::result::Result<Vec<Row>, String> {
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
const STYLES: [(&str, RGBColor); 5] = [
    ("epoll", RGBColor(31, 119, 180)),    // blue
    ("uring", RGBColor(214, 39, 40)),     // red
    ("nginx", RGBColor(44, 160, 44)),     // green
    ("h2o", RGBColor(148, 103, 189)),     // purple
    ("lighttpd", RGBColor(255, 127, 14)), // orange
];
/// Any other server: picked by a hash of its name, so it too is the same in every run.
const OTHERS: [RGBColor; 4] =
    [RGBColor(140, 86, 75), RGBColor(227, 119, 194), RGBColor(127, 127, 127), RGBColor(23, 190, 207)];

#[derive(Clone, Copy, Debug, PartialEq)]
struct Style {
    color: RGBColor,
    /// `X@baseline` (any `X@build`): X's hue, lighter, dashed.
    baseline: bool,
}

impl Style {
    fn of(label: &str) -> Style {
        let (kind, build) = label.split_once('@').unwrap_or((label, ""));
        let color = match STYLES.iter().find(|s| s.0 == kind) {
            Some(s) => s.1,
            None => OTHERS[kind.bytes().fold(0, |h: usize, b| h.wrapping_mul(31) ^ b as usize) % OTHERS.len()],
        };
        Style { color, baseline: !build.is_empty() }
    }

    fn line(self) -> ShapeStyle {
        if self.baseline { self.color.mix(0.6).stroke_width(2) } else { self.color.stroke_width(2) }
    }

    fn fill(self) -> ShapeStyle {
        if self.baseline { self.color.mix(0.4).filled() } else { self.color.filled() }
    }
}

/// The servers in the run with their styles, known ones first (in `STYLES` order), each
/// followed by its baseline.
fn servers(rows: &[Row]) -> Vec<(String, Style)> {
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
fn log_range(values: impl IntoIterator<Item = f64>) -> Range<f64> {
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
fn on_curve(r: &Row) -> bool {
    r.scenario.strip_prefix("index c").is_some_and(|n| n.parse::<u64>().is_ok()) && r.connections.is_some()
}

/// The body size in bytes a scenario named `100KiB c100` or `1MiB c100` fetches.
fn body_size(scenario: &str) -> Option<f64> {
    let word = scenario.split(' ').next()?;
    [("KiB", 1024.0), ("MiB", 1048576.0), ("GiB", 1073741824.0)]
        .into_iter()
        .find_map(|(unit, scale)| Some(word.strip_suffix(unit)?.parse::<f64>().ok()? * scale))
}

fn subtitle(rows: &[Row], args: &Args, mtime: Option<std::time::SystemTime>) -> String {
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
fn utc(secs: u64) -> String {
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
fn short(v: f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.0}k", v / 1e3),
        a if a >= 100.0 || a == 0.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{:.1}", v).trim_end_matches(".0").to_string(),
        _ => format!("{v:.2}").trim_end_matches('0').to_string(),
    }
}

type Result<T> = std::result::Result<T, Box<dyn Error>>;
type Curves = Vec<(Style, Vec<(f64, f64)>)>;

/// A bar panel: one group per scenario (in the CSV's order), one bar per server.
struct Bars {
    caption: &'static str,
    x_desc: &'static str,
    groups: Vec<(String, Vec<(Style, f64)>)>,
    label: fn(f64) -> String,
}

/// What the report shows, taken from the rows before anything is drawn.
struct Charts {
    servers: Vec<(String, Style)>,
    rps: Curves,
    p99_ms: Curves,
    bars: [Bars; 4],
}

fn charts(rows: &[Row]) -> Charts {
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

const WIDTH: u32 = 1200;
/// Title, subtitle and legend.
const HEAD: u32 = 84;

/// The heights of the three rows of panels: 330 px, more where a bar panel needs 9 px a bar.
fn row_heights(charts: &Charts) -> [u32; 3] {
    let need = |b: &Bars| {
        let widest = b.groups.iter().map(|g| g.1.len()).max().unwrap_or(0);
        110 + (b.groups.len() * widest) as u32 * 45 / 4
    };
    let [cpu, rss, pipelined, large] = &charts.bars;
    [330, 330.max(need(cpu)).max(need(rss)), 330.max(need(pipelined)).max(need(large))]
}

fn size(charts: &Charts) -> (u32, u32) {
    (WIDTH, HEAD + row_heights(charts).iter().sum::<u32>())
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, subtitle: &str, charts: &Charts) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (head, body) = root.split_vertically(HEAD);
    let mid = head.dim_in_pixel().0 as i32 / 2;
    let center = |size: u32| TextStyle::from(("sans-serif", size)).pos(Pos::new(HPos::Center, VPos::Top));
    head.draw(&Text::new(title, (mid, 8), center(20)))?;
    head.draw(&Text::new(subtitle, (mid, 36), center(14)))?;
    legend(&head, &charts.servers, 68)?;
    let [top, middle, _] = row_heights(charts);
    let (first, rest) = body.split_vertically(top);
    let (second, third) = rest.split_vertically(middle);
    let [first, second, third] = [first, second, third].map(|row| row.split_horizontally(WIDTH / 2));

    let (rps, p99) = (&charts.rps, &charts.p99_ms);
    let conns = rps.iter().chain(p99).flat_map(|c| c.1.iter().map(|p| p.0));
    let conns = conns.clone().fold(f64::INFINITY, f64::min) / 2.0..conns.fold(1.0, f64::max) * 2.0;
    if rps.is_empty() {
        empty(&first.0, "requests/s, index.html")?;
    } else {
        let max = rps.iter().flat_map(|c| &c.1).map(|p| p.1).fold(1.0, f64::max) * 1.1;
        let mut chart = chart(&first.0, "requests/s, index.html (more is better)")
            .build_cartesian_2d(conns.clone().log_scale(), 0.0..max)?;
        let mut mesh = chart.configure_mesh();
        mesh.bold_line_style(BLACK.mix(0.15)).light_line_style(BLACK.mix(0.05));
        mesh.x_desc("connections (log)").y_desc("requests/s");
        mesh.x_label_formatter(&|x| short(*x)).y_label_formatter(&|y| short(*y)).draw()?;
        plot_curves(&mut chart, rps)?;
    }
    if p99.is_empty() {
        empty(&first.1, "p99 latency, index.html")?;
    } else {
        let range = log_range(p99.iter().flat_map(|c| c.1.iter().map(|p| p.1)));
        let mut chart = chart(&first.1, "p99 latency, index.html (less is better)")
            .build_cartesian_2d(conns.log_scale(), range.log_scale())?;
        let mut mesh = chart.configure_mesh();
        mesh.bold_line_style(BLACK.mix(0.15)).light_line_style(BLACK.mix(0.05)).y_labels(40).y_max_light_lines(0);
        mesh.x_desc("connections (log)").y_desc("p99 (ms, log)");
        mesh.x_label_formatter(&|x| short(*x)).y_label_formatter(&one_two_five).draw()?;
        plot_curves(&mut chart, p99)?;
    }
    for (area, bars) in [&second.0, &second.1, &third.0, &third.1].into_iter().zip(&charts.bars) {
        bar_panel(area, bars)?;
    }
    root.present()?;
    Ok(())
}

/// A log axis' label, only at 1, 2 and 5 × 10ⁿ (its ticks are at every integer × 10ⁿ).
fn one_two_five(v: &f64) -> String {
    let mantissa = v / 10f64.powf(v.log10().floor());
    if [1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 1e-6) { short(*v) } else { String::new() }
}

fn chart<'a, 'b, DB: DrawingBackend>(area: &'a DrawingArea<DB, Shift>, caption: &str) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(10)
        .margin_right(24)
        .caption(caption, ("sans-serif", 15))
        .x_label_area_size(36)
        .y_label_area_size(64);
    builder
}

fn plot_curves<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<LogCoord<f64>, Y>>,
    curves: &Curves,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    for (style, points) in curves {
        if style.baseline {
            chart.draw_series(DashedLineSeries::new(points.clone(), 8, 5, style.line()))?;
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, style.line())))?;
        } else {
            chart.draw_series(LineSeries::new(points.clone(), style.line()))?;
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, style.color.filled())))?;
        }
    }
    Ok(())
}

/// Horizontal bars, the groups top down, each server's value written at the end of its bar.
fn bar_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, bars: &Bars) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let Bars { caption, x_desc, groups, label } = bars;
    if groups.is_empty() {
        return empty(area, caption);
    }
    let n = groups.len() as f64;
    let max = groups.iter().flat_map(|g| &g.1).map(|b| b.1).fold(0.0, f64::max).max(1e-9) * 1.3;
    let mut chart = chart(area, caption).y_label_area_size(150).build_cartesian_2d(0.0..max, 0.0..n)?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_y_mesh().y_labels(0).bold_line_style(BLACK.mix(0.15)).light_line_style(BLACK.mix(0.0));
    mesh.x_desc(*x_desc).x_label_formatter(&|x| short(*x)).draw()?;
    // The scenario names go left of the axis, beside their groups (the y axis has no ticks).
    let name_font = TextStyle::from(("sans-serif", 12)).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, (name, _)) in groups.iter().enumerate() {
        let at = EmptyElement::at((0.0, n - i as f64 - 0.5)) + Text::new(name.clone(), (-8, 0), name_font.clone());
        chart.plotting_area().draw(&at)?;
    }
    let unit = f64::from(chart.plotting_area().dim_in_pixel().1.max(1)) / n;
    let value_font = TextStyle::from(("sans-serif", 11)).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (_, bars)) in groups.iter().enumerate() {
        // At most 22 px a bar, the group centred in its band.
        let step = (0.8 / bars.len().max(1) as f64).min(22.0 / unit);
        let top = n - i as f64 - 0.5 + step * bars.len() as f64 / 2.0;
        for (j, (style, v)) in bars.iter().enumerate() {
            let (y0, y1) = (top - step * (j + 1) as f64, top - step * j as f64);
            chart.plotting_area().draw(&Rectangle::new([(0.0, y0), (*v, y1)], style.fill()))?;
            if style.baseline {
                chart.plotting_area().draw(&Rectangle::new([(0.0, y0), (*v, y1)], style.color.stroke_width(1)))?;
            }
            let at = EmptyElement::at((*v, (y0 + y1) / 2.0)) + Text::new(label(*v), (4, 0), value_font.clone());
            chart.plotting_area().draw(&at)?;
        }
    }
    Ok(())
}

fn empty<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, caption: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let area = area.titled(caption, ("sans-serif", 15))?;
    let (w, h) = area.dim_in_pixel();
    let style =
        TextStyle::from(("sans-serif", 13)).color(&RGBColor(120, 120, 120)).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new("not in this CSV (did ONLY= leave it out?)", (w as i32 / 2, h as i32 / 2), style))?;
    Ok(())
}

/// One row of swatches, centred: a bar's fill, a line's stroke, the server's name.
fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, servers: &[(String, Style)], y: i32) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let font = TextStyle::from(("sans-serif", 13)).pos(Pos::new(HPos::Left, VPos::Center));
    let width = |name: &str| 48 + area.estimate_text_size(name, &font).map_or(8 * name.len() as u32, |s| s.0) as i32;
    let total: i32 = servers.iter().map(|(name, _)| width(name) + 18).sum();
    let mut x = (area.dim_in_pixel().0 as i32 - total) / 2;
    for (name, style) in servers {
        area.draw(&Rectangle::new([(x, y - 6), (x + 12, y + 6)], style.fill()))?;
        let dash = if style.baseline { 4 } else { 0 };
        area.draw(&PathElement::new(vec![(x + 16, y), (x + 24 - dash, y)], style.line()))?;
        area.draw(&PathElement::new(vec![(x + 24 + dash, y), (x + 36, y)], style.line()))?;
        area.draw(&Text::new(name.as_str(), (x + 42, y), font.clone()))?;
        x += width(name) + 18;
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let result = std::fs::read_to_string(&args.csv)
        .map_err(|e| e.to_string())
        .and_then(|text| parse(&text))
        .map_err(|e| format!("{}: {e}; run make loadtest first", args.csv).into())
        .and_then(|rows| {
            let mtime = std::fs::metadata(&args.csv).and_then(|m| m.modified()).ok();
            let charts = charts(&rows);
            let area = SVGBackend::new(&args.svg, size(&charts)).into_drawing_area();
            draw(area, &args.title, &subtitle(&rows, &args, mtime), &charts)
        });
    match result {
        Ok(()) => println!("wrote {}", args.svg),
        Err(e) => {
            eprintln!("c10k-report: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "backend,scenario,tool,connections,idle,pipeline,duration_s,requests,rps,p50_us,p99_us,\
                          errors,server_cpu_us_per_req,server_rss_bytes_per_idle_conn,rounds";

    /// A CSV as run.py writes it: (backend, scenario, connections, rps, p99 µs) rows.
    fn csv(rows: &[(&str, &str, u32, f64, f64)]) -> String {
        let line = |(b, s, c, rps, p99): &(&str, &str, u32, f64, f64)| {
            format!("{b},{s},wrk,{c},0,1,2,{},{rps},100,{p99},0,5.5,,1", rps * 2.0)
        };
        std::iter::once(HEADER.to_string()).chain(rows.iter().map(line)).collect::<Vec<_>>().join("\n")
    }

    fn render(text: &str) -> String {
        let charts = charts(&parse(text).unwrap());
        let mut svg = String::new();
        draw(SVGBackend::with_string(&mut svg, size(&charts)).into_drawing_area(), "title", "sub", &charts).unwrap();
        svg
    }

    /// Each server's colour is its own, whatever other servers (and how many) the run had.
    #[test]
    fn a_server_keeps_its_colour_whatever_else_ran() {
        let style_of = |servers: &[&str], which: &str| {
            let rows: Vec<_> = servers.iter().map(|b| (*b, "index c100", 100, 1e5, 1e3)).collect();
            let charts = charts(&parse(&csv(&rows)).unwrap());
            let at = charts.servers.iter().position(|s| s.0 == which).unwrap();
            assert_eq!(charts.rps[at].0, charts.servers[at].1, "the curve is drawn in the server's style");
            charts.servers[at].1
        };
        let uring = style_of(&["epoll", "uring"], "uring");
        assert_eq!(style_of(&["uring", "nginx"], "uring"), uring);
        assert_eq!(style_of(&["nginx", "uring"], "uring"), uring);
        assert_eq!(style_of(&["lighttpd", "h2o", "nginx", "uring@baseline", "uring", "epoll"], "uring"), uring);
        assert_eq!(style_of(&["nginx", "uring"], "nginx"), style_of(&["nginx"], "nginx"));
        let all = ["epoll", "uring", "nginx", "h2o", "lighttpd"].map(|s| style_of(&[s], s).color);
        assert!(all.iter().enumerate().all(|(i, c)| !all[..i].contains(c)), "five servers, five colours: {all:?}");
        let base = style_of(&["uring", "uring@baseline"], "uring@baseline");
        assert_eq!((base.color, base.baseline, uring.baseline), (uring.color, true, false));
    }

    #[test]
    fn the_p99_axis_is_log_and_covers_every_point() {
        let range = log_range([5.0, 20.0, 220.0, 0.0]);
        assert!(range.start > 0.0 && range.start <= 5.0 && range.end >= 220.0, "{range:?}");
        // Drawn: on a log axis 5 ms and 20 ms are a third of the way from 5 to 220 ms apart
        // (ln 4 / ln 44); on a linear one they would be 7 % (15 / 215).
        let svg = render(&csv(&[
            ("epoll", "index c100", 100, 9e4, 5e3),
            ("epoll", "index c1000", 1000, 8e4, 2e4),
            ("epoll", "index c10000", 10000, 2e4, 2.2e5),
        ]));
        let attr = |tag: &str, name: &str| {
            let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            tag[at..].split('"').next().unwrap().parse::<i32>().unwrap()
        };
        let mut p99: Vec<(i32, i32)> = svg
            .split("<circle")
            .skip(1)
            .map(|tag| (attr(tag, "cx"), attr(tag, "cy")))
            .filter(|&(x, y)| x > WIDTH as i32 / 2 && y < (HEAD + 330) as i32)
            .collect();
        p99.sort();
        let [(_, y5), (_, y20), (_, y220)] = p99[..] else { panic!("three p99 points: {p99:?}") };
        let spread = f64::from(y5 - y20) / f64::from(y5 - y220);
        assert!(spread > 0.3, "5 ms and 20 ms lie {spread:.2} of the way to 220 ms");
    }

    #[test]
    fn renders_what_a_partial_run_has_and_says_what_is_missing() {
        let svg = render(&csv(&[("epoll", "reload under load c100", 100, 9e4, 4e3)]));
        assert!(svg.contains("server CPU per request"));
        assert_eq!(svg.matches("not in this CSV").count(), 5, "rps, p99, RSS, pipelined, large files");
    }

    #[test]
    fn subtitle_body_sizes_and_dates() {
        let rows = parse(&csv(&[("epoll", "index c100", 100, 1e5, 1e3)])).unwrap();
        let args = Args::parse_from(["c10k-report", "a.csv", "b.svg", "T", "--shards", "4", "--host", "box"]);
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951831900);
        let subtitle = subtitle(&rows, &args, Some(mtime));
        assert_eq!(subtitle, "run 2000-02-29 13:45 UTC  ·  2 s per scenario  ·  4 shards per server  ·  host box");
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(body_size("100KiB c100"), Some(102400.0));
        assert_eq!(body_size("1MiB c100"), Some(1048576.0));
        assert_eq!(body_size("index c100"), None);
    }
}
