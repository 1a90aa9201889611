"""The Mininet view of a network (testbed/mininet/) and the schedule's Mininet Topo, without
a live network: what is built from a plan, what the links report as the clock applies
steps, the step-log reader, the CLI's own commands on a static view, the clock's stop."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mininet.net")

from controllers import steplog  # noqa: E402
from testbed.mininet.cli import TestbedCLI  # noqa: E402
from testbed.mininet.net import TestbedMininet  # noqa: E402
from testbed.mininet.replay import ClockThread, InstalledPaths  # noqa: E402
from testbed.net.clock import Clock, LinkTimeline  # noqa: E402
from testbed.net.plan import chain_plan  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_bringup import torus  # noqa: E402


def fake_emulation(plan):
    """What the view reads of an Emulation, with no network behind it (no daemons, no controller)."""
    return types.SimpleNamespace(plan=plan, network=None, controller=None)


def test_view_of_a_1584_satellite_plan_starts_no_process_and_matches_the_plan(monkeypatch):
    plan = torus(72, 22)
    started = []
    real_init = subprocess.Popen.__init__

    def counting_init(self, *args, **kwargs):
        started.append(args[0] if args else kwargs.get("args"))
        real_init(self, *args, **kwargs)
    monkeypatch.setattr(subprocess.Popen, "__init__", counting_init)
    t0 = time.perf_counter()
    net = TestbedMininet(fake_emulation(plan))
    build_s = time.perf_counter() - t0
    assert started == []              # no shell, no `which`, no ovs-vsctl: nothing per node
    assert build_s < 2.0, build_s     # measured 0.013-0.034 s
    assert len(net.switches) == 1584 and len(net.hosts) == 4
    assert len(net.links) == len(plan.links) + len(plan.hosts)
    assert all(not n.shell_started for n in net.hosts + net.switches)
    h = plan.hosts[1]
    host = net[h.name]
    assert host.IP() == h.ip and host.MAC() == h.mac and host.netns == h.netns
    sw = net[f"lms{h.switch}"]
    assert sw.dpid == f"{h.switch + 1:016x}" and sw.intfs[h.port].name == h.sw_ifname
    lk = plan.links[7]
    link = net.link_by_pair[(lk.a, lk.b)]
    assert (link.intf1.name, link.intf2.name) == (lk.if_a, lk.if_b)
    assert net[f"lms{lk.a}"].ports[link.intf1] == lk.port_a and net[f"lms{lk.b}"].ports[link.intf2] == lk.port_b
    assert link.delay_s == lk.delay_s and link.rate_bps == lk.rate_bps and link.up
    assert "5.000 ms one-way" in link.status() and "20 Mbit/s" in link.status()


def test_links_report_what_the_clock_applied_step_by_step():
    plan = chain_plan(3, 0.005, 20e6)
    delay = np.array([[0.005, 0.005], [0.007, 0.005], [0.007, 0.009]])
    up = np.array([[True, True], [True, True], [True, False]])
    applied = []
    clock = Clock(plan, LinkTimeline(np.array([0.0, 1.0, 2.0]), delay, up),
                  set_delays=lambda ch: applied.append(ch) or 0.0, set_links_up=lambda u, d: None)
    clock.initial_state()
    net = TestbedMininet(fake_emulation(plan), ClockThread(clock))
    first, second = net.link_by_id[0], net.link_by_id[1]
    assert (first.delay_s, second.delay_s, second.up) == (0.005, 0.005, True)
    clock.apply_step(1)
    net._snapshot = None                 # the view re-reads the clock at most every 50 ms
    assert first.delay_s == 0.007 and second.delay_s == 0.005
    clock.apply_step(2)
    time.sleep(0.06)
    assert first.delay_s == 0.007 and not second.up
    assert "DOWN" in second.status()


def test_installed_paths_follow_the_step_log_as_it_grows(tmp_path):
    log = tmp_path / steplog.FILE_NAME
    paths = InstalledPaths(log)
    assert paths.between(0, 4) is None            # no file yet
    with open(log, "w") as f:
        steplog.write_record(f, "step", t_s=0.0, step=0)
        steplog.write_record(f, "paths", cause="step", t_s=0.0, step=0, paths={"0-4": "0-1-4", "4-0": "4-1-0"},
                             unreachable=[])
        f.write('{"t_wall": 1, "event": "paths", "paths": {"0-4": "0-2')   # a line being written
        f.flush()
        assert paths.between(0, 4) == (0, 1, 4) and paths.step == 0
        f.write('-4"}, "unreachable": ["4-0"], "step": 3, "t_s": 1.5}\n')
    assert paths.between(0, 4) == (0, 2, 4) and paths.between(4, 0) is None and paths.step == 3


def run_cli(net, commands: str) -> str:
    """Runs the CLI on ``commands`` (a pipe as its standard input); returns Mininet's output."""
    from mininet.log import lg
    r, w = os.pipe()
    os.write(w, commands.encode())
    os.close(w)

    class PipeCLI(TestbedCLI):
        use_rawinput = False        # read the pipe, not the terminal

    buf = io.StringIO()
    old = lg.ch.setStream(buf)
    try:
        with os.fdopen(r) as stdin:
            PipeCLI(net, stdin=stdin)
    finally:
        lg.ch.setStream(old)
    return buf.getvalue()


def test_cli_commands_on_a_static_view():
    plan = chain_plan(3, 0.005, 20e6)
    net = TestbedMininet(fake_emulation(plan))
    text = run_cli(net, "nodes\npy len(net.hosts)\npy net['lms1'].dpid\nlinks\nnet\ndelay lms0 lms1\n"
                        "delay h0 lms0\ndelay lms0 lms2\ntime\nbogus\nexit\n")
    assert "available nodes are: \nh0 h2 lms0 lms1 lms2" in text
    assert "\n2\n" in text and "0000000000000002" in text
    assert "lm0-1<->lm1-0 (up, isl, 5.000 ms one-way, 20 Mbit/s)" in text
    assert "h0 eth0:lmh0" in text and "lms1 lm1-0:lm0-1 lm1-2:lm2-1" in text
    assert "lm0-1<->lm1-0: 5.000 ms one-way, up" in text
    assert "h0-lms0: 0.000 ms one-way" in text and "no link between lms0 and lms2" in text
    assert "static network: no schedule" in text and "*** Unknown command: bogus" in text
    assert not any(n.shell_started for n in net.hosts + net.switches)


def test_host_names_with_hyphens_are_node_names_in_the_cli():
    # The plan's host names ("test4x4-p0-s0") must reach `default` as one node name.
    cmd, arg, _ = TestbedCLI.parseline(types.SimpleNamespace(identchars=TestbedCLI.identchars,
                                                              lastcmd=""), "test4x4-p0-s0 ping test4x4-p1-s0")
    assert cmd == "test4x4-p0-s0" and arg == "ping test4x4-p1-s0"


def test_clock_thread_stops_before_its_next_step():
    plan = chain_plan(2, 0.005, 20e6)
    n = 100
    tl = LinkTimeline(np.arange(n, dtype=float), np.full((n, 1), 0.005), np.ones((n, 1), bool))
    clock = Clock(plan, tl, set_delays=lambda ch: 0.0, set_links_up=lambda u, d: None)
    replay = ClockThread(clock).start()
    time.sleep(1.3)
    assert replay.running and replay.applied_step() == 1
    assert 1.2 <= replay.orbital_time_s() <= 1.5
    t0 = time.perf_counter()
    replay.stop()
    assert time.perf_counter() - t0 < 0.2 and not replay.running
    assert [r.step for r in replay.join()] == [1]
    assert threading.active_count() >= 1


def test_schedule_topo_is_one_step_for_mininet(tmp_path):
    import topologies
    from mininet.topo import Topo
    schedule = topologies.generate(topologies.ScheduleConfig(
        preset="test4x4", duration_s=2.0, step_s=1.0, compute={"every_k": 4},
        epoch="2025-01-01T00:00:00Z"))
    path = tmp_path / "schedule.parquet"
    schedule.save(path)
    # As `mn --custom topologies/mininet_topo.py --topo schedule,PATH,1,1e-4` loads it.
    customs: dict = {}
    source = REPO / "topologies" / "mininet_topo.py"
    exec(compile(source.read_text(), str(source), "exec"), customs, customs)
    topo = customs["topos"]["schedule"](str(path), 1, 1e-4)
    assert isinstance(topo, Topo)
    links = schedule.links_at(1)
    links = links[links["up"]]
    n_hosts = int(schedule.nodes["kind"].isin(["compute", "ground"]).sum())
    assert len(topo.switches()) == schedule.n_nodes and len(topo.hosts()) == n_hosts == 4
    assert len(topo.links()) == len(links) + n_hosts
    row = links.iloc[0]
    info = topo.linkInfo(f"s{row.a}", f"s{row.b}")
    assert info["delay"] == f"{row.delay_s * 1e3:.3f}ms" and info["bw"] == pytest.approx(row.capacity_bps * 1e-4 / 1e6)
    assert topo.nodeInfo("h0")["ip"] == "10.100.0.1/16" and topo.nodeInfo("s0")["dpid"] == f"{1:016x}"
    with pytest.raises(topologies.TopologyError, match="exceeds Mininet TCLink's 1000 Mbit/s"):
        customs["ScheduleTopo"](schedule, 0, 1e-2)
