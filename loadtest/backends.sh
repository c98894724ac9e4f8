#!/usr/bin/env bash
# Compare the epoll and io_uring backends in one run: wrk against one shard of the
# release binary, alternating backends ROUNDS times, reporting requests/s and the
# shard's CPU (utime+stime from /proc) per request. Needs wrk (apt-get install wrk).
#   loadtest/backends.sh [ROUNDS] [PATH] [extra wrk args...]
#   loadtest/backends.sh 3 /index.html -s loadtest/pipeline.lua
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; path=${2:-/index.html}; shift $(( $# < 2 ? $# : 2 ))
root=${ROOT:-./html}; port=${PORT:-18080}
cargo build --release -q
bin=./target/release/c10k-server
for round in $(seq "$rounds"); do
  for backend in epoll uring; do
    log=$(mktemp)
    "$bin" --listen 127.0.0.1:$port --root "$root" --shards 1 --backend $backend >"$log" 2>&1 &
    master=$!
    # Shard 0's pid from its first line: `shard 0: pid 4242, ...` (older builds) or
    # `<time> c10k-server[4242] shard 0: serving: ...`.
    shard0() {
      sed -En -e 's/^shard 0: pid ([0-9]+).*/\1/p' \
        -e 's/^[^ ]+ c10k-server\[([0-9]+)\] shard 0: serving\b.*/\1/p' "$log" | head -n1
    }
    pid=
    for _ in $(seq 50); do pid=$(shard0); [ -n "$pid" ] && break; sleep 0.1; done
    if [ -z "$pid" ]; then
      echo "backends.sh: c10k-server --backend $backend did not start:" >&2; cat "$log" >&2
      kill "$master"; wait "$master" 2>/dev/null || true; rm -f "$log"; exit 1
    fi
    ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
    before=$(ticks)
    out=$(wrk -t2 -c100 -d6s "$@" "http://127.0.0.1:$port$path")
    after=$(ticks)
    kill "$master"; wait "$master" 2>/dev/null || true; rm -f "$log"
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    hz=$(getconf CLK_TCK)
    echo "round $round $backend: $rps req/s, $(echo "scale=2; ($after - $before) * 1000000 / $hz / $requests" | bc) us CPU/request"
  done
done
