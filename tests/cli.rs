mod common;

use common::TempDir;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

for_each_backend!(
    banner_and_sigterm_stop_master_and_workers,
    target_conns_is_checked_against_capacity,
    the_pid_file_holds_the_masters_pid_until_it_exits,
    cpu_affinity_pins_as_asked_or_not_at_all,
);

const BIN: &str = env!("CARGO_BIN_EXE_c10k-server");

struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Wait for `child` to exit within `limit`; kill it (and fail) if it does not.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            std::thread::sleep(Duration::from_millis(500));
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run the binary with `args` and collect its exit status and output; it must exit by
/// itself within 10 s.
fn run(args: &[&str]) -> Outcome {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start c10k-server");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_bounded(&mut child, Duration::from_secs(10), &format!("c10k-server {args:?}"));
    Outcome { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() }
}

/// Exactly one line on stderr, starting with `c10k-server:`; returns it.
fn one_stderr_line(o: &Outcome, args: &[&str]) -> String {
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: stderr should be one line, was {:?}", o.stderr);
    assert!(o.stderr.ends_with('\n'), "{args:?}: stderr line not terminated: {:?}", o.stderr);
    assert!(lines[0].starts_with("c10k-server:"), "{args:?}: {:?}", lines[0]);
    lines[0].to_string()
}

fn root_dir() -> TempDir {
    let root = TempDir::new("cli");
    root.write("index.html", "hi\n");
    root
}

#[test]
fn help_lists_the_flags() {
    let o = run(&["--help"]);
    assert!(o.status.success(), "--help: {:?}, stderr {:?}", o.status, o.stderr);
    for flag in ["--listen", "--root", "--shards", "--backend"] {
        assert!(o.stdout.contains(flag), "--help does not mention {flag}:\n{}", o.stdout);
    }
}

#[test]
fn version_exits_zero() {
    let o = run(&["--version"]);
    assert!(o.status.success(), "--version: {:?}, stderr {:?}", o.status, o.stderr);
    assert!(o.stdout.contains(env!("CARGO_PKG_VERSION")), "--version printed {:?}", o.stdout);
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let root = root_dir();
    let root_s = root.path().display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["--shards", "0"], "--shards"),
        (&["--shards", "zero"], "--shards"),
        (&["--listen", "nonsense"], "--listen"),
        (&["--backend", "foo"], "foo"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for &(bad, names) in cases {
        // Everything else valid, so that only the argument under test is wrong.
        let mut args: Vec<&str> = Vec::new();
        if !bad.contains(&"--listen") {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        args.extend(["--root", &root_s]);
        args.extend_from_slice(bad);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {:?}, stderr {:?}", o.status, o.stderr);
        let line = one_stderr_line(&o, bad);
        assert!(line.contains(names), "{bad:?}: message {line:?} does not name {names:?}");
        assert!(o.stdout.is_empty(), "{bad:?}: stdout {:?}", o.stdout);
    }
}

#[test]
fn missing_root_fails() {
    let gone = TempDir::new("cli-gone");
    let missing = gone.path().join("does-not-exist");
    let missing_s = missing.display().to_string();
    let args = ["--listen", "127.0.0.1:0", "--shards", "1", "--root", &missing_s];
    let o = run(&args);
    assert!(!o.status.success(), "{:?}", o.status);
    let line = one_stderr_line(&o, &args);
    assert!(line.contains("--root"), "{line:?}");
}

#[test]
fn address_in_use_fails() {
    let root = root_dir();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let root_s = root.path().display().to_string();
    let args = ["--listen", &addr, "--shards", "1", "--root", &root_s];
    let o = run(&args);
    assert!(!o.status.success(), "{:?}", o.status);
    let line = one_stderr_line(&o, &args);
    // The cause once, and the way to pass another address as the person passed this one:
    // under `make run` that is LISTEN=, not --listen.
    assert_eq!(line.matches("in use").count(), 1, "{line:?}");
    let under_make = std::env::var_os("MAKELEVEL").is_some();
    assert!(line.contains(if under_make { "pass LISTEN=ADDR:PORT" } else { "pass --listen ADDR:PORT" }), "{line:?}");
    let other = Command::new(BIN)
        .args(args)
        .env_remove("MAKELEVEL")
        .envs(if under_make { vec![] } else { vec![("MAKELEVEL", "1")] })
        .output()
        .unwrap();
    let other = String::from_utf8_lossy(&other.stderr);
    assert!(other.contains(if under_make { "pass --listen ADDR:PORT" } else { "pass LISTEN=ADDR:PORT" }), "{other:?}");
    drop(holder);
}

/// Kills the child on drop unless it was reaped.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            std::thread::sleep(Duration::from_millis(500));
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn banner_and_sigterm_stop_master_and_workers() {
    let root = root_dir();
    let root_s = root.path().display().to_string();
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--shards", "2", "--root", &root_s, "--backend", &common::backend()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start c10k-server");
    let mut guard = Guard(Some(child));
    let rx = common::stdout_lines(guard.0.as_mut().unwrap());

    // The address line and one line per shard, in whatever order they come.
    let mut lines = Vec::new();
    let mut addr = None;
    let mut shards: Vec<(usize, u32)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while addr.is_none() || shards.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("banner incomplete: {lines:?}"));
        lines.push(line.clone());
        if let Some(rest) = common::text(&line).strip_prefix("listening on http://") {
            let a: std::net::SocketAddr = rest.split_whitespace().next().unwrap().parse().unwrap();
            assert_eq!(a.ip().to_string(), "127.0.0.1", "{line:?}");
            assert_ne!(a.port(), 0, "{line:?}");
            assert_eq!(shards.len(), 2, "the master says it listens once every shard serves: {lines:?}");
            addr = Some(a);
        } else if let Some((n, pid, backend)) = common::parse_shard_line(&line) {
            assert_eq!(backend, common::backend(), "{line:?}");
            shards.push((n, pid));
        }
    }
    shards.sort();
    assert_eq!(shards.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1], "{lines:?}");
    let master = guard.0.as_ref().unwrap().id();
    assert_ne!(shards[0].1, shards[1].1, "{lines:?}");
    for &(_, pid) in &shards {
        assert_ne!(pid, master, "a shard runs in its own process");
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "worker {pid} not running");
    }

    // It serves.
    let mut s = std::net::TcpStream::connect(addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    assert!(resp.starts_with(b"HTTP/1.1 200 "), "{:?}", String::from_utf8_lossy(&resp));

    kill(Pid::from_raw(master as i32), Signal::SIGTERM).unwrap();
    let mut child = guard.0.take().unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(15), "master after SIGTERM");
    assert_eq!(status.code(), Some(0), "master exit: {status:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    for &(n, pid) in &shards {
        let proc_dir = format!("/proc/{pid}");
        while std::path::Path::new(&proc_dir).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!std::path::Path::new(&proc_dir).exists(), "shard {n} (pid {pid}) outlived the master");
    }
}

/// `--backend auto` picks io_uring exactly where `--backend uring` can start on this host,
/// and epoll elsewhere, saying why.
#[test]
fn auto_prefers_uring_when_usable() {
    let root = root_dir();
    let root_s = root.path().display().to_string();
    // The explicit backend either serves or refuses at start with its reason.
    let start = |backend: &str| {
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--shards", "1", "--root", &root_s, "--backend", backend])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start c10k-server");
        let mut listening = None;
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        for line in std::io::BufRead::lines(stdout).map_while(Result::ok) {
            if common::text(&line).starts_with("listening on") {
                listening = Some(line);
                break;
            }
        }
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        (listening, String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (uring, refusal) = start("uring");
    let (auto, said) = start("auto");
    let auto = auto.unwrap_or_else(|| panic!("auto did not start: {said}"));
    match uring {
        Some(_) => assert!(auto.contains("backend uring"), "uring serves here, yet auto chose: {auto}\n{said}"),
        None => {
            assert!(auto.contains("backend epoll"), "uring refused ({refusal}), yet auto chose: {auto}");
            assert!(said.contains("io_uring unusable ("), "auto fell back to epoll without saying why: {said}");
        }
    }
}

/// A target the host cannot hold stops the start with the limit and its fix; one it can
/// hold starts and the capacity line says how much more there is.
fn target_conns_is_checked_against_capacity() {
    let root = root_dir();
    let root_s = root.path().display().to_string();
    let args = ["--listen", "127.0.0.1:0", "--shards", "1", "--root", &root_s, "--target-conns", "100000000"];
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{:?}", o.stderr);
    let line = one_stderr_line(&o, &args);
    assert!(line.contains("--target-conns 100000000 is more than this host can hold"), "{line}");
    assert!(["RLIMIT_NOFILE", "fs.file-max", "fs.nr_open", "memory"].iter().any(|l| line.contains(l)), "{line}");
    assert!(o.stdout.is_empty(), "nothing starts: {:?}", o.stdout);

    let server = common::Server::start(root.path(), &["--target-conns", "100"]);
    let capacity =
        server.banner.iter().find(|l| common::text(l).starts_with("capacity: 1 shard × ")).expect("capacity line");
    assert!(capacity.contains("RLIMIT_NOFILE hard") && capacity.contains("bound by"), "{capacity}");
}

/// `--pid-file` holds the master's pid while it runs and is gone after a stop; a path in a
/// directory that does not exist stops the start with one line naming the directory.
fn the_pid_file_holds_the_masters_pid_until_it_exits() {
    let root = root_dir();
    let pid_file = root.path().join("run/c10k.pid");
    let root_arg = root.path().to_str().unwrap();
    let pid_arg = pid_file.to_str().unwrap();
    let backend = common::backend();
    let args =
        ["--listen", "127.0.0.1:0", "--root", root_arg, "--shards", "1", "--backend", &backend, "--pid-file", pid_arg];
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", o.stderr);
    let line = o.stderr.lines().last().unwrap_or_default();
    assert!(line.contains("the directory") && line.contains("/run does not exist"), "{line}");
    std::fs::create_dir_all(pid_file.parent().unwrap()).unwrap();
    let mut server = common::Server::start(root.path(), &["--pid-file", pid_file.to_str().unwrap()]);
    let written = std::fs::read_to_string(&pid_file).expect("the pid file once the server listens");
    assert_eq!(written, format!("{}\n", server.pid()));
    common::signal(server.pid(), Signal::SIGTERM);
    assert!(wait_bounded(&mut server.child, Duration::from_secs(15), "the stop").success());
    assert!(!pid_file.exists(), "the pid file outlived the server");
}

/// An access log in a directory that does not exist is named as the directory.
#[test]
fn a_missing_access_log_directory_is_named() {
    let root = root_dir();
    let log = root.path().join("no-such-dir/access.log");
    let root_s = root.path().display().to_string();
    let log_s = log.display().to_string();
    let args = ["--listen", "127.0.0.1:0", "--shards", "1", "--root", &root_s, "--access-log", &log_s];
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", o.stderr);
    let line = o.stderr.lines().last().unwrap_or_default();
    assert!(line.contains("the directory") && line.contains("no-such-dir does not exist"), "{line}");
}

/// `--cpu-affinity`: `off` leaves the shards free to run on any CPU; a list pins shard N
/// to its N-th entry (what the kernel allows it is read back from /proc).
fn cpu_affinity_pins_as_asked_or_not_at_all() {
    let root = root_dir();
    let allowed = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_string()
    };
    let all = allowed(std::process::id());
    let server = common::Server::start(root.path(), &["--shards", "2", "--cpu-affinity", "off"]);
    for pid in server.shard_pids() {
        assert_eq!(allowed(pid), all, "an unpinned shard may run on every CPU");
    }
    assert!(server.banner.iter().any(|l| common::text(l).starts_with("serving: core unpinned")), "{:?}", server.banner);
    drop(server);
    let server = common::Server::start(root.path(), &["--shards", "2", "--cpu-affinity", "0"]);
    for pid in server.shard_pids() {
        assert_eq!(allowed(pid), "0", "both shards on CPU 0, as listed");
    }
}
