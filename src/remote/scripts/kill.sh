# shellcheck shell=sh
# The one kill rbtop does on a builder, for `K` in the dashboard and for the
# builder check after a cancel (src/remote/kill.rs decides the targets).
#
#   sh -c "$KILL" rbtop-kill KIND ID START [KIND ID START]...
#
# KIND `group`: SIGKILL to the process group whose leader is ID (a build's
# session, as Nix's own cancel does); `process`: to ID alone. START is
# field 22 of /proc/ID/stat (clock ticks after boot) as rbtop saw it, and
# every kill comes after a check that ID still has it, so a pid reused since
# is never hit. A group's START may be `-`: its leader was already gone, and
# only what is left of the group is killed.
#
# Prints one line per target: `killed ID`; `killed-rest ID` (the leader had
# ended, the rest of its group was killed); `denied ID` (the kill failed and
# the process or members of the group are still there: not the SSH user's
# to signal); `gone ID` (nothing of it left); `reused ID` (ID is another
# process now: nothing killed). Then `left 0` or `left some`: whether
# members of the groups are still alive after up to 2 s.

bad() {
  echo "bad arguments"
  exit 2
}
# Checked whole before anything is killed: a KIND, then an ID of 2 or more
# without a leading zero (kill -- -1 would signal every process the user
# may, and -0 the script's own group), then START.
[ $# -gt 0 ] || bad
at=0
for word do
  case $at:$word in
    0:group | 0:process) kind=$word ;;
    1:[2-9] | 1:[1-9]*[0-9]) case $word in *[!0-9]*) bad ;; esac ;;
    2:-) [ "$kind" = group ] || bad ;;
    2: | 2:*[!0-9]*) bad ;;
    2:*) ;;
    *) bad ;;
  esac
  at=$(((at + 1) % 3))
done
[ $at -eq 0 ] || bad

# The whole stat file into $stat: a process name may hold newlines.
read_stat() {
  stat=""
  { while IFS= read -r line || [ -n "$line" ]; do stat="$stat$line "; done < "$1"; } 2>/dev/null
}
# Whether process $1 still started at $2: 0 if so, 1 if it is gone, 2 if
# the pid is another process's now (or is alive when $2 is `-`).
check() {
  read_stat "/proc/$1/stat"
  [ -n "$stat" ] || return 1
  [ "$2" != - ] || return 2
  rest=${stat##*) }
  set -f
  # Words on purpose: the fields after the name.
  # shellcheck disable=SC2086
  set -- "$1" "$2" $rest
  set +f
  # $3 is field 3 (state), so field 22 (the start time) is ${22}.
  [ "${22}" = "$2" ] || return 2
}
# Whether a live (not zombie) process is in a group matching the extended
# regular expression $1. Not kill -0: it fails alike for "none left" and
# "not yours to signal". One grep of /proc.
members() {
  grep -q -s -z -E "^[0-9]+ \(.*\) [A-WYa-z] -?[0-9]+ ($1) " /proc/[0-9]*/stat
}
# SIGKILL to group $1; says $2 when it went (and waits for the group at the
# end), else `denied` or `gone`.
kill_group() {
  if kill -s KILL -- "-$1" 2>/dev/null; then
    echo "$2 $1"
    killed="$killed${killed:+|}$1"
  elif members "$1"; then echo "denied $1"
  else echo "gone $1"; fi
}

killed=""
while [ $# -gt 0 ]; do
  kind=$1 id=$2 start=$3
  shift 3
  check "$id" "$start"
  case $kind:$? in
    *:2) echo "reused $id" ;;
    group:0) kill_group "$id" killed ;;
    # The leader is gone, so no new process can have its pid while members
    # of its group live (Linux keeps a pid while a group has it): whatever
    # answers to the group is what is left of it.
    group:*) if members "$id"; then kill_group "$id" killed-rest; else echo "gone $id"; fi ;;
    process:0)
      if kill -s KILL "$id" 2>/dev/null; then echo "killed $id"
      elif [ -e "/proc/$id" ]; then echo "denied $id"
      else echo "gone $id"; fi ;;
    *) echo "gone $id" ;;
  esac
done
n=0
while [ -n "$killed" ] && members "$killed" && [ $n -lt 20 ]; do
  sleep 0.1
  n=$((n + 1))
done
if [ -n "$killed" ] && members "$killed"; then echo "left some"; else echo "left 0"; fi
