#!/usr/bin/env bash
# What pinning costs where the client shares the cores: wrk -t1 -c100 on index.html against
# SHARDS (2) shards of BINARY, --cpu-affinity auto and off alternating for ROUNDS (3) rounds
# of DURATION (5) s; prints requests/s and the shards' CPU µs per request (utime+stime from
# /proc, in 10 ms ticks). Each server is stopped by its pid.
#   loadtest/affinity.sh [BINARY=target/release/c10k-server]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/c10k-server}
shards=${SHARDS:-2}; rounds=${ROUNDS:-3}; duration=${DURATION:-5}
command -v wrk >/dev/null || { echo "affinity.sh: wrk is needed (apt-get install wrk)" >&2; exit 2; }
cpu() { local t=0; for k in $1; do set -- $(cut -d' ' -f14,15 "/proc/$k/stat"); t=$((t + $1 + $2)); done; echo $t; }
for round in $(seq "$rounds"); do
  for aff in auto off; do
    log=$(mktemp)
    "$bin" --listen 127.0.0.1:0 --root ./html --shards "$shards" --cpu-affinity "$aff" >"$log" 2>&1 &
    master=$!
    for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
    port=$(grep -oE "listening on http://127.0.0.1:[0-9]+" "$log" | grep -oE "[0-9]+$")
    kids=$(cat "/proc/$master/task/$master/children")
    before=$(cpu "$kids")
    out=$(wrk -t1 -c100 -d"${duration}s" "http://127.0.0.1:$port/index.html")
    after=$(cpu "$kids")
    reqs=$(echo "$out" | grep -oE "[0-9]+ requests" | grep -oE "[0-9]+")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    echo "round $round --cpu-affinity $aff: $rps requests/s, $(python3 -c "print(round(($after - $before) * 10000 / $reqs, 2))") us CPU a request"
    kill "$master"; wait "$master" 2>/dev/null || true
    rm -f "$log"
  done
done
