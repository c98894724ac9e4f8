//! The server's own lines: start, capacity, warnings, exits, restarts, reloads, stops.
//! Each is `2026-11-28T14:10:03.123Z c10k-server[PID] WHO: TEXT`, WHO being `master` or
//! `shard N`, and goes out in one write(2): the master and every shard share one stdout
//! and one stderr, and a pipe (or a file opened O_APPEND) keeps each write of up to
//! PIPE_BUF bytes whole, so lines of several processes never interleave mid-line.
//! Informational lines go to stdout, warnings and failures to stderr.

#![forbid(unsafe_code)]

use std::fmt::{Arguments, Write as _};
use std::os::fd::AsFd;
use std::sync::OnceLock;

static WHO: OnceLock<String> = OnceLock::new();

/// Name this process in its lines (`master`, `shard 3`); set once, at start.
pub fn set_who(who: String) {
    let _ = WHO.set(who);
}

/// A line on stdout.
pub fn info(text: Arguments<'_>) {
    emit(std::io::stdout().as_fd(), "", text);
}

/// A line on stderr, marked `warning:`.
pub fn warn(text: Arguments<'_>) {
    emit(std::io::stderr().as_fd(), "warning: ", text);
}

/// A line on stderr: something failed.
pub fn error(text: Arguments<'_>) {
    emit(std::io::stderr().as_fd(), "", text);
}

/// `n` and its noun, singular for one: `1 shard`, `2 shards`.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Log every panic of this process as one error line naming where and why, before it
/// aborts or unwinds: the master's line about the shard's death follows it, so the log
/// explains the restart. The default hook's text (several lines, no time, no writer) is
/// only added when `RUST_BACKTRACE` asks for a backtrace.
pub fn log_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        error(format_args!("{}", panic_text(info.location(), info.payload())));
        if std::env::var("RUST_BACKTRACE").is_ok_and(|v| v != "0") {
            default(info);
        }
    }));
}

/// Longest panic message logged: the line stays under PIPE_BUF, so one write keeps it whole.
const MAX_PANIC_MESSAGE: usize = 2048;

/// `panicked at FILE:LINE:COLUMN: MESSAGE`, as Rust's own hook says it.
fn panic_text(location: Option<&std::panic::Location<'_>>, payload: &(dyn std::any::Any + Send)) -> String {
    let message = match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s.as_str(),
        _ => "(a value that is not text)",
    };
    let mut cut = message.len().min(MAX_PANIC_MESSAGE);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let more = if cut < message.len() { "…" } else { "" };
    let message = message[..cut].replace('\n', " / ");
    match location {
        Some(l) => format!("panicked at {}:{}:{}: {message}{more}", l.file(), l.line(), l.column()),
        None => format!("panicked: {message}{more}"),
    }
}

fn emit(fd: std::os::fd::BorrowedFd<'_>, mark: &str, text: Arguments<'_>) {
    let line = format_line(
        crate::http::date::unix_ms(),
        std::process::id(),
        WHO.get().map_or("master", String::as_str),
        mark,
        text,
    );
    let mut bytes = line.as_bytes();
    // A closed or full output is no reason to stop serving: the line is dropped.
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes = &bytes[n..],
        }
    }
}

fn format_line(ms: u64, pid: u32, who: &str, mark: &str, text: Arguments<'_>) -> String {
    let mut line = String::with_capacity(128);
    rfc3339(ms, &mut line);
    let _ = writeln!(line, " c10k-server[{pid}] {who}: {mark}{text}");
    line
}

/// `2026-11-28T14:10:03.123Z`: UTC, milliseconds.
fn rfc3339(ms: u64, out: &mut String) {
    let t = crate::http::date::Civil::of(ms / 1000);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        ms % 1000
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_time_process_and_writer() {
        let line = format_line(1_796_393_403_123, 42, "shard 3", "warning: ", format_args!("x {}", 1));
        assert_eq!(line, "2026-12-04T14:10:03.123Z c10k-server[42] shard 3: warning: x 1\n");
        assert_eq!(
            format_line(0, 1, "master", "", format_args!("")),
            "1970-01-01T00:00:00.000Z c10k-server[1] master: \n"
        );
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(
            [count(0u32, "shard"), count(1u32, "shard"), count(2u32, "shard")],
            ["0 shards", "1 shard", "2 shards"]
        );
    }

    #[test]
    fn a_panic_names_its_location_and_message() {
        let here = std::panic::Location::caller();
        let at = format!("{}:{}:{}", here.file(), here.line(), here.column());
        assert!(at.starts_with("src/log.rs:"), "{at}");
        let text = |payload: Box<dyn std::any::Any + Send>| panic_text(Some(here), &*payload);
        let cases: Vec<(Box<dyn std::any::Any + Send>, String)> = vec![
            (Box::new("attempt to add with overflow"), format!("panicked at {at}: attempt to add with overflow")),
            (Box::new(format!("index {} out of range", 7)), format!("panicked at {at}: index 7 out of range")),
            (Box::new("two\nlines"), format!("panicked at {at}: two / lines")),
            (Box::new(42u32), format!("panicked at {at}: (a value that is not text)")),
        ];
        for (payload, want) in cases {
            assert_eq!(text(payload), want);
        }
        assert_eq!(panic_text(None, &"x"), "panicked: x");
        // a long message is cut, on a character, so the line keeps to one write
        let long = text(Box::new(format!("x{}", "é".repeat(MAX_PANIC_MESSAGE))));
        assert!(long.ends_with("é…") && long.len() < MAX_PANIC_MESSAGE + 100, "{}", long.len());
    }
}
