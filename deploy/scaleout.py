#!/usr/bin/env python3
"""make scaleout: two c10k-server instances behind HAProxy, changed under load.

On free loopback ports: instances A and B (status ports too), HAProxy with
deploy/haproxy.cfg in front, and c10k-load through HAProxy on /index.html for DURATION
seconds (default 15). During the load, at 4/15, 7/15 and 10/15 of it: SIGHUP to A (a
reload), a graceful stop of B (SIGTERM), and B started again on the same ports. At the
end it prints c10k-load's totals, each phase's timing, what HAProxy saw (state changes,
retries, redispatches) and how long it all took. Exit 0 when c10k-load counted requests
and no error; 1 when it did not; 2 when something is missing or failed to start.

Options: --duration S (or DURATION=S), --conns N (or CONNS=N, default 50), --shards N
per instance (default 1), --no-drain (stop B on health checks and retries alone: see
below), --keep (keep the temp dir of logs even on a pass; a failed run always keeps it).

Decisions:
- HAProxy runs in the foreground from this script, as the user running it, with its pid
  file, log and runtime-API socket in a temp dir; every process started here is stopped
  by its pid (HAProxy with SIGUSR1, a soft stop; instances with SIGTERM).
- Stopping B: /healthz answers 503 as soon as B gets SIGTERM, but B also stops accepting
  at once, so HAProxy could still send it requests for up to one check interval. HAProxy
  retries those (haproxy.cfg: retry-on, redispatch), yet a planned stop can avoid them:
  set B to `drain` on HAProxy's runtime API, wait until HAProxy has nothing in flight
  there, then SIGTERM, and after the restart `ready` once B answers /healthz 200.
  --no-drain skips that, to show what the checks and retries do alone.
- The reload of A needs no such step: the master keeps its listeners, the new generation
  serves before the old one drains, and /healthz says 503 `reloading` meanwhile (so
  HAProxy takes A out for those few hundred ms: harmless, B serves).
- Timing is relative to the start of the load; HAProxy's view of each server is polled on
  the runtime API every 20 ms and printed when it changes.
"""
import argparse, csv, io, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "target", "release", "c10k-server")
LOAD = os.path.join(ROOT, "target", "release", "c10k-load")
CONFIG = os.path.join(ROOT, "deploy", "haproxy.cfg")
SITE = os.path.join(ROOT, "html")
PAGE = "/index.html"
LISTENING = re.compile(r"\] master: listening on http://")
RELOADED = re.compile(r"\] master: reload: generation (\d+) serving")
RELOAD_FAILED = re.compile(r"\] master: reload failed")
PROGRESS = re.compile(r"^c10k-load:\s+\d+s\s")

T0 = time.monotonic()
PRINT = threading.Lock()
load_start = None  # set when c10k-load starts; phases are timed from it


def say(line):
    """One line, stamped with seconds since the load started (or since this script did)."""
    now = time.monotonic()
    stamp = f"+{now - load_start:5.2f} s" if load_start else f"({now - T0:4.2f} s)"
    with PRINT:
        print(f"  {stamp}  {line}", flush=True)


def die(msg, code=2):
    print(f"scaleout: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_haproxy():
    """HAProxy on PATH or in /usr/sbin; installed from the Debian package when root."""
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        die("HAProxy is not installed: run `sudo apt-get install haproxy` (Debian/Ubuntu), then again")
    print("scaleout: installing HAProxy (apt-get install -y haproxy)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = dict(stdout=subprocess.DEVNULL, env=env)
    if subprocess.run(["apt-get", "install", "-y", "haproxy"], **quiet).returncode != 0:
        subprocess.run(["apt-get", "update"], **quiet)
        if subprocess.run(["apt-get", "install", "-y", "haproxy"], **quiet).returncode != 0:
            die("apt-get install haproxy failed; install HAProxy and run again")
    return shutil.which("haproxy") or "/usr/sbin/haproxy"


def wait_for_line(path, offset, pattern, timeout, proc=None):
    """The first line matching `pattern` written to `path` past `offset`, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            f.seek(offset)
            for line in f:
                if pattern.search(line):
                    return line
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(0.02)
    return None


class Instance:
    """One c10k-server: a master and its shards, logging to `<dir>/<name>.log`."""

    def __init__(self, name, tmp, shards):
        self.name, self.shards = name, shards
        self.port, self.status = free_port(), free_port()
        self.log = os.path.join(tmp, f"{name.lower()}.log")
        self.proc = None

    def start(self):
        offset = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        cmd = [SERVER, "--listen", f"127.0.0.1:{self.port}", "--root", SITE, "--shards", str(self.shards),
               "--status-listen", f"127.0.0.1:{self.status}", "--shutdown-timeout", "5"]
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        if not wait_for_line(self.log, offset, LISTENING, 10, self.proc):
            raise RuntimeError(f"{self.name} did not start; its log: {self.log}")

    def reload(self):
        offset = os.path.getsize(self.log)
        self.proc.send_signal(signal.SIGHUP)
        pattern = re.compile(f"{RELOADED.pattern}|{RELOAD_FAILED.pattern}")
        line = wait_for_line(self.log, offset, pattern, 10, self.proc)
        if not line or not RELOADED.search(line):
            raise RuntimeError(f"{self.name}'s reload did not complete; its log: {self.log}")
        return int(RELOADED.search(line).group(1))

    def stop(self, timeout=10):
        """SIGTERM (a drain) and wait; the exit status, or None if it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGQUIT)  # the master stops its shards at once
            self.proc.wait(5)
            return None

    def healthz(self):
        try:
            with socket.create_connection(("127.0.0.1", self.status), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).split(b" ")[1].decode()
        except (OSError, IndexError):
            return "down"


class Haproxy:
    """HAProxy in the foreground; its runtime API on a unix socket in the temp dir."""

    def __init__(self, exe, tmp, instances):
        self.exe, self.tmp = exe, tmp
        self.port = free_port()
        self.sock = os.path.join(tmp, "haproxy.sock")
        self.log = os.path.join(tmp, "haproxy.log")
        self.pidfile = os.path.join(tmp, "haproxy.pid")
        a, b = instances
        self.env = dict(os.environ, SCALEOUT_DIR=tmp, HAPROXY_BIND=f"127.0.0.1:{self.port}",
                        A_ADDR=f"127.0.0.1:{a.port}", A_STATUS=str(a.status),
                        B_ADDR=f"127.0.0.1:{b.port}", B_STATUS=str(b.status))
        self.proc = None

    def start(self):
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([self.exe, "-f", CONFIG, "-p", self.pidfile], stdout=out,
                                         stderr=subprocess.STDOUT, env=self.env, cwd=self.tmp)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock) or self.proc.poll() is not None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy did not start; its log: {self.log}")
            time.sleep(0.02)

    def command(self, line):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self):
        """`show stat` of backend c10k: {svname: row}, BACKEND included."""
        text = self.command("show stat").lstrip("# ")
        return {r["svname"]: r for r in csv.DictReader(io.StringIO(text)) if r["pxname"] == "c10k"}

    def wait(self, server, want, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats()[server]["status"] == want:
                return True
            time.sleep(0.02)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # soft stop: finish what is in flight
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(5)


def watch(haproxy, stop):
    """Print every change of HAProxy's view of a server (UP, DOWN, DRAIN, MAINT...)."""
    seen = {}
    while not stop.is_set():
        try:
            for name, row in haproxy.stats().items():
                if name != "BACKEND" and seen.get(name) != row["status"]:
                    if name in seen:
                        check = f"{row['check_status']} {row['check_code']}".strip()
                        say(f"HAProxy: server {name} is {row['status']} ({check})")
                    seen[name] = row["status"]
        except (OSError, KeyError):
            pass
        stop.wait(0.02)


def stop_b(b, haproxy, drain):
    t = time.monotonic()
    if drain:
        haproxy.command("set server c10k/b state drain")
        deadline = time.monotonic() + 5
        while int(haproxy.stats()["b"]["scur"] or 0) > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        say(f"B: drained in HAProxy after {time.monotonic() - t:.2f} s (state drain, nothing in flight)")
    say("B: SIGTERM")
    t = time.monotonic()
    code = b.stop()
    say(f"B: exited with status {code} after {time.monotonic() - t:.2f} s")
    return code


def start_b(b, haproxy, drain):
    t = time.monotonic()
    say("B: starting again on the same ports")
    b.start()
    say(f"B: serving after {time.monotonic() - t:.2f} s (/healthz {b.healthz()})")
    if drain:
        haproxy.command("set server c10k/b state ready")
    up = haproxy.wait("b", "UP")
    say(f"B: back in rotation after {time.monotonic() - t:.2f} s" if up else "B: HAProxy never saw it UP")


def main():
    global load_start
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=float(os.environ.get("DURATION", "15")))
    p.add_argument("--conns", type=int, default=int(os.environ.get("CONNS", "50")))
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--no-drain", dest="drain", action="store_false")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    for exe in (SERVER, LOAD):
        if not os.access(exe, os.X_OK):
            die(f"{exe} is missing: run `cargo build --release --workspace` (or `make scaleout`)")
    haproxy_exe = find_haproxy()
    tmp = tempfile.mkdtemp(prefix="c10k-scaleout-")
    a, b = Instance("A", tmp, args.shards), Instance("B", tmp, args.shards)
    haproxy = Haproxy(haproxy_exe, tmp, (a, b))
    size = os.path.getsize(os.path.join(SITE, PAGE.lstrip("/")))
    url = f"http://127.0.0.1:{haproxy.port}{PAGE}"
    D = args.duration
    print(f"scaleout: HAProxy 127.0.0.1:{haproxy.port} -> A 127.0.0.1:{a.port} (status {a.status}), "
          f"B 127.0.0.1:{b.port} (status {b.status}); {args.shards} shard(s) each; logs in {tmp}", flush=True)
    watching, load, phases, result, summary, stats, broken = threading.Event(), None, [], None, "", {}, None
    try:
        try:
            for inst in (a, b):
                t = time.monotonic()
                inst.start()
                say(f"{inst.name}: serving after {time.monotonic() - t:.2f} s")
            t = time.monotonic()
            haproxy.start()
            if not (haproxy.wait("a", "UP") and haproxy.wait("b", "UP")):
                raise RuntimeError(f"HAProxy does not see both servers UP; its log: {haproxy.log}")
            say(f"HAProxy: both servers UP after {time.monotonic() - t:.2f} s")
        except RuntimeError as e:
            die(str(e))
        threading.Thread(target=watch, args=(haproxy, watching), daemon=True).start()
        print(f"load: c10k-load --url {url} --conns {args.conns} --duration {D:g} --expect-bytes {size}; "
              f"B stopped {'after a drain on the runtime API' if args.drain else 'on health checks and retries alone'}",
              flush=True)
        json_path, out_path = os.path.join(tmp, "load.json"), os.path.join(tmp, "load.txt")
        with open(out_path, "w") as out:
            cmd = [LOAD, "--url", url, "--conns", str(args.conns), "--duration", f"{D:g}", "--expect-bytes", str(size),
                   "--json", json_path]
            load = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        load_start = time.monotonic()
        plan = [(4 / 15, "reload A"), (7 / 15, "stop B"), (10 / 15, "start B")]
        for at, what in plan:
            time.sleep(max(0.0, load_start + at * D - time.monotonic()))
            t = time.monotonic()
            try:
                if what == "reload A":
                    say("A: SIGHUP")
                    gen = a.reload()
                    say(f"A: generation {gen} serving after {time.monotonic() - t:.2f} s; the old one drains")
                elif what == "stop B":
                    stop_b(b, haproxy, args.drain)
                else:
                    start_b(b, haproxy, args.drain)
            except (RuntimeError, OSError) as e:
                broken = f"{what} failed: {e}"
                say(broken)
                break
            phases.append((what, t - load_start, time.monotonic() - t))
        try:
            load.wait(D + 30)
        except subprocess.TimeoutExpired:
            load.kill()
            load.wait()
        say(f"c10k-load exited with status {load.returncode}")
        watching.set()
        try:
            stats = haproxy.stats()
        except OSError as e:
            broken = f"HAProxy's runtime API did not answer: {e}"
        with open(out_path) as f:  # its summary, without the once-a-second progress lines
            summary = "".join(line for line in f if not PROGRESS.match(line))
        try:
            with open(json_path) as f:
                result = json.load(f)
        except (OSError, ValueError):
            result = None
    finally:
        watching.set()
        if load and load.poll() is None:
            load.kill()
            load.wait()
        haproxy.stop()
        codes = {inst.name: inst.stop() for inst in (a, b)}
    print("\nc10k-load through HAProxy:\n" + summary.rstrip())
    print("phases (from the start of the load):")
    for what, at, took in phases:
        print(f"  {what:9} at {at:5.2f} s, took {took:.2f} s")
    print("HAProxy, per server: requests, retries, redispatches, connect errors, response errors, 5xx")
    for name in ("a", "b", "BACKEND"):
        r = stats.get(name, {})
        cols = [r.get(k) or "0" for k in ("stot", "wretr", "wredis", "econ", "eresp", "hrsp_5xx")]
        print(f"  {name:7} {cols[0]:>8} " + " ".join(f"{c:>4}" for c in cols[1:]))
    print(f"instances stopped with status A {codes['A']}, B {codes['B']}")
    ok = not broken and result is not None and result["requests"] > 0 and result["errors_total"] == 0
    if result is not None:
        kinds = ", ".join(f"{k} {v}" for k, v in result["errors"].items() if v) or "none"
        r = result
        print(f"totals: {r['requests']} requests, {r['rps']:.0f} req/s, errors {r['errors_total']} ({kinds})")
    print(f"scaleout: {'PASS' if ok else 'FAIL'} in {time.monotonic() - T0:.1f} s", flush=True)
    if ok and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"logs kept in {tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
