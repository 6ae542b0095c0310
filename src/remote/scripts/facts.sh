# shellcheck shell=sh
# The facts loop: one long-lived reader on each builder that answers a
# report per request line on stdin (see src/probe/facts.rs for the
# requests and src/remote/listing.rs for the builds sections).
#
#   sh -c "$FACTS" rbtop-facts STORE_DIR [NIX_STORE_WORDS...]
#   sh -c "$FACTS" rbtop-facts STORE_DIR --then-exec NONCE N LIST HELLO LIMIT M \
#       [DAEMON_WORDS(M)...] STORE_COMMAND...
#
# The second form is the cold probe's one session: it prints one quick
# report between `begin NONCE` and `end NONCE` without reading stdin, then
# execs the store command on the same channel, whose handshake rbtop has
# already sent (it waits in the pipe). The first N words of the store
# command (its program) are asked `--version` for the report's nix= line;
# the worker protocol's handshake says the version itself, so rbtop passes
# N=0 for it. LIST is `builds` to add the builds listing (one grep), else `-`.
# M > 0: the next M words are `nix-daemon --stdio` (ssh://): the report gets
# `daemon_hello=` the hex of the first LIMIT bytes it answers to HELLO (a
# printf format of octal escapes: rbtop's worker hello and an invalid op,
# after which the daemon closes), for the daemon's trust of this user; not
# asked when the version says Nix < 2.15 (its daemon cannot say).
#
# Inside the loop a Linux report must stay fork-free: only built-ins
# (read, printf, echo, [, case) and parameter expansions; no command
# substitution, pipeline or subshell, as each of those forks even when it
# runs only built-ins (the tests count the loop's forks with strace).
store="$1"
shift
once=""
daemon_words=0
if [ "${1:-}" = --then-exec ]; then
  once=$2
  program_words=$3
  once_list=$4
  daemon_hello=$5
  daemon_limit=$6
  daemon_words=$7
  shift 7
else
  program_words=$#
fi

# The daemon's answer to rbtop's hello, in hex, from the first $daemon_words
# words of "$@" (`nix-daemon --stdio`), run in the command substitution's own
# process as the version is. The hello goes in on a pipe that stays open
# until the daemon has answered and closed (on the invalid op): Nix's stdio
# proxy drops the answer when its input ends first. GNU tail -f exits once
# its reader is gone; without GNU tail or timeout(1), nothing is asked.
# Never the channel's stdin: the store's handshake waits there.
daemon_facts() {
  command -v timeout >/dev/null 2>&1 || return 0
  case $(tail --version 2>/dev/null) in *GNU*) ;; *) return 0 ;; esac
  hex=$(
    all=$#
    i=0
    for word do
      [ "$i" -lt "$daemon_words" ] && set -- "$@" "$word"
      i=$((i + 1))
    done
    shift "$all"
    # shellcheck disable=SC2059 # the format is rbtop's hello, octal escapes only
    { printf "$daemon_hello"; exec timeout 5 tail -s 0.01 -f /dev/null; } </dev/null 2>/dev/null |
      timeout 5 "$@" 2>/dev/null | od -An -v -tx1 -N "$daemon_limit"
  )
  line=daemon_hello=
  set -f
  for byte in $hex; do line=$line$byte; done
  set +f
  echo "$line"
}
# The version, from the first $program_words words ("$@" is the store
# command in the once form), in the command substitution's own process: its
# words are rebuilt there, no other process. No `| head`: the first line by
# expansion, one process fewer.
nix=""
if [ "$program_words" -gt 0 ] 2>/dev/null; then
  nix=$(
    shift "$daemon_words"
    all=$#
    i=0
    for word do
      [ "$i" -lt "$program_words" ] && set -- "$@" "$word"
      i=$((i + 1))
    done
    shift "$all"
    "$@" --version 2>/dev/null
  )
fi
nix=${nix%%"
"*}
# Only a daemon of Nix >= 2.15 (worker protocol 1.35) says whether it trusts
# us: older ones (the version's last word, e.g. `nix-store (Nix) 2.8.0`) are
# not asked. An unknown version is asked.
daemon_can_say() {
  v=${nix##* }
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  case "$major.$minor" in
    *[!0-9.]* | .* | *.) return 0 ;;
  esac
  [ "$major" -gt 2 ] || [ "$minor" -ge 15 ]
}
daemon_line=""
if [ "$daemon_words" -gt 0 ] 2>/dev/null; then
  if daemon_can_say; then daemon_line=$(daemon_facts "$@"); fi
  shift "$daemon_words"
fi
# Static facts, from /proc and /sys with built-ins where Linux has them (no
# process on a cold probe), else from uname/getconf/sysctl.
kernel="" arch="" cpus=""
if [ -r /proc/sys/kernel/ostype ] && [ -r /proc/sys/kernel/osrelease ]; then
  read -r ostype < /proc/sys/kernel/ostype
  read -r osrelease < /proc/sys/kernel/osrelease
  kernel="$ostype $osrelease"
fi
[ -n "$kernel" ] || kernel=$(uname -sr 2>/dev/null)
# /proc/sys/kernel/arch exists from Linux 6.1.
if [ -r /proc/sys/kernel/arch ]; then read -r arch < /proc/sys/kernel/arch; fi
[ -n "$arch" ] || arch=$(uname -m 2>/dev/null)
if [ -r /sys/devices/system/cpu/online ]; then
  # A range list such as `0-3,6,8-11`: counted with arithmetic.
  read -r ranges < /sys/devices/system/cpu/online
  cpus=0
  old_ifs=$IFS
  IFS=,
  for range in $ranges; do
    case "$range" in
      *-*) cpus=$((cpus + ${range#*-} - ${range%-*} + 1)) ;;
      ?*) cpus=$((cpus + 1)) ;;
    esac
  done
  IFS=$old_ifs
fi
[ "${cpus:-0}" -gt 0 ] 2>/dev/null || cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null)
[ -d "$store" ] || store=/nix
[ -d "$store" ] || store=/
# The static facts and what /proc gives to built-ins: no process on Linux.
quick_facts() {
  printf 'nix=%s\nkernel=%s\narch=%s\ncpus=%s\n' "$nix" "$kernel" "$arch" "$cpus"
  # Without /proc (macOS, the BSDs) the fallbacks below run sysctl, tr, sed
  # and date: processes on every report, the price of having no /proc.
  if [ -r /proc/loadavg ]; then
    read -r l1 l5 l15 _rest < /proc/loadavg
    printf 'load=%s %s %s\n' "$l1" "$l5" "$l15"
  else
    printf 'load=%s\n' "$(sysctl -n vm.loadavg 2>/dev/null | tr -d '{}')"
  fi
  if [ -r /proc/meminfo ]; then
    while read -r key value _unit; do
      case "$key" in
        MemTotal:) printf 'mem_total_kib=%s\n' "$value" ;;
        MemAvailable:) printf 'mem_available_kib=%s\n' "$value" ;;
      esac
    done < /proc/meminfo
  else
    printf 'mem_total=%s\n' "$(sysctl -n hw.memsize 2>/dev/null)"
  fi
  if [ -r /proc/uptime ]; then
    read -r up _idle < /proc/uptime
    printf 'uptime_s=%s\n' "${up%%.*}"
  else
    boot=$(sysctl -n kern.boottime 2>/dev/null | sed -n 's/.*sec = \([0-9]*\).*/\1/p')
    [ -n "$boot" ] && printf 'uptime_s=%s\n' "$(( $(date +%s) - boot ))"
  fi
}

# The store's free space: one process.
space_facts() {
  # No shell has a built-in for statfs(2): free space costs one process,
  # `df` (the command substitution forks once and execs df), which is why
  # it is asked for only now and then. `df -P` prints a header line and
  # then one line that never wraps, however long the device name. The free
  # KiB are the number just before the first `NN%` word (the capacity):
  # read so, a device name with blanks still parses and the header (no
  # number before a `%` word) is passed over. set -f: no globbing of words.
  df_out=$(df -Pk "$store" 2>/dev/null)
  avail=""
  previous=""
  set -f
  for word in $df_out; do
    case "$word" in
      *%) case "$previous" in
            ""|*[!0-9]*) ;;
            *) avail=$previous; break ;;
          esac ;;
    esac
    previous=$word
  done
  set +f
  printf 'store_free_kib=%s\n' "$avail"
}

# The builds listing section: every process's stat, for rbtop to find builds in.
list_processes() {
  # Every process's first 22 stat fields (pid, name, state, parent,
  # group, CPU times, start time), for rbtop to find the builds in, in one
  # grep of /proc: NUL-ended records. The details of the few that matter
  # come with a `detail` request.
  echo builds-begin
  if [ -r /proc/self/stat ]; then
    printf 'hz=%s\nuptime=%s\nprocesses\n' "$hz" "$up"
    grep -a -s -z -H -o -E -e '^[0-9]+ \(.*\) [A-Za-z]( -?[0-9]+){19}' /proc/[0-9]*/stat
    printf '\nrecords-end %s\n' "$1"
  else
    echo 'unsupported=this host has no Linux /proc'
  fi
}

if [ -n "$once" ]; then
  # The first report of a cold probe: `rbtop check` shows free space too.
  echo "begin $once"
  quick_facts
  space_facts
  [ -n "$daemon_line" ] && echo "$daemon_line"
  if [ "$once_list" = builds ]; then
    hz=$(getconf CLK_TCK 2>/dev/null)
    list_processes "$once"
  fi
  echo "end $once"
  # The store's protocol on this same channel (helper hook: a second
  # protocol wanting this session, such as a worker handshake, starts here).
  exec "$@"
fi

# For the builds listing: clock ticks and user names, read once.
hz=$(getconf CLK_TCK 2>/dev/null)
users=""
if [ -r /etc/passwd ]; then
  while IFS=: read -r name _pw uid _rest; do users="$users $uid:$name"; done < /etc/passwd
fi
listed_upto=""
# Each request is `WORD NONCE [ARGS]`; each answer ends with `end NONCE`,
# and every block of text that comes from processes (their names, their
# environment, file names) with `records-end NONCE`: rbtop made up the
# nonce, so nothing a process prints can end a block early.
while read -r request nonce args; do
  if [ "$request" = detail ]; then
    # The few processes that matter for the builds found in a listing:
    # their uid, the words that tell Nix's serving processes apart, and
    # four environment variables (never a whole environment), in one grep;
    # then whether each sees this host's store (on a machine whose builders
    # share one process table, as containers or the test fleet do, only a
    # process's view of /nix/store tells whose build it is; test -ef
    # compares inodes, no process); then the build directories, which name
    # builds whose environment cannot be read.
    printf 'users=%s\nrecords\n' "$users"
    files=""
    for pid in $args; do
      files="$files /proc/$pid/status /proc/$pid/environ /proc/$pid/cmdline"
    done
    # shellcheck disable=SC2086 # the pids are words on purpose
    grep -a -s -z -H -o -E -e 'Uid:.[0-9]+' \
      -e '^(SSH_CONNECTION|name|out|NIX_BUILD_TOP)=.*' -e '^--(serve|stdio)$' -e '^[0-9]+$' \
      $files
    printf '\nrecords-end %s\n' "$nonce"
    for pid in $args; do
      # -ef is not POSIX, but dash, bash, busybox and the BSD shells have it,
      # and it costs no process as stat(1) would.
      # shellcheck disable=SC3013
      if [ ! -e "/proc/$pid/root$store" ]; then
        echo "unknown $pid"
      elif [ "/proc/$pid/root$store" -ef "$store" ]; then
        echo "same $pid"
      else
        echo "other $pid"
      fi
    done
    for dir in "${TMPDIR:-/tmp}"/nix-build-*.drv-* /nix/var/nix/builds/nix-*; do
      if [ -e "$dir" ]; then
        # -b: a newline in a name is printed as \n, so one line each.
        echo build-dirs
        ls -dnb -- "${TMPDIR:-/tmp}"/nix-build-*.drv-* /nix/var/nix/builds/nix-* 2>/dev/null
        printf 'records-end %s\n' "$nonce"
        break
      fi
    done
    echo "end${nonce:+ $nonce}"
    continue
  fi
  quick_facts
  if [ "$request" = space ]; then space_facts; fi
  # `builds-if-new` (rbtop's last listing showed nothing building): if no
  # process that exists now was created since that listing, no build can
  # have started: say `unchanged`, with built-ins only (a glob of /proc and
  # arithmetic; no process). Pids are handed out in turn: /proc/loadavg's
  # last field is the newest so far (in this pid namespace); one below the
  # last listing's means they wrapped around. Processes that came and went
  # meanwhile (another host's grep on a machine that shares its process
  # table) do not count: they are not running builds.
  newest=""
  if [ -r /proc/loadavg ]; then
    read -r _l1 _l5 _l15 _rest < /proc/loadavg
    newest=${_rest##* }
  fi
  same=""
  if [ "$args" = builds-if-new ] && [ -n "$listed_upto" ] && [ "$newest" -ge "$listed_upto" ] 2>/dev/null; then
    same=yes
    for entry in /proc/[0-9]*; do
      if [ "${entry#/proc/}" -gt "$listed_upto" ]; then same=""; break; fi
    done
  fi
  if [ -n "$same" ]; then
    printf 'builds-begin\nunchanged\n'
  elif [ "$args" = builds ] || [ "$args" = builds-if-new ]; then
    # Every process up to `newest` is in this listing (the glob comes after).
    list_processes "$nonce"
    listed_upto=""
    case "$newest" in
      ''|*[!0-9]*) ;;
      *) listed_upto=$newest ;;
    esac
  fi
  echo "end${nonce:+ $nonce}"
done
