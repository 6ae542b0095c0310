#!/usr/bin/env bash
# `rbtop machines` on a generated machines file of N lines (default
# 1,000,000; about 106 bytes each, like a real fleet's lines: a host name,
# two systems, a key, jobs, speed, two features): wall and CPU time, peak
# RSS and RSS per line, from /usr/bin/time. Any user; builds the release
# binary when RBTOP is not set.
#
#   scripts/machines-bench.sh [N]
#   RBTOP=/path/to/rbtop scripts/machines-bench.sh 1000000
set -euo pipefail
N=${1:-1000000}
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RBTOP=${RBTOP:-${CARGO_TARGET_DIR:-$ROOT/target}/release/rbtop}
if [[ ! -x $RBTOP ]]; then
    echo "machines-bench: building $RBTOP" >&2
    (cd "$ROOT" && cargo build --release --quiet) >&2
fi
[[ -x /usr/bin/time ]] || { echo "machines-bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/rbtop-machines-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++)
    printf "ssh://builder%d.example.org x86_64-linux,aarch64-linux /root/.ssh/id_builder 8 2 big-parallel,kvm - -\n", i }' \
    >"$WORK/machines"
rc=0
/usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$RBTOP" machines --machines "$WORK/machines" >/dev/null 2>"$WORK/err" || rc=$?
((rc == 0)) || { echo "machines-bench: rbtop exited $rc:" >&2; tail -n 5 "$WORK/err" >&2; exit 1; }
read -r wall user sys kib <"$WORK/time"
echo "rbtop machines, $N lines ($(stat -c %s "$WORK/machines") bytes): wall ${wall} s, CPU $(echo "$user + $sys" | bc) s, peak RSS $kib KiB = $(echo "scale=3; $kib / $N" | bc) KiB/line"
