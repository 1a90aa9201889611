"""Comparison report and research plots of a run, made only from its result files.

    from testbed.report import make_report
    result = make_report(Path("results/default/20250101T000000Z-ab12"))
    result.files      # plots/*.png, plots/*.pdf, report.md

Modules: :mod:`.rundir` reads and validates a run folder; :mod:`.metrics` computes the
numbers; one module per figure family (:mod:`.rtt`, :mod:`.paths`, :mod:`.workload`,
:mod:`.throughput`, :mod:`.utilisation`, :mod:`.constellation`); :mod:`.markdown` writes
report.md; :mod:`.make` ties them together; :mod:`.command` is ``testbed report``.
"""

from .command import add_report_arguments, report_command
from .common import ReportOptions
from .make import FIGURES, ReportResult, make_report
from .metrics import METRICS
from .rundir import ReportError, RunData, find_run, load_run

__all__ = ["FIGURES", "METRICS", "ReportError", "ReportOptions", "ReportResult", "RunData",
           "add_report_arguments", "find_run", "load_run", "make_report", "report_command"]
