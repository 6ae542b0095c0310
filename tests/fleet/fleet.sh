#!/usr/bin/env bash
# A real fleet of Nix remote builders on loopback: one sshd per host, each in a
# private mount namespace with its own /nix and /etc/nix. See README.md.
#
#   fleet.sh prepare                       # Debian trixie (Nix 2.26) and sid roots (cached)
#   fleet.sh start DIR [--healthy N] [--no-faults] [--no-trixie] [--sid] [--liar] [--forced] [--canary-faults] [--rc-cost MS] [--rtt MS]
#                      [--untrusted-ssh]
#   fleet.sh stop DIR                      # idempotent
#   fleet.sh status DIR
#   fleet.sh stop-host DIR NAME            # a b* host down (every process), then
#   fleet.sh start-host DIR NAME           # back up, same key, store and address
#   fleet.sh reap                          # stop fleets whose owner process died
#   fleet.sh stop-all                      # stop every fleet this machine knows of
#
# Must run as root. Every host listens on port 2222 at its own 127.x address,
# so only one fleet can run on a machine at a time (tests/support/fleet.rs
# serialises its users with a lock).
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export LC_ALL=C

PORT=2222
INNER_PORT=2200                            # sshd's port behind the --rtt relay
RC_COST=0                                  # --rc-cost: ms of CPU each login shell burns
RTT=0                                      # --rtt: emulated round-trip time, ms
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${RBTOP_FLEET_CACHE:-/var/cache/rbtop-fleet}
MIRROR=${RBTOP_FLEET_MIRROR:-http://deb.debian.org/debian}
REG=/run/rbtop-fleet                       # registry of running fleets
READY_TIMEOUT=${RBTOP_FLEET_READY_TIMEOUT:-60}
JOBS=${RBTOP_FLEET_JOBS:-16}
FAULTS=(refused hung authfail nonix wrongkey)
# Hosts that are up yet fail a build (off by default: --canary-faults).
CANARY_FAULTS=(untrusted nofeature storefull rootunknown slowbuild)
# The non-root login of the `untrusted` host (a user of this machine, shared
# by every host's namespace: /etc/passwd is not per host).
REMOTE_USER=rbtop-nixremote
# Where a chrooted host (t1, s1) sees its own directory.
CHROOT_HOST=/rbtop-host

die() { echo "fleet.sh: error: $*" >&2; exit 1; }
note() { echo "fleet.sh: $*" >&2; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (it starts sshd and bind-mounts /nix)"; }

ensure_cmd() { # CMD PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    note "installing Debian package $2"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2"; } ||
        die "cannot apt-get install $2"
    command -v "$1" >/dev/null 2>&1 || die "$2 installed but $1 is still missing"
}

# Serialise start/stop/prepare between concurrent invocations (fd 9; closed
# for every long-lived child so it never outlives this script).
take_lock() {
    mkdir -p "$REG/fleets"
    exec 9>"$REG/script.lock"
    flock 9
}

# ---------------------------------------------------------------- prepare

unmount_under() { # PATH: lazily unmount anything the root namespace has below PATH
    local t
    findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1' | sort -r |
        while read -r t; do umount -l "$t" || true; done
}

# Debian roots with their own Nix, run chrooted: trixie (Nix 2.26, host t1)
# and sid (the newest Nix Debian ships, host s1 with --sid). Each is made once
# by debootstrap and cached as $CACHE/SUITE, ready when $CACHE/SUITE.ready
# (which holds its Nix version) exists.
root_dir() { echo "$CACHE/$1"; }        # SUITE
root_version() { cat "$CACHE/$1.ready"; } # SUITE

# What each suite's Nix must be (a regex on `nix-store --version`'s number,
# and its wording for the error).
root_expects() { # SUITE -> "REGEX DESCRIPTION"
    case $1 in
    trixie) echo '2\.26\.[0-9]+ Nix 2.26.x' ;;
    sid) echo '2\.(2[7-9]|[3-9][0-9])\.[0-9]+ a Nix newer than trixie'"'"'s 2.26' ;;
    *) die "no Debian root kind '$1'" ;;
    esac
}

cmd_prepare() { prepare_root trixie; prepare_root sid; }

prepare_root() { # SUITE
    need_root
    local suite=$1 root mark re want
    root=$(root_dir "$suite") mark=$CACHE/$suite.ready
    read -r re want < <(root_expects "$suite")
    mkdir -p "$CACHE"
    exec 8>"$CACHE/.lock"
    flock 8
    if [[ -s $mark && -x $root/usr/bin/nix-store && -x $root/usr/sbin/sshd ]]; then
        exec 8>&-
        return 0
    fi
    rm -f "$mark"
    ensure_cmd debootstrap debootstrap
    if [[ -e $root ]]; then
        note "removing half-made $root"
        unmount_under "$root"
        rm -rf --one-file-system "$root"
    fi
    local log=$CACHE/debootstrap-$suite.log err=$CACHE/version-$suite.err t0=$SECONDS
    note "bootstrapping Debian $suite with Nix into $root (about a minute, ~400 MB; log: $log)"
    # A private mount namespace: debootstrap's own /proc and /sys mounts
    # vanish with it even if it is killed.
    # libdbi-perl provides perl-dbdabi-94, a virtual package debootstrap does
    # not resolve: without it dpkg leaves libdbd-sqlite3-perl and nix-bin
    # unconfigured and debootstrap exits non-zero (the binaries still work).
    mkdir -p "$CACHE/debs"
    if ! unshare -m --propagation private \
        debootstrap --variant=minbase --include=nix-bin,openssh-server,procps,libdbi-perl \
        --cache-dir="$CACHE/debs" "$suite" "$root" "$MIRROR" >"$log" 2>&1 8>&- 9>&-; then
        note "debootstrap exited non-zero; checking whether Nix and sshd work anyway. Tail of $log:"
        tail -n 5 "$log" >&2
    fi
    local v
    # Nix needs /proc (it reads /proc/self/exe).
    v=$(unshare -m --propagation private sh -c 'mount -t proc proc "$1/proc" && exec chroot "$1" nix-store --version' \
        sh "$root" 2>"$err" 8>&- 9>&-) ||
        die "$suite root is unusable: 'chroot $root nix-store --version' failed: $(cat "$err") (see $log)"
    [[ $v =~ ^nix-store\ \(Nix\)\ ($re)$ ]] ||
        die "$suite root has '$v', expected $want (see $log)"
    v=${BASH_REMATCH[1]}
    [[ -x $root/usr/sbin/sshd ]] || die "$suite root has no /usr/sbin/sshd (see $log)"
    mkdir -p "$root/nix" "$root/etc/nix" "$root/run/sshd" "$root$CHROOT_HOST"
    echo "$v" >"$mark.tmp"
    mv "$mark.tmp" "$mark"
    note "$suite root ready: Nix $v in $((SECONDS - t0))s, $(du -sh --one-file-system "$root" | cut -f1)"
    exec 8>&-
}

# ---------------------------------------------------------------- registry

reg_key() { echo -n "$1" | md5sum | cut -c1-16; }
reg_dir() { echo "$REG/fleets/$(reg_key "$1")"; }

proc_start_time() { # PID -> start time in ticks (guards against pid reuse)
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    s=${s##*) }
    set -- $s
    echo "${20}"
}

owner_alive() { # "PID STARTTIME" or "-"
    local pid st
    read -r pid st <<<"$1"
    [[ $pid == - ]] && return 0
    [[ $(proc_start_time "$pid" 2>/dev/null) == "$st" ]]
}

# "PID NS" for every process whose mount namespace is one of the given ns ids
# ("mnt:[4026...]").
pids_in_ns() {
    (($#)) || return 0
    local want
    want=$(printf '%s\n' "$@")
    # find fails on pids that vanish meanwhile: ignore that.
    { find /proc/[0-9]*/ns/mnt -maxdepth 0 -printf '%p %l\n' 2>/dev/null || true; } |
        awk -v want="$want" 'BEGIN { n = split(want, w, "\n"); for (i = 1; i <= n; i++) ok[w[i]] = 1 }
            ($2 in ok) { split($1, p, "/"); print p[3], $2 }'
}

# Every host namespace carries a tiny tmpfs whose source is its tag, so that a
# namespace id recorded for DIR is trusted only while it still is that host's
# (the kernel reuses ids of dead namespaces).
host_tag() { echo "rbtop-fleet-$(reg_key "$1")-$2"; }

fleet_pids() { # DIR HOST|"" NS...: pids in those namespaces tagged as DIR's (HOST's)
    local tag
    tag=" - tmpfs rbtop-fleet-$(reg_key "$1")-"
    [[ -n $2 ]] && tag="$tag$2 "
    shift 2
    (($#)) || return 0
    pids_in_ns "$@" | awk -v tag="$tag" '
        {
            pid = $1; ns = $2
            if (!(ns in ok)) {
                f = "/proc/" pid "/mountinfo"; found = 0
                while ((r = (getline line < f)) > 0) if (index(line, tag) > 0) { found = 1; break }
                close(f)
                if (r < 0) next            # the pid vanished: decide on another one
                ok[ns] = found
            }
            if (ok[ns]) print pid
        }'
}

fleet_ns() { # DIR -> recorded namespace ids (from DIR and from the registry)
    local dir=$1 r
    r=$(reg_dir "$dir")
    { cat "$dir"/*/mntns "$r/mntns" 2>/dev/null || true; } | sort -u | grep -v '^$' || true
}

# ---------------------------------------------------------------- stop

stop_fleet() { # DIR (lock held)
    local dir=$1 r pids=() ns=() i killed=() pid
    r=$(reg_dir "$dir")
    mapfile -t ns < <(fleet_ns "$dir")
    if ((${#ns[@]})); then
        for sig in TERM TERM KILL KILL; do
            mapfile -t pids < <(fleet_pids "$dir" "" "${ns[@]}")
            ((${#pids[@]})) || break
            killed+=("${pids[@]}")
            kill "-$sig" "${pids[@]}" 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do
                mapfile -t pids < <(fleet_pids "$dir" "" "${ns[@]}")
                ((${#pids[@]})) || break
                sleep 0.1
            done
        done
        mapfile -t pids < <(fleet_pids "$dir" "" "${ns[@]}")
        if ((${#pids[@]})); then
            ps -o pid,stat,args -p "$(IFS=,; echo "${pids[*]}")" >&2 || true
            die "processes of fleet $dir survive SIGKILL: ${pids[*]}"
        fi
        # They are dead; give their new parent (init) a moment to reap the
        # zombies, so that 'pgrep sshd' right after a stop is empty.
        for ((i = 0; i < 30; i++)); do
            for pid in "${killed[@]}"; do [[ -e /proc/$pid ]] && break; done
            [[ ${#killed[@]} -eq 0 || ! -e /proc/$pid ]] && break
            sleep 0.1
        done
    fi
    # Mounts live only in the hosts' private namespaces; make sure none leaked.
    [[ -d $dir ]] && unmount_under "$dir"
    rm -f "$dir"/*/mntns "$dir"/*/sshd.pid "$dir"/*/listener.pid 2>/dev/null || true
    rm -rf "$r"
}

cmd_stop() {
    need_root
    [[ $# -eq 1 ]] || die "usage: fleet.sh stop DIR"
    local dir
    dir=$(abs_dir "$1")
    take_lock
    stop_fleet "$dir"
}

reap() { # stop fleets whose owner died or whose DIR is gone (lock held)
    local r dir owner
    for r in "$REG"/fleets/*/; do
        [[ -f $r/dir ]] || { rm -rf "$r"; continue; }
        dir=$(cat "$r/dir")
        owner=$(cat "$r/owner" 2>/dev/null || echo -)
        if ! owner_alive "$owner" || [[ ! -d $dir ]]; then
            note "reaping fleet $dir (owner ${owner%% *} is gone)"
            stop_fleet "$dir"
            # A dead test's temporary directory (fleet.rs makes rbtop-fleet.*).
            if [[ $owner != - && ${dir##*/} == rbtop-fleet.* ]]; then rm -rf --one-file-system "$dir"; fi
        fi
    done
}

cmd_reap() { need_root; take_lock; reap; }

cmd_stop_all() {
    need_root
    take_lock
    local r
    for r in "$REG"/fleets/*/; do
        [[ -f $r/dir ]] && stop_fleet "$(cat "$r/dir")"
        rm -rf "$r"
    done
}

# ---------------------------------------------------------------- real-looking builders

# --rc-cost MS: root's login shell on every host reads an rc file that burns
# about MS ms of CPU, as real builders' ~/.bashrc (pyenv, conda, a cargo env)
# do. Root's login shell is bash (here and in the trixie root); sshd runs
# `bash -c CMD` for `ssh host CMD`, and Debian's bash reads ~/.bashrc then
# (it sees it was started by sshd), so every session pays the cost once.

RC_ITERS=0
calibrate_rc_cost() { # sets RC_ITERS: turns of a bash loop per RC_COST ms of CPU
    local n=200000 u s
    read -r u s < <({ TIMEFORMAT='%3U %3S'; time bash -c "i=0; while ((i < $n)); do ((i++)); done"; } 2>&1)
    RC_ITERS=$(awk -v n="$n" -v u="$u" -v s="$s" -v ms="$RC_COST" 'BEGIN { c = (u + s) * 1000; if (c < 1) c = 1; printf "%d", n * ms / c }')
    note "rc cost: $RC_COST ms of CPU = $RC_ITERS loop turns per login shell"
}

write_rc_file() { # HOME
    ((RC_COST)) || return 0
    cat >"$1/.bashrc" <<RC
# fleet.sh --rc-cost $RC_COST: a stand-in for a real builder's rc file (pyenv,
# conda, direnv...): about $RC_COST ms of CPU in every shell, interactive or not.
__rc_i=0; while ((__rc_i < $RC_ITERS)); do ((__rc_i++)); done; unset __rc_i
export RBTOP_FLEET_RC_COST=$RC_COST
RC
}

# --rtt MS: one delaying relay (relay.py) in front of every host that runs
# sshd: it listens on the host's address:$PORT and forwards to that host's
# sshd on $INNER_PORT, holding each chunk for MS/2 in each direction. The
# relay runs in its own tagged namespace ("relay"), so `stop` ends it as it
# ends the hosts. The refused and hung hosts stay as they are.

sshd_port() { # KIND
    if ((RTT)) && has_sshd "$1"; then echo "$INNER_PORT"; else echo "$PORT"; fi
}

has_sshd() { [[ $1 != refused && $1 != hung ]]; }

start_relay() {
    local R=$DIR/relay i pairs=()
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        if has_sshd "${KINDS[i]}"; then pairs+=("${ADDRS[i]}:$PORT=${ADDRS[i]}:$INNER_PORT"); fi
    done
    mkdir -p "$R/.tag"
    # shellcheck disable=SC2016
    # In a subshell: not a job of this shell, which `wait`s for its hosts.
    (
        setsid unshare -m --propagation private /bin/sh -c \
            'set -e; mount -t tmpfs -o size=4k "$2" "$1/.tag"; readlink /proc/self/ns/mnt >"$1/mntns"; shift 2; exec python3 "$@"' \
            sh "$R" "$(host_tag "$DIR" relay)" "$HERE/relay.py" "$RTT" "${pairs[@]}" \
            </dev/null >"$R/relay.log" 2>&1 8>&- 9>&- &
        echo $! >"$R/listener.pid"
    )
    for ((i = 0; i < 100; i++)); do
        if grep -q '^relay: listening' "$R/relay.log" 2>/dev/null; then
            note "relay: ${#pairs[@]} hosts behind $RTT ms RTT"
            return 0
        fi
        kill -0 "$(cat "$R/listener.pid")" 2>/dev/null || break
        sleep 0.1
    done
    die "the --rtt relay did not start: $(cat "$R/relay.log")"
}

# ---------------------------------------------------------------- canary faults
# Hosts whose store answers (`rbtop check` says up) but where a build fails,
# each for one of the real reasons (see README.md):
#   untrusted    Nix 2.8 with a nix-daemon, `trusted-users = root`; reached as
#                $REMOTE_USER (ssh:// and ssh-ng://): "not privileged to build"
#   nofeature    its machines line makes `rbtop-big` mandatory; its Nix lacks it
#   storefull    its /nix/store is a tiny tmpfs with no inode left
#   rootunknown  healthy, but left out of known_hosts.daemon (the view that
#                ssh_config.daemon, for a local nix-daemon, gives root)
#   slowbuild    a build there hangs: its /bin/sh runs `sleep 3617` for any
#                builder given a $nonce (the canary), dash for everything else

ensure_remote_user() {
    if id "$REMOTE_USER" >/dev/null 2>&1; then
        [[ $(getent shadow "$REMOTE_USER" | cut -d: -f2) == '*' ]] || usermod -p '*' "$REMOTE_USER"
        return 0
    fi
    # Password '*': no password login, yet not locked (sshd refuses locked accounts).
    useradd --system --no-create-home --home-dir /nonexistent --shell /bin/sh --password '*' "$REMOTE_USER" ||
        die "cannot create the user $REMOTE_USER (useradd)"
}

canary_nix_conf() { # KIND NIXCONFDIR
    case $1 in
    untrusted) printf 'trusted-users = root\nallowed-users = *\n' >>"$2/nix.conf" ;;
    esac
    true
}

# Extra commands run inside the host's namespace, after /nix is mounted and
# before sshd starts (sh code; $H is the host's directory).
canary_setup_in_ns() { # KIND
    case $1 in
    untrusted)
        # The daemon the non-root login talks to. Nix 2.8's daemon makes a
        # mount namespace of its own: recorded too, so that stop finds it.
        # shellcheck disable=SC2016
        echo 'chmod 0755 "$H/nix" /nix/store /nix/var /nix/var/nix 2>/dev/null || true
setsid nix-daemon </dev/null >"$H/nix-daemon.log" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
i=0; while [ ! -S /nix/var/nix/daemon-socket/socket ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
readlink "/proc/$!/ns/mnt" >>"$H/mntns"'
        ;;
    slowbuild)
        # dash is copied, then the wrapper is bound over it (/bin/sh -> dash).
        # shellcheck disable=SC2016
        echo 'cp /usr/bin/dash "$H/dash"
printf "#!%s\n[ -n \"\${nonce:-}\" ] && exec /bin/sleep 3617\nexec %s \"\$@\"\n" "$H/dash" "$H/dash" >"$H/sh-wrapper"
chmod 0755 "$H/sh-wrapper"
mount --bind "$H/sh-wrapper" /usr/bin/dash'
        ;;
    storefull)
        # No inode left: creating the output fails with ENOSPC.
        # shellcheck disable=SC2016
        echo 'mount -t tmpfs -o size=64k,nr_inodes=16,mode=1775 rbtop-storefull /nix/store
mkdir /nix/store/.links
i=0; while (: >"/nix/store/.rbtop-fill-$i") 2>/dev/null; do i=$((i + 1)); done'
        ;;
    esac
}

# The non-root login reads its authorized_keys with its own rights: the
# fleet's DIR is not readable to it, the host's /etc/nix is.
canary_host_files() { # KIND HOSTDIR
    [[ $1 == untrusted ]] || return 0
    cp "$DIR/client_key.pub" "$2/etc-nix/authorized_keys"
    chmod 0644 "$2/etc-nix/authorized_keys"
    sed -i "s|^AuthorizedKeysFile .*|& /etc/nix/authorized_keys|" "$2/sshd_config"
}

canary_machines_line() { # NAME KIND -> machines line(s)
    case $2 in
    untrusted)
        echo "ssh://$REMOTE_USER@$1 x86_64-linux - 2 1 - - -"
        echo "ssh-ng://$REMOTE_USER@$1 x86_64-linux - 2 1 - - -"
        ;;
    nofeature) echo "ssh://$1 x86_64-linux - 2 1 - rbtop-big -" ;;
    *) echo "ssh://$1 x86_64-linux - 2 1 - - -" ;;
    esac
}

# ssh_config.daemon and known_hosts.daemon: the fleet as root's ssh would
# see it through a local nix-daemon started with
# NIX_SSHOPTS='-F DIR/ssh_config.daemon': every key but rootunknown's.
write_daemon_view() {
    grep -v "^\\[$(host_addr rootunknown)\\]:" "$DIR/known_hosts" >"$DIR/known_hosts.daemon" || true
    sed "s|UserKnownHostsFile $DIR/known_hosts\$|UserKnownHostsFile $DIR/known_hosts.daemon|" \
        "$DIR/ssh_config" >"$DIR/ssh_config.daemon"
}

host_addr() { # NAME
    local i
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        [[ ${NAMES[i]} == "$1" ]] && { echo "${ADDRS[i]}"; return 0; }
    done
    echo "-"
}

# ---------------------------------------------------------------- start

abs_dir() {
    local d=$1
    [[ $d == /* ]] || d=$PWD/$d
    [[ $d =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR '$d' must be made of [A-Za-z0-9._/+-] only (NIX_SSHOPTS is split on whitespace)"
    echo "${d%/}"
}

healthy_addr() { # i (1-based)
    local i=$1 j
    if ((10 + i <= 250)); then
        echo "127.0.0.$((10 + i))"
    else
        j=$((i - 241))
        echo "127.0.$((2 + j / 250)).$((1 + j % 250))"
    fi
}

write_sshd_config() { # HOSTDIR-as-seen-by-sshd ADDR KIND NEWSSH FILE
    local h=$1 addr=$2 kind=$3 newssh=$4
    {
        echo "Port $(sshd_port "$kind")"
        # VERBOSE logs one "Starting session" line per exec: sessions are countable.
        echo "LogLevel VERBOSE"
        echo "ListenAddress $addr"
        echo "HostKey $h/hostkey"
        echo "AuthorizedKeysFile $h/authorized_keys"
        echo "PidFile $h/sshd.pid"
        echo "PermitRootLogin prohibit-password"
        echo "PasswordAuthentication no"
        echo "KbdInteractiveAuthentication no"
        echo "UsePAM no"
        echo "StrictModes no"
        echo "UseDNS no"
        echo "PrintMotd no"
        echo "MaxStartups 200"
        echo "MaxSessions 100"
        # OpenSSH >= 9.8 blocks sources that fail auth repeatedly: tests do that on purpose.
        [[ $newssh == 1 ]] && echo "PerSourcePenalties no"
        [[ $kind == nonix ]] && echo "ForceCommand echo 'sh: 1: nix-store: not found' >&2; exit 127"
        [[ $kind == liar ]] && echo "ForceCommand /bin/sh $h/liar.sh"
        [[ $kind == forced ]] && echo "ForceCommand /bin/sh $h/forced.sh"
        true
    } >"$5"
}

write_nix_conf() { # DIR
    mkdir -p "$1"
    cat >"$1/nix.conf" <<'EOF'
build-users-group =
substituters =
sandbox = false
experimental-features = nix-command
gc-reserved-space = 0
EOF
}

HUNG_PERL='
use IO::Socket::INET; use IO::Select;
$0 = "rbtop-fleet-hung";
my ($addr, $port) = @ARGV;
my $l = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => $port, Listen => 512,
    ReuseAddr => 1, Proto => "tcp") or die "hung: cannot listen on $addr:$port: $!\n";
my $sel = IO::Select->new($l);
while (1) {
    for my $h ($sel->can_read) {
        if ($h == $l) { my $c = $l->accept; $sel->add($c) if $c; next }
        my $n = sysread($h, my $buf, 4096);      # swallow the client banner
        if (!$n) { $sel->remove($h); close $h }  # the client gave up
    }
}'

# ---------------------------------------------------------------- the liar
# `liar` (with --liar, off by default): a host whose sshd is real but whose
# store and facts loop are hostile, for rbtop's bounds (SECURITY.md). Its
# store writes escapes and then stderr without a newline for ever, and never
# answers; anything else (the facts loop) gets an answer that never ends,
# with escapes in it. `true` answers, for the readiness check.
LIAR_ADDR=127.0.1.20
write_liar() { # FILE
    cat >"$1" <<'EOF'
case $SSH_ORIGINAL_COMMAND in
true) exit 0 ;;
*liar-version* | *liar-huge*)
    # A worker-protocol daemon (1.37) that completes the handshake: with
    # liar-version, a version string and log frames full of escapes, and
    # pings answered the same way; with liar-huge, a version string said to
    # be 1 TiB long.
    case $SSH_ORIGINAL_COMMAND in *liar-huge*) mode=huge ;; *) mode=version ;; esac
    exec perl -e '
        use strict; $| = 1; binmode STDIN; binmode STDOUT;
        my $mode = shift;
        sub u64 { pack("Q<", $_[0]) }
        sub str { my $s = shift; u64(length $s) . $s . ("\0" x ((8 - length($s) % 8) % 8)) }
        sub need { my $n = shift; my $b = ""; while (length $b < $n) {
            my $got = sysread(STDIN, $b, $n - length $b, length $b); exit 0 unless $got } $b }
        my $evil = "\e]0;LIAR-TITLE\a\e[2J\e]52;c;bGlhcg==\a";
        my $next = u64(0x6f6c6d67) . str("building on the liar $evil");
        my $last = u64(0x616c7473);
        need(8);
        print "oixd\0\0\0\0" . u64(0x125);
        need(24);
        if ($mode eq "huge") { print u64(1 << 40) . ("x" x 65536); sleep 3600; exit 0 }
        print str("2.8.0$evil") . u64(1) . $next . $last;
        while (1) { need(24); print $next . $last . u64(0) }
    ' "$mode" ;;
*nix-store*--serve* | *nix-daemon*)
    exec perl -e '$0 = "rbtop-liar-store \e]0;LIAR\a"; $| = 1;
        my $s = "\e]0;LIAR-TITLE\a\e[2J\e]52;c;bGlhcg==\a" . ("x" x 65536);
        print STDERR $s while 1' ;;
*)
    exec perl -e '$0 = "rbtop-liar-facts \e[2J"; $| = 1;
        my $l = "nix_version=2.8\e]0;LIAR\a\nuptime_s=1\n" x 1024;
        print $l while 1' ;;
esac
EOF
}

# ---------------------------------------------------------------- untrusted ssh://
# `uts1` and `uts2` (with --untrusted-ssh, off by default): Nix 2.26 hosts
# (the trixie root) with a non-root login, $UTS_USER, for TRUSTED over
# ssh://. uts1 runs a nix-daemon with `trusted-users = root`: the daemon
# says "not trusted" to $UTS_USER and "trusted" to root. uts2 runs no daemon:
# nothing can say whether $UTS_USER would be trusted. The user exists only
# inside these hosts' chroot (a passwd bound over the trixie root's, in the
# host's own mount namespace). Their machines lines go to
# machines.untrusted-ssh, not to machines.
UTS_USER=rbtop-untrusted
UTS_UID=64999
UTS_ADDRS=(127.0.1.40 127.0.1.41)

is_uts() { [[ $1 == untrusted-ssh || $1 == untrusted-ssh-nodaemon ]]; }

# Files of HOSTDIR for KIND, before its namespace starts: the account, its
# key (readable to it: StrictModes is off, but the fleet's DIR may be 0700,
# and the host's /etc/nix is reachable) and nix.conf.
uts_host_files() { # KIND HOSTDIR
    local h=$2
    cp "$CACHE/trixie/etc/passwd" "$h/passwd"
    cp "$CACHE/trixie/etc/group" "$h/group"
    cp "$CACHE/trixie/etc/shadow" "$h/shadow"
    echo "$UTS_USER:x:$UTS_UID:$UTS_UID::/nonexistent:/bin/sh" >>"$h/passwd"
    echo "$UTS_USER:x:$UTS_UID:" >>"$h/group"
    # '*': no password login, yet not locked (sshd refuses locked accounts).
    echo "$UTS_USER:*:19000:0:99999:7:::" >>"$h/shadow"
    cp "$DIR/client_key.pub" "$h/etc-nix/authorized_keys"
    chmod 0644 "$h/etc-nix/authorized_keys"
    sed -i "s|^AuthorizedKeysFile .*|& /etc/nix/authorized_keys|" "$h/sshd_config"
    printf 'trusted-users = root\nallowed-users = *\n' >>"$h/etc-nix/nix.conf"
}

# sh code run in the host's namespace before its sshd starts ($H, $R: the
# host's directory and the chroot, as in launch_host).
uts_setup_in_ns() { # KIND
    # shellcheck disable=SC2016
    echo 'for f in passwd group shadow; do mount --bind "$H/$f" "$R/etc/$f"; done
chmod 0755 "$H/nix" "$R/nix/store" "$R/nix/var" "$R/nix/var/nix" 2>/dev/null || true'
    [[ $1 == untrusted-ssh ]] || return 0
    # shellcheck disable=SC2016
    echo 'chroot "$R" setsid nix-daemon </dev/null >"$H/nix-daemon.log" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
i=0; while [ ! -S "$R/nix/var/nix/daemon-socket/socket" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -S "$R/nix/var/nix/daemon-socket/socket" ] || { echo "no daemon socket on $H" >&2; exit 1; }
readlink "/proc/$!/ns/mnt" >>"$H/mntns"'
}

uts_machines_lines() { # NAME KIND
    echo "ssh://$UTS_USER@$1 x86_64-linux - 2 1 - - -"
    if [[ $2 == untrusted-ssh ]]; then echo "ssh://$1 x86_64-linux - 2 1 - - -"; fi
}

# ---------------------------------------------------------------- forced
# `forced` (with --forced, off by default): a healthy Nix 2.8 builder whose
# sshd runs the store whatever the client asks, as an `authorized_keys`
# `command="nix-store --serve --write"` or NixOS's `nix.sshServe` do: no
# shell, no script of rbtop's ever runs there. `true` is let through for the
# readiness check only.
FORCED_ADDR=127.0.1.50
write_forced() { # FILE
    cat >"$1" <<'EOF'
[ "$SSH_ORIGINAL_COMMAND" = true ] && exit 0
exec nix-store --serve --write
EOF
}

# ---------------------------------------------------------------- s1
# `s1` (with --sid, off by default): the newest Nix Debian ships (sid's
# nix-bin), chrooted into the cached sid root exactly as t1 is into trixie's.
SID_ADDR=127.0.1.60

# A host's sshd in a private mount namespace of its own, with its own /nix,
# /etc/nix and /root and a tagged tmpfs (how stop finds it); SETUP is shell
# run in the namespace first (a canary fault host's mounts). Used by start
# and start-host.
launch_sshd_in_ns() { # HOSTDIR TAG [SETUP]
    # shellcheck disable=SC2016
    unshare -m --propagation private /bin/sh -c '
        set -e
        H=$1
        mount -t tmpfs -o size=4k "$2" "$H/.tag"
        readlink /proc/self/ns/mnt >"$H/mntns"
        mount --bind "$H/nix" /nix
        mount --bind "$H/etc-nix" /etc/nix
        mount --bind "$H/home" /root
        eval "$3"
        exec /usr/sbin/sshd -f "$H/sshd_config" -E "$H/sshd.log"
    ' sh "$1" "$2" "${3:-}" </dev/null >"$1/launch.log" 2>&1 8>&- 9>&-
}

# Set up and launch one host (runs in the background; writes .ok on success).
launch_host() { # NAME ADDR KIND
    local name=$1 addr=$2 kind=$3 H=$DIR/$1
    mkdir -p "$H/.tag"
    case $kind in
    refused)
        touch "$H/.ok"
        return 0
        ;;
    hung)
        setsid unshare -m --propagation private /bin/sh -c \
            'set -e; mount -t tmpfs -o size=4k "$2" "$1/.tag"; readlink /proc/self/ns/mnt >"$1/mntns"; shift 2; exec perl -e "$@"' \
            sh "$H" "$(host_tag "$DIR" "$name")" "$HUNG_PERL" "$addr" "$PORT" \
            </dev/null >"$H/listener.log" 2>&1 8>&- 9>&- &
        echo $! >"$H/listener.pid"
        touch "$H/.ok"
        return 0
        ;;
    esac
    ssh-keygen -q -t ed25519 -N '' -C "rbtop-fleet-$name" -f "$H/hostkey" </dev/null
    if [[ $kind == authfail ]]; then : >"$H/authorized_keys"; else cp "$DIR/client_key.pub" "$H/authorized_keys"; fi
    if [[ $kind == liar ]]; then write_liar "$H/liar.sh"; fi
    if [[ $kind == forced ]]; then write_forced "$H/forced.sh"; fi
    # Each host's root gets its own empty home: the machine's /root/.bashrc
    # (sourced by bash for every ssh command) must not slow or change sessions.
    mkdir -p "$H/home"
    write_rc_file "$H/home"
    if [[ $kind == healthy || $kind == wrongkey || $kind == forced || " ${CANARY_FAULTS[*]} " == *" $kind "* ]]; then
        # A copy of an initialised empty store: the first probe does not pay
        # for creating the database (~50 ms CPU), and starting stays cheap.
        cp -a "$DIR/.nix-template" "$H/nix"
    else
        mkdir -p "$H/nix"
    fi
    write_nix_conf "$H/etc-nix"
    canary_nix_conf "$kind" "$H/etc-nix"
    if [[ $kind == trixie || $kind == sid ]] || is_uts "$kind"; then
        write_sshd_config "$CHROOT_HOST" "$addr" "$kind" 1 "$H/sshd_config"
        local extra=""
        if is_uts "$kind"; then
            uts_host_files "$kind" "$H"
            extra=$(uts_setup_in_ns "$kind")
        fi
        # shellcheck disable=SC2016
        unshare -m --propagation private /bin/sh -c '
            set -e
            H=$1 R=$2 C=$3
            readlink /proc/self/ns/mnt >"$H/mntns"
            mount -t proc proc "$R/proc"
            mount --rbind /dev "$R/dev"
            mount --bind "$H/nix" "$R/nix"
            mount --bind "$H/etc-nix" "$R/etc/nix"
            mount --bind "$H" "$R$C"
            # Inside the chroot: a chrooted process sees only mounts below its root.
            mount -t tmpfs -o size=4k "$4" "$R$C/.tag"
            mount --bind "$H/home" "$R/root"
            chroot "$R" nix-store --init
            eval "$5"
            exec chroot "$R" /usr/sbin/sshd -f "$C/sshd_config" -E "$C/sshd.log"
        ' sh "$H" "$(root_dir "$(if [[ $kind == sid ]]; then echo sid; else echo trixie; fi)")" "$CHROOT_HOST" "$(host_tag "$DIR" "$name")" "$extra" </dev/null >"$H/launch.log" 2>&1 8>&- 9>&-
    else
        write_sshd_config "$H" "$addr" "$kind" 0 "$H/sshd_config"
        canary_host_files "$kind" "$H"
        launch_sshd_in_ns "$H" "$(host_tag "$DIR" "$name")" "$(canary_setup_in_ns "$kind")"
    fi
    if [[ $kind == wrongkey ]]; then
        ssh-keygen -q -t ed25519 -N '' -C "rbtop-fleet-not-$name" -f "$H/otherkey" </dev/null
    fi
    touch "$H/.ok"
}

# Wait until one host behaves as its kind says (runs in the background).
ready_host() { # NAME ADDR KIND
    local name=$1 addr=$2 kind=$3 H=$DIR/$1 out rc deadline=$((SECONDS + READY_TIMEOUT))
    # curve25519 instead of the default sntrup761 hybrid: a fraction of the
    # CPU, for this readiness probe only (ssh_config keeps the defaults).
    local ssh=(ssh -F "$DIR/ssh_config" -o ConnectTimeout=5 -o KexAlgorithms=curve25519-sha256)
    while :; do
        case $kind in
        refused)
            if out=$(timeout 2 bash -c "exec 3<>/dev/tcp/$addr/$PORT" 2>&1); then
                echo "something listens on $addr:$PORT, which must refuse connections (another fleet running?)" >"$H/.err"
                return 1
            fi
            [[ $out == *"Connection refused"* ]] && break
            ;;
        hung)
            timeout 2 bash -c "exec 3<>/dev/tcp/$addr/$PORT" 2>/dev/null && break
            out="listener on $addr:$PORT does not accept: $(cat "$H/listener.log" 2>/dev/null)"
            ;;
        authfail)
            rc=0; out=$("${ssh[@]}" "$name" true 2>&1 </dev/null) || rc=$?
            [[ $rc == 255 && $out == *"Permission denied (publickey)"* ]] && break
            ;;
        nonix)
            rc=0; out=$("${ssh[@]}" "$name" true 2>&1 </dev/null) || rc=$?
            [[ $rc == 127 && $out == *"nix-store: not found"* ]] && break
            ;;
        *)
            rc=0; out=$("${ssh[@]}" "$name" true 2>&1 </dev/null) || rc=$?
            [[ $rc == 0 ]] && break
            ;;
        esac
        local dead=0
        if [[ $kind != refused && -s $H/mntns ]] && [[ -z $(fleet_pids "$DIR" "$name" "$(cat "$H/mntns")") ]]; then
            dead=1
        fi
        if ((dead || SECONDS >= deadline)); then
            ((dead)) && out="its processes exited; $out"
            {
                echo "host $name ($kind, $addr:$PORT) not ready after $((SECONDS - deadline + READY_TIMEOUT))s; last attempt: $out"
                for f in launch.log sshd.log listener.log; do
                    [[ -s $H/$f ]] && { echo "--- $H/$f"; tail -n 20 "$H/$f"; }
                done
            } >"$H/.err"
            return 1
        fi
        sleep 0.1
    done
    touch "$H/.ready"
}

# Run FN NAME ADDR KIND for every host, at most $JOBS at a time; fail with the
# hosts' error reports unless every one left MARK behind.
for_all_hosts() { # FN MARK
    local fn=$1 mark=$2 i bad=()
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
        ("$fn" "${NAMES[i]}" "${ADDRS[i]}" "${KINDS[i]}" 2>>"$DIR/${NAMES[i]}.joblog") &
    done
    wait || true
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        [[ -e $DIR/${NAMES[i]}/$mark ]] || bad+=("${NAMES[i]}")
    done
    ((${#bad[@]} == 0)) && { rm -f "$DIR"/*.joblog; return 0; }
    {
        echo "fleet.sh: error: ${#bad[@]} host(s) failed ($fn): ${bad[*]}"
        for i in "${bad[@]:0:5}"; do
            cat "$DIR/$i/.err" "$DIR/$i.joblog" "$DIR/$i/launch.log" 2>/dev/null || true
        done
    } >&2
    return 1
}

save_ns() { cat "$DIR"/*/mntns >"$START_REG/mntns" 2>/dev/null || true; }

cmd_start() {
    need_root
    local dir="" healthy=3 faults=1 trixie=1 sid=0 liar=0 forced=0 canary=0 uts=0
    while (($#)); do
        case $1 in
        --healthy) healthy=${2:?--healthy needs a number}; shift 2 ;;
        --healthy=*) healthy=${1#*=}; shift ;;
        --no-faults) faults=0; shift ;;
        --no-trixie) trixie=0; shift ;;
        --sid) sid=1; shift ;;
        --liar) liar=1; shift ;;
        --untrusted-ssh) uts=1; shift ;;
        --forced) forced=1; shift ;;
        --rc-cost) RC_COST=${2:?--rc-cost needs a number of ms}; shift 2 ;;
        --rtt) RTT=${2:?--rtt needs a number of ms}; shift 2 ;;
        --canary-faults) canary=1; shift ;;
        -*) die "unknown option $1" ;;
        *) [[ -z $dir ]] || die "usage: fleet.sh start DIR [--healthy N] [--no-faults] [--no-trixie] [--sid] [--liar] [--forced] [--canary-faults] [--rc-cost MS] [--rtt MS] [--untrusted-ssh]"; dir=$1; shift ;;
        esac
    done
    [[ -n $dir ]] || die "usage: fleet.sh start DIR [--healthy N] [--no-faults] [--no-trixie] [--sid] [--liar] [--forced] [--canary-faults] [--rc-cost MS] [--rtt MS] [--untrusted-ssh]"
    [[ $healthy =~ ^[0-9]+$ ]] && ((healthy <= 2000)) || die "--healthy must be a number 0..2000"
    [[ $RC_COST =~ ^[0-9]+$ ]] && ((RC_COST <= 10000)) || die "--rc-cost must be a number of ms 0..10000"
    [[ $RTT =~ ^[0-9]+$ ]] && ((RTT <= 10000)) || die "--rtt must be a number of ms 0..10000"
    if ((RTT)); then command -v python3 >/dev/null || die "--rtt needs python3 (apt-get install python3)"; fi
    for c in sshd:openssh-server ssh-keygen:openssh-client nix-store:nix-bin unshare:util-linux perl:perl-base; do
        command -v "${c%%:*}" >/dev/null || die "${c%%:*} not found (apt-get install ${c#*:})"
    done
    if ((uts && !trixie)); then die "--untrusted-ssh needs the trixie root (drop --no-trixie)"; fi
    if ((trixie)); then prepare_root trixie; fi
    if ((sid)); then prepare_root sid; fi
    DIR=$(abs_dir "$dir")
    mkdir -p "$DIR"
    local t0=$SECONDS
    take_lock
    reap
    stop_fleet "$DIR"
    local r other ns
    for r in "$REG"/fleets/*/; do
        [[ -f $r/dir ]] || continue
        other=$(cat "$r/dir")
        mapfile -t ns < <(cat "$r/mntns" 2>/dev/null || true)
        [[ -n $(fleet_pids "$other" "" "${ns[@]}") ]] &&
            die "another fleet is running in $other and holds the same addresses; stop it first: $0 stop $other"
    done

    # The previous fleet's files.
    if [[ -f $DIR/hosts.tsv ]]; then
        tail -n +2 "$DIR/hosts.tsv" | cut -f1 | while read -r n; do
            [[ $n =~ ^[A-Za-z0-9-]+$ ]] && rm -rf --one-file-system "${DIR:?}/$n"
        done
    fi
    rm -f "$DIR"/{client_key,client_key.pub,ssh_config,known_hosts,machines,machines.untrusted-ssh,hosts.tsv,env} "$DIR"/*.joblog
    rm -f "$DIR"/{ssh_config.daemon,known_hosts.daemon}

    # Hosts: names, addresses, kinds, in machines-file order.
    NAMES=() ADDRS=() KINDS=()
    local i
    for ((i = 1; i <= healthy; i++)); do NAMES+=("b$i"); ADDRS+=("$(healthy_addr "$i")"); KINDS+=(healthy); done
    if ((trixie)); then NAMES+=(t1); ADDRS+=(127.0.1.1); KINDS+=(trixie); fi
    if ((faults)); then
        for ((i = 0; i < ${#FAULTS[@]}; i++)); do
            NAMES+=("${FAULTS[i]}"); ADDRS+=("127.0.1.$((i + 2))"); KINDS+=("${FAULTS[i]}")
        done
    fi
    if ((sid)); then NAMES+=(s1); ADDRS+=("$SID_ADDR"); KINDS+=(sid); fi
    if ((liar)); then NAMES+=(liar); ADDRS+=("$LIAR_ADDR"); KINDS+=(liar); fi
    if ((forced)); then NAMES+=(forced); ADDRS+=("$FORCED_ADDR"); KINDS+=(forced); fi
    if ((canary)); then
        ensure_remote_user
        for ((i = 0; i < ${#CANARY_FAULTS[@]}; i++)); do
            NAMES+=("${CANARY_FAULTS[i]}"); ADDRS+=("127.0.1.$((i + 30))"); KINDS+=("${CANARY_FAULTS[i]}")
        done
    fi
    if ((uts)); then
        NAMES+=(uts1 uts2); ADDRS+=("${UTS_ADDRS[@]}"); KINDS+=(untrusted-ssh untrusted-ssh-nodaemon)
    fi
    for i in "${NAMES[@]}"; do rm -rf --one-file-system "${DIR:?}/$i"; done
    rm -rf --one-file-system "${DIR:?}/relay"

    # Registry entry first, so a start that dies half-way can still be stopped/reaped.
    r=$(reg_dir "$DIR")
    mkdir -p "$r"
    echo "$DIR" >"$r/dir"
    local owner=-
    if [[ -n ${RBTOP_FLEET_OWNER_PID:-} ]]; then
        owner="$RBTOP_FLEET_OWNER_PID $(proc_start_time "$RBTOP_FLEET_OWNER_PID")" ||
            die "owner pid $RBTOP_FLEET_OWNER_PID does not exist"
    fi
    echo "$owner" >"$r/owner"

    mkdir -p /run/sshd /nix /etc/nix
    ssh-keygen -q -t ed25519 -N '' -C rbtop-fleet-client -f "$DIR/client_key" </dev/null
    rm -rf "$DIR/.nix-template"
    mkdir -p "$DIR/.nix-template" "$DIR/.nix-template-conf"
    write_nix_conf "$DIR/.nix-template-conf"
    # shellcheck disable=SC2016
    unshare -m --propagation private /bin/sh -c \
        'mount --bind "$1/.nix-template" /nix && mount --bind "$1/.nix-template-conf" /etc/nix && exec nix-store --init' \
        sh "$DIR" 8>&- 9>&- || die "cannot initialise a Nix store (nix-store --init)"

    # From here on, a failure stops what was started.
    START_REG=$r
    trap 'rc=$?; if ((rc)); then save_ns; stop_fleet "$DIR" || true; fi' EXIT
    if ((RC_COST)); then calibrate_rc_cost; fi
    for_all_hosts launch_host .ok; [[ -n ${FLEET_DEBUG:-} ]] && note "launched at $((SECONDS - t0))s"
    if ((RTT)); then start_relay; fi
    save_ns

    # Files describing the fleet.
    local name addr kind ver key pub
    {
        for ((i = 0; i < ${#NAMES[@]}; i++)); do
            printf 'Host %s\n  HostName %s\n  Port %s\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n\n' \
                "${NAMES[i]}" "${ADDRS[i]}" "$PORT" "$DIR/client_key" "$DIR/known_hosts"
            if [[ ${NAMES[i]} == b1 ]]; then
                printf 'Host b1-alias\n  HostName %s\n  Port %s\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n\n' \
                    "${ADDRS[i]}" "$PORT" "$DIR/client_key" "$DIR/known_hosts"
            fi
        done
    } >"$DIR/ssh_config"
    local v28
    v28=$(nix-store --version | sed -n 's/^nix-store (Nix) //p')
    printf 'name\taddr\tport\tkind\tnix_version\thostkey_b64\n' >"$DIR/hosts.tsv"
    : >"$DIR/known_hosts"
    : >"$DIR/machines"
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        name=${NAMES[i]} addr=${ADDRS[i]} kind=${KINDS[i]}
        key=- ver=-
        if [[ -f $DIR/$name/hostkey.pub ]]; then
            key=$(base64 -w0 "$DIR/$name/hostkey.pub")
            read -r -a pub <"$DIR/$name/hostkey.pub"
            echo "[$addr]:$PORT ${pub[0]} ${pub[1]}" >>"$DIR/known_hosts"
        fi
        case $kind in
        healthy | wrongkey | forced | untrusted | nofeature | storefull | rootunknown | slowbuild) ver=$v28 ;;
        trixie | sid) ver=$(root_version "$kind") ;;
        untrusted-ssh | untrusted-ssh-nodaemon) ver=$(root_version trixie) ;;
        esac
        if is_uts "$kind"; then
            uts_machines_lines "$name" "$kind" >>"$DIR/machines.untrusted-ssh"
        elif [[ $kind == wrongkey ]]; then
            echo "ssh://$name x86_64-linux - 2 1 - - $(base64 -w0 "$DIR/$name/otherkey.pub")" >>"$DIR/machines"
        elif [[ " ${CANARY_FAULTS[*]} " == *" $kind "* ]]; then
            canary_machines_line "$name" "$kind" >>"$DIR/machines"
        else
            echo "ssh://$name x86_64-linux - 2 1 - - -" >>"$DIR/machines"
        fi
        [[ $kind == trixie || $kind == sid ]] && kind=healthy
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$addr" "$PORT" "$kind" "$ver" "$key" >>"$DIR/hosts.tsv"
    done
    {
        echo "export RBTOP_FLEET_DIR='$DIR'"
        echo "export RBTOP_FLEET_MACHINES='$DIR/machines'"
        echo "export NIX_SSHOPTS='-F $DIR/ssh_config'"
    } >"$DIR/env"
    write_daemon_view

    for_all_hosts ready_host .ready
    save_ns
    trap - EXIT
    rm -rf "$DIR"/*/.ok "$DIR"/*/.ready "$DIR/.nix-template" "$DIR/.nix-template-conf"
    note "fleet up in $DIR: ${#NAMES[@]} hosts in $((SECONDS - t0))s (source $DIR/env)"
}

# ---------------------------------------------------------------- status

cmd_status() {
    [[ $# -eq 1 ]] || die "usage: fleet.sh status DIR"
    local dir
    dir=$(abs_dir "$1")
    [[ -f $dir/hosts.tsv ]] || { echo "no fleet in $dir"; return 0; }
    local name addr port kind ver key ns n pid up=0 total=0
    printf '%-10s %-14s %-9s %-8s %-8s %s\n' NAME ADDR KIND NIX PID PROCS
    while IFS=$'\t' read -r name addr port kind ver key; do
        [[ $name == name ]] && continue
        total=$((total + 1))
        ns=$(cat "$dir/$name/mntns" 2>/dev/null || true)
        n=0
        [[ -n $ns ]] && n=$(fleet_pids "$dir" "$name" "$ns" | wc -l)
        pid=$(cat "$dir/$name/sshd.pid" "$dir/$name/listener.pid" 2>/dev/null | head -n1 || true)
        [[ -n $pid ]] || pid=-
        if [[ $kind == refused ]]; then n=-; up=$((up + 1)); elif ((n > 0)); then up=$((up + 1)); else pid="down"; fi
        printf '%-10s %-14s %-9s %-8s %-8s %s\n' "$name" "$addr" "$kind" "$ver" "$pid" "$n"
    done <"$dir/hosts.tsv"
    echo "$up/$total hosts running (refused counts as running: nothing is meant to listen)"
}

# ---------------------------------------------------------------- stop-host / start-host

# Take one Nix 2.8 host (b*) down as a crash would: every process in its
# namespace dies (its sshd and the sessions open to it), so its address
# refuses connections. start-host brings it back with the same host key,
# store and address. Used by the live machines file's tests.
host_row() { # DIR NAME -> "addr kind" from hosts.tsv
    awk -F '\t' -v n="$2" '$1 == n { print $2, $4 }' "$1/hosts.tsv"
}

cmd_stop_host() {
    need_root
    [[ $# -eq 2 ]] || die "usage: fleet.sh stop-host DIR NAME"
    local dir name=$2 H ns pids=() i
    dir=$(abs_dir "$1")
    H=$dir/$name
    [[ $name == b[0-9]* && -n $(host_row "$dir" "$name") ]] || die "stop-host takes a b* host of the fleet in $dir, not '$name'"
    take_lock
    ns=$(cat "$H/mntns" 2>/dev/null || true)
    [[ -n $ns ]] || { note "$name is not running"; return 0; }
    for ((i = 0; i < 50; i++)); do
        mapfile -t pids < <(fleet_pids "$dir" "$name" "$ns")
        ((${#pids[@]})) || break
        kill -KILL "${pids[@]}" 2>/dev/null || true
        sleep 0.1
    done
    ((${#pids[@]} == 0)) || die "processes of $name survive SIGKILL: ${pids[*]}"
    rm -f "$H/mntns" "$H/sshd.pid"
}

cmd_start_host() {
    need_root
    [[ $# -eq 2 ]] || die "usage: fleet.sh start-host DIR NAME"
    local dir name=$2 H addr kind i
    dir=$(abs_dir "$1")
    H=$dir/$name
    read -r addr kind <<<"$(host_row "$dir" "$name")"
    [[ $name == b[0-9]* && $kind == healthy ]] || die "start-host takes a b* host of the fleet in $dir, not '$name'"
    take_lock
    [[ -s $H/mntns ]] && die "$name is running already"
    launch_sshd_in_ns "$H" "$(host_tag "$dir" "$name")"
    # Recorded for stop and reap, like the namespaces start records.
    cat "$H/mntns" >>"$(reg_dir "$dir")/mntns" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        timeout 2 bash -c "exec 3<>/dev/tcp/$addr/$PORT" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$name ($addr:$PORT) does not accept connections after start-host: $(tail -n 5 "$H/sshd.log" 2>/dev/null)"
}

# ---------------------------------------------------------------- main

cmd=${1:-}
shift || true
case $cmd in
prepare) cmd_prepare "$@" ;;
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
status) cmd_status "$@" ;;
reap) cmd_reap ;;
stop-host) cmd_stop_host "$@" ;;
start-host) cmd_start_host "$@" ;;
stop-all) cmd_stop_all ;;
*) die "usage: fleet.sh prepare | start DIR [--healthy N] [--no-faults] [--no-trixie] [--sid] [--liar] [--forced] [--canary-faults] [--rc-cost MS] [--rtt MS] [--untrusted-ssh] | stop DIR | status DIR | stop-host DIR NAME | start-host DIR NAME | reap | stop-all" ;;
esac
