//! The status page for a person watching a load: the last interval's rates in all and per
//! shard in human units, each shard's state, and charts of the last five minutes, drawn by
//! the page's own script from `/status` every sample. Served at `/`, and at `/status` to a
//! browser.

use super::status::Server;
use super::status_history::{Interval, SAMPLE};
use crate::stats::get;
use std::fmt::Write as _;

pub(super) fn page(server: &Server<'_>) -> String {
    let rate = |i: Option<&Interval>| i.copied().unwrap_or_default();
    let ms = |v: Option<u64>| v.map_or("–".to_string(), |v| format!("{v} ms"));
    let cell = |key: &str, value: String, raw: f64| format!("<td data-k=\"{key}\" data-v=\"{raw}\">{value}</td>");
    let figures = |i: Interval| {
        [
            cell("rps", human(i.requests_per_second), i.requests_per_second),
            cell("bps", format!("{}B", human(i.bytes_per_second)), i.bytes_per_second),
            cell("p50", ms(i.p50_ms), i.p50_ms.map_or(-1.0, |v| v as f64)),
            cell("p99", ms(i.p99_ms), i.p99_ms.map_or(-1.0, |v| v as f64)),
            cell("open", human(i.open as f64), i.open as f64),
        ]
        .concat()
    };
    let mut rows = String::new();
    for (i, s) in server.shards.iter().enumerate() {
        let _ = write!(
            rows,
            "<tr data-shard=\"{i}\"><td>{i}</td><td data-k=\"state\">{}</td><td>{}</td>{}<td>{}</td><td>{}</td></tr>",
            server.shard_states.get(i).map_or("", String::as_str),
            get(&s.pid),
            figures(rate(server.shard_intervals.get(i))),
            human(s.responses.iter().map(get).sum::<u64>() as f64),
            get(&s.restarts)
        );
    }
    let total = rate(server.interval);
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>c10k-server status</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}th{{background:#f4f4f4}}\
         .charts{{display:flex;gap:1.5em;flex-wrap:wrap}}.chart{{width:260px}}.chart b{{display:block}}\
         svg{{width:260px;height:60px;background:#fafafa;border:1px solid #ddd}}\
         polyline{{fill:none;stroke:#2a6fdb;stroke-width:1.5}}</style></head><body>\
         <h1>c10k-server {}</h1><p><span id=\"state\">{}</span> · backend {} · up <span id=\"up\">{}</span> s · \
         capacity {} connections · {} reloads · every {} s</p>\
         <table id=\"total\"><tr><th></th><th>requests/s</th><th>bytes/s</th><th>p50</th><th>p99</th><th>open</th></tr>\
         <tr><td>all shards</td>{}</tr></table>\
         <div class=\"charts\"><div class=\"chart\"><b>requests/s</b><svg id=\"c-rps\"></svg></div>\
         <div class=\"chart\"><b>bytes/s</b><svg id=\"c-bps\"></svg></div>\
         <div class=\"chart\"><b>p99 (ms)</b><svg id=\"c-p99\"></svg></div>\
         <div class=\"chart\"><b>connections open</b><svg id=\"c-open\"></svg></div></div>\
         <table id=\"shards\"><tr><th>shard</th><th>state</th><th>pid</th><th>requests/s</th><th>bytes/s</th>\
         <th>p50</th><th>p99</th><th>open</th><th>responses</th><th>restarts</th></tr>{rows}</table>\
         <p><a href=\"/metrics\">/metrics</a> · <a href=\"/status\">/status</a> (JSON) · \
         <a href=\"/healthz\">/healthz</a></p><script>{}</script></body></html>\n",
        server.version,
        server.state,
        server.backend,
        server.now.saturating_sub(server.started),
        server.capacity,
        server.reloads,
        SAMPLE.as_secs(),
        figures(total),
        PAGE_SCRIPT,
    )
}

/// The page's own script (no external one): every sample, fetch /status as JSON, redraw
/// the figures and the charts of the last five minutes.
const PAGE_SCRIPT: &str = r#"
const human = v => v >= 1e9 ? (v/1e9).toFixed(1)+'G' : v >= 1e6 ? (v/1e6).toFixed(1)+'M' : v >= 1e4 ? (v/1e3).toFixed(1)+'k' : Math.round(v).toString();
const ms = v => v == null ? '–' : v + ' ms';
function fill(row, r) {
  if (!r) return;
  const set = (k, text) => { const c = row.querySelector('[data-k="'+k+'"]'); if (c) c.textContent = text; };
  set('rps', human(r.requests_per_second)); set('bps', human(r.bytes_per_second)+'B');
  set('p50', ms(r.p50_ms)); set('p99', ms(r.p99_ms)); set('open', human(r.open));
}
function chart(id, values) {
  const svg = document.getElementById(id), max = Math.max(1, ...values), n = values.length;
  const pts = values.map((v, i) => (n < 2 ? 0 : i * 260 / (n - 1)).toFixed(1) + ',' + (58 - v * 56 / max).toFixed(1));
  svg.innerHTML = '<polyline points="' + pts.join(' ') + '"/><text x="4" y="12" font-size="10">' + human(max) + '</text>';
}
async function tick() {
  try {
    const s = await (await fetch('/status', {headers: {Accept: 'application/json'}})).json();
    document.getElementById('state').textContent = s.state + (s.down ? ': ' + s.down : '');
    document.getElementById('up').textContent = s.uptime_seconds;
    fill(document.querySelector('#total tr:nth-child(2)'), s.rate);
    for (const sh of s.shards) {
      const row = document.querySelector('tr[data-shard="'+sh.shard+'"]');
      if (!row) continue;
      fill(row, sh.rate);
      row.querySelector('[data-k="state"]').textContent = sh.state;
    }
    const h = s.history;
    chart('c-rps', h.map(r => r.requests_per_second)); chart('c-bps', h.map(r => r.bytes_per_second));
    chart('c-p99', h.map(r => r.p99_ms || 0)); chart('c-open', h.map(r => r.open));
  } catch (e) {}
}
tick(); setInterval(tick, 2000);
"#;

/// A figure in human units: 1234 → 1.2k, 3400000 → 3.4M.
fn human(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.1}G", v / 1e9),
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e4 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}
