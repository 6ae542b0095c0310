#!/usr/bin/env bash
# Benchmark rbtop against a real loopback fleet of N healthy Nix 2.8 builders
# (tests/fleet/fleet.sh), next to the naive alternative: a sequential
# `nix store ping` per host. Prints a markdown table. Run as root:
#
#   sudo scripts/fleet-bench.sh [N]        # N defaults to 50
#   RBTOP=/path/to/rbtop scripts/fleet-bench.sh 100
#
# rbtop is `$RBTOP`, else target/release/rbtop (built with `cargo build
# --release` when missing). `rbtop check --json --machines FILE` exiting 1
# (some host down) is not an error here.
set -euo pipefail
export LC_ALL=C
N=${1:-50}
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]" >&2; exit 2; }
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

WORK=$(mktemp -d /tmp/rbtop-bench.XXXXXX)
DIR=$WORK/fleet
cleanup() {
    [[ -n ${SAMPLER:-} ]] && kill "$SAMPLER" 2>/dev/null
    bash "$FLEET" stop "$DIR" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

t0=$(date +%s.%N)
bash "$FLEET" start "$DIR" --healthy "$N" --no-faults --no-trixie
t_start=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{print a-b}')
# shellcheck disable=SC1091
. "$DIR/env"
mapfile -t HOSTS < <(tail -n +2 "$DIR/hosts.tsv" | cut -f1)

# Machine-wide CPU seconds (all processes: rbtop, ssh, the fleet's sshd and nix-store).
machine_cpu() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print ($2+$3+$4+$7+$8)/hz}' /proc/stat; }
now() { date +%s.%N; }
fmt() { awk -v x="$1" 'BEGIN{printf "%.2f", x}'; }

# Samples ssh client processes (masters and muxed sessions) while rbtop runs:
# peak count of `ssh` processes, of ControlMasters (-M / ControlMaster), and
# peak total RSS of all of them in KiB.
sampler() {
    local out=$1 max_n=0 max_m=0 max_rss=0 n m rss
    while :; do
        read -r n m rss < <(ps -C ssh -o rss=,args= 2>/dev/null | awk '
            { n++; rss += $1; if ($0 ~ / -M|ControlMaster/) m++ } END { print n+0, m+0, rss+0 }')
        ((n > max_n)) && max_n=$n
        ((m > max_m)) && max_m=$m
        ((rss > max_rss)) && max_rss=$rss
        echo "$max_n $max_m $max_rss" >"$out"
        sleep 0.05
    done
}

# (a) rbtop check
rb_wall=- rb_cpu=- rb_cpu_host=- rb_rss=- rb_rc=- rb_mcpu=- ssh_n=- ssh_m=- ssh_rss=- rb_up=- rb_own=-
if "$RBTOP" check --help >/dev/null 2>&1; then
    echo "0 0 0" >"$WORK/ssh.sample"
    sampler "$WORK/ssh.sample" &
    SAMPLER=$!
    c0=$(machine_cpu) w0=$(now)
    set +e
    XDG_STATE_HOME=$WORK/state RBTOP_LOG=info timeout 600 /usr/bin/time -f '%e %U %S %M' -o "$WORK/rbtop.time" \
        "$RBTOP" check --json --machines "$DIR/machines" >"$WORK/rbtop.json" 2>"$WORK/rbtop.err"
    rb_rc=$?
    set -e
    w1=$(now) c1=$(machine_cpu)
    kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=
    if ((rb_rc > 1)); then
        echo "fleet-bench: rbtop check exited $rb_rc:" >&2
        tail -n 20 "$WORK/rbtop.err" >&2
    fi
    # GNU time prefixes "Command exited with non-zero status N" on exit 1.
    e=0 u=0 s=0 m=0
    read -r e u s m < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$WORK/rbtop.time") || true
    rb_wall=$(fmt "$(awk -v a="$w1" -v b="$w0" 'BEGIN{print a-b}')")
    rb_cpu=$(fmt "$(awk -v u="$u" -v s="$s" 'BEGIN{print u+s}')")
    rb_cpu_host=$(awk -v u="$u" -v s="$s" -v n="$N" 'BEGIN{printf "%.1f", (u+s)*1000/n}')
    rb_rss=$((m / 1024))
    rb_mcpu=$(fmt "$(awk -v a="$c1" -v b="$c0" 'BEGIN{print a-b}')")
    read -r ssh_n ssh_m ssh_rss <"$WORK/ssh.sample"
    ssh_rss=$((ssh_rss / 1024))
    # rbtop's own CPU (ssh excluded), from the line that ends its log.
    own=$(grep -h -o 'own_cpu_ms=[0-9]*' "$WORK"/state/rbtop/rbtop.*.log 2>/dev/null | tail -n 1 | cut -d= -f2 || true)
    [[ -n $own ]] && rb_own="$own ms ($(awk -v o="$own" -v n="$N" 'BEGIN{printf "%.2f", o/n}') ms/host)"
    # Hosts reported up, if the JSON says so in an obvious way.
    rb_up=$(grep -o -E '"(status|state)": *"(up|ok|reachable)"' "$WORK/rbtop.json" | wc -l || true)
else
    echo "fleet-bench: $RBTOP has no 'check' subcommand yet; skipping its half" >&2
fi

# (b) sequential nix store ping over the same hosts
ok=0
c0=$(machine_cpu) w0=$(now)
for h in "${HOSTS[@]}"; do
    nix --extra-experimental-features nix-command store ping --store "ssh://$h" >/dev/null 2>&1 && ok=$((ok + 1))
done
w1=$(now) c1=$(machine_cpu)
np_wall=$(fmt "$(awk -v a="$w1" -v b="$w0" 'BEGIN{print a-b}')")
np_mcpu=$(fmt "$(awk -v a="$c1" -v b="$c0" 'BEGIN{print a-b}')")

cat <<EOF

### rbtop fleet bench: $N healthy Nix 2.8 hosts on loopback ($(nproc) cores; fleet started in $(fmt "$t_start") s)

| what | wall s | CPU s (process) | CPU ms/host | machine CPU s | peak RSS MiB | notes |
|---|---|---|---|---|---|---|
| \`rbtop check --json\` | $rb_wall | $rb_cpu | $rb_cpu_host | $rb_mcpu | $rb_rss | exit $rb_rc; $rb_up hosts up in JSON; rbtop's own CPU $rb_own |
| sequential \`nix store ping --store ssh://\` | $np_wall | - | - | $np_mcpu | - | $ok/$N ok |
| ssh client processes during \`rbtop check\` | - | - | - | - | $ssh_rss | peak $ssh_n ssh processes, $ssh_m ControlMasters (-M); RSS = peak sum over all of them |

CPU (process) = user+sys of rbtop and the children it waited for (GNU time: the ssh
masters until they fork, i.e. their key exchange); rbtop's own CPU excludes them
(its log's \`own_cpu_ms\`); machine CPU =
every process on the machine, the fleet's sshd and remote nix-store included (/proc/stat).
EOF
