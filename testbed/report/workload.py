"""Figures of the GPU-job workload: CDFs of collective completion and iteration times,
and mean / p99 slowdown against the no-contention ideal, per algorithm.

Job-level instances (slowest rank) as defined in :mod:`.metrics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from testbed.report.bands import across_trials, band_note, draw_band, ecdf_on
from testbed.report.common import Context, FigureSpec, Skip
from testbed.report.metrics import collective_instances, iteration_instances, min_samples
from testbed.report.style import REFERENCE_COLOUR, legend_handles, pyplot

MAX_CDF_PANELS = 6


MAX_CDF_POINTS = 400


def _ecdf(ax, values, style, label, trials=None) -> None:
    """The ECDF of ``values``; with ``trials`` (the trial of each value) and several
    trials, the mean over trials of each trial's ECDF and its 95 % band."""
    values = np.asarray(values, float)
    ok = np.isfinite(values)
    x = np.sort(values[ok])
    if x.size == 0:
        return
    if trials is None or len(np.unique(np.asarray(trials)[ok])) < 2:
        y = np.arange(1, x.size + 1) / x.size
        ax.step(np.r_[x[0], x], np.r_[0.0, y], where="post", label=label, **style.line())
        return
    grid = np.unique(np.quantile(x, np.linspace(0, 1, min(x.size, MAX_CDF_POINTS))))
    k = np.asarray(trials)[ok]
    rows = np.vstack([ecdf_on(values[ok][k == t], grid) for t in np.unique(k)])
    rows = np.hstack([np.zeros((rows.shape[0], 1)), rows])       # the curve starts at 0
    draw_band(ax, np.r_[grid[0], grid], *across_trials(rows), style, label, step="post")


def _log_if_wide(ax, frames: list[np.ndarray]) -> None:
    values = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in frames]) if frames else np.array([])
    if values.size and values.max() / values.min() > 20:
        ax.set_xscale("log")


def _panels(frames: dict[str, pd.DataFrame], columns: tuple[str, ...], limit: int) -> list[tuple]:
    """Distinct values of ``columns`` over all frames (sorted), or [()] when there are more
    than ``limit`` of them or only one (one panel with everything)."""
    present = [c for c in columns if all(c in f.columns for f in frames.values())]
    if not present:
        return [()]
    keys = sorted({tuple(map(str, row)) for f in frames.values()
                   for row in f[present].drop_duplicates().itertuples(index=False)})
    if not 1 < len(keys) <= limit:
        return [()]
    return [tuple(zip(present, key)) for key in keys]


def _select(frame: pd.DataFrame, panel: tuple) -> pd.DataFrame:
    for column, value in panel:
        frame = frame[frame[column].astype(str) == value]
    return frame


def _panel_title(panel: tuple, everything: str) -> str:
    return ", ".join(value for _, value in panel) if panel else everything


def draw_collective_cdf(ctx: Context):
    tables = ctx.run.available("collectives")
    if not tables:
        raise Skip("no collective table (collectives): the run had no workload")
    inst = {label: _per_trial(collective_instances, t) for label, t in tables.items()}
    panels = _panels(inst, ("workload", "kind"), MAX_CDF_PANELS)
    if panels == [()]:
        panels = _panels(inst, ("kind",), MAX_CDF_PANELS)
    kinds = sorted({k for f in inst.values() if "kind" in f.columns for k in f["kind"].astype(str)})
    everything = kinds[0] if len(kinds) == 1 else "all collectives"
    plt = pyplot()
    ncols = min(len(panels), 2 if len(panels) == 4 else 3)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.5 * ncols + 0.5, 2.6 * nrows + 0.4), squeeze=False,
                             layout="constrained")
    for ax, panel in zip(axes.flat, panels):
        drawn = []
        for label, frame in inst.items():
            chosen = _select(frame, panel)
            values = chosen["duration_s"].to_numpy(float)
            _ecdf(ax, values, ctx.styles[label], label, chosen["trial"].to_numpy())
            drawn.append(values)
        _log_if_wide(ax, drawn)
        ax.set_xlabel("collective completion time [s]")
        ax.set_title(_panel_title(panel, everything))
        ax.set_ylim(0, 1.02)
    for row in axes:
        row[0].set_ylabel("fraction of collectives")
    fig.legend(handles=legend_handles(ctx.styles, list(inst)), loc="outside lower center",
               ncol=min(len(inst), 5), frameon=False)
    fig.suptitle(f"Collective completion time, slowest rank ({band_note(len(ctx.run.trials))})")
    return fig


def draw_iteration_cdf(ctx: Context):
    tables = ctx.run.available("iterations")
    if not tables:
        raise Skip("no iteration table (iterations): the run had no workload or no iteration finished")
    inst = {label: _per_trial(iteration_instances, t) for label, t in tables.items()}
    rows = _panels(inst, ("workload",), MAX_CDF_PANELS)
    columns = [("duration_s", "iteration time [s]")]
    if all("exposed_comm_s" in f.columns for f in inst.values()):
        columns.append(("exposed_comm_s", "exposed communication per iteration [s]"))
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(3.5 * len(columns) + 0.5, 2.6 * len(rows) + 0.4),
                             squeeze=False, layout="constrained")
    for axes_row, panel in zip(axes, rows):
        for ax, (column, xlabel) in zip(axes_row, columns):
            drawn = []
            for label, frame in inst.items():
                chosen = _select(frame, panel)
                values = chosen[column].to_numpy(float)
                _ecdf(ax, values, ctx.styles[label], label, chosen["trial"].to_numpy())
                drawn.append(values)
            _log_if_wide(ax, drawn)
            ax.set_xlabel(xlabel)
            ax.set_ylim(0, 1.02)
            if panel:
                ax.set_title(_panel_title(panel, ""))
        axes_row[0].set_ylabel("fraction of iterations")
    fig.legend(handles=legend_handles(ctx.styles, list(inst)), loc="outside lower center",
               ncol=min(len(inst), 5), frameon=False)
    n = max(_select(f, panel).groupby("trial").size().max() for f in inst.values() for panel in rows)
    per = "per algorithm, workload and trial" if rows != [()] else "per algorithm and trial"
    fig.suptitle(f"Iteration time, slowest rank (up to {n} iterations {per}; {band_note(len(ctx.run.trials))})")
    return fig


def _per_trial(to_instances, frame: pd.DataFrame) -> pd.DataFrame:
    """Job-level instances of each trial, with their ``trial`` column."""
    return pd.concat([to_instances(f).assign(trial=k) for k, f in frame.groupby("trial", sort=True)],
                     ignore_index=True)


def _bar_stats(inst: pd.DataFrame, q: float) -> tuple[tuple, tuple, int]:
    """((mean, low, high) of the per-trial mean slowdown, same of the per-trial ``q``
    quantile or NaNs when a trial has fewer than min_samples(q) instances, fewest
    instances in a trial)."""
    groups = [g["slowdown"].to_numpy(float) for _, g in inst.groupby("trial")]
    groups = [g[np.isfinite(g)] for g in groups]
    fewest = min((g.size for g in groups), default=0)
    means = np.array([[g.mean() if g.size else np.nan] for g in groups])
    quantiles = np.array([[np.quantile(g, q) if g.size >= min_samples(q) else np.nan] for g in groups])
    mean = tuple(float(v[0]) for v in across_trials(means))
    tail = tuple(float(v[0]) for v in across_trials(quantiles)) if fewest >= min_samples(q) else (np.nan,) * 3
    return mean, tail, fewest


def _yerr(stats: list[tuple]) -> np.ndarray | None:
    mean, low, high = (np.array(v) for v in zip(*stats))
    return np.vstack([mean - low, high - mean]) if np.isfinite(low).all() else None


def draw_slowdown(ctx: Context):
    q = 0.99
    groups = []
    for table, to_instances, what in (("collectives", collective_instances, "collectives"),
                                      ("iterations", iteration_instances, "iterations")):
        stats = {}
        for label, frame in ctx.run.available(table).items():
            inst = _per_trial(to_instances, frame)
            if "slowdown" in inst.columns:
                stats[label] = _bar_stats(inst, q)
        if stats:
            groups.append((what, stats))
    if not groups:
        raise Skip("no slowdown: the collective and iteration tables are missing or have no "
                   "ideal_s / slowdown column")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(3.5 * len(groups) + 0.5, 3.1), squeeze=False,
                             layout="constrained")
    any_tail = False
    for ax, (what, stats) in zip(axes[0], groups):
        labels = list(stats)
        x = np.arange(len(labels))
        colours = [ctx.styles[l].colour for l in labels]
        means = [stats[l][0] for l in labels]
        tails = [stats[l][1] for l in labels]
        show_tail = all(np.isfinite(t[0]) for t in tails)
        any_tail |= show_tail
        width = 0.38 if show_tail else 0.6
        offset = width / 2 if show_tail else 0.0
        bars = ax.bar(x - offset, [m[0] for m in means], width, color=colours, edgecolor="black",
                      linewidth=0.5, yerr=_yerr(means), capsize=3, error_kw={"linewidth": 0.8})
        ax.bar_label(bars, fmt="%.2f", fontsize=6.5, padding=2)
        top = max(np.nanmax([m[2] if np.isfinite(m[2]) else m[0] for m in means]), 1.0)
        if show_tail:
            b2 = ax.bar(x + offset, [t[0] for t in tails], width, color=colours, edgecolor="black",
                        linewidth=0.5, hatch="////", alpha=0.75, yerr=_yerr(tails), capsize=3,
                        error_kw={"linewidth": 0.8})
            ax.bar_label(b2, fmt="%.2f", fontsize=6.5, padding=2)
            top = max(top, np.nanmax([t[2] if np.isfinite(t[2]) else t[0] for t in tails]))
        else:
            fewest = min(stats[l][2] for l in labels)
            ax.text(0.02, 0.98, f"p{100 * q:g} not shown: {fewest} {what} in a trial\n"
                    f"(needs >= {min_samples(q)})", transform=ax.transAxes, va="top", fontsize=6.5)
        ax.axhline(1.0, color=REFERENCE_COLOUR, linestyle=(0, (4, 2)), linewidth=0.9)
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_ylabel(f"slowdown of {what} [x ideal]")
        ax.set_title(what)
        ax.grid(axis="x", visible=False)
        ax.set_ylim(0, top * (1.25 if show_tail else 1.45))     # room for the note above the bars
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D
    handles = [Patch(facecolor="0.75", edgecolor="black", label="mean")]
    if any_tail:
        handles.append(Patch(facecolor="0.75", edgecolor="black", hatch="////", label=f"p{100 * q:g}"))
    handles.append(Line2D([], [], color=REFERENCE_COLOUR, linestyle=(0, (4, 2)), label="ideal (no contention)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False)
    fig.suptitle(f"Slowdown = measured / no-contention ideal time ({band_note(len(ctx.run.trials))})")
    return fig


FIGURES = (
    FigureSpec("collective_cdf", "Collective completion time (CDF)",
               "Empirical CDF of the completion time of each collective (its slowest rank), "
               "one panel per workload and collective kind when there are a few; with several "
               "trials the mean of the trials' CDFs, shaded: its 95 % CI (3 or more trials).",
               draw_collective_cdf),
    FigureSpec("iteration_cdf", "Iteration time (CDF)",
               "Empirical CDF of iteration time (slowest rank) and of the communication "
               "not hidden behind compute in each iteration, one row per workload; with several "
               "trials the mean of the trials' CDFs, shaded: its 95 % CI (3 or more trials).",
               draw_iteration_cdf),
    FigureSpec("slowdown", "Slowdown, mean and p99",
               "Measured time / no-contention ideal time (testbed.workload.ideal) of collective "
               "instances and of iterations (slowest rank): the mean over trials of each trial's "
               "mean (plain) and p99 (hatched; only where every trial has >= 100 instances), "
               "error bars: 95 % CI over trials (3 or more trials); 1 = ideal.",
               draw_slowdown),
)
