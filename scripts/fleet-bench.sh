#!/usr/bin/env bash
# Benchmark `rbtop check` against a real loopback fleet of N healthy Nix 2.8
# builders (tests/fleet/fleet.sh), side by side in one run on the same hosts
# with the floor and the alternatives. Prints one markdown table. Root only:
#
#   sudo scripts/fleet-bench.sh [N] [--rc-cost MS] [--rtt MS] [--no-loop] [--no-ping]
#   RBTOP=/path/to/rbtop scripts/fleet-bench.sh 50 --rc-cost 190 --rtt 40
#
# Rows: the floor (N parallel `ssh host true`, one session each), N parallel
# `nix store ping`, the `nix store ping` loop (one host after another;
# --no-loop skips it, --no-ping both pings, e.g. at 500 hosts), and `rbtop check`. Each with its
# wall time, its ratio to the floor, the remote sessions per host (counted
# from the hosts' sshd.log, LogLevel VERBOSE) and the machine's CPU seconds
# (every process: clients, sshd, the hosts' shells and nix-store).
# RBTOP_TIMEOUT (default 60) is passed to `rbtop check --timeout`.
# --rc-cost and --rtt are fleet.sh's: a login-shell rc cost and a delaying
# relay. Hold the fleet lock while it runs (/run/rbtop-fleet/tests.lock).
set -euo pipefail
export LC_ALL=C
N=50 RC=0 RTT=0 LOOP=1 PING=1
# rbtop's per-host limit: generous, as the fleet's hosts share this machine's
# CPU with every client (its default, 10 s, is for a fleet that does not).
TIMEOUT=${RBTOP_TIMEOUT:-60}
while (($#)); do
    case $1 in
    --rc-cost) RC=${2:?}; shift 2 ;;
    --rtt) RTT=${2:?}; shift 2 ;;
    --no-loop) LOOP=0; shift ;;
    --no-ping) LOOP=0 PING=0; shift ;;
    [0-9]*) N=$1; shift ;;
    *) echo "usage: $0 [N] [--rc-cost MS] [--rtt MS] [--no-loop] [--no-ping]" >&2; exit 2 ;;
    esac
done
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N] [--rc-cost MS] [--rtt MS] [--no-loop] [--no-ping]" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "fleet-bench: must run as root (the fleet runs sshd)" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLEET=$ROOT/tests/fleet/fleet.sh

if [[ ! -x /usr/bin/time ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1 ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
fi

RBTOP=${RBTOP:-${CARGO_TARGET_DIR:-$ROOT/target}/release/rbtop}
if [[ ! -x $RBTOP ]]; then
    echo "fleet-bench: building $RBTOP" >&2
    (cd "$ROOT" && cargo build --release --quiet) >&2
fi
# Every ssh client and ssh master holds a few descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/rbtop-bench.XXXXXX)
DIR=$WORK/fleet
cleanup() {
    [[ -n ${SAMPLER:-} ]] && kill "$SAMPLER" 2>/dev/null
    bash "$FLEET" stop "$DIR" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

opts=(--healthy "$N" --no-faults --no-trixie)
((RC)) && opts+=(--rc-cost "$RC")
((RTT)) && opts+=(--rtt "$RTT")
t0=$(date +%s.%N)
bash "$FLEET" start "$DIR" "${opts[@]}"
t_start=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{print a-b}')
# shellcheck disable=SC1091
. "$DIR/env"
mapfile -t HOSTS < <(tail -n +2 "$DIR/hosts.tsv" | cut -f1)
SSH=(ssh -F "$DIR/ssh_config")

machine_cpu() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print ($2+$3+$4+$7+$8)/hz}' /proc/stat; }
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a-b}'; }
sessions() { cat "$DIR"/b*/sshd.log | grep -c 'Starting session' || true; }

# Samples ssh client processes (masters and muxed sessions) while rbtop runs:
# peak count of `ssh` processes and their peak total RSS in KiB.
sampler() {
    local out=$1 max_n=0 max_rss=0 n rss
    while :; do
        read -r n rss < <(ps -C ssh -o rss= 2>/dev/null | awk '{ n++; rss += $1 } END { print n+0, rss+0 }')
        ((n > max_n)) && max_n=$n
        ((rss > max_rss)) && max_rss=$rss
        echo "$max_n $max_rss" >"$out"
        sleep 0.05
    done
}

ROWS=()
FLOOR=
# measure NAME COMMAND...: one row; the first row measured is the floor.
measure() {
    local name=$1 s0 c0 w0 w c s ratio
    shift
    s0=$(sessions) c0=$(machine_cpu) w0=$(now)
    "$@" || true
    w=$(sub "$(now)" "$w0") c=$(sub "$(machine_cpu)" "$c0")
    sleep 0.2 # sshd logs a session a moment after it starts
    s=$(awk -v a="$(sessions)" -v b="$s0" -v n="$N" 'BEGIN{printf "%.2f", (a-b)/n}')
    [[ -n $FLOOR ]] || FLOOR=$w
    ratio=$(awk -v a="$w" -v b="$FLOOR" 'BEGIN{printf "%.2f", a/b}')
    ROWS+=("| $name | $w | ${ratio}× | $s | $c | ${NOTE:-} |")
    NOTE=
}

floor() { printf '%s\n' "${HOSTS[@]}" | xargs -P "$N" -I{} "${SSH[@]}" {} true; }
parallel_ping() {
    local ok
    # shellcheck disable=SC2016 # $1 is for the inner sh
    ok=$(printf '%s\n' "${HOSTS[@]}" | xargs -P "$N" -I{} sh -c \
        'nix --extra-experimental-features nix-command store ping --store "ssh://$1" >/dev/null 2>&1 && echo ok' sh {} | grep -c ok || true)
    NOTE="$ok/$N ok"
}
ping_loop() {
    local ok=0 h
    for h in "${HOSTS[@]}"; do
        nix --extra-experimental-features nix-command store ping --store "ssh://$h" >/dev/null 2>&1 && ok=$((ok + 1))
    done
    NOTE="$ok/$N ok"
}
rbtop_check() {
    echo "0 0" >"$WORK/ssh.sample"
    sampler "$WORK/ssh.sample" &
    SAMPLER=$!
    local rc=0 m=0 up own ssh_n ssh_rss
    XDG_STATE_HOME=$WORK/state RBTOP_LOG=info timeout 900 /usr/bin/time -f '%e %U %S %M' -o "$WORK/rbtop.time" \
        "$RBTOP" check --json --timeout "$TIMEOUT" --machines "$DIR/machines" >"$WORK/rbtop.json" 2>"$WORK/rbtop.err" || rc=$?
    kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=
    ((rc > 1)) && { echo "fleet-bench: rbtop check exited $rc:" >&2; tail -n 20 "$WORK/rbtop.err" >&2; }
    read -r _ _ _ m < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$WORK/rbtop.time") || true
    up=$(grep -o -E '"status": *"up"' "$WORK/rbtop.json" | wc -l || true)
    # What the others were, if any: status names and counts.
    if ((up < N)); then
        up="$up ($(grep -o -E '"status": *"[a-z]+"' "$WORK/rbtop.json" | sort | uniq -c | tr -s ' ' | tr '\n' ' '))"
    fi
    own=$(grep -h -o 'own_cpu_ms=[0-9]*' "$WORK"/state/rbtop/rbtop.*.log 2>/dev/null | tail -n 1 | cut -d= -f2 || true)
    read -r ssh_n ssh_rss <"$WORK/ssh.sample"
    NOTE="exit $rc, $up/$N up; rbtop RSS $((m / 1024)) MiB, own CPU ${own:-?} ms"
    NOTE+=" ($(awk -v o="${own:-0}" -v n="$N" 'BEGIN{printf "%.2f", o/n}') ms/host); peak $ssh_n ssh processes,"
    NOTE+=" $((ssh_rss / 1024)) MiB ($(awk -v r="$ssh_rss" -v n="$N" 'BEGIN{printf "%.1f", r/n/1024}') MiB per master)"
}

measure "floor: $N parallel \`ssh host true\`" floor
((PING)) && measure "$N parallel \`nix store ping\`" parallel_ping
measure "\`rbtop check\`" rbtop_check
((LOOP)) && measure "\`nix store ping\` loop" ping_loop

cat <<TABLE

### $N healthy Nix 2.8 hosts on loopback, rc cost ${RC} ms, RTT ${RTT} ms ($(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); fleet started in $(awk -v x="$t_start" 'BEGIN{printf "%.1f", x}') s)

| what | wall s | × floor | sessions/host | machine CPU s | notes |
|---|---|---|---|---|---|
$(printf '%s\n' "${ROWS[@]}")

Machine CPU: every process on the machine (clients, the hosts' sshd, shells
and nix-store) from /proc/stat. Sessions: \`Starting session\` lines in the
hosts' sshd.log (LogLevel VERBOSE). rbtop's own CPU excludes its ssh masters.
TABLE
