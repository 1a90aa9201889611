"""Each scheduled fault kind on the real stack, through the experiment entry point.

Tiny specs on the ``test4x4`` shell (16 switches; compute satellites on nodes 0, 4, 8 and
12; compute:0 -> compute:2 runs 0-4-8, the only two-hop path; ISLs 43-60 ms one way): one
algorithm (min_delay), one trial, a few seconds of orbit at speedup 1. Each test asserts
on what was measured (probe replies and their RTTs, port counters, replay times, the
clock's controller calls), which would differ if the fault were not applied, and on the
``faults`` table that records it.

Timing margins: the clock applies a step a few ms after it is due and the controller's
rules follow within ~0.1 s here; a loaded 2-core machine adds up to a few hundred ms. So
every window below keeps >= 0.5 s from the fault's edges and counts fractions of probes,
not single packets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.emulation

H0, H4, H8 = "test4x4-p0-s0", "test4x4-p1-s0", "test4x4-p2-s0"    # hosts of nodes 0, 4 and 8
PROBE_HZ = 20
#: RTT of the two-hop path 0-4-8 at the start: 2 x 115 ms; the next shortest avoiding 4-8 is 4 hops.
GEO_SLACK_S = 0.005


def base_spec(tmp_path, duration_s: float = 8.0, seed: int = 3) -> dict:
    return {
        "experiment": {"name": "faults", "seed": seed, "output_dir": str(tmp_path)},
        "constellation": {"preset": "test4x4"}, "isl": {"policy": "plus_grid"}, "compute": {"every_k": 4},
        "time": {"epoch": "2025-01-01T00:00:00Z", "duration_s": duration_s, "step_s": 0.5},
        "algorithms": [{"name": "min_delay"}],
        "probes": {"pairs": [["compute:0", "compute:2"], ["compute:0", "compute:1"]], "rate_hz": PROBE_HZ},
    }


def run(raw: dict, tmp_path):
    """Runs the spec with ``testbed run``'s entry point; returns (trial folder, tables)."""
    from testbed.experiment import run_experiment
    from testbed.spec import load_spec
    folder = run_experiment(load_spec(raw), results_root=tmp_path, log=lambda *a: None)
    trial = folder / "min_delay" / "trial-0"
    assert not (folder / "INCOMPLETE").exists()
    tables = {p.stem: pd.read_parquet(p) for p in trial.glob("*.parquet")}
    return trial, tables


def pair(rtt: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Probes of the unordered pair a-b, either direction, by send time."""
    sel = ((rtt["src"] == a) & (rtt["dst"] == b)) | ((rtt["src"] == b) & (rtt["dst"] == a))
    return rtt[sel].sort_values("t_s")


def window(df: pd.DataFrame, t0: float, t1: float) -> pd.DataFrame:
    return df[(df["t_s"] >= t0) & (df["t_s"] < t1)]


def answered(df: pd.DataFrame) -> float:
    assert len(df), "no probes in this window"
    return float(df["rtt_s"].notna().mean())


def uses_link(path: str, a: int, b: int) -> bool:
    nodes = [int(n) for n in path.split("-")] if path else []
    return any({u, v} == {a, b} for u, v in zip(nodes, nodes[1:]))


def paths_of(paths: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    sel = ((paths["src"] == a) & (paths["dst"] == b)) | ((paths["src"] == b) & (paths["dst"] == a))
    return paths[sel].sort_values("t_s")


def in_force(df: pd.DataFrame, keys: list[str], t0: float, t1: float) -> pd.DataFrame:
    """Rows of a change-only table in force during [t0, t1): the last one per key at or
    before t0 and those after it up to t1."""
    last = df[df["t_s"] <= t0].groupby(keys).tail(1)
    return pd.concat([last, df[(df["t_s"] > t0) & (df["t_s"] < t1)]])


def path_at(paths: pd.DataFrame, t_s: float) -> list[str]:
    """Paths (either direction) in force at t_s: the last row per direction at or before it."""
    rows = paths[paths["t_s"] <= t_s]
    return [g["path"].iloc[-1] for _, g in rows.groupby(["src", "dst"])]


def test_a_lost_laser_carries_nothing_after_its_time_and_traffic_takes_the_long_way(tmp_path):
    raw = base_spec(tmp_path)
    raw["faults"] = [{"kind": "laser", "node": 4, "peer": 8, "t_s": 3.0}]
    raw["background"] = [{"src": "compute:0", "dst": "compute:2", "rate_bps": 50e9, "start_s": 0.5,
                          "duration_s": 7.0}]                  # 5 Mbit/s on 20 Mbit/s links
    _, t = run(raw, tmp_path)
    faults = t["faults"]
    assert faults[["t_s", "kind", "node"]].values.tolist() == [[3.0, "laser", 4]]
    assert "4-8" in faults["detail"].iloc[0] and np.isinf(faults["end_s"].iloc[0])
    clock = t["clock"].set_index("t_s")
    assert clock.loc[3.0, "links_down"] == 1 and clock["links_down"].drop(3.0).sum() == 0
    # the data plane: the controller moved 0 <-> 8 off the lost link, and the probes took the long way
    p = paths_of(t["paths"], H0, H8)
    assert all(uses_link(x, 4, 8) for x in path_at(p, 2.9))
    assert not any(uses_link(x, 4, 8) for x in path_at(p, 3.5))
    assert not any(uses_link(x, 4, 8) for x in p.loc[p["t_s"] >= 3.5, "path"])
    probes = pair(t["rtt"], H0, H8)
    before, after = window(probes, 1.0, 2.8), window(probes, 4.0, 7.5)
    print(f"0<->8 median RTT before {before['rtt_s'].median() * 1e3:.1f} ms, after "
          f"{after['rtt_s'].median() * 1e3:.1f} ms (geometric after {after['geo_rtt_s'].min() * 1e3:.1f} ms); "
          f"answered {answered(before):.2f} / {answered(after):.2f}")
    assert answered(before) >= 0.9 and answered(after) >= 0.9
    # measured RTT after the loss is at least the schedule's shortest RTT without the link
    # (a longer path); before it was the two-hop RTT, far below that
    geo_after = after["geo_rtt_s"].min()
    assert geo_after > before["geo_rtt_s"].max() + 0.05
    assert after["rtt_s"].median() >= geo_after - GEO_SLACK_S
    # 20 ms under the detour's geometry: the two-hop median was 232 ms quietly, 252 ms once
    # under the whole suite's load, while the detour is >= 290 ms
    assert before["rtt_s"].median() < geo_after - 0.02
    # port counters (controller polls every 0.5 s): 4 -> 8 carried the flow before, nothing after
    util = t["link_util"]
    lost = util[((util["a"] == 4) & (util["b"] == 8)) | ((util["a"] == 8) & (util["b"] == 4))]
    assert window(lost, 1.0, 2.9)["utilisation"].max() > 0.05
    # link_util is logged on change (results/README.md): what holds from 4 s on is the last row
    # per direction at or before it (a link that fell idle, on a switch no route crosses any
    # more, is not polled again) and any row after it
    after_util = in_force(lost, ["a", "b"], 4.0, 8.0)
    assert len(after_util) and after_util["utilisation"].max() < 0.01


def test_a_lost_satellite_takes_all_its_links_down_and_its_host_off_the_network(tmp_path):
    raw = base_spec(tmp_path)
    raw["faults"] = [{"kind": "satellite", "node": 4, "t_s": 3.0}]
    _, t = run(raw, tmp_path)
    faults = t["faults"]
    assert faults[["t_s", "kind", "node"]].values.tolist() == [[3.0, "satellite", 4]]
    assert faults["detail"].iloc[0] == "4 links lost"          # plus_grid: four lasers
    clock = t["clock"].set_index("t_s")
    assert clock.loc[3.0, "links_down"] == 4 and clock["links_down"].drop(3.0).sum() == 0
    # traffic through 4 reroutes around it
    p = paths_of(t["paths"], H0, H8)
    assert all("4" in x.split("-") for x in path_at(p, 2.9))
    assert not any("4" in x.split("-") for x in p.loc[p["t_s"] >= 3.5, "path"])
    through = pair(t["rtt"], H0, H8)
    after = window(through, 4.0, 7.5)
    assert answered(window(through, 1.0, 2.8)) >= 0.9 and answered(after) >= 0.9
    assert after["rtt_s"].median() >= after["geo_rtt_s"].min() - GEO_SLACK_S
    # traffic to the lost satellite's own host stops
    to_lost = pair(t["rtt"], H0, H4)
    assert answered(window(to_lost, 1.0, 2.8)) >= 0.9
    assert answered(window(to_lost, 3.5, 7.5)) == 0.0


def _one_reset_seed(raw: dict, ranks: tuple[int, ...], earliest_s: float, latest_s: float):
    """The first seed whose resets (the model's own draw, as the run makes it) hit the job's
    ranks exactly once, between earliest_s and latest_s; and that reset's event."""
    import topologies
    from testbed.experiment import trial_faults
    from testbed.net.scenario import from_schedule
    from testbed.spec import load_spec
    spec = load_spec(raw)
    schedule = topologies.generate(spec.schedule_config())
    plan, timeline = from_schedule(schedule, spec.rate_scale)
    for seed in range(1000):
        trial = load_spec({**raw, "experiment": {**raw["experiment"], "seed": seed}})
        events = [e for e in trial_faults(trial, schedule, plan, timeline.times_s, timeline.up, 0).events
                  if e.node in ranks]
        if len(events) == 1 and earliest_s <= events[0].t_s <= latest_s:
            return seed, events[0]
    raise AssertionError("no seed gives a single reset on the job's ranks")


def test_a_compute_reset_stalls_its_rank_and_the_collectives_wait_for_it(tmp_path):
    reset_s = 3.0
    raw = base_spec(tmp_path, duration_s=14.0)
    raw["probes"] = {"pairs": []}
    # 2 ranks on nodes 0 and 4 (one laser hop): 1 s of compute per iteration, a 400-byte
    # all-reduce (4 MB x rate_scale 1e-4) that takes a few ISL round trips
    raw["workloads"] = [{"generator": "ddp", "placement": [0, 4],
                         "params": {"iterations": 6, "n_params": 1e6, "compute_s": 1.0}}]
    # 0.1 resets per second per compute satellite (inside the SAA box too): a few in the window
    raw["faults"] = [{"kind": "compute_reset", "rate_per_hour": 360.0, "saa_rate_per_hour": 360.0,
                      "reset_s": reset_s}]
    seed, reset = _one_reset_seed(raw, (0, 4), 2.5, 5.0)
    raw["experiment"]["seed"] = seed
    _, t = run(raw, tmp_path)
    recorded = t["faults"][t["faults"]["node"].isin([0, 4])]
    assert recorded[["t_s", "end_s", "kind", "node"]].values.tolist() == \
        [[reset.t_s, reset.t_s + reset_s, "compute_reset", reset.node]]
    rank_of = {0: 0, 4: 1}
    stalled, waiting = rank_of[reset.node], 1 - rank_of[reset.node]
    it = t["iterations"]
    job = it.groupby("iteration").agg(t_s=("t_s", "min"), duration_s=("duration_s", "max"))
    job["end_s"] = job["t_s"] + job["duration_s"]
    typical = job["duration_s"].median()
    hit = (job["t_s"] < reset.t_s + reset_s) & (job["end_s"] > reset.t_s)
    assert hit.any(), f"no iteration overlaps the reset at {reset.t_s} s: {job}"
    # The reset holds the rank's clock for 3 s: the iterations across it take >= 1.5 s more
    # (3 s less at most one collective's time, ~0.5 s, with a wide margin); the others do not.
    excess = job["duration_s"] - typical
    print(f"reset at {reset.t_s:g} s on node {reset.node} (seed {seed}); job iterations [s]: "
          f"{job['duration_s'].round(3).tolist()}, excess of the hit ones {excess[hit].sum():.3f} s")
    assert excess[hit].sum() >= 0.5 * reset_s, job
    assert excess[hit].sum() <= reset_s + 1.5, job
    assert (excess[~hit] < 1.0).all(), job
    # the reset rank computed longer; its peer waited in the all-reduce for it
    comp = it.pivot(index="iteration", columns="rank", values="compute_s")
    assert (comp.loc[hit[hit].index, stalled] - comp[stalled].median()).max() >= 0.5 * reset_s
    coll = t["collectives"]
    peer = coll[coll["rank"] == waiting]
    assert peer["duration_s"].max() >= 0.5 * reset_s
    assert peer["duration_s"].median() < 1.0


def test_a_controller_outage_keeps_the_old_rules_until_it_ends(tmp_path):
    raw = base_spec(tmp_path, duration_s=9.0)
    # the controller hears nothing in 2-6 s; the laser 4-8 under 0 <-> 8 goes at 3 s
    raw["faults"] = [{"kind": "controller_outage", "t_s": 2.0, "duration_s": 4.0},
                     {"kind": "laser", "node": 4, "peer": 8, "t_s": 3.0}]
    trial, t = run(raw, tmp_path)
    faults = t["faults"]
    assert faults[["t_s", "end_s", "kind"]].values.tolist() == [[2.0, 6.0, "controller_outage"],
                                                                 [3.0, np.inf, "laser"]]
    clock = t["clock"]
    silent = window(clock, 2.0, 6.0)
    assert len(silent) == 8 and (silent["controller_s"] == 0).all() and (silent["flow_mods"] == 0).all()
    first_after = clock[clock["t_s"] >= 6.0].iloc[0]       # told the current state at once
    assert first_after["t_s"] == 6.0 and first_after["controller_s"] > 0
    # 0 <-> 8 kept its rules into the lost link: nothing gets through until the outage ends
    # (were the controller reachable, it would have moved the pair within ~0.1 s of 3 s)
    cut = pair(t["rtt"], H0, H8)
    print(f"0<->8 answered: before {answered(window(cut, 1.0, 2.0)):.2f}, 3.5-5.5 s "
          f"{answered(window(cut, 3.5, 5.5)):.2f}, 6.5-8.5 s {answered(window(cut, 6.5, 8.5)):.2f}; "
          f"0<->4 during the outage {answered(window(pair(t['rtt'], H0, H4), 2.0, 6.0)):.2f}")
    assert answered(window(cut, 1.0, 2.0)) >= 0.9
    assert answered(window(cut, 3.5, 5.5)) <= 0.05
    back = window(cut, 6.5, 8.5)
    assert answered(back) >= 0.9 and back["rtt_s"].median() >= back["geo_rtt_s"].min() - GEO_SLACK_S
    # 0 <-> 4 (its link untouched) flows on the old rules throughout the outage
    assert answered(window(pair(t["rtt"], H0, H4), 2.0, 6.0)) >= 0.9
    # the controller moved no path during the outage, and 0 <-> 8 off the lost link right after
    # it (the port-down the switches queued or the state sent at 6 s, whichever it reads first)
    p = t["paths"]
    assert window(p, 2.0, 6.0).empty, window(p, 2.0, 6.0)
    moved = paths_of(p, H0, H8)
    assert all(uses_link(x, 4, 8) for x in path_at(moved, 5.9))
    assert not any(uses_link(x, 4, 8) for x in path_at(moved, 6.5))
