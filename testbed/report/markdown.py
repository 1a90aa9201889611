"""report.md: per-algorithm means with 95 % intervals over trials, the differences that
are significant (and, in words, those that are not), identical paths, the run's scaling
conventions, figures and notes. No ranking mixes metrics."""

from __future__ import annotations


import pandas as pd

from testbed.report import faults, verdicts
from testbed.report.common import Context, FigureSpec
from testbed.report.metrics import METRICS, min_samples, sample_counts
from testbed.report.paths import identical_path_groups


def _rate_example(ctx: Context) -> str:
    schedule = ctx.run.schedule
    if schedule is None or not len(schedule.links):
        return ""
    capacity = float(schedule.links["capacity_bps"].max())
    return (f" (a {capacity / 1e9:g} Gbit/s laser link ran at "
            f"{capacity * ctx.run.rate_scale / 1e6:g} Mbit/s)")


#: manifest ``delay_emulated`` (read back from the backend's data path) -> words in the report
_DELAY_WORDS = {True: "yes (read back from the link backend)",
                False: "NO (the link backend did not hold the schedule's delays: RTTs are not those of the geometry)",
                None: "unknown (the link backend could not tell)"}


def scaling_line(ctx: Context) -> str:
    m = ctx.run.manifest
    datapath = f"; OVS datapath: {m['ovs_datapath']}" if m.get("ovs_datapath") else ""
    return (f"**Scaling conventions.** rate_scale = {m['rate_scale']:g}: link rates are the "
            f"schedule's capacities x {m['rate_scale']:g}{_rate_example(ctx)} and workload byte "
            f"counts are scaled by the same factor, so transfer times are those of the real system; "
            f"propagation delays and compute gaps are not scaled. speedup = {m['speedup']:g} (orbital "
            f"seconds per wall-clock second). Link backend: {m['backend']}; propagation delay "
            f"emulated: {_DELAY_WORDS[m['delay_emulated']]}"
            f"{datapath}.")


def _facts(ctx: Context) -> list[str]:
    m = ctx.run.manifest
    facts = [f"experiment `{m['experiment']}`", f"run `{m['run_id']}`"]
    for key, name in (("git_commit", "git commit"), ("seed", "seed"), ("epoch", "epoch"),
                      ("step_s", "step [s]")):
        if m.get(key) is not None:
            facts.append(f"{name} `{m[key]}`")
    facts.append(f"time dilation `{float(m.get('time_dilation', 1.0)):g}`")   # 1 in runs from before it
    return facts


def speedup_warning(ctx: Context) -> list[str]:
    speedup = float(ctx.run.manifest["speedup"])
    if speedup <= 1:
        return []
    return [f"> **Time compressed: speedup = {speedup:g}.** The orbit ran {speedup:g} times faster than "
            f"wall-clock time: link changes came {speedup:g} x as often as in orbit while traffic, "
            f"protocol timers and compute ran in real time.", ""]


def dilation_line(ctx: Context) -> list[str]:
    """A time dilation D > 1, first (D = 1 is one of the facts below it)."""
    d = float(ctx.run.manifest.get("time_dilation", 1.0))
    if d == 1:
        return []
    return [f"> **Time dilated: D = {d:g}.** The emulated world ran {d:g} times slower than the wall clock "
            f"(delays, compute and timers x {d:g}, rates / {d:g}); every time in this report is in emulated "
            f"seconds (measured / {d:g}). Kernel TCP timers, OVS's own timers and the controller's processing "
            f"were not dilated: in emulated time they were {d:g} times shorter.", ""]


def lag_warning(ctx: Context) -> list[str]:
    """Replays whose clock fell more than ``max_lag_steps`` behind the schedule do not stand for
    it: say so first, per algorithm and trial (``summary.clock_fell_behind``)."""
    behind = ctx.run.summary.get("clock_fell_behind") or []
    if not behind:
        return []
    return [f"> **Clock fell behind in {len(behind)} replay(s): {', '.join(f'`{b}`' for b in behind)}.** "
            "Some link changes were applied later than the schedule says (lag per step in each `clock` "
            "table; the bound is `[emulation] max_lag_steps`); treat their numbers with care.", ""]


def unfinished_warning(ctx: Context) -> list[str]:
    """Workloads the network (an outage, a paused rank) kept from finishing within the agents'
    time-out: their completed operations are in the tables, the rest is missing; say so first
    (``summary.workloads_unfinished``: algorithm/trial/workload)."""
    left = ctx.run.summary.get("workloads_unfinished") or []
    if not left:
        return []
    return [f"> **{len(left)} workload run(s) did not finish: {', '.join(f'`{u}`' for u in left)}.** "
            "Their ranks timed out (which ranks and at which step: `summary.json`, "
            "`workloads.<label>.unfinished`); collective and iteration statistics cover only what "
            "completed.", ""]


def trials_line(ctx: Context) -> str:
    m, n = ctx.run.manifest, len(ctx.run.trials)
    if n == 1:
        return "One trial: no confidence interval can be given and no difference is called significant."
    seeds = m.get("trial_seeds")
    order = m.get("trial_order")
    labels = ctx.run.algorithms
    if order is None:
        rotation = "the order of algorithms per trial was not recorded."
    elif len(labels) > 1 and all(len({run.index(l) for run in order if l in run}) > 1 for l in labels):
        rotation = "the order of algorithms was rotated across trials."
    else:
        rotation = "the order of algorithms was NOT rotated across trials (drift of the machine may favour one)."
    return f"{n} trials" + (f" (seeds {', '.join(map(str, seeds))})" if seeds else "") + "; " + rotation


def percentile_notes(ctx: Context, keys: list[str], values: pd.DataFrame) -> list[str]:
    out = []
    for key in keys:
        metric = METRICS[key]
        if metric.quantile is None or values[key].notna().any():
            continue
        counts = sample_counts(ctx.run, key)
        if counts:
            out.append(f"- {metric.header} not given: a p{100 * metric.quantile:g} needs at least "
                       f"{min_samples(metric.quantile)} samples per trial; the trials had "
                       f"{min(counts)}{'' if min(counts) == max(counts) else f'-{max(counts)}'}.")
    return out


def identical_paths_lines(ctx: Context) -> list[str]:
    groups = identical_path_groups(ctx)
    trials = "every trial" if len(ctx.run.trials) > 1 else "the run"
    return [f"**Identical paths:** {' and '.join(f'`{l}`' for l in g)} installed identical paths for "
            f"every host pair throughout {trials}: differences between them are not caused by routing."
            for g in groups]


def render(ctx: Context, values: pd.DataFrame, stats: dict, figures: list[FigureSpec],
           skipped: dict[str, str]) -> str:
    """report.md. ``values``: mean over trials per algorithm and metric (rows, columns);
    ``stats``: :func:`stats.statistics_of` of the same trial values."""
    run = ctx.run
    m = run.manifest
    out = [f"# Report: {m['experiment']} / {m['run_id']}", ""]
    if run.incomplete:
        missing = [l for l in run.algorithms if not (run.path / l).is_dir()]
        out += ["> **WARNING: INCOMPLETE RUN.** This run did not finish (its folder holds an "
                "`INCOMPLETE` marker). Everything below covers only what was recorded before it "
                "stopped" + (f"; no results at all for: {', '.join(f'`{l}`' for l in missing)}" if missing else "")
                + ". Do not compare these numbers with a complete run.", ""]
    out += speedup_warning(ctx)
    out += dilation_line(ctx)
    out += lag_warning(ctx)
    out += unfinished_warning(ctx)
    out += [", ".join(_facts(ctx)) + ".", "",
            "Algorithms in run order: " + ", ".join(f"`{l}`" for l in run.algorithms) + ". "
            + trials_line(ctx), ""]

    keys = [k for k in values.columns if values[k].notna().any()]
    out += ["## Results", ""]
    if keys:
        out += verdicts.interval_table(stats, keys)
        out += ["", "Mean over trials [95 % confidence interval]; (n=...) where no interval can be "
                "given. Lower is better in every ranked column. RTT excess = probe RTT minus the "
                "schedule's shortest-path propagation RTT for the same pair and time (answered probes); "
                "loss = unanswered probes; collective times are per collective instance, from its "
                "slowest rank; slowdowns = job-level time (slowest rank) / no-contention ideal (at "
                "the TCP payload rate, 1448 of 1514 bytes per frame), for collective instances and "
                "for iterations; flow mods = OpenFlow messages sent by the controller.", ""]
        out += percentile_notes(ctx, list(values.columns), values)
        out += ["", verdicts.method_line(stats), ""]
        out += ["## Differences between algorithms", ""]
        out += identical_paths_lines(ctx) + [""]
        out += verdicts.difference_lines(stats, keys)
    else:
        out += ["No metric could be computed: the run recorded none of the tables the metrics "
                "need (see the notes below).", ""]
    out += [scaling_line(ctx), ""]
    out += faults.section(ctx)

    out += ["## Figures", ""]
    for spec in figures:
        out += [f"### {spec.title}", ""]
        if spec.name in skipped:
            out += [f"No figure: {skipped[spec.name]}.", ""]
            continue
        out += [f"![{spec.title}](plots/{spec.name}.png)", "",
                f"{spec.caption} ([PNG](plots/{spec.name}.png), [PDF](plots/{spec.name}.pdf))", ""]
    if run.notes:
        out += ["## Missing data", ""] + [f"- {note}" for note in run.notes] + [""]
    return "\n".join(out).rstrip() + "\n"
