#!/usr/bin/env bash
# What the live machines file buys: real nix-builds sent to a fleet where
# one builder hangs (accepts TCP, never answers), once with the full
# machines file and once with the live file rbtop serve keeps.
#
#   sudo tests/fleet/fleet.sh start /tmp/f
#   sudo scripts/live-machines-demo.sh /tmp/f [DERIVATIONS]
#   sudo tests/fleet/fleet.sh stop /tmp/f
#
# Prints the wall time of each build. Root (the fleet's ssh identity).
set -euo pipefail
fleet=${1:?usage: live-machines-demo.sh FLEET_DIR [DERIVATIONS]}
count=${2:-1}
rbtop=${RBTOP:-$(dirname "$0")/../target/debug/rbtop}
work=$(mktemp -d)
serve_pid=
cleanup() {
    [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The hung builder first: with equal scores Nix tries machines in order.
{ grep '^ssh://hung ' "$fleet/machines"; grep '^ssh://b1 ' "$fleet/machines"; } >"$work/full"
NIX_SSHOPTS="-F $fleet/ssh_config" "$rbtop" --machines "$work/full" serve \
    --listen 127.0.0.1:0 --timeout 3 --write-machines "$work/live" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do [[ -s $work/live ]] && break; sleep 0.2; done
[[ -s $work/live ]] || { cat "$work/serve.log" >&2; echo "no live file" >&2; exit 1; }
echo "live file:"; sed 's/^/  /' "$work/live"

cat >"$work/demo.nix" <<'NIX'
{ count, nonce }:
builtins.genList (
  i:
  derivation {
    name = "rbtop-demo-${toString i}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "echo ${nonce} ${toString i} > $out" ];
  }
) count
NIX

# build LABEL MACHINES LIMIT [SSH OPTIONS...]: one nix-build, timed.
build() {
    local label=$1 machines=$2 limit=$3 start end rc=0
    shift 3
    start=$(date +%s.%N)
    NIX_SSHOPTS="-F $fleet/ssh_config $*" timeout "$limit" nix-build "$work/demo.nix" \
        --arg count "$count" --argstr nonce "$label-$RANDOM-$$" --no-out-link \
        --max-jobs 0 --builders "@$machines" >/dev/null 2>"$work/$label.log" || rc=$?
    end=$(date +%s.%N)
    if ((rc == 124)); then
        printf '%-36s did not finish within %ss\n' "$label" "$limit"
    elif ((rc != 0)); then
        printf '%-36s FAILED (exit %s): %s\n' "$label" "$rc" "$(tail -n 2 "$work/$label.log" | tr '\n' ' ')"
    else
        awk -v l="$label" -v s="$start" -v e="$end" 'BEGIN { printf "%-36s %6.1f s\n", l, e - s }'
    fi
}

echo "$count derivation(s), each built remotely (--max-jobs 0):"
build "full file, ConnectTimeout=5" "$work/full" 120 -o ConnectTimeout=5
build "live file, ConnectTimeout=5" "$work/live" 120 -o ConnectTimeout=5
if [[ ${NO_TIMEOUT_LIMIT:-0} != 0 ]]; then
    build "full file, no ConnectTimeout" "$work/full" "$NO_TIMEOUT_LIMIT"
    build "live file, no ConnectTimeout" "$work/live" "$NO_TIMEOUT_LIMIT"
fi
