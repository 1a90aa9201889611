"""Widest path, ties by delay: a routing algorithm of your own, outside the package.

A spec uses it with ``[[algorithms]] path = "algos/widest.py"`` (relative to the spec);
the module defines ``ALGORITHM`` exactly as the built-in ones in controllers/algorithms/ do.
The cost of a link is its delay scaled up on thinner links, so the route prefers links
with more capacity and, among equal ones, the shorter.
"""

from controllers.algorithms.base import Algorithm, Param, RoutingContext, positive
from controllers.algorithms.spt import IndexedGraph, best_next, distances


def route(graph, destinations, ctx: RoutingContext, *, reference_bps=200e9):
    def cost(u, v, data):
        return data["delay_s"] * reference_bps / data["capacity_bps"]
    indexed = IndexedGraph.from_graph(graph, cost)
    dest = indexed.indices(destinations)
    return indexed.routes_from_next(dest, best_next(indexed, distances(indexed, dest)))


ALGORITHM = Algorithm(
    name="widest",
    route=route,
    params=(Param("reference_bps", float, 200e9, "capacity whose links cost plain delay", (positive,)),),
    summary="delay weighted by reference_bps / capacity_bps (prefers wide links)",
)
