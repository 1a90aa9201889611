"""Registry of routing algorithms.

Adding an algorithm = one module exposing ``ALGORITHM = Algorithm(...)``
(see :mod:`.base`) plus one line in ``_MODULES`` below.  A complete example,
``controllers/algorithms/max_capacity.py`` (widest path, ties by delay)::

    from .base import Algorithm, Param, RoutingContext, positive
    from .spt import IndexedGraph, best_next, distances

    def route(graph, destinations, ctx: RoutingContext, *, reference_bps=200e9):
        # cost of a link: its delay, scaled up on thinner links
        cost = lambda u, v, data: data["delay_s"] * reference_bps / data["capacity_bps"]
        indexed = IndexedGraph.from_graph(graph, cost)
        dest = indexed.indices(destinations)
        return indexed.routes_from_next(dest, best_next(indexed, distances(indexed, dest)))

    ALGORITHM = Algorithm(
        name="max_capacity",
        route=route,
        params=(Param("reference_bps", float, 200e9, "capacity that costs plain delay", (positive,)),),
        summary="delay weighted by reference_bps / capacity_bps",
    )

then ``from . import max_capacity`` and ``max_capacity,`` in ``_MODULES``.
An experiment selects it with ``algorithm = "max_capacity"`` and its
parameters; unknown or bad parameters are rejected before the run starts.
Routing through :mod:`.spt` gives the shared guarantees for free: every
next hop strictly decreases the cost-distance (no loops) and ties go to
the smallest neighbour id (determinism).  The property tests in
``tests/test_routing_algorithms.py`` run over every registered algorithm.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..errors import ParameterError
from . import ecmp_k, load_aware, min_delay, min_hop, predictive
from .base import Algorithm, Param, Router, Routes, RoutingContext

__all__ = ["ALGORITHMS", "make_router", "Algorithm", "Param", "Router", "Routes", "RoutingContext"]

_MODULES = (
    min_hop,
    min_delay,
    ecmp_k,
    load_aware,
    predictive,
)

#: Algorithm name -> :class:`Algorithm`.  Read-only.
ALGORITHMS: Mapping[str, Algorithm] = MappingProxyType({m.ALGORITHM.name: m.ALGORITHM for m in _MODULES})


def make_router(name: str, params: Mapping[str, Any] | None = None) -> Router:
    """The router for algorithm ``name`` with ``params`` validated.

    Returns
    -------
    Router
        Callable ``router(graph, destinations, ctx) -> Routes``.

    Raises
    ------
    ParameterError
        (a :class:`~controllers.errors.RoutingError`, a ``ValueError``) on an
        unknown algorithm, unknown parameter or bad value; the message names it.
    """
    algorithm = ALGORITHMS.get(name)
    if algorithm is None:
        raise ParameterError(f"unknown routing algorithm {name!r}; known: {', '.join(sorted(ALGORITHMS))}")
    return algorithm.bind(params)
