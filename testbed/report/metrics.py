"""Per-algorithm numbers computed from a run's tables (pure: frames in, numbers out).

Job-level views follow the workload's convention: a collective *instance* (the same
collective on every rank of its group) completes when its slowest rank does, so its
completion time is the maximum over ranks of ``duration_s``; likewise an iteration.
Slowdown of an instance = that completion time / the largest ideal time over its ranks.

Every metric of the report and of ``summary.json``'s ``statistics`` is defined once, in
:data:`METRICS`, with its unit and whether lower is better. Two slowdowns exist and are
named apart: ``collective_slowdown_mean`` (collective instances) and
``iteration_slowdown_mean`` (iterations). The legacy per-workload ``slowdown_mean`` of a
trial summary (the mean over (rank, collective) rows of duration / ideal) is neither and
is not used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from testbed.results.reader import COLLECTIVE_ID_COLUMNS, RunData


def rtt_excess_s(rtt: pd.DataFrame) -> np.ndarray:
    """RTT above the schedule's propagation RTT for every answered probe that has a
    reference (the pair was reachable in the schedule) [s]."""
    excess = rtt["rtt_s"].to_numpy(float) - rtt["geo_rtt_s"].to_numpy(float)
    return excess[np.isfinite(excess)]


def rtt_stretch(rtt: pd.DataFrame) -> np.ndarray:
    """RTT over the schedule's propagation RTT of the same pair and step (>= 1 on the
    shortest-delay path; the switches add a little) for every answered probe with a reference."""
    ratio = rtt["rtt_s"].to_numpy(float) / rtt["geo_rtt_s"].to_numpy(float)
    return ratio[np.isfinite(ratio)]


def install_s(clock: pd.DataFrame) -> np.ndarray:
    """Rule-install latency [s] (the controller's decision until its last barrier reply) of
    the steps that sent rules; empty for runs recorded before it was measured."""
    if "install_s" not in clock:
        return np.array([])
    sent = pd.to_numeric(clock["flow_mods"], errors="coerce").to_numpy(float) > 0
    return clock["install_s"].to_numpy(float)[sent]


def loss_fraction(rtt: pd.DataFrame) -> float:
    return float(rtt["rtt_s"].isna().mean()) if len(rtt) else math.nan


def _routable(rtt: pd.DataFrame) -> np.ndarray:
    """Probes whose pair had a path in the schedule (tables.py's ``routable``; for tables
    written before it: a geometric RTT at the send step)."""
    if "routable" in rtt:
        return rtt["routable"].to_numpy(bool)
    return np.isfinite(rtt["geo_rtt_s"].to_numpy(float))


def loss_routable_fraction(rtt: pd.DataFrame) -> float:
    """Loss among the probes that had a path in the schedule: the loss routing is to blame for."""
    lost = rtt["rtt_s"].isna().to_numpy()[_routable(rtt)]
    return float(lost.mean()) if lost.size else math.nan


def lost_without_route(rtt: pd.DataFrame) -> int:
    """Probes lost while the schedule had no path for their pair (coverage gaps, partitions)."""
    return int((rtt["rtt_s"].isna().to_numpy() & ~_routable(rtt)).sum())


def path_changes(paths: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``paths`` where a pair's path differs from its previous path (t_s order).

    The first row of each pair is its starting path, not a change; a repeated row with
    the same path is not a change either.
    """
    ordered = paths.sort_values("t_s", kind="stable")
    previous = ordered.groupby(["src", "dst"], sort=False)["path"].shift()
    return ordered[previous.notna() & (previous != ordered["path"])]


def _instance_column(collectives: pd.DataFrame) -> str:
    return next(c for c in COLLECTIVE_ID_COLUMNS if c in collectives.columns)


def _job_level(frame: pd.DataFrame, key: str, extra_first: tuple[str, ...]) -> pd.DataFrame:
    # Instance and iteration numbers are per workload: a run with several keeps them apart.
    keys = ["workload", key] if "workload" in frame.columns else [key]
    grouped = frame.groupby(keys, sort=True)
    out = pd.DataFrame({"duration_s": grouped["duration_s"].max()})
    for column in ("exposed_comm_s",):
        if column in frame.columns:
            out[column] = grouped[column].max()
    if "ideal_s" in frame.columns:
        out["ideal_s"] = grouped["ideal_s"].max()
        out["slowdown"] = out["duration_s"] / out["ideal_s"]
    elif "slowdown" in frame.columns:
        out["slowdown"] = grouped["slowdown"].max()
    for column in extra_first:
        if column in frame.columns:
            out[column] = grouped[column].first()
    return out.reset_index()


def collective_instances(collectives: pd.DataFrame) -> pd.DataFrame:
    """One row per collective instance (per workload, if the table has a ``workload``
    column): duration_s (max over ranks), ideal_s, slowdown, kind, size_bytes."""
    return _job_level(collectives, _instance_column(collectives), ("kind", "size_bytes"))


def iteration_instances(iterations: pd.DataFrame) -> pd.DataFrame:
    """One row per iteration: duration_s and exposed_comm_s (max over ranks), ideal_s, slowdown."""
    return _job_level(iterations, "iteration", ())


def min_samples(q: float) -> int:
    """Fewest samples that carry the ``q`` quantile (0 < q < 1): at least one sample must
    lie beyond it, so p99 needs 100 samples, p95 20, the median 2."""
    tail = min(q, 1.0 - q)
    return max(2, math.ceil(1.0 / tail - 1e-9))


def _finite(values) -> np.ndarray:
    values = np.asarray(values, float)
    return values[np.isfinite(values)]


def _quantile(values, q: float) -> float:
    """The ``q`` quantile (linear interpolation), NaN with fewer than :func:`min_samples`."""
    values = _finite(values)
    return float(np.quantile(values, q)) if values.size >= min_samples(q) else math.nan


def _mean(values) -> float:
    values = _finite(values)
    return float(values.mean()) if values.size else math.nan


def _median(values) -> float:
    values = _finite(values)
    return float(np.median(values)) if values.size else math.nan


@dataclass(frozen=True)
class Metric:
    """One number per algorithm and trial, defined here and nowhere else.

    ``lower_is_better`` is True for a cost (ranked: lower wins), None for a descriptive
    count that is neither good nor bad (compared, never ranked). ``quantile`` is set for a
    percentile metric: it needs :func:`min_samples` samples per trial. ``from_summary``
    reads the same quantity from a per-trial summary (tables.py) when the tables are
    absent, or is None when the summary holds no number of this definition.
    """

    key: str
    header: str
    unit: str
    table: str
    compute: Callable[[pd.DataFrame], float]
    fmt: str = "{:.3g}"
    lower_is_better: bool | None = True
    quantile: float | None = None
    from_summary: Callable[[dict], float | None] | None = None
    samples: Callable[[pd.DataFrame], int] | None = None

    @property
    def ranked(self) -> bool:
        return self.lower_is_better is not None


def _slowdown_mean(instances: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[pd.DataFrame], float]:
    def compute(frame: pd.DataFrame) -> float:
        inst = instances(frame)
        return _mean(inst["slowdown"]) if "slowdown" in inst.columns else math.nan
    return compute


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _key(key: str, scale: float = 1.0) -> Callable[[dict], float | None]:
    def read(summary: dict) -> float | None:
        value = _number(summary.get(key))
        return None if value is None else value * scale
    return read


def _answered(summary: dict) -> float:
    probes, loss = _number(summary.get("probes")), _number(summary.get("loss"))
    return probes * (1.0 - loss) if probes is not None and loss is not None else 0.0


def _gated(read: Callable[[dict], float | None], count: Callable[[dict], float], q: float):
    def gated(summary: dict) -> float | None:
        return read(summary) if count(summary) >= min_samples(q) else None
    return gated


def _one_workload(key: str) -> Callable[[dict], float | None]:
    """A workload number of the summary, when the trial ran exactly one workload."""
    def read(summary: dict) -> float | None:
        workloads = summary.get("workloads") or {}
        return _number(next(iter(workloads.values())).get(key)) if len(workloads) == 1 else None
    return read


def _collective_count(summary: dict) -> float:
    workloads = summary.get("workloads") or {}
    return float(next(iter(workloads.values())).get("collectives") or 0) if len(workloads) == 1 else 0.0


def _collective_durations(t: pd.DataFrame) -> np.ndarray:
    return collective_instances(t)["duration_s"].to_numpy(float)


#: Metrics in the order of the report's tables. Ranked (lower is better): RTT excess,
#: loss (all probes, and those that had a path in the schedule), collective times and
#: slowdowns, flow mods, RTT stretch, rule-install latency. Not ranked: probes lost without
#: a route (coverage gaps: no algorithm avoids them), path changes, switch-steps out of the
#: controller's reach.
METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("rtt_excess_median_ms", "RTT excess median [ms]", "ms", "rtt",
           lambda t: 1e3 * _median(rtt_excess_s(t)), "{:.3f}",
           from_summary=_key("rtt_excess_median_ms")),
    Metric("rtt_excess_p99_ms", "RTT excess p99 [ms]", "ms", "rtt",
           lambda t: 1e3 * _quantile(rtt_excess_s(t), 0.99), "{:.3f}", quantile=0.99,
           from_summary=_gated(_key("rtt_excess_p99_ms"), _answered, 0.99),
           samples=lambda t: int(rtt_excess_s(t).size)),
    Metric("loss_pct", "loss [%]", "%", "rtt", lambda t: 100.0 * loss_fraction(t), "{:.2f}",
           from_summary=_key("loss", 100.0)),
    Metric("loss_routable_pct", "loss with a route [%]", "%", "rtt",
           lambda t: 100.0 * loss_routable_fraction(t), "{:.2f}", from_summary=_key("loss_routable", 100.0)),
    Metric("lost_no_route", "probes lost without a route", "count", "rtt",
           lambda t: float(lost_without_route(t)), "{:.4g}", lower_is_better=None,
           from_summary=_key("lost_no_route")),
    Metric("path_changes", "path changes", "count", "paths", lambda t: float(len(path_changes(t))), "{:.4g}",
           lower_is_better=None, from_summary=_key("path_changes")),
    Metric("collective_mean_s", "collective mean [s]", "s", "collectives",
           lambda t: _mean(_collective_durations(t)), "{:.4g}",
           from_summary=_one_workload("collective_mean_s")),
    Metric("collective_p99_s", "collective p99 [s]", "s", "collectives",
           lambda t: _quantile(_collective_durations(t), 0.99), "{:.4g}", quantile=0.99,
           from_summary=_gated(_one_workload("collective_p99_s"), _collective_count, 0.99),
           samples=lambda t: int(np.isfinite(_collective_durations(t)).sum())),
    Metric("collective_slowdown_mean", "collective slowdown (mean) [x]", "x ideal", "collectives",
           _slowdown_mean(lambda t: collective_instances(t)), "{:.3f}"),
    Metric("iteration_slowdown_mean", "iteration slowdown (mean) [x]", "x ideal", "iterations",
           _slowdown_mean(lambda t: iteration_instances(t)), "{:.3f}"),
    Metric("flow_mods", "flow mods", "count", "clock",
           lambda t: float(pd.to_numeric(t["flow_mods"], errors="coerce").sum()), "{:.4g}",
           from_summary=_key("flow_mods")),
    Metric("rtt_stretch_median", "RTT stretch median [x]", "x geometric", "rtt",
           lambda t: _median(rtt_stretch(t)), "{:.3f}"),
    Metric("install_median_ms", "rule install median [ms]", "ms", "clock",
           lambda t: 1e3 * _median(install_s(t)), "{:.1f}", from_summary=_key("install_median_ms")),
    Metric("unreachable_switch_steps", "switch-steps out of reach", "count", "clock",
           lambda t: float(t["unreachable_switches"].sum()) if "unreachable_switches" in t else math.nan,
           "{:.4g}", lower_is_better=None, from_summary=_key("unreachable_switch_steps")),
)}
DEFAULT_METRICS = tuple(METRICS)


def summary_value(key: str, summary: dict) -> float | None:
    """Metric ``key`` of one trial from its summary: the summary's ``metrics`` object
    (values computed by :func:`trial_metrics`) if it has the key, else the legacy summary
    number of the same definition, else None."""
    stored = (summary.get("metrics") or {}).get(key) if isinstance(summary.get("metrics"), dict) else None
    if _number(stored) is not None:
        return float(stored) if math.isfinite(stored) else None
    read = METRICS[key].from_summary
    return read(summary) if read is not None else None


def trial_metrics(tables: dict[str, pd.DataFrame | None], keys: tuple[str, ...] = DEFAULT_METRICS,
                  summary: dict | None = None) -> dict[str, float]:
    """{metric key: value} of one algorithm's trial from its tables ({name: frame or None});
    NaN where there is no data. Where a table is absent, the same quantity from the
    trial's ``summary`` is used (:attr:`Metric.from_summary`)."""
    out = {}
    for key in keys:
        metric = METRICS[key]
        table = tables.get(metric.table)
        value = metric.compute(table) if table is not None and len(table) else math.nan
        if not math.isfinite(value) and summary and table is None:
            fallback = summary_value(key, summary)
            value = fallback if fallback is not None else math.nan
        out[key] = value
    return out


def trial_values(run: RunData, keys: tuple[str, ...] = DEFAULT_METRICS) -> dict[str, dict[int, dict[str, float]]]:
    """{label: {trial: {metric key: value}}} for every algorithm and trial of ``run``."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    for label in run.algorithms:
        summaries = run.trial_summaries.get(label, {})
        out[label] = {trial: trial_metrics({name: run.trial_table(label, name, trial)
                                            for name in {METRICS[k].table for k in keys}},
                                           keys, summaries.get(str(trial)))
                      for trial in run.trials}
    return out


def sample_counts(run: RunData, key: str) -> list[int]:
    """Samples behind a percentile metric in each (algorithm, trial) that has its table."""
    metric = METRICS[key]
    if metric.samples is None:
        return []
    return [metric.samples(t) for label in run.algorithms for trial in run.trials
            if (t := run.trial_table(label, metric.table, trial)) is not None]


def metric_table(run: RunData, keys: tuple[str, ...] = DEFAULT_METRICS) -> pd.DataFrame:
    """Algorithms (rows, run order) x metrics (columns): the mean over trials of each
    trial's value; NaN where no trial has one."""
    values = trial_values(run, keys)
    rows = {label: {k: _mean([v[k] for v in trials.values()]) for k in keys}
            for label, trials in values.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(keys))


def folder_metrics(folder) -> dict[str, float | None]:
    """:func:`trial_metrics` of one trial folder (``<label>/trial-<k>/``), JSON-ready (None
    for no value): what the experiment stores as a per-trial summary's ``metrics``, so
    that ``summary.json`` holds the report's own definitions."""
    from pathlib import Path
    from testbed.results.reader import read_table
    tables = {name: read_table(Path(folder), name)[0] for name in {m.table for m in METRICS.values()}}
    return {k: (v if math.isfinite(v) else None) for k, v in trial_metrics(tables).items()}
