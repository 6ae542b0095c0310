#!/usr/bin/env bash
# See rbtop's live dashboard running, for newcomers: start the project's
# loopback test fleet (4 healthy builders: Nix 2.8 and 2.26, and one host of
# each fault), open `rbtop` on it in this terminal, and stop the fleet when
# rbtop exits (q). Run as root, after `bash tests/run-all.sh --setup-only`.
#
#   bash scripts/dashboard-demo.sh [extra rbtop flags, e.g. --refresh 2]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
[[ -t 0 && -t 1 ]] || { echo "dashboard-demo: needs a terminal (it opens the live dashboard)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/rbtop-demo.XXXXXX)
cleanup() {
    trap - EXIT INT TERM HUP
    bash "$ROOT/tests/fleet/fleet.sh" stop "$DIR/fleet" || true
    rm -rf "$DIR"
}
trap cleanup EXIT
# A signal stops the fleet too (via the EXIT trap), with the usual status.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

(cd "$ROOT" && cargo build --release --quiet)
bash "$ROOT/tests/fleet/fleet.sh" start "$DIR/fleet"
# shellcheck disable=SC1091
. "$DIR/fleet/env"   # NIX_SSHOPTS='-F <fleet>/ssh_config', as for Nix itself
# The fleet is offline: no binary cache to ask, and `nix build` enabled.
export NIX_CONFIG="substituters =
experimental-features = nix-command"
echo "\$ rbtop --machines $DIR/fleet/machines --timeout 5 $*"
echo "Opening the live dashboard: 4 builders up (b1-b3, t1), 5 down for one reason each (refused, hung, authfail, nonix, wrongkey); j/k and Enter show why; q quits."
echo "To try a build: select b1, press b and enter"
echo "    $ROOT/tests/fixtures/builds/numbered.nix --argstr seed $RANDOM --arg lines 300 --arg delay 0.2"
echo "then l for its live log, x and y to cancel it."
sleep 3
status=0
"${CARGO_TARGET_DIR:-$ROOT/target}/release/rbtop" --machines "$DIR/fleet/machines" --timeout 5 "$@" || status=$?
echo "(rbtop exited with status $status; stopping the fleet)"
