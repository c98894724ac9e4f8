//! The ramp: c10k-load opens its idle population first, and its active connections send
//! nothing until every idle connection is held (in every thread and every worker process);
//! the report measures only the load after it, and says how long the ramp took. A fake
//! server here logs when each connection's requests arrive and when it answered them, and
//! answers the idle population slowly (one of them slower still), so that a load started
//! early shows as requests on active connections before the last idle answer.

mod common;

use common::read_head;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const LOAD: &str = env!("CARGO_BIN_EXE_c10k-load");
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
/// The idle connections in these runs, and the active ones.
const IDLE: usize = 20;
const CONNS: usize = 2;
/// Until the key connection is answered, every answer waits this long.
const SLOW: Duration = Duration::from_millis(200);

/// What the server saw on one connection.
#[derive(Default, Clone)]
struct ConnLog {
    /// When each request's head arrived.
    requests: Vec<Instant>,
    /// When it began writing the answer to the first request.
    first_answer: Option<Instant>,
    closed: Option<Instant>,
}

/// The key connection is the tenth to send a request (the probes before the run send
/// none): its first request is answered only after `key_delay` (never, when `None`), so the
/// thread or worker that holds it is the last to have its idle share held.
const KEY: usize = 9;

struct Fake {
    url: String,
    log: Arc<Mutex<Vec<ConnLog>>>,
}

impl Fake {
    fn start(key_delay: Option<Duration>) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", l.local_addr().unwrap());
        let log: Arc<Mutex<Vec<ConnLog>>> = Arc::default();
        // Slow answers until the key connection's, if it gets one.
        let slow = Arc::new(AtomicBool::new(key_delay.is_some()));
        let asked = Arc::new(AtomicUsize::new(0));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                let k = {
                    let mut log = log2.lock().unwrap();
                    log.push(ConnLog::default());
                    log.len() - 1
                };
                let (log, slow, asked) = (log2.clone(), slow.clone(), asked.clone());
                std::thread::spawn(move || serve(s, k, key_delay, &log, &slow, &asked));
            }
        });
        Fake { url, log }
    }

    fn log(&self) -> Vec<ConnLog> {
        self.log.lock().unwrap().clone()
    }
}

/// Answer connection `k` (in accept order); `asked` counts the connections that sent a
/// request.
fn serve(
    mut s: TcpStream,
    k: usize,
    key_delay: Option<Duration>,
    log: &Mutex<Vec<ConnLog>>,
    slow: &AtomicBool,
    asked: &AtomicUsize,
) {
    let mut n = 0;
    while read_head(&mut s) {
        log.lock().unwrap()[k].requests.push(Instant::now());
        let key = n == 0 && asked.fetch_add(1, Relaxed) == KEY;
        if key {
            match key_delay {
                Some(d) => std::thread::sleep(d),
                None => break,
            }
        } else if slow.load(Relaxed) {
            std::thread::sleep(SLOW);
        }
        if n == 0 {
            log.lock().unwrap()[k].first_answer = Some(Instant::now());
        }
        if key {
            slow.store(false, Relaxed);
        }
        if s.write_all(ANSWER).is_err() {
            break;
        }
        n += 1;
    }
    // The key connection left unanswered waits for the client's end.
    let _ = s.read(&mut [0u8; 1]);
    log.lock().unwrap()[k].closed = Some(Instant::now());
}

struct Run {
    out: Output,
    json: String,
    wall: Duration,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn why(&self) -> String {
        format!(
            "status {:?}\nstdout:\n{}\nstderr:\n{}\njson: {}",
            self.out.status,
            self.stdout(),
            self.stderr(),
            self.json
        )
    }
}

/// c10k-load with `--conns 2 --idle 20 --duration 1` and `extra` against `url`.
fn run(url: &str, extra: &[&str]) -> Run {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Relaxed);
    let json = std::env::temp_dir().join(format!("c10k-load-ramp-{}-{n}.json", std::process::id()));
    let (conns, idle) = (CONNS.to_string(), IDLE.to_string());
    let t0 = Instant::now();
    let out = Command::new(LOAD)
        .args(["--url", url, "--conns", &conns, "--idle", &idle, "--duration", "1", "--json"])
        .arg(&json)
        .args(extra)
        .output()
        .unwrap();
    let wall = t0.elapsed();
    let report = std::fs::read_to_string(&json).unwrap_or_default();
    let _ = std::fs::remove_file(&json);
    let r = Run { out, json: report, wall };
    eprintln!("{}", r.why());
    r
}

/// The number after `"key":`.
fn num(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("no {key} in {json}")) + pat.len();
    let v: String = json[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    v.parse().unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

/// The idle connections (one request each) and the active ones (more), as the server saw
/// them.
fn split(log: &[ConnLog]) -> (Vec<&ConnLog>, Vec<&ConnLog>) {
    log.iter().filter(|c| !c.requests.is_empty()).partition(|c| c.requests.len() == 1)
}

#[test]
fn no_active_request_before_every_idle_connection_is_held() {
    for extra in [&[][..], &["--threads", "2"], &["--procs", "2"], &["--procs", "2", "--threads", "2"]] {
        let fake = Fake::start(Some(Duration::from_millis(600)));
        let r = run(&fake.url, extra);
        let why = format!("{extra:?}: {}", r.why());
        assert_eq!(r.out.status.code(), Some(0), "{why}");
        let log = fake.log();
        let (idle, active) = split(&log);
        assert_eq!((idle.len(), active.len()), (IDLE, CONNS), "{why}");
        let held = idle.iter().map(|c| c.first_answer.expect("answered")).max().unwrap();
        let first = active.iter().map(|c| c.requests[0]).min().unwrap();
        assert!(
            first > held,
            "{extra:?}: an active request arrived {:?} before the last idle answer\n{why}",
            held - first
        );
    }
}

#[test]
fn the_report_measures_only_the_load_and_says_how_long_the_ramp_took() {
    let fake = Fake::start(Some(Duration::from_millis(600)));
    let r = run(&fake.url, &[]);
    let why = r.why();
    assert_eq!(r.out.status.code(), Some(0), "{why}");
    // The ramp took at least the key connection's 600 ms, and the run that much more than
    // its --duration; the report counts the second of load alone.
    let phase = num(&r.json, "idle_phase_s");
    assert!((0.6..1.5).contains(&phase), "{why}");
    assert!(r.wall.as_secs_f64() >= 1.0 + phase, "{why}");
    assert!((0.95..1.3).contains(&num(&r.json, "duration_s")), "{why}");
    assert!(r.json.contains("\"idle_complete\":true"), "{why}");
    assert_eq!(num(&r.json, "idle_open_at_start"), IDLE as f64, "{why}");
    // Nothing measured waited behind the ramp's slow answers.
    assert!(num(&r.json, "max_us") < SLOW.as_micros() as f64, "{why}");
    assert!(num(&r.json, "requests") > 10.0, "{why}");
    let rps = num(&r.json, "rps");
    assert!((rps * num(&r.json, "duration_s") / num(&r.json, "requests") - 1.0).abs() < 0.01, "{why}");
    // What a person reads, and what loadtest/run.py waits for.
    let head = format!("  ramp      idle {IDLE} of {IDLE} open in ");
    let line = r.stdout().lines().find(|l| l.starts_with(&head)).map(str::to_string);
    let secs = line.as_deref().and_then(|l| l[head.len()..].strip_suffix(" s before the load began"));
    let secs: f64 = secs.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {head:?}... line\n{why}"));
    assert!((secs - phase).abs() <= 0.01, "{why}");
    let ready = r.stderr().lines().filter(|l| l.starts_with(&format!("c10k-load: idle ready {IDLE} in "))).count();
    assert_eq!(ready, 1, "{why}");
}

#[test]
fn a_ramp_past_its_timeout_still_runs_the_load_and_fails() {
    // The key connection is never answered, so the idle population is never complete.
    let fake = Fake::start(None);
    let r = run(&fake.url, &["--idle-timeout", "0.5", "--procs", "2"]);
    let why = r.why();
    assert_eq!(r.out.status.code(), Some(1), "{why}");
    assert!(r.json.contains("\"idle_complete\":false"), "{why}");
    assert_eq!(num(&r.json, "idle_open_at_start"), (IDLE - 1) as f64, "{why}");
    assert!((0.5..1.0).contains(&num(&r.json, "idle_phase_s")), "{why}");
    assert!(num(&r.json, "requests") > 10.0, "{why}");
    let summary = r.stdout();
    assert!(
        summary.contains(&format!("INCOMPLETE: idle {} of {IDLE} open and answered when the load began", IDLE - 1)),
        "{why}"
    );
    let err = r.stderr();
    assert!(err.contains("--idle-timeout; starting the load without the rest (the run will fail)"), "{why}");
    assert!(!err.contains("idle ready"), "{why}");
}

#[test]
fn load_during_ramp_starts_the_active_connections_at_once() {
    let fake = Fake::start(Some(Duration::from_millis(600)));
    let r = run(&fake.url, &["--load-during-ramp"]);
    let why = r.why();
    assert_eq!(r.out.status.code(), Some(0), "{why}");
    let log = fake.log();
    let (idle, active) = split(&log);
    let held = idle.iter().map(|c| c.first_answer.expect("answered")).max().unwrap();
    assert!(active.iter().all(|c| c.requests[0] < held), "{why}");
    assert!(r.stdout().contains("(--load-during-ramp)"), "{why}");
    assert!(r.json.contains("\"load_during_ramp\":true"), "{why}");
}

#[test]
fn workers_whose_parent_goes_away_in_the_ramp_close_their_connections() {
    let fake = Fake::start(None);
    let (conns, idle) = (CONNS.to_string(), IDLE.to_string());
    let mut parent = Command::new(LOAD)
        .args(["--url", &fake.url, "--conns", &conns, "--idle", &idle, "--procs", "2", "--idle-timeout", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.log().iter().filter(|c| !c.requests.is_empty()).count() < IDLE && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(parent.id() as i32), Signal::SIGKILL).unwrap();
    let _ = parent.wait();
    let killed = Instant::now();
    while fake.log().iter().any(|c| c.closed.is_none()) && killed.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = fake.log();
    let open = log.iter().filter(|c| c.closed.is_none()).count();
    assert_eq!(split(&log).0.len(), IDLE, "the idle connections asked, and no active one");
    assert_eq!(open, 0, "{open} of {} connections still open 3 s after the parent was killed", log.len());
}

#[test]
fn warmup_opens_the_active_connections_first_and_measures_only_after_it() {
    for extra in [&[][..], &["--procs", "2"]] {
        let fake = Fake::start(Some(Duration::from_millis(600)));
        let r = run(&fake.url, &[&["--warmup", "0.3"][..], extra].concat());
        let why = format!("{extra:?}: {}", r.why());
        assert_eq!(r.out.status.code(), Some(0), "{why}");
        let log = fake.log();
        let (idle, active) = split(&log);
        assert_eq!((idle.len(), active.len()), (IDLE, CONNS), "{why}");
        // Each active connection asked once in the ramp, with the idle ones, and again only
        // once every connection was held.
        let held = log.iter().filter_map(|c| c.first_answer).max().unwrap();
        assert!(active.iter().all(|c| c.requests[0] < held && c.requests[1] > held), "{why}");
        assert_eq!(num(&r.json, "warmed"), CONNS as f64, "{why}");
        // The second of load is measured after the 0.3 s of warm-up, and nothing measured
        // waited behind the ramp's slow answers.
        let phase = num(&r.json, "idle_phase_s");
        assert!((0.6..1.5).contains(&phase) && r.wall.as_secs_f64() >= phase + 1.3, "{why}");
        assert!((0.95..1.3).contains(&num(&r.json, "duration_s")), "{why}");
        assert!(num(&r.json, "max_us") < SLOW.as_micros() as f64, "{why}");
        // Every answer on an active connection is measured or not counted; some still in flight.
        let asked: usize = active.iter().map(|c| c.requests.len()).sum();
        let answered = (num(&r.json, "requests") + num(&r.json, "uncounted")) as usize;
        assert!(num(&r.json, "uncounted") > CONNS as f64 && (asked - CONNS..=asked).contains(&answered), "{why}");
        let line = format!("  warm-up   {CONNS} of {CONNS} active connections open and answered in ");
        assert!(r.stdout().contains(&line) && r.stdout().contains(" s, then 0.30 s of load; "), "{why}");
    }
}
