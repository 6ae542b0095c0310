#!/usr/bin/env bash
# The README's screenshots of the live dashboard, taken from the real program
# on the project's loopback test fleet in a 120x30 tmux terminal:
#   assets/dashboard.png         every host resolved (4 up, 5 down, one per fault)
#   assets/dashboard-detail.png  the detail pane of the failing host `authfail`
#   assets/dashboard-jobs.png    a build launched on b1 (b), in the jobs pane
#   assets/dashboard-log.png     its live log (l)
#   assets/dashboard-triage.png  a second build on b1: b1's detail pane with its
#                                slot's holder and the build running there
#   assets/dashboard-followed.png another terminal's `rbtop build` on b1, its log
#                                followed from the detail pane (Enter)
#   assets/dashboard.ansi.txt    the raw captures (`tmux capture-pane -e`, ANSI colours)
# The captures are rendered to HTML here (a dark terminal palette) and to PNG
# by headless Chromium with DejaVu Sans Mono (box drawing and ●◌◷✗ glyphs).
#
#   bash tests/fleet/fleet.sh start /tmp/fleet      # as root
#   bash scripts/screenshot.sh /tmp/fleet [RBTOP_BINARY]
#   bash tests/fleet/fleet.sh stop /tmp/fleet
#
# RBTOP_BINARY defaults to the release build (built if missing). Needs tmux,
# python3, chromium and fonts-dejavu-core (apt-get installs them if missing).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
COLS=120 ROWS=30
FLEET=${1:?usage: screenshot.sh FLEET_DIR [RBTOP_BINARY]}
FLEET=$(cd "$FLEET" && pwd)
[[ -f $FLEET/machines && -f $FLEET/ssh_config ]] || { echo "screenshot: $FLEET is not a started fleet (no machines, ssh_config)" >&2; exit 1; }
RBTOP=${2:-${CARGO_TARGET_DIR:-$ROOT/target}/release/rbtop}
OUT=$ROOT/assets

need() { # FILE PACKAGE: install PACKAGE unless FILE exists
    [[ -e $1 ]] && return 0
    echo "screenshot: installing $2"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$2" >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }
}
need /usr/bin/tmux tmux
need /usr/bin/python3 python3
need /usr/bin/chromium chromium
need /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf fonts-dejavu-core
if [[ -z ${2:-} && ! -x $RBTOP ]]; then (cd "$ROOT" && cargo build --release --quiet); fi

WORK=$(mktemp -d /tmp/rbtop-shot.XXXXXX)
SOCKET=rbtop-shot-$$
SOCKET_PATH=""
cleanup() {
    tmux -L "$SOCKET" kill-server 2>/dev/null || true
    [[ -z $SOCKET_PATH ]] || rm -f "$SOCKET_PATH" # tmux leaves it behind
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK"/{home,config,state,run,nixconf} "$OUT"

# rbtop in a terminal of its own, in an isolated environment (no user config).
tmux -L "$SOCKET" -f /dev/null new-session -d -s shot -x "$COLS" -y "$ROWS" \
    "env -i TERM=tmux-256color LANG=C.UTF-8 PATH='$PATH' HOME='$WORK/home' XDG_CONFIG_HOME='$WORK/config' \
     XDG_STATE_HOME='$WORK/state' XDG_RUNTIME_DIR='$WORK/run' NIX_CONF_DIR='$WORK/nixconf' \
     NIX_SSHOPTS='-F $FLEET/ssh_config' NIX_CONFIG='substituters =
experimental-features = nix-command' '$RBTOP' --machines '$FLEET/machines' --timeout 4" \; \
    set-option -g status off
SOCKET_PATH=$(tmux -L "$SOCKET" display-message -p '#{socket_path}')
screen() { tmux -L "$SOCKET" capture-pane -p -t shot "$@"; }
wait_for() { # DESCRIPTION CONDITION...: poll the screen until the condition holds (60 s at most)
    local what=$1 i
    shift
    for ((i = 0; i < 600; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    echo "screenshot: no $what after 60 s; the screen:" >&2
    screen >&2
    exit 1
}
resolved() { # every host has answered: a header with no `probing`, and rows
    local s
    s=$(screen) || return 1
    [[ $s == *" rbtop "*" up"* && $s != *probing* && $s == *"✗ hostkey"* ]]
}
wait_for "answer from every host" resolved
sleep 1 # one more refresh tick: latencies of the second round
screen -e >"$WORK/table.ansi"

# The failing host `authfail`: select its row (machines order), open its detail pane.
line=$(grep -n '^ssh://authfail ' "$FLEET/machines" | cut -d: -f1)
keys=(g)
for ((i = 1; i < line; i++)); do keys+=(j); done
tmux -L "$SOCKET" send-keys -t shot "${keys[@]}"
sleep 0.5
tmux -L "$SOCKET" send-keys -t shot Enter
detail_open() { [[ $(screen) == *"┌ authfail ✗ auth"*"Permission denied"* ]]; }
wait_for "detail pane of authfail" detail_open
screen -e >"$WORK/detail.ansi"

# A build pinned to b1 (the first row): launched with b, watched, then its log.
# One key at a time: Esc followed at once by a key reads as Alt+key.
for key in Escape g b; do
    tmux -L "$SOCKET" send-keys -t shot "$key"
    sleep 0.4
done
tmux -L "$SOCKET" send-keys -t shot -l "$ROOT/tests/fixtures/builds/numbered.nix --argstr seed shot-$$-$RANDOM --arg lines 400 --arg delay 0.1"
tmux -L "$SOCKET" send-keys -t shot Enter
building() { [[ $(screen) == *"building"*"line 12 of 400"* || $(screen) == *"rbtop-numbered-shot"*"building"* ]] && sleep 1.5; }
wait_for "the build running on b1" building
screen -e >"$WORK/jobs.ansi"
tmux -L "$SOCKET" send-keys -t shot l
logged() { [[ $(screen) == *"line 40 of 400"* ]]; }
wait_for "its log" logged
screen -e >"$WORK/log.ansi"
tmux -L "$SOCKET" send-keys -t shot x
sleep 0.3
tmux -L "$SOCKET" send-keys -t shot y
cancelled() { [[ $(screen) == *"cancelled"* ]]; }
wait_for "the cancel" cancelled

# Triage: another build on b1, then b1's detail pane with the focus, showing
# which hook holds the slot and the build running on b1 for this machine.
for key in Escape Escape g b; do
    tmux -L "$SOCKET" send-keys -t shot "$key"
    sleep 0.4
done
tmux -L "$SOCKET" send-keys -t shot -l "$ROOT/tests/fixtures/builds/numbered.nix --argstr seed triage-$$-$RANDOM --arg lines 400 --arg delay 0.2"
tmux -L "$SOCKET" send-keys -t shot Enter
wait_for "the second build running on b1" building
for key in Escape g Enter Tab; do
    tmux -L "$SOCKET" send-keys -t shot "$key"
    sleep 0.4
done
triaged() { [[ $(screen) == *"┌ b1 "*"slot "*"this-machine"* ]] && sleep 6; }
wait_for "b1's slot and its build in the detail pane" triaged
screen -e >"$WORK/triage.ansi"

# Quit (its own build still running: it asks, y cancels it) and wait until
# it is gone, so that b1 runs only the next build. A session that only
# sleeps keeps the tmux server (and its options) meanwhile.
tmux -L "$SOCKET" new-session -d -s keep "sleep 600"
tmux -L "$SOCKET" send-keys -t shot q
sleep 0.4
tmux -L "$SOCKET" send-keys -t shot y 2>/dev/null || true
for ((i = 0; i < 300; i++)); do
    tmux -L "$SOCKET" has-session -t shot 2>/dev/null || break
    sleep 0.1
done

# Another terminal's `rbtop build` (its own state directory) on b1, and a
# fresh dashboard: in b1's detail pane, Enter on that build follows the
# other rbtop's log, read only.
mkdir -p "$WORK/other-state"
tmux -L "$SOCKET" new-session -d -s other -x "$COLS" -y "$ROWS" \
    "env -i TERM=tmux-256color LANG=C.UTF-8 PATH='$PATH' HOME='$WORK/home' XDG_CONFIG_HOME='$WORK/config' \
     XDG_STATE_HOME='$WORK/other-state' XDG_RUNTIME_DIR='$WORK/run' NIX_CONF_DIR='$WORK/nixconf' \
     NIX_SSHOPTS='-F $FLEET/ssh_config' NIX_CONFIG='substituters =
experimental-features = nix-command' '$RBTOP' --machines '$FLEET/machines' build --on b1 -- \
     '$ROOT/tests/fixtures/builds/numbered.nix' --argstr seed other-$$-$RANDOM --arg lines 400 --arg delay 0.2; sleep 600"
tmux -L "$SOCKET" new-session -d -s shot -x "$COLS" -y "$ROWS" \
    "env -i TERM=tmux-256color LANG=C.UTF-8 PATH='$PATH' HOME='$WORK/home' XDG_CONFIG_HOME='$WORK/config' \
     XDG_STATE_HOME='$WORK/state' XDG_RUNTIME_DIR='$WORK/run' NIX_CONF_DIR='$WORK/nixconf' \
     NIX_SSHOPTS='-F $FLEET/ssh_config' '$RBTOP' --machines '$FLEET/machines' --timeout 4"
wait_for "answer from every host, again" resolved
tmux -L "$SOCKET" send-keys -t shot g
sleep 0.4
tmux -L "$SOCKET" send-keys -t shot Enter
other_listed() { [[ $(screen) == *"┌ b1 "*"rbtop-numbered-other"* ]] && sleep 2; }
wait_for "the other terminal's build in b1's detail pane" other_listed
for key in Tab Enter; do
    tmux -L "$SOCKET" send-keys -t shot "$key"
    sleep 0.4
done
followed() { [[ $(screen) == *"(read-only)"*"line 12 of 400"* || $(screen) == *"line 12 of 400"*"(read-only)"* ]] && sleep 2; }
wait_for "the other terminal's log, followed" followed
screen -e >"$WORK/followed.ansi"
tmux -L "$SOCKET" send-keys -t other C-c
tmux -L "$SOCKET" send-keys -t shot q

{
    echo "# rbtop's dashboard, ${COLS}x${ROWS}, every host resolved (tmux capture-pane -e -p)"
    cat "$WORK/table.ansi"
    echo "# the same with authfail selected and its detail pane open (Enter)"
    cat "$WORK/detail.ansi"
    echo "# a build launched on b1 (b), in the jobs pane"
    cat "$WORK/jobs.ansi"
    echo "# its live log (l)"
    cat "$WORK/log.ansi"
    echo "# a second build on b1: b1's detail pane (Enter, Tab) with its slot and the build running there"
    cat "$WORK/triage.ansi"
    echo "# Enter on another terminal's rbtop build on b1: its log, followed read-only"
    cat "$WORK/followed.ansi"
} >"$OUT/dashboard.ansi.txt"

# ANSI (SGR) to HTML: xterm's 256 colours with a dark 16-colour base.
cat >"$WORK/to_html.py" <<'EOF'
import html, re, sys

BASE = ["#1d1f21", "#e05f5f", "#8fbf5a", "#e0b040", "#6a9fd8", "#b48ead", "#56b6c2", "#c5c8c6",
        "#6b7075", "#ff7b7b", "#a8d86e", "#f0c674", "#81a2be", "#c397d8", "#70d0d8", "#eaeaea"]
FG, BG = BASE[7], BASE[0]

def colour(n):
    if n < 16:
        return BASE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[n // 6 % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (v, v, v)

def convert(text):
    out = []
    state = dict(fg=None, bg=None, bold=False, dim=False, italic=False, under=False, rev=False)
    for line in text.rstrip("\n").split("\n"):
        parts = re.split(r"\x1b\[([0-9;]*)m", line)
        spans = []
        for i, part in enumerate(parts):
            if i % 2:
                codes = [int(c) if c else 0 for c in part.split(";")]
                j = 0
                while j < len(codes):
                    c = codes[j]
                    if c == 0:
                        state.update(fg=None, bg=None, bold=False, dim=False, italic=False, under=False, rev=False)
                    elif c == 1: state["bold"] = True
                    elif c == 2: state["dim"] = True
                    elif c == 3: state["italic"] = True
                    elif c == 4: state["under"] = True
                    elif c == 7: state["rev"] = True
                    elif c == 22: state.update(bold=False, dim=False)
                    elif c == 23: state["italic"] = False
                    elif c == 24: state["under"] = False
                    elif c == 27: state["rev"] = False
                    elif 30 <= c <= 37: state["fg"] = BASE[c - 30]
                    elif 90 <= c <= 97: state["fg"] = BASE[c - 90 + 8]
                    elif 40 <= c <= 47: state["bg"] = BASE[c - 40]
                    elif 100 <= c <= 107: state["bg"] = BASE[c - 100 + 8]
                    elif c == 39: state["fg"] = None
                    elif c == 49: state["bg"] = None
                    elif c in (38, 48) and j + 2 < len(codes) and codes[j + 1] == 5:
                        state["fg" if c == 38 else "bg"] = colour(codes[j + 2])
                        j += 2
                    elif c in (38, 48) and j + 4 < len(codes) and codes[j + 1] == 2:
                        state["fg" if c == 38 else "bg"] = "#%02x%02x%02x" % tuple(codes[j + 2:j + 5])
                        j += 4
                    j += 1
                continue
            if not part:
                continue
            fg, bg = state["fg"] or FG, state["bg"] or BG
            if state["rev"]:
                fg, bg = bg, fg
            style = ["color:" + fg]
            if bg != BG:
                style.append("background:" + bg)
            if state["bold"]: style.append("font-weight:bold")
            if state["dim"]: style.append("opacity:0.7")
            if state["italic"]: style.append("font-style:italic")
            if state["under"]: style.append("text-decoration:underline")
            spans.append('<span style="%s">%s</span>' % (";".join(style), html.escape(part)))
        out.append("".join(spans))
    return "\n".join(out)

cols, rows, font_px, pad = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
body = convert(sys.stdin.read())
print("""<!DOCTYPE html><html><head><meta charset="utf-8"><style>
html, body { margin: 0; background: %s; }
pre { margin: 0; padding: %dpx; color: %s; font: %dpx/1.17 'DejaVu Sans Mono', monospace;
      width: %dch; height: %dem; overflow: hidden; }
</style></head><body><pre>%s</pre></body></html>""" % (BG, pad, FG, font_px, cols, rows * 1.17, body))
EOF

# DejaVu Sans Mono: 0.602 em per column, 1.17 em per row (as the CSS above).
FONT=15 PAD=14 SCALE=1.5
WIDTH=$(python3 -c "import math; print(math.ceil($COLS * 0.602 * $FONT + 2 * $PAD))")
HEIGHT=$(python3 -c "import math; print(math.ceil($ROWS * 1.17 * $FONT + 2 * $PAD))")
render() { # ANSI PNG
    python3 "$WORK/to_html.py" "$COLS" "$ROWS" "$FONT" "$PAD" <"$1" >"$WORK/page.html"
    # The profile is fresh and every network feature off: nothing is fetched.
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$WORK/chromium" --force-device-scale-factor="$SCALE" \
        --window-size="$WIDTH,$HEIGHT" --screenshot="$2" "file://$WORK/page.html" >"$WORK/chromium.log" 2>&1 ||
        { cat "$WORK/chromium.log" >&2; exit 1; }
    [[ -s $2 ]] || { echo "screenshot: chromium wrote no $2" >&2; cat "$WORK/chromium.log" >&2; exit 1; }
    echo "screenshot: $2 ($(du -k "$2" | cut -f1) KB)"
}
render "$WORK/table.ansi" "$OUT/dashboard.png"
render "$WORK/detail.ansi" "$OUT/dashboard-detail.png"
render "$WORK/jobs.ansi" "$OUT/dashboard-jobs.png"
render "$WORK/log.ansi" "$OUT/dashboard-log.png"
render "$WORK/triage.ansi" "$OUT/dashboard-triage.png"
render "$WORK/followed.ansi" "$OUT/dashboard-followed.png"
echo "screenshot: $OUT/dashboard.ansi.txt"
