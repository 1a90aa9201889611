"""Statistics over repeated trials (pure: numbers in, numbers out).

Method
------
The unit of replication is the *trial* (a fresh network with its own seed). Each
algorithm's metric is one number per trial (:mod:`.metrics`); samples within a trial
(probes, collectives) are not independent and are never treated as replicates.

- **Per algorithm and metric**: the mean over trials and a two-sided 95 % Student-t
  interval ``mean +- t(0.975, n-1) * s / sqrt(n)`` (``s``: sample standard deviation of
  the trial values, ``scipy.stats.t``).
- **Between two algorithms of one run**: paired by trial (both ran trial k on the same
  seed): the mean of the per-trial differences ``a_k - b_k`` and its t interval.
- **Between runs that do not share seeds** (``testbed compare``): unpaired, Welch's
  interval of the difference of means (Welch-Satterthwaite degrees of freedom).
- A difference is ``significant`` only where its interval excludes zero. With fewer
  than :data:`MIN_TRIALS` trials no interval is given and nothing is significant. No
  correction for multiple comparisons is applied: with many metrics and pairs, about
  one comparison in twenty may look significant by chance.

Output is JSON-ready (None where a number does not exist).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np

from testbed.report.metrics import METRICS, min_samples, summary_value

CONFIDENCE = 0.95
#: Fewest trials for which an interval is given.
MIN_TRIALS = 3
METHOD = ("two-sided 95 % Student-t interval over trials (scipy.stats.t); between algorithms: "
          "mean of per-trial paired differences; significant where the interval excludes 0; "
          f"no interval with fewer than {MIN_TRIALS} trials; no multiple-comparison correction")
WELCH_METHOD = ("two-sided 95 % Welch interval of the difference of trial means (unpaired; "
                "Welch-Satterthwaite degrees of freedom); significant where it excludes 0")


def _t_quantile(df: float) -> float:
    from scipy import stats
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))


def _clean(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` trial values and its interval (None when it cannot be given: ``why``)."""

    n: int
    mean: float | None
    low: float | None
    high: float | None
    why: str | None = None


def mean_interval(values) -> Interval:
    """Mean and t interval of the finite ``values`` (one per trial)."""
    x = np.asarray([v for v in values if v is not None], float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Interval(0, None, None, None, "no trial has a value")
    mean = float(x.mean())
    if n < MIN_TRIALS:
        return Interval(n, mean, None, None, f"{n} trial(s) < {MIN_TRIALS}: no interval")
    half = _t_quantile(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(n, mean, mean - half, mean + half)


@dataclass(frozen=True)
class Difference:
    """``a - b`` of one metric: mean difference, its interval, and the verdict."""

    metric: str
    a: str
    b: str
    pairing: str                 # "trial" (paired) or "welch" (unpaired)
    n: int                       # pairs, or the smaller group for Welch
    mean_diff: float | None
    low: float | None
    high: float | None
    significant: bool
    better: str | None           # the significantly better of a and b (ranked metrics only)
    why: str | None = None


def _verdict(metric: str, a: str, b: str, low, high, mean) -> tuple[bool, str | None]:
    if low is None or high is None:
        return False, None
    significant = low > 0 or high < 0
    direction = METRICS[metric].lower_is_better if metric in METRICS else None
    if not significant or direction is None:
        return significant, None
    a_lower = mean < 0
    return True, (a if a_lower == direction else b)


def paired_difference(metric: str, a: str, b: str, values_a: dict, values_b: dict) -> Difference:
    """Paired by trial: ``values_a``/``values_b`` map trial -> value; trials where either is
    missing are left out."""
    common = sorted(k for k in set(values_a) & set(values_b)
                    if _clean(values_a[k]) is not None and _clean(values_b[k]) is not None)
    d = mean_interval([values_a[k] - values_b[k] for k in common])
    significant, better = _verdict(metric, a, b, d.low, d.high, d.mean)
    return Difference(metric, a, b, "trial", d.n, d.mean, d.low, d.high, significant, better, d.why)


def welch_difference(metric: str, a: str, b: str, values_a, values_b) -> Difference:
    """Unpaired: Welch's interval of mean(a) - mean(b)."""
    xa = np.asarray([v for v in values_a if _clean(v) is not None], float)
    xb = np.asarray([v for v in values_b if _clean(v) is not None], float)
    n = int(min(xa.size, xb.size))
    mean = float(xa.mean() - xb.mean()) if n else None
    if n < MIN_TRIALS:
        why = f"{n} trial(s) < {MIN_TRIALS} in a group: no interval" if n else "no trial has a value"
        return Difference(metric, a, b, "welch", n, mean, None, None, False, None, why)
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        low = high = mean
    else:
        df = (va + vb) ** 2 / (va ** 2 / (xa.size - 1) + vb ** 2 / (xb.size - 1))
        half = _t_quantile(df) * se
        low, high = mean - half, mean + half
    significant, better = _verdict(metric, a, b, low, high, mean)
    return Difference(metric, a, b, "welch", n, mean, low, high, significant, better)


def metric_info() -> dict:
    """What each metric is: header, unit, whether it is ranked and which way."""
    return {k: {"header": m.header, "unit": m.unit, "ranked": m.ranked,
                "lower_is_better": m.lower_is_better,
                "min_samples_per_trial": None if m.quantile is None else min_samples(m.quantile)}
            for k, m in METRICS.items()}


def statistics_of(values: dict[str, dict], keys=tuple(METRICS), paired: bool = True,
                  pairs: list[tuple[str, str]] | None = None) -> dict:
    """Intervals and comparisons from ``values`` = {group: {trial: {metric: value}}}.

    ``paired``: differences paired by trial key (groups share seeds), else Welch.
    ``pairs``: which groups to compare (default: every pair, in order).
    """
    groups = list(values)
    per_group = {g: {k: asdict(mean_interval([t.get(k) for t in values[g].values()])) for k in keys}
                 for g in groups}
    comparisons = []
    for a, b in pairs if pairs is not None else combinations(groups, 2):
        for k in keys:
            va = {t: v.get(k) for t, v in values[a].items() if _clean(v.get(k)) is not None}
            vb = {t: v.get(k) for t, v in values[b].items() if _clean(v.get(k)) is not None}
            if not va and not vb:
                continue
            diff = (paired_difference(k, a, b, va, vb) if paired
                    else welch_difference(k, a, b, list(va.values()), list(vb.values())))
            comparisons.append(asdict(diff))
    n_trials = max((len(v) for v in values.values()), default=0)
    return {"method": METHOD if paired else WELCH_METHOD, "confidence": CONFIDENCE,
            "min_trials": MIN_TRIALS, "trials": n_trials, "paired": paired,
            "metrics": {k: metric_info()[k] for k in keys},
            "per_algorithm": per_group, "comparisons": comparisons}


def _order_positions(trial_order, labels) -> dict:
    """Run position (0 = first) of each algorithm in each trial, and whether it varied."""
    positions = {label: [run.index(label) if label in run else None for run in trial_order] for label in labels}
    rotated = all(len({p for p in pos if p is not None}) > 1 for pos in positions.values()) \
        if len(trial_order) > 1 and len(labels) > 1 else False
    return {"positions": positions, "rotated": rotated}


def summary_statistics(algorithms: dict, trial_order=None) -> dict:
    """``summary["statistics"]`` of a run.

    Parameters
    ----------
    algorithms : dict
        ``{label: {"trials": {"0": per-trial summary, "1": ...}}}`` (summary.json's
        ``algorithms``); an entry without ``trials`` is one trial 0. A per-trial summary
        may hold ``metrics`` ({key: value} from :func:`metrics.trial_metrics`); else
        the legacy keys of the same definition are read (see :data:`metrics.METRICS`).
    trial_order : list of lists of labels, optional
        The order the algorithms ran in, per trial; recorded with the positions.
    """
    values: dict[str, dict[str, dict]] = {}
    for label, entry in algorithms.items():
        trials = entry.get("trials") if isinstance(entry, dict) and "trials" in entry else {"0": entry}
        values[label] = {str(t): {k: summary_value(k, s or {}) for k in METRICS}
                         for t, s in trials.items()}
    out = statistics_of(values)
    out["order"] = _order_positions(trial_order, list(algorithms)) if trial_order else None
    return out
