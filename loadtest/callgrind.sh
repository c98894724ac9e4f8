#!/usr/bin/env bash
# Instructions per request of one shard, counted by callgrind (deterministic, unlike time).
#   loadtest/callgrind.sh BINARY [BACKEND=epoll] [REQUESTS=20000]
#   env: BATCH=16 (requests per pipelined write), HEADERS='Host: x' (';'-separated lines)
# Runs BINARY --shards 1 under `valgrind --tool=callgrind --trace-children=yes` on a free
# loopback port (--listen 127.0.0.1:0) serving ./html, sends REQUESTS `GET /index.html`
# over one keep-alive connection, BATCH per write, reading each batch's responses
# (Content-Length framing) before the next, stops the master with SIGTERM and reads the
# `summary:` Ir of the worker (the callgrind file whose cmd has --worker). It does this
# twice, with REQUESTS and with 0 (connect and close only), and prints
#   instructions per request: (Ir_worker(REQUESTS) - Ir_worker(0)) / REQUESTS
# so the shard's start-up, drain and exit cancel. The figure depends on the request's bytes
# (header parsing is most of it) and a little on BATCH. Valgrind cannot run io_uring.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:?usage: loadtest/callgrind.sh BINARY [BACKEND] [REQUESTS]}")
backend=${2:-epoll}; requests=${3:-20000}; batch=${BATCH:-16}
IFS=";" read -r -a extra <<<"${HEADERS-Host: x}"
# More server flags, space-separated (e.g. SERVER_ARGS="--config c10k.toml").
read -r -a server_args <<<"${SERVER_ARGS-}"
dir=$(mktemp -d); echo "callgrind outputs in $dir" >&2

client() { # PORT N: N pipelined GETs on one connection, BATCH at a time, all answers read
  timeout 300 python3 - "$1" "$2" "$batch" "${extra[@]}" <<'PY'
import socket, sys
port, n, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
req = ("GET /index.html HTTP/1.1\r\n" + "".join(h + "\r\n" for h in sys.argv[4:]) + "\r\n").encode()
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
  local out=$dir/run$1 master port='' ir
  mkdir "$out"
  timeout 600 valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" \
    --log-file="$out/vg.%p" "$bin" --listen 127.0.0.1:0 --root ./html --shards 1 \
    --backend "$backend" "${server_args[@]}" >"$out/log" 2>&1 &
  master=$!   # timeout's pid; valgrind (the master) is its child
  for _ in $(seq 300); do
    port=$(sed -En 's|.*master: listening on http://127\.0\.0\.1:([0-9]+).*|\1|p' "$out/log")
    [ -n "$port" ] && break; sleep 0.1
  done
  if [ -z "$port" ]; then echo "callgrind.sh: server did not start:" >&2; cat "$out/log" >&2
    kill "$master"; wait "$master" || true; return 1; fi
  local served=0; client "$port" "$1" || served=$?
  kill -TERM "$(pgrep -P "$master")" || true; wait "$master" || true
  [ "$served" = 0 ] || { echo "callgrind.sh: the client failed; outputs in $out" >&2; return 1; }
  ir=$(grep -l -- '^cmd: .* --worker ' "$out"/cg.* | xargs sed -n 's/^summary: //p')
  [ -n "$ir" ] || { echo "callgrind.sh: no worker output in $out" >&2; return 1; }
  echo "$ir"
}

full=$(run "$requests"); empty=$(run 0)
echo "worker Ir: $full with $requests requests, $empty with 0 (batch $batch; total/requests $(( full / requests )))"
echo "instructions per request: $(( (full - empty) / requests ))"
