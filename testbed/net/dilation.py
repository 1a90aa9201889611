"""Time dilation: the emulated world runs ``D`` times slower than the wall clock.

With ``[emulation] time_dilation = D`` (a float >= 1; 1 = off) one emulated second lasts
``D`` wall seconds. Everything the testbed *sets* is stretched on the way in and everything
it *measures* is shrunk on the way out, so that result tables stay in emulated seconds and
a run at ``D = 4`` is comparable with one at ``D = 1``:

====================================  =====================  ===========================
quantity (emulated units)             on the wall clock      function
====================================  =====================  ===========================
link one-way delay ``delay_s``        ``delay_s x D``        :func:`wall_delay_s`
link rate ``rate_bps``                ``rate_bps / D``       :func:`wall_rate_bps`
compute gap, probe/workload timer     ``t_s x D``            :func:`wall_s`
probe rate ``rate_hz``                ``rate_hz / D``        :func:`wall_rate_hz`
orbital s per emulated s ``speedup``  ``speedup / D``        :func:`wall_speedup`
measured duration (wall s)            ``t_s / D``            :func:`emulated_s`
measured rate (bit/s over wall s)     ``bps x D``            :func:`emulated_bps`
====================================  =====================  ===========================

Bytes are not dilated (a transfer of B bytes at ``rate_bps / D`` takes ``D`` times longer,
which is the same emulated time). What does NOT dilate, because it runs on the host's own
clock: kernel TCP timers (delayed ACKs 40 ms, the SYN retry 1 s: in emulated time they
shrink to ``1/D`` of their real value; the 200 ms minimum RTO is the exception, below),
Open vSwitch's own timers
(revalidation, MAC aging, inactivity probes), the controller's processing and the
userspace datapath's per-hop switching overhead (which is the point: a ~0.3 ms per-hop
cost on this machine becomes ~0.3/D ms emulated). experiments/README.md lists them.

One kernel timer can be dilated after all: TCP's minimum retransmission timeout is a
per-route metric (``ip route ... rto_min``, locked); :func:`tcp_rto_min_s` gives its dilated
value, which the emulation sets on every host's route (without it the RTO floor, and with
it the idle time after which TCP restarts from its initial window, would be 50 ms
emulated at D = 4). Delayed ACKs (40 ms minimum, an adaptive estimate on the wall clock)
and the 1 s initial RTO of a SYN cannot be set per route and stay undilated.

All functions are pure; ``D`` is checked once (:func:`check`), by the spec reader too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:         # the replay agent imports this module: no pandas, no plan at run time
    import pandas as pd

    from testbed.net.plan import NetworkPlan


def check(dilation: float) -> float:
    """``dilation`` as a float; ValueError unless it is a finite number >= 1."""
    d = float(dilation)
    if not (math.isfinite(d) and d >= 1.0):
        raise ValueError(f"time dilation must be a finite number >= 1, got {dilation!r}")
    return d


# -- what the testbed sets: emulated -> wall -------------------------------------------

def wall_delay_s(delay_s, dilation: float):
    """Emulated one-way delay [s] -> the delay the data path holds [s wall] (x D)."""
    return delay_s * dilation


def wall_rate_bps(rate_bps, dilation: float):
    """Emulated link or flow rate [bit/s] -> the rate the shaper runs at [bit/s wall] (/ D)."""
    return rate_bps / dilation


def wall_s(t_s, dilation: float):
    """An emulated duration or timer (compute gap, probe timeout, flow start) [s] -> wall [s] (x D)."""
    return t_s * dilation


def wall_rate_hz(rate_hz, dilation: float):
    """Events per emulated second -> events per wall second (/ D)."""
    return rate_hz / dilation


def wall_speedup(speedup: float, dilation: float) -> float:
    """Orbital seconds per emulated second -> orbital seconds per wall second (/ D): the
    clock's step interval in wall time grows by D."""
    return speedup / dilation


#: Linux's TCP_RTO_MIN [s] (200 ms; include/net/tcp.h)
TCP_RTO_MIN_S = 0.2


def tcp_rto_min_s(dilation: float) -> float:
    """TCP's minimum RTO on the wall clock under dilation D: 200 ms x D [s]."""
    return wall_s(TCP_RTO_MIN_S, dilation)


def wall_delays(changes: Iterable[tuple[int, float, float]], dilation: float) -> list[tuple[int, float, float]]:
    """(link_id, delay_ab_s, delay_ba_s) changes in emulated s -> the same in wall s."""
    return [(lid, wall_delay_s(dab, dilation), wall_delay_s(dba, dilation)) for lid, dab, dba in changes]


def data_path_plan(plan: "NetworkPlan", dilation: float, delays: bool = True) -> "NetworkPlan":
    """The plan as the data path is built with it: every link's rate / D and (with
    ``delays``) its initial delay x D. With ``delays=False``: only the rates, the view of
    a controller that measures port counters over wall seconds but weighs paths by
    emulated delay."""
    if dilation == 1.0:
        return plan
    links = tuple(dataclasses.replace(lk, rate_bps=wall_rate_bps(lk.rate_bps, dilation),
                                      delay_s=wall_delay_s(lk.delay_s, dilation) if delays else lk.delay_s)
                  for lk in plan.links)
    return dataclasses.replace(plan, links=links)


# -- what the testbed measures: wall -> emulated ---------------------------------------

def emulated_s(t_s, dilation: float):
    """A measured duration [s wall] -> emulated [s] (/ D). Not for Unix time stamps (those
    become orbital time through :class:`testbed.results.tables.TimeBase`)."""
    return t_s / dilation


def emulated_bps(bps, dilation: float):
    """A measured rate [bit per wall s] -> bit per emulated s (x D)."""
    return bps * dilation


def emulated_frame(df: "pd.DataFrame", dilation: float, durations: Sequence[str] = (),
                   rates: Sequence[str] = ()) -> "pd.DataFrame":
    """A copy of ``df`` with the ``durations`` columns [s] divided by D and the ``rates``
    columns [bit/s, or anything per second] multiplied by D; absent columns are skipped."""
    if dilation == 1.0 or df is None or not len(df.columns):
        return df
    out = df.copy()
    for c in durations:
        if c in out.columns:
            out[c] = emulated_s(out[c].astype(float), dilation)
    for c in rates:
        if c in out.columns:
            out[c] = emulated_bps(out[c].astype(float), dilation)
    return out


#: Columns of measured durations [s] per kind of record (everything else is a stamp, a count,
#: a byte total, or a planned value already in emulated units).
PROBE_DURATIONS = ("rtt_s", "one_way_s", "back_s", "turnaround_s")
WORKLOAD_DURATIONS = ("duration_s", "compute_s", "comm_s", "exposed_comm_s", "connect_s")
WORKLOAD_RATES = ("algbw_bps", "busbw_bps")
FLOW_DURATIONS = ("reported_s", "longest_stall_s")
CLOCK_DURATIONS = ("apply_s", "controller_s", "lag_s", "install_s", "done_lag_s")
PCAP_DURATIONS = ("one_way_s",)
