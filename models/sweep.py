#!/usr/bin/env python3
"""make models: every server model of c10k-models measured side by side, as N idle
connections are held: N = 1, 10, 100, 1,000, 10,000.

Per (model, N) cell, each step bounded in time, nothing left running after it:
  1. a fresh `c10k-models --model M` on a free loopback port, serving a fresh copy of a small
     site (index.html, 1 KiB), on one core (the last this script may use; c10k-load gets the
     others), so that every model, threads and processes included, has the same one core;
  2. c10k-load holds N idle keep-alive connections (each sends one request, reads the answer,
     then stays open and silent) until the cell ends; the script waits until they are all
     open, or until the count stops moving, or 15 s + N/1000 s;
  3. the server's CPU from the holder's start until a second after all N are open (what
     taking a connection costs: a fork, a thread, a task, or only an accept), then idle CPU:
     the server's CPU over IDLE_S seconds with only those connections;
  4. active load: c10k-load, 50 keep-alive connections, closed loop, ACTIVE_S seconds, beside
     the held ones: requests/s, latency, errors, the server's CPU per request, the
     machine's context switches per request (the generator's included), and sampled just
     halfway through the load the server's memory (PSS), threads and processes;
  5. the holder, then the server, are stopped (SIGTERM, 3 s, SIGKILL), then any process the
     server left behind (fork's children outlive it until their client closes).
The server's CPU and memory are its whole process tree's, read from /proc: utime+stime of the
server and every descendant, plus the cutime+cstime of those they reaped; memory is PSS
(/proc/PID/smaps_rollup: each page shared by k processes counts 1/k in each, so fork's copies
of one binary are not counted a thousand times), and threads are summed, over the tree.

A cell that fails any way still gets a row, with a note:
  `refused at 1,020`    not all N held and the server logged `refusing` (fork's --max-procs,
                        select's FD_SETSIZE): the number it held;
  `held 57 of 100`      not all N held, nothing refused;
  `timed out`           the active load got no answer at all: its requests timed out or were
                        still waiting at its end (iterative: one held connection keeps every
                        other client waiting); `timed out: could not connect` when even its
                        first connect did (the listen backlog full of held connections);
  `no good answers (errors: status 1,234)`  answers, none 2xx/3xx, nothing above explaining it;
  `load refused: 1,234 errors`  all N held, but the load's own connections were refused
                        (select at N = 1,000: the 50 more pass FD_SETSIZE), or `load failed`
                        when the server logged no refusal;
  `did not start: ...`, `exited during the cell: ...`, `load failed: ...`  in a line.
Notes join with `; `. A cell with a note is no point on the chart's lines (a cross instead).

Environment: MODELS="thread poll" (default: all nine, in the course's order), NS="1 10"
(default: 1 10 100 1000 10000), ACTIVE_S (seconds of load per cell, default 5), IDLE_S
(seconds of idle CPU measurement, default 3), OUT (default models/results), MODELS_BIN
(default target/release/c10k-models), LOAD_BIN
(default target/release/c10k-load), REPORT_BIN (default target/release/c10k-report).

Writes to OUT:
  models.json  {"meta": {"date", "host", "kernel", "cpus", "active_s", "idle_s",
                         "active_conns", "timeout_s", "models", "ns", "models_bin",
                         "server_cpus", "load_cpus"},
                "cells": [{"model", "n", "held", "rps", "requests", "p50_us", "p99_us",
                           "errors", "timeouts", "cpu_us_per_req", "switches_per_req",
                           "take_cpu_us_per_conn", "memory_bytes", "threads", "procs",
                           "idle_cpu_pct", "refusing",
                           "note", "seconds"}, ...]}
               one cell per (model, N) in sweep order (N by N, every model at each); a
               figure not measured is null, and `note` is null when the cell has none.
               rps counts good answers (2xx/3xx) per second, over the load's own duration;
               cpu_us_per_req is server CPU per good answer; switches_per_req the machine's
               context switches per good answer (the generator's included);
               take_cpu_us_per_conn the server's CPU while the N were opened and answered
               once, above its idle rate, per connection (only when all N were held and
               N >= 1,000: /proc counts 10 ms ticks): accept, a first request, and a fork or
               a thread where the model makes one; idle_cpu_pct is
               % of one core; memory_bytes (PSS), threads and procs sum over the server's
               process tree; held is the idle connections open and answered at the end of
               the cell.
  models.md    a summary (a row per model, a column per N: requests/s and p99, or the note),
               then every figure of every cell;
  models.svg   the chart (`c10k-report --models`): one panel per measure against N;
  logs/        each cell's server output, MODEL-N.log.
Progress goes to stderr, a line per cell. A cell takes IDLE_S + ACTIVE_S + about 0.5 s, more
where N take long to open or never all do (up to 15 s + N/1000 s more): the default sweep took
7 minutes on 2 CPUs.
"""
import ctypes, datetime, json, os, re, resource, shutil, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_MODELS = ["iterative", "fork", "thread", "coroutine", "busy-poll", "select", "poll", "epoll", "uring"]
MODELS = os.environ.get("MODELS", " ".join(ALL_MODELS)).split()
NS = [int(n) for n in os.environ.get("NS", "1 10 100 1000 10000").split()]
ACTIVE_S = float(os.environ.get("ACTIVE_S", "5"))
IDLE_S = float(os.environ.get("IDLE_S", "3"))
OUT = os.path.abspath(os.environ.get("OUT", os.path.join(ROOT, "models", "results")))
MODELS_BIN = os.environ.get("MODELS_BIN", os.path.join(ROOT, "target", "release", "c10k-models"))
LOAD_BIN = os.environ.get("LOAD_BIN", os.path.join(ROOT, "target", "release", "c10k-load"))
REPORT_BIN = os.environ.get("REPORT_BIN", os.path.join(ROOT, "target", "release", "c10k-report"))
ACTIVE_CONNS = 50
# A request of the load unanswered this long is a timeout; at most half the load's run, so a
# server that answers nothing shows timeouts even in a short run.
TIMEOUT_S = min(2.0, max(0.2, ACTIVE_S / 2))
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Each model gets one core of its own, the last this script may use, and c10k-load the others:
# every model is measured on the same single core (a model with threads or processes runs
# them all there), and the generator never competes with it for a core.
_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS = {_CPUS[-1]}
LOAD_CPUS = set(_CPUS[:-1]) or SERVER_CPUS
SETTLE_S = min(1.0, IDLE_S)
# CPU time in /proc moves in clock ticks (10 ms): per connection taken it means something
# only over many connections.
MIN_N_PER_CONN = 1000

LISTENING = re.compile(r"listening on http://(\S+?)[,;)]?(?:\s|$)")
IDLE_READY = re.compile(r"^c10k-load: idle ready (\d+) in ([\d.]+) s$")
PROGRESS = re.compile(r"^c10k-load:\s+\d+s\s+\S+ req/s\s+(\d+) open \((\d+) idle\)\s+(\d+) errors$")


def shown(path):
    """A path as the person running this would type it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def say(msg):
    print(f"models: {msg}", file=sys.stderr, flush=True)


# --- processes, from /proc ------------------------------------------------------------------

def stat(pid):
    """(ppid, state, utime+stime, cutime+cstime, starttime) of `pid`, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0], int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]), \
        int(fields[19])


def table():
    """Every process: pid -> stat(pid)."""
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := stat(int(entry))):
            procs[int(entry)] = s
    return procs


def tree(root, procs=None):
    """`root` and its descendants (alive, zombies included), from one reading of /proc."""
    procs = procs if procs is not None else table()
    if root not in procs:
        return {}
    kids = {}
    for pid, s in procs.items():
        kids.setdefault(s[0], []).append(pid)
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        found[pid] = procs[pid]
        todo.extend(k for k in kids.get(pid, ()) if k not in found)
    return found


def tree_cpu_s(root):
    """CPU seconds of `root`'s tree: each process's own and those of the children it reaped.
    A child reaped between two readings moves from one term to the other, so differences hold;
    but one reaped during a reading (after its parent was read, before it was) would count in
    neither, so the tree is read until two readings in a row hold the same processes (a fork
    model's children exit together as the load ends), the last one counting."""
    before, deadline = tree(root), time.monotonic() + 2
    while True:
        now = tree(root)
        if now.keys() == before.keys() or time.monotonic() > deadline:
            return sum(s[2] + s[3] for s in now.values()) / CLK_TCK
        before = now
        time.sleep(0.02)


def context_switches():
    """Context switches on the whole machine so far (/proc/stat `ctxt`): a process's own count
    misses its threads and the children it reaped, so the load's are measured machine-wide,
    the generator's included (an epoll loop that switches about once per batch of answers)."""
    with open("/proc/stat") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("ctxt "))


def tree_memory(root):
    """(PSS bytes, threads, processes) summed over `root`'s live tree."""
    pss = threads = procs = 0
    for pid, s in tree(root).items():
        if s[1] == "Z":
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
            with open(f"/proc/{pid}/smaps_rollup") as f:
                rollup = f.read()
        except OSError:
            continue
        procs += 1
        if m := re.search(r"^Pss:\s+(\d+) kB", rollup, re.M):
            pss += int(m.group(1)) * 1024
        if m := re.search(r"^Threads:\s+(\d+)", status, re.M):
            threads += int(m.group(1))
    return pss, threads, procs


def alive(pid, start):
    """`pid` is still the process that started at `start` (not a reused pid) and not a zombie."""
    s = stat(pid)
    return s is not None and s[4] == start and s[1] != "Z"


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(proc, grace=3.0):
    """SIGTERM `proc` (a Popen of ours), SIGKILL after `grace` seconds; its exit status."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def kill_leftovers(recorded):
    """SIGKILL every recorded (pid, start) still alive, and any process still below this
    script (orphans come to it: it is a child subreaper), reaping those that are its
    children; wait until they are gone. How many are left after 5 s."""
    me = os.getpid()
    deadline = time.monotonic() + 5
    while True:
        left = {pid: s[4] for pid, s in recorded.items() if alive(pid, s[4])}
        for pid, s in tree(me).items():
            if pid != me and s[1] != "Z":
                left[pid] = s[4]
            elif pid != me and s[0] == me:
                reap(pid)
        if not left or time.monotonic() > deadline:
            return len(left)
        for pid, start in left.items():
            if alive(pid, start):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.05)


# --- one cell -------------------------------------------------------------------------------

def tail(path, n=1):
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Cell:
    def __init__(self, model, n, work):
        self.model, self.n, self.template = model, n, os.path.join(work, "site-template")
        # This cell's files (the site, c10k-load's reports), removed when it is done.
        self.work = tempfile.mkdtemp(prefix=f"{model}-{n}-", dir=work)
        self.row = {"model": model, "n": n, "held": None, "rps": None, "requests": None, "p50_us": None,
                    "p99_us": None, "errors": None, "timeouts": None, "cpu_us_per_req": None,
                    "switches_per_req": None, "take_cpu_us_per_conn": None, "memory_bytes": None,
                    "threads": None, "procs": None, "idle_cpu_pct": None, "refusing": False, "note": None,
                    "seconds": None}
        self.notes = []
        self.take_us = None
        self.no_good = None
        self.server = self.holder = self.load = None
        self.recorded = {}
        self.log = os.path.join(OUT, "logs", f"{model}-{n}.log")

    def run(self):
        t0 = time.monotonic()
        try:
            if self.start_server():
                self.hold()
                self.measure_idle()
                self.measure_active()
        except Exception as e:  # a cell never takes the sweep down with it
            self.notes.append(f"sweep error: {type(e).__name__}: {e}")
        finally:
            self.finish()
        self.row["seconds"] = round(time.monotonic() - t0, 1)
        self.row["note"] = "; ".join(self.notes) or None
        return self.row

    def start_server(self):
        site = os.path.join(self.work, "site")
        shutil.copytree(self.template, site)
        args = [MODELS_BIN, "--model", self.model, "--listen", "127.0.0.1:0", "--root", site]
        with open(self.log, "w") as log:
            self.server = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           preexec_fn=lambda: os.sched_setaffinity(0, SERVER_CPUS))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(self.log, errors="replace") as f:
                if m := LISTENING.search(f.read()):
                    self.url = f"http://{m.group(1).rstrip('/')}/index.html"
                    return True
            if self.server.poll() is not None:
                self.notes.append(f"did not start: exit {self.server.returncode}: {tail(self.log)}"[:200])
                return False
            time.sleep(0.02)
        self.notes.append("did not start: no `listening on http://` line within 10 s")
        return False

    def hold(self):
        """Start the holder and wait until all N are open, the count stalls, or the deadline."""
        wait = 15 + self.n / 1000
        self.holder_err = os.path.join(self.work, "holder.err")
        self.holder_json = os.path.join(self.work, "holder.json")
        args = [LOAD_BIN, "--url", self.url, "--conns", "0", "--idle", str(self.n),
                "--duration", str(round(wait + IDLE_S + ACTIVE_S + 20)), "--timeout", "2", "--json", self.holder_json]
        self.hold_cpu0, self.hold_t0 = tree_cpu_s(self.server.pid), time.monotonic()
        with open(self.holder_err, "w") as err:
            self.holder = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                           preexec_fn=lambda: os.sched_setaffinity(0, LOAD_CPUS))
        start = time.monotonic()
        seen = []  # (open, errors) per progress line
        while time.monotonic() < start + wait:
            time.sleep(0.05)
            with open(self.holder_err, errors="replace") as f:
                lines = [l.strip() for l in f]
            if any(IDLE_READY.match(l) for l in lines):
                return
            if self.holder.poll() is not None:
                self.notes.append(f"load failed: {tail(self.holder_err)}"[:200])
                return
            seen = [(int(m.group(2)), int(m.group(3))) for l in lines if (m := PROGRESS.match(l))]
            # Nothing moved over the last 4 seconds: the server will not take more.
            if len(seen) >= 4 and len(set(seen[-4:])) == 1:
                return

    def server_gone(self):
        """True, with a note, when the server exited before the cell was done with it."""
        if self.server.poll() is None:
            return False
        if not any(n.startswith("exited") for n in self.notes):
            self.notes.append(f"exited during the cell: status {self.server.returncode}: {tail(self.log)}"[:200])
        return True

    def measure_idle(self):
        if self.holder.poll() is not None or self.server_gone():
            return
        # c10k-load says `idle ready` once the N are connected; a server may still be taking
        # them (a thread or a process each): let it finish before idle is measured.
        time.sleep(SETTLE_S)
        cpu0, t0 = tree_cpu_s(self.server.pid), time.monotonic()
        time.sleep(IDLE_S)
        cpu1, t1 = tree_cpu_s(self.server.pid), time.monotonic()
        if self.server_gone():
            return
        idle = (cpu1 - cpu0) / (t1 - t0)
        self.row["idle_cpu_pct"] = round(idle * 100, 2)
        # Above what the model burns anyway (busy-poll: a whole core), per connection; kept
        # by `finish` only if all N were held.
        taking = max(0.0, cpu0 - self.hold_cpu0 - idle * (t0 - self.hold_t0))
        self.take_us = round(taking * 1e6 / self.n, 1)

    def measure_active(self):
        if self.server_gone():
            return
        report = os.path.join(self.work, "active.json")
        err = os.path.join(self.work, "active.err")
        args = [LOAD_BIN, "--url", self.url, "--conns", str(ACTIVE_CONNS), "--duration", str(ACTIVE_S),
                "--timeout", str(TIMEOUT_S), "--json", report]
        cpu0, switches0 = tree_cpu_s(self.server.pid), context_switches()
        start = time.monotonic()
        with open(err, "w") as e:
            self.load = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=e,
                                         preexec_fn=lambda: os.sched_setaffinity(0, LOAD_CPUS))
        # Memory, threads and processes halfway through the load: reading every process's
        # smaps_rollup takes a second or two at a thousand processes (fork), and must end
        # while the load's own connections are still open.
        time.sleep(ACTIVE_S / 2)
        self.row["memory_bytes"], self.row["threads"], self.row["procs"] = tree_memory(self.server.pid)
        self.recorded.update(tree(self.server.pid))
        try:
            self.load.wait(timeout=ACTIVE_S + 15)
        except subprocess.TimeoutExpired:
            stop(self.load)
            self.notes.append(f"load failed: still running {ACTIVE_S + 15:.0f} s after its start")
            return
        cpu, switches = tree_cpu_s(self.server.pid) - cpu0, context_switches() - switches0
        if self.server_gone():
            return
        r = read_json(report)
        if r is None:
            # Its probe connects before the run: with the backlog full of held connections
            # (iterative) that connect is what times out.
            why = tail(err)
            timed_out = "cannot connect" in why and "timed out" in why
            self.notes.append("timed out: could not connect" if timed_out else f"load failed: {why}"[:200])
            return
        errors = r.get("errors", {})
        good = max(0, r["requests"] - errors.get("status", 0) - errors.get("length", 0))
        seconds = r.get("duration_s") or (time.monotonic() - start)
        self.row.update({
            "rps": round(good / seconds, 1), "requests": r["requests"], "p50_us": r.get("p50_us"),
            "p99_us": r.get("p99_us"), "errors": r.get("errors_total", sum(errors.values())),
            "timeouts": errors.get("timeout", 0),
            "cpu_us_per_req": round(cpu * 1e6 / good, 2) if good else None,
            "switches_per_req": round(switches / good, 2) if good else None,
        })
        if not r["requests"]:
            self.row["p50_us"] = self.row["p99_us"] = None  # an empty histogram's 0, not a latency
        if r["requests"] == 0 and (errors.get("timeout", 0) or r.get("inflight", 0)):
            self.notes.append("timed out")
        elif good == 0:
            # Said only when nothing else explains it (see finish).
            kinds = ", ".join(f"{k} {v:,}" for k, v in errors.items() if v) or "none"
            self.no_good = f"no good answers (errors: {kinds})"

    def finish(self):
        """Stop the holder (its report says how many it held), then the server, then whatever
        the server left behind; check the log for `refusing`."""
        if self.load is not None and self.load.poll() is None:
            stop(self.load)
        if self.holder is not None:
            stop(self.holder)
            h = read_json(self.holder_json)
            if h is not None:
                # Open and answered: a 503 is an answer too, but its connection is closed.
                answered = h.get("idle_answered", 0) - h.get("errors", {}).get("status", 0)
                self.row["held"] = max(0, min(h.get("idle_open", 0), answered))
            else:
                last = [m for l in open(self.holder_err, errors="replace") if (m := PROGRESS.match(l.strip()))]
                self.row["held"] = int(last[-1].group(2)) if last else None
        if self.server is not None:
            self.recorded.update(tree(self.server.pid))
            self.server_gone()
            stop(self.server)
            left = kill_leftovers(self.recorded)
            if left:
                self.notes.append(f"{left} processes outlived it")
            with open(self.log, errors="replace") as f:
                self.row["refusing"] = "refusing" in f.read()
        held = self.row["held"]
        if held == self.n and self.n >= MIN_N_PER_CONN:
            self.row["take_cpu_us_per_conn"] = self.take_us
        if held is not None and held < self.n and not any(n.startswith("did not start") for n in self.notes):
            what = f"refused at {held:,}" if self.row["refusing"] else f"held {held:,} of {self.n:,}"
            self.notes.insert(0, what)
        if self.no_good and not self.notes:
            self.notes.append(self.no_good)
        elif self.row["errors"] and not self.notes:
            # All N held, but the load's own connections were turned away or failed: the
            # model is at its limit (select at 1,000: the 50 more pass FD_SETSIZE).
            kind = "refused" if self.row["refusing"] else "failed"
            self.notes.append(f"load {kind}: {self.row['errors']:,} errors")
        shutil.rmtree(self.work, ignore_errors=True)


# --- the sweep ------------------------------------------------------------------------------

def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def become_subreaper():
    """Orphans below this script (a fork model's children after it exits) come to it, not to
    init, so they are found, killed and reaped after each cell."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def meta():
    cpus = len(_CPUS)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": socket.gethostname(), "kernel": os.uname().release, "cpus": cpus, "active_s": ACTIVE_S,
        "idle_s": IDLE_S, "active_conns": ACTIVE_CONNS, "timeout_s": TIMEOUT_S, "models": MODELS, "ns": NS,
        "models_bin": MODELS_BIN, "server_cpus": sorted(SERVER_CPUS), "load_cpus": sorted(LOAD_CPUS),
    }


def write_json(info, cells):
    path = os.path.join(OUT, "models.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"meta": info, "cells": cells}, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


def count(v):
    return "–" if v is None else f"{v:,.0f}"


def ms(us):
    """Microseconds as milliseconds to two or three figures: 0.096, 0.96, 4.9, 138."""
    if us is None:
        return "–"
    v = us / 1000
    return f"{v:.2g}" if v < 0.995 else f"{v:.1f}" if v < 9.95 else f"{v:,.0f}"


def figures(x):
    if x is None:
        return "–"
    return f"{x:,.0f}" if x >= 99.95 else f"{x:.1f}" if x >= 9.995 else f"{x:.2f}" if x >= 0.9995 else f"{x:.3f}"


def short(v):
    """12345 -> 12.3k"""
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e4 else f"{v:,.0f}"


def mb(b):
    return "–" if b is None else f"{b / 1e6:,.1f}"


def markdown(info, cells):
    machine = f"{info['host']}: Linux {info['kernel']}, {info['cpus']} CPU{'s' if info['cpus'] != 1 else ''}"
    cores = f"the model on CPU {','.join(map(str, info['server_cpus']))}, c10k-load on " \
            f"CPU {','.join(map(str, info['load_cpus']))}"
    out = [f"c10k-models, {info['date']}; {machine}; {cores}. Per cell: N idle keep-alive connections held, "
           f"{IDLE_S:g} s of idle CPU, then {ACTIVE_S:g} s of c10k-load on {ACTIVE_CONNS} more connections "
           f"(closed loop, {TIMEOUT_S:g} s timeout).", ""]
    out += ["Requests/s (p99 latency) under load, by idle connections held:", ""]
    out += ["| model | " + " | ".join(f"N = {n:,}" for n in NS) + " |", "|---|" + "---:|" * len(NS)]
    by = {(c["model"], c["n"]): c for c in cells}
    for model in MODELS:
        row = []
        for n in NS:
            c = by.get((model, n))
            if c is None:
                row.append("–")
            elif c["note"]:
                row.append(c["note"])
            else:
                row.append(f"{short(c['rps'])} ({ms(c['p99_us'])} ms)" if c["rps"] is not None else "–")
        out.append(f"| {model} | " + " | ".join(row) + " |")
    out += ["", "Every figure: the server's CPU, memory (PSS), threads and processes are its whole process tree's.", ""]
    head = ["model", "N", "held", "req/s", "p50 ms", "p99 ms", "errors", "timeouts", "CPU µs/req", "switches/req", "CPU µs/conn taken", "PSS MB",
            "threads", "procs", "idle CPU %", "note"]
    out += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for c in cells:
        out.append("| " + " | ".join([
            c["model"], count(c["n"]), count(c["held"]), count(c["rps"]), ms(c["p50_us"]), ms(c["p99_us"]),
            count(c["errors"]), count(c["timeouts"]), figures(c["cpu_us_per_req"]),
            figures(c["switches_per_req"]), figures(c["take_cpu_us_per_conn"]), mb(c["memory_bytes"]),
            count(c["threads"]), count(c["procs"]), figures(c["idle_cpu_pct"]), c["note"] or ""]) + " |")
    with open(os.path.join(OUT, "models.md"), "w") as f:
        f.write("\n".join(out) + "\n")


def summary(c):
    if c["rps"] is None and c["note"]:
        return c["note"]
    text = (f"{count(c['rps'])} req/s, p99 {ms(c['p99_us'])} ms, {figures(c['cpu_us_per_req'])} µs/req, "
            f"{figures(c['switches_per_req'])} switches/req, "
            f"memory {mb(c['memory_bytes'])} MB, {count(c['threads'])} threads, {count(c['procs'])} procs, "
            f"idle CPU {figures(c['idle_cpu_pct'])} %")
    return text + (f"; {c['note']}" if c["note"] else "")


def main():
    for name, path, fix in (("MODELS_BIN", MODELS_BIN, "cargo build --release -p c10k-models"),
                            ("LOAD_BIN", LOAD_BIN, "cargo build --release -p c10k-load")):
        if not os.access(path, os.X_OK):
            say(f"{name}={shown(path)} is missing: {fix} (or make models)")
            sys.exit(2)
    unknown = [m for m in MODELS if m not in ALL_MODELS]
    if unknown:
        say(f"note: {', '.join(unknown)} not among the known models ({' '.join(ALL_MODELS)}); running them anyway")
    # This script's own reading of /proc stays off the model's core too.
    os.sched_setaffinity(0, LOAD_CPUS)
    nofile = raise_nofile()
    if max(NS) + ACTIVE_CONNS + 64 > nofile:
        say(f"RLIMIT_NOFILE hard limit is {nofile}: N = {max(NS):,} will not fit in one process (see tuning/)")
    if not become_subreaper():
        say("cannot become a child subreaper; a fork model's orphans go to init (still killed by pid)")
    os.makedirs(os.path.join(OUT, "logs"), exist_ok=True)
    info, cells = meta(), []
    total, started = len(MODELS) * len(NS), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="c10k-models-") as work:
        os.makedirs(os.path.join(work, "site-template"))
        with open(os.path.join(work, "site-template", "index.html"), "w") as f:
            line = "<p>c10k-models: the same small page from every model, a kibibyte of it.</p>\n"
            body = line * (900 // len(line))
            f.write(f"<!doctype html>\n<html><head><title>c10k-models</title></head><body>\n{body}</body></html>\n")
        # N by N: the models compared at one N run within a minute or two of each other (on
        # a shared VM the speed of the same cell drifts by a third over minutes).
        for n in NS:
            for model in MODELS:
                row = Cell(model, n, work).run()
                cells.append(row)
                write_json(info, cells)
                say(f"[{len(cells)}/{total}] {model} N={n:,} ({row['seconds']} s): {summary(row)}")
    markdown(info, cells)
    say(f"{total} cells in {time.monotonic() - started:.0f} s; wrote {shown(OUT)}/models.json, models.md")
    svg = os.path.join(OUT, "models.svg")
    title = "c10k-models: the server models side by side"
    try:
        r = subprocess.run([REPORT_BIN, "--models", os.path.join(OUT, "models.json"), svg, title],
                           capture_output=True, text=True, timeout=60)
        ok, why = r.returncode == 0, (r.stderr or r.stdout).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        ok, why = False, str(e)
    if not ok:
        say(f"the chart failed ({REPORT_BIN} --models): {why}; build it with cargo build --release -p c10k-load")
        sys.exit(1)
    say(f"wrote {shown(svg)}")


if __name__ == "__main__":
    main()
