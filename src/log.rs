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
}
