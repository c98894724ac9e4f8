#!/bin/sh
# tuning/check.sh [--target N] [--shards S] [--json]
#
# A read-only audit: can this host hold N concurrent connections (default 10000) with S
# shards (default: the online CPUs)? One row per knob: status, name, current value, what
# the target needs, and the command that fixes it. Exit 0 when nothing FAILs, 1 when
# something does, 2 on bad usage. Runs as any user and changes nothing.
#
# Output: a table in fixed columns (a value or need too wide for its column goes on a
# "value:" or "need:" line below its row, a row's note on a "#" line), then the capacity
# and the verdict. With --json, one object with the same content:
#   {"target": N, "shards": S, "cpus": C, "descriptors_per_shard": P,
#    "capacity": {"connections": N, "bound": KNOB},
#    "verdict": {"level": "OK"|"WARN"|"FAIL", "text": ..., "fails": [KNOB...], "warnings": [KNOB...]},
#    "rows": [{"knob", "value", "need", "status", "fix", "note" (null when none)}...]}
# The level is FAIL when a row FAILs, WARN when none does but the capacity is below N, OK
# otherwise (WARN rows may remain: see "warnings").
#
# Decisions:
# - Each shard is a process with its own RLIMIT_NOFILE, so one process needs
#   ceil(N/S) + 256 descriptors (256: stdio, listener, poller, the file cache, slack).
# - Hard nofile below that FAILs: without CAP_SYS_RESOURCE nothing can raise it (with it,
#   the server raises it itself up to fs.nr_open, so WARN). Soft nofile below it is fine
#   (OK, with a note) when the hard limit suffices: the server raises soft to hard.
# - fs.file-max below N + 10% FAILs; fewer than N free handles (file-max - in use) WARNs.
#   fs.nr_open below the per-process need FAILs: no nofile limit can exceed it.
# - nf_conntrack_max below N FAILs (a full table drops new connections), more than 80% of
#   it in use WARNs; checked only where the module is loaded.
# - Backlogs (somaxconn, tcp_max_syn_backlog below 4096, netdev_max_backlog below 1000)
#   WARN: they drop bursts of new connections, not established ones.
# - Memory: MemAvailable below N x 74 KiB (the server's own estimate: 10 KiB of kernel and
#   a served connection's 64 KiB budget in the shard) FAILs, above 3/4 of
#   it WARNs; tcp_mem (pages) below N x 8 KiB (two minimal buffers per idle socket) WARNs;
#   every socket filling its default buffers beyond MemTotal WARNs (tcp_mem puts TCP under
#   pressure before that).
# - The closing "capacity" line is the smallest bound now (nofile x shards, free file
#   handles, conntrack_max, memory); a verdict without FAIL but below the target says WARN.
# - ip_local_port_range and tcp_tw_reuse are client-side (INFO): the port range bounds a
#   client's connections to one server (ip, port); a server is bounded by distinct client
#   (ip, port) pairs instead.
# - io_uring: disabled (kernel.io_uring_disabled 1 or 2), an old kernel or a small
#   RLIMIT_MEMLOCK (before 5.12) only WARN: --backend auto then serves with epoll.
# - C10M (CPUs, NUMA, NIC queues, RPS/RFS/XPS, IRQ affinity, irqbalance) WARNs only where
#   it matters: N >= 100000, or more shards than a NIC has receive queues; INFO otherwise.
# Environment: PROC_ROOT, SYS_ROOT, ETC_ROOT (default /proc, /sys, /etc), and for tests
# NOFILE_SOFT, NOFILE_HARD, MEMLOCK (KiB), PAGE_SIZE instead of ulimit and getconf.

set -u
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=tuning/lib.sh
. "$here/lib.sh"

usage="usage: check.sh [--target N] [--shards S] [--json]"
usage_error() {
    echo "check.sh: $1 ($usage)" >&2
    exit 2
}

JSON=0
parse_common_args "$@"
for arg in $OTHER_ARGS; do
    case $arg in
    --json) JSON=1 ;;
    *) usage_error "unknown argument '$arg'" ;;
    esac
done
NCPU=$(cpu_count)
compute_needs "$TARGET" "$SHARDS"
BIG_T=0
[ "$TARGET" -ge "$BIG_TARGET" ] && BIG_T=1

ROWS=
# row STATUS KNOB VALUE NEED FIX [NOTE]
row() {
    ROWS="$ROWS$1$TAB$2$TAB$3$TAB$4$TAB$5$TAB${6:-}$NL"
}
fix_sysctl() { echo "sysctl -w $(sysctl_arg "$1" "$2")"; }

# sysctl_row NAME SEVERITY NEED NOTE: a knob that knob_wants judges.
sysctl_row() {
    if ! _cur=$(read_sysctl "$1"); then
        row INFO "$1" "absent" "$3" "-" "not on this kernel or in this namespace"
        return
    fi
    if _want=$(knob_wants "$1" "$_cur"); then
        row "$2" "$1" "$_cur" "$3" "$(fix_sysctl "$1" "$_want")" "$4"
    else
        row OK "$1" "$_cur" "$3" "-"
    fi
}

# ---------------------------------------------------------------- descriptors (C10K)

soft=$(num "${NOFILE_SOFT:-$(rlimit_nofile soft)}") || soft=0
hard=$(num "${NOFILE_HARD:-$(rlimit_nofile hard)}") || hard=0
nr_open=$(read_sysctl fs.nr_open) && nr_open=$(num "$nr_open") || nr_open=
CAP=0
cap_sys_resource && CAP=1
more_shards=
[ "$hard" -gt "$RESERVE_FDS" ] && more_shards=$(ceil_div "$TARGET" $((hard - RESERVE_FDS)))
need_nofile=">= $PER_PROC per shard process"
APPLY_PERSIST="sh tuning/apply.sh --persist --target $TARGET --shards $SHARDS"

if [ "$CAP" = 1 ]; then
    cap_note="this shell has CAP_SYS_RESOURCE: the hard limit can be raised up to fs.nr_open"
else
    cap_note="no CAP_SYS_RESOURCE here: no process started from this shell can raise its hard limit past $hard, so with $(plural "$SHARDS" shard) it can hold $(((hard > RESERVE_FDS ? hard - RESERVE_FDS : 0) * SHARDS)) connections at most"
fi
if [ "$hard" -ge "$PER_PROC" ]; then
    row OK nofile.hard "$hard" "$need_nofile" "-" "$cap_note"
elif [ "$CAP" = 1 ]; then
    row WARN nofile.hard "$hard" "$need_nofile" "ulimit -Hn $NOFILE_REC" \
        "this shell has CAP_SYS_RESOURCE: the server raises its hard limit itself, up to fs.nr_open"
else
    alt=
    if [ -n "$more_shards" ]; then
        alt="; or --shards $more_shards (one core each"
        [ "$more_shards" -gt "$NCPU" ] && alt="$alt; this host has $NCPU"
        alt="$alt)"
    fi
    row FAIL nofile.hard "$hard" "$need_nofile" \
        "LimitNOFILE=$NOFILE_REC in the unit (deploy/c10k-server.service), or $APPLY_PERSIST and log in again$alt" \
        "$cap_note"
fi
if [ "$soft" -ge "$PER_PROC" ]; then
    row OK nofile.soft "$soft" "$need_nofile" "-"
elif [ "$hard" -ge "$PER_PROC" ]; then
    row OK nofile.soft "$soft" "$need_nofile" "-" \
        "the server raises soft to hard ($hard) itself; a load generator in this shell would need: ulimit -n $hard"
else
    row INFO nofile.soft "$soft" "$need_nofile" "-" "bound by nofile.hard"
fi

entries=$(nofile_entries)
if [ ! -d "$ETC_ROOT/security" ]; then
    row INFO limits.conf "absent" "hard nofile >= $PER_PROC" "-" \
        "no $ETC_ROOT/security: pam_limits is not installed; login sessions keep the inherited limits"
elif [ -z "$entries" ]; then
    row INFO limits.conf "no nofile entries" "hard nofile >= $PER_PROC" "$APPLY_PERSIST" \
        "login sessions keep the default limits; services use LimitNOFILE= instead"
else
    listed=$(echo "$entries" | awk '{ printf "%s%s: %s %s nofile %s", (NR > 1 ? "; " : ""), $1, $2, $3, $4 }')
    low=$(echo "$entries" | awk -v need="$PER_PROC" '($3 == "hard" || $3 == "-") && $4 ~ /^[0-9]+$/ && $4 + 0 < need { printf "%s%s:%s", (n++ ? ", " : ""), $1, $2 }')
    over=
    [ -n "$nr_open" ] && over=$(echo "$entries" | awk -v cap="$nr_open" '$4 ~ /^[0-9]+$/ && $4 + 0 > cap { printf "%s%s:%s", (n++ ? ", " : ""), $1, $2 }')
    if [ -n "$over" ]; then
        row WARN limits.conf "$listed" "hard nofile >= $PER_PROC, <= fs.nr_open $nr_open" \
            "lower those to $nr_open, or sysctl -w fs.nr_open=$(pow2 "$(echo "$entries" | awk '$4 ~ /^[0-9]+$/ && $4 + 0 > m { m = $4 + 0 } END { print m }')")" \
            "nofile above fs.nr_open ($over): pam_limits cannot set it and the login may be refused"
    elif [ -n "$low" ]; then
        row WARN limits.conf "$listed" "hard nofile >= $PER_PROC" "$APPLY_PERSIST" \
            "hard nofile below the need for $low (login sessions started later get it)"
    else
        row INFO limits.conf "$listed" "hard nofile >= $PER_PROC" "-" \
            "applies to login sessions (pam_limits), not to systemd services; soft entries do not matter (the server raises soft to hard)"
    fi
fi

pid1=$(read_file "$PROC_ROOT/1/comm") || pid1=
if [ "$pid1" != systemd ]; then
    row INFO systemd.LimitNOFILE "systemd not running" "LimitNOFILE >= $PER_PROC" "-" \
        "PID 1 is ${pid1:-unknown}; start the server with enough ulimit -Hn instead of deploy/c10k-server.service"
elif ! command -v systemctl >/dev/null 2>&1; then
    row INFO systemd.LimitNOFILE "no systemctl" "LimitNOFILE >= $PER_PROC" "-" "systemd runs but systemctl is not on PATH"
else
    def=$(systemctl show -p DefaultLimitNOFILE 2>/dev/null | sed -n 's/^DefaultLimitNOFILE=//p')
    if d=$(num "$def"); then
        if [ "$d" -ge "$PER_PROC" ]; then st=OK; fx=-; else st=INFO; fx="LimitNOFILE=$NOFILE_REC in the unit (deploy/c10k-server.service sets 1048576)"; fi
        row "$st" systemd.DefaultLimitNOFILE "$def" "LimitNOFILE >= $PER_PROC" "$fx" \
            "services without LimitNOFILE= start with this hard limit"
    else
        row INFO systemd.DefaultLimitNOFILE "${def:-unknown}" "LimitNOFILE >= $PER_PROC" "-"
    fi
    load=$(systemctl show -p LoadState c10k-server.service 2>/dev/null | sed -n 's/^LoadState=//p')
    if [ "$load" = loaded ]; then
        unit=$(systemctl show -p LimitNOFILE c10k-server.service 2>/dev/null | sed -n 's/^LimitNOFILE=//p')
        if u=$(num "$unit") && [ "$u" -ge "$PER_PROC" ]; then
            row OK systemd.c10k-server.LimitNOFILE "$unit" "LimitNOFILE >= $PER_PROC" "-"
        else
            row WARN systemd.c10k-server.LimitNOFILE "${unit:-unknown}" "LimitNOFILE >= $PER_PROC" \
                "systemctl edit c10k-server.service: [Service] LimitNOFILE=$NOFILE_REC; systemctl restart c10k-server" \
                "the installed unit starts the server below the need"
        fi
    fi
fi

if fm=$(read_sysctl fs.file-max) && fmn=$(num "$fm"); then
    if [ "$fmn" -lt "$FILE_MAX_NEED" ]; then
        row FAIL fs.file-max "$fm" ">= $FILE_MAX_NEED (target + 10%)" "$(fix_sysctl fs.file-max "$(knob_wants fs.file-max "$fm")")" \
            "the whole system can open only $fm files; every connection is one"
    else
        row OK fs.file-max "$fm" ">= $FILE_MAX_NEED (target + 10%)" "-"
    fi
    free=$((fmn - FILES_IN_USE))
    if [ "$free" -lt "$TARGET" ]; then
        row WARN fs.file-nr "$FILES_IN_USE in use" "file-max - in use >= $TARGET" \
            "$(fix_sysctl fs.file-max "$(knob_wants fs.file-max "$fm")")" "only $free more files can be opened system-wide"
    else
        row OK fs.file-nr "$FILES_IN_USE in use" "file-max - in use >= $TARGET" "-"
    fi
else
    row INFO fs.file-max "absent" ">= $FILE_MAX_NEED (target + 10%)" "-"
fi

if [ -n "$nr_open" ]; then
    if [ "$nr_open" -lt "$NR_OPEN_NEED" ]; then
        row FAIL fs.nr_open "$nr_open" ">= $NR_OPEN_NEED (per shard process)" "$(fix_sysctl fs.nr_open "$NR_OPEN_REC")" \
            "no process's nofile limit can exceed fs.nr_open"
    else
        row OK fs.nr_open "$nr_open" ">= $NR_OPEN_NEED (per shard process)" "-"
    fi
else
    row INFO fs.nr_open "absent" ">= $NR_OPEN_NEED (per shard process)" "-"
fi

# ---------------------------------------------------------------- backlogs and TCP

sysctl_row net.core.somaxconn WARN ">= $SOMAXCONN_NEED" \
    "every listen backlog is capped here: a burst of new connections beyond it is dropped"
sysctl_row net.ipv4.tcp_max_syn_backlog WARN ">= $SYN_BACKLOG_NEED" \
    "half-open connections per listener: a burst of connects beyond it falls back to SYN cookies or is dropped"
if cur=$(read_sysctl net.core.netdev_max_backlog); then
    if want=$(knob_wants net.core.netdev_max_backlog "$cur"); then
        row WARN net.core.netdev_max_backlog "$cur" ">= $NETDEV_BACKLOG_NEED" "$(fix_sysctl net.core.netdev_max_backlog "$want")" \
            "packets queued per CPU before TCP sees them (RPS and loopback pass through it)"
    elif c=$(num "$cur") && [ "$c" -lt "$NETDEV_BACKLOG_REC" ]; then
        row INFO net.core.netdev_max_backlog "$cur" ">= $NETDEV_BACKLOG_NEED" "$(fix_sysctl net.core.netdev_max_backlog "$NETDEV_BACKLOG_REC")" \
            "at this target, bursts through RPS or loopback can exceed $cur packets per CPU"
    else
        row OK net.core.netdev_max_backlog "$cur" ">= $NETDEV_BACKLOG_NEED" "-"
    fi
else
    row INFO net.core.netdev_max_backlog "absent" ">= $NETDEV_BACKLOG_NEED" "-"
fi

if pr=$(read_sysctl net.ipv4.ip_local_port_range); then
    # shellcheck disable=SC2086
    set -- $pr
    ports=$((${2:-0} - ${1:-0} + 1))
    fx="-"
    want=$(knob_wants net.ipv4.ip_local_port_range "$pr") && fx="on the load generator: $(fix_sysctl net.ipv4.ip_local_port_range "$want")"
    note="client-side: it bounds a client's concurrent connections per destination (ip, port) to $ports, not the server's; the server's bound is the number of distinct client (ip, port) pairs"
    [ "$TARGET" -gt 28000 ] && note="$note; a load test beyond ~28k connections needs several client source addresses (127.0.0.2, 127.0.0.3, ... on loopback) or server ports"
    row INFO net.ipv4.ip_local_port_range "$pr" "client side only" "$fx" "$note"
else
    row INFO net.ipv4.ip_local_port_range "absent" "client side only" "-"
fi
if tw=$(read_sysctl net.ipv4.tcp_tw_reuse); then
    fx="-"
    want=$(knob_wants net.ipv4.tcp_tw_reuse "$tw") && fx="on the load generator: $(fix_sysctl net.ipv4.tcp_tw_reuse "$want")"
    row INFO net.ipv4.tcp_tw_reuse "$tw" "client side only" "$fx" \
        "lets a client reuse TIME-WAIT ports for new outgoing connections (0 off, 1 on, 2 loopback only); no effect on accepted connections"
fi
sysctl_row net.ipv4.tcp_fin_timeout WARN "<= $FIN_TIMEOUT_MAX" \
    "orphaned connections of vanished clients hold memory in FIN-WAIT-2 this many seconds"

if ctmax=$(read_sysctl net.netfilter.nf_conntrack_max); then
    if want=$(knob_wants net.netfilter.nf_conntrack_max "$ctmax"); then
        row FAIL net.netfilter.nf_conntrack_max "$ctmax" ">= $CONNTRACK_NEED" "$(fix_sysctl net.netfilter.nf_conntrack_max "$want")" \
            "every tracked connection takes an entry; a full table drops new connections (dmesg: nf_conntrack: table full)"
    else
        row OK net.netfilter.nf_conntrack_max "$ctmax" ">= $CONNTRACK_NEED" "-"
    fi
    if ctn=$(read_sysctl net.netfilter.nf_conntrack_count) && ctn=$(num "$ctn") && m=$(num "$ctmax"); then
        if [ $((ctn * 5)) -gt $((m * 4)) ]; then
            row WARN net.netfilter.nf_conntrack_count "$ctn" "<= 80% of $m" "$(fix_sysctl net.netfilter.nf_conntrack_max "$(pow2 $((m * 2)))")" \
                "the table is nearly full"
        else
            row OK net.netfilter.nf_conntrack_count "$ctn" "<= 80% of $m" "-"
        fi
    fi
else
    row INFO net.netfilter.nf_conntrack_max "conntrack not loaded" ">= $CONNTRACK_NEED if loaded" "-" \
        "no connection tracking: nothing to size"
fi

# ---------------------------------------------------------------- memory

mem_total=$(meminfo MemTotal) || mem_total=
mem_avail=$(meminfo MemAvailable) || mem_avail=
need_kib=$((TARGET * CONN_BYTES / 1024))
if [ -n "$mem_total" ]; then
    # What is available now decides (as in the server's own plan); little headroom warns.
    avail=${mem_avail:-$mem_total}
    if [ "$avail" -lt "$need_kib" ]; then st=FAIL
    elif [ $((need_kib * 4)) -gt $((avail * 3)) ]; then st=WARN
    else st=OK; fi
    fx="-"
    [ "$st" != OK ] && fx="add memory, or lower --target"
    row "$st" memory "total $((mem_total / 1024)) MiB, available $((${mem_avail:-0} / 1024)) MiB" \
        ">= $((need_kib / 1024)) MiB ($((CONN_BYTES / 1024)) KiB a connection)" "$fx"
else
    row INFO memory "unknown" ">= $((need_kib / 1024)) MiB" "-" "no $PROC_ROOT/meminfo"
fi

page=$(page_size)
if tm=$(read_sysctl net.ipv4.tcp_mem); then
    # shellcheck disable=SC2086
    set -- $tm
    tmax=$(num "${3:-0}") || tmax=0
    need_txt=">= $TCP_MEM_NEED_PAGES pages max ($((SOCK_IDLE_BYTES / 1024)) KiB a socket)"
    if [ "$tmax" -lt "$TCP_MEM_NEED_PAGES" ]; then
        if [ -n "$mem_total" ] && [ $((TCP_MEM_NEED_PAGES * page / 1024)) -gt $((mem_total * 3 / 4)) ]; then
            fx="add memory: $TARGET sockets need more than 3/4 of it"
        else
            fx="$(fix_sysctl net.ipv4.tcp_mem "$1 $(min "$2" "$TCP_MEM_NEED_PAGES") $TCP_MEM_NEED_PAGES")"
        fi
        row WARN net.ipv4.tcp_mem "$tm" "$need_txt" "$fx" \
            "TCP memory of all sockets, in $page-byte pages; beyond the max new buffers are refused"
    else
        row OK net.ipv4.tcp_mem "$tm" "$need_txt" "-"
    fi
fi
if rm=$(read_sysctl net.ipv4.tcp_rmem) && wm=$(read_sysctl net.ipv4.tcp_wmem); then
    # shellcheck disable=SC2086 # field takes the words
    rdef=$(num "$(field 2 $rm)") || rdef=0
    # shellcheck disable=SC2086
    wdef=$(num "$(field 2 $wm)") || wdef=0
    worst_mib=$((TARGET * (rdef + wdef) / 1048576))
    need_txt="$TARGET x $(((rdef + wdef) / 1024)) KiB = $worst_mib MiB <= MemTotal"
    if [ -n "$mem_total" ] && [ "$worst_mib" -gt $((mem_total / 1024)) ]; then
        # shellcheck disable=SC2086
        row WARN net.ipv4.tcp_rmem/wmem "rmem $rm; wmem $wm" "$need_txt" \
            "sysctl -w net.ipv4.tcp_rmem=\"$(field 1 $rm) 16384 $(field 3 $rm)\" net.ipv4.tcp_wmem=\"$(field 1 $wm) 16384 $(field 3 $wm)\"" \
            "if every socket filled its default buffers they would need more than the $((mem_total / 1024)) MiB here (tcp_mem puts TCP under pressure first)"
    else
        row INFO net.ipv4.tcp_rmem/wmem "rmem $rm; wmem $wm" "$need_txt" "-" \
            "min, default, max bytes per socket; even if every socket filled its default buffers they would fit in memory"
    fi
fi

# ---------------------------------------------------------------- io_uring

# shellcheck disable=SC2046 # two words
set -- $(kernel_version)
kmaj=$1
kmin=$2
osrel=$(read_sysctl kernel.osrelease) || osrel=unknown
if [ "$kmaj" -gt 5 ] || { [ "$kmaj" -eq 5 ] && [ "$kmin" -ge 19 ]; }; then
    row OK kernel "$osrel" ">= 5.19 for --backend uring" "-"
else
    row INFO kernel "$osrel" ">= 5.19 for --backend uring" "-" \
        "no provided buffer rings before 5.19: --backend auto serves with epoll"
fi
# shellcheck disable=SC3045 # dash, bash, ksh and busybox sh all have ulimit -l
memlock=$(num "${MEMLOCK:-$(ulimit -l 2>/dev/null)}") || memlock=0
if [ "$kmaj" -gt 5 ] || { [ "$kmaj" -eq 5 ] && [ "$kmin" -ge 12 ]; }; then
    row INFO memlock "$memlock KiB" "not charged since 5.12" "-" "io_uring memory is charged to the memory cgroup, not RLIMIT_MEMLOCK"
elif [ "$memlock" -ge "$MEMLOCK_NEED_KIB" ]; then
    row OK memlock "$memlock KiB" ">= $MEMLOCK_NEED_KIB KiB (io_uring before 5.12)" "-"
else
    row WARN memlock "$memlock KiB" ">= $MEMLOCK_NEED_KIB KiB (io_uring before 5.12)" \
        "LimitMEMLOCK=infinity in the unit, or memlock $MEMLOCK_NEED_KIB in limits.d, or ulimit -l $MEMLOCK_NEED_KIB" \
        "rings are charged to RLIMIT_MEMLOCK before 5.12; --backend auto would serve with epoll"
fi
if iud=$(read_sysctl kernel.io_uring_disabled); then
    case $iud in
    0) row OK kernel.io_uring_disabled 0 "0 for --backend uring" "-" ;;
    1) row WARN kernel.io_uring_disabled 1 "0 for --backend uring" "sysctl -w kernel.io_uring_disabled=0 (or run in kernel.io_uring_group)" \
        "only CAP_SYS_ADMIN or members of kernel.io_uring_group may create rings; otherwise --backend auto serves with epoll" ;;
    *) row WARN kernel.io_uring_disabled "$iud" "0 for --backend uring" "sysctl -w kernel.io_uring_disabled=0" \
        "io_uring is off: --backend auto serves with epoll, --backend uring refuses to start" ;;
    esac
else
    row INFO kernel.io_uring_disabled "absent" "0 for --backend uring" "-" "no such sysctl before 6.6: io_uring is on where it is built in"
fi

# ---------------------------------------------------------------- C10M: CPUs, NUMA, NICs

if [ "$SHARDS" -gt "$NCPU" ]; then
    row WARN cpus "$NCPU" ">= $SHARDS (one core a shard)" "--shards $NCPU" \
        "more shards than CPUs: shards share cores and their pinning overlaps"
else
    row OK cpus "$NCPU" ">= $SHARDS (one core a shard)" "-"
fi

nodes=0
for n in "$SYS_ROOT"/devices/system/node/node[0-9]*; do
    [ -d "$n" ] && nodes=$((nodes + 1))
done
if [ "$nodes" -eq 0 ]; then
    row INFO numa.nodes "unknown" "-" "-" "no $SYS_ROOT/devices/system/node"
elif [ "$nodes" -gt 1 ] && [ $((SHARDS % nodes)) -ne 0 ]; then
    row WARN numa.nodes "$nodes" "shards a multiple of $nodes" "--shards $(($(ceil_div "$SHARDS" "$nodes") * nodes))" \
        "uneven shards per node: one node's memory and NIC queues carry more connections"
else
    row INFO numa.nodes "$nodes" "-" "-" \
        "$([ "$nodes" -gt 1 ] && echo "keep NIC IRQs on the NIC's node (device/numa_node)" || echo "one node: nothing to balance")"
fi

# hexmask NCPU CPU...: the kernel's cpumask text (32-bit groups, comma-separated) of CPUs.
hexmask() {
    echo "$@" | awk '{ n = $1; g = int((n + 31) / 32); for (i = 2; i <= NF; i++) { grp = int($i / 32); v[grp] += 2 ^ ($i - grp * 32) }
        s = ""; for (k = g - 1; k >= 0; k--) s = s (k == g - 1 ? sprintf("%x", v[k] + 0) : sprintf(",%08x", v[k] + 0)); print s }'
}
mask_is_zero() { case $(echo "$1" | tr -d ',0\n ') in '') return 0 ;; *) return 1 ;; esac; }
all_cpus=$(awk -v n="$NCPU" 'BEGIN { for (i = 0; i < n; i++) printf " %d", i }')

irqbalance=0
# shellcheck disable=SC2046
cat "$PROC_ROOT"/[0-9]*/comm 2>/dev/null | grep -qx irqbalance && irqbalance=1

# nic_irqs NIC: the IRQ numbers of the NIC's queues, from $PROC_ROOT/interrupts (lines that
# name the interface, or its virtio device) and from the PCI device's msi_irqs.
nic_irqs() {
    _dev=$(basename "$(readlink "$SYS_ROOT/class/net/$1/device" 2>/dev/null)" 2>/dev/null) || _dev=
    case $_dev in virtio[0-9]*) ;; *) _dev= ;; esac
    {
        awk -v nic="$1" -v dev="$_dev" '
            BEGIN { gsub(/\./, "\\.", nic); re = "(^|[^A-Za-z0-9])" nic "([^A-Za-z0-9]|$)" }
            $1 ~ /^[0-9]+:$/ && ($NF ~ re || (dev != "" && index($NF, dev "-input") == 1) || (dev != "" && index($NF, dev "-output") == 1)) { sub(":", "", $1); print $1 }' \
            "$PROC_ROOT/interrupts" 2>/dev/null
        for _i in "$SYS_ROOT/class/net/$1/device/msi_irqs"/*; do [ -e "$_i" ] && basename "$_i"; done
    } | sort -n -u
}

rfs_entries=$(read_sysctl net.core.rps_sock_flow_entries) && rfs_entries=$(num "$rfs_entries") || rfs_entries=
down=
nics=0
for d in "$SYS_ROOT"/class/net/*; do
    [ -d "$d/queues" ] || continue
    nic=$(basename "$d")
    [ "$nic" = lo ] && continue
    if [ "$(read_file "$d/operstate" || echo unknown)" = down ]; then
        down="$down $nic"
        continue
    fi
    nics=$((nics + 1))
    rxq=0 txq=0 rps_on=0 rps_vals='' flow_vals='' xps_on=0
    for q in "$d"/queues/rx-*; do
        [ -d "$q" ] || continue
        rxq=$((rxq + 1))
        m=$(read_file "$q/rps_cpus") || m=0
        mask_is_zero "$m" || rps_on=1
        rps_vals="$rps_vals ${q##*/}=$m"
        f=$(read_file "$q/rps_flow_cnt") || f=0
        flow_vals="$flow_vals ${q##*/}=$f"
    done
    for q in "$d"/queues/tx-*; do
        [ -d "$q" ] || continue
        txq=$((txq + 1))
        m=$(read_file "$q/xps_cpus") || m=0
        mask_is_zero "$m" || xps_on=1
    done
    numa=$(read_file "$d/device/numa_node") || numa=-1
    numa_note=
    [ "$numa" -ge 0 ] 2>/dev/null && [ "$nodes" -gt 1 ] && numa_note="; on NUMA node $numa"

    # Receive queues: with fewer than shards and no RPS, one core takes every packet.
    if [ "$rxq" -lt "$SHARDS" ] && [ "$rps_on" = 0 ]; then
        row WARN "nic.$nic.queues" "rx $rxq, tx $txq" "rx >= $SHARDS or RPS on" "enable RPS (see nic.$nic.rps)" \
            "fewer receive queues than shards and no RPS: the cores taking this NIC's interrupts do every shard's packet processing$numa_note"
    else
        row INFO "nic.$nic.queues" "rx $rxq, tx $txq" "rx >= $SHARDS or RPS on" "-" "hardware queues (ethtool -l $nic to see or raise them)$numa_note"
    fi

    rps_fix="-"
    if [ "$rps_on" = 0 ]; then
        # shellcheck disable=SC2086 # one argument a CPU
        mask=$(hexmask "$NCPU" $all_cpus)
        rps_fix=$(for q in "$d"/queues/rx-*; do [ -d "$q" ] && printf '%s; ' "echo $mask > /sys/class/net/$nic/queues/${q##*/}/rps_cpus"; done)
        rps_fix=${rps_fix%; }
    fi
    if [ "$rps_on" = 0 ] && { [ "$BIG_T" = 1 ] || [ "$SHARDS" -gt "$rxq" ]; }; then
        row WARN "nic.$nic.rps" "off" "on" "$rps_fix" \
            "Receive Packet Steering spreads TCP processing of $rxq queue(s) over all cores; needed when queues < shards or at $BIG_TARGET+ connections"
    else
        row INFO "nic.$nic.rps" "$([ "$rps_on" = 1 ] && echo "on:$rps_vals" || echo off)" "on if rx queues < shards" "$rps_fix"
    fi

    # RFS: packets are processed on the core where the shard that reads the socket runs.
    per_q=$(ceil_div "$RFS_ENTRIES_REC" "$(max 1 "$rxq")")
    rfs_on=0
    [ -n "$rfs_entries" ] && [ "$rfs_entries" -gt 0 ] && ! echo "$flow_vals" | grep -q '=0' && rfs_on=1
    rfs_fix="-"
    if [ "$rfs_on" = 0 ]; then
        rfs_fix="sysctl -w net.core.rps_sock_flow_entries=$RFS_ENTRIES_REC$(for q in "$d"/queues/rx-*; do [ -d "$q" ] && printf '; %s' "echo $per_q > /sys/class/net/$nic/queues/${q##*/}/rps_flow_cnt"; done)"
    fi
    rfs_val="rps_sock_flow_entries=${rfs_entries:-absent};$flow_vals"
    if [ "$rfs_on" = 0 ] && [ "$BIG_T" = 1 ]; then
        row WARN "nic.$nic.rfs" "$rfs_val" "on at $BIG_TARGET+" "$rfs_fix" \
            "Receive Flow Steering processes each packet on the core of the shard that reads it, sparing a cross-core wake-up per packet"
    else
        row INFO "nic.$nic.rfs" "$rfs_val" "on at $BIG_TARGET+" "$rfs_fix"
    fi

    # XPS: each core sends on its own queue.
    xps_fix="-"
    if [ "$xps_on" = 0 ] && [ "$txq" -gt 1 ]; then
        i=0
        xps_fix=$(for q in "$d"/queues/tx-*; do
            [ -d "$q" ] || continue
            printf '%s; ' "echo $(hexmask "$NCPU" $((i % NCPU))) > /sys/class/net/$nic/queues/${q##*/}/xps_cpus"
            i=$((i + 1))
        done)
        xps_fix=${xps_fix%; }
    fi
    if [ "$xps_on" = 0 ] && [ "$txq" -gt 1 ] && [ "$BIG_T" = 1 ]; then
        row WARN "nic.$nic.xps" "off" "on at $BIG_TARGET+ with several tx queues" "$xps_fix" \
            "Transmit Packet Steering keeps each core on its own tx queue (no lock contention between shards)"
    else
        row INFO "nic.$nic.xps" "$([ "$xps_on" = 1 ] && echo on || echo off)" "on at $BIG_TARGET+ with several tx queues" "$xps_fix"
    fi

    # IRQ affinity of the queues.
    irqs=$(nic_irqs "$nic")
    if [ -z "$irqs" ]; then
        row INFO "nic.$nic.irqs" "none found" "-" "-" "no interrupts named after $nic (a virtual device, or a driver that names them otherwise)"
    else
        aff=
        cpus_used=
        i=0
        irq_fix=
        for irq in $irqs; do
            a=$(read_file "$PROC_ROOT/irq/$irq/effective_affinity_list") || a=$(read_file "$PROC_ROOT/irq/$irq/smp_affinity_list") || a='?'
            aff="$aff $irq:$a"
            cpus_used="$cpus_used$NL$a"
            irq_fix="$irq_fix; echo $((i % NCPU)) > /proc/irq/$irq/smp_affinity_list"
            i=$((i + 1))
        done
        irq_fix=${irq_fix#; }
        distinct=$(echo "$cpus_used" | sed '/^$/d' | sort -u | wc -l | tr -d ' ')
        nirq=$(echo "$irqs" | wc -l | tr -d ' ')
        note="IRQ:cores of the queue interrupts"
        [ "$irqbalance" = 1 ] && note="$note; irqbalance runs and may undo manual pinning (stop it, or ban these IRQs)"
        if [ "$nirq" -gt 1 ] && [ "$distinct" -eq 1 ] && [ "$NCPU" -gt 1 ] && [ "$BIG_T" = 1 ]; then
            row WARN "nic.$nic.irqs" "${aff# }" "spread over cores at $BIG_TARGET+" "$irq_fix" \
                "every queue interrupts the same core: that core does all receive processing; $note"
        else
            row INFO "nic.$nic.irqs" "${aff# }" "spread over cores at $BIG_TARGET+" "-" "$note"
        fi
    fi
done
[ "$nics" -eq 0 ] && row INFO nics "none but lo" "-" "-" "no network interface with queues in $SYS_ROOT/class/net${down:+ that is up (down:$down)}"
[ "$nics" -gt 0 ] && [ -n "$down" ] && row INFO nics.down "${down# }" "-" "-" "interfaces that are down were skipped"
if [ "$irqbalance" = 1 ]; then
    row INFO irqbalance running "-" "-" "it rebalances IRQs every 10 s and may undo manual pinning: systemctl stop irqbalance, or IRQBALANCE_BANNED_CPULIST"
else
    row INFO irqbalance "not running" "-" "-" "IRQ affinity stays as set"
fi

# ---------------------------------------------------------------- capacity and verdict

fails=$(printf '%s' "$ROWS" | awk -F'\t' '$1 == "FAIL" { printf "%s%s", (n++ ? ", " : ""), $2 }')
nfail=$(printf '%s' "$ROWS" | awk -F'\t' '$1 == "FAIL"' | wc -l | tr -d ' ')
nwarn=$(printf '%s' "$ROWS" | awk -F'\t' '$1 == "WARN"' | wc -l | tr -d ' ')

# What the host holds now: the smallest of the bounds.
hard_eff=$hard
[ "$CAP" = 1 ] && [ -n "$nr_open" ] && hard_eff=$(max "$hard" "$nr_open")
cap=$(((hard_eff > RESERVE_FDS ? hard_eff - RESERVE_FDS : 0) * SHARDS))
bound="nofile.hard"
if fm=$(read_sysctl fs.file-max) && fmn=$(num "$fm"); then
    b=$((fmn - FILES_IN_USE))
    [ "$b" -lt "$cap" ] && cap=$(max 0 "$b") && bound=fs.file-max
fi
if ctmax=$(read_sysctl net.netfilter.nf_conntrack_max) && m=$(num "$ctmax") && [ "$m" -lt "$cap" ]; then
    cap=$m
    bound=net.netfilter.nf_conntrack_max
fi
if [ -n "${avail:-}" ] && [ $((avail * 1024 / CONN_BYTES)) -lt "$cap" ]; then
    cap=$((avail * 1024 / CONN_BYTES))
    bound=memory
fi
warn_txt=
[ "$nwarn" -gt 0 ] && warn_txt=" ($(plural "$nwarn" warning))"
if [ "$nfail" -eq 0 ] && [ "$cap" -lt "$TARGET" ]; then
    level=WARN
    verdict="WARN — about $cap of $TARGET connections fit now (bound by $bound)$warn_txt"
elif [ "$nfail" -eq 0 ]; then
    level=OK
    verdict="this host can hold $(plural "$TARGET" connection) with $(plural "$SHARDS" shard)$warn_txt"
elif [ "$nfail" -eq 1 ]; then
    level=FAIL
    verdict="FAIL — 1 limit stands between this host and $(plural "$TARGET" connection): $fails"
else
    level=FAIL
    verdict="FAIL — $nfail limits stand between this host and $(plural "$TARGET" connection): $fails"
fi

# ---------------------------------------------------------------- output

if [ "$JSON" = 1 ]; then
    # One object: the run's parameters, the capacity, the verdict and every row with its
    # note (null when it has none). Strings reach awk through the environment, which,
    # unlike -v, leaves backslashes alone.
    printf '%s' "$ROWS" | C_TARGET=$TARGET C_SHARDS=$SHARDS C_CPUS=$NCPU C_PER_PROC=$PER_PROC \
        C_CAP=$cap C_BOUND=$bound C_LEVEL=$level C_VERDICT=$verdict awk -F'\t' '
        # A JSON string: backslash and quote escaped, control characters as \u00XX.
        BEGIN { for (i = 1; i < 32; i++) ctl[sprintf("%c", i)] = sprintf("\\u%04x", i) }
        function q(s,    out, c, i) {
            out = ""
            for (i = 1; i <= length(s); i++) {
                c = substr(s, i, 1)
                if (c == "\\" || c == "\"") out = out "\\" c
                else if (c in ctl) out = out ctl[c]
                else out = out c
            }
            return "\"" out "\""
        }
        NF >= 5 {
            rows = rows sprintf("%s\n    {\"knob\": %s, \"value\": %s, \"need\": %s, \"status\": %s, \"fix\": %s, \"note\": %s}",
                (n++ ? "," : ""), q($2), q($3), q($4), q($1), q($5), ($6 == "" ? "null" : q($6)))
            if ($1 == "FAIL") fails = fails (nfails++ ? ", " : "") q($2)
            if ($1 == "WARN") warns = warns (nwarns++ ? ", " : "") q($2)
        }
        END {
            # The numbers are whole numbers from the shell, printed as they are (%d is
            # 32-bit in some awks).
            printf "{\n  \"target\": %s,\n  \"shards\": %s,\n  \"cpus\": %s,\n  \"descriptors_per_shard\": %s,\n", \
                ENVIRON["C_TARGET"], ENVIRON["C_SHARDS"], ENVIRON["C_CPUS"], ENVIRON["C_PER_PROC"]
            printf "  \"capacity\": {\"connections\": %s, \"bound\": %s},\n", ENVIRON["C_CAP"], q(ENVIRON["C_BOUND"])
            printf "  \"verdict\": {\"level\": %s, \"text\": %s, \"fails\": [%s], \"warnings\": [%s]},\n", \
                q(ENVIRON["C_LEVEL"]), q(ENVIRON["C_VERDICT"]), fails, warns
            printf "  \"rows\": [%s\n  ]\n}\n", rows
        }'
else
    echo "c10k-server tuning check: $TARGET connections, $(plural "$SHARDS" shard) ($(plural "$NCPU" CPU)), $PER_PROC descriptors per shard process"
    # Fixed columns. A value or need wider than its column would push the rest of the row
    # out of line, so it moves to a line of its own below the row ("value: ...") and the
    # column says "(below)". FIX is last and may be as long as it is. Knobs fit: the
    # longest is 32 characters (interface names are at most 15).
    printf '%s' "$ROWS" | awk -F'\t' '
        BEGIN {
            w[1] = 6; w[2] = 34; w[3] = 24; w[4] = 28
            label[3] = "value:"; label[4] = "need: "
            printf "%-6s %-34s %-24s %-28s %s\n", "STATUS", "KNOB", "VALUE", "NEED", "FIX"
        }
        NF >= 5 {
            line = ""
            below = ""
            for (i = 1; i <= 4; i++) {
                c = $i
                if (i >= 3 && length(c) > w[i]) {
                    below = below sprintf("       %s %s\n", label[i], c)
                    c = "(below)"
                }
                line = line sprintf("%-" w[i] "s ", c)
            }
            print line $5
            printf "%s", below
            if ($6 != "") printf "       # %s\n", $6
        }'
    echo "capacity: about $cap connections with $(plural "$SHARDS" shard), bound by $bound"
    echo "verdict: $verdict"
fi
[ "$nfail" -eq 0 ]
