"""Statistics over trials (testbed.report.stats): pure, synthetic trial values.

The intervals are checked against scipy's own interval function, and their behaviour as
a test: equal distributions are called "no significant difference" (about 5 % of the
time, as a 95 % interval should), a clear shift is not.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from testbed.report import verdicts
from testbed.report.metrics import METRICS, min_samples
from testbed.report.stats import (MIN_TRIALS, mean_interval, paired_difference, statistics_of,
                                  summary_statistics, welch_difference)

KEY = "rtt_excess_median_ms"          # lower is better


def trial_sets(rng, n_trials: int, shift: float, trial_sd: float = 0.0, noise_sd: float = 0.1):
    """Two algorithms' values per trial: a shared per-trial effect (``trial_sd``, the
    machine's drift) plus each algorithm's own noise; ``b`` is shifted by ``shift``."""
    common = rng.normal(1.0, trial_sd, n_trials) if trial_sd else np.full(n_trials, 1.0)
    a = common + rng.normal(0, noise_sd, n_trials)
    b = common + rng.normal(0, noise_sd, n_trials) + shift
    return ({str(k): {KEY: float(v)} for k, v in enumerate(a)},
            {str(k): {KEY: float(v)} for k, v in enumerate(b)})


def test_interval_is_scipys_t_interval():
    x = np.array([2.1, 2.5, 1.9, 2.8, 2.2, 2.4])
    got = mean_interval(x)
    low, high = scipy_stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=scipy_stats.sem(x))
    assert got.n == 6 and got.mean == pytest.approx(x.mean())
    assert (got.low, got.high) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))


def test_fewer_than_three_trials_give_no_interval_and_nothing_significant():
    assert MIN_TRIALS == 3
    two = mean_interval([1.0, 5.0])
    assert two.low is None and two.high is None and "no interval" in two.why
    d = paired_difference(KEY, "a", "b", {"0": 1.0, "1": 1.1}, {"0": 9.0, "1": 9.2})
    assert d.mean_diff == pytest.approx(-8.05) and not d.significant and d.better is None
    text = verdicts.difference_line(d.__dict__)
    assert "no significant difference can be claimed" in text and "**" not in text


def test_equal_distributions_are_no_significant_difference():
    values = dict(zip(("a", "b"), trial_sets(np.random.default_rng(3), 8, shift=0.0)))
    stats = statistics_of(values, (KEY,))
    (comparison,) = stats["comparisons"]
    assert not comparison["significant"] and comparison["low"] < 0 < comparison["high"]
    lines = verdicts.difference_lines(stats, [KEY])
    assert any("no significant difference" in l for l in lines)
    assert not any("**" in l for l in lines)
    assert verdicts.winners(stats) == {}
    assert "**" not in "\n".join(verdicts.interval_table(stats, [KEY]))


def test_a_clear_shift_is_significant_and_names_the_better():
    values = dict(zip(("a", "b"), trial_sets(np.random.default_rng(3), 8, shift=1.0)))
    stats = statistics_of(values, (KEY,))
    (comparison,) = stats["comparisons"]
    assert comparison["significant"] and comparison["high"] < 0
    assert comparison["better"] == "a"                       # lower RTT excess
    line = verdicts.difference_line(comparison)
    assert "**better: `a`**" in line and "no significant difference" not in line
    assert verdicts.winners(stats) == {KEY: "a"}
    table = verdicts.interval_table(stats, [KEY])
    assert table[2].split("|")[2].strip().startswith("**") and "**" not in table[3]


@pytest.mark.parametrize("shift, lo, hi", [(0.0, 0.01, 0.10), (0.3, 0.90, 1.0)])
def test_false_positive_rate_and_power(shift, lo, hi):
    """Over 400 synthetic experiments of 6 trials: equal distributions are called
    significant in about 5 % of them; a shift of 3 noise sd (2.1 sd of a difference) in nearly all."""
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(400):
        a, b = trial_sets(rng, 6, shift=shift)
        hits += paired_difference(KEY, "a", "b", {k: v[KEY] for k, v in a.items()},
                                  {k: v[KEY] for k, v in b.items()}).significant
    assert lo <= hits / 400 <= hi


def test_pairing_by_trial_removes_the_shared_trial_effect():
    """A machine drift shared by both algorithms within a trial swamps an unpaired
    comparison but cancels in the paired one."""
    a, b = trial_sets(np.random.default_rng(5), 6, shift=0.3, trial_sd=1.0, noise_sd=0.05)
    va, vb = {k: v[KEY] for k, v in a.items()}, {k: v[KEY] for k, v in b.items()}
    assert paired_difference(KEY, "a", "b", va, vb).significant
    assert not welch_difference(KEY, "a", "b", list(va.values()), list(vb.values())).significant


def test_welch_matches_scipy():
    xa, xb = np.array([1.0, 1.4, 0.9, 1.2, 1.1]), np.array([2.0, 2.9, 1.5, 2.6])
    d = welch_difference(KEY, "a", "b", xa, xb)
    res = scipy_stats.ttest_ind(xa, xb, equal_var=False)
    low, high = res.confidence_interval(0.95)
    assert (d.low, d.high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))
    assert d.significant and d.better == "a" and d.pairing == "welch"


def test_constant_nonzero_difference_is_significant_and_descriptive_metric_is_not_ranked():
    values = {"a": {str(k): {"path_changes": 2.0} for k in range(4)},
              "b": {str(k): {"path_changes": 10.0} for k in range(4)}}
    (c,) = statistics_of(values, ("path_changes",))["comparisons"]
    assert c["significant"] and c["better"] is None           # differ, but neither is better
    assert "differ" in verdicts.difference_line(c)


def test_summary_statistics_reads_trials_metrics_and_legacy_summaries():
    rng = np.random.default_rng(2)
    algorithms = {label: {"trials": {str(k): {"rtt_excess_median_ms": float(base + rng.normal(0, 0.01)),
                                              "loss": 0.01, "flow_mods": 10,
                                              "workloads": {"ddp": {"collectives": 20, "collective_mean_s": 0.1,
                                                                    "collective_p99_s": 0.3, "slowdown_mean": 1.5}},
                                              "metrics": {"iteration_slowdown_mean": 1.1 + base}}
                                     for k in range(4)}}
                  for label, base in (("min_delay", 1.0), ("min_hop", 2.0))}
    order = [["min_delay", "min_hop"], ["min_hop", "min_delay"]] * 2
    out = summary_statistics(algorithms, order)
    per = out["per_algorithm"]["min_delay"]
    assert per["rtt_excess_median_ms"]["n"] == 4 and per["rtt_excess_median_ms"]["low"] is not None
    assert per["loss_pct"]["mean"] == pytest.approx(1.0)                    # fraction -> %
    assert per["iteration_slowdown_mean"]["mean"] == pytest.approx(2.1)     # from "metrics"
    assert per["collective_p99_s"]["n"] == 0          # 20 collectives cannot carry a p99
    assert per["collective_slowdown_mean"]["n"] == 0  # the legacy per-rank slowdown_mean is another quantity
    assert out["order"] == {"positions": {"min_delay": [0, 1, 0, 1], "min_hop": [1, 0, 1, 0]}, "rotated": True}
    better = {c["metric"]: c["better"] for c in out["comparisons"] if c["significant"]}
    assert better["rtt_excess_median_ms"] == "min_delay"
    assert out["metrics"]["path_changes"]["ranked"] is False
    legacy = summary_statistics({"x": {"rtt_excess_median_ms": 1.0}, "y": {"rtt_excess_median_ms": 2.0}})
    assert legacy["trials"] == 1 and legacy["order"] is None
    assert not any(c["significant"] for c in legacy["comparisons"])
    import json
    json.dumps(out, allow_nan=False)                          # JSON-ready: no NaN


def test_percentiles_need_enough_samples():
    assert (min_samples(0.99), min_samples(0.95), min_samples(0.5)) == (100, 20, 2)
    assert math.isnan(METRICS["collective_p99_s"].compute(_collectives(99)))
    assert math.isfinite(METRICS["collective_p99_s"].compute(_collectives(100)))


def _collectives(n: int):
    import pandas as pd
    return pd.DataFrame({"rank": 0, "instance": np.arange(n), "duration_s": np.linspace(0.1, 1.0, n)})
