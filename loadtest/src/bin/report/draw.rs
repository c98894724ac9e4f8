//! The SVG: six panels, a legend and a subtitle, with plotters (and the panel of curves that
//! models mode draws six of).

use super::data::*;
use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

pub(crate) const WIDTH: u32 = 1200;
/// Title, subtitle and legend.
pub(crate) const HEAD: u32 = 84;

/// The heights of the three rows of panels: 330 px, more where a bar panel needs 9 px a bar.
pub(crate) fn row_heights(charts: &Charts) -> [u32; 3] {
    let need = |b: &Bars| {
        let widest = b.groups.iter().map(|g| g.1.len()).max().unwrap_or(0);
        110 + (b.groups.len() * widest) as u32 * 45 / 4
    };
    let [cpu, rss, pipelined, large] = &charts.bars;
    [330, 330.max(need(cpu)).max(need(rss)), 330.max(need(pipelined)).max(need(large))]
}

pub(crate) fn size(charts: &Charts) -> (u32, u32) {
    (WIDTH, HEAD + row_heights(charts).iter().sum::<u32>())
}

pub(crate) fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
    charts: &Charts,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (_, body) = frame(&root, (title, subtitle), HEAD, &charts.servers, 68)?;
    let [top, middle, _] = row_heights(charts);
    let (first, rest) = body.split_vertically(top);
    let (second, third) = rest.split_vertically(middle);
    let [first, second, third] = [first, second, third].map(|row| row.split_horizontally(WIDTH / 2));

    let (rps, p99) = (&charts.rps, &charts.p99_ms);
    let conns = rps.iter().chain(p99).flat_map(|c| c.1.iter().map(|p| p.0));
    let conns = conns.clone().fold(f64::INFINITY, f64::min) / 2.0..conns.fold(1.0, f64::max) * 2.0;
    let panel = |caption, y_desc, log_y, curves| Panel {
        caption,
        x_desc: "connections (log)",
        y_desc,
        log_y,
        y_label: short,
        curves,
        marks: &[],
    };
    if rps.is_empty() {
        empty(&first.0, "requests/s, index.html")?;
    } else {
        let rps = panel("requests/s, index.html (more is better)", "requests/s", false, rps);
        curve_panel(&first.0, conns.clone(), &rps)?;
    }
    if p99.is_empty() {
        empty(&first.1, "p99 latency, index.html")?;
    } else {
        let p99 = panel("p99 latency, index.html (less is better)", "p99 (ms, log)", true, p99);
        curve_panel(&first.1, conns, &p99)?;
    }
    for (area, bars) in [&second.0, &second.1, &third.0, &third.1].into_iter().zip(&charts.bars) {
        bar_panel(area, bars)?;
    }
    root.present()?;
    Ok(())
}

/// A panel of curves against a log x axis (connections, or held connections in models
/// mode): y from 0 to a tenth above the highest point, or a log axis over whole decades.
pub(crate) struct Panel<'a> {
    pub(crate) caption: &'a str,
    pub(crate) x_desc: &'a str,
    pub(crate) y_desc: &'a str,
    pub(crate) log_y: bool,
    /// A y value as its tick label (on a log axis, at 1, 2 and 5 × 10ⁿ only).
    pub(crate) y_label: fn(f64) -> String,
    pub(crate) curves: &'a Curves,
    /// Crosses at the panel's foot, in a curve's colour, where it has no point (a cell that
    /// was refused or timed out); several at one x are stacked upwards.
    pub(crate) marks: &'a [(Style, f64)],
}

pub(crate) fn curve_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, x: Range<f64>, p: &Panel) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let ys = p.curves.iter().flat_map(|c| c.1.iter().map(|p| p.1));
    if p.log_y {
        let y = log_range(ys);
        let bottom = y.start;
        finish_panel(chart(area, p.caption).build_cartesian_2d(x.log_scale(), y.log_scale())?, p, bottom)
    } else {
        let max = ys.fold(1.0, f64::max) * 1.1;
        finish_panel(chart(area, p.caption).build_cartesian_2d(x.log_scale(), 0.0..max)?, p, 0.0)
    }
}

fn finish_panel<DB: DrawingBackend, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    mut chart: ChartContext<'_, DB, Cartesian2d<LogCoord<f64>, Y>>,
    p: &Panel,
    bottom: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(BLACK.mix(0.15)).light_line_style(BLACK.mix(0.05));
    if p.log_y {
        mesh.y_labels(40).y_max_light_lines(0);
    }
    mesh.x_desc(p.x_desc).y_desc(p.y_desc);
    let label = p.y_label;
    let (linear, log) = (|y: &f64| label(*y), |y: &f64| one_two_five(y, label));
    let y_label: &dyn Fn(&f64) -> String = if p.log_y { &log } else { &linear };
    mesh.x_label_formatter(&|x| short(*x)).y_label_formatter(y_label).draw()?;
    plot_curves(&mut chart, p.curves)?;
    for (i, (style, x)) in p.marks.iter().enumerate() {
        let below = p.marks[..i].iter().filter(|m| m.1 == *x).count() as i32;
        let cross = Cross::new((0, -7 - 9 * below), 4, style.color.stroke_width(2));
        chart.plotting_area().draw(&(EmptyElement::at((*x, bottom)) + cross))?;
    }
    Ok(())
}

/// A log axis' label, `label(v)` only at 1, 2 and 5 × 10ⁿ (its ticks are at every integer × 10ⁿ).
pub(crate) fn one_two_five(v: &f64, label: fn(f64) -> String) -> String {
    let mantissa = v / 10f64.powf(v.log10().floor());
    if [1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 1e-6) { label(*v) } else { String::new() }
}

pub(crate) fn chart<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(10)
        .margin_right(24)
        .caption(caption, ("sans-serif", 15))
        .x_label_area_size(36)
        .y_label_area_size(64);
    builder
}

pub(crate) fn plot_curves<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
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
pub(crate) fn bar_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, bars: &Bars) -> Result<()>
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

pub(crate) fn empty<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, caption: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    empty_saying(area, caption, "not in this CSV (did ONLY= leave it out?)")
}

/// A panel with nothing to draw: its caption, and why in grey.
pub(crate) fn empty_saying<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, caption: &str, why: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let area = area.titled(caption, ("sans-serif", 15))?;
    let (w, h) = area.dim_in_pixel();
    let style =
        TextStyle::from(("sans-serif", 13)).color(&RGBColor(120, 120, 120)).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(why, (w as i32 / 2, h as i32 / 2), style))?;
    Ok(())
}

/// A white page with the title, the subtitle (centred) and the legend (at `legend_y`) in its
/// head, `height` pixels: (head, body).
pub(crate) type Frame<DB> = (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>);
pub(crate) fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (title, subtitle): (&str, &str),
    height: u32,
    items: &[(String, Style)],
    legend_y: i32,
) -> Result<Frame<DB>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (head, body) = root.split_vertically(height);
    let mid = head.dim_in_pixel().0 as i32 / 2;
    let center = |size: u32| TextStyle::from(("sans-serif", size)).pos(Pos::new(HPos::Center, VPos::Top));
    head.draw(&Text::new(title, (mid, 8), center(20)))?;
    head.draw(&Text::new(subtitle, (mid, 36), center(14)))?;
    legend(&head, items, legend_y)?;
    Ok((head, body))
}

/// One row of swatches, centred: a bar's fill, a line's stroke, the server's name.
pub(crate) fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    servers: &[(String, Style)],
    y: i32,
) -> Result<()>
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
