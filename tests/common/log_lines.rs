//! The server's output, read line by line on threads, and its log lines parsed:
//! `TIME c10k-server[PID] WHO: TEXT`.

use std::io::{BufRead, BufReader};
use std::process::Child;

/// A line the server logged: `2026-11-28T14:10:03.123Z c10k-server[PID] WHO: TEXT`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub time: String,
    pub pid: u32,
    /// `master` or `shard N`.
    pub who: String,
    pub text: String,
}

/// `line` as a log line, or `None` if it is not one.
pub fn parse_log(line: &str) -> Option<LogLine> {
    let (time, rest) = line.split_once(' ')?;
    let ok = time.len() == 24 && time.as_bytes()[10] == b'T' && time.ends_with('Z');
    let rest = rest.strip_prefix("c10k-server[")?;
    let (pid, rest) = rest.split_once("] ")?;
    let (who, text) = rest.split_once(": ")?;
    let pid = pid.parse().ok()?;
    ok.then(|| LogLine { time: time.into(), pid, who: who.into(), text: text.into() })
}

/// The text of a log line, after its time, process and writer ("" for any other line).
pub fn text(line: &str) -> String {
    parse_log(line).map(|l| l.text).unwrap_or_default()
}

/// `… c10k-server[P] shard N: serving: core C, backend B, generation G` → (N, P, B).
pub fn parse_shard_line(line: &str) -> Option<(usize, u32, String)> {
    let l = parse_log(line)?;
    let n = l.who.strip_prefix("shard ")?.parse().ok()?;
    let (_core, rest) = l.text.strip_prefix("serving: core ")?.split_once(", backend ")?;
    let (backend, _generation) = rest.split_once(", generation ")?;
    Some((n, l.pid, backend.to_string()))
}

/// Lines of `child`'s stdout and stderr, in one channel, read on threads so a test can
/// wait with a deadline; stderr lines are also copied to the test's own stderr.
pub fn output_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("{line}");
            if tx2.send(line).is_err() {
                break;
            }
        }
    });
    let stdout = stdout_lines(child);
    std::thread::spawn(move || {
        for line in stdout {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lines of `child`'s stdout, read on a thread so a test can wait with a deadline.
pub fn stdout_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
