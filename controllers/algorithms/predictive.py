"""``predictive``: move traffic off links before they go down (make-before-break).

Satellite motion is predictable, so the schedule says when a laser link will
drop (an inter-plane link switched off near the poles, a lost line of sight).
A reactive algorithm such as ``min_delay`` keeps using the link until it is
gone and then reroutes: packets in flight or sent before the new rules land
are lost.  ``predictive`` reroutes *while the old link still works*:

1. Look at the upcoming snapshots in ``ctx.future`` with
   ``ctx.t_s < t <= ctx.t_s + horizon_s``.  A link that is up now but
   missing (down) in any of them is *doomed*.
2. Route on least delay, with every doomed link charged ``penalty_s`` extra
   in both directions.  With ``penalty_s`` larger than any path delay
   (default 1 s; laser-mesh paths are < 0.3 s), a doomed link is used only
   where no other path exists, so a partition is never created early.
3. Rules for the new paths go in while the doomed link still carries
   traffic (make); the link then goes down with nothing routed over it
   (break).  The horizon must cover the control loop: route computation,
   flow-mod installation on every switch, and the in-flight time of the
   last packets on the old path (one path delay) -- the default 2 s leaves
   a wide margin at typical 1 s schedule steps.

Without future snapshots (or none inside the horizon) ``predictive`` is
exactly ``min_delay``.  Links that will come *up* are not used early: a
link can only carry traffic once it exists.
"""

from __future__ import annotations

from collections.abc import Set

import networkx as nx

from .base import Algorithm, Param, Routes, RoutingContext, non_negative, positive
from .spt import IndexedGraph, best_next, distances


def doomed_links(graph: nx.Graph, ctx: RoutingContext, horizon_s: float) -> set[tuple[int, int]]:
    """Canonical ``(min, max)`` links up in ``graph`` but down in some future
    snapshot within ``(ctx.t_s, ctx.t_s + horizon_s]``."""
    doomed: set[tuple[int, int]] = set()
    for t_s, future in ctx.future:
        if ctx.t_s < t_s <= ctx.t_s + horizon_s:
            doomed.update(
                (min(u, v), max(u, v)) for u, v in graph.edges() if not future.has_edge(u, v)
            )
    return doomed


def route(
    graph: nx.Graph,
    destinations: Set[int],
    ctx: RoutingContext,
    *,
    horizon_s: float = 2.0,
    penalty_s: float = 1.0,
) -> Routes:
    """Least-delay next hops that avoid links going down within ``horizon_s``.

    Parameters
    ----------
    graph : networkx.Graph
        Up links with ``delay_s`` (s).
    destinations : frozenset of int
        Switches with hosts attached.
    ctx : RoutingContext
        ``t_s`` and ``future`` (upcoming ``(t_s, graph)`` snapshots) are used.
    horizon_s : float
        How far ahead to look, seconds.
    penalty_s : float
        Extra cost of a doomed link, seconds; keep it above any path delay.
    """
    indexed = IndexedGraph.from_graph(graph, "delay_s")
    doomed = doomed_links(graph, ctx, horizon_s)
    if doomed:
        cost = indexed.out_cost.copy()
        slots = indexed.slots
        for u, v in doomed:
            cost[slots[(u, v)]] += penalty_s
            cost[slots[(v, u)]] += penalty_s
        indexed = indexed.with_costs(cost)
    dest = indexed.indices(destinations)
    return indexed.routes_from_next(dest, best_next(indexed, distances(indexed, dest)))


ALGORITHM = Algorithm(
    name="predictive",
    route=route,
    params=(
        Param("horizon_s", float, 2.0, "avoid links that go down within this many seconds", (non_negative,)),
        Param("penalty_s", float, 1.0, "extra cost of a doomed link in seconds (above any path delay)", (positive,)),
    ),
    summary="least delay avoiding links the schedule takes down within horizon_s (make-before-break)",
    uses_future=True,
)
