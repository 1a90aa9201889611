"""Routing algorithms on the real stack (os-ken controller, OVS, shaped delayed links)."""

import json
import time

import numpy as np
import pytest

from controllers import ALGORITHMS
from testbed.net.clock import LinkTimeline
from testbed.emulation import Emulation
from testbed.net.plan import make_plan

pytestmark = pytest.mark.emulation


@pytest.fixture(scope="module")
def small_constellation():
    import topologies
    from testbed.net.scenario import from_schedule
    schedule = topologies.generate(topologies.ScheduleConfig.from_dict(
        {"preset": "test4x4", "duration_s": 2, "step_s": 1.0, "compute": {"every_k": 4}}))
    return from_schedule(schedule, rate_scale=1e-4)


#: In the UML lane too: the default algorithm, and ecmp_k for its OpenFlow select groups
#: (the kernel datapath hashes them differently from the userspace one).
UML_ALGORITHMS = ("min_hop", "ecmp_k")


@pytest.mark.parametrize("algorithm", [pytest.param(a, marks=[pytest.mark.uml] if a in UML_ALGORITHMS else [])
                                       for a in sorted(ALGORITHMS)])
def test_every_compute_pair_reaches_every_other(algorithm, small_constellation, tmp_path):
    plan, _ = small_constellation
    names = [h.name for h in plan.hosts]
    with Emulation(plan, algorithm, log_dir=tmp_path) as emu:
        results = {(a, b): emu.ping(a, b, count=2, interval_s=0.05, timeout_s=2.0)
                   for a in names for b in names if a != b}
    lost = {pair: r.sent - r.received for pair, r in results.items() if r.received < r.sent}
    assert len(results) == len(names) * (len(names) - 1) >= 12
    assert not lost, f"{algorithm}: pairs with lost pings {lost}"


def ring(delays):
    """4 switches in a ring, hosts on 0 and 2: two paths, 0-1-2 and 0-3-2."""
    return make_plan(range(4), {0: ("h0", "compute"), 2: ("h2", "compute")},
                     [(0, 1, "isl", 20e6, delays[0], True), (1, 2, "isl", 20e6, delays[1], True),
                      (2, 3, "isl", 20e6, delays[2], True), (0, 3, "isl", 20e6, delays[3], True)])


def test_traffic_recovers_after_an_unscheduled_isl_failure(tmp_path):
    plan = ring([0.002, 0.002, 0.006, 0.006])
    with Emulation(plan, "min_delay", log_dir=tmp_path) as emu:
        ping = emu.start_ping("h0", "h2", count=300, interval_s=0.01)
        time.sleep(1.0)
        t_fail = time.time()
        emu.network.set_links_up([], [0])       # link 0-1 fails; nobody tells the controller
        t_down = time.time()                    # requests sent before this may still cross it
        res = emu.finish_ping(ping)
    sent = np.asarray(res.sent_unix_s())
    rtt = np.asarray(res.rtts_s)
    after = sent > t_down
    assert np.any(after), "no reply after the failure: traffic did not recover"
    recovered_at = sent[after][0]
    recovery_s = recovered_at - t_fail
    (tmp_path / "recovery.json").write_text(json.dumps({"recovery_s": recovery_s, "lost": res.sent - res.received}))
    print(f"recovered {recovery_s * 1e3:.1f} ms after the failure, {res.sent - res.received} pings lost")
    assert recovery_s < 1.0
    assert np.all(rtt[after] > 0.024 - 0.001)     # the long way round: 2 x (6 + 6) ms
    # before: the short way (2 x 4 ms + switching). The first 0.1 s is left out: the first
    # request also waits for ARP and the first flow upcalls (27 ms was seen in CI).
    before = (sent < t_fail - 0.05) & (sent > sent[0] + 0.1)
    assert np.any(before)
    assert np.all(rtt[before] < 0.024)


def _scheduled_failure_loss(algorithm, params, tmp_path):
    """100 Hz ping h0 -> h2 while link 0-1 drops at t = 2.5 s as scheduled.

    Returns (sent, approximate send times of lost requests, seconds after the clock's start)."""
    step_s = 0.25
    times = np.arange(0, 5.0, step_s)
    up = np.ones((len(times), 4), dtype=bool)
    up[times >= 2.5, 0] = False
    delays = np.tile([0.002, 0.002, 0.006, 0.006], (len(times), 1))
    tl = LinkTimeline(times, delays, up)
    with Emulation(ring(delays[0]), algorithm, params, log_dir=tmp_path, timeline=tl, future_steps=8) as emu:
        clock = emu.clock
        ping = emu.start_ping("h0", "h2", count=450, interval_s=0.01)
        start = time.time() + 0.3
        clock.run(start_unix=start)
        res = emu.finish_ping(ping)
    seqs = np.asarray(res.seqs)
    sent_t = np.asarray(res.sent_unix_s()) - start
    lost = [s for s in range(1, res.sent + 1) if s not in set(res.seqs)]
    return res.sent, [float(np.interp(s, seqs, sent_t)) for s in lost]


@pytest.mark.uml
def test_predictive_loses_no_packets_at_a_scheduled_link_change(tmp_path):
    sent_p, lost_p = _scheduled_failure_loss("predictive", {"horizon_s": 1.0}, tmp_path / "predictive")
    sent_m, lost_m = _scheduled_failure_loss("min_delay", {}, tmp_path / "min_delay")
    print(f"100 Hz ping across a scheduled ISL drop at 2.5 s: predictive lost {len(lost_p)} at {lost_p}, "
          f"min_delay lost {len(lost_m)} at {lost_m}")
    (tmp_path / "loss.json").write_text(json.dumps({"predictive": lost_p, "min_delay": lost_m}))
    # The planned change itself costs predictive nothing: it moved traffic 1 s earlier.
    assert not [t for t in lost_p if t > 2.5 - 0.2]
    # Its own re-route (make-before-break, at 1.5 s) lost no packet in most runs here and
    # one in some (see the closing note of issue 5); never more.
    assert len(lost_p) <= 1


def _paths_and_load(algorithm, tmp_path, dst):
    """Full-rate TCP h0 -> ``dst`` on an equal-delay ring with hosts on 0, 1 and 2: the
    controller's h0 -> h2 paths chosen on load, and the links it saw loaded."""
    plan = make_plan(range(4), {0: ("h0", "compute"), 1: ("h1", "compute"), 2: ("h2", "compute")},
                     [(0, 1, "isl", 20e6, 0.002, True), (1, 2, "isl", 20e6, 0.002, True),
                      (2, 3, "isl", 20e6, 0.002, True), (0, 3, "isl", 20e6, 0.002, True)])
    with Emulation(plan, algorithm, log_dir=tmp_path) as emu:
        out = emu.iperf3("h0", dst, duration_s=4.0, omit_s=0.0)
        time.sleep(1.0)                                  # one more poll after the flow ended
    assert out["end"]["sum_received"]["bytes"] > 0
    log = [json.loads(line) for line in (tmp_path / "controller-steps.jsonl").read_text().splitlines()]
    moved = [r["paths"]["0-2"] for r in log if r.get("event") == "paths" and r["cause"] == "utilisation"
             and "0-2" in r["paths"]]
    loaded = {link for r in log if r.get("event") == "utilisation" for link, u in r["links"].items() if u > 0.5}
    return moved, loaded


@pytest.mark.uml
def test_load_aware_leaves_a_path_loaded_by_other_traffic_and_is_not_chased_by_its_own(tmp_path):
    # Paths 0-1-2 and 0-3-2 are equal; the tie goes to 0-1-2. A full-rate flow h0 -> h1
    # fills 0 -> 1: traffic to h2 moves to 0-3-2, once (no flapping back).
    moved, loaded = _paths_and_load("load_aware", tmp_path / "other", "h1")
    print(f"load_aware, h0 -> h1 loaded: h0 -> h2 paths {moved}, loaded links {sorted(loaded)}")
    assert "0-1" in loaded and moved == ["0-3-2"]
    # The full-rate flow is itself h0 -> h2: its own load is no reason to move (on port
    # counters alone it moved at every poll, 8 times in 4 s).
    moved, loaded = _paths_and_load("load_aware", tmp_path / "own", "h2")
    print(f"load_aware, h0 -> h2 loaded: h0 -> h2 paths {moved}, loaded links {sorted(loaded)}")
    assert "0-1" in loaded and moved == []
    # min_delay sees the same counters (they feed the link_util table) but never re-routes on them.
    moved, loaded = _paths_and_load("min_delay", tmp_path / "min_delay", "h1")
    assert "0-1" in loaded and moved == []
