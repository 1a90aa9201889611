"""Figure: link utilisation heat map (directed links x time), one panel per algorithm.

Rows are the same directed links in every panel, grouped by kind (intra-plane ISL,
inter-plane ISL, ground link; from the schedule's nodes) and sorted by endpoints within a
group; when there are
more than ``options.max_heatmap_links``, the busiest ones (largest mean utilisation under
any algorithm) are shown and the title says so. Columns are at most ``MAX_TIME_BINS``
equal time bins spanning the whole replayed window; a cell is the link's last logged
utilisation at the bin's centre (held until the next log: the controller logs a switch
only when one of its ports changed by more than 0.01), averaged over trials, grey before
the link's first log. The colour scale runs from 0
to the run's largest sample (:func:`style.load_colours`, shared with the constellation
map) and is stated on the colour bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from testbed.report.common import Context, FigureSpec, Skip, time_label, window_s
from testbed.report.style import load_colours, pyplot

NAME = "link_utilisation"
TITLE = "Link utilisation heat map"
MAX_TIME_BINS = 200


def _sort_key(value):
    """Node ids sort as numbers, names as text (ids first)."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def mean_utilisation(table: pd.DataFrame) -> pd.Series:
    """Mean utilisation per directed link, indexed by (a, b)."""
    return table.groupby(["a", "b"])["utilisation"].mean()


#: Row groups of the heat map, in display order.
LINK_GROUPS = ("intra-plane ISL", "inter-plane ISL", "ground link", "other link")


def held_grid(table: pd.DataFrame, links: list[tuple], centres: np.ndarray) -> np.ndarray:
    """(n_links, n_bins): each link's last logged utilisation at each bin centre, held
    until its next log (the controller logs a switch only when a port changed by more
    than its threshold); NaN before a link's first log. With several trials, the mean
    over the trials that have a value there."""
    out = np.full((len(links), centres.size), np.nan)
    row_of = {ab: i for i, ab in enumerate(links)}
    per_trial = []
    for _, part in table.groupby("trial", sort=True):
        grid = np.full((len(links), centres.size), np.nan)
        for (a, b), rows in part.sort_values("t_s", kind="stable").groupby(["a", "b"], sort=False):
            i = row_of.get((a, b))
            if i is None:
                continue
            k = np.searchsorted(rows["t_s"].to_numpy(float), centres, side="right") - 1
            values = rows["utilisation"].to_numpy(float)
            grid[i] = np.where(k >= 0, values[np.maximum(k, 0)], np.nan)
        per_trial.append(grid)
    if per_trial:
        stack = np.stack(per_trial)
        count = np.isfinite(stack).sum(axis=0)
        with np.errstate(invalid="ignore"):
            out = np.where(count > 0, np.nansum(stack, axis=0) / np.maximum(count, 1), np.nan)
    return out


def link_groups(ctx: Context, links: list[tuple]) -> list[str]:
    """The group of each directed link (a, b): from the schedule's nodes (ground station at
    either end, else same shell and plane or not); "other link" for unknown nodes."""
    schedule = ctx.run.schedule
    if schedule is None:
        return [LINK_GROUPS[-1]] * len(links)
    from testbed.report.constellation import node_ids
    a = node_ids(schedule, [l[0] for l in links])
    b = node_ids(schedule, [l[1] for l in links])
    nodes = schedule.nodes
    kind = nodes["kind"].astype(str).to_numpy()
    plane = nodes["shell"].astype(str).to_numpy() + "/" + nodes["plane"].astype(str).to_numpy()
    out = []
    for x, y in zip(a, b):
        if x < 0 or y < 0:
            out.append(LINK_GROUPS[3])
        elif kind[x] == "ground" or kind[y] == "ground":
            out.append(LINK_GROUPS[2])
        else:
            out.append(LINK_GROUPS[0] if plane[x] == plane[y] else LINK_GROUPS[1])
    return out


def draw(ctx: Context):
    tables = ctx.run.available("link_util")
    if not tables:
        raise Skip("no link utilisation table (link_util)")
    cmap, norm = load_colours(ctx.run)
    if norm is None:
        raise Skip("every utilisation sample of every link was 0 (no link carried measurable load)")
    means = pd.concat({label: mean_utilisation(t) for label, t in tables.items()}, axis=1)
    links = list(means.index)
    n_links = len(links)
    limit = ctx.options.max_heatmap_links
    if n_links > limit:
        busiest = means.max(axis=1).sort_values(ascending=False, kind="stable").index[:limit]
        keep = set(busiest)
        links = [ab for ab in links if ab in keep]
    groups = link_groups(ctx, links)
    order = sorted(range(len(links)), key=lambda i: (LINK_GROUPS.index(groups[i]),
                                                     _sort_key(links[i][0]), _sort_key(links[i][1])))
    links, groups = [links[i] for i in order], [groups[i] for i in order]
    t_window = window_s(ctx.run)
    t_min = min(float(t["t_s"].min()) for t in tables.values())
    t_max = max(float(t["t_s"].max()) for t in tables.values())
    start, stop = min(t_window[0], t_min), max(t_window[1], t_max)
    n_bins = MAX_TIME_BINS
    edges = np.linspace(start, stop, n_bins + 1)
    t_centres = (edges[:-1] + edges[1:]) / 2
    plt = pyplot()
    n = len(tables)
    fig, axes = plt.subplots(n, 1, figsize=(7.0, 0.9 + (1.3 + 0.012 * len(links)) * n), squeeze=False,
                             sharex=True, layout="constrained")
    image = None
    bounds = [i for i in range(1, len(groups)) if groups[i] != groups[i - 1]]
    centres = [(s + e - 1) / 2 for s, e in zip([0] + bounds, bounds + [len(groups)])]
    names = [groups[s] for s in [0] + bounds]
    counts = [e - s for s, e in zip([0] + bounds, bounds + [len(groups)])]
    for ax, (label, table) in zip(axes[:, 0], tables.items()):
        grid = held_grid(table, links, t_centres)
        image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", interpolation="nearest",
                          cmap=cmap, norm=norm, origin="lower",
                          extent=(edges[0], edges[-1], -0.5, len(links) - 0.5))
        ax.invert_yaxis()                 # first group on top
        for b in bounds:
            ax.axhline(b - 0.5, color="black", linewidth=0.6)
        ax.set_title(label, loc="left", color=ctx.styles[label].colour, fontweight="bold")
        ax.grid(False)
        ax.set_yticks(centres, [f"{g}\n({c} links)" for g, c in zip(names, counts)], fontsize=6)
        ax.tick_params(axis="y", length=0)
    axes[-1, 0].set_xlabel(time_label(ctx.run))
    fig.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.9,
                 label=f"utilisation [fraction of scaled capacity]\nscale 0 to {norm.vmax:.3g} (run maximum)")
    shown = f"the {len(links)} busiest of {n_links} directed links" if n_links > len(links) \
        else f"{n_links} directed links"
    trials = len(ctx.run.trials)
    covered = f"; logged {t_min:.1f}-{t_max:.1f} s of the {start:.1f}-{stop:.1f} s window"
    fig.suptitle(f"Link utilisation ({shown}{', mean over ' + str(trials) + ' trials' if trials > 1 else ''}"
                 f"{covered})")
    return fig


FIGURES = (FigureSpec(
    NAME, TITLE,
    "Utilisation of each directed link (rows grouped by link kind, same order in every panel) "
    "over the whole replayed window, as a fraction of its scaled capacity: the last value the "
    "controller logged, held until its next log (it logs a switch when a port changes by more "
    "than 0.01); colour scale from 0 to the run's largest sample (stated on the bar; the same "
    "scale as the constellation map); grey: before the link's first log.",
    draw),)
