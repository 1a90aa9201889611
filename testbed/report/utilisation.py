"""Figure: link utilisation heat map (directed links x time), one panel per algorithm.

Rows are the same directed links in every panel (sorted by endpoints); when there are
more than ``options.max_heatmap_links``, the busiest ones (largest mean utilisation under
any algorithm) are shown and the title says so. Columns are at most ``MAX_TIME_BINS``
equal time bins; a cell is the mean utilisation in its bin, grey where nothing was
measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .common import Context, FigureSpec, Skip, time_label
from .style import LOAD_CMAP, pyplot

NAME = "link_utilisation"
TITLE = "Link utilisation heat map"
MAX_TIME_BINS = 200
MAX_TICK_LABELS = 30


def _sort_key(value):
    """Node ids sort as numbers, names as text (ids first)."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def mean_utilisation(table: pd.DataFrame) -> pd.Series:
    """Mean utilisation per directed link, indexed by (a, b)."""
    return table.groupby(["a", "b"])["utilisation"].mean()


def draw(ctx: Context):
    tables = ctx.run.available("link_util")
    if not tables:
        raise Skip("no link utilisation table (link_util)")
    means = pd.concat({label: mean_utilisation(t) for label, t in tables.items()}, axis=1)
    links = sorted(means.index, key=lambda ab: (_sort_key(ab[0]), _sort_key(ab[1])))
    n_links = len(links)
    limit = ctx.options.max_heatmap_links
    if n_links > limit:
        busiest = means.max(axis=1).sort_values(ascending=False, kind="stable").index[:limit]
        keep = set(busiest)
        links = [ab for ab in links if ab in keep]
    t_min = min(float(t["t_s"].min()) for t in tables.values())
    t_max = max(float(t["t_s"].max()) for t in tables.values())
    n_times = len(np.unique(np.concatenate([t["t_s"].to_numpy(float) for t in tables.values()])))
    n_bins = max(1, min(MAX_TIME_BINS, n_times))
    span = t_max - t_min if t_max > t_min else 1.0
    edges = np.linspace(t_min, t_min + span, n_bins + 1)

    plt = pyplot()
    import matplotlib
    cmap = matplotlib.colormaps[LOAD_CMAP].with_extremes(bad="0.85")
    n = len(tables)
    fig, axes = plt.subplots(n, 1, figsize=(7.0, 0.9 + (1.3 + 0.012 * len(links)) * n), squeeze=False,
                             sharex=True, layout="constrained")
    image = None
    for ax, (label, table) in zip(axes[:, 0], tables.items()):
        rows = pd.MultiIndex.from_tuples(links, names=["a", "b"]).get_indexer(
            pd.MultiIndex.from_arrays([table["a"], table["b"]]))
        cols = np.clip(np.searchsorted(edges, table["t_s"].to_numpy(float), side="right") - 1, 0, n_bins - 1)
        keep = rows >= 0
        total = np.zeros((len(links), n_bins))
        count = np.zeros((len(links), n_bins))
        np.add.at(total, (rows[keep], cols[keep]), table["utilisation"].to_numpy(float)[keep])
        np.add.at(count, (rows[keep], cols[keep]), 1)
        with np.errstate(invalid="ignore"):
            grid = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", interpolation="nearest",
                          cmap=cmap, vmin=0.0, vmax=1.0, origin="lower",
                          extent=(edges[0], edges[-1], -0.5, len(links) - 0.5))
        ax.set_title(label, loc="left", color=ctx.styles[label].colour, fontweight="bold")
        ax.grid(False)
        if len(links) <= MAX_TICK_LABELS:
            ax.set_yticks(range(len(links)), [f"{a}\u2192{b}" for a, b in links], fontsize=6)
        else:
            ax.set_ylabel("directed link")
            ax.set_yticks([])
    axes[-1, 0].set_xlabel(time_label(ctx.run))
    fig.colorbar(image, ax=axes[:, 0].tolist(), label="utilisation [fraction of scaled capacity]",
                 shrink=0.9)
    shown = f"the {len(links)} busiest of {n_links} directed links" if n_links > len(links) \
        else f"{n_links} directed links"
    fig.suptitle(f"Link utilisation ({shown})")
    return fig


FIGURES = (FigureSpec(
    NAME, TITLE,
    "Utilisation of each directed link (rows, same order in every panel) over time, as a "
    "fraction of its scaled capacity; grey: not measured.",
    draw),)
