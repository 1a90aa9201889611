"""``load_aware``: least delay plus a congestion cost, with hysteresis.

Link cost
    The cost of sending on directed link ``u -> v`` is its propagation delay
    plus a queueing-like penalty from the measured utilisation
    ``rho = ctx.utilisation[(u, v)]`` (fraction of capacity, from port
    counters)::

        cost(u -> v) = delay_s + alpha_s * rho' / (1 - rho'),   rho' = min(rho, rho_max)

    ``rho / (1 - rho)`` is the mean number waiting in an M/M/1 queue: near
    zero for a lightly used link, steep as the link fills, so ``alpha_s``
    (seconds) reads as "extra delay charged when a link is half full".
    Links without a measurement count as idle.

Own traffic
    A flow's own load on the links it uses is not a reason to leave them:
    with one elephant flow on two equal paths, charging it for its own load
    moves it at every poll (the link it leaves goes idle, the one it joins
    fills). Where ``ctx.own_utilisation`` says how a link's load splits by
    destination, routes towards ``d`` are computed on the other destinations'
    shares only (on links without such counters, on the total as before).

Hysteresis
    Measurements are noisy, and moving traffic changes the next measurement,
    so plain least-cost routing flaps.  For each switch and destination the
    next hop in force (``ctx.previous``) is kept while it is still usable and
    the best path through it costs at most ``(1 + hysteresis)`` times the
    least cost: a route moves only when the new one is better by more than
    the hysteresis.  "Usable" also means *downhill* -- the kept neighbour is
    strictly closer to the destination under the current costs -- so kept
    and new next hops together still cannot form a loop (every hop strictly
    decreases the current cost-distance).
"""

from __future__ import annotations

from collections.abc import Mapping, Set

import networkx as nx
import numpy as np

from .base import Algorithm, Param, Routes, RoutingContext, below, non_negative, positive
from .spt import IndexedGraph, best_next, distances, pick_first, via_costs


def congestion_costs(
    indexed: IndexedGraph, utilisation: Mapping[tuple[int, int], float], alpha_s: float, rho_max: float
) -> np.ndarray:
    """``(N, W)`` directed link costs: delay plus congestion penalty (s).

    Utilisation entries for links that are not in the graph (e.g. a link
    that just went down) are ignored.
    """
    rho = np.zeros(indexed.out_cost.shape)
    slots = indexed.slots
    for edge, value in utilisation.items():
        slot = slots.get(edge)
        if slot is not None:
            rho[slot] = value
    rho = np.minimum(rho, rho_max)
    return indexed.out_cost + alpha_s * rho / (1.0 - rho)


def _previous_masks(
    indexed: IndexedGraph, dest: np.ndarray, previous: Routes
) -> np.ndarray:
    """``(D, N)`` bit masks of the next hops in force that are still links."""
    masks = np.zeros((dest.size, indexed.size), dtype=np.int64)
    slots = indexed.slots
    nodes = indexed.nodes
    index = indexed.index
    dest_ids = [nodes[int(d)] for d in dest]
    memo: dict[tuple, int] = {}
    for u, by_dest in previous.items():
        ui = index.get(u)
        if ui is None:
            continue
        for j, d in enumerate(dest_ids):
            hops = by_dest.get(d)
            if not hops:
                continue
            key = (u, hops)
            mask = memo.get(key)
            if mask is None:
                mask = 0
                for v, weight in hops:
                    slot = slots.get((u, v))
                    if slot is not None and weight > 0:
                        mask |= 1 << slot[1]
                memo[key] = mask
            masks[j, ui] = mask
    return masks


def route(
    graph: nx.Graph,
    destinations: Set[int],
    ctx: RoutingContext,
    *,
    alpha_s: float = 0.01,
    rho_max: float = 0.95,
    hysteresis: float = 0.1,
) -> Routes:
    """Single next hop per switch and destination on delay + congestion cost.

    Parameters
    ----------
    graph : networkx.Graph
        Up links with ``delay_s`` (s).
    destinations : frozenset of int
        Switches with hosts attached.
    ctx : RoutingContext
        ``utilisation`` (directed, fraction of capacity), ``own_utilisation``
        (its per-destination shares, when measured) and ``previous`` (routes in
        force) are used.
    alpha_s : float
        Congestion penalty scale, seconds (penalty at 50 % load).
    rho_max : float
        Utilisation is clipped to this (< 1) so costs stay finite.
    hysteresis : float
        Relative margin a new next hop must win by to replace the one in force.
    """
    base = IndexedGraph.from_graph(graph, "delay_s")
    destinations = frozenset(destinations)
    knobs = (ctx.previous, alpha_s, rho_max, hysteresis)
    # With rule counters (own_utilisation non-empty), a link's load is the sum of its
    # per-destination shares and each destination is routed on the other destinations'
    # shares; links of switches whose rules were not read count their total. Destinations
    # with no share anywhere all see the same load and share one computation.
    own = ctx.own_utilisation
    measured = sorted({d for shares in own.values() for d, u in shares.items() if u > 0} & destinations)
    shared = destinations.difference(measured)

    def load_without(d: int | None) -> dict[tuple[int, int], float]:
        if not own:
            return dict(ctx.utilisation)
        load = {edge: rho for edge, rho in ctx.utilisation.items() if edge not in own}
        load.update({edge: sum(u for dst, u in shares.items() if dst != d) for edge, shares in own.items()})
        return load

    routes: Routes = _route_on(base, shared, load_without(None), *knobs) if shared else {}
    for d in measured:
        for u, by_dest in _route_on(base, frozenset((d,)), load_without(d), *knobs).items():
            routes.setdefault(u, {}).update(by_dest)
    return routes


def _route_on(base: IndexedGraph, destinations: Set[int], utilisation: Mapping[tuple[int, int], float],
              previous: Routes | None, alpha_s: float, rho_max: float, hysteresis: float) -> Routes:
    """Routes towards ``destinations`` on delay + congestion from ``utilisation``, with hysteresis."""
    indexed = base.with_costs(congestion_costs(base, utilisation, alpha_s, rho_max))
    dest = indexed.indices(destinations)
    dist = distances(indexed, dest)
    next_idx = best_next(indexed, dist)
    if previous:
        via, downhill = via_costs(indexed, dist)
        prev = _previous_masks(indexed, dest, previous)
        bits = np.left_shift(1, np.arange(indexed.nbr.shape[1], dtype=np.int64))
        in_force = (prev[:, :, None] & bits) != 0
        keepable = in_force & downhill & (via <= (1.0 + hysteresis) * dist[:, :, None])
        # among next hops in force that may stay, the cheapest (smallest id on ties)
        cheapest = np.where(keepable, via, np.inf).min(axis=2)
        kept = pick_first(indexed, keepable & (via == cheapest[:, :, None]))
        next_idx = np.where(kept >= 0, kept, next_idx)
    return indexed.routes_from_next(dest, next_idx)


ALGORITHM = Algorithm(
    name="load_aware",
    route=route,
    params=(
        Param("alpha_s", float, 0.01, "congestion penalty scale in seconds (extra cost at 50% load)", (non_negative,)),
        Param("rho_max", float, 0.95, "utilisation is clipped to this before the penalty", (positive, below(1.0))),
        Param("hysteresis", float, 0.1, "keep the next hop in force unless the new one is better by this fraction", (non_negative,)),
    ),
    summary="delay + M/M/1-like congestion cost from port and rule counters (not chased by its own traffic), hysteresis",
    uses_utilisation=True,
)
