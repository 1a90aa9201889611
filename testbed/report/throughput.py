"""Figure: background-flow throughput over time (iperf3 intervals), per algorithm.

Throughput is measured on the emulated links, which run at ``rate_scale`` times the
real capacity; the right-hand axis converts back to the real system (bps / rate_scale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from testbed.report.bands import across_trials, band_note, binned_mean, draw_band
from testbed.report.common import Context, FigureSpec, Skip, time_label, window_s
from testbed.report.style import legend_handles, pyplot

NAME = "throughput"
TITLE = "Background throughput over time"
MAX_FLOW_PANELS = 3


def _interval_s(tables: dict[str, pd.DataFrame]) -> float:
    diffs = []
    for t in tables.values():
        for _, flow in t.groupby(["src", "dst"]):
            d = np.diff(np.sort(flow["t_s"].to_numpy(float)))
            diffs.append(d[d > 0])
    d = np.concatenate(diffs) if diffs else np.array([])
    return float(np.median(d)) if d.size else 1.0


def _total(table: pd.DataFrame, t0: float, width_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Sum over flows of each flow's mean rate in each time bin: (bin start [s], bps)."""
    bins = np.floor((table["t_s"].to_numpy(float) - t0) / width_s).astype(np.int64)
    per_flow = table.assign(_bin=bins).groupby(["_bin", "src", "dst"])["bps"].mean()
    total = per_flow.groupby(level="_bin").sum()
    return t0 + total.index.to_numpy() * width_s, total.to_numpy(float)


def draw(ctx: Context):
    tables = ctx.run.available("throughput")
    if not tables:
        raise Skip("no throughput table (throughput): the run had no background flows")
    flows = pd.concat([t[["src", "dst", "bps"]] for t in tables.values()]).astype({"src": str, "dst": str})
    volume = flows.groupby(["src", "dst"])["bps"].sum()
    ranked = sorted(volume.index, key=lambda f: (-volume[f], f))
    panels: list[tuple[str, str] | None] = ranked[:1] if len(ranked) == 1 else [None] + ranked[:MAX_FLOW_PANELS]
    t0 = min(float(t["t_s"].min()) for t in tables.values())
    width_s = _interval_s(tables)
    rate_scale = ctx.run.rate_scale
    plt = pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.0, 1.9 * len(panels) + 0.8), squeeze=False,
                             sharex=True, layout="constrained")
    trials = ctx.run.trials
    t_start, t_end = window_s(ctx.run)
    edges = t0 + width_s * np.arange(0, int(np.ceil((max(t_end, t0 + width_s) - t0) / width_s)) + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for ax, flow in zip(axes[:, 0], panels):
        for label, table in tables.items():
            rows = []
            for k in trials:
                part = table[table["trial"] == k]
                if flow is None:
                    t, bps = _total(part, t0, width_s) if len(part) else (np.array([]), np.array([]))
                    t = t + width_s / 2
                else:
                    sel = part[(part["src"].astype(str) == flow[0]) & (part["dst"].astype(str) == flow[1])]
                    t, bps = sel["t_s"].to_numpy(float), sel["bps"].to_numpy(float)
                rows.append(binned_mean(t, bps / 1e6, edges))
            draw_band(ax, centres, *across_trials(np.vstack(rows)), ctx.styles[label], label)
        ax.set_xlim(min(t_start, edges[0]), max(t_end, edges[-1]))
        ax.set_title(f"sum of all {len(ranked)} background flows" if flow is None
                     else f"{flow[0]} \u2192 {flow[1]}")
        ax.set_ylabel("throughput [Mbit/s]")
        ax.set_ylim(bottom=0)
        secondary = ax.secondary_yaxis("right", functions=(lambda m: m / 1e3 / rate_scale,
                                                            lambda g: g * 1e3 * rate_scale))
        secondary.set_ylabel("real system [Gbit/s]")
    axes[-1, 0].set_xlabel(time_label(ctx.run))
    fig.legend(handles=legend_handles(ctx.styles, list(tables)), loc="outside lower center",
               ncol=min(len(tables), 5), frameon=False)
    fig.suptitle(f"Background throughput per {width_s:g} s (emulated at rate_scale = {rate_scale:g}; "
                 f"{band_note(len(ctx.run.trials))})")
    return fig


FIGURES = (FigureSpec(
    NAME, TITLE,
    "Background flows (iperf3 intervals): the sum over flows, then the busiest flows; with "
    "several trials the mean over trials per interval, shaded: its 95 % CI. Left "
    "axis: measured on the scaled links; right axis: the same divided by rate_scale.",
    draw),)
