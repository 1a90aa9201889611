"""``testbed report RESULTS_DIR``: the report of a run folder, or of an experiment's newest
complete run."""

from __future__ import annotations

import argparse
import sys

from testbed.report.common import ReportOptions
from testbed.report.metrics import DEFAULT_METRICS, METRICS
from testbed.results.reader import find_run


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", metavar="RESULTS_DIR",
                        help="a run folder (results/<experiment>/<run_id>) or an experiment folder "
                             "(then its newest complete run)")
    parser.add_argument("--pair", nargs=2, action="append", metavar=("SRC", "DST"), default=[],
                        help="host pair for the RTT figure (repeatable; default: up to --max-pairs "
                             "pairs on which the algorithms' median RTTs differ most)")
    parser.add_argument("--max-pairs", type=int, default=4, help="RTT pairs chosen automatically (default 4)")
    parser.add_argument("--load-algorithm", metavar="LABEL",
                        help="algorithm whose mean link utilisation colours the constellation snapshot "
                             "(default: the first with utilisation data)")
    parser.add_argument("--snapshot-t-s", type=float, metavar="T",
                        help="orbital time of the snapshot [s since the schedule epoch] "
                             "(default: middle of the measured window)")
    parser.add_argument("--metrics", nargs="+", metavar="METRIC", choices=list(METRICS),
                        default=list(DEFAULT_METRICS),
                        help=f"columns of the ranking table (default: all of {', '.join(METRICS)})")


def report_command(args: argparse.Namespace) -> int:
    """Exit 0 on success; a bad folder or option raises ReportError (exit 2 via the CLI)."""
    from testbed.report.make import make_report
    run_dir = find_run(args.results_dir)
    options = ReportOptions(pairs=tuple(tuple(p) for p in args.pair), max_pairs=args.max_pairs,
                            load_algorithm=args.load_algorithm, snapshot_t_s=args.snapshot_t_s,
                            metrics=tuple(args.metrics))
    result = make_report(run_dir, options)
    n_figures = sum(1 for f in result.files if f.suffix == ".png")
    print(f"report: {result.report} ({n_figures} figures, PNG and PDF, in {result.run_dir / 'plots'})")
    for name, why in result.skipped.items():
        print(f"report: skipped {name}: {why}")
    if result.incomplete:
        print(f"report: WARNING: {result.run_dir} is an INCOMPLETE run; the report covers only "
              f"what was recorded", file=sys.stderr)
    return 0
