"""``min_delay``: least propagation delay (Dijkstra on ``delay_s``).

What Hypatia models: each switch forwards to the neighbour on a least-delay
path, one shortest-path tree per destination.  Ties go to the smallest
neighbour id.
"""

from __future__ import annotations

from collections.abc import Set

import networkx as nx

from .base import Algorithm, Routes, RoutingContext
from .spt import IndexedGraph, best_next, distances


def route(graph: nx.Graph, destinations: Set[int], ctx: RoutingContext) -> Routes:
    """Single least-delay next hop per switch and destination.

    Parameters
    ----------
    graph : networkx.Graph
        Up links with ``delay_s`` (s).
    destinations : frozenset of int
        Switches with hosts attached.
    ctx : RoutingContext
        Unused.
    """
    indexed = IndexedGraph.from_graph(graph, "delay_s")
    dest = indexed.indices(destinations)
    return indexed.routes_from_next(dest, best_next(indexed, distances(indexed, dest)))


ALGORITHM = Algorithm(
    name="min_delay",
    route=route,
    summary="least one-way propagation delay, one shortest-path tree per destination",
)
