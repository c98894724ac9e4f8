//! `make models`' sweep (models/sweep.py), briefly: every model at N = 1 and 10 idle
//! connections, a second of load per cell, against the debug binaries. c10k-models belongs to
//! another package, so it has no CARGO_BIN_EXE here: it is the c10k-models beside this
//! package's c10k-load (`make test` builds the whole workspace first).

use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LOAD: &str = env!("CARGO_BIN_EXE_c10k-load");
const REPORT: &str = env!("CARGO_BIN_EXE_c10k-report");
const MODELS: [&str; 9] = ["iterative", "fork", "thread", "coroutine", "busy-poll", "select", "poll", "epoll", "uring"];
const NS: [f64; 2] = [1.0, 10.0];

fn models_bin() -> PathBuf {
    let bin = Path::new(LOAD).with_file_name("c10k-models");
    assert!(bin.exists(), "{} is missing: run `cargo build -p c10k-models` (make test builds it)", bin.display());
    bin
}

#[test]
fn sweeps_every_model_into_a_table_a_json_and_a_chart() {
    let bin = models_bin();
    let out = std::env::temp_dir().join(format!("c10k-models-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let log = out.join("sweep.log");
    let sweep = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/sweep.py");
    let started = Instant::now();
    let mut child = Command::new("python3")
        .arg(&sweep)
        .env_remove("MODELS")
        .envs([("NS", "1 10"), ("ACTIVE_S", "1"), ("IDLE_S", "0.5")])
        .env("OUT", &out)
        .env("MODELS_BIN", &bin)
        .env("LOAD_BIN", LOAD)
        .env("REPORT_BIN", REPORT)
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .expect("run python3 models/sweep.py (is python3 installed?)");
    // Each cell bounds itself; this is only against a sweep that hangs all the same.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the sweep ran past 180 s:\n{}", read(&log));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let why = format!("the sweep, {:.0} s:\n{}", started.elapsed().as_secs_f64(), read(&log));
    assert!(status.success(), "{status}: {why}");

    let md = read(&out.join("models.md"));
    for model in MODELS {
        assert!(md.lines().any(|l| l.starts_with(&format!("| {model} | "))), "no row for {model} in models.md:\n{md}");
    }
    let top: Value =
        serde_json::from_str(&read(&out.join("models.json"))).unwrap_or_else(|e| panic!("models.json: {e}\n{why}"));
    let Some(Value::Array(cells)) = top.get("cells") else { panic!("models.json has no cells list\n{why}") };
    let num = |c: &Value, key: &str| c.get(key).and_then(Value::as_f64);
    let text = |c: &Value, key: &str| c.get(key).and_then(Value::as_str).map(str::to_string);
    assert_eq!(cells.len(), MODELS.len() * NS.len(), "{why}");
    let cell = |model: &str, n: f64| {
        let mut it = cells.iter().filter(|c| text(c, "model").as_deref() == Some(model) && num(c, "n") == Some(n));
        let found = it.next().unwrap_or_else(|| panic!("no cell {model} N={n}\n{why}"));
        assert!(it.next().is_none(), "two cells {model} N={n}\n{why}");
        found
    };
    for model in MODELS {
        for n in NS {
            let c = cell(model, n);
            if ["epoll", "thread", "poll"].contains(&model) {
                assert!(num(c, "rps").is_some_and(|r| r > 0.0), "{model} N={n} served nothing: {c:?}\n{why}");
                assert_eq!(text(c, "note"), None, "{model} N={n}: {c:?}\n{why}");
                assert_eq!(num(c, "held"), Some(n), "{model} N={n}: {c:?}\n{why}");
            }
            if model == "iterative" {
                let note = text(c, "note").unwrap_or_default();
                assert!(note.contains("timed out"), "{model} N={n} did not time out: {c:?}\n{why}");
            }
        }
    }
    let svg = read(&out.join("models.svg"));
    assert!(svg.starts_with("<svg") && svg.contains("held idle connections N (log)"), "{why}");
    let _ = std::fs::remove_dir_all(&out);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}
