"""Figure: the power model per compute satellite over orbital time.

From the run-level ``power`` table (one row per schedule step and compute host; see
results/README.md), three panels sharing the time axis:

- battery state of charge [%] at the start of each step (a line through the step samples);
- the accelerator's clock fraction (0..1), constant during a step (drawn as steps);
- each satellite's eclipse intervals (its ``sunlit`` flag false), one lane per satellite.

The first two panels shade the intervals in which at least one compute satellite is in
eclipse. Scheduled compute resets (``faults`` tables, any algorithm or trial) are triangles
on the clock-fraction panel at their start, in the satellite's colour: the power table's
clock fraction is the power model's alone, a reset holds the clock at 0 on top of it.
Drawn only when the run has a power table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from testbed.report.common import Context, FigureSpec, Skip, time_label
from testbed.report.style import palette, pyplot

NAME = "power"
TITLE = "Power: battery and accelerator clock per compute satellite"
ECLIPSE_COLOUR = "0.5"
ECLIPSE_ALPHA = 0.18
#: Legend entries per host up to this many hosts (beyond, the lanes' tick labels name them).
MAX_LEGEND_HOSTS = 12


def intervals(t_s: np.ndarray, flag: np.ndarray, step_s: float) -> list[tuple[float, float]]:
    """(start, end) [s] of the runs where ``flag`` holds; sample k covers [t_k, t_k + step_s)."""
    flag = np.asarray(flag, bool)
    if not flag.any():
        return []
    edges = np.diff(np.r_[0, flag.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(float(t_s[a]), float(t_s[b]) + step_s) for a, b in zip(starts, ends)]


def _step_s(ctx: Context, times: np.ndarray) -> float:
    step = ctx.run.manifest.get("step_s")
    if step:
        return float(step)
    return float(np.median(np.diff(times))) if len(times) > 1 else 1.0


def host_series(power: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per compute host (in table order), its rows sorted by time."""
    hosts = list(dict.fromkeys(power["host"].astype(str)))
    return {h: power[power["host"].astype(str) == h].sort_values("t_s") for h in hosts}


def _resets(ctx: Context) -> pd.DataFrame:
    frames = [t[t["kind"].astype(str) == "compute_reset"] for t in ctx.run.available("faults").values()]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["t_s", "node"])
    # every algorithm of a trial sees the same resets: one marker each
    return pd.concat(frames, ignore_index=True).drop_duplicates(["t_s", "node"])


def draw(ctx: Context):
    power = ctx.run.power
    if power is None or power.empty:
        raise Skip("the run has no power model ([compute.power]), so no power table")
    series = host_series(power)
    times = np.unique(power["t_s"].to_numpy(float))
    step_s = _step_s(ctx, times)
    styles = palette(list(series))
    plt = pyplot()
    n = len(series)
    fig, (ax_soc, ax_clk, ax_ecl) = plt.subplots(
        3, 1, sharex=True, figsize=(7.0, 4.6 + 0.12 * n), layout="constrained",
        gridspec_kw={"height_ratios": [3.0, 2.2, 0.5 + 0.18 * n]})
    union = np.zeros(len(times), bool)
    for lane, (host, rows) in enumerate(series.items()):
        style = styles[host]
        t = rows["t_s"].to_numpy(float)
        ax_soc.plot(t, rows["soc"].to_numpy(float) * 100.0, label=host, gid=f"soc:{host}", **style.line())
        fraction = rows["clock_fraction"].to_numpy(float)
        ax_clk.step(np.r_[t, t[-1] + step_s], np.r_[fraction, fraction[-1]], where="post", label=host,
                    gid=f"clock:{host}", **style.line())
        dark = ~rows["sunlit"].to_numpy(bool)
        union |= np.isin(times, t[dark])
        spans = intervals(t, dark, step_s)
        ax_ecl.broken_barh([(a, b - a) for a, b in spans], (lane - 0.35, 0.7), color=style.colour,
                           gid=f"eclipse:{host}")
    for ax in (ax_soc, ax_clk):
        for a, b in intervals(times, union, step_s):
            ax.axvspan(a, b, color=ECLIPSE_COLOUR, alpha=ECLIPSE_ALPHA, linewidth=0, zorder=0)
    node_host = dict(zip(power["node"].astype(int), power["host"].astype(str)))
    resets = _resets(ctx)
    for node, rows in resets.groupby("node"):
        host = node_host.get(int(node))
        if host is not None:
            ax_clk.plot(rows["t_s"].to_numpy(float), np.zeros(len(rows)), linestyle="none", marker="v",
                        markersize=5, color=styles[host].colour, clip_on=False, zorder=6, gid=f"reset:{host}")
    ax_soc.set_ylabel("battery state\nof charge [%]")
    ax_soc.set_ylim(-2, 102)
    ax_clk.set_ylabel("accelerator clock\nfraction [0-1]")
    ax_clk.set_ylim(-0.05, 1.05)
    ax_ecl.set_yticks(range(n), list(series))
    ax_ecl.set_ylim(n - 0.5, -0.5)
    ax_ecl.set_ylabel("in eclipse")
    ax_ecl.grid(False)
    ax_ecl.set_xlim(float(times[0]), float(times[-1]) + step_s)
    ax_ecl.set_xlabel(time_label(ctx.run))
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    handles = [Line2D([], [], label=h, **styles[h].line()) for h in series] if n <= MAX_LEGEND_HOSTS else []
    if union.any():
        handles.append(Patch(color=ECLIPSE_COLOUR, alpha=ECLIPSE_ALPHA * 2,
                             label="eclipse (at least one compute satellite)"))
    if len(resets):
        handles.append(Line2D([], [], color="0.3", linestyle="none", marker="v",
                              label="compute reset (faults table, any trial)"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False)
    fig.suptitle(f"Power model of {n} compute satellite{'s' if n != 1 else ''} "
                 f"(per {step_s:g} s schedule step)")
    return fig


FIGURES = (FigureSpec(
    NAME, TITLE,
    "Per compute satellite, from the run's power table: the battery's state of charge at the "
    "start of each schedule step (top), the accelerator's clock fraction the power model allowed "
    "during each step (middle; 1 = full clock, 0 = paused; replay agents stretch compute phases "
    "by it) and the intervals in which the satellite was in the Earth's shadow (bottom, one lane "
    "each). Grey shading: at least one compute satellite in eclipse. Triangles: scheduled compute "
    "resets, which hold the clock at 0 for their duration on top of the power model. Satellites "
    "with the same sunlight have identical curves, drawn on top of each other (the lanes tell them "
    "apart).",
    draw),)
