#!/usr/bin/env bash
# Instructions per request of one shard, counted by callgrind (deterministic, unlike time).
#   loadtest/callgrind.sh BINARY [BACKEND=epoll] [REQUESTS=20000]     (BATCH=64 in the env)
# Runs BINARY --shards 1 under `valgrind --tool=callgrind --trace-children=yes` on a free
# loopback port serving ./html, sends REQUESTS `GET /index.html` over one keep-alive
# connection, pipelined BATCH at a time (each batch's responses all read, Content-Length
# framing, before the next is sent), stops the master with SIGTERM and reads the worker's
# (the `--worker` process's) callgrind summary. It does this twice, with REQUESTS and with
# 0 requests (connect and close only), and prints
#   instructions per request: (Ir_worker(REQUESTS) - Ir_worker(0)) / REQUESTS
# so the shard's start-up, drain and exit, and the connection's accept and close, cancel.
# Valgrind cannot run io_uring: use epoll (the default).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:?usage: loadtest/callgrind.sh BINARY [BACKEND] [REQUESTS]}")
backend=${2:-epoll}; requests=${3:-20000}; batch=${BATCH:-64}
dir=$(mktemp -d); echo "callgrind outputs in $dir" >&2

client() { # PORT N: N pipelined GETs on one connection, BATCH at a time, all answers read
  timeout 300 python3 - "$1" "$2" "$batch" <<'PY'
import socket, sys
port, n, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
req = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
s = socket.create_connection(("127.0.0.1", port), timeout=60)
buf, got, sent = b"", 0, 0
def more():
    global buf
    d = s.recv(1 << 16)
    if not d: sys.exit(f"callgrind.sh: connection closed after {got} responses")
    buf += d
while got < n:
    k = min(batch, n - sent); s.sendall(req * k); sent += k
    while got < sent:
        i = buf.find(b"\r\n\r\n")
        if i < 0: more(); continue
        head = buf[:i].decode("latin-1").split("\r\n")
        if not head[0].startswith("HTTP/1.1 200"): sys.exit(f"callgrind.sh: got {head[0]!r}")
        cl = next(int(h.split(":", 1)[1]) for h in head[1:] if h.lower().startswith("content-length:"))
        while len(buf) < i + 4 + cl: more()
        buf = buf[i + 4 + cl:]; got += 1
s.close()
PY
}

run() { # N -> prints the worker's total Ir for a run serving N requests
  local out=$dir/run$1 master port= ir
  mkdir "$out"
  timeout 600 valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" \
    --log-file="$out/vg.%p" "$bin" --listen 127.0.0.1:0 --root ./html --shards 1 \
    --backend "$backend" >"$out/log" 2>&1 &
  master=$!   # timeout's pid; valgrind (the master) is its child
  for _ in $(seq 300); do
    port=$(sed -En 's|.*master: listening on http://127\.0\.0\.1:([0-9]+).*|\1|p' "$out/log")
    [ -n "$port" ] && break; sleep 0.1
  done
  if [ -z "$port" ]; then echo "callgrind.sh: server did not start:" >&2; cat "$out/log" >&2
    kill "$master"; wait "$master" || true; return 1; fi
  client "$port" "$1"
  kill -TERM "$(pgrep -P "$master")"; wait "$master" || true
  ir=$(grep -l -- '^cmd: .* --worker ' "$out"/cg.* | xargs awk '/^summary:/ {print $2}')
  [ -n "$ir" ] || { echo "callgrind.sh: no worker output in $out" >&2; return 1; }
  echo "$ir"
}

full=$(run "$requests"); empty=$(run 0)
echo "worker Ir: $full with $requests requests, $empty with 0 (batch $batch)"
echo "instructions per request: $(( (full - empty) / requests ))"
