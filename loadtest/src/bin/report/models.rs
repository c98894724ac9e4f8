//! `c10k-report --models`: models/results/models.json (what models/sweep.py writes) →
//! models.svg, six panels against the held idle connections N (log axis): requests/s and p99
//! latency of the load beside them, server CPU per request, memory (PSS), threads and idle CPU. One line
//! per model, each in its own colour whatever else is in the file (`MODEL_STYLES`). A cell
//! with a note (refused, timed out, not all N held) is no point on its model's line: it is a
//! cross in the model's colour at the foot of every panel, and models.md says what happened.
//!
//!     c10k-report --models [JSON] [SVG] [TITLE] [--host NAME] [--date TEXT]

use super::Args;
use super::data::{Curves, Result, Style, short, utc};
use super::draw::{Panel, WIDTH, curve_panel, empty_saying, frame};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;
use std::ops::Range;

/// One (model, N) cell of the sweep: the measures the panels show, `None` where not measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cell {
    pub(crate) model: String,
    pub(crate) n: f64,
    pub(crate) rps: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) cpu_us: Option<f64>,
    pub(crate) memory: Option<f64>,
    pub(crate) threads: Option<f64>,
    pub(crate) idle_cpu: Option<f64>,
    pub(crate) note: Option<String>,
}

/// The file: its `meta` object (Null when it has none) and its cells in the file's order.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) meta: Value,
    pub(crate) cells: Vec<Cell>,
}

/// `{"meta": {...}, "cells": [...]}`, or just the list of cells.
pub(crate) fn parse(input: &str) -> std::result::Result<Run, String> {
    let top: Value = serde_json::from_str(input).map_err(|e| format!("is not JSON: {e}"))?;
    let (meta, cells) = match &top {
        Value::Array(cells) => (Value::Null, cells),
        Value::Object(_) => match top.get("cells") {
            Some(Value::Array(cells)) => (top.get("meta").cloned().unwrap_or(Value::Null), cells),
            _ => return Err("has no \"cells\" list".into()),
        },
        _ => return Err("is neither an object nor a list".into()),
    };
    let cell = |c: &Value| {
        Some(Cell {
            model: text(c, "model")?,
            n: num(c, "n").filter(|n| *n > 0.0)?,
            rps: num(c, "rps"),
            p99_us: num(c, "p99_us"),
            cpu_us: num(c, "cpu_us_per_req"),
            memory: num(c, "memory_bytes"),
            threads: num(c, "threads"),
            idle_cpu: num(c, "idle_cpu_pct"),
            note: text(c, "note"),
        })
    };
    let cells = cells.iter().map(|c| cell(c).ok_or(format!("has a cell without a model or an n > 0: {c:?}")));
    let cells = cells.collect::<std::result::Result<Vec<_>, _>>()?;
    if cells.is_empty() {
        return Err("has no cells".into());
    }
    Ok(Run { meta, cells })
}

/// `v[key]` as a number, `None` when absent or null.
pub(crate) fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key)?.as_f64()
}

/// `v[key]` as a string, `None` when absent or null.
pub(crate) fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)?.as_str().map(str::to_string)
}

/// Each model's colour, fixed, in the order the course meets them: the blocking models warm,
/// the readiness and completion ones cool.
pub(crate) const MODEL_STYLES: [(&str, RGBColor); 9] = [
    ("iterative", RGBColor(127, 127, 127)), // grey
    ("fork", RGBColor(140, 86, 75)),        // brown
    ("thread", RGBColor(255, 127, 14)),     // orange
    ("coroutine", RGBColor(227, 119, 194)), // pink
    ("busy-poll", RGBColor(188, 189, 34)),  // olive
    ("select", RGBColor(23, 190, 207)),     // cyan
    ("poll", RGBColor(148, 103, 189)),      // purple
    ("epoll", RGBColor(31, 119, 180)),      // blue
    ("uring", RGBColor(214, 39, 40)),       // red
];

/// A model's style; one not in `MODEL_STYLES` gets the server chart's (a hash of its name).
pub(crate) fn style(model: &str) -> Style {
    match MODEL_STYLES.iter().find(|s| s.0 == model) {
        Some(s) => Style { color: s.1, baseline: false },
        None => Style::of(model),
    }
}

/// What one panel plots of a cell.
pub(crate) struct Measure {
    pub(crate) caption: &'static str,
    pub(crate) y_desc: &'static str,
    pub(crate) log_y: bool,
    pub(crate) y_label: fn(f64) -> String,
    pub(crate) value: fn(&Cell) -> Option<f64>,
}

pub(crate) const MEASURES: [Measure; 6] = [
    Measure {
        caption: "requests/s, 50 busy connections (more is better)",
        y_desc: "requests/s",
        log_y: false,
        y_label: short,
        value: |c| c.rps,
    },
    Measure {
        caption: "p99 latency (less is better)",
        y_desc: "p99 (ms, log)",
        log_y: true,
        y_label: short,
        value: |c| c.p99_us.map(|us| us / 1000.0),
    },
    Measure {
        caption: "server CPU per request (less is better)",
        y_desc: "µs of CPU per request",
        log_y: false,
        y_label: short,
        value: |c| c.cpu_us,
    },
    Measure {
        caption: "server memory (PSS), every process (less is better)",
        y_desc: "PSS (log)",
        log_y: true,
        y_label: bytes,
        value: |c| c.memory,
    },
    Measure {
        caption: "threads, summed over every process (log)",
        y_desc: "threads (log)",
        log_y: true,
        y_label: short,
        value: |c| c.threads,
    },
    Measure {
        caption: "CPU with only the idle connections (less is better)",
        y_desc: "% of one core",
        log_y: false,
        y_label: short,
        value: |c| c.idle_cpu,
    },
];

/// 2000000 → "2 MB", 512 → "512 B": the memory axis' labels (decimal: a log axis' ticks are
/// at 1, 2 and 5 × 10ⁿ).
pub(crate) fn bytes(v: f64) -> String {
    let (scale, unit) = [(1e9, "GB"), (1e6, "MB"), (1e3, "kB")].into_iter().find(|s| v >= s.0).unwrap_or((1.0, "B"));
    format!("{} {unit}", short(v / scale))
}

/// What the SVG shows, taken from the cells before anything is drawn.
pub(crate) struct Charts {
    pub(crate) models: Vec<(String, Style)>,
    /// The x axis: half the smallest N to twice the largest.
    pub(crate) x: Range<f64>,
    /// Per measure (in `MEASURES` order): a curve per model with a point, then the crosses.
    pub(crate) panels: Vec<(Curves, Vec<(Style, f64)>)>,
}

pub(crate) fn charts(cells: &[Cell]) -> Charts {
    let mut names: Vec<&str> = cells.iter().map(|c| c.model.as_str()).collect();
    names.sort_by_key(|m| (MODEL_STYLES.iter().position(|s| s.0 == *m).unwrap_or(MODEL_STYLES.len()), *m));
    names.dedup();
    let models: Vec<(String, Style)> = names.iter().map(|m| (m.to_string(), style(m))).collect();
    let marks: Vec<(Style, f64)> = models
        .iter()
        .flat_map(|(m, s)| cells.iter().filter(move |c| c.model == *m && c.note.is_some()).map(|c| (*s, c.n)))
        .collect();
    let panels = MEASURES
        .iter()
        .map(|measure| {
            let line = |model: &str| {
                let ok = cells.iter().filter(|c| c.model == model && c.note.is_none());
                let ok = ok.filter_map(|c| Some((c.n, (measure.value)(c)?)));
                let mut points: Vec<(f64, f64)> = ok.filter(|p| p.1 >= 0.0 && (p.1 > 0.0 || !measure.log_y)).collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                points
            };
            let curves: Curves = models.iter().map(|(m, s)| (*s, line(m))).filter(|c| !c.1.is_empty()).collect();
            (curves, marks.clone())
        })
        .collect();
    let ns = cells.iter().map(|c| c.n);
    let x = ns.clone().fold(f64::INFINITY, f64::min) / 2.0..ns.fold(1.0, f64::max) * 2.0;
    Charts { models, x, panels }
}

/// Title, subtitle, the legend and a line on what a cross means.
pub(crate) const HEAD: u32 = 104;
pub(crate) const ROW: u32 = 330;

pub(crate) fn size() -> (u32, u32) {
    (WIDTH, HEAD + 3 * ROW)
}

pub(crate) fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    subtitle: &str,
    charts: &Charts,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (head, body) = frame(&root, (title, subtitle), HEAD, &charts.models, 66)?;
    let grey = RGBColor(120, 120, 120);
    let font = TextStyle::from(("sans-serif", 12)).color(&grey).pos(Pos::new(HPos::Center, VPos::Center));
    let why = "× at a panel's foot: a cell with no point (refused, timed out, or not all N held; models.md says which)";
    head.draw(&Text::new(why, (WIDTH as i32 / 2, 90), font))?;
    for (area, (measure, (curves, marks))) in body.split_evenly((3, 2)).iter().zip(MEASURES.iter().zip(&charts.panels))
    {
        if curves.is_empty() && marks.is_empty() {
            empty_saying(area, measure.caption, "no values in this file")?;
            continue;
        }
        let Measure { caption, y_desc, log_y, y_label, .. } = *measure;
        let panel = Panel { caption, x_desc: "held idle connections N (log)", y_desc, log_y, y_label, curves, marks };
        curve_panel(area, charts.x.clone(), &panel)?;
    }
    root.present()?;
    Ok(())
}

/// `run 2026-01-02 10:00 UTC · 5 s of load, 3 s idle per cell · 2 CPUs, Linux 6.8 · host box`
/// from the file's meta (the date, else the file's modification time) and the flags.
pub(crate) fn subtitle(run: &Run, args: &Args, mtime: Option<std::time::SystemTime>) -> String {
    let meta = &run.meta;
    let mut parts = Vec::new();
    let since_epoch = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).ok();
    let date = args.date.clone().or_else(|| text(meta, "date"));
    if let Some(date) = date.or_else(|| mtime.and_then(since_epoch).map(|d| utc(d.as_secs()))) {
        parts.push(format!("run {date}"));
    }
    let load = match (num(meta, "active_s"), num(meta, "active_conns")) {
        (Some(s), Some(c)) => Some(format!("{s} s of load on {c} connections")),
        (Some(s), None) => Some(format!("{s} s of load")),
        _ => None,
    };
    let cell: Vec<String> = load.into_iter().chain(num(meta, "idle_s").map(|s| format!("{s} s idle"))).collect();
    if !cell.is_empty() {
        parts.push(format!("{} per cell", cell.join(", ")));
    }
    let machine: Vec<String> = num(meta, "cpus")
        .map(|n| format!("{n} CPU{}", if n == 1.0 { "" } else { "s" }))
        .into_iter()
        .chain(text(meta, "kernel").map(|k| format!("Linux {k}")))
        .collect();
    if !machine.is_empty() {
        parts.push(machine.join(", "));
    }
    let cpus = |key| {
        let list = meta.get(key)?.as_array()?.iter().map(|c| c.as_u64().map(|c| c.to_string()));
        list.collect::<Option<Vec<_>>>().filter(|l| !l.is_empty()).map(|l| l.join(","))
    };
    if let (Some(model), Some(load)) = (cpus("server_cpus"), cpus("load_cpus")) {
        parts.push(format!("model on CPU {model}, c10k-load on CPU {load}"));
    }
    if let Some(host) = args.host.clone().or_else(|| text(meta, "host")) {
        parts.push(format!("host {host}"));
    }
    parts.join("  ·  ")
}

/// Read JSON, write SVG.
pub(crate) fn render(args: &Args, input: &str, svg: &str, title: &str) -> Result<()> {
    let text = std::fs::read_to_string(input).map_err(|e| e.to_string());
    let run = text.and_then(|t| parse(&t)).map_err(|e| format!("{input}: {e}; run make models first"))?;
    let mtime = std::fs::metadata(input).and_then(|m| m.modified()).ok();
    let area = SVGBackend::new(svg, size()).into_drawing_area();
    draw(area, title, &subtitle(&run, args, mtime), &charts(&run.cells))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A cell with every measure `v` (p99 `v` ms).
    fn cell(model: &str, n: f64, v: f64, note: Option<&str>) -> Cell {
        let some = Some(v);
        let (rps, p99_us, cpu_us, memory, threads, idle_cpu) = (some, Some(v * 1000.0), some, some, some, some);
        Cell { model: model.into(), n, rps, p99_us, cpu_us, memory, threads, idle_cpu, note: note.map(String::from) }
    }

    fn render_svg(cells: &[Cell]) -> String {
        let mut svg = String::new();
        let area = SVGBackend::with_string(&mut svg, size()).into_drawing_area();
        draw(area, "title", "sub", &charts(cells)).unwrap();
        svg
    }

    fn hex(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }

    fn attr(tag: &str, name: &str) -> i32 {
        let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        tag[at..].split('"').next().unwrap().parse::<f64>().unwrap() as i32
    }

    /// Each `<name .../>` element's attributes.
    fn tags<'a>(svg: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> {
        svg.split('<').filter_map(move |t| t.strip_prefix(name).filter(|t| t.starts_with(' '))?.split('>').next())
    }

    /// The centres of the filled circles in `color`: the curves' points.
    fn points(svg: &str, color: RGBColor) -> Vec<(i32, i32)> {
        let fill = format!("fill=\"{}\"", hex(color));
        tags(svg, "circle").filter(|t| t.contains(&fill)).map(|t| (attr(t, "cx"), attr(t, "cy"))).collect()
    }

    #[test]
    fn a_model_keeps_its_colour_whatever_else_is_in_the_file() {
        let style_in = |models: &[&str], which: &str| {
            let cells: Vec<Cell> = models.iter().map(|m| cell(m, 10.0, 5.0, None)).collect();
            let charts = charts(&cells);
            let at = charts.models.iter().position(|m| m.0 == which).unwrap();
            let (curves, _) = &charts.panels[0];
            assert_eq!(curves[at].0, charts.models[at].1, "the curve is drawn in the model's style");
            charts.models[at].1
        };
        let all = MODEL_STYLES.map(|s| s.0);
        let poll = style_in(&["poll"], "poll");
        assert_eq!(style_in(&["epoll", "poll"], "poll"), poll);
        assert_eq!(style_in(&["uring", "select", "poll", "fork"], "poll"), poll);
        assert_eq!(style_in(&all, "poll"), poll);
        let mut reversed = all;
        reversed.reverse();
        assert_eq!(style_in(&reversed, "poll"), poll);
        assert_eq!(style_in(&["nginx", "thread"], "thread"), style_in(&["thread"], "thread"));
        let colours = all.map(|m| style_in(&[m], m).color);
        assert!(colours.iter().enumerate().all(|(i, c)| !colours[..i].contains(c)), "nine colours: {colours:?}");
        // And in the drawing: poll's points are in poll's colour, with or without the others.
        assert_eq!(points(&render_svg(&[cell("poll", 10.0, 5.0, None)]), poll.color).len(), 6);
        let others: Vec<Cell> = all.iter().map(|m| cell(m, 10.0, 5.0, None)).collect();
        assert_eq!(points(&render_svg(&others), poll.color).len(), 6);
    }

    #[test]
    fn a_refused_or_timed_out_cell_is_no_point_but_a_cross() {
        let cells = [
            cell("select", 10.0, 50.0, None),
            cell("select", 100.0, 40.0, None),
            cell("select", 10000.0, 30.0, Some("refused at 1,020")),
            cell("iterative", 10.0, 20.0, Some("timed out")),
        ];
        let charts = charts(&cells);
        for (curves, marks) in &charts.panels {
            assert_eq!(curves.len(), 1, "iterative has no curve at all");
            assert_eq!(curves[0].1.iter().map(|p| p.0).collect::<Vec<_>>(), [10.0, 100.0]);
            assert_eq!(marks, &[(style("iterative"), 10.0), (style("select"), 10000.0)]);
        }
        let svg = render_svg(&cells);
        assert_eq!(points(&svg, style("select").color).len(), 12, "two points in each of six panels");
        assert_eq!(points(&svg, style("iterative").color).len(), 0);
        // A cross is two strokes of width 2 in the model's colour, one per panel.
        let strokes = |c: RGBColor| {
            let stroke = format!("stroke=\"{}\"", hex(c));
            tags(&svg, "line").filter(|t| t.contains(&stroke) && t.contains("stroke-width=\"2\"")).count()
        };
        assert_eq!((strokes(style("select").color), strokes(style("iterative").color)), (12, 12));
    }

    #[test]
    fn n_is_on_a_log_axis_and_so_are_p99_memory_and_threads() {
        let ns = [1.0, 10.0, 100.0, 1000.0, 10000.0];
        // Each measure 10× the one before, so on a log axis the points are evenly spaced.
        let cells: Vec<Cell> = ns.iter().map(|n| cell("epoll", *n, n * 10.0, None)).collect();
        let svg = render_svg(&cells);
        let mut all = points(&svg, style("epoll").color);
        assert_eq!(all.len(), 30);
        all.sort();
        let (rows, cols) = (ROW as i32, (WIDTH / 2) as i32);
        let panel = |i: usize| -> Vec<(i32, i32)> {
            let (row, col) = (i as i32 / 2, i as i32 % 2);
            let top = HEAD as i32 + row * rows;
            let inside = |p: &&(i32, i32)| p.0 / cols == col && (top..top + rows).contains(&p.1);
            all.iter().filter(inside).copied().collect()
        };
        let even = |v: Vec<i32>| {
            let steps: Vec<i32> = v.windows(2).map(|w| w[1] - w[0]).collect();
            steps.iter().all(|s| (s - steps[0]).abs() <= 2 && steps[0].abs() > 20)
        };
        // requests/s, p99, CPU per request, memory, threads, idle CPU: which have a log y axis.
        let log_y = [false, true, false, true, true, false];
        for (i, measure) in MEASURES.iter().enumerate() {
            let p = panel(i);
            assert_eq!(p.len(), 5, "{}: {p:?}", measure.caption);
            assert!(even(p.iter().map(|p| p.0).collect()), "{}: N is not on a log axis: {p:?}", measure.caption);
            let log = even(p.iter().map(|p| p.1).collect());
            assert_eq!(log, log_y[i], "{}: y log is {log}: {p:?}", measure.caption);
        }
    }

    #[test]
    fn parses_the_sweeps_file_and_says_what_is_wrong() {
        let text = r#"{"meta": {"date": "2026-01-02 10:00 UTC", "host": "box", "kernel": "6.8.0", "cpus": 2,
            "active_s": 5, "idle_s": 3, "active_conns": 50, "server_cpus": [1], "load_cpus": [0]},
            "cells": [{"model": "fork", "n": 10000, "rps": 12.5, "p99_us": null, "note": "refused at 2,000"},
                      {"model": "fork", "n": 1, "rps": 1e4, "cpu_us_per_req": 40.5, "note": null}]}"#;
        let run = parse(text).unwrap();
        assert_eq!(run.cells.len(), 2);
        let (a, b) = (&run.cells[0], &run.cells[1]);
        assert_eq!((a.n, a.rps, a.p99_us, a.note.as_deref()), (10000.0, Some(12.5), None, Some("refused at 2,000")));
        assert_eq!((b.cpu_us, b.note.as_deref()), (Some(40.5), None));
        let args = Args::parse_from(["c10k-report", "--models", "m.json"]);
        assert_eq!(
            subtitle(&run, &args, None),
            "run 2026-01-02 10:00 UTC  ·  5 s of load on 50 connections, 3 s idle per cell  ·  2 CPUs, Linux 6.8.0  ·  \
             model on CPU 1, c10k-load on CPU 0  ·  host box"
        );
        assert_eq!(parse(r#"[{"model": "poll", "n": 1}]"#).unwrap().cells[0].model, "poll");
        assert_eq!([bytes(2e6), bytes(512.0), bytes(1.5e9), bytes(20e3)], ["2 MB", "512 B", "1.5 GB", "20 kB"]);
        assert!(parse(r#"{"cells": []}"#).unwrap_err().contains("no cells"));
        assert!(parse(r#"{"cells": [{"n": 1}]}"#).unwrap_err().contains("without a model"));
        assert!(parse(r#"{"meta": {}}"#).unwrap_err().contains("no \"cells\""));
    }
}
