"""Per-algorithm numbers computed from a run's tables (pure: frames in, numbers out).

Job-level views follow the workload's convention: a collective *instance* (the same
collective on every rank of its group) completes when its slowest rank does, so its
completion time is the maximum over ranks of ``duration_s``; likewise an iteration.
Slowdown of an instance = that completion time / the largest ideal time over its ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .rundir import COLLECTIVE_ID_COLUMNS, RunData


def rtt_excess_s(rtt: pd.DataFrame) -> np.ndarray:
    """RTT above the schedule's propagation RTT for every answered probe that has a
    reference (the pair was reachable in the schedule) [s]."""
    excess = rtt["rtt_s"].to_numpy(float) - rtt["geo_rtt_s"].to_numpy(float)
    return excess[np.isfinite(excess)]


def loss_fraction(rtt: pd.DataFrame) -> float:
    return float(rtt["rtt_s"].isna().mean()) if len(rtt) else math.nan


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


def _p99(values) -> float:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(np.percentile(values, 99)) if values.size else math.nan


def _mean(values) -> float:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def _median(values) -> float:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else math.nan


@dataclass(frozen=True)
class Metric:
    """A number per algorithm; lower is better for every metric here."""

    key: str
    header: str
    table: str
    compute: Callable[[pd.DataFrame], float]
    fmt: str = "{:.3g}"


def _slowdown_mean(frame: pd.DataFrame) -> float:
    inst = iteration_instances(frame)
    return _mean(inst["slowdown"]) if "slowdown" in inst.columns else math.nan


#: Metrics in the order of the ranking table's columns.
METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("rtt_excess_median_ms", "RTT excess median [ms]", "rtt",
           lambda t: 1e3 * _median(rtt_excess_s(t)), "{:.3f}"),
    Metric("rtt_excess_p99_ms", "RTT excess p99 [ms]", "rtt",
           lambda t: 1e3 * _p99(rtt_excess_s(t)), "{:.3f}"),
    Metric("loss_pct", "loss [%]", "rtt", lambda t: 100.0 * loss_fraction(t), "{:.2f}"),
    Metric("path_changes", "path changes", "paths", lambda t: float(len(path_changes(t))), "{:.0f}"),
    Metric("collective_mean_s", "collective mean [s]", "collectives",
           lambda t: _mean(collective_instances(t)["duration_s"]), "{:.4g}"),
    Metric("collective_p99_s", "collective p99 [s]", "collectives",
           lambda t: _p99(collective_instances(t)["duration_s"]), "{:.4g}"),
    Metric("iteration_slowdown_mean", "iteration slowdown (mean) [x]", "iterations",
           _slowdown_mean, "{:.3f}"),
    Metric("flow_mods", "flow mods", "clock",
           lambda t: float(pd.to_numeric(t["flow_mods"], errors="coerce").sum()), "{:.0f}"),
)}
DEFAULT_METRICS = tuple(METRICS)


def metric_table(run: RunData, keys: tuple[str, ...] = DEFAULT_METRICS) -> pd.DataFrame:
    """Algorithms (rows, run order) x metrics (columns); NaN where there is no data.

    A metric comes from the tables; when its table is absent, a number of the same
    key in summary.json is used instead.
    """
    summary = run.summary.get("algorithms", {}) if run.summary else {}
    rows = {}
    for label in run.algorithms:
        row = {}
        for key in keys:
            metric = METRICS[key]
            table = run.table(label, metric.table)
            value = metric.compute(table) if table is not None else math.nan
            if not math.isfinite(value):
                fallback = (summary.get(label) or {}).get(key)
                if isinstance(fallback, (int, float)) and not isinstance(fallback, bool):
                    value = float(fallback)
            row[key] = value
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(keys))


def rank_algorithms(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``mean_rank`` (mean over metrics of each algorithm's rank, 1 = best, lower
    values better; an algorithm without a number ranks last on that metric) and sort by
    it; ties keep run order. Metrics without a number for any algorithm are dropped."""
    table = table.dropna(axis=1, how="all")
    if table.shape[1] == 0:
        out = table.copy()
        out["mean_rank"] = math.nan
        return out
    ranks = table.rank(axis=0, method="min", ascending=True, na_option="bottom")
    out = table.copy()
    out["mean_rank"] = ranks.mean(axis=1)
    order = np.argsort(out["mean_rank"].to_numpy(), kind="stable")
    return out.iloc[order]
