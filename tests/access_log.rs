//! The access log through the real binary: 1,000 requests over two shards (200s, 404s,
//! 304s, one 400) give exactly 1,000 lines, each parsed back field by field; after a
//! rename and SIGUSR1 the next lines go to the new file and none is lost.

mod common;

use common::{Reader, Server, TempDir};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

for_each_backend!(
    every_response_is_one_line_and_a_reopen_loses_none,
    json_lines_log_cut_responses_and_survive_a_stop,
    responses_cut_by_a_forced_stop_are_logged,
);

const INDEX: &str = "<p>logged</p>\n";

/// One combined-format line, split into its fields.
#[derive(Debug)]
struct Line {
    remote: String,
    time: String,
    request: String,
    status: u16,
    bytes: u64,
    referer: String,
    user_agent: String,
    micros: u64,
    shard: usize,
}

/// `127.0.0.1 - - [28/Nov/2026:15:38:58 +0000] "GET / HTTP/1.1" 200 227 "-" "ua" 177 0`
fn parse(line: &str) -> Line {
    fn bad<T>(line: &str) -> T {
        panic!("not a combined line: {line:?}")
    }
    let fail = || bad(line);
    let (remote, rest) = line.split_once(" - - [").unwrap_or_else(fail);
    let (time, rest) = rest.split_once("] \"").unwrap_or_else(fail);
    let (request, rest) = rest.split_once("\" ").unwrap_or_else(fail);
    let (status, rest) = rest.split_once(' ').unwrap_or_else(fail);
    let (bytes, rest) = rest.split_once(" \"").unwrap_or_else(fail);
    let (referer, rest) = rest.split_once("\" \"").unwrap_or_else(fail);
    let (user_agent, rest) = rest.split_once("\" ").unwrap_or_else(fail);
    let (micros, shard) = rest.split_once(' ').unwrap_or_else(fail);
    assert!(time.len() == 26 && time.ends_with(" +0000"), "{line:?}");
    Line {
        remote: remote.into(),
        time: time.into(),
        request: request.into(),
        status: status.parse().unwrap_or_else(|_| bad(line)),
        bytes: bytes.parse().unwrap_or_else(|_| bad(line)),
        referer: referer.into(),
        user_agent: user_agent.into(),
        micros: micros.parse().unwrap_or_else(|_| bad(line)),
        shard: shard.parse().unwrap_or_else(|_| bad(line)),
    }
}

/// The file's lines once it has `n` (lines are written once a turn, so they lag a little).
fn lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n || Instant::now() > deadline {
            assert!(text.is_empty() || text.ends_with('\n'), "a line cut short");
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `count` requests on one keep-alive connection (with `Referer` and `User-Agent`), the
/// statuses read back.
fn keepalive_batch(server: &Server, targets: &[String], etag: &str) -> Vec<u16> {
    let mut s = server.connect();
    let mut raw = String::new();
    for t in targets {
        let conditional = if t == "/index.html#304" { format!("If-None-Match: {etag}\r\n") } else { String::new() };
        let path = t.trim_end_matches("#304");
        raw += &format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nReferer: http://ref/\r\nUser-Agent: test \"ua\"\r\n{conditional}\r\n"
        );
    }
    s.write_all(raw.as_bytes()).unwrap();
    let mut reader = Reader::new(s.try_clone().unwrap());
    targets.iter().map(|_| reader.response(false).expect("a response").status).collect()
}

fn every_response_is_one_line_and_a_reopen_loses_none() {
    let root = TempDir::new("access-log");
    root.write("index.html", INDEX);
    let logs = TempDir::new("access-log-files");
    let path = logs.path().join("access.log");
    let path_s = path.display().to_string();
    let server = Server::start(root.path(), &["--shards", "2", "--access-log", &path_s]);
    let etag = server.get("GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let etag = etag.header("ETag").expect("ETag").to_string();

    // 1 + 20 × 48 + 38 + 1 = 1,000 requests.
    let mut batch: Vec<String> = vec!["/index.html".to_string(); 45];
    batch.extend(["/missing".to_string(), "/gone".to_string(), "/index.html#304".to_string()]);
    let mut statuses = vec![200];
    for _ in 0..20 {
        statuses.extend(keepalive_batch(&server, &batch, &etag));
    }
    for _ in 0..38 {
        statuses.push(server.get("GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status);
    }
    let mut bad = TcpStream::connect(server.addr).unwrap();
    bad.write_all(b"GET / HTTP/1.1 extra\r\n\r\n").unwrap();
    statuses.push(Reader::new(bad).response(false).expect("400").status);
    assert_eq!(statuses.len(), 1_000);

    let logged: Vec<Line> = lines(&path, 1_000).iter().map(|l| parse(l)).collect();
    assert_eq!(logged.len(), 1_000, "one line per response");
    let count = |status| logged.iter().filter(|l| l.status == status).count();
    let sent = |status| statuses.iter().filter(|&&s| s == status).count();
    for status in [200, 304, 404, 400] {
        assert_eq!(count(status), sent(status), "{status}");
    }
    assert_eq!((count(200), count(304), count(404), count(400)), (939, 20, 40, 1));
    let ok = logged.iter().find(|l| l.status == 200 && l.referer == "http://ref/").expect("a 200 with its Referer");
    assert_eq!((ok.request.as_str(), ok.user_agent.as_str()), ("GET /index.html HTTP/1.1", "test \\x22ua\\x22"));
    assert!(logged.iter().all(|l| l.remote == "127.0.0.1" && l.micros < 60_000_000), "{:?}", logged[0]);
    // Every 200 is the same response, kept alive or closed (`Connection: close\r\n` more).
    let lens: Vec<u64> = logged.iter().filter(|l| l.status == 200).map(|l| l.bytes).collect();
    let (short, long) = (*lens.iter().min().unwrap(), *lens.iter().max().unwrap());
    assert_eq!(long - short, "Connection: close\r\n".len() as u64, "{short} {long}");
    assert!(lens.iter().all(|&n| n == short || n == long) && short > INDEX.len() as u64, "{lens:?}");
    let refused = logged.iter().find(|l| l.status == 400).unwrap();
    assert_eq!((refused.request.as_str(), refused.referer.as_str()), ("GET / HTTP/1.1 extra", "-"));
    let shards: std::collections::BTreeSet<usize> = logged.iter().map(|l| l.shard).collect();
    assert_eq!(shards, [0, 1].into(), "both shards log");
    assert!(!logged[0].time.is_empty());

    // logrotate: move the file, SIGUSR1 the master, every shard reopens.
    let moved = logs.path().join("access.log.1");
    std::fs::rename(&path, &moved).unwrap();
    common::signal(server.pid(), nix::sys::signal::Signal::SIGUSR1);
    for _ in 0..2 {
        server.wait_line(Duration::from_secs(5), |l| l.text == "access log reopened");
    }
    for _ in 0..100 {
        assert_eq!(server.get("GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status, 200);
    }
    assert_eq!(lines(&path, 100).len(), 100, "the new file has the lines since the reopen");
    assert_eq!(lines(&moved, 1_000).len(), 1_000, "the moved file keeps its lines, none lost");
}

/// JSON lines: a download the client abandons is logged with the bytes that went, not its
/// length; lines of responses answered just before SIGTERM are in the file after the exit.
fn json_lines_log_cut_responses_and_survive_a_stop() {
    use std::io::Read;
    const BIG: usize = 32 << 20;
    let root = TempDir::new("access-log-json");
    root.write("index.html", INDEX);
    root.write("big.bin", vec![b'b'; BIG]);
    let logs = TempDir::new("access-log-json-files");
    let path = logs.path().join("access.json");
    let path_s = path.display().to_string();
    let mut server = Server::start(root.path(), &["--access-log", &path_s, "--access-log-format", "json"]);
    let mut cut = server.connect();
    cut.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nUser-Agent: \\\"q\"\r\n\r\n").unwrap();
    let mut first = vec![0u8; 1 << 20];
    cut.read_exact(&mut first).unwrap();
    drop(cut);
    for _ in 0..5 {
        assert_eq!(server.get("GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status, 200);
    }
    common::signal(server.pid(), nix::sys::signal::Signal::SIGTERM);
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"))).collect();
    assert_eq!(lines.len(), 6, "{text}");
    let big = lines.iter().find(|l| l["request"] == "GET /big.bin HTTP/1.1").expect("the cut download's line");
    let sent = big["bytes"].as_u64().unwrap();
    assert_eq!(big["status"], 200);
    assert!((1 << 20) <= sent && sent < BIG as u64, "bytes that went, not the length: {sent}");
    assert_eq!(big["user_agent"], "\\\"q\"", "escaped in the file, the same string when parsed");
    assert_eq!(lines.iter().filter(|l| l["request"] == "GET /index.html HTTP/1.1" && l["status"] == 200).count(), 5);
    assert!(
        lines
            .iter()
            .all(|l| l["shard"] == 0 && l["us"].is_u64() && l["time"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
}

/// A stop that cannot wait (SIGQUIT, or `--shutdown-timeout` running out) cuts the
/// responses in flight: each is still logged, with the bytes that went.
fn responses_cut_by_a_forced_stop_are_logged() {
    use std::io::Read;
    const BIG: usize = 32 << 20;
    let root = TempDir::new("access-log-forced");
    root.write("big.bin", vec![b'b'; BIG]);
    let logs = TempDir::new("access-log-forced-files");
    for (stop, extra) in [("SIGQUIT", vec![]), ("timeout", vec!["--shutdown-timeout", "1"])] {
        let path = logs.path().join(format!("{stop}.json"));
        let path_s = path.display().to_string();
        let mut args = vec!["--access-log", &path_s, "--access-log-format", "json"];
        args.extend_from_slice(&extra);
        let mut server = Server::start(root.path(), &args);
        // A download the client stops reading: it is in flight when the stop comes.
        let mut stalled = server.connect();
        stalled.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut first = vec![0u8; 1 << 20];
        stalled.read_exact(&mut first).unwrap();
        let signal =
            if stop == "SIGQUIT" { nix::sys::signal::Signal::SIGQUIT } else { nix::sys::signal::Signal::SIGTERM };
        common::signal(server.pid(), signal);
        assert_eq!(server.child.wait().unwrap().code(), Some(0), "{stop}");
        let text = std::fs::read_to_string(&path).unwrap();
        let line: serde_json::Value = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .find(|l: &serde_json::Value| l["request"] == "GET /big.bin HTTP/1.1")
            .unwrap_or_else(|| panic!("{stop}: no line for the cut download in {text:?}"));
        let sent = line["bytes"].as_u64().unwrap();
        assert!((1 << 20) <= sent && sent < BIG as u64, "{stop}: the bytes that went, not the length: {sent}");
        drop(stalled);
    }
}
