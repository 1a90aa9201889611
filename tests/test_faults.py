"""Component faults on the real stack: each part of a running network is killed in turn.

Every case runs ``testbed run`` on a 4x4 shell (16 switches in one OVS shard, 4 compute
hosts with probes, a DDP job and a background iperf3 flow), kills one component with
SIGKILL once the clock runs, and asserts: the run stops within a few seconds (one step is
1 s), exit 1, one line naming the component, the reason in INCOMPLETE (JSON) and in the
manifest, and nothing left behind. Then SIGKILL of the testbed itself, followed by
``testbed run`` (which removes the dead run's leftovers and says so) and by ``testbed
clean`` (fast; it spares a namespace it did not make); and an unprivileged user cannot
reach the controller's channels.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, leftovers

pytestmark = pytest.mark.emulation

SPEC = """
[experiment]
name = "faults"
seed = 1
[constellation]
preset = "test4x4"
[compute]
every_k = 4
[time]
epoch = "2025-01-01T00:00:00Z"
duration_s = {duration_s}
step_s = 1.0
[[algorithms]]
name = "min_delay"
[probes]
pairs = "all-compute"
rate_hz = 5
[[workloads]]
label = "ddp"
generator = "ddp"
n_ranks = 4
params = {{ iterations = {iterations}, n_params = 1e6, compute_s = 0.05 }}
[[background]]
src = "compute:0"
dst = "compute:2"
rate_bps = 20e9
start_s = 0.5
"""
NOTHING = {"bridges": [], "netns": [], "interfaces": [], "processes": []}


def write_spec(tmp_path: Path, duration_s: float = 40, iterations: int = 400) -> Path:
    """The fault spec; with 400 DDP iterations the agents outlive any kill (~20 s of compute alone)."""
    p = tmp_path / "faults.toml"
    p.write_text(SPEC.format(duration_s=duration_s, iterations=iterations))
    return p


def start_run(spec: Path, results: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "testbed", "run", str(spec), "--results", str(results)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def tracked(owner: int, role: str) -> list[dict]:
    """Records of live processes started by testbed process ``owner`` whose role starts with ``role``."""
    from testbed.system.tracking import STATE_DIR, process_start_ticks
    out = []
    for f in (STATE_DIR / "procs").glob("[0-9]*"):
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if (d.get("owner") or [None])[0] == owner and d["role"].startswith(role) \
                and process_start_ticks(d["pid"]) == d["start_ticks"]:
            out.append(d)
    return sorted(out, key=lambda d: d["role"])


def wait_running(run: subprocess.Popen, role: str, timeout_s: float = 90) -> dict:
    """Waits until the clock runs (probes started, plus the 2 s lead and a step) and a
    process of ``role`` exists; returns its record."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()[1][-2000:]
        if tracked(run.pid, "probe"):
            break
        time.sleep(0.1)
    time.sleep(3.0)
    while time.monotonic() < deadline:
        found = tracked(run.pid, role)
        if found:
            return found[0]
        assert run.poll() is None, run.communicate()[1][-2000:]
        time.sleep(0.1)
    raise AssertionError(f"no {role} process appeared")


def only_run(results: Path) -> Path:
    runs = list((results / "faults").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize("role, named", [
    ("ovs-vswitchd", "OVS shard 0 (switches lms0-lms15) exited (signal 9)"),
    ("delayline", "the delay line (delays and rates of all 32 links) exited (signal 9)"),
    ("controller", "the controller (min_delay, routing 16 switches) exited (signal 9)"),
    ("agent1", "agent rank 1 of workload ddp on"),
    ("iperf3-client", "iperf3 client on"),
    ("probe", "the RTT probes of "),
], ids=["ovs_shard", "delay_line", "controller", "agent", "iperf3", "probe"])
def test_a_killed_component_stops_the_run_naming_it(tmp_path, role, named):
    run = start_run(write_spec(tmp_path), tmp_path / "results")
    victim = wait_running(run, role)
    os.kill(victim["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    _, err = run.communicate(timeout=120)
    stopped_s = time.monotonic() - killed_at
    assert run.returncode == 1, err[-2000:]
    assert err.count("\n") == 1 and "Traceback" not in err, err[-2000:]
    assert named in err and "exited (signal 9)" in err, err
    # One 1 s step to notice, then the tear-down (a few seconds here); the schedule had ~35 s left.
    assert stopped_s < 15, stopped_s
    run_dir = only_run(tmp_path / "results")
    incomplete = json.loads((run_dir / "INCOMPLETE").read_text())
    failure = incomplete["failure"]
    assert incomplete["status"] == "failed" and named in incomplete["sentence"]
    assert failure["kind"] == "process_exit" and failure["signal"] == 9 and failure["pid"] == victim["pid"]
    assert failure["role"] == role and failure["where"] == "min_delay/trial-0" and named in failure["component"] + \
        failure["message"]
    assert json.loads((run_dir / "manifest.json").read_text())["failure"] == failure
    assert leftovers() == NOTHING


def test_after_a_sigkilled_run_the_next_run_removes_its_leftovers_and_says_so(tmp_path):
    run = start_run(write_spec(tmp_path), tmp_path / "dead")
    wait_running(run, "agent")
    run.kill()                    # the testbed itself: nothing of it can clean up
    run.communicate(timeout=30)
    assert leftovers()["processes"], "a SIGKILLed run leaves its processes running"
    again = start_run(write_spec(tmp_path, duration_s=4, iterations=2), tmp_path / "next")
    out, err = again.communicate(timeout=180)
    assert again.returncode == 0, err[-2000:]
    assert "removed what a dead run had left" in err and "process" in err, err[-2000:]
    assert "ip -batch" not in err and "Traceback" not in err
    assert leftovers() == NOTHING


def test_clean_after_a_sigkilled_6x6_run_is_fast_and_spares_a_namespace_it_did_not_make(tmp_path):
    spec = write_spec(tmp_path).read_text().replace('"test4x4"', '"test6x6"')
    (tmp_path / "faults.toml").write_text(spec)
    subprocess.run(["ip", "netns", "add", "lmtb-h0"], check=False)       # a user's, named like ours
    subprocess.run(["ip", "netns", "add", "lmtb-user-ns"], check=True)
    try:
        run = start_run(tmp_path / "faults.toml", tmp_path / "dead")
        _, err = run.communicate(timeout=60)
        # The user's lmtb-h0 is in the way of the run's own: one line, exit 1, nothing made.
        assert run.returncode == 1 and err.count("\n") == 1 and "lmtb-h0 already exists" in err, err[-2000:]
        subprocess.run(["ip", "netns", "del", "lmtb-h0"], check=True)
        run = start_run(tmp_path / "faults.toml", tmp_path / "dead")
        wait_running(run, "agent")
        run.kill()
        run.communicate(timeout=30)
        left = leftovers()
        assert left["processes"] and left["netns"]
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "testbed", "clean"], capture_output=True, text=True, cwd=REPO)
        clean_s = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        assert clean_s <= 3.0, (clean_s, r.stdout)
        assert leftovers() == NOTHING
        assert "lmtb-user-ns" in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", "lmtb-user-ns"], capture_output=True)
        subprocess.run(["ip", "netns", "del", "lmtb-h0"], capture_output=True)


UNPRIVILEGED_CLIENT = r"""
import json, socket, sys
results = {}
for name in ("feed.sock", "of.sock"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sys.argv[1] + "/" + name)
        s.sendall(b'{"type": "state", "step": 99, "t_s": 99.0, "links": [], "future": []}\n')
        results[name] = "connected"
    except OSError as e:
        results[name] = type(e).__name__
print(json.dumps(results))
"""


def _flows(emu) -> dict[str, str]:
    out = {}
    for sw in emu.plan.switches:
        d = emu.network.ovs_for(sw.node_id)
        r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", sw.bridge],
                           capture_output=True, text=True, env=d.env)
        out[sw.bridge] = "\n".join(sorted(r.stdout.splitlines()[1:]))
    return out


def _listening_tcp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A":            # LISTEN
                inodes.add(parts[9])
    return inodes


def test_an_unprivileged_user_cannot_reach_the_controller_and_rules_stay(tmp_path):
    from testbed.emulation import Emulation
    from testbed.net.plan import chain_plan
    plan = chain_plan(3, 0.002, 10e6)
    with Emulation(plan, "min_hop", log_dir=tmp_path) as emu:
        before = _flows(emu)
        assert all(before.values())
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            sys.executable, "-c", UNPRIVILEGED_CLIENT, str(emu.controller.channel_dir)],
                           capture_output=True, text=True, cwd="/")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"feed.sock": "PermissionError", "of.sock": "PermissionError"}
        # No TCP listener at all: nothing to connect to from any user.
        pid = emu.controller.proc.pid
        sockets = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                   if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")}
        assert not sockets & _listening_tcp_inodes()
        assert oct(emu.controller.channel_dir.stat().st_mode & 0o777) == "0o700"
        assert emu.ping(plan.hosts[0].name, plan.hosts[-1].name, count=3).loss == 0
        assert _flows(emu) == before
    assert leftovers() == NOTHING


@pytest.mark.parametrize("results, code", [("/etc/hostname", 2), ("/proc/nope", 1)])
def test_a_results_folder_run_cannot_make_is_one_line(tmp_path, results, code):
    r = subprocess.run([sys.executable, "-m", "testbed", "run", str(write_spec(tmp_path, duration_s=4, iterations=2)),
                        "--results", results], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == code and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert results in r.stderr and not Path(results, "faults").exists()
    assert leftovers() == NOTHING
