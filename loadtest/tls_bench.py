"""The TLS scenarios of make loadtest (their names start with `tls `; ONLY='^tls' picks them).

run.py hands every scenario whose tool is "tls" to run(); the rows it returns join run.py's
(latest.json and latest.csv, the main table), and report() prints their own table: the TLS
figures and each row's ratio against its target. The servers and their certificates are
tls_peers.py's, and reading what each server negotiated is tls_negotiated.py's.

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
import json, os, re, shutil, statistics, subprocess, sys, threading

import tls_negotiated, tls_peers
from tls_negotiated import NEGOTIATED, negotiated_by_load, negotiated_by_openssl
from tls_peers import make_certs, start, tls_dir

rt = None  # run.py's module, for its helpers (DURATION, LOAD, wrk, ...): use() sets it

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


def use(module):
    """run.py's module, here and in tls_peers and tls_negotiated, which use its helpers."""
    global rt
    rt = tls_peers.rt = tls_negotiated.rt = module


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
    extra = ["-H", "Connection: close"] if spec.get("close") else []
    env = dict(os.environ, OPENSSL_CONF=os.path.join(tls_dir(), "openssl-client.cnf"))
    url = f"https://127.0.0.1:{target.tls_port}{spec.get('path', '/index.html')}"
    try:
        requests, p50, p99, errors = rt.wrk(url, spec["conns"], threads, extra, env, rt.DURATION + 60)
    except subprocess.TimeoutExpired:
        return None, "wrk did not finish"
    return {"requests": requests, "p50_us": p50, "p99_us": p99, "errors_total": errors}, None


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
    use(module)
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
    use(module)
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
