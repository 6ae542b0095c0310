# shellcheck shell=sh
# The processes of one build on this builder, found by their environment,
# for rbtop's builder check after a cancel (src/remote/find.rs reads the
# answer; src/jobs/remote.rs says what to look for).
#
#   sh -c "$FIND_BUILD" rbtop-find-build -F|-E ENTRY...
#
# A process is the build's when one whole entry of its environment (the
# entries are NUL-separated: grep -z, and -x for a whole entry) equals an
# ENTRY (-F, e.g. `out=/nix/store/…-hello`) or matches it as an extended
# regular expression (-E). Prints one line per process:
#
#   PID PGID START LEADER_START ARGS
#
# START is field 22 of /proc/PID/stat (clock ticks after boot), LEADER_START
# that of the process group's leader, `-` when the leader is gone. Ends with
# `uid N`: only root reads every build user's environment.

case $1 in
  -F | -E) how=$1 ;;
  *) echo "bad arguments"; exit 2 ;;
esac
shift
[ $# -gt 0 ] || { echo "bad arguments"; exit 2; }
# Each ENTRY as `-e ENTRY`, so that none is taken for an option.
for entry do
  set -- "$@" -e "$entry"
  shift
done

# The whole stat file into $stat: a process name may hold newlines.
read_stat() {
  stat=""
  { while IFS= read -r line || [ -n "$line" ]; do stat="$stat$line "; done < "$1"; } 2>/dev/null
}
# $pgid and $start of process $1 (fields 5 and 22 of its stat); fails
# when it is gone.
ids_of() {
  read_stat "/proc/$1/stat"
  [ -n "$stat" ] || return 1
  rest=${stat##*) }
  set -f
  # Words on purpose: the fields after the name.
  # shellcheck disable=SC2086
  set -- $rest
  set +f
  # $1 is field 3 (the state), so field 5 is $3 and field 22 is ${20}.
  pgid=$3 start=${20}
  [ -n "$start" ]
}

me=$$
pids=$(grep -l -z -x "$how" "$@" /proc/[0-9]*/environ 2>/dev/null |
  sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p')
for pid in $pids; do
  [ "$pid" = "$me" ] && continue
  ids_of "$pid" || continue
  group=$pgid own=$start leader=-
  if ids_of "$group"; then leader=$start; fi
  # The words on one line: a newline in them (the build's to choose) must
  # not add a line that names another process or a uid.
  args=$(tr '\0\n' '  ' < "/proc/$pid/cmdline" 2>/dev/null)
  echo "$pid $group $own $leader $args"
done
echo "uid $(id -u)"
