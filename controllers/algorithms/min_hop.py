"""``min_hop``: fewest laser hops (OSPF with unit link weights).

Every up link costs 1; among equal-hop next hops the smallest neighbour id
wins, whatever the delays (this is the baseline that ignores geometry).
"""

from __future__ import annotations

from collections.abc import Set

import networkx as nx

from .base import Algorithm, Routes, RoutingContext
from .spt import IndexedGraph, best_next, distances


def route(graph: nx.Graph, destinations: Set[int], ctx: RoutingContext) -> Routes:
    """Single fewest-hop next hop per switch and destination.

    Parameters
    ----------
    graph : networkx.Graph
        Up links (attributes ignored).
    destinations : frozenset of int
        Switches with hosts attached.
    ctx : RoutingContext
        Unused.
    """
    indexed = IndexedGraph.from_graph(graph, weight=None)
    dest = indexed.indices(destinations)
    return indexed.routes_from_next(dest, best_next(indexed, distances(indexed, dest)))


ALGORITHM = Algorithm(
    name="min_hop",
    route=route,
    summary="fewest hops (unit link weights), ties to the smallest neighbour id",
)
