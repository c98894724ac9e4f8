//! c10k-load against the real server on loopback, briefly. The server binary is
//! `target/debug/c10k-server` (built by `cargo build` at the root; the Makefile does that
//! first); when it is missing these tests say so and skip.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const LOAD: &str = env!("CARGO_BIN_EXE_c10k-load");
/// The served file's size.
const SIZE: usize = 1234;

fn server_bin() -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/c10k-server");
    if bin.exists() {
        Some(bin)
    } else {
        eprintln!("SKIPPED: {} is missing; run `cargo build` at the workspace root first", bin.display());
        None
    }
}

/// The server on an ephemeral loopback port serving a temporary directory with
/// `index.html` (SIZE bytes); stopped with SIGTERM and the directory removed on drop.
struct Server {
    child: Child,
    url: String,
    root: PathBuf,
}

impl Server {
    fn start(tag: &str) -> Option<Server> {
        let bin = server_bin()?;
        let root = std::env::temp_dir().join(format!("c10k-load-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), vec![b'x'; SIZE]).unwrap();
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--shards", "1", "--root"])
            .arg(&root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start c10k-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| Some(l.split_once(": listening on http://")?.1.split(' ').next()?.to_string()));
        // Keep reading, so the server never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let Some(addr) = addr else {
            let _ = child.kill();
            panic!("the server did not print `listening on http://ADDR`");
        };
        Some(Server { child, url: format!("http://{addr}"), root })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn load(args: &[&str]) -> Output {
    Command::new(LOAD).args(args).output().expect("run c10k-load")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run with `--json` into a temporary file; the output and the JSON text.
fn load_json(tag: &str, args: &[&str]) -> (Output, String) {
    let path = std::env::temp_dir().join(format!("c10k-load-test-{tag}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut all: Vec<&str> = args.to_vec();
    let p = path.to_str().unwrap();
    all.extend(["--json", p]);
    let out = load(&all);
    let json = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    (out, json)
}

/// The number after `"key":` (the first one: top-level keys come before `errors`' own).
fn num(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("no {key} in {json}")) + pat.len();
    let v: String = json[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    v.parse().unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

/// Every value in the `errors` object is 0.
fn no_errors(json: &str) -> bool {
    let start = json.find("\"errors\":{").expect("errors object") + 10;
    let obj = &json[start..start + json[start..].find('}').unwrap()];
    obj.split(',').all(|kv| kv.ends_with(":0"))
}

fn explain(out: &Output, json: &str) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}\njson: {json}", out.status, text(&out.stdout), text(&out.stderr))
}

#[test]
fn closed_loop_with_idle_connections_and_pipelining() {
    let Some(s) = Server::start("closed") else { return };
    let url = format!("{}/index.html", s.url);
    let size = SIZE.to_string();
    let args = ["--url", &url, "--conns", "4", "--idle", "10", "--pipeline", "2", "--duration", "1"];
    let (out, json) = load_json("closed", &[&args[..], &["--expect-bytes", &size]].concat());
    let why = explain(&out, &json);
    assert_eq!(out.status.code(), Some(0), "{why}");
    for key in [
        "requests",
        "duration_s",
        "rps",
        "p50_us",
        "p90_us",
        "p99_us",
        "p999_us",
        "max_us",
        "connections",
        "idle",
        "idle_open",
        "pipeline",
    ] {
        num(&json, key);
    }
    assert!(json.contains("\"rate\":null"), "{why}");
    assert!(num(&json, "requests") > 0.0, "{why}");
    assert!(no_errors(&json), "{why}");
    assert_eq!((num(&json, "connections"), num(&json, "idle")), (4.0, 10.0), "{why}");
    assert_eq!(num(&json, "idle_open"), 10.0, "{why}");
    assert_eq!(num(&json, "idle_answered"), 10.0, "{why}");
    assert!(num(&json, "idle_ready_s") < 1.5, "{why}");
    assert_eq!(num(&json, "pipeline"), 2.0, "{why}");
    assert!(num(&json, "p50_us") <= num(&json, "max_us"), "{why}");
    let summary = text(&out.stdout);
    assert!(summary.contains("errors    none") && summary.contains("10 of 10 still open"), "{why}");
}

#[test]
fn open_loop_sends_about_the_rate() {
    let Some(s) = Server::start("open") else { return };
    let url = format!("{}/index.html", s.url);
    let (out, json) = load_json("open", &["--url", &url, "--conns", "4", "--rate", "200", "--duration", "1"]);
    let why = explain(&out, &json);
    assert_eq!(out.status.code(), Some(0), "{why}");
    let requests = num(&json, "requests");
    assert!((50.0..=400.0).contains(&requests), "{why}");
    assert_eq!(num(&json, "rate"), 200.0, "{why}");
}

#[test]
fn procs_and_threads_merge_their_counts() {
    let Some(s) = Server::start("procs") else { return };
    let url = format!("{}/index.html", s.url);
    let args = ["--url", &url, "--conns", "4", "--idle", "3", "--procs", "2", "--threads", "2", "--duration", "1"];
    let (out, json) = load_json("procs", &args);
    let why = explain(&out, &json);
    assert_eq!(out.status.code(), Some(0), "{why}");
    assert!(num(&json, "requests") > 0.0, "{why}");
    assert_eq!((num(&json, "connections"), num(&json, "idle"), num(&json, "idle_open")), (4.0, 3.0, 3.0), "{why}");
    assert_eq!(num(&json, "procs"), 2.0, "{why}");
    assert!(no_errors(&json), "{why}");
}

#[test]
fn source_addresses_and_rotating_paths() {
    let Some(s) = Server::start("sources") else { return };
    let a = format!("{}/index.html", s.url);
    let b = format!("{}/", s.url);
    let args = ["--url", &a, "--url", &b, "--conns", "3", "--source-ips", "127.0.0.2-127.0.0.4", "--duration", "0.5"];
    let (out, json) = load_json("sources", &args);
    let why = explain(&out, &json);
    assert_eq!(out.status.code(), Some(0), "{why}");
    assert!(num(&json, "requests") > 0.0 && no_errors(&json), "{why}");
}

#[test]
fn bad_answers_are_counted_and_fail_the_run() {
    let Some(s) = Server::start("bad") else { return };
    let missing = format!("{}/missing.html", s.url);
    let (out, json) = load_json("missing", &["--url", &missing, "--conns", "2", "--duration", "0.5"]);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out, &json));
    assert!(num(&json, "status") > 0.0, "{json}");
    let url = format!("{}/index.html", s.url);
    let (out, json) = load_json("length", &["--url", &url, "--conns", "2", "--duration", "0.5", "--expect-bytes", "7"]);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out, &json));
    assert!(num(&json, "length") > 0.0 && num(&json, "status") == 0.0, "{json}");
}

#[test]
fn unreachable_server_is_one_line_and_exit_1() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = load(&["--url", &format!("http://127.0.0.1:{port}/"), "--duration", "1"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot connect to 127.0.0.1:") && err.contains("is the server running?"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["--url", "https://127.0.0.1:1/"][..],
        &["--url", "http://127.0.0.1:1/a", "--url", "http://127.0.0.1:2/b"],
        &["--url", "http://127.0.0.1:1/", "--pipeline", "0"],
        &["--url", "http://127.0.0.1:1/", "--conns", "many"],
        &["--url", "http://127.0.0.1:1/", "--rate", "-5"],
        &["--url", "http://127.0.0.1:1/", "--source-ips", "127.0.0.9-127.0.0.2"],
        &["--conns", "1"],
    ] {
        let out = load(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn too_many_connections_for_one_process_suggests_procs() {
    let out = load(&["--url", "http://127.0.0.1:1/", "--conns", "5000000"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("file descriptors") && err.contains("--procs"), "{err}");
}
