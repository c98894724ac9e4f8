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
//!
//!     c10k-report --models [JSON] [SVG] [TITLE] [--host NAME] [--date TEXT]
//!
//! `make models`: models/sweep.py's models.json → models.svg, the server models side by side
//! against the held idle connections (models.rs).

mod data;
mod draw;
mod models;

use clap::Parser;
use data::*;
use draw::*;
use plotters::prelude::*;

#[derive(Parser)]
#[command(about = "Draws the load-test chart (SVG) from loadtest/run.py's latest.csv, or with --models the \
             server models' chart from models/sweep.py's models.json")]
struct Args {
    /// The input [default: loadtest/results/latest.csv; with --models models/results/models.json]
    csv: Option<String>,
    /// The SVG to write [default: loadtest/results/report.svg; with --models models/results/models.svg]
    svg: Option<String>,
    /// [default: "c10k-server load test"; with --models "c10k-models: the server models side by side"]
    title: Option<String>,
    /// Read models/sweep.py's models.json instead: one line per server model against the held
    /// idle connections.
    #[arg(long)]
    models: bool,
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

impl Args {
    /// The input, the SVG and the title, each given or its default for the mode.
    fn paths(&self) -> (String, String, String) {
        let [input, svg, title] = if self.models {
            ["models/results/models.json", "models/results/models.svg", "c10k-models: the server models side by side"]
        } else {
            ["loadtest/results/latest.csv", "loadtest/results/report.svg", "c10k-server load test"]
        };
        let given = |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| default.to_string());
        (given(&self.csv, input), given(&self.svg, svg), given(&self.title, title))
    }
}

fn main() {
    let args = Args::parse();
    let (input, svg, title) = args.paths();
    let result = if args.models {
        models::render(&args, &input, &svg, &title)
    } else {
        std::fs::read_to_string(&input)
            .map_err(|e| e.to_string())
            .and_then(|text| parse(&text))
            .map_err(|e| format!("{input}: {e}; run make loadtest first").into())
            .and_then(|rows| {
                let mtime = std::fs::metadata(&input).and_then(|m| m.modified()).ok();
                let charts = charts(&rows);
                let area = SVGBackend::new(&svg, size(&charts)).into_drawing_area();
                draw(area, &title, &subtitle(&rows, &args, mtime), &charts)
            })
    };
    match result {
        Ok(()) => println!("wrote {svg}"),
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
