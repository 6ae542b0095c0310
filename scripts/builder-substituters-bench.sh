#!/bin/bash
# usage: scripts/builder-substituters-bench.sh RBTOP (root; a fleet from
#   tests/fleet/fleet.sh start /tmp/fr --healthy 8 --no-faults --no-trixie --rc-cost 190 --rtt 40,
#   each host's home/.config/nix/nix.conf naming http://127.0.0.1:18932/good, served by
#   python3 -m http.server; /tmp/bench-bs/{off,on}/nix.conf without and with
#   builders-use-substitutes = true).
# One run, side by side on the same fleet: rbtop check without and with
# builders-use-substitutes, the SSH floor (ssh HOST true, all at once), and
# the manual alternative (ssh HOST nix store ping --store CACHE, one host
# after another, as an operator would). 5 rounds; median each.
set -euo pipefail
# shellcheck source=/dev/null
. /tmp/fr/env
B=$1
mapfile -t hosts < <(cut -d' ' -f1 /tmp/fr/machines | sed 's|ssh://||')
ms() {
  local s
  s=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  echo $((($(date +%s%N) - s) / 1000000))
}
floor() { for h in "${hosts[@]}"; do ssh -F /tmp/fr/ssh_config "$h" true & done; wait; }
manual() {
  for h in "${hosts[@]}"; do
    ssh -F /tmp/fr/ssh_config "$h" nix --extra-experimental-features nix-command \
      store ping --store http://127.0.0.1:18932/good
  done
}
declare -A r
for _ in 1 2 3 4 5; do
  r[off]+="$(NIX_CONF_DIR=/tmp/bench-bs/off ms "$B" --machines /tmp/fr/machines check --json) "
  r[on]+="$(NIX_CONF_DIR=/tmp/bench-bs/on ms "$B" --machines /tmp/fr/machines check --json) "
  r[floor]+="$(ms floor) "
  r[manual]+="$(ms manual) "
done
for k in off on floor manual; do
  echo "$k: $(tr ' ' '\n' <<<"${r[$k]}" | grep . | sort -n |
    awk '{a[NR]=$1} END {print "median", a[3], "min", a[1], "max", a[5]}')"
done
