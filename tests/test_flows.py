"""Background flows record what the network let them do (pure: iperf3 JSON in, rows out)."""

from testbed.traffic.flows import flow_row
from testbed.traffic.tools import FlowResult

FLOW = ("g0", "c1", 5e6, 2.0, 4.0)   # src, dst, rate_bps, start_s, duration_s


def _report(bytes_per_interval, retransmits=3):
    ivs, t = [], 0.0
    for b in bytes_per_interval:
        ivs.append({"sum": {"start": t, "end": t + 0.5, "seconds": 0.5, "bytes": b, "bits_per_second": 16 * b}})
        t += 0.5
    return {"start": {"timestamp": {"timesecs": 1000}}, "intervals": ivs,
            "end": {"sum_sent": {"bytes": sum(bytes_per_interval), "retransmits": retransmits}}}


def test_a_completed_flow_reports_its_bytes_and_its_longest_stall():
    rep = _report([1000, 0, 0, 1000, 0, 1000, 1000, 1000])
    row = flow_row(FLOW, FlowResult("g0", "c1", True, rep, None))
    assert row["completed"] and row["bytes_sent"] == 5000 and row["retransmits"] == 3
    assert row["longest_stall_s"] == 1.0 and row["reported_s"] == 4.0


def test_an_interrupted_flow_is_a_row_with_its_stall_to_the_end_of_its_duration():
    rep = _report([1000, 1000, 0])           # path cut at 1 s; nothing reported after 1.5 s
    row = flow_row(FLOW, FlowResult("g0", "c1", False, rep, "did not finish within 14 s (interrupted)"))
    assert not row["completed"] and row["bytes_sent"] == 2000
    assert row["longest_stall_s"] == 0.5 + (4.0 - 1.5)
    assert "interrupted" in row["error"]


def test_a_flow_that_never_connected_is_a_row_too():
    row = flow_row(FLOW, FlowResult("g0", "c1", False, None, "unable to connect to server"))
    assert not row["completed"] and row["bytes_sent"] == 0 and row["longest_stall_s"] == 4.0
