#!/usr/bin/env bash
# rbtop's main job on a real fleet, for newcomers: start the project's
# loopback test fleet (4 healthy builders: Nix 2.8 and 2.26, and one host of
# each fault), run `rbtop check` on it, stop the fleet. Run as root, after
# `bash tests/run-all.sh --setup-only`.
#
#   bash scripts/check-demo.sh [extra rbtop check flags, e.g. --json]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
DIR=$(mktemp -d /tmp/rbtop-demo.XXXXXX)
trap 'bash "$ROOT/tests/fleet/fleet.sh" stop "$DIR/fleet"; rm -rf "$DIR"' EXIT

(cd "$ROOT" && cargo build --release --quiet)
bash "$ROOT/tests/fleet/fleet.sh" start "$DIR/fleet"
# shellcheck disable=SC1091
. "$DIR/fleet/env"   # NIX_SSHOPTS='-F <fleet>/ssh_config', as for Nix itself
echo "\$ rbtop check --machines $DIR/fleet/machines --timeout 5 $*"
status=0
"${CARGO_TARGET_DIR:-$ROOT/target}/release/rbtop" check --machines "$DIR/fleet/machines" --timeout 5 "$@" || status=$?
echo "(exit status $status: 0 when every builder is up, 1 when any is not)"
