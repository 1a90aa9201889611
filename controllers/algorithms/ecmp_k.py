"""``ecmp_k``: up to ``k`` next hops per destination, spread per flow.

The switch hashes each flow (OpenFlow select group on the 5-tuple) over the
next hops, equal weights.

Which next hops, and why the union cannot loop
    Full k-shortest-paths (Yen) per switch pair is far too slow for 1,584
    switches and loops are easy to create when each switch follows its own
    path set.  Instead each switch ``u`` considers, for destination ``d``,
    only *downhill* neighbours ``v`` -- those strictly closer to ``d`` in
    least delay, ``dist(v, d) < dist(u, d)`` (the feasibility condition of
    loop-free multipath routing, as in EIGRP/LFA) -- and keeps the ``k`` whose
    best path ``delay(u, v) + dist(v, d)`` is cheapest.  Each hop strictly
    decreases ``dist(., d)``, so every walk through the union of all
    switches' choices reaches ``d``: no loop is possible, whatever mix of
    buckets the hashes pick.  The least-delay neighbour always qualifies, so
    ``ecmp_k`` with ``k = 1`` is ``min_delay``.

Bounded stretch
    A neighbour is also required to satisfy ``delay(u, v) + (1 + s) *
    dist(v, d) <= (1 + s) * dist(u, d)`` with ``s = max_stretch``; then
    *every* path a packet can take is at most ``(1 + s)`` times the least
    delay, end to end (induction from ``d``).  ``s = 0`` is strict
    equal-cost multipath; ``s = inf`` any downhill neighbour.
"""

from __future__ import annotations

from collections.abc import Set

import networkx as nx

from .base import Algorithm, Param, Routes, RoutingContext, at_least, non_negative
from .spt import IndexedGraph, distances, multipath_masks


def route(
    graph: nx.Graph, destinations: Set[int], ctx: RoutingContext, *, k: int = 4, max_stretch: float = 0.5
) -> Routes:
    """Up to ``k`` loop-free least-delay next hops, equal weights.

    Parameters
    ----------
    graph : networkx.Graph
        Up links with ``delay_s`` (s).
    destinations : frozenset of int
        Switches with hosts attached.
    ctx : RoutingContext
        Unused.
    k : int
        Maximum number of next hops per switch and destination, >= 1.
    max_stretch : float
        Every path used is at most ``(1 + max_stretch)`` times the least
        delay (see module doc); ``inf`` = any downhill neighbour.
    """
    indexed = IndexedGraph.from_graph(graph, "delay_s")
    dest = indexed.indices(destinations)
    dist = distances(indexed, dest)
    return indexed.routes_from_masks(dest, multipath_masks(indexed, dist, k, max_stretch))


ALGORITHM = Algorithm(
    name="ecmp_k",
    route=route,
    params=(
        Param("k", int, 4, "maximum next hops per switch and destination", (at_least(1),)),
        Param(
            "max_stretch",
            float,
            0.5,
            "every path used has delay <= (1 + max_stretch) x least delay (inf: any downhill neighbour)",
            (non_negative,),
            allow_inf=True,
        ),
    ),
    summary="up to k loop-free (strictly downhill) least-delay next hops, select-group hashing per flow",
)
