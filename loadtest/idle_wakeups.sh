#!/usr/bin/env bash
# Idle wakeups per second of an idle server: what its timers cost with no connections.
#   loadtest/idle_wakeups.sh BINARY [BACKEND=epoll] [SECONDS=10]
# Starts BINARY --shards 1 --backend BACKEND on a free loopback port serving ./html, waits
# 2 s for it to settle, then reads voluntary_ctxt_switches + nonvoluntary_ctxt_switches
# summed over every thread (/proc/PID/task/*/status) of the shard (the `--worker 0`
# process, the master's child) and of the master, sleeps SECONDS, reads again and prints
# (after - before) / SECONDS for each: every switch away from a thread is one wakeup of it
# (a sleeping thread switches out once each time it is woken and goes back to sleep).
# Where perf works it also counts `perf stat -e context-switches` on each pid in the same
# window, as a check. Stops the master with SIGTERM (it stops its shard).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: loadtest/idle_wakeups.sh BINARY [BACKEND] [SECONDS]}
backend=${2:-epoll}; secs=${3:-10}
dir=$(mktemp -d)
"$bin" --listen 127.0.0.1:0 --root ./html --shards 1 --backend "$backend" >"$dir/log" 2>&1 &
master=$!
trap 'kill -TERM "$master" 2>/dev/null || true; wait "$master" 2>/dev/null || true; rm -rf "$dir"' EXIT
shard=''
for _ in $(seq 100); do
  grep -q 'master: listening on' "$dir/log" && shard=$(pgrep -P "$master" || true)
  [ -n "$shard" ] && break; sleep 0.1
done
[ -n "$shard" ] || { echo "idle_wakeups.sh: server did not start:" >&2; cat "$dir/log" >&2; exit 1; }
sleep 2
switches() { # PID -> voluntary + nonvoluntary switches of all its threads
  awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ {n += $2} END {print n}' "/proc/$1"/task/*/status
}
perfs=()
if perf stat -e context-switches -- true >/dev/null 2>&1; then
  for p in "$shard" "$master"; do
    perf stat -x, -e context-switches -p "$p" -o "$dir/perf.$p" -- sleep "$secs" & perfs+=($!)
  done
fi
s0=$(switches "$shard"); m0=$(switches "$master")
sleep "$secs"
s1=$(switches "$shard"); m1=$(switches "$master")
for p in "${perfs[@]}"; do wait "$p" || true; done
rate() { awk -v d="$1" -v s="$secs" 'BEGIN {printf "%.2f", d / s}'; }
threads() { find "/proc/$1/task" -mindepth 1 -maxdepth 1 | wc -l; }
echo "backend $backend, $secs s idle: shard (pid $shard, $(threads "$shard") threads) $(rate $((s1 - s0))) wakeups/s," \
  "master (pid $master, $(threads "$master") threads) $(rate $((m1 - m0))) wakeups/s"
for p in "$shard" "$master"; do
  [ -f "$dir/perf.$p" ] || continue
  n=$(awk -F, '/context-switches/ {print $1}' "$dir/perf.$p")
  case $n in ''|*[!0-9]*) echo "perf stat -p $p: ${n:-no count}";; *) echo "perf stat -p $p: $(rate "$n") context-switches/s";; esac
done
