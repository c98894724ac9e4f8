"""The TLS scenarios of make loadtest (their names start with `tls `; ONLY='^tls' picks them).

run.py hands every scenario whose tool is "tls" to run(); the rows it returns join run.py's
(latest.json and latest.csv, the main table), and report() prints their own table: the TLS
figures and each row's ratio against its target.

Each server is started fresh per row and round, with 2 shards or workers (SHARDS), serving
the same site over HTTPS (TLS 1.3) with the same certificates, made at run time with the
openssl CLI into loadtest/results/tls/ (a CA, an ECDSA P-256 and an RSA 2048 leaf for
`localhost`): c10k-server (both backends, `--tls-listen`, with its plain `--listen` too,
which run.py's readiness check and the plaintext idle row use) and, with --compare, nginx,
h2o and lighttpd, each with a plain and a TLS listener, configured as a deployment would:
nginx with a shared session cache and tickets, h2o with its default resumption (cache and
tickets shared by its threads), lighttpd with its default tickets.

The rows (c10k-load is the project's client, rustls; wrk is OpenSSL's):
  tls handshakes ecdsa|rsa      c10k-load --new-conn: one request per connection, full handshakes
  tls handshakes ecdsa openssl  wrk with `Connection: close`: the same with OpenSSL's client
  tls resumed ecdsa             c10k-load --new-conn --tls-resume (8 connections per client thread)
  tls index c100                wrk, keep-alive, index.html
  tls 1MiB c10, tls 1MiB c100   wrk, keep-alive, the 1 MiB file
  tls idle 10000                c10k-load --idle 10000: each connection does one request and holds;
                                RSS growth of the server's processes over the 10,000
  tls idle 10000 plaintext      the same over the plain listener
  tls active c10000 10k/s       c10k-load --warmup: 10,000 connections opened first (handshake
                                and one request each), then WARMUP s of load at 10,000
                                requests/s, then the measured DURATION s; the server's CPU is
                                read over the measured window only (per request)

The same key exchange and cipher for every server: c10k-load runs with --tls-kx x25519 (its
default, rustls', offers X25519MLKEM768 first, which a rustls server takes and an OpenSSL 3.0
one cannot) and offers TLS_AES_128_GCM_SHA256 first, as wrk does through an OPENSSL_CONF that
offers X25519 and AES-128-GCM first (rustls servers pick AES-128 whatever the client prefers;
OpenSSL ones follow the client). What each server agreed with each client is read off the
ServerHello (through a relay for c10k-load, from `openssl s_client` for OpenSSL's client) and
printed with the rows.
"""
import json, os, re, shutil, signal, socket, statistics, struct, subprocess, sys, threading, time

rt = None  # run.py's module, for its helpers (Target, free_port, wait_for_port, ...)

# name, tool, path, connections, idle, pipeline: run.py's shape; the rest is in SPEC.
HS_ECDSA, HS_RSA, HS_OPENSSL = "tls handshakes ecdsa", "tls handshakes rsa", "tls handshakes ecdsa openssl"
RESUMED = "tls resumed ecdsa"
INDEX = "tls index c100"
MIB10, MIB100 = "tls 1MiB c10", "tls 1MiB c100"
IDLE, IDLE_PLAIN = "tls idle 10000", "tls idle 10000 plaintext"
ACTIVE = "tls active c10000 10k/s"
# c10k-load's groups in every TLS row (see the docstring).
KX = "x25519"
# The unmeasured load after the opening of the active row's connections, in seconds.
WARMUP = int(os.environ.get("WARMUP", "2"))
SPEC = {
    HS_ECDSA: dict(client="c10k-load", conns=32, new_conn=True),
    HS_RSA: dict(client="c10k-load", conns=32, new_conn=True, cert="rsa"),
    HS_OPENSSL: dict(client="wrk", conns=32, close=True),
    # rustls' client keeps 8 tickets per server and thread: 8 connections per thread.
    RESUMED: dict(client="c10k-load", conns=16, new_conn=True, resume=True),
    INDEX: dict(client="wrk", conns=100),
    MIB10: dict(client="wrk", conns=10, path="/1m.bin", threads=1),
    MIB100: dict(client="wrk", conns=100, path="/1m.bin"),
    IDLE: dict(client="c10k-load", conns=0, idle=10000),
    IDLE_PLAIN: dict(client="c10k-load", conns=0, idle=10000, plain=True),
    # After the warm-up every server sustains 10,000/s on a 2-CPU host where the client runs
    # too; 20,000/s saturates them.
    ACTIVE: dict(client="c10k-load", conns=10000, rate=10000, warmup=WARMUP),
}
SCENARIOS = [(name, "tls", s.get("path", "/index.html"), s["conns"], s.get("idle", 0), 1) for name, s in SPEC.items()]
# Peers that only the TLS rows have (run.py's PEERS run every row).
PEERS = ("h2o",)
SERVERS = ("epoll", "uring", "nginx", "h2o", "lighttpd")
CLIENT_THREADS = 2
WHERE = {"h2o": "apt-get install h2o", "openssl": "apt-get install openssl", "wrk": "apt-get install wrk"}


def handles(scenario):
    return scenario[1] == "tls"


def is_tls(name):
    return name in SPEC


def tls_dir():
    return os.path.join(rt.RESULTS, "tls")


# --- certificates -------------------------------------------------------------------------

def make_certs():
    """A CA and two leaves for localhost (and 127.0.0.1) signed by it, made afresh: the keys
    never leave loadtest/results/tls/ (git-ignored)."""
    d = tls_dir()
    os.makedirs(d, exist_ok=True)
    ossl = lambda *args: subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
         "-out", "ca.pem", "-days", "30", "-subj", "/CN=c10k loadtest CA")
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    for name, key in (("ecdsa", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                      ("rsa", ["-newkey", "rsa:2048"])):
        ossl("req", *key, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=localhost")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "30", "-extfile", "leaf.ext")
    # wrk's OpenSSL: X25519 (what every server can do) and AES-128-GCM first (what rustls
    # servers choose anyway), so every server negotiates the same.
    with open(os.path.join(d, "openssl-client.cnf"), "w") as f:
        f.write("openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = client\n[client]\n"
                "Ciphersuites = TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\n"
                "Groups = X25519\n")


def cert(kind):
    return os.path.join(tls_dir(), f"{kind}.pem"), os.path.join(tls_dir(), f"{kind}.key")


# --- servers ------------------------------------------------------------------------------

def two_ports():
    a = rt.free_port()
    while (b := rt.free_port()) == a:
        pass
    return a, b


class C10k:
    """c10k-server with a TLS listener beside run.py's plain one, and its status listener."""

    def __init__(self, kind, cert_kind):
        self.tls_port, self.status_port = two_ports()
        crt, key = cert(cert_kind)
        self.t = rt.Target(kind, ("--tls-listen", f"127.0.0.1:{self.tls_port}", "--tls-cert", crt, "--tls-key", key,
                                  "--status-listen", f"127.0.0.1:{self.status_port}"))
        self.kind, self.label, self.port, self.pids = kind, kind, self.t.port, self.t.pids
        try:
            rt.wait_for_port(self.tls_port)
        except SystemExit:
            self.t.stop()
            raise

    def cpu_seconds(self):
        return self.t.cpu_seconds()

    def rss_bytes(self):
        return self.t.rss_bytes()

    def handshakes(self):
        """{shard: {result: count}} from /metrics."""
        try:
            with socket.create_connection(("127.0.0.1", self.status_port), timeout=5) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                text = b"".join(iter(lambda: s.recv(65536), b"")).decode("latin-1")
        except OSError:
            return {}
        out = {}
        for shard, result, n in re.findall(r'^c10k_tls_handshakes_total\{shard="(\d+)",result="(\w+)"\} (\d+)', text, re.M):
            out.setdefault(int(shard), {})[result] = int(n)
        return out

    def stop(self):
        self.t.stop()


class Peer:
    """nginx, h2o or lighttpd with a plain listener (`port`) and a TLS one (`tls_port`)."""

    def __init__(self, kind, cert_kind):
        self.kind = self.label = kind
        self.port, self.tls_port = two_ports()
        self.dir = os.path.join(rt.RESULTS, f"{kind}-tls")
        os.makedirs(self.dir, exist_ok=True)
        self.crt, self.key = cert(cert_kind)
        self.conf = os.path.join(self.dir, f"{kind}.conf")
        self.proc = None
        with open(os.path.join(self.dir, "out.log"), "w") as self.out:
            try:
                getattr(self, "start_" + kind)()
                rt.wait_for_port(self.port)
                rt.wait_for_port(self.tls_port)
            except SystemExit:
                if self.proc:
                    self.stop()
                raise SystemExit(f"loadtest: {kind} did not serve its TLS configuration {self.conf}; "
                                 f"see {self.dir}/out.log and error.log")

    def start_nginx(self):
        pid_file = os.path.join(self.dir, "nginx.pid")
        with open(self.conf, "w") as f:
            f.write(f"""worker_processes {rt.SHARDS};
worker_rlimit_nofile 20000;
daemon off;
pid {pid_file};
error_log {self.dir}/error.log;
events {{ worker_connections 19000; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000; keepalive_timeout 75s;
  open_file_cache max=4096 inactive=60s; open_file_cache_valid 1s;
  default_type application/octet-stream;
  types {{ text/html html; text/css css; }}
  ssl_certificate {self.crt};
  ssl_certificate_key {self.key};
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:SSL:10m;
  ssl_session_timeout 1h;
  ssl_session_tickets on;
  server {{
    listen 127.0.0.1:{self.port} reuseport;
    listen 127.0.0.1:{self.tls_port} ssl reuseport;
    root {rt.SITE};
  }}
}}
""")
        rt.stop_leftover_nginx(pid_file, self.conf)
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-e", f"{self.dir}/error.log", "-c", self.conf],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        self.pids = self.workers(rt.SHARDS)

    def start_h2o(self):
        with open(self.conf, "w") as f:
            f.write(f"""user: root
num-threads: {rt.SHARDS}
max-connections: 20000
http1-request-timeout: 75
pid-file: {self.dir}/h2o.pid
error-log: {self.dir}/error.log
listen:
  host: 127.0.0.1
  port: {self.port}
listen:
  host: 127.0.0.1
  port: {self.tls_port}
  ssl:
    certificate-file: {self.crt}
    key-file: {self.key}
    minimum-version: TLSv1.2
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        file.dir: {rt.SITE}
""")
        self.proc = subprocess.Popen(["h2o", "-c", self.conf], stdout=self.out, stderr=subprocess.STDOUT)
        # One process, its threads the workers (counted in its /proc/PID/stat), and its
        # child, neverbleed, which does the private key operations (RSA's at least).
        self.pids = [self.proc.pid] + self.workers(1)

    def start_lighttpd(self):
        with open(self.conf, "w") as f:
            f.write(f"""server.modules += ("mod_openssl")
server.document-root = "{rt.SITE}"
server.bind = "127.0.0.1"
server.port = {self.port}
server.max-worker = {rt.SHARDS}
server.max-fds = 20000
server.max-connections = 9900
server.network-backend = "sendfile"
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 75
server.errorlog = "{self.dir}/error.log"
mimetype.assign = (".html" => "text/html", ".css" => "text/css", ".bin" => "application/octet-stream")
$SERVER["socket"] == "127.0.0.1:{self.tls_port}" {{
  ssl.engine = "enable"
  ssl.pemfile = "{self.crt}"
  ssl.privkey = "{self.key}"
}}
""")
        # Its own session: lighttpd's master signals its whole process group when it stops.
        self.proc = subprocess.Popen(["lighttpd", "-D", "-f", self.conf], stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pids = self.workers(rt.SHARDS)

    def workers(self, n):
        """The master's children once there are n of them (within 5 s), or the master."""
        kids = set()
        for _ in range(100):
            time.sleep(0.05)
            if self.proc.poll() is not None:
                sys.exit(f"loadtest: {self.kind} exited")
            if len(kids := rt.children(self.proc.pid)) >= n:
                break
        return sorted(kids) or ([self.proc.pid] if self.kind != "h2o" else [])

    def cpu_seconds(self):
        return rt.Target.cpu_seconds(self)

    def rss_bytes(self):
        return rt.Target.rss_bytes(self)

    def handshakes(self):
        return {}

    def stop(self):
        pid = self.proc.pid
        if self.kind == "nginx":  # by its pid file's pid, when that is the master we started
            try:
                with open(os.path.join(self.dir, "nginx.pid")) as f:
                    if int(f.read().strip()) != pid:
                        print(f"loadtest: {self.dir}/nginx.pid names another process; stopping {pid}",
                              file=sys.stderr)
            except (OSError, ValueError):
                pass
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(kind, cert_kind):
    return C10k(kind, cert_kind) if kind in ("epoll", "uring") else Peer(kind, cert_kind)


# --- what was negotiated ------------------------------------------------------------------

GROUPS = {0x001d: "X25519", 0x0017: "P-256", 0x0018: "P-384", 0x11ec: "X25519MLKEM768"}
SUITES = {0x1301: "AES128-GCM", 0x1302: "AES256-GCM", 0x1303: "CHACHA20"}


def server_hello(data):
    """(version, cipher suite, key exchange group) from the bytes a server sent first, or None."""
    if len(data) < 9 or data[0] != 22 or data[5] != 2:
        return None
    body = data[9:9 + int.from_bytes(data[6:9], "big")]
    p = 2 + 32
    p += 1 + body[p]
    suite = int.from_bytes(body[p:p + 2], "big")
    p += 3
    end, p = p + 2 + int.from_bytes(body[p:p + 2], "big"), p + 2
    version, group = "TLSv1.2", None
    while p + 4 <= end:
        t, n = struct.unpack(">HH", body[p:p + 4])
        if t == 0x2b and n == 2 and body[p + 4:p + 6] == b"\x03\x04":
            version = "TLSv1.3"
        if t == 0x33 and n >= 2:
            group = int.from_bytes(body[p + 4:p + 6], "big")
        p += 4 + n
    return version, SUITES.get(suite, hex(suite)), GROUPS.get(group, hex(group) if group else "?")


def negotiated_by_load(port, kx):
    """What c10k-load (offering the groups `kx`) and the server on `port` agree on: a relay
    in between reads the ServerHello of one connection."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    ls.settimeout(10)
    seen = []

    def pump(a, b, first):
        buf = b""
        try:
            while d := a.recv(65536):
                if first and not seen:
                    buf += d
                    if (hello := server_hello(buf)) or len(buf) > 16384:
                        seen.append(hello)
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def relay():
        try:
            while True:
                c, _ = ls.accept()
                s = socket.create_connection(("127.0.0.1", port))
                threading.Thread(target=pump, args=(c, s, False), daemon=True).start()
                threading.Thread(target=pump, args=(s, c, True), daemon=True).start()
        except OSError:
            pass

    threading.Thread(target=relay, daemon=True).start()
    report = os.path.join(tls_dir(), "probe.json")
    try:
        subprocess.run([rt.LOAD, "--url", f"http://127.0.0.1:{ls.getsockname()[1]}/index.html", "--tls",
                        "--cacert", os.path.join(tls_dir(), "ca.pem"), "--sni", "localhost", "--tls-kx", kx,
                        "--conns", "1",
                        "--duration", "300ms", "--json", report], capture_output=True, timeout=30)
        with open(report) as f:
            r = json.load(f)
        verified = r["requests"] > 0 and not r["errors_total"]
    except (subprocess.TimeoutExpired, OSError, ValueError, KeyError):
        verified = False
    ls.close()
    if not seen or not seen[0]:
        return None
    return seen[0] + (() if verified else ("(certificate NOT verified against the CA)",))


def negotiated_by_openssl(port):
    """What OpenSSL's client (wrk's, with its OPENSSL_CONF) and the server agree on."""
    env = dict(os.environ, OPENSSL_CONF=os.path.join(tls_dir(), "openssl-client.cnf"))
    try:
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                              "-brief"], input="", capture_output=True, text=True, timeout=15, env=env).stderr
    except subprocess.TimeoutExpired:
        return None
    version = re.search(r"Protocol version: (\S+)", out)
    suite = re.search(r"Ciphersuite: TLS_(\S+)_SHA\d+", out)
    group = re.search(r"(?:Server Temp Key|Negotiated TLS1.3 group): (\w+)", out)
    if not version:
        return None
    suite = suite.group(1).replace("AES_128_GCM", "AES128-GCM").replace("AES_256_GCM", "AES256-GCM") if suite else "?"
    return version.group(1), suite, group.group(1) if group else "?"


NEGOTIATED = {}  # (server kind, client, groups offered) -> (version, suite, group)


# --- clients ------------------------------------------------------------------------------

LOAD_BEGAN = re.compile(r"^c10k-load: load began ([\d.]+) s in; measured after ([\d.]+) s of warm-up$")


def run_c10k_load(target, spec):
    """c10k-load per `spec`; its JSON report, for an idle population the server's RSS growth
    per held connection when c10k-load says they are all open, and with a warm-up the
    server's CPU seconds when the measured window began (`cpu_at_window`)."""
    report = os.path.join(tls_dir(), "c10k-load.json")
    if os.path.exists(report):
        os.remove(report)
    port = target.port if spec.get("plain") else target.tls_port
    idle = spec.get("idle", 0)
    duration = 1 if idle else rt.DURATION
    cmd = [rt.LOAD, "--url", f"http://127.0.0.1:{port}{spec.get('path', '/index.html')}", "--conns", str(spec["conns"]),
           "--threads", str(CLIENT_THREADS), "--duration", str(duration), "--json", report]
    if not spec.get("plain"):
        # Not --cacert: the client still checks the handshake's signature, and its CPU is
        # the server's to use on a small host; the probe (negotiated_by_load) verifies.
        cmd += ["--tls", "--sni", "localhost", "--tls-kx", KX]
    cmd += ["--new-conn"] if spec.get("new_conn") else []
    cmd += ["--tls-resume"] if spec.get("resume") else []
    cmd += ["--idle", str(idle), "--idle-timeout", "60"] if idle else []
    cmd += ["--rate", str(spec["rate"])] if spec.get("rate") else []
    warmup = spec.get("warmup")
    cmd += ["--warmup", str(warmup), "--idle-timeout", "60"] if warmup is not None else []
    rss0 = target.rss_bytes()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killer = threading.Timer(duration + (warmup or 0) + 90, proc.kill)
    killer.start()
    rss_per_idle, note, window = None, None, []
    for line in proc.stderr:
        if warmup is not None and not window and (m := LOAD_BEGAN.match(line.strip())):
            # The window begins the warm-up's seconds after the line.
            sampler = threading.Timer(float(m.group(2)), lambda: window.append(target.cpu_seconds()))
            sampler.start()
            window.append(None)
        elif idle and rss_per_idle is None and (m := rt.IDLE_READY.match(line.strip())):
            rss_per_idle = max(0, target.rss_bytes() - rss0) // idle
            print(f"loadtest: {target.label} {idle:,} idle {'TLS ' if not spec.get('plain') else ''}connections "
                  f"open in {float(m.group(2)):.2f} s; RSS sampled then", file=sys.stderr)
        elif line.startswith("c10k-load:") and not re.match(r"c10k-load:\s+\d+s ", line):
            note = line.strip()
    proc.wait()
    killer.cancel()
    if window:
        sampler.join()
    try:
        with open(report) as f:
            r = json.load(f)
    except (OSError, ValueError):
        return None, (note or f"c10k-load exited {proc.returncode} without a report")
    if idle and rss_per_idle is None:
        note = f"the {idle:,} idle connections never all opened ({r.get('idle_open', 0):,} did)"
    if warmup is not None and r.get("warmed", 0) < spec["conns"]:
        note = f"only {r.get('warmed', 0):,} of {spec['conns']:,} connections were open when the load began"
    r["rss_per_idle"] = rss_per_idle
    r["cpu_at_window"] = window[-1] if window else None
    return r, note


def run_wrk(target, spec):
    """wrk over HTTPS (with `Connection: close` for the handshake row)."""
    threads = spec.get("threads", min(spec["conns"], 2))
    cmd = ["wrk", f"-t{threads}", f"-c{spec['conns']}", f"-d{rt.DURATION}s", "--latency", "--timeout", "10s"]
    cmd += ["-H", "Connection: close"] if spec.get("close") else []
    env = dict(os.environ, OPENSSL_CONF=os.path.join(tls_dir(), "openssl-client.cnf"))
    try:
        out = subprocess.run(cmd + [f"https://127.0.0.1:{target.tls_port}{spec.get('path', '/index.html')}"],
                             capture_output=True, text=True, env=env, timeout=rt.DURATION + 60).stdout
    except subprocess.TimeoutExpired:
        return None, "wrk did not finish"
    requests = int(re.search(r"(\d+) requests in", out).group(1)) if "requests in" in out else 0
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    pct = lambda q: rt.to_us(m.group(1)) if (m := re.search(rf"^\s+{q}%\s+(\S+)", out, re.M)) else None
    return {"requests": requests, "p50_us": pct(50), "p99_us": pct(99), "errors_total": errors}, None


def measure(target, name):
    spec = SPEC[name]
    client = spec["client"]
    key = (target.kind, "plain" if spec.get("plain") else client, KX if client == "c10k-load" else "openssl.cnf")
    if key not in NEGOTIATED and not spec.get("plain"):
        NEGOTIATED[key] = (negotiated_by_load(target.tls_port, KX) if client == "c10k-load"
                           else negotiated_by_openssl(target.tls_port))
    hs0 = target.handshakes()
    cpu0 = target.cpu_seconds()
    r, note = (run_c10k_load if client == "c10k-load" else run_wrk)(target, spec)
    cpu1 = target.cpu_seconds()
    cpu = cpu1 - cpu0
    hs1 = target.handshakes()
    row = {
        "backend": target.label, "scenario": name, "tool": client, "connections": spec["conns"],
        "idle": spec.get("idle", 0), "pipeline": 1, "duration_s": rt.DURATION, "requests": 0, "rps": 0,
        "p50_us": None, "p99_us": None, "errors": None, "server_cpu_us_per_req": None,
        "server_rss_bytes_per_idle_conn": None, "tls": not spec.get("plain"),
        "negotiated": " ".join(NEGOTIATED.get(key) or ("?",)) if not spec.get("plain") else "plaintext",
        "handshakes": None, "resumed_pct": None, "server_resumed_by_shard": None, "note": note,
        "client_kx": KX if client == "c10k-load" and not spec.get("plain") else None,
        "warmup_s": spec.get("warmup"),
    }
    if r is None:
        return row
    requests = r["requests"]
    secs = r.get("duration_s") or rt.DURATION
    row.update(requests=requests, rps=round(requests / secs, 1) if not spec.get("idle") else 0,
               p50_us=r.get("p50_us"), p99_us=r.get("p99_us"), errors=r.get("errors_total", 0))
    if spec.get("idle"):
        row.update(server_rss_bytes_per_idle_conn=r["rss_per_idle"], p50_us=None, p99_us=None)
    elif requests:
        # The handshake rows: per handshake (one per request); the rest: per request; after a
        # warm-up, over the measured window only.
        if r.get("cpu_at_window") is not None:
            cpu = cpu1 - r["cpu_at_window"]
        row["server_cpu_us_per_req"] = round(cpu * 1e6 / requests, 2)
    if client == "c10k-load" and row["tls"]:
        row["handshakes"], row["resumed_pct"] = r.get("handshakes"), r.get("resumed_pct")
        if spec.get("warmup") is not None:
            row["warmed"] = r.get("warmed")
    elif spec.get("close"):
        row["handshakes"] = requests
    if hs0 or hs1:
        per = {}
        for shard, counts in hs1.items():
            full = counts.get("full", 0) - hs0.get(shard, {}).get("full", 0)
            resumed = counts.get("resumed", 0) - hs0.get(shard, {}).get("resumed", 0)
            failed = sum(n - hs0.get(shard, {}).get(k, 0) for k, n in counts.items() if k not in ("full", "resumed"))
            per[str(shard)] = {"full": full, "resumed": resumed, "failed": failed}
        row["server_handshakes_by_shard"] = per
        if spec.get("resume"):
            row["server_resumed_by_shard"] = {
                s: round(100 * c["resumed"] / (c["full"] + c["resumed"]), 1) if c["full"] + c["resumed"] else None
                for s, c in per.items()}
    return row


# The figures each round's value of which a row keeps beside their median (`per_round`).
PER_ROUND = ("rps", "p99_us", "server_cpu_us_per_req", "server_rss_bytes_per_idle_conn")


def median(runs):
    row = dict(runs[0])
    for k, v in row.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("connections", "idle", "pipeline"):
            values = [r[k] for r in runs if r.get(k) is not None]
            row[k] = statistics.median(values) if values else None
    row["rounds"] = len(runs)
    row["per_round"] = {k: [r.get(k) for r in runs] for k in PER_ROUND if any(r.get(k) is not None for r in runs)}
    return row


# --- the run ------------------------------------------------------------------------------

def have(tool, why):
    if shutil.which(tool):
        return True
    print(f"loadtest: {tool} is not installed ({WHERE[tool]}): {why}", file=sys.stderr)
    return False


PREPARED = []


def prepare(kinds):
    """Once per run: the tools, the certificates, which servers run the TLS rows."""
    if PREPARED:
        return PREPARED[0]
    rt.ensure("wrk", "wrk")
    if not have("openssl", "the TLS rows need it for their certificates"):
        sys.exit(2)
    make_certs()
    servers = [k for k in kinds if k in ("epoll", "uring")]
    if any(k.endswith("@baseline") for k in kinds):
        print("loadtest: the TLS rows run the current build only (not BASELINE)", file=sys.stderr)
    if "nginx" in kinds:  # --compare
        servers += ["nginx"] + (["h2o"] if have("h2o", "no h2o rows") else []) + ["lighttpd"]
    PREPARED.append(servers)
    return servers


def run(module, scenario, kinds):
    """Every server's row of `scenario` (ROUNDS rounds, servers alternating; medians)."""
    global rt
    rt = module
    name = scenario[0]
    servers = prepare(kinds)
    spec = SPEC[name]
    runs = {k: [] for k in servers}
    for _ in range(rt.ROUNDS):
        for kind in servers:
            target = start(kind, spec.get("cert", "ecdsa"))
            try:
                runs[kind].append(measure(target, name))
            finally:
                target.stop()
    rows = []
    for kind in servers:
        row = median(runs[kind])
        rows.append(row)
        extra = f", {row['resumed_pct']}% resumed" if spec.get("resume") else ""
        extra += f", {row['server_rss_bytes_per_idle_conn']:,} B/conn" if row.get("server_rss_bytes_per_idle_conn") else ""
        extra += f" ({row['note']})" if row.get("note") else ""
        print(f"loadtest: {kind:14} {name:24} {row['rps']:>12} req/s{extra}", file=sys.stderr)
    return rows


# --- the report ---------------------------------------------------------------------------

TARGETS = [
    # scenario, what, against, target ratio, higher is better
    # Handshakes/s where the client shares the CPUs; CPU per handshake is the server's
    # capacity, 1.5× nginx's when ≤ 1/1.5 of its CPU.
    (HS_ECDSA, "handshakes/s", "nginx", 1.5, True),
    (HS_ECDSA, "CPU/handshake", "nginx", 0.67, False),
    (HS_RSA, "handshakes/s", "nginx", 1.5, True),
    (HS_RSA, "CPU/handshake", "nginx", 0.67, False),
    (HS_OPENSSL, "handshakes/s", "nginx", 1.5, True),
    (HS_OPENSSL, "CPU/handshake", "nginx", 0.67, False),
    (RESUMED, "handshakes/s", "nginx", 1.5, True),
    (RESUMED, "CPU/handshake", "nginx", 0.67, False),
    (INDEX, "CPU/req", "best", 0.8, False),
    (MIB10, "responses/s", "best", 1.0, True),
    (MIB10, "CPU/req", "best", 1.0, False),
    (MIB100, "responses/s", "best", 1.0, True),
    (MIB100, "CPU/req", "best", 1.0, False),
    (IDLE, "B/conn", "nginx", 0.5, False),
    (ACTIVE, "p99", "best", 1.0, False),
]
FIELD = {"handshakes/s": "rps", "responses/s": "rps", "CPU/req": "server_cpu_us_per_req",
         "CPU/handshake": "server_cpu_us_per_req",
         "B/conn": "server_rss_bytes_per_idle_conn", "p99": "p99_us"}
PEER_KINDS = ("nginx", "h2o", "lighttpd")


def report(module, rows):
    """The TLS rows' own table, then each c10k-server row against its target."""
    global rt
    rt = module
    rows = [r for r in rows if is_tls(r["scenario"])]
    if not rows:
        return
    some = lambda v, f: "–" if v is None else f(v)
    print()
    print(f"TLS (TLS 1.3; negotiated: what the server agreed with that row's client, c10k-load offering "
          f"{KX} alone and AES-128-GCM first; CPU µs per handshake in the handshake rows, per request over "
          f"the measured window after the {WARMUP} s warm-up in the active row; RSS: growth per held connection):")
    print()
    print("| server | scenario | client | negotiated | req/s | p50 ms | p99 ms | errors | CPU µs/req | "
          "RSS B/conn | resumed % | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        resumed = some(r.get("resumed_pct"), lambda v: f"{v:.1f}") if SPEC[r["scenario"]].get("resume") else "–"
        if r.get("server_resumed_by_shard"):
            resumed += " (shards " + ", ".join(f"{v}" for v in r["server_resumed_by_shard"].values()) + ")"
        rps = "–" if SPEC[r["scenario"]].get("idle") else f"{r['rps']:,.0f}"
        cells = [r["backend"], r["scenario"], r["tool"], r.get("negotiated") or "–", rps,
                 some(r["p50_us"], rt.ms), some(r["p99_us"], rt.ms), some(r["errors"], lambda v: f"{v:,.0f}"),
                 some(r["server_cpu_us_per_req"], rt.figures),
                 some(r["server_rss_bytes_per_idle_conn"], lambda v: f"{v:,.0f}"), resumed, r.get("note") or ""]
        print("| " + " | ".join(cells) + " |")
    by = {(r["backend"], r["scenario"]): r for r in rows}
    ours = [s for s in ("epoll", "uring") if any(k[0] == s for k in by)]
    if not any(k[0] in PEER_KINDS for k in by):
        return
    print()
    print("TLS targets: c10k-server's figure over the reference (nginx's, or the best peer's at that "
          "figure: most responses/s, least CPU, least p99); ✓ where the target is met:")
    print()
    print("| scenario | figure | reference | target | " + " | ".join(ours) + " |")
    print("|---|---|---|---|" + "---|" * len(ours))
    for name, what, against, goal, higher in TARGETS:
        if not any(k[1] == name for k in by):
            continue
        field = FIELD[what]
        peers = [by[(p, name)] for p in PEER_KINDS if (p, name) in by and by[(p, name)].get(field)]
        if against == "nginx":
            peers = [p for p in peers if p["backend"] == "nginx"]
        if not peers:
            why = "no peer figure" if against != "nginx" or ("nginx", name) not in by else "nginx: none"
            print(f"| {name} | {what} | {why} | {'≥' if higher else '≤'} {goal}× | " + " | ".join("–" for _ in ours) + " |")
            continue
        ref = (max if higher else min)(peers, key=lambda p: p[field])
        cells = []
        for s in ours:
            v = by.get((s, name), {}).get(field)
            if v is None:
                cells.append("–")
                continue
            ratio = v / ref[field]
            ok = ratio >= goal if higher else ratio <= goal
            cells.append(f"{ratio:.2f} {'✓' if ok else '✗'}")
        fmt = {"rps": lambda v: f"{v:,.0f}/s", "server_cpu_us_per_req": lambda v: f"{rt.figures(v)} µs",
               "server_rss_bytes_per_idle_conn": lambda v: f"{v:,.0f} B", "p99_us": lambda v: f"{rt.ms(v)} ms"}[field]
        print(f"| {name} | {what} | {ref['backend']} {fmt(ref[field])} | {'≥' if higher else '≤'} {goal}× | "
              + " | ".join(cells) + " |")
    resumed = [by[k] for k in by if k[1] == RESUMED and k[0] in ours]
    for r in resumed:
        ok = (r.get("resumed_pct") or 0) >= 90
        print(f"\n{r['backend']} {RESUMED}: {r.get('resumed_pct')}% resumed (target ≥ 90%) {'✓' if ok else '✗'}; "
              f"per shard (server's /metrics): {r.get('server_handshakes_by_shard')}", end="")
    active = [r for r in rows if r["scenario"] == ACTIVE and r.get("per_round", {}).get("p99_us")]
    if active:
        print(f"\n\n{ACTIVE}: p99 ms by round: " + "; ".join(
            f"{r['backend']} " + " / ".join(some(v, rt.ms) for v in r["per_round"]["p99_us"]) for r in active), end="")
    plain = {k[0]: v for k, v in by.items() if k[1] == IDLE_PLAIN}
    if plain:
        print("\n\nBytes per held connection, TLS / plaintext: " + ", ".join(
            f"{s} {some(by.get((s, IDLE), {}).get('server_rss_bytes_per_idle_conn'), lambda v: f'{v:,.0f}')} / "
            f"{some(v.get('server_rss_bytes_per_idle_conn'), lambda v: f'{v:,.0f}')}" for s, v in plain.items()))
    print()
