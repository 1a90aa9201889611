"""Scheduled faults in the report: a table of what was applied, and marks on time axes.

Read from the ``faults`` table of every algorithm and trial (``t_s``, ``end_s`` in orbital
seconds since the schedule's epoch, ``end_s`` = inf for a permanent loss; ``kind``, ``node``,
``detail``). Lost lasers and satellites are the same in every trial; compute resets are
drawn per trial; every algorithm of a trial sees the same faults (the table says so when
they differ, which would be a bug).
"""

from __future__ import annotations

import math

import pandas as pd

from testbed.report.common import Context

#: At most this many rows in report.md (the faults tables hold them all).
MAX_ROWS = 30
#: Kinds drawn as a vertical line at their start on time axes (link losses).
LINK_KINDS = ("laser", "satellite")
FAULT_COLOUR = "#D55E00"
OUTAGE_COLOUR = "0.55"
_COLUMNS = ["t_s", "end_s", "kind", "node", "detail"]


def applied(ctx: Context) -> pd.DataFrame | None:
    """Distinct applied faults: ``t_s``, ``end_s``, ``kind``, ``node``, ``detail``, ``trials``
    (sorted tuple of trial numbers), ``algorithms`` (tuple of labels, run order); sorted by
    time. None when no algorithm has a faults table."""
    tables = ctx.run.available("faults")
    if not tables:
        return None
    frame = pd.concat([t.assign(_algo=label) for label, t in tables.items()], ignore_index=True)
    if "detail" not in frame.columns:
        frame["detail"] = ""
    frame = frame.astype({"kind": str, "detail": str, "node": int})
    order = {label: k for k, label in enumerate(ctx.run.algorithms)}
    rows = []
    for key, g in frame.groupby(_COLUMNS, sort=False, dropna=False):
        rows.append({**dict(zip(_COLUMNS, key)), "trials": tuple(sorted(set(g["trial"].astype(int)))),
                     "algorithms": tuple(sorted(set(g["_algo"]), key=order.get))})
    out = pd.DataFrame(rows, columns=_COLUMNS + ["trials", "algorithms"])
    return out.sort_values(["t_s", "kind", "node"], kind="stable").reset_index(drop=True)


def _end(t_s: float, end_s: float) -> str:
    if not math.isfinite(end_s):
        return "end of run"
    return f"{end_s:g}" if end_s > t_s else "-"


def section(ctx: Context) -> list[str]:
    """report.md lines: ``## Scheduled faults`` with a table, or nothing when the run had none."""
    faults = applied(ctx)
    if faults is None:
        return []
    out = ["## Scheduled faults", ""]
    if faults.empty:
        return out + ["Faults were scheduled but none was applied in any trial.", ""]
    trials = tuple(ctx.run.trials)
    labels = tuple(label for label in ctx.run.algorithms if label in ctx.run.available("faults"))
    uneven = (faults["algorithms"] != labels).any()
    out += ["Applied by the clock at their orbital times (from each algorithm's `faults` table; "
            "times in orbital seconds since the schedule's epoch, at the schedule's step "
            "resolution). The RTT figure marks link losses and controller outages.", ""]
    header = "| start [s] | end [s] | kind | node | what | trials |" + (" algorithms |" if uneven else "")
    out += [header, "|" + "---|" * (header.count("|") - 1)]
    for row in faults.head(MAX_ROWS).itertuples(index=False):
        node = "controller" if row.node < 0 else str(row.node)
        which = "all" if row.trials == trials else ", ".join(map(str, row.trials))
        line = f"| {row.t_s:g} | {_end(row.t_s, row.end_s)} | {row.kind} | {node} | {row.detail} | {which} |"
        if uneven:
            line += " " + ", ".join(f"`{a}`" for a in row.algorithms) + " |"
        out.append(line)
    if len(faults) > MAX_ROWS:
        out.append(f"\n{len(faults) - MAX_ROWS} more in the `faults` tables.")
    counts = faults["kind"].value_counts()
    out += ["", "Distinct faults: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + ".", ""]
    return out


def mark_time_axis(ax, ctx: Context) -> list:
    """Marks faults on an axis of orbital time: a vertical line at the start of each lost
    laser or satellite, a shaded span per controller outage (clipped to the axis). Returns
    legend handles for what was drawn (empty when nothing)."""
    faults = applied(ctx)
    if faults is None or faults.empty:
        return []
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    handles = []
    x0, x1 = ax.get_xlim()
    links = sorted(set(faults.loc[faults["kind"].isin(LINK_KINDS), "t_s"].astype(float)))
    for t in links:
        ax.axvline(t, color=FAULT_COLOUR, linestyle=(0, (1, 1.5)), linewidth=1.0, zorder=1)
    if links:
        handles.append(Line2D([], [], color=FAULT_COLOUR, linestyle=(0, (1, 1.5)), linewidth=1.0,
                              label="laser / satellite lost"))
    outages = faults[faults["kind"] == "controller_outage"]
    for row in outages.itertuples(index=False):
        end = row.end_s if math.isfinite(row.end_s) else x1
        ax.axvspan(row.t_s, end, color=OUTAGE_COLOUR, alpha=0.2, linewidth=0, zorder=0)
    if len(outages):
        handles.append(Patch(color=OUTAGE_COLOUR, alpha=0.2, label="controller outage"))
    ax.set_xlim(x0, x1)
    return handles
