"""The power model against battery curves computed by hand (pure)."""

import numpy as np
import pytest

from testbed.power import PowerSpec, evaluate, stretched_s

STEP_S = 60.0
SPEC = PowerSpec(solar_w=2000, battery_wh=1000, initial_soc=1.0, bus_w=300, accelerator_w=700,
                 policy="throttle", throttle_fraction=0.25, reserve_soc=0.2)


def test_in_sunlight_the_array_feeds_everything_and_the_battery_stays_full():
    st = evaluate(SPEC, np.ones((10, 2), bool), STEP_S)
    assert np.all(st.clock_fraction == 1.0) and np.allclose(st.soc, 1.0)
    assert np.allclose(st.available_w[0], 2000 + 800 / (STEP_S / 3600))   # array + battery above reserve


def test_in_eclipse_the_battery_drains_at_bus_plus_accelerator_then_the_accelerator_stops():
    st = evaluate(SPEC, np.zeros((60, 1), bool), STEP_S)
    soc = st.soc[:, 0]
    # 1000 W for 60 s is 16.67 Wh per step: 1/60 of the battery. 800 Wh above the reserve = 48 steps.
    assert soc[:49] == pytest.approx(1 - np.arange(49) / 60)
    assert np.all(st.clock_fraction[:48, 0] == 1.0) and np.all(st.clock_fraction[48:, 0] == 0.0)
    # Then only the bus draws: 300 W x 60 s = 5 Wh per step.
    assert soc[49:] == pytest.approx(0.2 - 0.005 * np.arange(1, 12))


def test_throttle_runs_at_what_the_energy_allows_and_pause_stops():
    # 8 Wh above the reserve for a 60 s step: 480 W, of which the bus takes 300: f = 180 / 700.
    spec = PowerSpec(**{**SPEC.__dict__, "initial_soc": 0.208})
    st = evaluate(spec, np.zeros((2, 1), bool), STEP_S)
    assert st.clock_fraction[0, 0] == pytest.approx(180 / 700)
    paused = evaluate(PowerSpec(**{**spec.__dict__, "policy": "pause"}), np.zeros((2, 1), bool), STEP_S)
    assert paused.clock_fraction[0, 0] == 0.0
    low = evaluate(PowerSpec(**{**spec.__dict__, "throttle_fraction": 0.5}), np.zeros((2, 1), bool), STEP_S)
    assert low.clock_fraction[0, 0] == 0.0                  # below the floor, throttling pauses


def test_a_weak_array_drains_the_battery_even_in_sunlight_and_recharging_caps_at_full():
    weak = PowerSpec(**{**SPEC.__dict__, "solar_w": 800})
    st = evaluate(weak, np.ones((3, 1), bool), STEP_S)
    assert st.soc[:, 0] == pytest.approx([1.0, 1 - 200 / 60 / 1000, 1 - 2 * 200 / 60 / 1000])
    half = PowerSpec(**{**SPEC.__dict__, "initial_soc": 0.5})
    st = evaluate(half, np.ones((40, 1), bool), STEP_S)
    assert st.soc[1, 0] == pytest.approx(0.5 + 1000 / 60 / 1000) and st.soc[-1, 0] == 1.0


def test_a_compute_phase_stretches_by_the_clock_fraction():
    times = np.array([0.0, 10.0, 20.0])
    fraction = np.array([1.0, 0.5, 1.0])
    assert stretched_s(4.0, 2.0, times, fraction) == pytest.approx(4.0)
    assert stretched_s(4.0, 8.0, times, fraction) == pytest.approx(2.0 + 4.0)      # 2 s at 1, 2 s of work at 0.5
    # 2 s of work by 10 s, 5 s of work in the 10 s at half clock, the last 5 s at full clock
    assert stretched_s(12.0, 8.0, times, fraction) == pytest.approx(2.0 + 10.0 + 5.0)
    paused = np.array([1.0, 0.0, 0.0])
    assert stretched_s(4.0, 8.0, times, paused, max_s=100.0) == 100.0


def test_bad_fields_are_all_reported():
    bad = PowerSpec(solar_w=-1, initial_soc=2, policy="nap")
    assert {k for k, _ in bad.problems()} == {"solar_w", "initial_soc", "policy"}


def test_a_real_replay_stretches_compute_by_the_clock_fraction(tmp_path):
    """Two real agents on loopback: a 0.6 s compute phase at half clock takes 1.2 s."""
    import json
    import time

    from testbed.agent.local import run_local
    from testbed.workload import Compute, Workload, expand
    from testbed.workload.summary import read_results

    plan = expand(Workload(n_ranks=2, ops=[[Compute(duration_s=0.6)], [Compute(duration_s=0.6)]]))

    def compute_s(folder, extra=()):
        run = run_local(plan, folder, timeout_s=30, extra_args=extra)
        assert run.ok, run.stderr
        return [r["duration_s"] for p in run.results for r in read_results(p) if r["record"] == "compute"]

    full = compute_s(tmp_path / "full")
    clock = tmp_path / "clock.json"
    clock.write_text(json.dumps({"t0_unix": time.time(), "times_s": [0.0, 1e6], "fraction": [0.5, 0.5]}))
    (tmp_path / "half").mkdir()
    half = compute_s(tmp_path / "half", ["--clock", str(clock)])
    assert all(d == pytest.approx(0.6, abs=0.05) for d in full)
    assert all(d == pytest.approx(1.2, abs=0.05) for d in half)
