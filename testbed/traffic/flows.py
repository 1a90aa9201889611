"""Background TCP flows: iperf3 at given (scaled) rates, started at their start time.

A flow that crosses a path outage is a measurement, not a failure: it is interrupted after
its duration plus a grace period and recorded with what it delivered (see
:func:`testbed.traffic.tools.iperf3_flow`). ``collect()`` gives two tables: per-interval
throughput rows and one row per flow.

With time dilation D (testbed/net/dilation.py) a flow starts at ``start_s x D`` wall seconds,
runs ``duration_s x D`` at ``rate_bps / D`` with reporting intervals and grace D times longer;
``collect()`` gives emulated units (bit/s x D, stalls / D) and the flow as planned.
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple, Sequence

import pandas as pd

from testbed.net.dilation import FLOW_DURATIONS, emulated_bps, emulated_s, wall_rate_bps, wall_s
from testbed.traffic.tools import FlowResult, iperf3_flow

INTERVAL_S = 0.5    # iperf3 reporting interval [emulated s]: the resolution of throughput rows and stalls
GRACE_S = 10.0      # a flow is interrupted this long [emulated s] after its planned end


class FlowTables(NamedTuple):
    throughput: pd.DataFrame   # t_unix (interval end), src, dst, bps
    flows: pd.DataFrame        # one row per flow, see :func:`flow_row`


def flow_row(flow: tuple[str, str, float, float, float], result: FlowResult) -> dict:
    """One flow's outcome: planned start/duration, completed, bytes, retransmits, longest stall.

    ``longest_stall_s``: the longest run of reporting intervals that carried no byte
    (resolution ``INTERVAL_S``), plus, for an interrupted flow, the time from its last
    reported interval to the end of its planned duration."""
    src, dst, rate_bps, start_s, duration_s = flow
    rep = result.report or {}
    intervals = [iv["sum"] for iv in rep.get("intervals", [])]
    zero = [iv["bytes"] == 0 for iv in intervals]
    longest = run = 0.0
    for iv, z in zip(intervals, zero):
        run = run + iv["seconds"] if z else 0.0
        longest = max(longest, run)
    reported_s = intervals[-1]["end"] if intervals else 0.0
    if not result.completed:
        longest = max(longest, run + max(0.0, duration_s - reported_s))
    sent = rep.get("end", {}).get("sum_sent", {})
    received = rep.get("end", {}).get("sum_received", {})
    return {"src": src, "dst": dst, "start_s": start_s, "duration_s": duration_s, "rate_bps": rate_bps,
            "completed": result.completed, "bytes_sent": int(sent.get("bytes", 0)),
            "bytes_received": int(received.get("bytes", 0)) if received else None,
            "retransmits": sent.get("retransmits"), "reported_s": reported_s, "longest_stall_s": longest,
            "error": result.error}


class BackgroundFlows:
    """iperf3 TCP flows (src, dst, rate_bps, start_s, duration_s), started on time by timers."""

    def __init__(self, emu, flows: Sequence[tuple[str, str, float, float, float]], t0_unix: float,
                 dilation: float = 1.0):
        self.emu = emu
        self.flows = list(flows)          # emulated units, as planned
        self.dilation = D = dilation
        self.results: dict[int, FlowResult] = {}
        self._lock = threading.Lock()
        self._threads = []
        for i, (src, dst, rate_bps, start_s, duration_s) in enumerate(self.flows):
            th = threading.Timer(max(0.0, t0_unix + wall_s(start_s, D) - time.time()), self._run,
                                 args=(i, src, dst, wall_rate_bps(rate_bps, D), wall_s(duration_s, D)))
            th.daemon = True
            th.start()
            self._threads.append(th)

    def _run(self, i, src, dst, rate_bps, duration_s) -> None:
        D = self.dilation
        out = iperf3_flow(self.emu.host(src), self.emu.host(dst), duration_s, port=5201 + i, rate_bps=rate_bps,
                          interval_s=wall_s(INTERVAL_S, D), grace_s=wall_s(GRACE_S, D))
        with self._lock:
            self.results[i] = out

    def collect(self, timeout_s: float = 60.0) -> FlowTables:
        """Waits for every flow (each bounds itself in time) and returns its tables."""
        for th in self._threads:
            th.join(timeout_s)
        D = self.dilation
        rows, flows = [], []
        for i, flow in enumerate(self.flows):
            src, dst, rate_bps, start_s, duration_s = flow
            result = self.results.get(i) or FlowResult(src, dst, False, None, "never started")
            row = flow_row((src, dst, wall_rate_bps(rate_bps, D), wall_s(start_s, D), wall_s(duration_s, D)), result)
            row.update({k: emulated_s(row[k], D) for k in FLOW_DURATIONS},
                       start_s=start_s, duration_s=duration_s, rate_bps=rate_bps)
            flows.append(row)
            rep = result.report or {}
            t0 = rep.get("start", {}).get("timestamp", {}).get("timesecs")
            for iv in rep.get("intervals", []):
                sm = iv["sum"]
                rows.append((t0 + sm["end"], src, dst, emulated_bps(sm["bits_per_second"], D)))
        return FlowTables(pd.DataFrame(rows, columns=["t_unix", "src", "dst", "bps"]).astype({"bps": float}),
                          pd.DataFrame(flows))

    def stop(self) -> None:
        for th in self._threads:
            th.cancel()
