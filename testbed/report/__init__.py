"""Comparison report and research plots of a run, made only from its result files.

    from testbed.report import make_report
    result = make_report(Path("results/default/20250101T000000Z-ab12"))
    result.files      # plots/*.png, plots/*.pdf, report.md

Modules: :mod:`testbed.results.reader` reads and validates a run folder (all trials);
:mod:`.metrics` defines every metric once (per algorithm and trial); :mod:`.stats` gives
means and 95 % intervals over trials and the paired comparisons (``summary_statistics``
for summary.json); :mod:`.bands` the same as bands and bars in figures; one module per
figure family (:mod:`.rtt`, :mod:`.paths`, :mod:`.workload`, :mod:`.throughput`,
:mod:`.utilisation`, :mod:`.constellation`, :mod:`.power`); :mod:`.faults` lists the
scheduled faults and marks them on time axes; :mod:`.verdicts` and :mod:`.markdown` write
report.md; :mod:`.make` ties them together; :mod:`.command` is ``testbed report`` and
:mod:`.compare` is ``testbed compare``.
"""

from testbed.report.command import add_report_arguments, report_command
from testbed.report.common import ReportOptions
from testbed.report.make import FIGURES, ReportResult, make_report
from testbed.report.metrics import METRICS
from testbed.results.reader import ReportError, RunData, find_run, load_run

__all__ = ["FIGURES", "METRICS", "ReportError", "ReportOptions", "ReportResult", "RunData",
           "add_report_arguments", "find_run", "load_run", "make_report", "report_command"]
