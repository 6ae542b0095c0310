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
# SSH user, each within LIMIT seconds: timeout(1) where there is one, and
# Nix's own connect-timeout, stalled-download-timeout and a single download
# attempt bound it anyway. `file://` caches and local stores are read
# instead (see read_cache), against STORE_DIR. Prints, after `begin NONCE` (an rc file may have
# printed before it):
#   substituters URI...   what the builder's Nix uses, all of them
#   result I RC MS        the I-th (from 1): Nix's exit status, MS or `-`
#   why I LINE            Nix's first error line, at most 400 bytes
#   more N                substituters past MAX, not pinged
#   failed LINE           Nix could not be asked (nothing else is said)
# and `end NONCE`.
nonce=$1
limit=$2
max=$3
store_dir=$4
shift 4
features="--extra-experimental-features nix-command"

tmp=$(mktemp -d 2>/dev/null) || tmp=""
if [ -z "$tmp" ] || [ ! -d "$tmp" ]; then
  printf 'begin %s\nfailed cannot make a temporary directory (mktemp -d)\nend %s\n' "$nonce" "$nonce"
  exit 0
fi
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# Milliseconds since the epoch, or `-` where date(1) has no %N (BSD).
now_ms() {
  t=$(date +%s%N 2>/dev/null)
  case "$t" in
    '' | *[!0-9]*) echo - ;;
    *) echo $((t / 1000000)) ;;
  esac
}

first_error() { # FILE: Nix's first `error:` line, cut.
  sed -n '/^error:/{p;q;}' "$1" 2>/dev/null | cut -c1-400
}

# `nix config show substituters` (Nix >= 2.20), else the `substituters = `
# line of `nix show-config` (older Nix; newer ones keep it as an alias).
# shellcheck disable=SC2086 # $features is two words on purpose
if list=$("$@" $features config show substituters 2>"$tmp/config.err" </dev/null); then
  :
elif config=$("$@" $features show-config 2>"$tmp/config.err" </dev/null); then
  list=""
  while IFS= read -r line; do
    case "$line" in
      'substituters = '*) list=${line#substituters = } ;;
    esac
  done <<EOF
$config
EOF
else
  why=$(first_error "$tmp/config.err")
  [ -n "$why" ] || why=$(tail -n 1 "$tmp/config.err" | cut -c1-400)
  printf 'begin %s\nfailed cannot ask Nix its substituters: %s\nend %s\n' "$nonce" "$why" "$nonce"
  exit 0
fi

# A file:// cache or a local store is read here, never opened by Nix: Nix
# opening one that is missing creates it (directories and a nix-cache-info),
# and a check must not write. Nix's own words, for rbtop to classify alike.
read_cache() { # URI
  path=${1#file://}
  path=${path%%\?*}
  case "$1" in
    /*)
      [ -d "$path$store_dir" ] && return 0
      echo "error: $path$store_dir does not exist" >&2
      return 1 ;;
  esac
  if [ ! -r "$path/nix-cache-info" ]; then
    echo "error: $path/nix-cache-info does not exist" >&2
    return 1
  fi
  while IFS=': ' read -r key value; do
    if [ "$key" = StoreDir ] && [ "$value" != "$store_dir" ]; then
      echo "error: binary cache '$1' is for Nix stores with prefix '$value', not '$store_dir'" >&2
      return 1
    fi
  done <"$path/nix-cache-info"
  return 0
}

bound=""
if command -v timeout >/dev/null 2>&1; then bound="timeout $limit"; fi

# Each ping in the background, its exit status and times in files.
set -f
i=0
more=0
for uri in $list; do
  i=$((i + 1))
  if [ "$i" -gt "$max" ]; then
    more=$((more + 1))
    continue
  fi
  (
    started=$(now_ms)
    case "$uri" in
      file://* | /*)
        read_cache "$uri" 2>"$tmp/$i.err"
        rc=$? ;;
      *)
        # A cache directory of its own: with the user's, Nix answers from
        # the cache info it keeps for days (binary-cache-v*.sqlite) and
        # reaches nothing at all.
        # shellcheck disable=SC2086 # $bound and $features are words on purpose
        NIX_CACHE_HOME="$tmp/cache" XDG_CACHE_HOME="$tmp/cache" \
          $bound "$@" $features store ping --store "$uri" \
          --option connect-timeout "$limit" --option stalled-download-timeout "$limit" \
          --option download-attempts 1 </dev/null >/dev/null 2>"$tmp/$i.err"
        rc=$? ;;
    esac
    echo "$rc $started $(now_ms)" >"$tmp/$i.rc"
  ) &
done
wait

echo "begin $nonce"
# shellcheck disable=SC2086 # one line, the URIs as words
echo substituters $list
i=0
for _ in $list; do
  i=$((i + 1))
  [ -r "$tmp/$i.rc" ] || continue
  read -r rc started ended <"$tmp/$i.rc"
  ms=-
  case "$started$ended" in
    *-* | '') ;;
    *) ms=$((ended - started)) ;;
  esac
  echo "result $i $rc $ms"
  if [ "$rc" != 0 ]; then
    why=$(first_error "$tmp/$i.err")
    [ -n "$why" ] || why=$(grep -v '^warning:' "$tmp/$i.err" | tail -n 1 | cut -c1-400)
    echo "why $i $why"
  fi
done
[ "$more" -gt 0 ] && echo "more $more"
echo "end $nonce"
