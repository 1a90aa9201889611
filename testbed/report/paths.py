"""Figure: path changes over time (cumulative, all pairs) and their count per algorithm
(mean over trials with 95 % intervals); skipped with one sentence when no path changed.
Also: which algorithms installed identical paths throughout (for report.md)."""

from __future__ import annotations

import numpy as np

from testbed.report.bands import across_trials, band_note, draw_band
from testbed.report.common import Context, FigureSpec, Skip, time_label, window_s
from testbed.report.metrics import path_changes
from testbed.report.style import pyplot


def path_history(paths) -> dict[tuple[str, str], list[tuple[float, str]]]:
    """{(src, dst): [(t_s, path), ...]} with consecutive repeats dropped (t_s order)."""
    out: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for row in paths.sort_values("t_s", kind="stable").itertuples(index=False):
        key = (str(row.src), str(row.dst))
        history = out.setdefault(key, [])
        if not history or history[-1][1] != row.path:
            history.append((float(row.t_s), str(row.path)))
    return out


def same_paths(first, second, tolerance_s: float) -> bool:
    """True when two path tables hold the same pairs with the same sequence of paths,
    each change within ``tolerance_s`` of the other's (the initial paths' times ignored)."""
    a, b = path_history(first), path_history(second)
    if a.keys() != b.keys():
        return False
    for key, ha in a.items():
        hb = b[key]
        if [p for _, p in ha] != [p for _, p in hb]:
            return False
        if any(abs(ta - tb) > tolerance_s for (ta, _), (tb, _) in zip(ha[1:], hb[1:])):
            return False
    return True


def identical_path_groups(ctx: Context) -> list[list[str]]:
    """Groups (2 or more) of algorithms that installed identical paths in every trial
    (compared trial by trial; a change may differ in time by up to one schedule step)."""
    run = ctx.run
    tolerance_s = float(run.manifest.get("step_s") or 1.0)
    labels = [l for l in run.algorithms if run.table(l, "paths") is not None]
    groups: list[list[str]] = []
    for label in labels:
        for group in groups:
            ref = group[0]
            if all((ta := run.trial_table(ref, "paths", k)) is not None
                   and (tb := run.trial_table(label, "paths", k)) is not None
                   and same_paths(ta, tb, tolerance_s) for k in run.trials):
                group.append(label)
                break
        else:
            groups.append([label])
    return [g for g in groups if len(g) > 1]

NAME = "path_changes"
TITLE = "Path changes"


def draw(ctx: Context):
    tables = ctx.run.available("paths")
    if not tables:
        raise Skip("no path table (paths) for any algorithm")
    trials = ctx.run.trials
    n_pairs = max(len(t[["src", "dst"]].drop_duplicates()) for t in tables.values())
    t_start, t_end = window_s(ctx.run)
    changes = {label: {k: np.sort(path_changes(t[t["trial"] == k])["t_s"].to_numpy(float)) for k in trials}
               for label, t in tables.items()}
    if not any(c.size for per in changes.values() for c in per.values()):
        raise Skip(f"no algorithm changed the path of any of the {n_pairs} probed host pairs in "
                   f"{'any of the ' + str(len(trials)) + ' trials' if len(trials) > 1 else 'the run'} "
                   f"({t_start:g}-{t_end:g} s of orbit), so there is no path-change figure")
    plt = pyplot()
    fig, (ax_t, ax_n) = plt.subplots(1, 2, figsize=(7.0, 2.8), width_ratios=(2.2, 1),
                                     layout="constrained")
    labels = list(tables)
    grid = np.linspace(t_start, t_end, 401)
    totals = []
    for label in labels:
        rows = np.vstack([np.searchsorted(changes[label][k], grid, side="right") for k in trials]).astype(float)
        draw_band(ax_t, grid, *across_trials(rows), ctx.styles[label], label, step="post")
        totals.append(across_trials(np.array([[changes[label][k].size] for k in trials], float)))
    ax_t.set_xlim(t_start, t_end)
    ax_t.set_xlabel(time_label(ctx.run))
    ax_t.set_ylabel("path changes so far (all pairs)")
    ax_t.legend(loc="upper left", frameon=False)
    mean = np.array([m[0] for m, _, _ in totals])
    low = np.array([lo[0] for _, lo, _ in totals])
    high = np.array([hi[0] for _, _, hi in totals])
    yerr = np.vstack([mean - low, high - mean]) if np.isfinite(low).all() else None
    bars = ax_n.bar(range(len(labels)), mean, color=[ctx.styles[l].colour for l in labels],
                    yerr=yerr, capsize=3, error_kw={"linewidth": 0.8})
    ax_n.bar_label(bars, fmt="%.3g", fontsize=7, padding=2)
    ax_n.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax_n.set_ylabel("path changes (total)")
    ax_n.grid(axis="x", visible=False)
    fig.suptitle(f"Path changes over {n_pairs} host pairs ({band_note(len(trials))})")
    return fig


FIGURES = (FigureSpec(
    NAME, TITLE,
    "Left: cumulative number of path changes over all probed host pairs; right: total per "
    "algorithm (several trials: mean over trials, shaded / error bars: 95 % CI). A change is a pair's forwarding path differing from its previous one.",
    draw),)
