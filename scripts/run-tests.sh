#!/usr/bin/env bash
# Runs the suite in two lanes (each pytest session's header names its lane):
#   host       every test not marked netem, on this machine: its own link backend and
#              OVS datapath (here: delayline + userspace OVS). Extra arguments go here.
#   uml-netem  the emulation tests once more, inside a User-Mode Linux guest
#              (scripts/uml.sh): the netem backend and the OVS kernel datapath, the path
#              researchers' stock kernels take. Pure tests do not run twice.
# LMTB_LANES="host" (or "uml-netem") runs one lane only. Without user-mode-linux the UML
# lane is skipped with a line saying so, and fails under CI=true.
#
# With both lanes and no extra arguments, the host lane is two sessions: its pure tests
# (no network, one core) run while the guest (one CPU) runs the UML lane, whose output is
# shown when it ends; the host's emulation tests follow once the guest is done, so no
# emulation test shares the machine with another. Otherwise each lane is one session, in turn.
# pytest's "no tests collected" (exit 5) is a failure, not a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
LANES=${LMTB_LANES:-host uml-netem}
PY=.venv/bin/python
# The guest is one slow CPU: it runs the emulation tests marked uml (correctness on netem
# and the kernel datapath; timing goals and long runs stay in the host lane, see README).
UML_TESTS=(tests/test_emulation_*.py)

status=0
note() { printf '\n==== lane: %s ====\n' "$*"; }
finish() {   # lane name, pytest exit status, start (SECONDS)
    local rc=$2
    if [ "$rc" -eq 5 ]; then echo "run-tests: lane $1: pytest collected no tests" >&2; rc=1; fi
    printf '==== lane %s: %s (%d s)\n' "$1" "$([ "$rc" -eq 0 ] && echo passed || echo "FAILED, exit $rc")" \
        "$((SECONDS - $3))"
    [ "$rc" -eq 0 ] || status=1
}
uml_available() {
    command -v linux.uml >/dev/null && return 0
    echo "run-tests: lane uml-netem skipped: user-mode-linux is not installed (make setup)" >&2
    [ -z "${CI:-}" ] || status=1
    return 1
}
uml_traces() {   # what a guest can leave on the machine: control folders, kernel processes
    local kernel p
    kernel=$(readlink -f "$(command -v linux.uml)")
    { ls -d /tmp/lmtb-uml.* 2>/dev/null
      for p in /proc/[0-9]*; do
          [ "$(readlink "$p/exe" 2>/dev/null)" = "$kernel" ] && echo "process ${p#/proc/}"
      done; } | sort
}
uml_lane() {
    # Compile on the host first: the guest writes no bytecode, and compiling there is slow.
    "$PY" -m compileall -q testbed topologies controllers tests >/dev/null
    local before left rc
    before=$(uml_traces)
    LMTB_LANE=uml-netem bash scripts/uml.sh "$PY" -m pytest -q -p no:cacheprovider -m "emulation and uml" "${UML_TESTS[@]}"
    rc=$?
    # scripts/uml.sh promises to leave nothing behind: checked here, on every lane run.
    left=$(comm -13 <(printf '%s\n' "$before") <(uml_traces) | grep .)
    if [ -n "$left" ]; then
        echo "run-tests: scripts/uml.sh left behind: $(echo $left)" >&2
        [ "$rc" -ne 0 ] || rc=1
    fi
    return "$rc"
}
uml_note() { note "uml-netem (User-Mode Linux guest: netem backend, OVS kernel datapath)"; }
host_note() { note "host (this machine's backend and datapath)${1:+: $1}"; }

for lane in $LANES; do
    case $lane in host|uml-netem) ;; *)
        echo "run-tests: unknown lane '$lane' in LMTB_LANES (expected host, uml-netem)" >&2
        exit 2 ;;
    esac
done

if [ "$LANES" = "host uml-netem" ] && [ $# -eq 0 ] && command -v linux.uml >/dev/null; then
    t0=$SECONDS
    log=$(mktemp /tmp/lmtb-uml-lane.XXXXXX)
    # The guest runs in a session of its own (setsid: its process group id is its pid), so
    # an interrupted run ends all of it: flock, scripts/uml.sh (which removes its folder)
    # and the UML kernel with its processes.
    uml_pid=
    trap '[ -z "$uml_pid" ] || kill -TERM -- "-$uml_pid" 2>/dev/null; rm -f "$log"' EXIT
    trap 'exit 130' INT TERM
    setsid bash -c "$(declare -f uml_traces uml_lane); PY=$PY; UML_TESTS=(${UML_TESTS[*]}); uml_lane" >"$log" 2>&1 &
    uml_pid=$!
    host_note "pure tests, while the UML lane runs in its guest"
    "$PY" -m pytest -q -m "not emulation"
    pure_rc=$?
    pure_s=$((SECONDS - t0))
    wait "$uml_pid"
    uml_rc=$?
    uml_pid=
    uml_note
    cat "$log"
    finish uml-netem "$uml_rc" "$t0"
    t1=$SECONDS
    host_note "emulation tests"
    "$PY" -m pytest -q -m "emulation and not netem"
    emu_rc=$?
    # The lane's status is the worse of its two sessions (exit 5 in either is a failure);
    # its time is theirs added up.
    finish host "$([ "$pure_rc" -ne 0 ] && echo "$pure_rc" || echo "$emu_rc")" "$((t1 - pure_s))"
    printf '==== make test: %d s in all\n' "$((SECONDS - t0))"
    exit $status
fi

for lane in $LANES; do
    lane_start=$SECONDS
    case $lane in
    host)
        host_note
        "$PY" -m pytest -q -m "not netem" "$@"
        finish host $? "$lane_start" ;;
    uml-netem)
        uml_available || continue
        uml_note
        uml_lane
        finish uml-netem $? "$lane_start" ;;
    esac
done
exit $status
