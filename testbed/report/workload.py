"""Figures of the GPU-job workload: CDFs of collective completion and iteration times,
and mean / p99 slowdown against the no-contention ideal, per algorithm.

Job-level instances (slowest rank) as defined in :mod:`.metrics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .common import Context, FigureSpec, Skip
from .metrics import collective_instances, iteration_instances
from .style import REFERENCE_COLOUR, legend_handles, pyplot

MAX_CDF_PANELS = 6


def _ecdf(ax, values, style, label) -> None:
    x = np.sort(np.asarray(values, float)[np.isfinite(values)])
    if x.size == 0:
        return
    y = np.arange(1, x.size + 1) / x.size
    ax.step(np.r_[x[0], x], np.r_[0.0, y], where="post", label=label, **style.line())


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
    inst = {label: collective_instances(t) for label, t in tables.items()}
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
            values = _select(frame, panel)["duration_s"].to_numpy(float)
            _ecdf(ax, values, ctx.styles[label], label)
            drawn.append(values)
        _log_if_wide(ax, drawn)
        ax.set_xlabel("collective completion time [s]")
        ax.set_title(_panel_title(panel, everything))
        ax.set_ylim(0, 1.02)
    for row in axes:
        row[0].set_ylabel("fraction of collectives")
    fig.legend(handles=legend_handles(ctx.styles, list(inst)), loc="outside lower center",
               ncol=min(len(inst), 5), frameon=False)
    fig.suptitle("Collective completion time (slowest rank of each collective)")
    return fig


def draw_iteration_cdf(ctx: Context):
    tables = ctx.run.available("iterations")
    if not tables:
        raise Skip("no iteration table (iterations): the run had no workload or no iteration finished")
    inst = {label: iteration_instances(t) for label, t in tables.items()}
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
                values = _select(frame, panel)[column].to_numpy(float)
                _ecdf(ax, values, ctx.styles[label], label)
                drawn.append(values)
            _log_if_wide(ax, drawn)
            ax.set_xlabel(xlabel)
            ax.set_ylim(0, 1.02)
            if panel:
                ax.set_title(_panel_title(panel, ""))
        axes_row[0].set_ylabel("fraction of iterations")
    fig.legend(handles=legend_handles(ctx.styles, list(inst)), loc="outside lower center",
               ncol=min(len(inst), 5), frameon=False)
    n = max(len(_select(f, panel)) for f in inst.values() for panel in rows)
    per = "per algorithm and workload" if rows != [()] else "per algorithm"
    fig.suptitle(f"Iteration time (slowest rank; up to {n} iterations {per})")
    return fig


def _mean_p99(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan, np.nan
    return float(values.mean()), float(np.percentile(values, 99))


def draw_slowdown(ctx: Context):
    groups = []
    for table, to_instances, what in (("collectives", collective_instances, "collectives"),
                                      ("iterations", iteration_instances, "iterations")):
        stats = {}
        for label, frame in ctx.run.available(table).items():
            inst = to_instances(frame)
            if "slowdown" in inst.columns:
                stats[label] = _mean_p99(inst["slowdown"].to_numpy(float))
        if stats:
            groups.append((what, stats))
    if not groups:
        raise Skip("no slowdown: the collective and iteration tables are missing or have no "
                   "ideal_s / slowdown column")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(3.5 * len(groups) + 0.5, 2.9), squeeze=False,
                             layout="constrained")
    width = 0.38
    for ax, (what, stats) in zip(axes[0], groups):
        labels = list(stats)
        x = np.arange(len(labels))
        colours = [ctx.styles[l].colour for l in labels]
        mean = [stats[l][0] for l in labels]
        p99 = [stats[l][1] for l in labels]
        b1 = ax.bar(x - width / 2, mean, width, color=colours, edgecolor="black", linewidth=0.5)
        b2 = ax.bar(x + width / 2, p99, width, color=colours, edgecolor="black", linewidth=0.5,
                    hatch="////", alpha=0.75)
        ax.bar_label(b1, fmt="%.2f", fontsize=6.5)
        ax.bar_label(b2, fmt="%.2f", fontsize=6.5)
        ax.axhline(1.0, color=REFERENCE_COLOUR, linestyle=(0, (4, 2)), linewidth=0.9)
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_ylabel(f"slowdown of {what} [x ideal]")
        ax.set_title(what)
        ax.grid(axis="x", visible=False)
        ax.set_ylim(0, max(np.nanmax(p99 + mean + [1.0]) * 1.18, 1.2))
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D
    fig.legend(handles=[Patch(facecolor="0.75", edgecolor="black", label="mean"),
                        Patch(facecolor="0.75", edgecolor="black", hatch="////", label="p99"),
                        Line2D([], [], color=REFERENCE_COLOUR, linestyle=(0, (4, 2)),
                               label="ideal (no contention)")],
               loc="outside lower center", ncol=3, frameon=False)
    fig.suptitle("Slowdown = measured / no-contention ideal time")
    return fig


FIGURES = (
    FigureSpec("collective_cdf", "Collective completion time (CDF)",
               "Empirical CDF of the completion time of each collective (its slowest rank), "
               "one panel per workload and collective kind when there are a few.", draw_collective_cdf),
    FigureSpec("iteration_cdf", "Iteration time (CDF)",
               "Empirical CDF of iteration time (slowest rank) and of the communication "
               "not hidden behind compute in each iteration, one row per workload.", draw_iteration_cdf),
    FigureSpec("slowdown", "Slowdown, mean and p99",
               "Measured time / no-contention ideal time (testbed.workload.ideal), mean "
               "(plain) and p99 (hatched) over collectives and over iterations; 1 = ideal.",
               draw_slowdown),
)
