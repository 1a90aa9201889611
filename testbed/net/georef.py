"""Geometric reference: the propagation RTT the schedule promises between two nodes.

For each step, the least-delay path over the links that are up (what ``min_delay``
routing would use, with no queueing and no switching cost): RTT = 2 x its one-way delay.
Measured RTTs are compared with this reference in tests and in the results tables.

Also the payload rate a TCP flow can reach on a shaped link: the shaper counts whole
Ethernet frames, so the no-contention ideal time of a transfer uses the payload share.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from testbed.net.clock import LinkTimeline
from testbed.links.backends import MTU_FRAME_BYTES
from testbed.net.plan import NetworkPlan

#: TCP payload per full frame: 1500-byte MTU minus IPv4 (20), TCP (20) and timestamp option (12).
TCP_PAYLOAD_BYTES = 1448


def tcp_payload_rate_bps(link_rate_bps: float) -> float:
    """Highest TCP payload rate in bit/s on a link shaped at ``link_rate_bps`` (frames of 1514 B)."""
    return link_rate_bps * TCP_PAYLOAD_BYTES / MTU_FRAME_BYTES


def geo_rtt_s(plan: NetworkPlan, timeline: LinkTimeline, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Shape (n_steps, len(pairs)): 2 x least one-way delay per step; inf where unreachable."""
    out = np.full((timeline.n_steps, len(pairs)), np.inf)
    sources = sorted({a for a, _ in pairs})
    for k in range(timeline.n_steps):
        g = nx.Graph()
        g.add_nodes_from(s.node_id for s in plan.switches)
        for lk in plan.links:
            if timeline.up[k, lk.link_id]:
                g.add_edge(lk.a, lk.b, delay_s=float(timeline.delay_s[k, lk.link_id]))
        for src in sources:
            dist = nx.single_source_dijkstra_path_length(g, src, weight="delay_s")
            for j, (a, b) in enumerate(pairs):
                if a == src and b in dist:
                    out[k, j] = 2 * dist[b]
    return out
