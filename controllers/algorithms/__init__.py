"""Registry of routing algorithms.

Adding an algorithm = one module exposing ``ALGORITHM = Algorithm(...)``
(see :mod:`.base`) plus one line in ``_MODULES`` below.
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
