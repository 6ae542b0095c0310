#!/usr/bin/env bash
# The dashboard's memory under a hostile builder: `rbtop` (the TUI, in a real
# terminal: tmux) watches a fleet of 2 healthy Nix 2.8 builders and `liar`
# (endless stderr without a newline, a never-ending facts answer, escapes;
# tests/fleet/README.md) for SECS seconds (default 60), and its RSS is
# sampled every second. Prints the samples every 10 s, the first, peak and
# last, and the screen's liar row. Root only (the fleet runs sshd); hold the
# fleet lock while it runs:
#
#   sudo flock /run/rbtop-fleet/tests.lock scripts/liar-rss.sh [SECS]
#   RBTOP=/path/to/rbtop scripts/liar-rss.sh 60
set -euo pipefail
export LC_ALL=C
SECS=${1:-60}
[[ $SECS =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [SECS]" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "liar-rss: must run as root (the fleet runs sshd)" >&2; exit 1; }
command -v tmux >/dev/null || { echo "liar-rss: needs tmux (apt-get install tmux)" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLEET=$ROOT/tests/fleet/fleet.sh
RBTOP=${RBTOP:-${CARGO_TARGET_DIR:-$ROOT/target}/release/rbtop}
if [[ ! -x $RBTOP ]]; then
    echo "liar-rss: building $RBTOP" >&2
    (cd "$ROOT" && cargo build --release --quiet) >&2
fi

WORK=$(mktemp -d /tmp/rbtop-liar-rss.XXXXXX)
DIR=$WORK/fleet
SOCKET=rbtop-liar-rss-$$
cleanup() {
    tmux -L "$SOCKET" kill-server 2>/dev/null || true
    bash "$FLEET" stop "$DIR" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

bash "$FLEET" start "$DIR" --healthy 2 --no-faults --no-trixie --liar >/dev/null
mkdir -p "$WORK/nixconf" "$WORK/state"
tmux -L "$SOCKET" new-session -d -x 160 -y 45 \
    env NIX_CONF_DIR="$WORK/nixconf" NIX_SSHOPTS="-F $DIR/ssh_config" XDG_STATE_HOME="$WORK/state" \
    "$RBTOP" --machines "$DIR/machines"
sleep 1
PID=$(tmux -L "$SOCKET" list-panes -F '#{pane_pid}')
# The pane runs `env`, which execs rbtop: the pane's pid is rbtop's.
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status" 2>/dev/null || echo 0; }

first=$(rss) peak=0 last=0
echo "| second | RSS KiB |"
echo "|---:|---:|"
for ((s = 1; s <= SECS; s++)); do
    sleep 1
    [[ -d /proc/$PID ]] || { echo "liar-rss: rbtop exited after $s s" >&2; exit 1; }
    last=$(rss)
    ((last > peak)) && peak=$last
    ((s % 10 == 0 || s == 1)) && echo "| $s | $last |"
done
echo
echo "rbtop (pid $PID) over $SECS s beside the liar: first $first KiB, peak $peak KiB, last $last KiB"
echo "the liar's row on the screen:"
tmux -L "$SOCKET" capture-pane -p | grep -F liar | head -n 3 || echo "(no liar row on the screen)"
tmux -L "$SOCKET" send-keys q
sleep 1
