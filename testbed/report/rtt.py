"""Figure: RTT over time for a few host pairs, every algorithm on the same axes.

The schedule's shortest-path propagation RTT (``geo_rtt_s``) is the dashed black
reference; lost probes are crosses along the bottom edge in the algorithm's colour.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from testbed.report import faults
from testbed.report.bands import across_trials, band_note, binned_mean, draw_band
from testbed.report.common import Context, FigureSpec, Skip, bin_edges_s, time_label
from testbed.report.style import REFERENCE_COLOUR, legend_handles, pyplot

NAME = "rtt_over_time"
TITLE = "RTT over time"
MARKERS_BELOW_POINTS = 150   # draw a marker at each probe when a series has fewer points


def all_pairs(ctx: Context) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for rtt in ctx.run.available("rtt").values():
        pairs.update(map(tuple, rtt[["src", "dst"]].astype(str).drop_duplicates().to_numpy()))
    return pairs


def choose_pairs(ctx: Context) -> list[tuple[str, str]]:
    """The pairs to plot: ``options.pairs`` if given, else up to ``max_pairs`` chosen
    deterministically among the probed pairs (one direction per host pair: src < dst
    when both were probed): first those where the algorithms' median RTTs differ most,
    then those whose geometric RTT varies most over the run, then by name."""
    if ctx.options.pairs:
        return [tuple(map(str, p)) for p in ctx.options.pairs]
    tables = ctx.run.available("rtt")
    present = all_pairs(ctx)
    canonical = [p for p in present if p[0] < p[1] or (p[1], p[0]) not in present]
    frame = pd.concat([t[["src", "dst", "rtt_s", "geo_rtt_s"]].assign(_algo=label)
                       for label, t in tables.items()]).astype({"src": str, "dst": str})
    by_pair = frame.groupby(["src", "dst"])
    geo_range = (by_pair["geo_rtt_s"].max() - by_pair["geo_rtt_s"].min()).fillna(0.0)
    medians = frame.groupby(["src", "dst", "_algo"])["rtt_s"].median().unstack("_algo")
    spread = (medians.max(axis=1) - medians.min(axis=1)).fillna(0.0)
    # Rounded to 1 us so that float noise cannot reorder pairs between platforms.
    ranked = sorted(canonical, key=lambda p: (-round(float(spread.get(p, 0.0)), 6),
                                              -round(float(geo_range.get(p, 0.0)), 6), p))
    return ranked[:ctx.options.max_pairs]


def draw(ctx: Context):
    tables = ctx.run.available("rtt")
    if not tables:
        raise Skip("no RTT probe table (rtt) for any algorithm")
    pairs = choose_pairs(ctx)
    if not pairs:
        raise Skip("the RTT tables hold no host pair")
    plt = pyplot()
    n = len(pairs)
    ncols = 1 if n == 1 else 2
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.0, 2.5 * nrows + 0.6), squeeze=False,
                             sharex=True, layout="constrained")
    any_lost = False
    fault_handles: list = []
    trials = ctx.run.trials
    edges = bin_edges_s(ctx.run)
    for ax, (src, dst) in zip(axes.flat, pairs):
        geo_drawn = False
        lines_ms: list[np.ndarray] = []       # mean lines and the reference: they set the y range
        for label, rtt in tables.items():
            sel = rtt[(rtt["src"].astype(str) == src) & (rtt["dst"].astype(str) == dst)].sort_values("t_s")
            if sel.empty:
                continue
            style = ctx.styles[label]
            t = sel["t_s"].to_numpy(float)
            rtt_ms = sel["rtt_s"].to_numpy(float) * 1e3
            ok = np.isfinite(rtt_ms)
            if len(trials) == 1:
                few = ok.sum() < MARKERS_BELOW_POINTS
                ax.plot(t[ok], rtt_ms[ok], marker=style.marker if few else None, markersize=2.5,
                        label=label, **style.line())
            else:
                k = sel["trial"].to_numpy()
                rows = np.vstack([binned_mean(t[k == trial], rtt_ms[k == trial], edges) for trial in trials])
                mean, low, high = across_trials(rows)
                draw_band(ax, (edges[:-1] + edges[1:]) / 2, mean, low, high, style, label)
                lines_ms.append(mean)
            if (~ok).any():
                any_lost = True
                ax.plot(t[~ok], np.full((~ok).sum(), 0.02), transform=ax.get_xaxis_transform(),
                        linestyle="none", marker="x", markersize=5, color=style.colour, clip_on=False)
            if not geo_drawn:
                first = sel[sel["trial"] == sel["trial"].min()]
                lines_ms.append(first["geo_rtt_s"].to_numpy(float) * 1e3)
                ax.plot(first["t_s"].to_numpy(float), first["geo_rtt_s"].to_numpy(float) * 1e3,
                        color=REFERENCE_COLOUR, linestyle=(0, (4, 2)), linewidth=1.0, zorder=5)
                geo_drawn = True
        ax.set_xlim(edges[0], edges[-1])
        values = np.concatenate(lines_ms) if lines_ms else np.array([])
        values = values[np.isfinite(values)]
        if len(trials) > 1 and values.size:
            # Bands of 3 trials are wide (t = 4.3): the lines set the range, bands are clipped.
            lo, hi = float(values.min()), float(values.max())
            pad = max(hi - lo, 1e-3 * hi, 0.01)
            ax.set_ylim(lo - 0.1 * pad, hi + 0.4 * pad)
        fault_handles = faults.mark_time_axis(ax, ctx) or fault_handles
        ax.set_title(f"{src} \u2192 {dst}")
        ax.set_ylabel("RTT [ms]")
        if not geo_drawn:
            ax.text(0.5, 0.5, "no probes for this pair", transform=ax.transAxes, ha="center")
    for ax in axes[-1]:
        ax.set_xlabel(time_label(ctx.run))
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D
    handles = legend_handles(ctx.styles, list(tables))
    handles.append(Line2D([], [], color=REFERENCE_COLOUR, linestyle=(0, (4, 2)), linewidth=1.0,
                          label="geometric RTT (schedule)"))
    if any_lost:
        handles.append(Line2D([], [], color="0.3", linestyle="none", marker="x", label="lost probe"))
    handles += fault_handles
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), frameon=False)
    fig.suptitle(f"Probe RTT per {edges[1] - edges[0]:g} s bin ({band_note(len(trials))})" if len(trials) > 1
                 else f"Probe RTT, every probe ({band_note(1)})")
    return fig


FIGURES = (FigureSpec(
    NAME, TITLE,
    "Probe RTT per host pair, all algorithms on the same axes (with several trials: the mean "
    "over trials of each trial's mean RTT per schedule step, shaded: its 95 % CI, clipped to the "
    "axes, whose range the mean lines and the reference set); dashed black: the schedule's "
    "shortest-path propagation RTT at send time; crosses on the bottom edge: lost probes; dotted "
    "vertical lines: scheduled laser or satellite losses, grey spans: scheduled controller outages "
    "(both from the faults tables). "
    "Pairs: those given with --pair, else up to four on which the algorithms' median RTTs "
    "differ most (ties: the largest geometric RTT variation).",
    draw),)
