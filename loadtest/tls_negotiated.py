"""What each server of the TLS rows agreed with each client: the protocol, cipher suite and
key exchange group, read off the ServerHello (through a relay for c10k-load, from `openssl
s_client` for OpenSSL's client, wrk's), printed with the rows (tls_bench.measure)."""
import json, os, re, socket, struct, subprocess, threading

from tls_peers import tls_dir

rt = None  # run.py's module (for LOAD): tls_bench.use() sets it

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
