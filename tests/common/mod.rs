//! Shared harness for integration tests: the real binary on an ephemeral port, a fixture
//! site in a temporary directory, raw TCP requests and a strict response reader (`http`),
//! its log lines (`log_lines`), `/metrics` parsed (`prometheus`), and HTTPS (`tls`).
#![allow(dead_code)]

mod http;
mod log_lines;
mod prometheus;
pub mod tls;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use {
    http::{Reader, Response, is_closed, read_head},
    log_lines::{LogLine, output_lines, parse_log, parse_shard_line, stdout_lines, text},
    prometheus::{Metrics, metrics},
};

use std::cell::Cell;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_c10k-server");

thread_local! {
    /// The backend of the test running on this thread (each test has its own thread).
    static BACKEND: Cell<Option<&'static str>> = const { Cell::new(None) };
    /// Or the `c10k-models` model its servers run.
    static MODEL: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// The models binary: another package of the workspace, so Cargo names no path for it
/// here; `cargo test --workspace` (`make test`) builds it beside this one.
/// A test run of this package alone (`cargo test --test X`) does not rebuild it, so one
/// older than its sources is refused rather than tested.
pub fn models_bin() -> PathBuf {
    let bin = Path::new(BIN).with_file_name("c10k-models");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified());
    let newest =
        ["models/src", "src"].iter().filter_map(|d| newest_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join(d))).max();
    match built {
        Ok(built) if newest.is_none_or(|n| n <= built) => bin,
        _ => panic!(
            "{} is missing or older than its sources: run `cargo build -p c10k-models` (make test does)",
            bin.display()
        ),
    }
}

/// The latest modification time of a file under `dir`.
fn newest_in(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            if meta.is_dir() { newest_in(&e.path()) } else { meta.modified().ok() }
        })
        .max()
}

/// Run `test` with its servers being `c10k-models --model MODEL`.
pub fn with_model(model: &'static str, test: fn()) {
    MODEL.with(|m| m.set(Some(model)));
    test();
}

/// The backend the current test runs its servers on.
pub fn backend() -> String {
    BACKEND.with(Cell::get).expect("a test that starts a server must be listed in for_each_backend!").to_string()
}

/// Run `test` with its servers on `backend`.
pub fn with_backend(backend: &'static str, test: fn()) {
    BACKEND.with(|b| b.set(Some(backend)));
    test();
}

/// Run each listed test (a plain `fn()`, without `#[test]`) once per backend, as
/// `epoll::NAME` and `uring::NAME`, so that a plain `cargo test` covers both. A test left
/// out of the list is dead code, which the build refuses.
#[macro_export]
macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod epoll {
            $(#[test] fn $test() { super::common::with_backend("epoll", super::$test) })*
        }
        mod uring {
            $(#[test] fn $test() { super::common::with_backend("uring", super::$test) })*
        }
    };
}

/// Run each listed test once per model of `c10k-models`, as `model_iterative::NAME` and
/// so on, through the same `Server` as the backends: the tests before `;` on every model,
/// those after it (they hold two connections at once) on every model but `iterative`,
/// which serves one connection at a time by design.
#[macro_export]
macro_rules! for_each_model {
    ($($test:ident),* $(,)? $(; $($concurrent:ident),* $(,)?)?) => {
        pub mod model_iterative {
            $(#[test] fn $test() { super::common::with_model("iterative", super::$test) })*
        }
        $crate::for_each_model!(@others [$($test,)* $($($concurrent,)*)?]
            model_fork "fork", model_thread "thread", model_coroutine "coroutine", model_busy_poll "busy-poll",
            model_select "select", model_poll "poll", model_epoll "epoll", model_uring "uring");
    };
    (@others [$($test:ident,)*] $module:ident $model:literal $(, $more:ident $name:literal)*) => {
        pub mod $module {
            $(#[test] fn $test() { super::common::with_model($model, super::$test) })*
        }
        $crate::for_each_model!(@others [$($test,)*] $($more $name),*);
    };
    (@others [$($test:ident,)*]) => {};
}

/// A fresh, empty directory under the target dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "c10k-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Write `rel` (creating parent directories) with `contents`.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server; killed (SIGTERM, then SIGKILL) on drop.
pub struct Server {
    pub child: Child,
    /// The plain listener's address; with only TLS listeners, the last HTTPS one.
    pub addr: SocketAddr,
    /// The HTTPS listeners' addresses (`--tls-listen`), in the order given.
    pub tls_addrs: Vec<SocketAddr>,
    /// Lines the server printed (stdout and stderr) before it was ready.
    pub banner: Vec<String>,
    /// The lines it prints from then on, stdout and stderr (which also goes to the test's
    /// stderr as before).
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// Start the binary with `--listen 127.0.0.1:0 --root ROOT --shards 1` plus `extra`,
    /// and wait for its `listening on` line. With `--tls-listen` in `extra`, no `--listen`
    /// is added (pass `--listen 127.0.0.1:0` too for both), and `tls_addrs` has the HTTPS
    /// addresses. With `extra` starting `--config FILE`, neither `--listen` nor `--root`
    /// is added: the file's stand (it must have a plain listener).
    pub fn start(root: &Path, extra: &[&str]) -> Server {
        Self::start_with_nofile(root, extra, None)
    }

    /// `start`, with RLIMIT_NOFILE (soft and hard) set to `nofile` for the server.
    pub fn start_with_nofile(root: &Path, extra: &[&str], nofile: Option<u32>) -> Server {
        Self::start_with(root, extra, nofile, &[])
    }

    /// `start_with_nofile`, with `env` added to the server's environment.
    pub fn start_with(root: &Path, extra: &[&str], nofile: Option<u32>, env: &[(&str, &str)]) -> Server {
        if let Some(model) = MODEL.with(Cell::get) {
            assert!(nofile.is_none() && env.is_empty(), "a model takes no limits or environment");
            return Self::start_model(model, root, extra);
        }
        let tls_only = extra.contains(&"--tls-listen") && !extra.contains(&"--listen");
        // `--config FILE` first: the file's listeners and root stand.
        let from_file = extra.first() == Some(&"--config");
        let mut args: Vec<String> = match (from_file, tls_only) {
            (true, _) => Vec::new(),
            (false, true) => vec!["--root".into()],
            (false, false) => vec!["--listen".into(), "127.0.0.1:0".into(), "--root".into()],
        };
        if !from_file {
            args.push(root.display().to_string());
        }
        if !extra.contains(&"--backend") {
            args.extend(["--backend".into(), backend()]);
        }
        if !extra.contains(&"--shards") {
            args.extend(["--shards".into(), "1".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let shards: usize =
            args.iter().skip_while(|a| *a != "--shards").nth(1).and_then(|n| n.parse().ok()).unwrap_or(1);
        let mut command = match nofile {
            None => Command::new(BIN),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), BIN]);
                sh
            }
        };
        command.envs(env.iter().copied()).args(&args);
        // The master's own line, `TIME c10k-server[PID] master: listening on http://ADDR (…)`,
        // after one `listening on https://ADDR (TLS)` per TLS listener; with no plain one, the
        // last HTTPS line is the one that names the shards, `(TLS, N shards, backend B)`.
        let plain: fn(&str) -> Option<String> = |line| {
            text(line).strip_prefix("listening on http://").map(|rest| rest.split_whitespace().next().unwrap().into())
        };
        let last_tls: fn(&str) -> Option<String> = |line| {
            let rest = text(line).strip_prefix("listening on https://")?.to_string();
            rest.contains(" shard").then(|| rest.split_whitespace().next().unwrap().into())
        };
        let (mut server, deadline) = Self::spawn_until_listening(command, if tls_only { last_tls } else { plain });
        server.tls_addrs = server
            .banner
            .iter()
            .filter_map(|l| text(l).strip_prefix("listening on https://")?.split_whitespace().next()?.parse().ok())
            .collect();
        let (banner, rx) = (&mut server.banner, &server.lines);
        // Each shard says it serves before the master says it listens.
        while banner.iter().filter(|l| parse_shard_line(l).is_some()).count() < shards {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => banner.push(line),
                Err(_) => panic!("shards did not all start; printed so far: {banner:?}"),
            }
        }
        server
    }

    /// `c10k-models --model MODEL --listen 127.0.0.1:0 --root ROOT` plus `extra`; ready
    /// at its `listening on` line.
    pub fn start_model(model: &str, root: &Path, extra: &[&str]) -> Server {
        let mut command = Command::new(models_bin());
        command.args(["--model", model, "--listen", "127.0.0.1:0", "--root"]).arg(root).args(extra);
        // `c10k-models[PID] MODEL: listening on http://ADDR`.
        let address_in = |line: &str| line.split_once("listening on http://").map(|(_, addr)| addr.trim().into());
        Self::spawn_until_listening(command, address_in).0
    }

    /// Start `command` with its stdout and stderr read into `lines`, and wait (20 s at most,
    /// the deadline returned) for the line in which `address_in` finds the address.
    fn spawn_until_listening(mut command: Command, address_in: fn(&str) -> Option<String>) -> (Server, Instant) {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the server");
        let lines = output_lines(&mut child);
        let mut banner = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                let _ = child.kill();
                panic!("{command:?} did not print its address; printed so far: {banner:?}")
            };
            banner.push(line.clone());
            if let Some(addr) = address_in(&line) {
                break addr.parse().unwrap();
            }
        };
        (Server { child, addr, tls_addrs: Vec::new(), banner, lines }, deadline)
    }

    /// The first line printed from now on whose log text satisfies `want`; panics after
    /// `limit`, listing what was printed instead.
    #[track_caller]
    pub fn wait_line(&self, limit: Duration, want: impl Fn(&LogLine) -> bool) -> LogLine {
        let line = self.wait_line_raw(limit, |l| parse_log(l).is_some_and(|l| want(&l)));
        parse_log(&line).unwrap()
    }

    /// The first line printed from now on that satisfies `want`, whatever its form; panics
    /// after `limit`, listing what was printed instead.
    #[track_caller]
    pub fn wait_line_raw(&self, limit: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no such line within {limit:?}; printed meanwhile: {seen:#?}"),
            }
        }
    }

    /// Every line printed from now until `until` (or the server's exit); each must be one
    /// whole log line, whichever of the server's processes wrote it.
    #[track_caller]
    pub fn lines_until(&self, until: Instant) -> Vec<LogLine> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
            out.push(parse_log(&line).unwrap_or_else(|| panic!("not one whole log line: {line:?}")));
        }
        out
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Send `raw` on a new connection and read every response until the server closes
    /// or `expect` responses have arrived.
    pub fn exchange(&self, raw: &[u8], expect: usize, head_only: bool) -> (Vec<Response>, TcpStream) {
        let mut s = self.connect();
        s.write_all(raw).unwrap();
        let mut r = Reader::new(s.try_clone().unwrap());
        let mut out = Vec::new();
        while out.len() < expect {
            match r.response(head_only) {
                Some(resp) => out.push(resp),
                None => break,
            }
        }
        (out, s)
    }

    /// One request on a new connection; the response.
    pub fn get(&self, raw: &str) -> Response {
        let head_only = raw.starts_with("HEAD ");
        let (mut v, _) = self.exchange(raw.as_bytes(), 1, head_only);
        v.pop().unwrap_or_else(|| panic!("no response to {raw:?}"))
    }
}

impl Server {
    /// The status listener's address, from the banner's `status on http://ADDR/` line.
    pub fn status_addr(&self) -> SocketAddr {
        self.banner
            .iter()
            .find_map(|l| text(l).strip_prefix("status on http://")?.split('/').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {:?}", self.banner))
    }

    /// The pid of each shard, from the banner, in shard order.
    pub fn shard_pids(&self) -> Vec<u32> {
        let mut shards: Vec<_> = self.banner.iter().filter_map(|l| parse_shard_line(l)).collect();
        shards.sort();
        shards.into_iter().map(|(_, pid, _)| pid).collect()
    }
}

/// `METHOD TARGET HTTP/1.1` with `Host: x` and `headers` (each `Name: value`).
pub fn request(method: &str, target: &str, headers: &[&str]) -> String {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r
}

/// Sockets `pid` holds open (its listener and its connections).
pub fn socket_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count()
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send `signal` to `pid` (a process the test started); panics if it cannot.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
        .unwrap_or_else(|e| panic!("{signal} to {pid}: {e}"));
}

/// Bytes that differ from position to position, so a lost or repeated piece shows.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i >> 16) as u8).collect()
}

/// A site with `small.txt` and a `big.bin` of `big` bytes (`pattern(big)`, returned).
pub fn download_site(tag: &str, big: usize) -> (TempDir, Vec<u8>) {
    let root = TempDir::new(tag);
    let body = pattern(big);
    root.write("big.bin", &body);
    root.write("small.txt", "small\n");
    (root, body)
}

/// Poll `what` every 20 ms for up to `limit`; whether it came true.
pub fn within(limit: Duration, mut what: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !what() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
