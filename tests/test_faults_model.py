"""Scheduled faults expanded onto a timeline (pure)."""

import math

import numpy as np
import pytest

from testbed.faults import FaultSpec, apply_faults, in_saa
from testbed.net.clock import Clock, LinkTimeline
from testbed.net.plan import LinkSpec, make_plan

TIMES = np.arange(0.0, 10.0, 0.5)


def _links():
    # a triangle of satellites 0-1-2 and a ground link 2-3
    return [LinkSpec(i, a, b, kind, 2, 3, f"lm{a}-{b}", f"lm{b}-{a}", 1e6, 0.01, True)
            for i, (a, b, kind) in enumerate([(0, 1, "isl"), (0, 2, "isl"), (1, 2, "isl"), (2, 3, "gsl")])]


def _apply(faults, lat=None, lon=None, seed=0):
    up = np.ones((len(TIMES), 4), bool)
    lat = np.zeros((len(TIMES), 1)) if lat is None else lat
    lon = np.zeros((len(TIMES), 1)) if lon is None else lon
    return apply_faults(faults, _links(), TIMES, up, [1], lat, lon, seed)


def test_a_lost_laser_takes_down_one_isl_of_the_node_from_its_time_on():
    out = _apply([FaultSpec("laser", t_s=3.0, node=0)])
    assert out.up[TIMES < 3.0].all()
    assert not out.up[TIMES >= 3.0, 0].any() and out.up[:, 1:].all()     # its lowest neighbour: link 0-1
    (ev,) = out.events
    assert ev.kind == "laser" and ev.node == 0 and ev.t_s == 3.0 and math.isinf(ev.end_s) and "0-1" in ev.detail
    out = _apply([FaultSpec("laser", t_s=3.0, node=0, peer=2, duration_s=2.0)])
    assert not out.up[(TIMES >= 3.0) & (TIMES < 5.0), 1].any() and out.up[TIMES >= 5.0, 1].all()


def test_a_lost_satellite_takes_all_its_links_and_a_controller_outage_is_an_interval():
    out = _apply([FaultSpec("satellite", t_s=4.0, node=2), FaultSpec("controller_outage", t_s=1.0, duration_s=2.0)])
    assert not out.up[TIMES >= 4.0][:, [1, 2, 3]].any() and out.up[:, 0].all()
    assert out.controller_outages == [(1.0, 3.0)]
    assert [e.kind for e in out.events] == ["controller_outage", "satellite"]


def test_compute_resets_are_more_frequent_inside_the_saa_and_follow_the_seed():
    assert in_saa(np.array([-30.0, 30.0, -30.0]), np.array([-40.0, -40.0, 100.0])).tolist() == [True, False, False]
    times = np.arange(0.0, 3600.0, 1.0)
    up = np.ones((len(times), 4), bool)

    def resets(lat, seed):
        f = FaultSpec("compute_reset", rate_per_hour=1.0, saa_rate_per_hour=100.0, reset_s=2.0)
        out = apply_faults([f], _links(), times, up, [1], np.full((len(times), 1), lat), np.full((len(times), 1), -40.0),
                           seed)
        return out
    inside, outside = resets(-30.0, 1), resets(30.0, 1)
    assert len(inside.events) == pytest.approx(100, rel=0.35) and len(outside.events) <= 6
    assert (inside.clock_fraction == 0).sum() >= 2 * len(inside.events) * 0.8        # 2 s held each
    assert [e.t_s for e in resets(-30.0, 1).events] == [e.t_s for e in inside.events]  # same seed, same draws
    assert [e.t_s for e in resets(-30.0, 2).events] != [e.t_s for e in inside.events]


def test_the_clock_tells_the_controller_nothing_during_an_outage_and_everything_after():
    plan = make_plan(range(3), {}, [(0, 1, "isl", 1e6, 0.01, True), (1, 2, "isl", 1e6, 0.01, True)])
    up = np.ones((len(TIMES), 2), bool)
    up[TIMES >= 2.0, 0] = False
    sent = []
    clock = Clock(plan, LinkTimeline(TIMES, np.full(up.shape, 0.01), up), lambda ch: 0.0, lambda u, d: None,
                  controller_request=lambda msg: sent.append(msg["step"]) or {}, controller_outages=[(1.5, 3.0)])
    clock.initial_state()
    for k in range(1, len(TIMES)):
        clock.apply_step(k)
    assert sent == [6]     # the drop at 2.0 s (step 4) reaches the controller at 3.0 s, when it is back


def test_the_clock_stops_the_controller_before_the_outages_first_change_and_resumes_it_after():
    plan = make_plan(range(3), {}, [(0, 1, "isl", 1e6, 0.01, True), (1, 2, "isl", 1e6, 0.01, True)])
    up = np.ones((len(TIMES), 2), bool)
    up[TIMES >= 1.5, 0] = False                     # the drop comes with the outage's first step
    calls = []
    clock = Clock(plan, LinkTimeline(TIMES, np.full(up.shape, 0.01), up), lambda ch: 0.0,
                  lambda u, d: calls.append(("links", tuple(d))),
                  controller_request=lambda msg: calls.append(("state", msg["step"])) or {},
                  controller_outages=[(1.5, 3.0)], pause_controller=lambda p: calls.append(("paused", p)))
    clock.initial_state()
    for k in range(1, len(TIMES)):
        clock.apply_step(k)
    # stopped before the link goes (so no port-down reaches it), continued before the state at 3.0 s
    assert calls == [("paused", True), ("links", (0,)), ("paused", False), ("state", 6)]


def test_a_run_that_ends_inside_an_outage_resumes_the_controller():
    plan = make_plan(range(2), {}, [(0, 1, "isl", 1e6, 0.01, True)])
    times = np.arange(0.0, 1.0, 0.1)
    calls = []
    clock = Clock(plan, LinkTimeline(times, np.full((len(times), 1), 0.01), np.ones((len(times), 1), bool)),
                  lambda ch: 0.0, lambda u, d: None, speedup=10.0, controller_outages=[(0.5, 5.0)],
                  pause_controller=calls.append)
    clock.run()
    assert calls == [True, False]
