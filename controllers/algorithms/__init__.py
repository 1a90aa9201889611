"""Registry of routing algorithms.

Adding an algorithm = one module exposing ``ALGORITHM = Algorithm(...)``
(see :mod:`.base`) plus one line in ``_MODULES`` below; a complete example is
``examples/algos/widest.py`` (widest path, ties by delay), which a spec can also use
without editing this package (``[[algorithms]] path = "algos/widest.py"``, see
:func:`resolve_algorithm`).
An experiment selects a registered one with ``name = "..."`` and its
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
from .loader import is_algorithm_path, load_algorithm_file

__all__ = ["ALGORITHMS", "make_router", "resolve_algorithm", "load_algorithm_file", "Algorithm", "Param", "Router",
           "Routes", "RoutingContext"]

_MODULES = (
    min_hop,
    min_delay,
    ecmp_k,
    load_aware,
    predictive,
)

#: Algorithm name -> :class:`Algorithm`.  Read-only.
ALGORITHMS: Mapping[str, Algorithm] = MappingProxyType({m.ALGORITHM.name: m.ALGORITHM for m in _MODULES})


def resolve_algorithm(ref: str) -> Algorithm:
    """A registered algorithm by name, or a user's algorithm by the path of its file (``*.py``)."""
    if is_algorithm_path(ref):
        return load_algorithm_file(ref)
    algorithm = ALGORITHMS.get(ref)
    if algorithm is None:
        raise ParameterError(f"unknown routing algorithm {ref!r}; known: {', '.join(sorted(ALGORITHMS))}, "
                             "or the path of a .py file defining ALGORITHM")
    return algorithm


def make_router(name: str, params: Mapping[str, Any] | None = None) -> Router:
    """The router for algorithm ``name`` (a registered name or a ``.py`` path) with ``params`` validated.

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
    return resolve_algorithm(name).bind(params)
