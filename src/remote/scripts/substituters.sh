# shellcheck shell=sh
# A builder's own reach of its substituters, for `builders-use-substitutes`
# (src/substituters/from_builder.rs): with it, the builder fetches a
# build's inputs from the substituters *its* Nix is configured with, so
# only the builder can say whether they answer.
#
#   sh -c "$SUBSTITUTERS" rbtop-substituters NONCE LIMIT MAX STORE_DIR NIX_WORDS...
#
# Asks the builder's Nix (NIX_WORDS: `nix`, or the `nix` beside the
# machine's remote-program) which substituters it uses, then runs
# `nix store ping --store URI` for the first MAX of them at once, as the
# SSH user, each within LIMIT seconds: timeout(1) where it works, Nix's own
# connect-timeout, stalled-download-timeout and a single download attempt,
# and this script's deadline (LIMIT + 1 s) for anything else. `file://`
# caches and local stores are read instead (see read_cache), against
# STORE_DIR. Prints, after `begin NONCE` (an rc file may have printed
# before it):
#   substituters URI...   what the builder's Nix uses, all of them
#   result I RC MS        the I-th (from 1): its exit status (124: out of
#                         time), MS its milliseconds or `-`
#   why I LINE            Nix's first error line, at most 400 bytes
#   more N                substituters past MAX, not pinged
#   failed LINE           Nix could not be asked (nothing else is said)
# and `end NONCE`. rbtop keeps this script's stdin open while it waits:
# its end (rbtop stopped, the session dropped) stops every ping, since sshd
# signals nothing to a session without a terminal. External text is
# printed with printf '%s' only (dash's echo reads backslashes).
nonce=$1
limit=$2
max=$3
store_dir=$4
shift 4
features="--extra-experimental-features nix-command"
cr=$(printf '\r')

tmp=$(mktemp -d 2>/dev/null) || tmp=""
if [ -z "$tmp" ] || [ ! -d "$tmp" ]; then
  printf 'begin %s\nfailed cannot make a temporary directory (mktemp -d)\nend %s\n' "$nonce" "$nonce"
  exit 0
fi
pings=""
watchers=""
late=""
# Every ping (each passes the signal to its Nix and waits for it) and the
# watchers; the pings are waited for, so that no Nix still writes in the
# temporary directory when the EXIT trap removes it.
stop_all() {
  # shellcheck disable=SC2086 # pids are words
  if [ -n "$pings$watchers" ]; then kill -TERM $pings $watchers 2>/dev/null; fi
  # shellcheck disable=SC2086 # pids are words
  if [ -n "$pings" ]; then wait $pings 2>/dev/null; fi
}
# However the script ends, the watchers go with it (they would keep the
# channel open, and the deadline's would signal a pid reused since).
# shellcheck disable=SC2086 # pids are words
trap 'kill -TERM $watchers 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'stop_all; exit 1' HUP INT TERM PIPE
trap 'late=1' USR1

# The end of stdin stops everything. An asynchronous list reads /dev/null
# unless told otherwise, hence fd 3.
exec 3<&0
(
  while read -r _; do :; done <&3
  kill -TERM $$ 2>/dev/null
) >/dev/null 2>&1 &
watchers=$!
exec 3<&-

# The whole check's deadline: at LIMIT + 1 s the pings still running are
# stopped and reported as out of time (a file:// cache on a hung mount, a
# builder without timeout(1)).
(
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep $((limit + 1)) &
  sleeper=$!
  wait "$sleeper" && kill -USR1 $$ 2>/dev/null
) >/dev/null 2>&1 &
watchers="$watchers $!"

# Milliseconds since the epoch: %N where date(1) has it, else whole seconds
# (BSD), else `-`.
now_ms() {
  t=$(date +%s%N 2>/dev/null)
  case "$t" in
    '' | *[!0-9]*)
      t=$(date +%s 2>/dev/null)
      case "$t" in
        '' | *[!0-9]*) echo - ;;
        *) echo $((t * 1000)) ;;
      esac ;;
    *) echo $((t / 1000000)) ;;
  esac
}

first_error() { # FILE: Nix's first `error:` line, cut.
  sed -n '/^error:/{p;q;}' "$1" 2>/dev/null | cut -c1-400
}

# A Nix command run in the background (into $tmp/out and
# $tmp/config.err), so that the deadline and the end of stdin reach it
# too: a command substitution would hold the traps until it ended.
ask_nix() { # NIX_WORDS... ARGS...
  "$@" >"$tmp/out" 2>"$tmp/config.err" </dev/null &
  pings=$!
  wait "$pings"
  asked=$?
  # Past the deadline (USR1 ended the wait): it is stopped.
  if [ -n "$late" ]; then kill -TERM "$pings" 2>/dev/null; fi
  pings=""
  return "$asked"
}

# `nix config show substituters` (Nix >= 2.20), else the `substituters = `
# line of `nix show-config` (older Nix; newer ones keep it as an alias).
list=""
# shellcheck disable=SC2086 # $features is two words on purpose
if ask_nix "$@" $features config show substituters; then
  read -r list <"$tmp/out"
elif [ -z "$late" ] && ask_nix "$@" $features show-config; then
  while IFS= read -r line; do
    case "$line" in
      'substituters = '*) list=${line#substituters = } ;;
    esac
  done <"$tmp/out"
else
  if [ -n "$late" ]; then
    why="Nix did not name its substituters within $((limit + 1))s"
  else
    why=$(first_error "$tmp/config.err")
    [ -n "$why" ] || why=$(tail -n 1 "$tmp/config.err" | cut -c1-400)
    [ -n "$why" ] || why="nix exited without a word"
  fi
  printf 'begin %s\nfailed cannot ask Nix its substituters: %s\nend %s\n' "$nonce" "$why" "$nonce"
  exit 0
fi

# A file:// cache or a local store is read here, never opened by Nix: Nix
# opening one that is missing creates it (directories, a nix-cache-info, a
# store tree), and a check must not write. Nix's own words, for rbtop to
# classify alike; nix-cache-info read as Nix reads it (a last line without
# a newline counts, a CR before the newline does not).
read_cache() { # URI
  case "$1" in
    file://*) ;;
    *)
      # A local store: `/path`, `local?root=/path`, or `local` (this one).
      root=${1%%\?*}
      [ "$root" = local ] && root=""
      case "$1" in
        *[?\&]root=*)
          root=${1#*[?&]root=}
          root=${root%%&*} ;;
      esac
      [ -d "$root$store_dir" ] && return 0
      printf 'error: %s does not exist\n' "$root$store_dir" >&2
      return 1 ;;
  esac
  path=${1#file://}
  info=${path%%\?*}/nix-cache-info
  if [ ! -e "$info" ]; then
    printf 'error: %s does not exist\n' "$info" >&2
    return 1
  fi
  if [ ! -f "$info" ] || [ ! -r "$info" ]; then
    printf 'error: %s is not a readable file\n' "$info" >&2
    return 1
  fi
  while IFS=': ' read -r key value || [ -n "$key" ]; do
    value=${value%"$cr"}
    if [ "$key" = StoreDir ] && [ "$value" != "$store_dir" ]; then
      printf "error: binary cache '%s' is for Nix stores with prefix '%s', not '%s'\n" \
        "$1" "$value" "$store_dir" >&2
      return 1
    fi
    key=""
  done <"$info"
  return 0
}

bound=""
if timeout 1 true 2>/dev/null; then bound="timeout $limit"; fi

# One ping, in the background: its exit status and times go to files. A
# TERM (the deadline, or the end of stdin) is passed on to what it runs.
ping_one() { # I URI NIX_WORDS...
  i=$1
  uri=$2
  shift 2
  child=""
  trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child"; fi; exit 1' TERM
  started=$(now_ms)
  case "$uri" in
    file://* | /* | local | local\?*)
      read_cache "$uri" 2>"$tmp/$i.err" &
      ;;
    *)
      # A cache directory of its own: with the user's, Nix answers from
      # the cache info it keeps for days (binary-cache-v*.sqlite) and
      # reaches nothing at all.
      # shellcheck disable=SC2086 # $bound and $features are words on purpose
      NIX_CACHE_HOME="$tmp/cache" XDG_CACHE_HOME="$tmp/cache" \
        $bound "$@" $features store ping --store "$uri" \
        --option connect-timeout "$limit" --option stalled-download-timeout "$limit" \
        --option download-attempts 1 </dev/null >/dev/null 2>"$tmp/$i.err" &
      ;;
  esac
  child=$!
  wait "$child"
  rc=$?
  printf '%s %s %s\n' "$rc" "$started" "$(now_ms)" >"$tmp/$i.rc"
}

set -f
i=0
more=0
for uri in $list; do
  i=$((i + 1))
  if [ "$i" -gt "$max" ]; then
    more=$((more + 1))
    continue
  fi
  # Nothing of it may hold the channel: it writes to files only.
  ping_one "$i" "$uri" "$@" >/dev/null 2>&1 &
  pings="$pings $!"
done
# Interrupted by the deadline (USR1), or ended.
# shellcheck disable=SC2086 # pids are words
if [ -n "$pings" ]; then wait $pings; fi
# shellcheck disable=SC2086 # pids are words
if [ -n "$late" ]; then kill -TERM $pings 2>/dev/null; fi

printf 'begin %s\nsubstituters' "$nonce"
for uri in $list; do printf ' %s' "$uri"; done
printf '\n'
i=0
for _ in $list; do
  i=$((i + 1))
  [ "$i" -gt "$max" ] && break
  if [ ! -r "$tmp/$i.rc" ]; then
    # Still running at the deadline: out of time.
    printf 'result %s 124 %s\n' "$i" $(((limit + 1) * 1000))
    continue
  fi
  read -r rc started ended <"$tmp/$i.rc"
  ms=-
  case "$started$ended" in
    *-* | '') ;;
    *) ms=$((ended - started)) ;;
  esac
  printf 'result %s %s %s\n' "$i" "$rc" "$ms"
  if [ "$rc" != 0 ]; then
    why=$(first_error "$tmp/$i.err")
    [ -n "$why" ] || why=$(grep -v '^warning:' "$tmp/$i.err" | tail -n 1 | cut -c1-400)
    printf 'why %s %s\n' "$i" "$why"
  fi
done
[ "$more" -gt 0 ] && printf 'more %s\n' "$more"
printf 'end %s\n' "$nonce"
# The watchers only: the pings have ended, their pids may be anyone's now.
# shellcheck disable=SC2086 # pids are words
kill -TERM $watchers 2>/dev/null
