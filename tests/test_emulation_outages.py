"""Outages are measurements: a TCP flow whose only path is cut for longer than its
duration is a result row with its stall, and the run goes on (real OVS, iperf3, TCP)."""

import time

import numpy as np
import pytest

from testbed.emulation import Emulation
from testbed.net.clock import LinkTimeline
from testbed.net.plan import chain_plan
from testbed.traffic import BackgroundFlows

pytestmark = pytest.mark.emulation


def test_a_flow_across_an_outage_is_a_row_with_its_stall_and_the_run_completes(tmp_path):
    plan = chain_plan(2, 0.005, 20e6)                 # h0 - s0 - s1 - h1: one laser link
    times = np.arange(0, 6.0, 0.5)
    up = np.ones((len(times), 1), dtype=bool)
    up[times >= 1.0, 0] = False                       # the only path goes at 1 s and never comes back
    tl = LinkTimeline(times, np.full(up.shape, 0.005), up)
    src, dst = plan.hosts[0].name, plan.hosts[-1].name
    with Emulation(plan, "min_hop", log_dir=tmp_path, timeline=tl) as emu:
        start = time.time() + 0.5
        flows = BackgroundFlows(emu, [(src, dst, 5e6, 0.0, 3.0)], start)
        records = emu.clock.run(start_unix=start)
        tables = flows.collect()
    assert len(records) == tl.n_steps - 1                       # the clock replayed the whole window
    (row,) = tables.flows.to_dict("records")
    assert not row["completed"] and row["error"]
    assert row["bytes_sent"] > 0                                # it carried traffic before the cut
    assert row["longest_stall_s"] >= 1.5                        # and nothing for the rest of its 3 s
    before = tables.throughput[tables.throughput["t_unix"] < start + 0.9]
    assert (before["bps"] > 1e6).any()

