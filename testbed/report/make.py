"""``make_report``: read a run folder, draw every figure it has data for, write report.md.

Everything is read and every option checked before the first file is written, so a bad
folder or option leaves nothing behind. Each output is written to a temporary name and
renamed; report.md comes last. A figure whose data is missing is skipped with a note,
and an old file of that figure (from an earlier report) is removed so ``plots/`` always
matches report.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

from testbed.report import constellation, paths, power, rtt, throughput, utilisation, workload
from testbed.report.common import Context, FigureSpec, ReportOptions, Skip
from testbed.report.markdown import render
from testbed.report.metrics import METRICS, trial_values
from testbed.report.stats import statistics_of
from testbed.results.reader import ReportError, load_run
from testbed.report.style import FIGURE_FORMATS, atomic_savefig, paper_style
from testbed.system.files import atomic_write

if TYPE_CHECKING:
    import pandas as pd

#: Every figure, in report order.
FIGURES: tuple[FigureSpec, ...] = (*rtt.FIGURES, *paths.FIGURES, *workload.FIGURES,
                                   *throughput.FIGURES, *utilisation.FIGURES, *constellation.FIGURES,
                                   *power.FIGURES)
REPORT_NAME = "report.md"
PLOTS_DIR = "plots"


@dataclass(frozen=True)
class ReportResult:
    """What :func:`make_report` wrote.

    Attributes
    ----------
    run_dir : Path
    report : Path
        report.md.
    files : tuple of Path
        Every file written (figures in each format, then report.md).
    skipped : dict
        Figure name -> why it was not drawn.
    incomplete : bool
        The run did not finish (report.md says so at the top).
    """

    run_dir: Path
    report: Path
    files: tuple[Path, ...]
    skipped: dict[str, str]
    incomplete: bool


def check_options(ctx: Context) -> None:
    """ReportError for an option that does not fit this run."""
    options, run = ctx.options, ctx.run
    unknown = [k for k in options.metrics if k not in METRICS]
    if unknown:
        raise ReportError(f"--metrics: unknown metric(s) {', '.join(unknown)} "
                          f"(known: {', '.join(METRICS)})")
    if options.max_pairs < 1:
        raise ReportError(f"--max-pairs must be >= 1, got {options.max_pairs}")
    if options.pairs:
        known = rtt.all_pairs(ctx)
        for src, dst in options.pairs:
            if (str(src), str(dst)) not in known:
                listed = ", ".join(f"{a} {b}" for a, b in sorted(known)[:6]) or "none"
                raise ReportError(f"--pair {src} {dst}: no RTT probes for this pair in {run.path} "
                                  f"(pairs probed: {listed}{', ...' if len(known) > 6 else ''})")
    if options.load_algorithm is not None:
        if options.load_algorithm not in run.algorithms:
            raise ReportError(f"--load-algorithm {options.load_algorithm}: not an algorithm of this run "
                              f"({', '.join(run.algorithms)})")
        if run.table(options.load_algorithm, "link_util") is None:
            raise ReportError(f"--load-algorithm {options.load_algorithm}: this algorithm has no "
                              f"link utilisation table")
    if options.snapshot_t_s is not None and run.schedule is not None:
        constellation.snapshot_step(ctx)


def means_table(stats: dict, keys) -> "pd.DataFrame":
    """Algorithms x metrics: the mean over trials (NaN where none)."""
    import pandas as pd
    return pd.DataFrame({k: {g: (e[k]["mean"] if e[k]["mean"] is not None else float("nan"))
                             for g, e in stats["per_algorithm"].items()} for k in keys},
                        index=list(stats["per_algorithm"]), columns=list(keys), dtype=float)


def make_report(run_dir: str | Path, options: ReportOptions | None = None) -> ReportResult:
    """Write ``plots/<figure>.png`` and ``.pdf`` and ``report.md`` into ``run_dir``.

    Raises :class:`ReportError` (naming the file) for a folder that cannot be read,
    before anything is written.
    """
    run = load_run(run_dir)
    ctx = Context.of(run, options)
    check_options(ctx)
    keys = ctx.options.metrics
    per_trial = trial_values(run, keys)
    stats = statistics_of(per_trial, keys)
    table = means_table(stats, keys)

    plots = run.path / PLOTS_DIR
    plots.mkdir(exist_ok=True)
    written: list[Path] = []
    skipped: dict[str, str] = {}
    for spec in FIGURES:
        targets = [plots / f"{spec.name}.{fmt}" for fmt in FIGURE_FORMATS]
        with paper_style() as plt:
            try:
                fig = spec.draw(ctx)
            except Skip as why:
                skipped[spec.name] = str(why)
                for stale in targets:
                    stale.unlink(missing_ok=True)
                continue
            try:
                written += [atomic_savefig(fig, target) for target in targets]
            finally:
                plt.close(fig)
    report = atomic_write(run.path / REPORT_NAME, render(ctx, table, stats, list(FIGURES), skipped))
    written.append(report)
    return ReportResult(run_dir=run.path, report=report, files=tuple(written), skipped=skipped,
                        incomplete=run.incomplete)
