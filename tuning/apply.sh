#!/bin/sh
# tuning/apply.sh [--target N] [--shards S] [--client] [--dry-run] [--persist]
#
# Raises the sysctls that check.sh flags for N connections (default 10000) over S shards
# (default: the online CPUs) to the values tuning/lib.sh recommends, with sysctl -w. It
# only ever raises capacity: a knob that already meets the need is left as it is, so a
# second run changes nothing. Needs root, except with --dry-run.
#
#   --shards   the shard processes the server will run (as its --shards): each needs
#              ceil(N/S) + 256 descriptors, which sizes fs.nr_open and the nofile that
#              --persist writes; the other knobs depend on N only
#   --client   also the load-generator knobs (ip_local_port_range 1024-65535,
#              tcp_tw_reuse 1), for a host that runs the load test too
#   --persist  also write $ETC_ROOT/sysctl.d/99-c10k.conf (each knob at the value it has
#              after this run, so a reboot keeps it) and
#              $ETC_ROOT/security/limits.d/99-c10k.conf (nofile for login sessions)
#   --dry-run  print exactly what would run and be written (as a shell script) and change
#              nothing
#
# Exit 0 when everything was applied, 1 when something could not be (a read-only
# /proc/sys in a container, say: reported, and the rest still applied), 2 on bad usage.
# With PROC_ROOT other than /proc (tests), values are written into that tree, not with
# sysctl -w; ETC_ROOT likewise decides where --persist writes.

set -u
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=tuning/lib.sh
. "$here/lib.sh"

usage="usage: apply.sh [--target N] [--shards S] [--client] [--dry-run] [--persist]"
usage_error() {
    echo "apply.sh: $1 ($usage)" >&2
    exit 2
}

DRY=0
PERSIST=0
CLIENT=0
parse_common_args "$@"
for arg in $OTHER_ARGS; do
    case $arg in
    --dry-run) DRY=1 ;;
    --persist) PERSIST=1 ;;
    --client) CLIENT=1 ;;
    *) usage_error "unknown argument '$arg'" ;;
    esac
done

if [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "apply.sh: changing sysctls needs root: run it as root, or with --dry-run to see what it would do" >&2
    exit 1
fi

compute_needs "$TARGET" "$SHARDS"
failed=0
# In dry-run mode every line printed is either a command or a comment, so the output
# is itself the script that would run.
say() { echo "# $*"; }

say "apply.sh: $TARGET connections, $(plural "$SHARDS" shard), $PER_PROC descriptors per shard process$([ "$DRY" = 1 ] && echo "; dry run, nothing is changed")"

# set_sysctl NAME VALUE: set it now; report and count a failure.
set_sysctl() {
    if [ "$PROC_ROOT" = /proc ] && command -v sysctl >/dev/null 2>&1; then
        _out=$(sysctl -w "$1=$2" 2>&1 >/dev/null) && return 0
    else
        _out=$( (printf '%s\n' "$2" >"$(sysctl_path "$1")") 2>&1) && return 0
    fi
    echo "apply.sh: could not set $1=$2: ${_out:-write failed} (read-only /proc/sys, e.g. in a container?); going on" >&2
    failed=$((failed + 1))
    return 1
}

knobs=$SERVER_KNOBS
[ "$CLIENT" = 1 ] && knobs="$knobs $CLIENT_KNOBS"
sysctl_conf="# sysctl.d/99-c10k.conf, written by tuning/apply.sh for $TARGET connections over $(plural "$SHARDS" shard).
# Each value is at least what the target needs and never below what the host had.
# A file in sysctl.d sets a value (it does not only raise it): edit with care.
"
changed=0
for k in $knobs; do
    if ! cur=$(read_sysctl "$k"); then
        say "$k: not on this kernel, skipped"
        continue
    fi
    after=$cur
    if want=$(knob_wants "$k" "$cur"); then
        echo "sysctl -w $(sysctl_arg "$k" "$want")"
        changed=$((changed + 1))
        [ "$DRY" = 0 ] && set_sysctl "$k" "$want"
        # Persist what is wanted even if it could not be set now: the file states intent.
        after=$want
    else
        say "$k = $cur: enough"
    fi
    sysctl_conf="$sysctl_conf
# $(knob_why "$k")
$k = $after"
done
[ "$changed" = 0 ] && say "no sysctl needs raising"

# What apply.sh does not change, and why.
if tm=$(read_sysctl net.ipv4.tcp_mem); then
    # shellcheck disable=SC2086
    set -- $tm
    if t3=$(num "${3:-}") && [ "$t3" -lt "$TCP_MEM_NEED_PAGES" ]; then
        say "net.ipv4.tcp_mem = $tm is below $TCP_MEM_NEED_PAGES pages for $TARGET idle sockets; it is sized from memory at boot, so raise it by hand if memory allows: sysctl -w net.ipv4.tcp_mem=\"$1 $(min "$2" "$TCP_MEM_NEED_PAGES") $TCP_MEM_NEED_PAGES\""
    fi
fi
if iud=$(read_sysctl kernel.io_uring_disabled) && [ "$iud" != 0 ]; then
    say "kernel.io_uring_disabled = $iud left as it is (a security choice): the server serves with epoll"
fi
hard=$(num "${NOFILE_HARD:-$(rlimit_nofile hard)}") || hard=0
if [ "$hard" -lt "$PER_PROC" ]; then
    say "nofile: this shell's hard limit $hard is below $PER_PROC; a running process cannot get more without CAP_SYS_RESOURCE:"
    say "  as a service, use deploy/c10k-server.service (LimitNOFILE=1048576); for login sessions, --persist writes limits.d"
fi

# write_file PATH CONTENT: write (or, dry-run, print the command that would write) PATH.
write_file() {
    if [ "$DRY" = 1 ]; then
        echo "mkdir -p '$(dirname "$1")'"
        echo "cat > '$1' <<'EOF'"
        printf '%s\n' "$2"
        echo "EOF"
        return 0
    fi
    if mkdir -p "$(dirname "$1")" 2>/dev/null && printf '%s\n' "$2" >"$1.tmp.$$" 2>/dev/null && mv -f "$1.tmp.$$" "$1" 2>/dev/null; then
        say "wrote $1"
    else
        rm -f "$1.tmp.$$" 2>/dev/null
        echo "apply.sh: could not write $1; going on" >&2
        failed=$((failed + 1))
    fi
}

if [ "$PERSIST" = 1 ]; then
    write_file "$ETC_ROOT/sysctl.d/99-c10k.conf" "$sysctl_conf"
    if [ -d "$ETC_ROOT/security" ]; then
        # Never below what this shell has, never above fs.nr_open (pam_limits could not set it).
        nofile=$(max "$NOFILE_REC" "$hard")
        nr=$(read_sysctl fs.nr_open) && nr=$(num "$nr") || nr=$BIG
        w=$(knob_wants fs.nr_open "$nr") && nr=$w
        nofile=$(min "$nofile" "$nr")
        limits="# security/limits.d/99-c10k.conf, written by tuning/apply.sh for $TARGET connections over
# $(plural "$SHARDS" shard): each shard process needs $PER_PROC descriptors. pam_limits applies it to new login
# sessions; '*' does not cover root, hence the root lines. systemd services ignore it: they
# take LimitNOFILE= from their unit (deploy/c10k-server.service).
*     soft  nofile  $nofile
*     hard  nofile  $nofile
root  soft  nofile  $nofile
root  hard  nofile  $nofile"
        # shellcheck disable=SC2046 # two words
        set -- $(kernel_version)
        if [ "$1" -lt 5 ] || { [ "$1" -eq 5 ] && [ "$2" -lt 12 ]; }; then
            limits="$limits
# Before 5.12 io_uring memory is charged to RLIMIT_MEMLOCK (KiB).
*     soft  memlock $MEMLOCK_NEED_KIB
*     hard  memlock $MEMLOCK_NEED_KIB
root  soft  memlock $MEMLOCK_NEED_KIB
root  hard  memlock $MEMLOCK_NEED_KIB"
        fi
        write_file "$ETC_ROOT/security/limits.d/99-c10k.conf" "$limits"
    else
        say "no $ETC_ROOT/security (pam_limits not installed): limits.d not written; use LimitNOFILE= in the unit"
    fi
fi

if [ "$failed" -gt 0 ]; then
    echo "apply.sh: $failed change(s) could not be made; see above" >&2
    exit 1
fi
exit 0
