//! What the status listener (`--status-listen`) answers, from the shards' shared counters
//! and what the master knows: `/metrics` (Prometheus text format, per shard with a `shard`
//! label and totalled under `c10k_server_*`), `/status` (JSON, or a self-refreshing HTML
//! page for a browser), `/healthz` (200 while serving, 503 while starting, reloading or
//! stopping). GET and HEAD only; it never serves a file. No I/O here: bytes in, bytes out.

use super::status_history::Interval;
use super::status_page::page;
use crate::http::response::{self, Persistence};
use crate::http::{Limits, Method, Status, parse};
use crate::stats::{ERROR_STATUSES, HANDSHAKES, LATENCY_MS, ShardStats, get};
use std::fmt::Write as _;

/// What the master knows at the moment of a request.
pub struct Server<'a> {
    pub version: &'a str,
    pub backend: &'a str,
    /// Unix seconds: when the master started, and now.
    pub started: u64,
    pub now: u64,
    /// Connections the server can hold (the capacity plan).
    pub capacity: u64,
    pub reloads: u64,
    /// `serving`, `degraded` (serving, with a shard down), `starting`, `reloading` or
    /// `stopping`.
    pub state: &'a str,
    /// Which shards are down and why, when `degraded`.
    pub down: &'a str,
    pub serving_shards: u64,
    pub shards: &'a [ShardStats],
    /// Each shard's state (`serving`, `starting`, `backoff, N s left`, … draining).
    pub shard_states: &'a [String],
    /// The last sampled interval, in all and per shard (`status_history`), and every
    /// interval kept, oldest first.
    pub interval: Option<&'a Interval>,
    pub shard_intervals: &'a [Interval],
    pub history: &'a [Interval],
}

/// Whether `head` is all the request there will be: a whole head, or one already refused
/// (it can no longer become a valid head, or it is over the size limit), which is answered
/// 400 at once instead of when its client gives up.
pub fn head_ended(head: &[u8]) -> bool {
    !matches!(parse(head, &Limits::default()), Ok(Status::Partial))
}

/// The whole response to `request` (one request; the connection closes after it).
pub fn answer(request: &[u8], server: &Server<'_>, date: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let req = match parse(request, &Limits::default()) {
        Ok(Status::Complete(req, _)) => req,
        Ok(Status::Partial) | Err(_) => {
            response::error(&mut out, 400, date, Persistence::Close, false, &[]);
            return out;
        }
    };
    let head_only = req.method == Method::Head;
    if !matches!(req.method, Method::Get | Method::Head) {
        response::error(&mut out, 405, date, Persistence::Close, head_only, &[(b"Allow", b"GET, HEAD")]);
        return out;
    }
    let path = req.target.split(|&b| b == b'?').next().unwrap_or_default();
    let html = req.headers("accept").any(|v| v.windows(9).any(|w| w == b"text/html"));
    let (status, content_type, body) = match path {
        b"/metrics" => (200, "text/plain; version=0.0.4; charset=utf-8", metrics(server)),
        // The page, for a person: at / as well, so the status port's address is enough.
        b"/" => (200, "text/html; charset=utf-8", page(server)),
        b"/status" if html => (200, "text/html; charset=utf-8", page(server)),
        b"/status" => (200, "application/json", json(server)),
        b"/healthz" if server.state == "serving" => (200, "text/plain; charset=utf-8", "ok\n".to_string()),
        // Still serving: a load balancer should not take it out, and a person should look.
        b"/healthz" if server.state == "degraded" => {
            (200, "text/plain; charset=utf-8", format!("degraded: {}\n", server.down))
        }
        b"/healthz" => (503, "text/plain; charset=utf-8", format!("{}\n", server.state)),
        _ => {
            response::error(&mut out, 404, date, Persistence::Close, head_only, &[]);
            return out;
        }
    };
    response::start(&mut out, status);
    response::field(&mut out, b"Content-Type", content_type.as_bytes());
    response::field(&mut out, b"Cache-Control", b"no-store");
    response::field_u64(&mut out, b"Content-Length", body.len() as u64);
    response::finish(&mut out, date, Persistence::Close);
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// One counter family: its name (without `c10k_`), help, and per shard the labelled values.
struct Family {
    name: &'static str,
    help: &'static str,
    gauge: bool,
    values: fn(&ShardStats) -> Vec<(String, u64)>,
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const TIMEOUTS: [&str; 3] = ["request", "keepalive", "send"];

fn one(v: u64) -> Vec<(String, u64)> {
    vec![(String::new(), v)]
}

const FAMILIES: [Family; 11] = [
    Family { name: "connections_open", help: "Connections held now.", gauge: true, values: |s| one(s.open()) },
    Family {
        name: "connections_accepted_total",
        help: "Connections accepted.",
        gauge: false,
        values: |s| one(get(&s.accepted)),
    },
    Family {
        name: "connections_closed_total",
        help: "Connections closed, for any reason.",
        gauge: false,
        values: |s| one(get(&s.closed)),
    },
    Family {
        name: "connections_evicted_total",
        help: "Idle keep-alive connections closed at the connection cap to admit new ones.",
        gauge: false,
        values: |s| one(get(&s.evicted)),
    },
    Family {
        name: "responses_total",
        help: "Responses by status class.",
        gauge: false,
        values: |s| CLASSES.iter().zip(&s.responses).map(|(c, v)| (format!("class=\"{c}\""), get(v))).collect(),
    },
    Family {
        name: "sent_bytes_total",
        help: "Bytes handed to the kernel for clients.",
        gauge: false,
        values: |s| one(get(&s.bytes_sent)),
    },
    Family {
        name: "timeouts_total",
        help: "Connections timed out, by timeout.",
        gauge: false,
        values: |s| TIMEOUTS.iter().zip(&s.timeouts).map(|(k, v)| (format!("kind=\"{k}\""), get(v))).collect(),
    },
    Family {
        name: "parse_errors_total",
        help: "Requests refused as unreadable, by status.",
        gauge: false,
        values: |s| {
            ERROR_STATUSES.iter().zip(&s.parse_errors).map(|(c, v)| (format!("status=\"{c}\""), get(v))).collect()
        },
    },
    Family {
        name: "tls_connections_open",
        help: "TLS connections held now.",
        gauge: true,
        values: |s| one(s.tls_open()),
    },
    Family {
        name: "tls_handshakes_total",
        help: "TLS handshakes by outcome: full, resumed, or why it failed.",
        gauge: false,
        values: |s| {
            HANDSHAKES.iter().zip(&s.tls_handshakes).map(|(k, v)| (format!("result=\"{k}\""), get(v))).collect()
        },
    },
    Family {
        name: "shard_restarts_total",
        help: "Times the shard was replaced after it died.",
        gauge: false,
        values: |s| one(get(&s.restarts)),
    },
];

/// `name{a,b} value` with the labels that are not empty.
fn sample(out: &mut String, name: &str, labels: &[&str], value: impl std::fmt::Display) {
    let labels: Vec<&str> = labels.iter().copied().filter(|l| !l.is_empty()).collect();
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
    }
}

fn metrics(server: &Server<'_>) -> String {
    let mut out = String::new();
    for family in &FAMILIES {
        let kind = if family.gauge { "gauge" } else { "counter" };
        let name = format!("c10k_{}", family.name);
        let _ = writeln!(out, "# HELP {name} {} Per shard.\n# TYPE {name} {kind}", family.help);
        let mut total: Vec<(String, u64)> = Vec::new();
        for (i, shard) in server.shards.iter().enumerate() {
            let label = format!("shard=\"{i}\"");
            for (j, (labels, value)) in (family.values)(shard).into_iter().enumerate() {
                sample(&mut out, &name, &[&label, &labels], value);
                match total.get_mut(j) {
                    Some(t) => t.1 += value,
                    None => total.push((labels, value)),
                }
            }
        }
        let name = format!("c10k_server_{}", family.name);
        let _ = writeln!(out, "# HELP {name} {} All shards.\n# TYPE {name} {kind}", family.help);
        for (labels, value) in total {
            sample(&mut out, &name, &[&labels], value);
        }
    }
    let mut all = [0u64; LATENCY_MS.len() + 1];
    let mut all_sum = 0;
    for (name, shards) in [("c10k_response_seconds", true), ("c10k_server_response_seconds", false)] {
        let _ = writeln!(
            out,
            "# HELP {name} Time from a request's first byte to its response's last byte sent. {}\n# TYPE {name} histogram",
            if shards { "Per shard." } else { "All shards." }
        );
        let blocks: Vec<(String, [u64; LATENCY_MS.len() + 1], u64)> = if shards {
            server
                .shards
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let counts: [u64; LATENCY_MS.len() + 1] = std::array::from_fn(|b| get(&s.latency[b]));
                    let sum = get(&s.latency_sum_ms);
                    all.iter_mut().zip(counts).for_each(|(a, c)| *a += c);
                    all_sum += sum;
                    (format!("shard=\"{i}\""), counts, sum)
                })
                .collect()
        } else {
            vec![(String::new(), all, all_sum)]
        };
        for (label, counts, sum) in blocks {
            let mut cumulative = 0;
            for (b, count) in counts.iter().enumerate() {
                cumulative += count;
                let le = LATENCY_MS.get(b).map_or("+Inf".to_string(), |ms| format!("{}", *ms as f64 / 1000.0));
                sample(&mut out, &format!("{name}_bucket"), &[&label, &format!("le=\"{le}\"")], cumulative);
            }
            sample(&mut out, &format!("{name}_sum"), &[&label], sum as f64 / 1000.0);
            sample(&mut out, &format!("{name}_count"), &[&label], cumulative);
        }
    }
    let _ = writeln!(out, "# HELP c10k_server_reloads_total Reloads (SIGHUP) that completed.");
    let _ = writeln!(out, "# TYPE c10k_server_reloads_total counter\nc10k_server_reloads_total {}", server.reloads);
    let _ = writeln!(out, "# HELP c10k_server_uptime_seconds Seconds since the master started.");
    let _ = writeln!(
        out,
        "# TYPE c10k_server_uptime_seconds gauge\nc10k_server_uptime_seconds {}",
        server.now.saturating_sub(server.started)
    );
    let _ = writeln!(out, "# HELP c10k_server_shards_serving Shards serving now (fewer than configured: degraded).");
    let _ =
        writeln!(out, "# TYPE c10k_server_shards_serving gauge\nc10k_server_shards_serving {}", server.serving_shards);
    let _ = writeln!(out, "# HELP c10k_server_capacity_connections Connections the server can hold.");
    let _ = writeln!(
        out,
        "# TYPE c10k_server_capacity_connections gauge\nc10k_server_capacity_connections {}",
        server.capacity
    );
    out
}

/// One shard's figures as JSON object members.
fn shard_json(s: &ShardStats) -> String {
    let mut out = String::new();
    for family in &FAMILIES {
        let values = (family.values)(s);
        if values.len() == 1 && values[0].0.is_empty() {
            let _ = write!(out, "\"{}\":{},", family.name, values[0].1);
        } else {
            let members: Vec<String> = values
                .iter()
                .map(|(label, v)| format!("\"{}\":{v}", label.split('"').nth(1).unwrap_or_default()))
                .collect();
            let _ = write!(out, "\"{}\":{{{}}},", family.name, members.join(","));
        }
    }
    let latency: Vec<String> = s.latency.iter().map(|c| get(c).to_string()).collect();
    let _ =
        write!(out, "\"response_ms_buckets\":[{}],\"response_ms_sum\":{}", latency.join(","), get(&s.latency_sum_ms));
    out
}

fn json(server: &Server<'_>) -> String {
    let shards: Vec<String> = server
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{{\"shard\":{i},\"state\":\"{}\",\"pid\":{},\"generation\":{},\"started\":{},\"rate\":{},{}}}",
                server.shard_states.get(i).map_or("", String::as_str),
                get(&s.pid),
                get(&s.generation),
                get(&s.started),
                rate_json(server.shard_intervals.get(i)),
                shard_json(s)
            )
        })
        .collect();
    let le: Vec<String> = LATENCY_MS.iter().map(u64::to_string).collect();
    format!(
        "{{\"version\":\"{}\",\"backend\":\"{}\",\"state\":\"{}\",\"down\":\"{}\",\"shards_serving\":{},\
         \"started\":{},\"uptime_seconds\":{},\"capacity\":{},\"reloads\":{},\"response_ms_le\":[{}],\"rate\":{},\"history\":[{}],\"shards\":[{}]}}\n",
        server.version,
        server.backend,
        server.state,
        server.down,
        server.serving_shards,
        server.started,
        server.now.saturating_sub(server.started),
        server.capacity,
        server.reloads,
        le.join(","),
        rate_json(server.interval),
        server.history.iter().map(|i| rate_json(Some(i))).collect::<Vec<_>>().join(","),
        shards.join(",")
    )
}

/// An interval's figures as a JSON object (`null` before there are two samples).
fn rate_json(interval: Option<&Interval>) -> String {
    let ms = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
    match interval {
        None => "null".to_string(),
        Some(i) => format!(
            "{{\"requests_per_second\":{:.1},\"bytes_per_second\":{:.0},\"p50_ms\":{},\"p99_ms\":{},\"open\":{}}}",
            i.requests_per_second,
            i.bytes_per_second,
            ms(i.p50_ms),
            ms(i.p99_ms),
            i.open
        ),
    }
}
