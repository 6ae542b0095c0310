# shellcheck shell=sh
# `K`'s kill (src/remote_builds/kill.rs).
#
#   sh -c "$KILL" rbtop-kill PGID START [PID START]
#
# The first pair is the build (its group is killed), the optional second the
# serving process (killed alone). Each pid only while /proc/PID/stat still
# shows START (field 22), so a pid reused since rbtop listed it is never hit.
# Prints one line per pair, `killed PID`, `denied PID` (not the SSH user's
# to kill), `gone PID` (then `killed-rest PID` if members of its group were
# left) or `reused PID`, then `left 0` or `left some`: the group's members
# still alive after up to 2 s.
case "$1$2$3$4" in *[!0-9]*) echo "bad arguments"; exit 2 ;; esac
# The whole stat file into $stat: a process name may hold newlines.
read_stat() {
  stat=""
  { while IFS= read -r line || [ -n "$line" ]; do stat="$stat$line "; done < "$1"; } 2>/dev/null
}
check() {
  read_stat "/proc/$1/stat"
  [ -n "$stat" ] || { echo "gone $1"; return 1; }
  rest=${stat##*) }
  set -f
  # Words on purpose: the fields after the name.
  # shellcheck disable=SC2086
  set -- "$1" "$2" $rest
  set +f
  # $3 is field 3 (state), so field 22 (the start time) is ${22}.
  [ "${22}" = "$2" ] || { echo "reused $1"; return 1; }
}
# Whether a live (not zombie) process is in group $1. Not kill -0: it fails
# alike for "none left" and "not yours to signal". One grep of /proc.
members() {
  grep -q -s -z -E "^[0-9]+ \(.*\) [A-WYa-z] -?[0-9]+ $1 " /proc/[0-9]*/stat
}
group=$1 group_start=$2
if check "$group" "$group_start"; then
  if kill -s KILL -- "-$group" 2>/dev/null; then echo "killed $group"
  elif members "$group"; then echo "denied $group"
  else echo "gone $group"; fi
elif [ ! -e "/proc/$group" ] && members "$group"; then
  # The leader is gone, so no new process can have its pid while members of
  # its group live: whatever answers to the group is what is left of it.
  if kill -s KILL -- "-$group" 2>/dev/null; then echo "killed-rest $group"; else echo "denied $group"; fi
fi
if [ $# -ge 4 ] && check "$3" "$4"; then
  if kill -s KILL "$3" 2>/dev/null; then echo "killed $3"; else echo "denied $3"; fi
fi
n=0
while members "$group" && [ $n -lt 20 ]; do
  sleep 0.1
  n=$((n + 1))
done
if members "$group"; then echo "left some"; else echo "left 0"; fi
