//! The access log: one line per response, written once its last byte has gone (or, for a
//! response cut short, when its connection ends, with the bytes that did go). Lines
//! collect in the shard's buffer; the shard writes the buffer whole, once a turn.

use crate::conn::LogRecord;
use crate::http::date::Civil;
use crate::http::response::push_u64;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// nginx's `combined`, then the response time in µs and the shard index.
    Combined,
    /// One JSON object a line.
    Json,
}

/// A response queued and not yet whole on the wire.
struct Entry {
    answer: LogRecord,
    sent: u64,
    /// When its request began (µs on the shard's clock) and the wall second it did.
    began_us: u64,
    wall: u64,
}

/// Lines that make a write worth it before the tick is out (a write(2) to a file costs
/// microseconds, a line's formatting far less), and what the buffer holds at most before
/// the shard must write: drivers end a turn's dispatch early once this much waits, since
/// a turn of fast clients with long Referer and User-Agent fields could otherwise pile up
/// hundreds of megabytes of lines between two writes.
pub const WRITE_BATCH: usize = 64 << 10;

pub struct AccessLog {
    format: LogFormat,
    shard: usize,
    /// Whole lines waiting to be written.
    pub buf: Vec<u8>,
    /// By slab key: the connection's peer (as logged) and its responses in flight.
    conns: Vec<(String, VecDeque<Entry>)>,
    /// By slab key: the TLS version and cipher suite of a secure connection.
    secure: Vec<Option<(&'static str, &'static str)>>,
    /// The wall second last formatted, and its text in each format.
    second: u64,
    clf: String,
    iso: String,
}

impl AccessLog {
    pub fn new(format: LogFormat, shard: usize) -> AccessLog {
        AccessLog {
            format,
            shard,
            buf: Vec::with_capacity(WRITE_BATCH + (16 << 10)),
            conns: Vec::new(),
            secure: Vec::new(),
            second: 0,
            clf: clf_time(0),
            iso: iso_time(0),
        }
    }

    fn conn(&mut self, key: usize) -> &mut (String, VecDeque<Entry>) {
        if self.conns.len() <= key {
            self.conns.resize_with(key + 1, Default::default);
        }
        &mut self.conns[key]
    }

    pub fn opened(&mut self, key: usize, peer: Option<SocketAddr>) {
        let conn = self.conn(key);
        conn.0.clear();
        if let Some(peer) = peer {
            let _ = write!(conn.0, "{}", peer.ip());
        }
        conn.1.clear();
        if let Some(secure) = self.secure.get_mut(key) {
            *secure = None;
        }
    }

    /// `key` is a TLS connection of this version and cipher suite (JSON lines say so).
    pub fn secure(&mut self, key: usize, tls: (&'static str, &'static str)) {
        if self.secure.len() <= key {
            self.secure.resize(key + 1, None);
        }
        self.secure[key] = Some(tls);
    }

    pub fn queued(&mut self, key: usize, answer: LogRecord, began_us: u64, wall: u64) {
        self.conn(key).1.push_back(Entry { answer, sent: 0, began_us, wall });
    }

    /// `n` bytes of `key`'s output went out: log the responses that are now whole.
    pub fn sent(&mut self, key: usize, mut n: u64, now_us: u64) {
        while n > 0 {
            let Some(entry) = self.conn(key).1.front_mut() else { return };
            let take = n.min(entry.answer.len - entry.sent);
            entry.sent += take;
            n -= take;
            if entry.sent < entry.answer.len {
                return;
            }
            let entry = self.conns[key].1.pop_front().expect("front");
            self.line(key, &entry, now_us);
        }
    }

    /// The connection is gone: log what it had queued, with the bytes that did go.
    pub fn closed(&mut self, key: usize, now_us: u64) {
        if let Some((_, entries)) = self.conns.get_mut(key) {
            for entry in std::mem::take(entries) {
                self.line(key, &entry, now_us);
            }
            self.conns[key].0.clear();
        }
    }

    fn line(&mut self, key: usize, e: &Entry, now_us: u64) {
        if e.wall != self.second {
            (self.second, self.clf, self.iso) = (e.wall, clf_time(e.wall), iso_time(e.wall));
        }
        let peer = self.conns[key].0.as_str();
        let us = now_us.saturating_sub(e.began_us);
        let a = &e.answer;
        // One sequence for both formats, each with its own literals and escaping (generic,
        // so each is inlined); combined starts with the peer, JSON with the time.
        let f = Fields {
            request: a.request(),
            status: a.status,
            sent: e.sent,
            referer: a.referer(),
            user_agent: a.user_agent(),
            us,
            shard: self.shard as u64,
        };
        let out = &mut self.buf;
        match self.format {
            LogFormat::Combined => {
                let peer = if peer.is_empty() { "-" } else { peer };
                write_line(out, &COMBINED, escape_clf, [peer, &self.clf], &f)
            }
            LogFormat::Json => {
                write_line(out, &JSON, escape_json, [&self.iso, peer], &f);
                if let Some(Some((version, cipher))) = self.secure.get(key) {
                    // Two fields more before the line's closing "}\n".
                    out.truncate(out.len() - JSON[9].len());
                    for piece in [",\"tls\":\"", version, "\",\"cipher\":\"", cipher, "\"}\n"] {
                        out.extend_from_slice(piece.as_bytes());
                    }
                }
            }
        }
    }
}

/// The fields of one line after the first two, borrowed from its entry.
struct Fields<'a> {
    request: &'a [u8],
    status: u16,
    sent: u64,
    referer: &'a [u8],
    user_agent: &'a [u8],
    us: u64,
    shard: u64,
}

/// One line: `text[i]` before each field and after the last. Numbers go through the
/// encoder's digit writer: this runs once a response, and `write!` costs several times as
/// much.
fn write_line(
    out: &mut Vec<u8>,
    text: &[&[u8]; 10],
    escape: impl Fn(&[u8], &mut Vec<u8>),
    lead: [&str; 2],
    f: &Fields<'_>,
) {
    let piece = |out: &mut Vec<u8>, i: usize| out.extend_from_slice(text[i]);
    piece(out, 0);
    out.extend_from_slice(lead[0].as_bytes());
    piece(out, 1);
    out.extend_from_slice(lead[1].as_bytes());
    piece(out, 2);
    escape(f.request, out);
    piece(out, 3);
    push_u64(out, u64::from(f.status));
    piece(out, 4);
    push_u64(out, f.sent);
    piece(out, 5);
    escape(f.referer, out);
    piece(out, 6);
    escape(f.user_agent, out);
    piece(out, 7);
    push_u64(out, f.us);
    piece(out, 8);
    push_u64(out, f.shard);
    piece(out, 9);
}

/// What comes before each field of a line (peer or time, time or peer, request, status,
/// bytes, referer, user agent, µs, shard) and after the last.
const COMBINED: [&[u8]; 10] = [b"", b" - - [", b"] \"", b"\" ", b" ", b" \"", b"\" \"", b"\" ", b" ", b"\n"];
const JSON: [&[u8]; 10] = [
    b"{\"time\":\"",
    b"\",\"remote\":\"",
    b"\",\"request\":\"",
    b"\",\"status\":",
    b",\"bytes\":",
    b",\"referer\":\"",
    b"\",\"user_agent\":\"",
    b"\",\"us\":",
    b",\"shard\":",
    b"}\n",
];

/// A byte that goes into either format as it is.
fn plain(b: u8) -> bool {
    b != b'"' && b != b'\\' && (0x20..0x7f).contains(&b)
}

/// `fmt::Write` over a byte buffer (every write here is ASCII or UTF-8 text).
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn out_str(out: &mut Vec<u8>) -> Bytes<'_> {
    Bytes(out)
}

/// As nginx escapes a logged field: `"`, `\`, controls and bytes above 0x7e as `\xHH`;
/// an empty one is `-`.
fn escape_clf(v: &[u8], out: &mut Vec<u8>) {
    if v.is_empty() {
        out.push(b'-');
    }
    if v.iter().all(|&b| plain(b)) {
        return out.extend_from_slice(v);
    }
    for &b in v {
        if !plain(b) {
            let _ = write!(out_str(out), "\\x{b:02X}");
        } else {
            out.push(b);
        }
    }
}

/// A JSON string's content: `"`, `\` and controls escaped; other bytes above 0x7e as
/// `\u00HH` (the log stays valid UTF-8 whatever the client sent).
fn escape_json(v: &[u8], out: &mut Vec<u8>) {
    if v.iter().all(|&b| plain(b)) {
        return out.extend_from_slice(v);
    }
    for &b in v {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..0x7f => out.push(b),
            _ => {
                let _ = write!(out_str(out), "\\u{b:04x}");
            }
        }
    }
}

/// `28/Nov/2026:15:33:19 +0000`
fn clf_time(secs: u64) -> String {
    let t = Civil::of(secs);
    let month = t.month_name();
    format!("{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000", t.day, t.year, t.hour, t.minute, t.second)
}

/// `2026-11-28T15:33:19Z`
fn iso_time(secs: u64) -> String {
    let t = Civil::of(secs);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, len: u64, request: &[u8]) -> LogRecord {
        LogRecord::new(status, len, request, b"http://r/", b"ua \"x\"")
    }

    #[test]
    fn a_line_when_the_last_byte_goes_and_one_for_what_was_cut() {
        let mut log = AccessLog::new(LogFormat::Combined, 3);
        log.opened(0, "10.0.0.1:5555".parse().ok());
        log.queued(0, answered(200, 100, b"GET / HTTP/1.1"), 1_000, 1_796_393_403);
        log.queued(0, answered(404, 50, b"GET /\xff HTTP/1.1"), 1_000, 1_796_393_403);
        log.sent(0, 99, 2_000);
        assert!(log.buf.is_empty(), "a line before the response is whole");
        log.sent(0, 11, 2_500);
        log.closed(0, 3_000);
        let text = String::from_utf8(log.buf.clone()).unwrap();
        assert_eq!(
            text,
            "10.0.0.1 - - [04/Dec/2026:14:10:03 +0000] \"GET / HTTP/1.1\" 200 100 \"http://r/\" \"ua \\x22x\\x22\" 1500 3\n\
             10.0.0.1 - - [04/Dec/2026:14:10:03 +0000] \"GET /\\xFF HTTP/1.1\" 404 10 \"http://r/\" \"ua \\x22x\\x22\" 2000 3\n"
        );
    }

    #[test]
    fn json_lines_are_json() {
        let mut log = AccessLog::new(LogFormat::Json, 0);
        log.opened(0, None);
        log.queued(0, answered(200, 5, b"GET /\x01\"q\" HTTP/1.1"), 0, 0);
        log.sent(0, 5, 7);
        let text = String::from_utf8(log.buf).unwrap();
        assert_eq!(
            text,
            "{\"time\":\"1970-01-01T00:00:00Z\",\"remote\":\"\",\"request\":\"GET /\\u0001\\\"q\\\" HTTP/1.1\",\
             \"status\":200,\"bytes\":5,\"referer\":\"http://r/\",\"user_agent\":\"ua \\\"x\\\"\",\"us\":7,\"shard\":0}\n"
        );
    }
}
