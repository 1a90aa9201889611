"""Time dilation on the real stack: the same small scenario at D = 1 and D = 4 gives the same
results in emulated seconds.

One ``testbed run`` per dilation of a 4 x 4 shell at 5,000 km (16 switches, four compute
satellites, probes between all of them, a 4-rank DDP job; 4 s of orbit: about 4 s of
replay at D = 1 and 16 s at D = 4, each after ~10 s of bring-up). At D = 4 every delay is
held 4 x longer, every link shaped 4 x slower, the compute gaps and timers run 4 x longer
and every measured duration is divided by 4 before it is written. So:

- probe RTTs (emulated) follow the geometry at both D: never below the geometric RTT (by
  more than the geometry's own change within a step). They do NOT agree within the 1 ms
  bound as they are, and should not: what an RTT has beyond the geometry is the userspace
  switches' per-hop cost, a wall-clock cost that does not dilate. It is c at D = 1 and
  c / D at D = 4 (four runs here, 2026-12-02, 2-core machine shared with other jobs:
  per-pair medians 0.96-4.21 ms at D = 1, 0.25-1.34 ms at D = 4). So the test asserts
  that model: per pair, the D = 4 excess is within the 1 ms bound of the D = 1 excess / 4
  (it was within 0.3 ms in all four); a missing "x D" on the delays or "/ D" on the
  measurement is off by tens of ms;
- collective times (emulated) agree within their spread, and their medians within 20 %.
  They do not agree exactly: at D = 4, after the first ~3 s emulated (~12 s wall) every
  all-reduce becomes ~63 ms (11 %) slower (0.574 -> 0.637 s, with one 0.8-0.9 s
  collective at the transition), in every D = 4 run here. It is not dilation: a D = 1 job
  of 30 iterations shows the same step after ~12 s of wall time (BENCHMARKS.md, time
  dilation); this short D = 1 job ends (~4-7 s wall) before it. The kernel counted no retransmission, timeout or loss probe at either
  D (nstat in every host namespace); turning ``tcp_slow_start_after_idle`` off does not
  change it, nor does dilating TCP's minimum RTO (``rto_min`` x D on the hosts' routes,
  which the emulation now does), and no delayed-ACK timer fired (TcpExtTCPDelayedACKs 0;
  benchmarks/bench_dilation_tcp.py). What sets in after ~12 s of wall time is open;
- the manifest and the summaries say D, and the link backend's read-back holds.

Where D = 1 and D = 4 legitimately differ (and the assertions allow it): everything that
runs on the host's own clock, undilated — the switches' per-hop cost (above), TCP's
delayed ACKs (40 ms minimum: 10 ms emulated at D = 4; the minimum RTO is dilated per
route, and this job loses no packets anyway), the agents' sleep overshoot and the
controller's processing. Each is a fixed wall-clock cost, smaller in emulated time at
D = 4; the collectives' late step (above) is a wall-clock effect present at D = 1 too.
"""

import json

import numpy as np
import pandas as pd
import pytest

from testbed.experiment import run_experiment
from testbed.spec import load_spec

pytestmark = pytest.mark.emulation

FIDELITY_S = 1e-3          # the testbed's RTT bound (tests/test_emulation_probes.py)
DILATIONS = (1.0, 4.0)


def _spec(tmp_path, dilation: float) -> dict:
    return {
        "experiment": {"name": f"dilation-{dilation:g}", "seed": 3, "output_dir": str(tmp_path)},
        "constellation": {"preset": "test4x4"},
        "isl": {"policy": "plus_grid"},
        "compute": {"every_k": 4},
        "time": {"epoch": "2025-01-01T00:00:00Z", "duration_s": 4.0, "step_s": 1.0},
        "emulation": {"time_dilation": dilation},
        "algorithms": [{"name": "min_delay"}],
        "probes": {"pairs": "all-compute", "rate_hz": 10.0},
        # 4e9 gradient bytes in two 2e9 buckets -> 200 kB each at rate_scale 1e-4 on 20 Mbit/s links:
        # each all-reduce ~0.12 s of transfer plus 6 rounds of ~40-90 ms paths.
        "workloads": [{"generator": "ddp", "n_ranks": 4, "label": "ddp",
                       "params": {"iterations": 3, "n_params": 1e9, "compute_s": 0.3,
                                  "first_bucket_bytes": 2_000_000_000, "bucket_cap_bytes": 2_000_000_000}}],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{D: (manifest, summary of the one trial, rtt table, collectives per instance)}."""
    out = {}
    for d in DILATIONS:
        root = tmp_path_factory.mktemp(f"d{d:g}")
        run = run_experiment(load_spec(_spec(root, d), base_dir=root), results_root=root, log=print)
        manifest = json.loads((run / "manifest.json").read_text())
        summary = json.loads((run / "summary.json").read_text())["algorithms"]["min_delay"]["trials"]["0"]
        folder = run / "min_delay" / "trial-0"
        rtt = pd.read_parquet(folder / "rtt.parquet")
        coll = pd.read_parquet(folder / "collectives.parquet")
        per = coll.groupby("instance")["duration_s"].max()          # a collective ends with its last rank
        out[d] = (manifest, summary, rtt, per)
    return out


def _excess_by_pair(rtt: pd.DataFrame) -> pd.Series:
    got = rtt.dropna(subset=["rtt_s"])
    return (got["rtt_s"] - got["geo_rtt_s"]).groupby([got["src"], got["dst"]]).median()


def test_manifest_and_summaries_state_the_dilation(runs):
    for d, (manifest, summary, _, _) in runs.items():
        assert manifest["time_dilation"] == d
        assert summary["time_base"]["time_dilation"] == d
        assert summary["time_base"]["speedup"] == pytest.approx(1.0 / d)      # orbital s per wall s
        assert summary["fidelity"]["time_dilation"] == d
        assert manifest["delay_emulated"] is True                       # read back from the data path
        fid = summary["fidelity"]
        if "held_mean_ms" in fid:       # the delay line: frames held as configured, in emulated ms
            assert fid["held_mean_ms"] >= 0.9 * fid["configured_mean_ms"]
            assert fid["held_mean_ms"] < fid["configured_mean_ms"] + 5.0
        assert summary["steps"] == 3


def test_probe_rtts_in_emulated_seconds_follow_the_geometry_at_both_dilations(runs):
    excess = {}
    for d, (_, summary, rtt, _) in runs.items():
        got = rtt.dropna(subset=["rtt_s"])
        assert len(got) > 0.95 * len(rtt) and len(rtt) > 150, (d, len(got), len(rtt))   # 6 pairs x 30
        # Never faster than light: a forgotten "x D" on the delays would make the emulated RTT
        # a quarter of the geometry, a forgotten "/ D" on the measurement four times it. The
        # geometry moves within a step (5,000 km shell: well under 0.5 ms per second).
        assert (got["rtt_s"] >= got["geo_rtt_s"] - 0.5e-3).all(), d
        excess[d] = _excess_by_pair(rtt)
        print(f"D = {d:g}: median RTT excess over geometry per pair [ms]: "
              f"{np.round(excess[d].to_numpy() * 1e3, 3)}; summary median {summary['rtt_excess_median_ms']:.3f}, "
              f"p99 {summary['rtt_excess_p99_ms']:.3f} ms; clock lag max {summary['lag_max_ms']:.1f} ms (emulated)")
        assert (excess[d] >= 0).all(), (d, excess[d])            # switches add, never take away
    # D = 1: the switches' cost, per pair (up to 2 userspace switches each way): 0.9-1.2 ms
    # for 3 of them on a quiet machine (tests/test_emulation_probes.py), 2.8-4.2 ms here
    # when other jobs loaded the 2 cores; 10 ms still catches a path or delay gone wrong.
    assert (excess[1.0] < 10 * FIDELITY_S).all(), excess[1.0]
    # D = 4: what the D = 1 run predicts for it (c / D), within the testbed's bound. Not an
    # absolute 1 ms: with the loaded machine above D = 4 gave 0.70-1.34 ms (c / 4 = 0.71-1.05).
    # The two runs follow each other, so the load (and c) may differ between them: the 1 ms
    # margin allows c to double at c ~ 1 ms.
    assert list(excess[1.0].index) == list(excess[4.0].index)
    assert (np.abs(excess[4.0] - excess[1.0] / 4.0) < FIDELITY_S).all(), (excess[1.0], excess[4.0])
    assert excess[4.0].median() < excess[1.0].median(), (excess[1.0], excess[4.0])


def test_collective_times_in_emulated_seconds_agree_within_their_spread(runs):
    per = {d: r[3] for d, r in runs.items()}
    for d, p in per.items():
        assert len(p) == 6, (d, p)          # 3 iterations x 2 buckets, every one measured
        print(f"D = {d:g}: collectives [s]: {np.round(p.to_numpy(), 4)}, mean {p.mean():.4f}, sd {p.std():.4f}")
    m1, m4 = per[1.0].mean(), per[4.0].mean()
    spread = per[1.0].std() + per[4.0].std()
    # "Within their spread": the means differ by less than the two standard deviations together,
    # or by less than 10 % (when both runs happen to be very even). A wrong rate or delay scaling
    # (x 4 or / 4 somewhere) moves the D = 4 mean by a factor, far outside either.
    assert abs(m4 - m1) <= max(spread, 0.10 * m1), (per[1.0], per[4.0])
    # The medians: the known +11 % step at D = 4 (module docstring) fits in 20 %; a scaling
    # error does not (x 4 or / 4 on rates or delays moves the median by 50 % or more).
    med1, med4 = per[1.0].median(), per[4.0].median()
    assert abs(med4 - med1) <= 0.20 * med1, (per[1.0], per[4.0])
