#!/usr/bin/env bash
# Runs a command inside a User-Mode Linux guest: a Debian 6.1 kernel as a host process,
# with sch_netem and the openvswitch module, on the machine's own root file system.
#
#   scripts/uml.sh CMD [ARG...]      (run as root; `apt-get install user-mode-linux`)
#
# CMD runs in the current directory (hostfs root = the machine's root, so every path is
# the same inside), as root in the guest, with stdin from /dev/null; its stdout and
# stderr come back on this script's stdout and stderr (two serial lines), and this
# script exits with CMD's exit status. 125: the guest could not run CMD (boot log shown).
#
# Inside, before CMD: proc, sys, tmpfs on /run, /tmp, /var/tmp, /dev/shm (the guest never
# touches the machine's /run, its OVS sockets or lock files); modules loaded with
# `modprobe -d` from /usr/lib/uml/modules; the guest's own Open vSwitch (database,
# sockets, logs in the guest's /run/openvswitch, never /etc/openvswitch); PATH set;
# HOME in the guest's /tmp; PYTHONDONTWRITEBYTECODE=1 (no .pyc written into shared venvs).
#
# The machine's /tmp, /var/tmp and /run are covered inside: CMD's files must live elsewhere.
#
# Environment: LMTB_UML_MEM (default 2G), LMTB_UML_OVS=0 (no OVS in the guest),
# LMTB_UML_KEEP=1 (keep the control folder, with the guest's kernel log, for debugging),
# LMTB_UML_TIMEOUT_S (kill the guest after this long; default none), LMTB_UML_LOCK
# (default /tmp/emu-uml.lock: one guest at a time). Variables named CI, LMTB_* (but
# LMTB_UML_*) and PYTEST_ADDOPTS are passed into the guest.
#
# Leaves nothing behind: the control folder (/tmp/lmtb-uml.*) is removed on exit, the
# guest's memory file is unlinked by UML at start, its pid/socket folder is in the
# control folder.
set -uo pipefail

die() { printf 'uml: %s\n' "$*" >&2; exit 125; }
[ $# -ge 1 ] || { printf 'usage: scripts/uml.sh CMD [ARG...]\n' >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "needs root (the guest runs as root on the machine's file system)"
KERNEL=$(command -v linux.uml) || die "linux.uml not found: apt-get install user-mode-linux (or 'make setup')"
# Loaded into the UML kernel: Debian's 6.1 build cannot restore FPU state on CPUs whose
# XSAVE area is larger than it knows (AMX); scripts/uml-xstate.c, built by scripts/setup.sh.
XSTATE_SHIM=$(cd "$(dirname "$0")/.." && pwd)/.venv/lib/lmtb-uml-xstate.so
[ -f "$XSTATE_SHIM" ] || die "$XSTATE_SHIM not built: run 'make setup'"
MODS=$(ls -d /usr/lib/uml/modules/*/ 2>/dev/null | head -1)
[ -n "$MODS" ] || die "no modules under /usr/lib/uml/modules: reinstall user-mode-linux"
KVER=$(basename "$MODS")

LOCK=${LMTB_UML_LOCK:-/tmp/emu-uml.lock}
if [ -z "${LMTB_UML_LOCKED:-}" ]; then
    export LMTB_UML_LOCKED=1
    exec flock "$LOCK" "$0" "$@"
fi
unset LMTB_UML_LOCKED

CTL=$(mktemp -d /tmp/lmtb-uml.XXXXXX) || die "mktemp failed"
UML_PID=
cleanup() {
    if [ -n "$UML_PID" ] && kill -0 "$UML_PID" 2>/dev/null; then
        kill -TERM "$UML_PID" 2>/dev/null; sleep 1; kill -KILL "$UML_PID" 2>/dev/null
        wait "$UML_PID" 2>/dev/null
    fi
    [ -n "${LMTB_UML_KEEP:-}" ] && printf "uml: kept %s\n" "$CTL" >&2 || rm -rf "$CTL"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$CTL/mods/lib/modules" "$CTL/uml"
ln -s "${MODS%/}" "$CTL/mods/lib/modules/$KVER"

# The command, its folder and the passed-through environment, quoted for bash (printf %q).
{
    printf 'cd %q || exit 125\n' "$PWD"
    while IFS= read -r name; do
        case $name in LMTB_UML_*) continue ;; esac
        printf 'export %s=%q\n' "$name" "${!name}"
    done < <(compgen -e | grep -E '^(CI|LMTB_[A-Z0-9_]+|PYTEST_ADDOPTS)$')
    # The guest's stdout is a serial tty: no colour codes unless ours is a terminal too.
    [ -t 1 ] || printf 'export NO_COLOR=1 PY_COLORS=0 TERM=dumb\n'
    printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$CTL/cmd.sh"

# Guest init. /run/uml-host is this control folder, bind-mounted before /tmp is covered.
cat > "$CTL/init" <<EOF
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t tmpfs -o mode=755 run /run || exit 1
H=/run/uml-host
mkdir \$H && mount --bind "$CTL" \$H || exit 1
for d in /tmp /var/tmp /dev/shm; do mkdir -p \$d && mount -t tmpfs -o mode=1777 tmp \$d || exit 1; done
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
echo uml-host > /proc/sys/kernel/hostname
stty -F /dev/ttyS0 raw -echo; stty -F /dev/ttyS1 raw -echo
modprobe -a -d \$H/mods veth tun sch_netem sch_tbf sch_htb openvswitch || echo "uml: modprobe failed" >&2
ip link set lo up
ulimit -n 65536     # the guest's default 1,024 is too few for a delay line with 1,000 links
export HOME=/tmp/home PYTHONDONTWRITEBYTECODE=1 TMPDIR=/tmp
mkdir -p \$HOME
if [ "${LMTB_UML_OVS:-1}" != 0 ]; then
    sh \$H/ovs-start > /run/ovs-start.log 2>&1 || { cat /run/ovs-start.log; echo "uml: guest Open vSwitch did not start"; } >&2
fi
: > \$H/started
bash \$H/cmd.sh < /dev/null > /dev/ttyS0 2> /dev/ttyS1
echo \$? > \$H/rc
sync
umount \$H
halt -f 2>/dev/null || echo o > /proc/sysrq-trigger
EOF
chmod +x "$CTL/init"

# The guest's Open vSwitch: database, sockets and logs in its own /run/openvswitch (the
# default places ovs-vsctl looks, /var/run -> /run). ovs-vswitchd starts once the guest's
# monotonic clock passed 10 s: OVS 3.1.0's count_cpu_cores() returns 0 before that (its
# 10 s cache starts at time 0; fixed upstream in 3.1.1, "ovs-thread: Fix cpus not read for
# the first 10s"), so the kernel datapath gets 0 upcall handlers and loses every upcall.
cat > "$CTL/ovs-start" <<'EOF'
set -e
# (OVS_RUNDIR stays the compiled-in /var/run/openvswitch, the same folder: ovs-vswitchd accepts
# a unix: controller only under its run directory as written, and the testbed names it so.)
export OVS_DBDIR=/run/openvswitch OVS_LOGDIR=/run/openvswitch \
       OVS_SYSCONFDIR=/run/openvswitch/etc OVS_PKGDATADIR=/usr/share/openvswitch
mkdir -p /run/openvswitch/etc
ovsdb-tool create /run/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server /run/openvswitch/conf.db --remote=punix:/run/openvswitch/db.sock \
    --pidfile --detach --log-file --no-chdir
ovs-vsctl --no-wait init
ovs-vsctl --no-wait set Open_vSwitch . external_ids:system-id=uml-guest
while [ "$(cut -d. -f1 /proc/uptime)" -lt 11 ]; do sleep 0.2; done
ovs-vswitchd --pidfile --detach --log-file --no-chdir
ovs-vsctl --timeout=20 show > /dev/null
EOF

# 0: /dev/null (no input), 1/2: CMD's stdout/stderr via serial lines ttyS0/ttyS1, boot
# and kernel messages to a log shown only when the guest fails.
LD_PRELOAD="$XSTATE_SHIM" TMPDIR=/dev/shm "$KERNEL" mem="${LMTB_UML_MEM:-2G}" root=/dev/root rootfstype=hostfs rootflags=/ rw \
    init="$CTL/init" con=null con0=null,fd:3 ssl=null ssl0=fd:0,fd:1 ssl1=fd:4,fd:2 \
    uml_dir="$CTL/uml" umid=lmtb quiet < /dev/null 4< /dev/null 3> "$CTL/kernel.log" &
UML_PID=$!
if [ -n "${LMTB_UML_TIMEOUT_S:-}" ]; then
    ( sleep "$LMTB_UML_TIMEOUT_S"; kill -TERM "$UML_PID" 2>/dev/null ) &
    WATCH_PID=$!
fi
wait "$UML_PID"
UML_PID=
[ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null

if [ ! -s "$CTL/rc" ]; then
    # the kernel's own words on why the guest ended, then the log's last lines
    grep -i -m 5 -E 'panic|kill(ed|ing) init|segfault|out of memory|failed, errno' "$CTL/kernel.log" >&2
    tail -20 "$CTL/kernel.log" >&2
    die "the guest ended without CMD's exit status ($([ -e "$CTL/started" ] && echo "while CMD ran" \
        || echo "before CMD began"); kernel log above)"
fi
exit "$(cat "$CTL/rc")"
