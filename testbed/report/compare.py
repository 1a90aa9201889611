"""``testbed compare RUN_DIR...``: one report across runs (the same spec at two commits, or
two values of a parameter), with the statistics of :mod:`.stats`.

Groups are (run, algorithm). Each algorithm is compared with itself across the runs.
When every run lists the same per-trial seeds, trial k of one run is the same scenario
as trial k of another and differences are paired by trial; otherwise they are unpaired
(Welch). The report says which. Writes ``compare.md`` and ``plots/compare_metrics.png``
(and ``.pdf``) into ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from itertools import combinations
from pathlib import Path

import numpy as np

from testbed.report import verdicts
from testbed.report.metrics import DEFAULT_METRICS, METRICS, trial_values
from testbed.report.stats import statistics_of
from testbed.report.style import FIGURE_FORMATS, atomic_savefig, paper_style, palette
from testbed.results.reader import ReportError, find_run, load_run
from testbed.results.trials import shared_seeds
from testbed.system.files import atomic_write


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="two or more run folders (or experiment folders: their newest complete run)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for compare.md and plots/ (default: compare-<UTC time> beside the first run)")
    parser.add_argument("--metrics", nargs="+", metavar="METRIC", choices=list(METRICS),
                        default=list(DEFAULT_METRICS), help="metrics to compare (default: all)")


def _flatten(obj, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): obj}


def what_differs(runs) -> list[str]:
    """Spec keys and the commit that differ between the runs (one line each)."""
    flat = [{"git_commit": r.manifest.get("git_commit"), **_flatten(r.manifest.get("spec") or {}, "spec.")}
            for r in runs]
    keys = sorted(set().union(*flat))
    return [f"`{k}`: " + " vs ".join(f"`{f.get(k)}`" for f in flat)
            for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


def run_names(runs) -> list[str]:
    names = [r.manifest["run_id"] for r in runs]
    if len(set(names)) < len(names):
        names = [f"{i}:{n}" for i, n in enumerate(names)]
    return names


def compare_runs(run_dirs: list[Path], out_dir: Path, keys: tuple[str, ...] = DEFAULT_METRICS) -> Path:
    """Write ``out_dir/compare.md`` and its figure; returns the report's path."""
    if len(run_dirs) < 2:
        raise ReportError("testbed compare needs at least two run folders")
    runs = [load_run(d) for d in run_dirs]
    names = run_names(runs)
    paired = shared_seeds([r.manifest for r in runs])
    values, pairs = {}, []
    for name, run in zip(names, runs):
        for label, trials in trial_values(run, keys).items():
            values[f"{name}/{label}"] = {str(t): v for t, v in trials.items()}
    labels = list(dict.fromkeys(l for r in runs for l in r.algorithms))
    for label in labels:
        present = [f"{n}/{label}" for n, r in zip(names, runs) if label in r.algorithms]
        pairs += list(combinations(present, 2))
    if not pairs:
        raise ReportError(f"the runs share no algorithm ({'; '.join(', '.join(r.algorithms) for r in runs)}): "
                          f"nothing to compare")
    stats = statistics_of(values, keys, paired=paired, pairs=pairs)
    shown = [k for k in keys if any(e[k]["mean"] is not None for e in stats["per_algorithm"].values())]
    out_dir.mkdir(parents=True, exist_ok=True)
    figure = _draw(stats, shown, out_dir / "plots", names, labels)
    lines = [f"# Comparison of {len(runs)} runs", ""]
    lines += [f"- `{n}`: {r.path} ({len(r.trials)} trial(s), algorithms {', '.join(r.algorithms)}"
              + (", INCOMPLETE" if r.incomplete else "") + ")" for n, r in zip(names, runs)]
    differs = what_differs(runs)
    lines += ["", "What differs between the runs: " + ("; ".join(differs) if differs else
                                                       "nothing in the spec or the commit") + ".", ""]
    lines += ["Pairing: " + ("the runs share their per-trial seeds, so differences are **paired by trial "
                             "index**." if paired else "the runs do not share their per-trial seeds, so "
                             "differences are **unpaired (Welch intervals)**."), ""]
    speedups = {float(r.manifest["speedup"]) for r in runs}
    if max(speedups) > 1:
        lines += [f"> **Time compressed:** speedup {', '.join(f'{s:g}' for s in sorted(speedups))} "
                  f"(orbital seconds per wall-clock second).", ""]
    lines += ["## Results", ""] + verdicts.interval_table(stats, shown, name="run/algorithm") + [""]
    lines += [verdicts.method_line(stats), "", "## Differences between runs", ""]
    lines += verdicts.difference_lines(stats, shown)
    if figure:
        lines += ["## Figure", "", "![metrics per run](plots/compare_metrics.png)", "",
                  "Mean over trials per algorithm (x) and run (colour); error bars: 95 % CI over "
                  "trials (3 or more trials). ([PNG](plots/compare_metrics.png), "
                  "[PDF](plots/compare_metrics.pdf))", ""]
    return atomic_write(out_dir / "compare.md", "\n".join(lines).rstrip() + "\n")


def _draw(stats: dict, keys: list[str], plots: Path, names: list[str], labels: list[str]) -> bool:
    """One panel per metric: x = algorithm, one bar per run (colour = run), 95 % CI bars."""
    if not keys:
        return False
    styles = palette(names)
    width = 0.8 / len(names)
    with paper_style() as plt:
        ncols = min(3, len(keys))
        nrows = -(-len(keys) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols + 0.6, 2.2 * nrows + 0.9),
                                 squeeze=False, layout="constrained")
        for ax, key in zip(axes.flat, keys):
            for i, name in enumerate(names):
                entries = [stats["per_algorithm"].get(f"{name}/{l}", {}).get(key) for l in labels]
                mean = np.array([e["mean"] if e and e["mean"] is not None else np.nan for e in entries])
                low = np.array([e["low"] if e and e["low"] is not None else np.nan for e in entries])
                high = np.array([e["high"] if e and e["high"] is not None else np.nan for e in entries])
                err = np.vstack([mean - low, high - mean])
                x = np.arange(len(labels)) - 0.4 + width * (i + 0.5)
                ax.bar(x, mean, width, color=styles[name].colour, yerr=np.where(np.isfinite(err), err, 0),
                       capsize=2, error_kw={"linewidth": 0.8})
            ax.set_xticks(np.arange(len(labels)), labels, rotation=30, ha="right")
            ax.set_title(METRICS[key].header, fontsize=8)
            ax.grid(axis="x", visible=False)
        for ax in list(axes.flat)[len(keys):]:
            ax.set_visible(False)
        from matplotlib.patches import Patch
        fig.legend(handles=[Patch(color=styles[n].colour, label=n) for n in names], loc="outside lower center",
                   ncol=min(len(names), 3), frameon=False)
        fig.suptitle("Per algorithm and run: mean over trials, error bars: 95 % CI over trials")
        plots.mkdir(exist_ok=True)
        try:
            for fmt in FIGURE_FORMATS:
                atomic_savefig(fig, plots / f"compare_metrics.{fmt}")
        finally:
            plt.close(fig)
    return True


def compare_command(args: argparse.Namespace) -> int:
    run_dirs = [find_run(r) for r in args.runs]
    out = args.out or run_dirs[0].parent / f"compare-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    report = compare_runs(run_dirs, out, tuple(args.metrics))
    print(f"compare: {report}")
    return 0
