"""What `check` must reject because `run` cannot do it; named faults; records of why a run
stopped; zombies; truncated captures; results folders that cannot be made. No network."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, write_capture
from testbed.errors import EnvironmentProblem, InputError
from testbed.spec import SpecError, load_spec
from testbed.spec.feasibility import BASE_BYTES, BYTES_PER_NODE_STEP, _mem_available_bytes

TINY = (Path(__file__).resolve().parent / "specs" / "tiny.toml").read_text()
DDP = '\n[[workloads]]\nlabel = "ddp"\ngenerator = "ddp"\nn_ranks = 4\nparams = {{ iterations = 1, n_params = {n} {extra}}}\n'


def problems_of(tmp_path: Path, text: str) -> tuple[str, ...]:
    p = tmp_path / "x.toml"
    p.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(p)
    return caught.value.problems


def test_the_tiny_spec_is_feasible():
    load_spec(Path(__file__).resolve().parent / "specs" / "tiny.toml")


@pytest.mark.parametrize("epoch", ["9999-12-31T23:59:00Z", "2060-01-01T00:00:00Z", "1850-01-01T00:00:00Z"])
def test_an_epoch_outside_the_ephemeris_is_rejected(tmp_path, epoch):
    (line,) = problems_of(tmp_path, TINY.replace("2025-01-01T00:00:00Z", epoch))
    assert line.startswith(f"time.epoch: {epoch} + time.duration_s is outside the Sun ephemeris")
    assert "1899" in line and "2053" in line


def test_the_end_of_the_window_is_checked_too(tmp_path):
    ok = TINY.replace("2025-01-01T00:00:00Z", "2053-10-01T00:00:00Z")
    p = tmp_path / "ok.toml"
    p.write_text(ok)
    load_spec(p)
    # 20 days from 2053-10-01 runs past the ephemeris (it ends in October 2053).
    late = ok.replace("duration_s = 4", "duration_s = 1728000").replace("step_s = 1.0", "step_s = 10000.0\nspeedup = 100")
    (line,) = problems_of(tmp_path, late)
    assert line.startswith("time.epoch: 2053-10-01T00:00:00Z + time.duration_s is outside the Sun ephemeris")


def test_a_schedule_larger_than_memory_is_rejected(tmp_path):
    text = TINY.replace('"test4x4"', '"test8x8"').replace("duration_s = 4", "duration_s = 40") \
        .replace("step_s = 1.0", "step_s = 1e-5\nspeedup = 0.001").replace("rate_hz = 5", "rate_hz = 0.5")
    text = text.replace("start_s = 0.5\nduration_s = 3", "start_s = 0.5\nduration_s = 3")
    need = BASE_BYTES + BYTES_PER_NODE_STEP * 4_000_000 * 64
    if need <= _mem_available_bytes():
        pytest.skip("this machine has more memory than the case needs")
    lines = problems_of(tmp_path, text)
    assert any(x.startswith("time.step_s: 4000000 steps x 64 nodes need about") and "GB" in x for x in lines), lines


@pytest.mark.parametrize("speedup", ["1e9", "101"])
def test_a_speedup_beyond_what_the_clock_can_follow_is_rejected(tmp_path, speedup):
    (line,) = problems_of(tmp_path, TINY.replace("step_s = 1.0", f"step_s = 1.0\nspeedup = {speedup}"))
    assert line.startswith("time.speedup: ") and "speedup <= 100" in line


def test_a_speedup_of_the_limit_passes(tmp_path):
    p = tmp_path / "x.toml"
    p.write_text(TINY.replace("step_s = 1.0", "step_s = 1.0\nspeedup = 100"))
    assert load_spec(p).speedup == 100


def test_a_transfer_that_cannot_finish_is_rejected_at_once(tmp_path):
    t0 = time.monotonic()
    lines = problems_of(tmp_path, TINY + DDP.format(n="2.5e22", extra=", bucket_cap_bytes = 200000000000000000000000 "))
    assert time.monotonic() - t0 < 10
    assert len(lines) == 1 and lines[0].startswith("workloads[0]: ddp: a rank must send at least") \
        and "the run waits 120 s" in lines[0], lines


def test_a_transfer_that_fits_passes(tmp_path):
    p = tmp_path / "x.toml"
    p.write_text(TINY + DDP.format(n="1e6", extra=""))
    assert len(load_spec(p).workloads) == 1


def test_too_many_ddp_buckets_are_one_problem_not_an_exhausted_machine(tmp_path):
    t0 = time.monotonic()
    lines = problems_of(tmp_path, TINY + DDP.format(n="2.5e22", extra=""))
    assert time.monotonic() - t0 < 10 and any("all-reduces per iteration, more than 10000" in x for x in lines)


def test_rates_below_what_can_be_emulated_are_rejected(tmp_path):
    lines = problems_of(tmp_path, TINY.replace("rate_bps = 50e9", "rate_bps = 1e6"))
    assert lines == ("background[0].rate_bps: 1e+06 x rate_scale 0.0001 = 100 bit/s, below 1000 bit/s",)
    lines = problems_of(tmp_path, TINY + "\n[emulation]\nrate_scale = 1e-7\n")
    assert any(x.startswith("emulation.rate_scale: constellation.capacity_bps") for x in lines), lines


def test_a_name_too_long_for_a_folder_is_rejected(tmp_path):
    assert problems_of(tmp_path, TINY.replace('name = "tiny"', 'name = "' + "a" * 300 + '"')) == (
        "experiment.name: 300 bytes long; at most 128 (it becomes a folder name)",)


@pytest.mark.parametrize("where, expect", [
    ("/etc/hostname", "experiment.output_dir: /etc/hostname exists and is not a folder"),
    ("/etc/hostname/deeper", "experiment.output_dir: /etc/hostname exists and is not a folder"),
    ("/proc/x", "experiment.output_dir: /proc is on the virtual file system proc; results cannot be written there"),
])
def test_an_output_folder_run_cannot_write_is_rejected(tmp_path, where, expect):
    assert problems_of(tmp_path, TINY.replace("seed = 3", f'seed = 3\noutput_dir = "{where}"')) == (expect,)


@pytest.mark.parametrize("folder, error", [
    ("/etc/hostname/exp", InputError), ("/proc/nope/exp", EnvironmentProblem), ("/sys/nope", EnvironmentProblem),
])
def test_a_results_folder_that_cannot_be_made_is_one_line(folder, error):
    from testbed.results.writer import RunDir
    with pytest.raises(error) as caught:
        RunDir.create(Path(folder))
    assert "\n" not in str(caught.value) and folder in str(caught.value)
    assert not Path(folder).exists()


def test_a_results_name_too_long_is_an_input_error(tmp_path):
    from testbed.results.writer import RunDir
    with pytest.raises(InputError, match="too long"):
        RunDir.create(tmp_path / ("x" * 300))
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_capture_is_named(tmp_path):
    from testbed.traffic.pcapreplay import capture_summary
    good = write_capture(tmp_path / "cap.pcap", n=20)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ValueError) as caught:
        capture_summary(cut)
    assert str(caught.value).startswith(f"{cut}: packet 20 is cut short") and "truncated" in str(caught.value)
    assert capture_summary(good)[0] == 20


def test_check_names_a_truncated_capture_in_one_line(tmp_path):
    good = write_capture(tmp_path / "cap.pcap", n=20)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good.read_bytes()[:-100])
    spec = tmp_path / "x.toml"
    spec.write_text(TINY + f'\n[[pcap]]\nfile = "{cut}"\nhosts = ["compute:0", "compute:1"]\n')
    r = subprocess.run([sys.executable, "-m", "testbed", "check", str(spec)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "WARNING" not in r.stderr + r.stdout, r.stderr
    assert str(cut) in r.stderr and "truncated" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_a_zombie_is_not_alive_and_is_not_waited_for():
    from testbed.system.tracking import TrackedProcess, process_start_ticks, terminate_all
    child = subprocess.Popen(["sleep", "0"])
    ticks = None
    for _ in range(100):
        stat = Path(f"/proc/{child.pid}/stat").read_text()
        if stat[stat.rindex(")") + 2] == "Z":
            ticks = int(stat[stat.rindex(")") + 2:].split()[19])
            break
        time.sleep(0.01)
    assert ticks is not None, "the child did not become a zombie"
    assert process_start_ticks(child.pid) is None
    tp = TrackedProcess(child.pid, ticks, "test", ("sleep", "0"))
    t0 = time.monotonic()
    assert not tp.alive() and terminate_all([tp]) == []
    assert time.monotonic() - t0 < 0.5
    child.wait()


def test_processes_are_ended_together_not_one_grace_period_each():
    from testbed.system.tracking import record_process, terminate_all
    # bash ignoring SIGTERM: each needs the SIGKILL after the grace period.
    procs = [subprocess.Popen(["bash", "-c", "trap '' TERM; sleep 30"]) for _ in range(6)]
    time.sleep(0.2)
    tps = [record_process(p.pid, "test", p.args) for p in procs]
    t0 = time.monotonic()
    gone = terminate_all(tps, grace_s=0.5)
    took_s = time.monotonic() - t0
    assert len(gone) == 6 and not any(t.alive() for t in tps)   # (terminate_all reaped them)
    assert took_s < 1.5, took_s      # one shared 0.5 s grace, not 6 x 0.5 s


def test_a_fault_names_the_killed_process_before_its_victims():
    from testbed.system.liveness import process_fault
    from testbed.system.tracking import Spawned
    victim = Spawned([sys.executable, "-c", "import sys; sys.exit(5)"], role="agent0", label="agent rank 0")
    killed = Spawned(["sleep", "30"], role="ovs-vswitchd", label="OVS shard 1 (switches lms16-lms31)")
    fine = Spawned(["sleep", "30"], role="ping", label="probe ping a->b")
    try:
        victim.popen.wait(10)
        assert process_fault([victim, killed, fine]).component == "agent rank 0"
        killed.popen.send_signal(signal.SIGKILL)
        killed.popen.wait(5)
        fault = process_fault([victim, killed, fine])
        assert str(fault) == "OVS shard 1 (switches lms16-lms31) exited (signal 9)"
        assert fault.record()["signal"] == 9 and fault.record()["role"] == "ovs-vswitchd"
        victim.stop()
        killed.stop()
        assert process_fault([victim, killed, fine]) is None     # stopped on purpose: no fault
    finally:
        for p in (victim, killed, fine):
            p.stop()


def test_a_lost_openflow_session_names_the_switches_and_their_shard():
    from testbed.system.liveness import session_fault
    expected = {n: f"lms{n}" for n in range(32)}
    shard = {n: f"OVS shard {n // 16}" for n in range(32)}
    assert session_fault(range(32), expected, shard) is None
    fault = session_fault([n for n in range(32) if n not in (17, 18)], expected, shard)
    assert str(fault) == "2 switches (lms17, lms18, in OVS shard 1) lost the OpenFlow session with the controller"
    assert fault.record()["switches"] == ["lms17", "lms18"]


def test_failure_records_are_json_with_a_sentence(tmp_path):
    from testbed.results.writer import INCOMPLETE, FailureRecorder, RunDir
    from testbed.system.liveness import ComponentFault
    rec = FailureRecorder()
    with pytest.raises(ComponentFault):
        with rec:
            rec.run_dir = RunDir.create(tmp_path / "exp")
            assert json.loads((rec.run_dir.path / INCOMPLETE).read_text())["status"] == "running"
            rec.manifest = {"name": "exp"}
            rec.where = "min_hop/trial-0"
            raise ComponentFault("the delay line (32 links) exited (signal 9)", "the delay line (32 links)",
                                 "process_exit", role="delayline", pid=42, signal=9, exit_status=None)
    got = json.loads((rec.run_dir.path / INCOMPLETE).read_text())
    assert got["status"] == "failed" and got["failure"]["component"] == "the delay line (32 links)"
    assert got["sentence"].startswith("The run stopped during min_hop/trial-0 at ")
    assert got["sentence"].endswith(": the delay line (32 links) exited (signal 9).")
    manifest = json.loads((rec.run_dir.path / "manifest.json").read_text())
    assert manifest["failure"] == got["failure"] and manifest["failure"]["exit_code"] == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (ip netns)")
def test_a_namespace_the_testbed_did_not_make_is_refused_and_never_removed():
    from testbed.system import netns
    from testbed.system.clean import our_netns
    subprocess.run(["ip", "netns", "add", "lmtb-h9999"], check=True)
    try:
        with pytest.raises(EnvironmentProblem, match="lmtb-h9999 already exists"):
            netns.claim(["lmtb-h9999"])
        assert "lmtb-h9999" not in our_netns()
        subprocess.run(["ip", "netns", "del", "lmtb-h9999"], check=True)
        c = netns.claim(["lmtb-h9999"])
        subprocess.run(["ip", "netns", "add", "lmtb-h9999"], check=True)
        c.confirm()
        assert c.owned() == ["lmtb-h9999"] and "lmtb-h9999" in our_netns()
        # A namespace of that name whose inode is not the recorded one is someone else's.
        c.inodes = {"lmtb-h9999": [c.inodes["lmtb-h9999"][0], c.inodes["lmtb-h9999"][1] + 1]}
        c._write()
        assert c.owned() == [] and "lmtb-h9999" not in our_netns()
        c.forget()
    finally:
        subprocess.run(["ip", "netns", "del", "lmtb-h9999"], capture_output=True)
