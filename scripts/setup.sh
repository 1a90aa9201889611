#!/usr/bin/env bash
# One-time (idempotent) set-up of everything the testbed needs on Debian 12 / Ubuntu 22.04+.
#   - Debian packages: Mininet, Open vSwitch, iperf3, ethtool, ping, tcpdump, venv support
#   - .venv: a virtual environment made from /usr/bin/python3 with --system-site-packages,
#     so it imports Debian's mininet, plus the project's Python dependencies (pyproject.toml)
#   - Open vSwitch daemons started without systemd if they are not running
# A second run does nothing that is already done and takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, Open vSwitch, tc): run 'sudo make ...'"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian 12 / Ubuntu 22.04+ only"

APT_PACKAGES=(mininet openvswitch-switch iperf3 ethtool iputils-ping tcpdump iproute2 procps
              python3-venv python3-dev gcc libc6-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps dpkg from trying to start services on machines without systemd
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/tmp/lmtb-apt.log 2>&1 \
        || { tail -20 /tmp/lmtb-apt.log >&2; die "apt-get install failed (log: /tmp/lmtb-apt.log)"; }
fi

PY=/usr/bin/python3
[ -x "$PY" ] || die "$PY not found (Debian's python3 is needed to import Debian's mininet)"
if [ ! -x .venv/bin/python ]; then
    say "creating .venv from $PY (with system site-packages, for Debian's mininet)"
    "$PY" -m venv --system-site-packages .venv
fi
stamp=".venv/.deps-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    say "installing Python dependencies into .venv"
    # (sed drops pip's notes about configured package folders this machine may not have;
    # pipefail keeps pip's own exit status)
    .venv/bin/python -m pip install -q --upgrade pip </dev/null 2>&1 | sed '/^WARNING: Location/d'
    .venv/bin/python -m pip install -q -e '.[dev]' </dev/null 2>&1 | sed '/^WARNING: Location/d' \
        | sed '/BuildBackendWarning\|^  !!\|^ *\*\*\*\|^ *$\|Please be careful\|name as your package\|with strategy, WheelFile/d' 
    # mlc-chakra reads Chakra execution traces; its declared dependencies are not needed
    # for reading them, so it is installed without them (protobuf comes from pyproject).
    .venv/bin/python -m pip install -q --no-deps 'mlc-chakra==1.0.0' </dev/null 2>&1 | sed '/^WARNING: Location/d' 
    rm -f .venv/.deps-*
    touch "$stamp"
fi

# The delay line (propagation delay on kernels without sch_netem) is a small C program.
DL_SRC=testbed/delayline/lmtb-delayline.c
if [ ! -x .venv/bin/lmtb-delayline ] || [ "$DL_SRC" -nt .venv/bin/lmtb-delayline ]; then
    say "building the delay line (.venv/bin/lmtb-delayline)"
    gcc -O2 -Wall -o .venv/bin/lmtb-delayline.tmp "$DL_SRC" && mv .venv/bin/lmtb-delayline.tmp .venv/bin/lmtb-delayline
fi

if ! ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
    say "starting Open vSwitch (ovs-ctl, no systemd)"
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/tmp/lmtb-ovs.log 2>&1 \
        || { tail -5 /tmp/lmtb-ovs.log >&2; die "could not start Open vSwitch (log: /tmp/lmtb-ovs.log)"; }
    ovs-vsctl --timeout=5 show >/dev/null || die "Open vSwitch started but ovs-vsctl cannot reach it"
fi
say "ready"
