"""report.md: the ranking table, the run's scaling conventions, figures and notes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .common import Context, FigureSpec
from .metrics import METRICS, rank_algorithms


def _cell(metric_key: str, value: float, best: bool) -> str:
    if not math.isfinite(value):
        return "n/a"
    text = METRICS[metric_key].fmt.format(value)
    return f"**{text}**" if best else text


def ranking_table(table: pd.DataFrame) -> list[str]:
    """Markdown lines: one row per algorithm, best first; bold = best in its column."""
    ranked = rank_algorithms(table)
    keys = [c for c in ranked.columns if c != "mean_rank"]
    header = ["rank", "algorithm"] + [METRICS[k].header for k in keys] + ["mean rank"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---:", ":---"] + ["---:"] * (len(keys) + 1)) + "|"]
    best = {k: np.nanmin(ranked[k].to_numpy(float)) for k in keys}
    position = 0
    previous = None
    for i, (label, row) in enumerate(ranked.iterrows(), start=1):
        if row["mean_rank"] != previous or not math.isfinite(row["mean_rank"]):
            position = i
        previous = row["mean_rank"]
        cells = [str(position), f"`{label}`"]
        cells += [_cell(k, float(row[k]), math.isfinite(row[k]) and row[k] == best[k]) for k in keys]
        cells.append(f"{row['mean_rank']:.2f}" if math.isfinite(row["mean_rank"]) else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _rate_example(ctx: Context) -> str:
    schedule = ctx.run.schedule
    if schedule is None or not len(schedule.links):
        return ""
    capacity = float(schedule.links["capacity_bps"].max())
    return (f" (a {capacity / 1e9:g} Gbit/s laser link ran at "
            f"{capacity * ctx.run.rate_scale / 1e6:g} Mbit/s)")


def scaling_line(ctx: Context) -> str:
    m = ctx.run.manifest
    datapath = f"; OVS datapath: {m['ovs_datapath']}" if m.get("ovs_datapath") else ""
    return (f"**Scaling conventions.** rate_scale = {m['rate_scale']:g}: link rates are the "
            f"schedule's capacities x {m['rate_scale']:g}{_rate_example(ctx)} and workload byte "
            f"counts are scaled by the same factor, so transfer times are those of the real system; "
            f"propagation delays and compute gaps are not scaled. speedup = {m['speedup']:g} (orbital "
            f"seconds per wall-clock second). Link backend: {m['backend']}; propagation delay "
            f"emulated: {'yes' if m['delay_emulated'] else 'NO (RTTs exclude propagation delay)'}"
            f"{datapath}.")


def _facts(ctx: Context) -> list[str]:
    m = ctx.run.manifest
    facts = [f"experiment `{m['experiment']}`", f"run `{m['run_id']}`"]
    for key, name in (("git_commit", "git commit"), ("seed", "seed"), ("epoch", "epoch"),
                      ("step_s", "step [s]")):
        if m.get(key) is not None:
            facts.append(f"{name} `{m[key]}`")
    return facts


def render(ctx: Context, table: pd.DataFrame, figures: list[FigureSpec],
           skipped: dict[str, str]) -> str:
    run = ctx.run
    m = run.manifest
    out = [f"# Report: {m['experiment']} / {m['run_id']}", ""]
    if run.incomplete:
        missing = [l for l in run.algorithms if not (run.path / l).is_dir()]
        out += ["> **WARNING: INCOMPLETE RUN.** This run did not finish (its folder holds an "
                "`INCOMPLETE` marker). Everything below covers only what was recorded before it "
                "stopped" + (f"; no results at all for: {', '.join(f'`{l}`' for l in missing)}" if missing else "")
                + ". Do not compare these numbers with a complete run.", ""]
    out += [", ".join(_facts(ctx)) + ".", "",
            "Algorithms in run order: " + ", ".join(f"`{l}`" for l in run.algorithms) + ".", ""]

    out += ["## Ranking", ""]
    if table.dropna(axis=1, how="all").shape[1]:
        out += ranking_table(table)
        out += ["", "Lower is better in every column; **bold** marks the best value. Algorithms are "
                "ordered by the mean of their per-metric ranks (1 = best; no value ranks last). "
                "RTT excess = probe RTT minus the schedule's shortest-path propagation RTT for the "
                "same pair and time (answered probes); loss = unanswered probes; collective times "
                "are per collective, from its slowest rank; iteration slowdown = iteration time "
                "(slowest rank) / no-contention ideal (at the TCP payload rate, 1448 of 1514 bytes "
                "per frame); flow mods = OpenFlow messages sent by the "
                "controller."]
    else:
        out += ["No metric could be computed: the run recorded none of the tables the metrics "
                "need (see the notes below)."]
    out += ["", scaling_line(ctx), ""]

    out += ["## Figures", ""]
    if all(spec.name in skipped for spec in figures):
        out += ["No figure could be drawn from this run's files (see below).", ""]
    for spec in figures:
        if spec.name in skipped:
            continue
        out += [f"### {spec.title}", "",
                f"![{spec.title}](plots/{spec.name}.png)", "",
                f"{spec.caption} ([PNG](plots/{spec.name}.png), [PDF](plots/{spec.name}.pdf))", ""]
    if skipped:
        out += ["## Figures not drawn", ""]
        out += [f"- **{next(s.title for s in figures if s.name == name)}** (`{name}`): {why}."
                for name, why in skipped.items()]
        out += [""]
    if run.notes:
        out += ["## Missing data", ""] + [f"- {note}" for note in run.notes] + [""]
    return "\n".join(out).rstrip() + "\n"
