#!/usr/bin/env bash
# Every check rbtop has, from a fresh Debian machine: installs what the tests
# need (as root), then formatting, lints and the whole test suite.
#
#   sudo bash tests/run-all.sh                # set up, then every check
#   sudo bash tests/run-all.sh --setup-only   # set up only (README's run command)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests talk to: real Nix (nix-instantiate, nix-store,
# nix-daemon), a real sshd for the loopback builder fleet, and debootstrap for
# the fleet's Nix 2.26 host (a Debian trixie root, see tests/fleet/README.md);
# shellcheck reads the scripts rbtop runs on builders; prometheus (with
# promtool) scrapes rbtop serve in tests/serve_fleet.rs and checks assets/.
packages=(nix-bin openssh-server debootstrap tmux strace shellcheck prometheus)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "run-all: missing packages ${missing[*]}: run as root (sudo bash $0)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A fresh Debian has no Rust new enough for edition 2024: bring rustup's stable.
export PATH="$HOME/.cargo/bin:$PATH"
# One build from scratch: incremental caches would only cost time and disk
# (several GB for every test binary).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
if ! command -v cargo >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates build-essential
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
fi

# The fleet's Debian trixie root with Nix 2.26: made once (~1.5 min), cached
# under /var/cache/rbtop-fleet. The fleet tests need root and fail without it.
bash tests/fleet/fleet.sh prepare

[[ ${1:-} == --setup-only ]] && exit 0

# Every script rbtop runs on a builder is POSIX sh (src/remote/script.rs
# loads them; a unit test checks that none is left out of this directory).
shellcheck -s sh src/remote/scripts/*.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
