//! `make report`: loadtest/results/latest.csv → loadtest/results/report.svg, requests/s
//! and p99 latency against connection count, one line per backend (and nginx).
//!
//!     c10k-report [CSV] [SVG] [TITLE]

use plotters::prelude::*;
use std::collections::BTreeMap;

/// (connections, requests/s, p99 µs) of the plain index.html scenarios, per backend.
type Series = BTreeMap<String, Vec<(f64, f64, f64)>>;

fn read(csv: &str) -> Result<Series, String> {
    let text = std::fs::read_to_string(csv).map_err(|e| format!("{csv}: {e}; run make loadtest first"))?;
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().ok_or(format!("{csv} is empty"))?.split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).ok_or(format!("{csv} has no column {name}"));
    let (backend, scenario, conns, rps, p99) =
        (col("backend")?, col("scenario")?, col("connections")?, col("rps")?, col("p99_us")?);
    let mut series = Series::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        // Only the index.html runs that differ in connection count make the curve.
        if !f[scenario].starts_with("index c") {
            continue;
        }
        let num = |i: usize| f[i].parse::<f64>().unwrap_or(f64::NAN);
        series.entry(f[backend].to_string()).or_default().push((num(conns), num(rps), num(p99)));
    }
    for points in series.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    if series.is_empty() {
        return Err(format!("{csv} has no 'index cN' scenarios"));
    }
    Ok(series)
}

fn draw(series: &Series, svg: &str, title: &str) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(svg, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(500);
    let max_conns = series.values().flatten().map(|p| p.0).fold(1.0, f64::max);
    let colors = [BLUE, RED, GREEN, MAGENTA];
    for (area, label, pick) in [(&left, "requests/s", 1usize), (&right, "p99 latency (ms)", 2)] {
        let value = |p: &(f64, f64, f64)| if pick == 1 { p.1 } else { p.2 / 1000.0 };
        let max_y = series.values().flatten().map(value).filter(|v| v.is_finite()).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .caption(label, ("sans-serif", 15))
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d((50.0..max_conns * 2.0).log_scale(), 0.0..max_y)?;
        chart
            .configure_mesh()
            .x_desc("connections (log)")
            .y_desc(label)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for (i, (backend, points)) in series.iter().enumerate() {
            let color = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(points.iter().map(|p| (p.0, value(p))), color.stroke_width(2)))?
                .label(backend.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(points.iter().map(|p| Circle::new((p.0, value(p)), 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(if pick == 1 { SeriesLabelPosition::UpperRight } else { SeriesLabelPosition::UpperLeft })
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let csv = args.first().map_or("loadtest/results/latest.csv", String::as_str);
    let svg = args.get(1).map_or("loadtest/results/report.svg", String::as_str);
    let title = args.get(2).map_or("c10k-server: index.html, wrk", String::as_str);
    let result = read(csv).map_err(Into::into).and_then(|s| draw(&s, svg, title));
    match result {
        Ok(()) => println!("wrote {svg}"),
        Err(e) => {
            eprintln!("c10k-report: {e}");
            std::process::exit(1);
        }
    }
}
