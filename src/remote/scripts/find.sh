# shellcheck shell=sh
# The builder check after a cancel (src/jobs/remote.rs).
#
#   sh -c "$FIND" rbtop-find look|kill -e PATTERN...
#
# Looks for processes whose environment holds one of the patterns (grep -F);
# prints `PID PGID ARGS` for each and, in `kill` mode, SIGKILLs its process
# group (the builder's session, as Nix's own cancel does) and the process.
# Ends with the remote uid, since only root sees every build user's
# environment.
mode=$1; shift
me=$$
pids=$(grep -lzF "$@" /proc/[0-9]*/environ 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p')
for pid in $pids; do
  [ "$pid" = "$me" ] && continue
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
  rest=${stat##*) }
  # Words on purpose: the fields after the name.
  # shellcheck disable=SC2086
  set -- $rest
  pgid=$3
  args=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)
  echo "$pid $pgid $args"
  if [ "$mode" = kill ]; then
    [ "$pgid" -gt 1 ] && kill -s KILL -- "-$pgid" 2>/dev/null
    kill -s KILL "$pid" 2>/dev/null
  fi
done
echo "uid $(id -u)"
