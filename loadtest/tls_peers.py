"""The servers of the TLS rows (loadtest/tls_bench.py) and their certificates.

make_certs() makes, with the openssl CLI, a CA and an ECDSA P-256 and an RSA 2048 leaf for
`localhost` (and 127.0.0.1) into loadtest/results/tls/, with the OPENSSL_CONF that wrk's
OpenSSL client runs with there; start() starts one server with one of the leaves, with 2
shards or workers (run.py's SHARDS), serving run.py's site over HTTP and HTTPS: C10k is
c10k-server (either backend) with `--tls-listen` beside its plain `--listen` and a status
listener for its handshake counters; Peer is nginx, h2o or lighttpd, configured as a
deployment would be (see tls_bench's docstring), in loadtest/results/<kind>-tls/.
"""
import os, re, signal, socket, subprocess, sys, time

rt = None  # run.py's module, for its helpers (Target, free_port, ...): tls_bench.use() sets it


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
            f.write(rt.nginx_conf(self.dir, f"""  default_type application/octet-stream;
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
"""))
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
{rt.lighttpd_conf(self.dir, self.port)}$SERVER["socket"] == "127.0.0.1:{self.tls_port}" {{
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
