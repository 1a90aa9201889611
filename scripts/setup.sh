#!/usr/bin/env bash
# One-time (idempotent) set-up of everything the testbed needs on Debian 12/13 and
# Ubuntu 22.04/24.04 (their system python3: 3.11, 3.13, 3.10, 3.12).
#   - Debian packages: Mininet, Open vSwitch, iperf3, ethtool, ping, tcpdump, venv support
#   - .venv: a virtual environment made from /usr/bin/python3 with --system-site-packages,
#     so it imports Debian's mininet, plus the project's Python dependencies (pyproject.toml)
#   - Open vSwitch daemons started without systemd if they are not running
# A second run does nothing that is already done and takes about a second.
#
#   scripts/setup.sh              everything above; needs root
#   scripts/setup.sh --venv-only  only .venv (no root, no apt, no OVS): enough for the pure
#                                 tests (make test-fast); needs python3-venv installed
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

VENV_ONLY=0
case "${1:-}" in
    "") ;;
    --venv-only) VENV_ONLY=1 ;;
    *) printf 'setup: unknown option %s (usage: scripts/setup.sh [--venv-only])\n' "$1" >&2; exit 2 ;;
esac

# ---- User-Mode Linux test lane (scripts/uml.sh, make uml): a 6.1 kernel as a process, with
# the sch_netem and openvswitch modules this machine's kernel may lack. Optional: a failed
# install only disables that lane.
if ! dpkg-query -W -f='${Status}' user-mode-linux 2>/dev/null | grep -q "install ok installed"; then
    say "installing user-mode-linux (second test lane: netem + OVS kernel datapath in a guest)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends user-mode-linux; } \
        </dev/null >/tmp/lmtb-apt-uml.log 2>&1 \
        || say "user-mode-linux not installed (log: /tmp/lmtb-apt-uml.log): the UML test lane will be skipped"
fi
# ---- end of the User-Mode Linux block

PY=/usr/bin/python3
# Python's own version rule is pyproject.toml's requires-python; this names it early.
check_python() {
    [ -x "$PY" ] || die "$PY not found (Debian's python3 is needed to import Debian's mininet)"
    "$PY" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 13)))' \
        || die "$PY is Python $("$PY" -c 'import platform; print(platform.python_version())'), the testbed supports 3.10-3.13"
}

# Root, apt and the Debian packages: everything but --venv-only.
install_debian_packages() {
    [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, Open vSwitch, tc): run 'sudo make ...' (the pure tests alone: 'make test-fast', no root)"
    command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian 12/13 and Ubuntu 22.04/24.04 only"

    APT_PACKAGES=(mininet openvswitch-switch iperf3 iperf telnet net-tools ethtool iputils-ping tcpdump iproute2 procps
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
}

[ "$VENV_ONLY" -eq 1 ] || install_debian_packages

check_python
if [ ! -x .venv/bin/python ]; then
    "$PY" -c 'import ensurepip, venv' 2>/dev/null \
        || die "$PY cannot make a virtual environment: install python3-venv (apt-get install python3-venv), or run 'sudo make setup'"
    say "creating .venv from $PY (with system site-packages, for Debian's mininet)"
    "$PY" -m venv --system-site-packages .venv || { rm -rf .venv; die "could not create .venv with $PY -m venv"; }
fi
stamp=".venv/.deps-$(cat pyproject.toml scripts/setup.sh scripts/pip_check.py | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    say "installing Python dependencies into .venv"
    # (sed drops pip's notes about configured package folders this machine may not have;
    # pipefail keeps pip's own exit status)
    .venv/bin/python -m pip install -q --upgrade pip </dev/null 2>&1 | sed '/^WARNING: Location/d'
    .venv/bin/python -m pip install -q -e '.[dev]' </dev/null 2>&1 | sed '/^WARNING: Location/d' \
        | sed '/BuildBackendWarning\|^  !!\|^ *\*\*\*\|^ *$\|Please be careful\|name as your package\|with strategy, WheelFile/d' 
    # Earlier versions of this script installed mlc-chakra without its dependencies;
    # the testbed reads Chakra traces without it now, and pip check would flag it.
    if .venv/bin/python -m pip show -q mlc-chakra >/dev/null 2>&1; then
        say "removing mlc-chakra from .venv (no longer used)"
        .venv/bin/python -m pip uninstall -q -y mlc-chakra </dev/null
    fi
    .venv/bin/python scripts/pip_check.py || die "the Python dependencies in .venv are inconsistent (pip check, above)"
    rm -f .venv/.deps-*
    touch "$stamp"
fi
if [ "$VENV_ONLY" -eq 1 ]; then
    say "ready (.venv only: enough for 'make test-fast'; 'sudo make setup' for the rest)"
    exit 0
fi

# The delay line (propagation delay on kernels without sch_netem) is a small C program.
DL_SRC=testbed/links/delayline.c
if [ ! -x .venv/bin/lmtb-delayline ] || [ "$DL_SRC" -nt .venv/bin/lmtb-delayline ]; then
    say "building the delay line (.venv/bin/lmtb-delayline)"
    gcc -O2 -Wall -o .venv/bin/lmtb-delayline.tmp "$DL_SRC" && mv .venv/bin/lmtb-delayline.tmp .venv/bin/lmtb-delayline
fi

# The UML lane's kernel needs a shim on CPUs with a larger XSAVE area than it was built
# for (scripts/uml-xstate.c says why); built whether or not user-mode-linux is installed.
XS_SRC=scripts/uml-xstate.c
if [ ! -f .venv/lib/lmtb-uml-xstate.so ] || [ "$XS_SRC" -nt .venv/lib/lmtb-uml-xstate.so ]; then
    say "building the UML kernel's XSAVE shim (.venv/lib/lmtb-uml-xstate.so)"
    gcc -O2 -Wall -shared -fPIC -o .venv/lib/lmtb-uml-xstate.so.tmp "$XS_SRC" -ldl \
        && mv .venv/lib/lmtb-uml-xstate.so.tmp .venv/lib/lmtb-uml-xstate.so
fi

if ! ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
    say "starting Open vSwitch (ovs-ctl, no systemd)"
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/tmp/lmtb-ovs.log 2>&1 \
        || { tail -5 /tmp/lmtb-ovs.log >&2; die "could not start Open vSwitch (log: /tmp/lmtb-ovs.log)"; }
    ovs-vsctl --timeout=5 show >/dev/null || die "Open vSwitch started but ovs-vsctl cannot reach it"
fi
say "ready"
