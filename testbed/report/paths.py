"""Figure: path changes over time (cumulative, all pairs) and their count per algorithm."""

from __future__ import annotations

import numpy as np

from .common import Context, FigureSpec, Skip, measured_window_s, time_label
from .metrics import path_changes
from .style import pyplot

NAME = "path_changes"
TITLE = "Path changes"


def draw(ctx: Context):
    tables = ctx.run.available("paths")
    if not tables:
        raise Skip("no path table (paths) for any algorithm")
    plt = pyplot()
    fig, (ax_t, ax_n) = plt.subplots(1, 2, figsize=(7.0, 2.8), width_ratios=(2.2, 1),
                                     layout="constrained")
    labels = list(tables)
    counts = []
    t_start = min(float(t["t_s"].min()) for t in tables.values())
    t_end = max(float(t["t_s"].max()) for t in tables.values())
    window = measured_window_s(ctx.run)
    if window:
        t_start, t_end = min(t_start, window[0]), max(t_end, window[1])
    for label in labels:
        table = tables[label]
        changes = np.sort(path_changes(table)["t_s"].to_numpy(float))
        counts.append(changes.size)
        x = np.r_[t_start, changes, t_end]
        y = np.r_[0, np.arange(1, changes.size + 1), changes.size]
        ax_t.step(x, y, where="post", label=label, **ctx.styles[label].line())
    ax_t.set_xlabel(time_label(ctx.run))
    ax_t.set_ylabel("path changes so far (all pairs)")
    ax_t.legend(loc="upper left", frameon=False)
    bars = ax_n.bar(range(len(labels)), counts, color=[ctx.styles[l].colour for l in labels])
    ax_n.bar_label(bars, fontsize=7)
    ax_n.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax_n.set_ylabel("path changes (total)")
    ax_n.grid(axis="x", visible=False)
    n_pairs = max(len(t[["src", "dst"]].drop_duplicates()) for t in tables.values())
    fig.suptitle(f"Path changes over {n_pairs} host pairs")
    return fig


FIGURES = (FigureSpec(
    NAME, TITLE,
    "Left: cumulative number of path changes over all probed host pairs; right: total per "
    "algorithm. A change is a pair's forwarding path differing from its previous one.",
    draw),)
