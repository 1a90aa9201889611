"""Time dilation (testbed/net/dilation.py): what is set is stretched by D, what is measured
is shrunk by D, and the two round-trip to the identity; the spec key, the replay agents'
compute gaps, the summaries and the report's first lines follow it."""

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest

from testbed.agent.local import run_local
from testbed.links.backends import tbf_params
from testbed.net import dilation
from testbed.net.plan import chain_plan
from testbed.report import make_report
from testbed.spec import SpecError, load_spec
from testbed.workload import Compute, Send, Recv, Workload, expand, summarise

import fixtures_report
from test_spec import FULL, write

DILATIONS = (1.0, 1.5, 4.0, 37.0)


@pytest.mark.parametrize("d", DILATIONS)
def test_set_then_measured_is_the_identity(d):
    rng = np.random.default_rng(1)
    delay_s, rate_bps, t_s = rng.uniform(1e-4, 0.1, 50), rng.uniform(1e5, 1e9, 50), rng.uniform(0, 100, 50)
    # A delay held D times longer and measured back, a timer, a rate: each comes back as set.
    assert np.allclose(dilation.emulated_s(dilation.wall_delay_s(delay_s, d), d), delay_s, rtol=1e-12)
    assert np.allclose(dilation.emulated_s(dilation.wall_s(t_s, d), d), t_s, rtol=1e-12)
    assert np.allclose(dilation.emulated_bps(dilation.wall_rate_bps(rate_bps, d), d), rate_bps, rtol=1e-12)
    # Consistency across quantities: a transfer of B bytes at the shaped (wall) rate lasts D times
    # its emulated time; the bandwidth-delay product (bytes in flight) does not change; a probe
    # rate of r per emulated second fires r/D per wall second, i.e. once per D/r wall seconds.
    size_bits = 8 * 1_000_000
    assert np.allclose(dilation.emulated_s(size_bits / dilation.wall_rate_bps(rate_bps, d), d),
                       size_bits / rate_bps, rtol=1e-12)
    assert np.allclose(dilation.wall_delay_s(delay_s, d) * dilation.wall_rate_bps(rate_bps, d),
                       delay_s * rate_bps, rtol=1e-12)
    assert dilation.wall_s(1 / 20.0, d) == pytest.approx(1 / dilation.wall_rate_hz(20.0, d))
    # The orbit: an orbital interval lasts (interval / speedup) emulated seconds at any D.
    speedup, interval = 4.0, 10.0
    assert dilation.emulated_s(interval / dilation.wall_speedup(speedup, d), d) == pytest.approx(interval / speedup)
    # TCP's minimum RTO, set per route, is dilated like any timer.
    assert dilation.emulated_s(dilation.tcp_rto_min_s(d), d) == pytest.approx(dilation.TCP_RTO_MIN_S)
    changes = dilation.wall_delays([(3, 0.01, 0.02)], d)
    assert changes == [(3, pytest.approx(0.01 * d), pytest.approx(0.02 * d))]


@pytest.mark.parametrize("bad", [0.0, 0.999, -2.0, math.nan, math.inf])
def test_a_dilation_below_one_or_not_finite_is_refused(bad):
    with pytest.raises(ValueError, match="time dilation must be a finite number >= 1"):
        dilation.check(bad)
    assert dilation.check(2) == 2.0


def test_the_data_path_plan_has_delays_times_d_and_rates_over_d():
    plan = chain_plan(4, 0.005, 20e6)
    assert dilation.data_path_plan(plan, 1.0) is plan
    built = dilation.data_path_plan(plan, 4.0)
    feed = dilation.data_path_plan(plan, 4.0, delays=False)
    for lk, b, f in zip(plan.links, built.links, feed.links):
        assert b.delay_s == pytest.approx(4 * lk.delay_s) and b.rate_bps == pytest.approx(lk.rate_bps / 4)
        assert f.delay_s == lk.delay_s and f.rate_bps == pytest.approx(lk.rate_bps / 4)
        assert (b.link_id, b.a, b.b, b.if_a, b.if_b, b.up) == (lk.link_id, lk.a, lk.b, lk.if_a, lk.if_b, lk.up)
    assert built.hosts == plan.hosts and built.switches == plan.switches


def test_emulated_frame_converts_only_the_named_columns_and_leaves_the_input_alone():
    df = pd.DataFrame({"t_unix": [1.7e9, 1.7e9 + 1], "rtt_s": [0.08, np.nan], "bps": [5e6, 2e6], "seq": [0, 1]})
    out = dilation.emulated_frame(df, 4.0, durations=("rtt_s", "absent_s"), rates=("bps",))
    assert out["rtt_s"].iloc[0] == pytest.approx(0.02) and np.isnan(out["rtt_s"].iloc[1])
    assert list(out["bps"]) == [2e7, 8e6]
    assert list(out["t_unix"]) == list(df["t_unix"]) and list(out["seq"]) == [0, 1]    # stamps stay wall
    assert df["rtt_s"].iloc[0] == 0.08                                                 # a copy
    assert dilation.emulated_frame(df, 1.0, durations=("rtt_s",)) is df


def test_the_spec_key_is_read_validated_and_stretches_the_wall_time(tmp_path):
    spec = copy.deepcopy(FULL)
    assert load_spec(write(tmp_path, spec)).time_dilation == 1.0
    spec["emulation"]["time_dilation"] = 4
    loaded = load_spec(write(tmp_path, spec))
    assert loaded.time_dilation == 4.0
    assert loaded.wall_s_per_algorithm == pytest.approx(loaded.duration_s / loaded.speedup * 4)
    for bad, message in ((0.5, "must be >= 1, got 0.5"), (True, "must be a number, got true"),
                         ("4", "must be a number, got '4' (string)"), (5000, "must be <= 1000, got 5000")):
        spec["emulation"]["time_dilation"] = bad
        with pytest.raises(SpecError) as caught:
            load_spec(write(tmp_path, spec))
        assert caught.value.problems == (f"emulation.time_dilation: {message}",)


def test_the_clock_rule_judges_the_dilated_wall_step(tmp_path):
    """speedup 200 on 1 s steps is a 5 ms wall step (refused); at D = 4 it is 20 ms (fine)."""
    spec = copy.deepcopy(FULL)
    spec["time"]["speedup"] = 200.0
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, spec))
    assert caught.value.problems[0].startswith("time.speedup: 200 makes a 1 s step last 5 ms of wall time")
    spec["emulation"]["time_dilation"] = 4
    assert load_spec(write(tmp_path, spec)).time_dilation == 4


def _compute_then_send(compute_s: float) -> Workload:
    """Two ranks: rank 0 computes ``compute_s``, then sends 100 kB to rank 1."""
    return Workload(2, ((Compute(duration_s=compute_s, name="fwd"), Send(peer=1, size_bytes=100_000, deps=(0,))),
                        (Recv(peer=0, size_bytes=100_000),)))


def test_replay_agents_stretch_compute_by_d_and_the_summary_gives_it_back(tmp_path):
    """Real agents on loopback: a 0.25 s compute phase at D = 3 holds the rank >= 0.75 s of wall
    time (a sleep is never shorter), and the summary, in emulated seconds, says ~0.25 s."""
    d, compute_s = 3.0, 0.25
    plan = expand(_compute_then_send(compute_s))
    run = run_local(plan, tmp_path, timeout_s=30.0, extra_args=["--dilation", f"{d:g}"])
    assert run.ok, (run.exit_codes, run.stderr)
    wall = summarise(run.results, plan)
    emulated = summarise(run.results, plan, dilation=d)
    records = [json.loads(line) for line in run.results[0].read_text().splitlines()]
    (fwd,) = [r for r in records if r["record"] == "compute"]
    assert fwd["duration_s"] >= d * compute_s                       # the wall clock saw it stretched
    # Emulated: the measured wall duration / D; the wall overshoot of a sleep (ms on a loaded
    # machine) shrinks by D too, so 50 ms of margin holds with room.
    assert compute_s <= fwd["duration_s"] / d < compute_s + 0.05
    it_wall, it_emu = wall.iterations, emulated.iterations
    assert np.allclose(it_emu["duration_s"], it_wall["duration_s"] / d)
    assert np.allclose(it_emu["compute_s"], it_wall["compute_s"] / d)
    assert list(it_emu["start_time_s"]) == list(it_wall["start_time_s"])     # stamps stay wall
    sent = emulated.transfers[emulated.transfers["direction"] == "send"]
    assert (sent["size_bytes"] == 100_000).all()                   # bytes are never dilated


def test_a_dilated_agent_refuses_a_dilation_below_one(tmp_path):
    plan = expand(_compute_then_send(0.01))
    run = run_local(plan, tmp_path, timeout_s=10.0, extra_args=["--dilation", "0.5"])
    assert set(run.exit_codes) == {2}
    assert "--dilation must be a finite number >= 1, got 0.5" in run.stderr[0]


def test_the_report_states_the_dilation_in_its_first_lines(tmp_path):
    run = fixtures_report.write_run(tmp_path, schedule=fixtures_report.make_schedule())
    first = "\n".join(make_report(run).report.read_text().splitlines()[:4])
    assert "time dilation `1`" in first and "Time dilated" not in first
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["time_dilation"] = 4.0
    (run / "manifest.json").write_text(json.dumps(manifest))
    first = "\n".join(make_report(run).report.read_text().splitlines()[:4])
    assert "**Time dilated: D = 4.**" in first and "Kernel TCP timers" in first


@pytest.mark.parametrize("rate_bps", [1e6, 20e6, 2e9])
def test_link_queues_hold_the_same_bytes_at_any_dilation(rate_bps):
    """A port queue is sized in emulated time: at D the shaper runs at rate / D and its burst
    and limit (bytes) are those of D = 1, so TCP meets the same buffer."""
    for d in DILATIONS:
        assert tbf_params(dilation.wall_rate_bps(rate_bps, d), d) == tbf_params(rate_bps)
