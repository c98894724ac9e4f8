# tuning/lib.sh: what check.sh and apply.sh share (sourced, POSIX sh).
#
# One place decides, for a target of T connections over S shards, what each knob must be
# at least (the "need": below it check.sh says WARN or FAIL) and what apply.sh sets it to
# when it is below (the "rec", never below the need). apply.sh changes a knob only when
# check.sh would flag it, and only ever in the direction that raises capacity, so running
# it twice changes nothing the second time.
#
# Every read of /proc, /sys and /etc goes through PROC_ROOT, SYS_ROOT and ETC_ROOT, so the
# tests can point them at a fake tree.
#
# shellcheck disable=SC2034 # the variables are for the scripts that source this file

: "${PROC_ROOT:=/proc}"
: "${SYS_ROOT:=/sys}"
: "${ETC_ROOT:=/etc}"

TAB=$(printf '\t')
NL='
'
# Descriptors a shard keeps for itself (stdio, listener, poller or ring, the file cache's
# 192 open files, slack): the server's RESERVE_FDS.
RESERVE_FDS=256
# Stands for "unlimited" and anything too large for shell arithmetic.
BIG=9223372036854775807
# Kernel memory of a mostly idle socket: the smallest receive and send buffers, 4 KiB each.
SOCK_IDLE_BYTES=8192
# What one connection costs at most in all (socket, TCP state, the server's slot, and the
# 64 KiB a connection being served may hold in the shard): the server's BYTES_PER_CONN.
CONN_BYTES=75776
# Before 5.12 io_uring memory is charged to RLIMIT_MEMLOCK; the server wants 8 MiB.
MEMLOCK_NEED_KIB=8192
# At or above this target the C10M knobs (RPS/RFS/XPS, IRQs, NUMA) become warnings.
BIG_TARGET=100000

# The sysctls apply.sh manages, in the order it applies and persists them. The client ones
# only matter on a host that also runs the load generator (apply.sh --client).
SERVER_KNOBS="fs.file-max fs.nr_open net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.core.netdev_max_backlog net.ipv4.tcp_fin_timeout net.netfilter.nf_conntrack_max"
CLIENT_KNOBS="net.ipv4.ip_local_port_range net.ipv4.tcp_tw_reuse"

# num VALUE: VALUE as a number for shell arithmetic ("unlimited", "infinity" and numbers of
# 19 or more digits become BIG); nothing (status 1) when it is not a number.
num() {
    case $1 in
    unlimited | infinity) echo "$BIG" ;;
    '' | *[!0-9]*) return 1 ;;
    *) if [ ${#1} -ge 19 ]; then echo "$BIG"; else echo "$1"; fi ;;
    esac
}

# is_count VALUE MAX: VALUE is a whole number from 1 to MAX.
is_count() {
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    [ ${#1} -le 10 ] && [ "$1" -ge 1 ] && [ "$1" -le "$2" ]
}

# plural N WORD: "1 shard", "2 shards".
plural() { if [ "$1" -eq 1 ]; then echo "$1 $2"; else echo "$1 ${2}s"; fi; }
ceil_div() { echo $((($1 + $2 - 1) / $2)); }
max() { if [ "$1" -ge "$2" ]; then echo "$1"; else echo "$2"; fi; }
min() { if [ "$1" -le "$2" ]; then echo "$1"; else echo "$2"; fi; }
# pow2 N: the smallest power of two >= N.
pow2() {
    _p=1
    while [ "$_p" -lt "$1" ]; do _p=$((_p * 2)); done
    echo "$_p"
}

# read_file PATH: the file's content with runs of blanks and newlines made one space.
read_file() {
    [ -r "$1" ] && [ -f "$1" ] || return 1
    _v=$(cat "$1" 2>/dev/null) || return 1
    set -f
    # shellcheck disable=SC2086 # splitting on blanks is the point
    set -- $_v
    set +f
    echo "$*"
}

sysctl_path() { echo "$PROC_ROOT/sys/$(echo "$1" | tr . /)"; }
read_sysctl() { read_file "$(sysctl_path "$1")"; }

# field N WORDS...: the Nth word.
field() {
    _n=$1
    shift
    [ "$#" -ge "$_n" ] || return 1
    eval "echo \"\${$_n}\""
}

# cpu_count: online CPUs, from $SYS_ROOT/devices/system/cpu/online ("0-3,6"), else nproc.
cpu_count() {
    _o=$(read_file "$SYS_ROOT/devices/system/cpu/online") || _o=
    if [ -n "$_o" ]; then
        _n=$(echo "$_o" | tr ',' '\n' | awk -F- '/^[0-9]+(-[0-9]+)?$/ { n += (NF == 2 ? $2 - $1 + 1 : 1) } END { print n + 0 }')
        [ "$_n" -ge 1 ] && { echo "$_n"; return; }
    fi
    _n=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null) || _n=1
    num "$_n" >/dev/null || _n=1
    echo "$_n"
}

# kernel_version: "MAJOR MINOR" from $PROC_ROOT/sys/kernel/osrelease (0 0 when unknown).
kernel_version() {
    _r=$(read_sysctl kernel.osrelease) || _r=
    echo "$_r" | awk -F'[.-]' '{ printf "%d %d\n", $1 + 0, $2 + 0 }'
}

# meminfo KEY: the value in KiB of KEY in $PROC_ROOT/meminfo.
meminfo() {
    awk -v k="$1:" '$1 == k { print $2; found = 1 } END { exit !found }' "$PROC_ROOT/meminfo" 2>/dev/null
}

page_size() { num "${PAGE_SIZE:-$(getconf PAGESIZE 2>/dev/null)}" || echo 4096; }

# files_in_use: allocated minus free file handles (fs.file-nr), 0 when unknown.
files_in_use() {
    _fnr=$(read_sysctl fs.file-nr) || { echo 0; return; }
    # shellcheck disable=SC2086
    set -- $_fnr
    if num "${1:-}" >/dev/null && num "${2:-}" >/dev/null; then echo $(($1 - $2)); else echo 0; fi
}

# compute_needs TARGET SHARDS: set the needs and recommendations below.
compute_needs() {
    T=$1
    S=$2
    # Each shard is its own process with its own RLIMIT_NOFILE.
    PER_PROC=$(($(ceil_div "$T" "$S") + RESERVE_FDS))
    # Whole powers of two as the values to set, so a slightly larger target does not mean
    # another round of tuning; limits files never go below what the server needs.
    NOFILE_REC=$(max 1024 "$(pow2 "$PER_PROC")")
    FILE_MAX_NEED=$((T + $(ceil_div "$T" 10)))
    FILE_MAX_REC=$(max 1048576 "$(pow2 "$FILE_MAX_NEED")")
    NR_OPEN_NEED=$PER_PROC
    # 1048576 is the kernel default and what the shipped unit's LimitNOFILE needs.
    NR_OPEN_REC=$(max 1048576 "$(pow2 "$PER_PROC")")
    # The server listens with the largest backlog allowed, which the kernel caps here.
    SOMAXCONN_NEED=4096
    SYN_BACKLOG_NEED=4096
    NETDEV_BACKLOG_NEED=1000
    if [ "$T" -ge "$BIG_TARGET" ]; then NETDEV_BACKLOG_REC=16384; else NETDEV_BACKLOG_REC=1000; fi
    FIN_TIMEOUT_MAX=60
    FIN_TIMEOUT_REC=30
    CONNTRACK_NEED=$T
    # nf_conntrack_max is an int: 2^30 is the largest power of two it takes.
    CONNTRACK_REC=$(min 1073741824 "$(max 262144 "$(pow2 $((2 * T)))")")
    TCP_MEM_NEED_PAGES=$(ceil_div $((T * SOCK_IDLE_BYTES)) "$(page_size)")
    PORT_LO_REC=1024
    PORT_HI_REC=65535
    RFS_ENTRIES_REC=$(min 1048576 "$(max 32768 "$(pow2 "$T")")")
    FILES_IN_USE=$(files_in_use)
}

# knob_wants NAME CURRENT: when CURRENT is short of the need, print the value to set and
# succeed; otherwise fail. The same rule makes check.sh's status and apply.sh's change.
knob_wants() {
    _k=$1
    _c=$2
    case $_k in
    net.ipv4.ip_local_port_range)
        # shellcheck disable=SC2086
        set -- $_c
        _lo=$(num "${1:-}") || return 1
        _hi=$(num "${2:-}") || return 1
        [ "$_lo" -gt "$PORT_LO_REC" ] || [ "$_hi" -lt "$PORT_HI_REC" ] || return 1
        echo "$(min "$_lo" "$PORT_LO_REC") $(max "$_hi" "$PORT_HI_REC")"
        return 0
        ;;
    esac
    _c=$(num "$_c") || return 1
    case $_k in
    fs.file-max)
        # Room for the target next to what is already open.
        if [ "$_c" -lt "$FILE_MAX_NEED" ] || [ $((_c - FILES_IN_USE)) -lt "$T" ]; then
            max "$FILE_MAX_REC" "$(pow2 $((FILES_IN_USE + FILE_MAX_NEED)))"
        else return 1; fi
        ;;
    fs.nr_open) [ "$_c" -lt "$NR_OPEN_NEED" ] && echo "$NR_OPEN_REC" ;;
    net.core.somaxconn) [ "$_c" -lt "$SOMAXCONN_NEED" ] && echo "$SOMAXCONN_NEED" ;;
    net.ipv4.tcp_max_syn_backlog) [ "$_c" -lt "$SYN_BACKLOG_NEED" ] && echo "$SYN_BACKLOG_NEED" ;;
    net.core.netdev_max_backlog) [ "$_c" -lt "$NETDEV_BACKLOG_NEED" ] && echo "$NETDEV_BACKLOG_REC" ;;
    net.ipv4.tcp_fin_timeout) [ "$_c" -gt "$FIN_TIMEOUT_MAX" ] && echo "$FIN_TIMEOUT_REC" ;;
    net.netfilter.nf_conntrack_max) [ "$_c" -lt "$CONNTRACK_NEED" ] && echo "$CONNTRACK_REC" ;;
    # 2 (the default) covers loopback only; 1 covers every outgoing connection.
    net.ipv4.tcp_tw_reuse) [ "$_c" -eq 0 ] && echo 1 ;;
    *) return 1 ;;
    esac
}

# knob_why NAME: one line on why the knob matters (the comment in the persisted file).
knob_why() {
    case $1 in
    fs.file-max) echo "system-wide open files: every connection is one; a cap, so a high value costs nothing" ;;
    fs.nr_open) echo "ceiling of any process's RLIMIT_NOFILE (limits.conf nofile, LimitNOFILE=): each shard needs target/shards + $RESERVE_FDS" ;;
    net.core.somaxconn) echo "caps every listen backlog; the server asks for the most allowed, so a burst of new connections queues here instead of being dropped" ;;
    net.ipv4.tcp_max_syn_backlog) echo "half-open connections (SYN received) per listener; a burst of connects beyond it falls back to SYN cookies or drops" ;;
    net.core.netdev_max_backlog) echo "packets queued per CPU before TCP sees them (RPS and loopback go through it); drops here look like loss" ;;
    net.ipv4.tcp_fin_timeout) echo "seconds an orphaned connection waits in FIN-WAIT-2 for a vanished client; shorter frees its memory sooner" ;;
    net.netfilter.nf_conntrack_max) echo "connection tracking entries (only with the nf_conntrack module; load it before sysctl runs at boot): a full table drops new connections" ;;
    net.ipv4.ip_local_port_range) echo "load generator only: ephemeral ports bound a client's connections to one server ip:port (the server is not bound by it)" ;;
    net.ipv4.tcp_tw_reuse) echo "load generator only: reuse TIME-WAIT ports for new outgoing connections (2 = loopback only)" ;;
    esac
}

# sysctl_arg NAME VALUE: NAME=VALUE quoted for a shell command line.
sysctl_arg() {
    case $2 in
    *' '*) echo "$1=\"$2\"" ;;
    *) echo "$1=$2" ;;
    esac
}

# nofile_entries: the nofile lines of limits.conf and limits.d/*.conf, one per line as
# "FILE DOMAIN TYPE VALUE", FILE relative to $ETC_ROOT/security.
nofile_entries() {
    for _f in "$ETC_ROOT/security/limits.conf" "$ETC_ROOT"/security/limits.d/*.conf; do
        [ -f "$_f" ] || continue
        awk -v f="${_f#"$ETC_ROOT"/security/}" '
            { sub(/#.*/, "") }
            NF >= 4 && $3 == "nofile" { print f, $1, $2, $4 }' "$_f" 2>/dev/null
    done
}

# cap_sys_resource: whether this process may raise its hard limits (CapEff bit 24).
cap_sys_resource() {
    _m=$(awk '$1 == "CapEff:" { print $2 }' "$PROC_ROOT/self/status" 2>/dev/null) || return 1
    [ ${#_m} -ge 7 ] || return 1
    _d=$(echo "$_m" | awk '{ print substr($0, length($0) - 6, 1) }')
    case $_d in 1 | 3 | 5 | 7 | 9 | [bBdDfF]) return 0 ;; *) return 1 ;; esac
}

# rlimit_nofile soft|hard: this shell's RLIMIT_NOFILE, from ulimit, else /proc/self/limits.
rlimit_nofile() {
    # shellcheck disable=SC3045 # dash, bash, ksh and busybox sh all have ulimit -S/-H
    if [ "$1" = soft ]; then _l=$(ulimit -Sn 2>/dev/null); else _l=$(ulimit -Hn 2>/dev/null); fi
    if ! num "$_l" >/dev/null; then
        _l=$(awk -v f="$([ "$1" = soft ] && echo 4 || echo 5)" '/^Max open files/ { print $f }' /proc/self/limits 2>/dev/null)
    fi
    echo "$_l"
}

# Parse the flags both scripts take: --target N (default 10000) and --shards S (default:
# the online CPUs), validated; -h prints $usage. Any other --flag is left in OTHER_ARGS
# for the script; the caller defines usage_error.
parse_common_args() {
    TARGET=10000
    SHARDS=
    OTHER_ARGS=
    while [ $# -gt 0 ]; do
        case $1 in
        --target | --shards)
            [ $# -ge 2 ] || usage_error "$1 needs a number"
            if [ "$1" = --target ]; then TARGET=$2; else SHARDS=$2; fi
            shift 2
            ;;
        --target=*) TARGET=${1#*=} && shift ;;
        --shards=*) SHARDS=${1#*=} && shift ;;
        -h | --help)
            # shellcheck disable=SC2154 # usage is set by the script that sources this
            echo "$usage"
            exit 0
            ;;
        --*) OTHER_ARGS="$OTHER_ARGS $1" && shift ;;
        *) usage_error "unknown argument '$1'" ;;
        esac
    done
    is_count "$TARGET" 1000000000 || usage_error "--target must be a whole number from 1 to 1000000000, not '$TARGET'"
    [ -n "$SHARDS" ] || SHARDS=$(cpu_count)
    is_count "$SHARDS" 4096 || usage_error "--shards must be a whole number from 1 to 4096, not '$SHARDS'"
}
