"""Probe loss split by whether the schedule had a path: what routing is to blame for, and
what a coverage gap takes (results/tables.py's ``routable``, report/metrics.py)."""

import numpy as np
import pandas as pd

from testbed.net.clock import LinkTimeline
from testbed.report.metrics import METRICS, trial_metrics
from testbed.results.reader import read_table
from testbed.results.tables import TimeBase, rtt_table
from testbed.results.writer import RunDir


def test_a_probe_whose_reply_falls_in_a_coverage_gap_is_lost_without_a_route(tmp_path):
    times = np.arange(5.0)
    tl = LinkTimeline(times, np.full((5, 1), 0.01), np.ones((5, 1), bool))
    geo = np.array([[0.1], [0.1], [np.nan], [0.1], [0.1]])    # no path during step 2 (2-3 s)
    start = 1000.0
    sent = np.array([0.2, 0.95, 1.95, 2.5, 3.2])
    rtt = np.array([0.1, np.nan, np.nan, np.nan, 0.1])
    rows = pd.DataFrame({"src": "a", "dst": "b", "seq": range(5), "t_unix": start + sent, "rtt_s": rtt,
                         "one_way_s": rtt / 2, "back_s": rtt / 2, "reordered": False})
    summary: dict = {}
    sub = RunDir(tmp_path, "run")
    rtt_table(sub, rows, TimeBase(start, tl, 1.0), [("a", "b")], geo, summary)
    table, problem = read_table(tmp_path, "rtt")
    assert problem is None
    # 1.95 s: a path when sent, none when its reply was due (2.05 s); 2.5 s: none at all.
    assert table["routable"].tolist() == [True, True, False, False, True]
    assert summary["loss"] == 0.6 and summary["lost_no_route"] == 2
    assert abs(summary["loss_routable"] - 1 / 3) < 1e-12
    m = trial_metrics({"rtt": table})
    assert abs(m["loss_routable_pct"] - 100 / 3) < 1e-9 and m["lost_no_route"] == 2 and m["loss_pct"] == 60.0
    assert METRICS["loss_routable_pct"].ranked and not METRICS["lost_no_route"].ranked
