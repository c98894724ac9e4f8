#!/usr/bin/env python3
"""make loadtest: every scenario against each backend (and nginx with --compare), one run.

For each target a fresh server starts on a free loopback port; wrk (or c10k-load for the
held-connection scenario) drives it; the server's CPU (utime+stime of every worker, from
/proc, before and after) and RSS are read around each scenario. Prints a markdown table,
writes loadtest/results/latest.json and latest.csv.

Every scenario also runs against c10k-ceiling (loadtest/src/bin/ceiling.rs), the least-work
responder: an edge-triggered epoll loop per core that counts request terminators and writes
a precomputed response of the scenario's file, no parsing, no files. Each row's CPU per
request divided by the ceiling's in the same scenario (medians over the rounds) is the figure of merit
(`ratio to ceiling`, printed in a second table and kept as `cpu_ratio_to_ceiling`); the
reload and access-log scenarios are divided by the ceiling's `index c100`. --compare adds
nginx and lighttpd, configured to the same shape, and a third table of each server's
requests/s over the best peer's. DURATION=S shortens every scenario;
ONLY=regex keeps the scenarios whose name matches (when none does, it names them and exits 2,
writing nothing); SHARDS=N (default: CPUs); ROUNDS=N runs
each scenario N times, the servers alternating, and reports medians; BASELINE=path/to/an
older c10k-server runs it too, beside the current build, and prints the ratios of CPU per
request (current / baseline) per backend and scenario.

The reload scenario (`reload under load c100`, ONLY=reload) runs c10k-load, which counts
resets, early closes and truncated or wrong-length bodies as errors, while the runner sends
SIGHUP to the master about once a second; each reload must finish (the master's `reload:
generation N serving` line) and the load must see no error, or the run fails after the
report. Its CPU is the whole server's: the master, its live shards, and the shards it reaped
(its cutime+cstime). It runs against c10k-server builds that log reloads (not nginx, not an
older BASELINE).

The TLS scenarios (`tls ...`, ONLY='^tls') are loadtest/tls_bench.py's: see its docstring.
"""
import statistics
import csv, datetime, json, os, re, shutil, signal, socket, subprocess, sys, threading, time

import tls_bench  # the TLS scenarios (loadtest/tls_bench.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "loadtest", "results")
SITE = os.path.join(RESULTS, "site")
SERVER = os.path.join(ROOT, "target", "release", "c10k-server")
LOAD = os.path.join(ROOT, "target", "release", "c10k-load")
CEILING = os.path.join(ROOT, "target", "release", "c10k-ceiling")
PEERS = ("nginx", "lighttpd")
DURATION = int(os.environ.get("DURATION", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "1"))
BASELINE = os.environ.get("BASELINE")
SHARDS = int(os.environ.get("SHARDS", str(os.cpu_count() or 1)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# SIGHUP to the master through the run; see the docstring and run_reload.
RELOAD = "reload under load c100"
# index c100 again, every response written to an access log (c10k-server only): its cost
# is this row's CPU per request against index c100's.
ACCESS_LOG = "index c100 access log"
# Clients that pipeline requests and never read an answer: what each connection makes the
# server hold (RSS growth over the connections), plain and with the access log on and a
# 14 KB Referer and User-Agent in every request (c10k-server only: the others log nothing).
STALLED = "stalled pipelining c300"
STALLED_LOG = "stalled pipelining c300 access log"
# name, tool, path, connections, idle, pipeline
SCENARIOS = [
    ("index c100", "wrk", "/index.html", 100, 0, 1),
    (ACCESS_LOG, "wrk", "/index.html", 100, 0, 1),
    ("index c1000", "wrk", "/index.html", 1000, 0, 1),
    ("index c10000", "wrk", "/index.html", 10000, 0, 1),
    ("100KiB c100", "wrk", "/100k.bin", 100, 0, 1),
    ("1MiB c10", "wrk", "/1m.bin", 10, 0, 1),
    ("1MiB c100", "wrk", "/1m.bin", 100, 0, 1),
    ("index pipelined x16", "wrk", "/index.html", 100, 0, 16),
    ("idle 10000 + active 100", "c10k-load", "/index.html", 100, 10000, 1),
    (RELOAD, "c10k-load", "/index.html", 100, 0, 1),
    (STALLED, "stall", "/index.html", 300, 0, 0),
    (STALLED_LOG, "stall", "/index.html", 300, 0, 0),
] + tls_bench.SCENARIOS  # `tls ...`: c10k-server over HTTPS, and nginx, h2o and lighttpd with --compare

# wrk threads where not min(conns, 2): one client thread is what a single fast downloader
# looks like, and it shows a server that leaves its clients waiting.
WRK_THREADS = {"1MiB c10": 1}
# The ceiling's scenario each of these is divided by (the ceiling neither reloads nor logs).
REFERENCE = {RELOAD: "index c100", ACCESS_LOG: "index c100"}

# The server's lines, in both formats: `shard 0: pid 4242, core 0, backend epoll` and
# `listening on http://...` (older builds); `<time> c10k-server[4242] shard 0: serving: core 0,
# backend epoll, generation 1` and `<time> c10k-server[4200] master: listening on http://...`.
OLD_SHARD = re.compile(r"^shard (\d+): pid (\d+)\b")
NEW_SHARD = re.compile(r"^\S+ c10k-server\[(\d+)\] shard (\d+): serving: .*\bgeneration (\d+)")
LISTENING = re.compile(r"^(?:\S+ c10k-server\[\d+\] master: )?listening on http://\S+ \((\d+) shards?\b")
RELOADED = re.compile(r"\] master: reload: generation (\d+) serving \(pids ([\d, ]+)\)")
RELOAD_FAILED = re.compile(r"\] master: (?:reload failed|SIGHUP: .*ignored)")


def shard_line(line):
    """(index, pid) when `line` is a shard saying it serves, in either format."""
    if m := OLD_SHARD.match(line):
        return int(m.group(1)), int(m.group(2))
    if m := NEW_SHARD.match(line):
        return int(m.group(2)), int(m.group(1))
    return None


def make_site():
    if os.path.isdir(SITE):
        shutil.rmtree(SITE)
    shutil.copytree(os.path.join(ROOT, "html"), SITE)
    for name, size in (("100k.bin", 100 * 1024), ("1m.bin", 1 << 20)):
        with open(os.path.join(SITE, name), "wb") as f:
            f.write(bytes(i % 251 for i in range(size)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """A server under test: its worker pids, started fresh for each backend. `label` names
    it in the results (`epoll`, `uring@baseline`, `nginx`)."""

    def __init__(self, label, extra=(), path="/index.html"):
        kind, _, build = label.partition("@")
        self.kind, self.label, self.port = kind, label, free_port()
        self.reloads_logged = False
        if kind == "nginx":
            self.start_nginx()
        elif kind == "lighttpd":
            self.start_lighttpd()
        elif kind == "ceiling":
            self.proc = subprocess.Popen(
                [CEILING, "--listen", f"127.0.0.1:{self.port}", "--file", os.path.join(SITE, path.lstrip("/")),
                 "--threads", str(SHARDS)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            line = self.proc.stdout.readline()
            if "listening on" not in line:
                sys.exit(f"loadtest: c10k-ceiling did not start: {line}")
            self.pids = [self.proc.pid]
            self.log = [line]
            threading.Thread(target=self.read_log, daemon=True).start()
        else:
            binary = BASELINE if build == "baseline" else SERVER
            self.proc = subprocess.Popen(
                [binary, "--listen", f"127.0.0.1:{self.port}", "--root", SITE, "--shards", str(SHARDS),
                 "--backend", kind, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            # Until the master said how many shards listen and each of them said it serves
            # (older builds say `listening` first, newer ones last).
            lines, shards, pids = [], None, {}
            while shards is None or len(pids) < shards:
                line = self.proc.stdout.readline()
                if not line:
                    sys.exit(f"loadtest: c10k-server --backend {kind} did not start: {lines}")
                lines.append(line)
                if shard := shard_line(line):
                    pids[shard[0]] = shard[1]
                elif m := LISTENING.match(line):
                    shards = int(m.group(1))
            self.pids = [pids[i] for i in sorted(pids)]
            self.reloads_logged = any(NEW_SHARD.match(l) for l in lines)
            # Keep reading: the server never blocks on a full pipe, and reloads are seen.
            self.log = lines
            threading.Thread(target=self.read_log, daemon=True).start()
        wait_for_port(self.port)

    def read_log(self):
        for line in self.proc.stdout:
            self.log.append(line)

    def start_nginx(self):
        conf_dir = os.path.join(RESULTS, "nginx")
        os.makedirs(conf_dir, exist_ok=True)
        conf = os.path.join(conf_dir, "nginx.conf")
        mime = "/etc/nginx/mime.types"
        with open(conf, "w") as f:
            f.write(nginx_conf(conf_dir, f"""  {"include " + mime + ";" if os.path.exists(mime) else ""}
  server {{ listen 127.0.0.1:{self.port} reuseport; root {SITE}; }}
"""))
        stop_leftover_nginx(os.path.join(conf_dir, "nginx.pid"), conf)
        self.proc = subprocess.Popen(["nginx", "-c", conf], stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        self.pids = [int(p) for p in out.split()]

    def start_lighttpd(self):
        conf_dir = os.path.join(RESULTS, "lighttpd")
        os.makedirs(conf_dir, exist_ok=True)
        conf = os.path.join(conf_dir, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write(lighttpd_conf(conf_dir, self.port))
        # Its own session: lighttpd's master signals its whole process group when it stops.
        self.proc = subprocess.Popen(["lighttpd", "-D", "-f", conf], stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        time.sleep(0.5)
        # With server.max-worker the master forks the workers that serve.
        self.pids = sorted(children(self.proc.pid)) or [self.proc.pid]

    def cpu_seconds(self):
        total = 0
        for pid in self.pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def server_cpu_seconds(self):
        """utime+stime of the whole server while shards come and go: the master's own, its
        live children's, and the cutime+cstime of the children it has reaped. The children
        are listed again after the reads; a change (one reaped, so maybe counted twice, or
        one started) means read again."""
        master = self.proc.pid
        while True:
            kids = children(master)
            try:
                total = sum(sum(stat_fields(pid)[11:13]) for pid in kids)
            except (OSError, ValueError):
                continue  # one of them went away as it was read
            total += sum(stat_fields(master)[11:15])
            if children(master) == kids:
                return total / CLK_TCK

    def rss_bytes(self):
        total = 0
        for pid in self.pids:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        return total

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def nginx_conf(conf_dir, body):
    """nginx's configuration as every run has it (SHARDS workers, sendfile, keep-alive limits
    raised, open_file_cache, no access log; its pid file and error log in `conf_dir`), `body`
    (lines of the http block: types, TLS settings, the server) at the end of the http block."""
    return f"""worker_processes {SHARDS};
worker_rlimit_nofile 20000;
daemon off;
pid {conf_dir}/nginx.pid;
error_log {conf_dir}/error.log;
events {{ worker_connections 19000; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000; keepalive_timeout 75s;
  open_file_cache max=4096 inactive=60s; open_file_cache_valid 1s;
{body}}}
"""


def lighttpd_conf(conf_dir, port):
    """lighttpd's configuration as every run has it: SITE on 127.0.0.1:`port`, SHARDS
    workers, sendfile, keep-alive limits raised, its error log in `conf_dir`."""
    return f"""server.document-root = "{SITE}"
server.bind = "127.0.0.1"
server.port = {port}
server.max-worker = {SHARDS}
server.max-fds = 20000
server.max-connections = 9900
server.network-backend = "sendfile"
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 75
server.errorlog = "{conf_dir}/error.log"
mimetype.assign = (".html" => "text/html", ".css" => "text/css", ".bin" => "application/octet-stream")
"""


def stat_fields(pid):
    """/proc/PID/stat's fields after the name, as numbers (the state as 0): [1] ppid; [11:13]
    utime, stime; [13:15] cutime, cstime (of the children waited for)."""
    with open(f"/proc/{pid}/stat") as f:
        return [0] + [int(x) for x in f.read().rsplit(")", 1)[1].split()[1:]]


def children(ppid):
    """The pids whose parent is `ppid`, from a walk of /proc."""
    kids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if stat_fields(int(entry))[1] == ppid:
                    kids.add(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def stop_leftover_nginx(pid_file, conf):
    """An nginx this script started in an interrupted run, found by its own pid file and
    checked to run our configuration: only that one is stopped, never another nginx."""
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            ours = conf.encode() in f.read()
    except (OSError, ValueError):
        return
    if ours:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not os.path.exists(f"/proc/{pid}"):
                return
            time.sleep(0.05)


def wait_for_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"loadtest: nothing listens on port {port}")


def to_us(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return round(float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]) if m else None


def run_wrk(port, path, conns, pipeline, threads=None):
    extra = ["-s", os.path.join(ROOT, "loadtest", "pipeline.lua")] if pipeline > 1 else []
    return wrk(f"http://127.0.0.1:{port}{path}", conns, threads or min(conns, 2), extra)


def wrk(url, conns, threads, extra=(), env=None, timeout=None):
    """wrk for DURATION s against `url` (`extra`: its options before the URL): requests, p50
    and p99 in µs (None where it printed none), errors. subprocess.TimeoutExpired past `timeout`."""
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{DURATION}s", "--latency", "--timeout", "10s", *extra]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, env=env, timeout=timeout).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1)) if "requests in" in out else 0
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return requests, to_us(p50.group(1)) if p50 else None, to_us(p99.group(1)) if p99 else None, errors


# c10k-load's line (on stderr, within 100 ms) once every idle connection is open.
IDLE_READY = re.compile(r"^c10k-load: idle ready (\d+) in ([\d.]+) s$")


def run_load(target, path, conns, idle):
    """c10k-load holding `idle` connections; returns its numbers and the server's RSS growth
    per held connection, sampled the moment c10k-load says they are all open (None, with a
    note, when they never all were within the run)."""
    report = os.path.join(RESULTS, "c10k-load.json")
    cmd = [LOAD, "--url", f"http://127.0.0.1:{target.port}{path}", "--conns", str(conns), "--idle", str(idle),
           "--duration", str(DURATION), "--json", report]
    rss0 = target.rss_bytes()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rss_per_idle = None
    ready = None
    # Its stderr is read to the end (progress lines and all), so it never blocks on the pipe.
    for line in proc.stderr:
        if ready is None and idle and (m := IDLE_READY.match(line.strip())):
            rss_per_idle = max(0, target.rss_bytes() - rss0) // idle
            ready = float(m.group(2))
            print(f"loadtest: {target.label} idle population {idle:,} open in {ready:.2f} s; RSS sampled then",
                  file=sys.stderr)
    proc.wait()
    if idle and ready is None:
        print(f"loadtest: {target.label} idle population of {idle:,} never all open within {DURATION} s; "
              "RSS per idle connection n/a (give it more DURATION)", file=sys.stderr)
    with open(report) as f:
        r = json.load(f)
    errors = sum(r["errors"].values()) if isinstance(r.get("errors"), dict) else int(r.get("errors", 0))
    return r["requests"], r.get("p50_us"), r.get("p99_us"), errors, rss_per_idle


def run_reload(target, path, conns):
    """c10k-load (closed loop, every body checked against the file's size) while the master
    gets SIGHUP at even steps through the run, about once a second and at least twice; each
    reload is waited for before the next. Returns c10k-load's numbers, its errors by kind,
    the reloads that finished and what went wrong with the others."""
    report = os.path.join(RESULTS, "c10k-load.json")
    size = os.path.getsize(os.path.join(SITE, path.lstrip("/")))
    cmd = [LOAD, "--url", f"http://127.0.0.1:{target.port}{path}", "--conns", str(conns),
           "--duration", str(DURATION), "--expect-bytes", str(size), "--json", report]
    hups = max(2, DURATION - 1)
    step = DURATION / (hups + 1)
    reloads, problems = 0, []
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for i in range(1, hups + 1):
        time.sleep(max(0.0, start + i * step - time.monotonic()))
        if proc.poll() is not None or time.monotonic() > start + DURATION - step / 2:
            problems.append(f"SIGHUP {i} of {hups} not sent: the load had ended (reloads too slow)")
            break
        seen = len(target.log)
        os.kill(target.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while True:
            new = target.log[seen:]
            if any(RELOADED.search(l) for l in new):
                reloads += 1
                break
            if failed := next((l for l in new if RELOAD_FAILED.search(l)), None):
                problems.append(f"SIGHUP {i}: {failed.strip()}")
                break
            if time.monotonic() > deadline:
                problems.append(f"SIGHUP {i}: no reload within 5 s")
                break
            time.sleep(0.01)
    proc.wait()
    with open(report) as f:
        r = json.load(f)
    kinds = {k: n for k, n in r["errors"].items() if n}
    return r["requests"], r.get("p50_us"), r.get("p99_us"), sum(r["errors"].values()), kinds, reloads, problems


# What each stalled client sends before it stops (if the sockets take that much).
STALL_BYTES = 1_200_000


def run_stall(target, path, conns, headers=""):
    """`conns` connections each send up to STALL_BYTES of pipelined GETs and read nothing;
    once every socket is full (or has sent it all) and the server had a second to take what
    it will, the server's RSS growth per connection. The sockets close afterwards unread."""
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()
    chunk = request * max(1, 65536 // len(request))
    rss0 = target.rss_bytes()
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", target.port))
        s.setblocking(False)
        socks.append([s, 0])
    deadline = time.monotonic() + max(DURATION, 5)
    while time.monotonic() < deadline:
        progress = False
        for entry in socks:
            s, sent = entry
            if sent >= STALL_BYTES:
                continue
            try:
                entry[1] += s.send(chunk[: STALL_BYTES - sent])
                progress = True
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                entry[1] = STALL_BYTES  # closed by the server: it sends nothing more
        if not progress:
            time.sleep(0.2)
            if not any(_try_send(e, chunk) for e in socks):
                break
    time.sleep(1)
    per_conn = max(0, target.rss_bytes() - rss0) // conns
    sent = sum(e[1] for e in socks)
    for s, _ in socks:
        s.close()
    return per_conn, sent


def _try_send(entry, chunk):
    """One more send on a stalled client's socket; whether it took anything."""
    s, sent = entry
    if sent >= STALL_BYTES:
        return False
    try:
        n = s.send(chunk[: STALL_BYTES - sent])
    except OSError:
        return False
    entry[1] += n
    return n > 0


# Why the run fails, gathered over every run and reported after the results.
FAILURES = []


def measure(target, scenario):
    name, tool, path, conns, idle, pipeline = scenario
    if name == RELOAD:
        cpu0 = target.server_cpu_seconds()
        requests, p50, p99, errors, kinds, reloads, problems = run_reload(target, path, conns)
        cpu = target.server_cpu_seconds() - cpu0
        if errors:
            problems.insert(0, f"{errors} errors ({', '.join(f'{k} {n}' for k, n in kinds.items())})")
        log = os.path.join(RESULTS, f"reload-{target.label}.log")
        with open(log, "w") as f:
            f.writelines(target.log)
        FAILURES.extend(f"{target.label} {name}: {p} (server log: {log})" for p in problems)
        return {
            "backend": target.label, "scenario": name, "tool": tool, "connections": conns, "idle": idle,
            "pipeline": pipeline, "duration_s": DURATION, "requests": requests,
            "rps": round(requests / DURATION, 1), "p50_us": p50, "p99_us": p99, "errors": errors,
            "server_cpu_us_per_req": round(cpu * 1e6 / requests, 2) if requests else None,
            "server_rss_bytes_per_idle_conn": None, "reloads": reloads,
        }
    if tool == "stall":
        headers = ""
        if name == STALLED_LOG:
            long = "x" * 7000
            headers = f"Referer: http://{long}\r\nUser-Agent: {long}\r\n"
        per_conn, sent = run_stall(target, path, conns, headers)
        print(f"loadtest: {target.label} {name}: {sent / conns / 1e6:.2f} MB sent per connection, "
              f"{per_conn:,} B RSS per connection", file=sys.stderr)
        return {
            "backend": target.label, "scenario": name, "tool": tool, "connections": conns, "idle": idle,
            "pipeline": pipeline, "duration_s": DURATION, "requests": 0, "rps": 0, "p50_us": None,
            "p99_us": None, "errors": 0, "server_cpu_us_per_req": None, "server_rss_bytes_per_idle_conn": None,
            "server_rss_bytes_per_stalled_conn": per_conn,
        }
    cpu0 = target.cpu_seconds()
    if tool == "wrk":
        requests, p50, p99, errors = run_wrk(target.port, path, conns, pipeline, WRK_THREADS.get(name))
        rss_per_idle = None
    else:
        requests, p50, p99, errors, rss_per_idle = run_load(target, path, conns, idle)
    cpu = target.cpu_seconds() - cpu0
    return {
        "backend": target.label, "scenario": name, "tool": tool, "connections": conns, "idle": idle,
        "pipeline": pipeline, "duration_s": DURATION, "requests": requests,
        "rps": round(requests / DURATION, 1), "p50_us": p50, "p99_us": p99, "errors": errors,
        "server_cpu_us_per_req": round(cpu * 1e6 / requests, 2) if requests else None,
        "server_rss_bytes_per_idle_conn": rss_per_idle,
    }


# What to do about a missing tool, after the apt-get package.
WHERE = {"wrk": "or build it from https://github.com/wg/wrk", "nginx": "or see https://nginx.org/en/linux_packages.html",
         "lighttpd": "or see https://www.lighttpd.net/download/"}


def ensure(tool, package, why=""):
    """`tool` on PATH, installed with apt-get when running as root and apt-get is there; else
    say what to install and exit 2."""
    if shutil.which(tool):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"loadtest: installing {package} (apt-get install -y {package})", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], stdout=subprocess.DEVNULL)
    if not shutil.which(tool):
        print(f"loadtest: {tool} is needed{why}: apt-get install {package} (Debian/Ubuntu) {WHERE[tool]}",
              file=sys.stderr)
        sys.exit(2)
    return True


def select(only):
    """The scenarios whose name matches the ONLY regex; exits 2 when it is no regex or none does."""
    try:
        pattern = re.compile(only)
    except re.error as e:
        print(f"loadtest: ONLY={only!r} is not a regular expression: {e}", file=sys.stderr)
        sys.exit(2)
    scenarios = [s for s in SCENARIOS if pattern.search(s[0])]
    if not scenarios:
        names = ", ".join(repr(s[0]) for s in SCENARIOS)
        print(f"loadtest: no scenario matches {only!r}; scenarios are: {names}", file=sys.stderr)
        sys.exit(2)
    return scenarios


def main():
    compare = "--compare" in sys.argv
    # ONLY=regex keeps the scenarios whose name matches (e.g. ONLY='index c100$').
    scenarios = select(os.environ.get("ONLY", ""))
    for binary in (SERVER, LOAD, CEILING):
        if not os.access(binary, os.X_OK):
            print(f"loadtest: {os.path.relpath(binary, ROOT)} is missing: cargo build --release --workspace",
                  file=sys.stderr)
            sys.exit(2)
    if any(s[1] == "wrk" for s in scenarios):
        ensure("wrk", "wrk")
    kinds = ["ceiling", "epoll", "uring"]
    if compare:
        ensure("nginx", "nginx-light", " for --compare")
        ensure("lighttpd", "lighttpd", " for --compare")
        kinds += list(PEERS)
    if BASELINE:
        if not os.access(BASELINE, os.X_OK):
            sys.exit(f"loadtest: BASELINE={BASELINE} is not an executable c10k-server")
        kinds = [k for kind in kinds for k in ([kind + "@baseline", kind] if kind in ("epoll", "uring") else [kind])]
    os.makedirs(RESULTS, exist_ok=True)
    make_site()
    rows = []
    for scenario in scenarios:
        if tls_bench.handles(scenario):
            rows += tls_bench.run(sys.modules[__name__], scenario, kinds)
            continue
        runs = {kind: [] for kind in kinds}
        # Servers alternate within each round, so drift on a shared machine hits them alike.
        for _ in range(ROUNDS):
            for kind in kinds:
                if scenario[0] in (RELOAD, ACCESS_LOG, STALLED_LOG) and kind in ("ceiling", *PEERS):
                    continue
                if scenario[0] == STALLED and kind in ("ceiling", "lighttpd"):
                    continue  # the memory scenario is measured against nginx
                if scenario[0] in (ACCESS_LOG, STALLED_LOG) and kind.endswith("@baseline"):
                    continue  # an older build may not have --access-log
                extra = ()
                if scenario[0] in (ACCESS_LOG, STALLED_LOG):
                    log = os.path.join(RESULTS, f"access-{kind}.log")
                    if os.path.exists(log):
                        os.remove(log)
                    extra = ("--access-log", log)
                target = Target(kind, extra, scenario[2])
                try:
                    if scenario[0] == RELOAD and not target.reloads_logged:
                        print(f"loadtest: {kind}: no {scenario[0]}, this build does not reload on SIGHUP",
                              file=sys.stderr)
                        continue
                    runs[kind].append(measure(target, scenario))
                finally:
                    target.stop()
        for kind in kinds:
            if not runs[kind]:
                continue
            row = median_row(runs[kind])
            rows.append(row)
            print(f"loadtest: {kind:14} {scenario[0]:24} {row['rps']:>12} req/s", file=sys.stderr)
    add_ratios(rows)
    with open(os.path.join(RESULTS, "latest.json"), "w") as f:
        json.dump(rows, f, indent=2)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    # Quoted where a value has a comma; a nested value (a TLS row's per-shard counts) as JSON.
    cell = lambda v: "" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else v
    with open(os.path.join(RESULTS, "latest.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(keys)
        for r in rows:
            out.writerow([cell(r.get(k)) for k in keys])
    print_header()
    print_table(rows)
    if plain := [r for r in rows if not tls_bench.is_tls(r["scenario"])]:
        print_ceiling_ratios(plain)
    if compare:
        print_peer_ratios(rows)
    tls_bench.report(sys.modules[__name__], rows)
    if BASELINE:
        print_ratios(rows)
    if FAILURES:
        sys.exit("loadtest: failed:\n  " + "\n  ".join(FAILURES))


def median_row(runs):
    """One row for several runs of a server and scenario: the median of every figure."""
    row = dict(runs[0])
    for key in ("requests", "rps", "p50_us", "p99_us", "errors", "server_cpu_us_per_req",
                "server_rss_bytes_per_idle_conn", "server_rss_bytes_per_stalled_conn", "reloads"):
        if key not in row:
            continue
        values = [r[key] for r in runs if r[key] is not None]
        row[key] = statistics.median(values) if values else None
    row["rounds"] = len(runs)
    return row


def add_ratios(rows):
    """Each row's CPU per request over the ceiling's in the same scenario (see REFERENCE)."""
    ceiling = {r["scenario"]: r["server_cpu_us_per_req"] for r in rows if r["backend"] == "ceiling"}
    for r in rows:
        ref = ceiling.get(REFERENCE.get(r["scenario"], r["scenario"]))
        cpu = r["server_cpu_us_per_req"]
        r["cpu_ratio_to_ceiling"] = round(cpu / ref, 3) if cpu and ref else None


def servers_in(rows):
    return list(dict.fromkeys(r["backend"] for r in rows if r["backend"] != "ceiling"))


def print_ceiling_ratios(rows):
    """CPU per request of every server over the least-work responder's, per scenario."""
    servers = servers_in(rows)
    by = {(r["backend"], r["scenario"]): r for r in rows}
    print()
    print("CPU per request over c10k-ceiling's (the least-work responder; lower is better, 1.0 is the floor):")
    print()
    print("| scenario | ceiling CPU µs/req | " + " | ".join(servers) + " |")
    print("|---|---|" + "---|" * len(servers))
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        ref = by.get(("ceiling", REFERENCE.get(scenario, scenario)), {}).get("server_cpu_us_per_req")
        cells = [f"{by[(s, scenario)]['cpu_ratio_to_ceiling']:.2f}"
                 if (s, scenario) in by and by[(s, scenario)].get("cpu_ratio_to_ceiling") else "–" for s in servers]
        print(f"| {scenario} | {'–' if ref is None else figures(ref)} | " + " | ".join(cells) + " |")


def print_peer_ratios(rows):
    """Requests/s and CPU per request of c10k-server's backends over the best peer's (the
    peer with the most requests/s in that scenario)."""
    by = {(r["backend"], r["scenario"]): r for r in rows}
    peer_kinds = PEERS + tls_bench.PEERS
    ours = [s for s in servers_in(rows) if s not in peer_kinds]
    print()
    print("Against the best peer of each scenario (most requests/s): requests/s ratio (higher is better), "
          "CPU per request ratio (lower is better):")
    print()
    print("| scenario | best peer | " + " | ".join(f"{s} req/s | {s} CPU" for s in ours) + " |")
    print("|---|---|" + "---|---|" * len(ours))
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        peers = [by[(p, scenario)] for p in peer_kinds if (p, scenario) in by and by[(p, scenario)]["rps"]]
        if not peers:
            continue
        best = max(peers, key=lambda r: r["rps"])
        cells = []
        for s in ours:
            r = by.get((s, scenario))
            rps = f"{r['rps'] / best['rps']:.2f}" if r and r["rps"] else "–"
            cpu = (f"{r['server_cpu_us_per_req'] / best['server_cpu_us_per_req']:.2f}"
                   if r and r["server_cpu_us_per_req"] and best["server_cpu_us_per_req"] else "–")
            cells += [rps, cpu]
        print(f"| {scenario} | {best['backend']} {count_k(best['rps'])}/s, {figures(best['server_cpu_us_per_req'])} µs "
              "| " + " | ".join(cells) + " |")


def count_k(v):
    return f"{v / 1000:,.1f}k" if v >= 10000 else f"{v:,.0f}"


def print_ratios(rows):
    """CPU per request of this build over the baseline's, same scenario and backend."""
    by = {(r["backend"], r["scenario"]): r["server_cpu_us_per_req"] for r in rows}
    print()
    print("| backend | scenario | baseline CPU µs/req | current CPU µs/req | current / baseline |")
    print("|---|---|---|---|---|")
    for (label, scenario), base in by.items():
        kind, _, build = label.partition("@")
        now = by.get((kind, scenario))
        if build == "baseline" and base and now:
            print(f"| {kind} | {scenario} | {figures(base)} | {figures(now)} | {now / base:.3f} |")


def print_header():
    """One line above the table: how the run was made, and where."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    rounds = f"{ROUNDS} round{'s, medians' if ROUNDS != 1 else ''}"
    print(f"{DURATION} s per scenario, {SHARDS} shard{'s' if SHARDS != 1 else ''}, {rounds}; {now}; "
          f"{socket.gethostname()}: Linux {os.uname().release}, {cpus} CPU{'s' if cpus != 1 else ''}")
    print()


def ms(us):
    """Microseconds as milliseconds to two or three figures: 0.096, 0.96, 4.9, 138."""
    v = us / 1000
    if v < 0.995:
        return f"{v:.2g}"
    return f"{v:.1f}" if v < 9.95 else f"{v:,.0f}"


def figures(x):
    """CPU time per request to three figures: 0.123, 1.23, 12.3, 123, 1,234."""
    if x >= 99.95:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 9.995 else f"{x:.2f}" if x >= 0.9995 else f"{x:.3f}"


def print_table(rows):
    head = ["backend", "scenario", "tool", "conns", "idle", "req/s", "p50 ms", "p99 ms", "errors",
            "CPU µs/req", "RSS B/held conn"]
    # The reloads column only where the reload scenario ran.
    reloads = any("reloads" in r for r in rows)
    head += ["reloads"] if reloads else []
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    some = lambda v, f: "–" if v is None else f(v)
    count = lambda v: f"{v:,.0f}"
    for r in rows:
        # No RSS figure for a held population: the idle connections were never all open.
        # Held idle, or held by a client that pipelines and never reads (stalled rows).
        rss = r.get("server_rss_bytes_per_stalled_conn", r["server_rss_bytes_per_idle_conn"])
        rss = "n/a" if rss is None and r["idle"] else some(rss, count)
        cells = [r["backend"], r["scenario"], r["tool"], count(r["connections"]), count(r["idle"]),
                 count(r["rps"]), some(r["p50_us"], ms), some(r["p99_us"], ms), count(r["errors"]),
                 some(r["server_cpu_us_per_req"], figures), rss]
        cells += [some(r.get("reloads"), count)] if reloads else []
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
