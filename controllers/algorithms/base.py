"""What every routing algorithm takes and returns, and how it is registered.

An algorithm is a pure function::

    route(graph, destinations, ctx, **params) -> Routes

* ``graph`` -- :class:`networkx.Graph` of up links (see
  :func:`controllers.graph.to_graph`), edge attributes ``delay_s`` and
  ``capacity_bps``.
* ``destinations`` -- frozenset of switch ids that have hosts attached.
* ``ctx`` -- :class:`RoutingContext`: time, upcoming snapshots, measured
  utilisation and the routes in force.
* ``params`` -- the algorithm's own parameters, already validated.

It returns :data:`Routes`: ``routes[switch][destination]`` is an ordered tuple
of ``(next_hop_neighbour, weight)`` pairs, sorted by neighbour id, weights
summing to 1.  A switch has no entry for itself as destination nor for a
destination it cannot reach.  Every switch of the graph is a key of
``routes`` (possibly with an empty dict).

An :class:`Algorithm` bundles the function with its :class:`Param` specs;
:meth:`Algorithm.bind` validates a parameter dict (unknown names and bad
values raise :class:`~controllers.errors.ParameterError` naming the parameter)
and returns a :class:`Router`, the callable the adapter uses each step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import networkx as nx

from ..errors import ParameterError, RoutingError

__all__ = [
    "Routes",
    "NextHops",
    "RoutingContext",
    "Param",
    "Algorithm",
    "Router",
    "RouteFunction",
    "positive",
    "non_negative",
    "at_least",
    "below",
    "validate_routes",
    "ParameterProblems",
]

#: ``(neighbour switch id, weight)`` pairs for one switch and destination.
NextHops = tuple[tuple[int, float], ...]
#: switch id -> destination switch id -> next hops.
Routes = dict[int, dict[int, NextHops]]
#: Signature of an algorithm's function.
RouteFunction = Callable[..., Routes]

_EMPTY: Mapping[tuple[int, int], float] = MappingProxyType({})


@dataclass(frozen=True)
class RoutingContext:
    """Everything besides the current graph that an algorithm may use.

    Attributes
    ----------
    t_s : float
        Orbital time of the current snapshot, seconds.
    future : tuple of (float, networkx.Graph)
        Upcoming snapshots from the schedule as ``(t_s, graph)`` in strictly
        increasing time order (absolute times, same clock as ``t_s``).
        May be empty.  Used by ``predictive``.
    utilisation : mapping (int, int) -> float
        Measured load of directed link ``u -> v`` as a fraction of its
        capacity (0 = idle, 1 = full).  May be empty (no measurement = idle).
        Used by ``load_aware``.
    own_utilisation : mapping (int, int) -> mapping int -> float
        The part of ``utilisation[(u, v)]`` that is traffic towards destination switch
        ``d``: ``own_utilisation[(u, v)][d]`` (from per-destination rule counters).
        May be empty (not measured). ``load_aware`` routes towards ``d`` on the other
        destinations' shares, so a flow is not chased by its own load.
    previous : Routes or None
        The routes in force before this computation, for hysteresis.
    """

    t_s: float
    future: tuple[tuple[float, nx.Graph], ...] = ()
    utilisation: Mapping[tuple[int, int], float] = field(default_factory=lambda: _EMPTY)
    previous: Routes | None = None
    own_utilisation: Mapping[tuple[int, int], Mapping[int, float]] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if isinstance(self.t_s, bool) or not isinstance(self.t_s, (int, float)) or not math.isfinite(self.t_s):
            raise RoutingError(f"RoutingContext.t_s must be a finite number, got {self.t_s!r}")
        future = tuple(self.future)
        last = -math.inf
        for i, item in enumerate(future):
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], nx.Graph)):
                raise RoutingError(f"RoutingContext.future[{i}] must be a (t_s, networkx.Graph) pair")
            if isinstance(item[0], bool) or not isinstance(item[0], (int, float)) or not math.isfinite(item[0]):
                raise RoutingError(f"RoutingContext.future[{i}]: time must be a finite number, got {item[0]!r}")
            if not item[0] > last:
                raise RoutingError("RoutingContext.future must be in strictly increasing time order")
            last = item[0]
        object.__setattr__(self, "future", future)
        for edge, value in self.utilisation.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise RoutingError(f"RoutingContext.utilisation[{edge!r}] must be a number >= 0, got {value!r}")


# -- parameter validation ----------------------------------------------------

class ParameterProblems(ParameterError):
    """Every bad parameter of one algorithm, as data and as one line each.

    Attributes
    ----------
    algorithm : str
        The algorithm's name.
    problems : tuple of (str or None, str)
        ``(parameter, problem)`` pairs, e.g. ``("k", "must be >= 1, got 0")`` or
        ``("horizon", "unknown parameter; allowed: horizon_s, penalty_s")``;
        parameter None for a rule across parameters.
    """

    def __init__(self, algorithm: str, problems: Iterable[tuple[str | None, str]], lines: Iterable[str]):
        self.algorithm = algorithm
        self.problems = tuple(problems)
        super().__init__("\n".join(lines))


Check = Callable[[Any], str | None]


def positive(value: float) -> str | None:
    """Check: value > 0."""
    return None if value > 0 else "must be > 0"


def non_negative(value: float) -> str | None:
    """Check: value >= 0."""
    return None if value >= 0 else "must be >= 0"


def at_least(minimum: float) -> Check:
    """Check factory: value >= minimum."""

    def check(value: float) -> str | None:
        return None if value >= minimum else f"must be >= {minimum}"

    return check


def below(limit: float) -> Check:
    """Check factory: value < limit."""

    def check(value: float) -> str | None:
        return None if value < limit else f"must be < {limit}"

    return check


@dataclass(frozen=True)
class Param:
    """Specification of one algorithm parameter.

    Attributes
    ----------
    name : str
        Parameter name as written in the experiment spec (units in the name).
    kind : type
        ``int``, ``float``, ``bool`` or ``str``.  ``float`` accepts ints
        (converted); no kind accepts a bool except ``bool``.
    default : Any
        Value used when the spec omits the parameter.
    doc : str
        One line for the README and error messages.
    checks : tuple of callables
        Each returns an error text or None.  Floats must also be finite
        unless ``allow_inf``.
    """

    name: str
    kind: type
    default: Any
    doc: str
    checks: tuple[Check, ...] = ()
    allow_inf: bool = False

    def validate(self, algorithm: str, value: Any) -> Any:
        """Return ``value`` converted to ``kind``, or raise :class:`ParameterProblems`."""
        where = f"algorithm {algorithm!r}, parameter {self.name!r}"

        def fail(problem: str) -> ParameterProblems:
            return ParameterProblems(algorithm, [(self.name, problem)], [f"{where}: {problem}"])

        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok:
                value = float(value)
                if math.isnan(value) or (math.isinf(value) and not self.allow_inf):
                    raise fail(f"must be a finite number, got {value!r}")
        else:
            ok = isinstance(value, self.kind)
        if not ok:
            raise fail(f"expected {self.kind.__name__}, got {value!r} ({type(value).__name__})")
        for check in self.checks:
            problem = check(value)
            if problem:
                raise fail(f"{problem}, got {value!r}")
        return value


@dataclass(frozen=True)
class Algorithm:
    """A registered routing algorithm: name, function and parameter specs."""

    name: str
    route: RouteFunction
    params: tuple[Param, ...] = ()
    summary: str = ""
    #: True if routes depend on ``ctx.utilisation``: the controller then re-routes when
    #: port counters change; for every other algorithm it only records them.
    uses_utilisation: bool = False
    #: True if routes depend on ``ctx.future``: only then does the testbed send upcoming
    #: snapshots (at 3,363 switches, ten of them cost ~0.9 s of controller time per step).
    uses_future: bool = False

    def __post_init__(self) -> None:
        for param in self.params:  # defaults must themselves be valid
            param.validate(self.name, param.default)

    def validate(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Full parameter dict: defaults overlaid with validated ``params``.

        Raises
        ------
        ParameterProblems
            (a ParameterError) naming every unknown name and every value with the wrong
            type or range at once.
        """
        params = dict(params or {})
        specs = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(specs), key=str)
        allowed = ", ".join(sorted(specs)) or "none"
        problems: list[tuple[str | None, str]] = [(name, f"unknown parameter; allowed: {allowed}") for name in unknown]
        lines = [f"algorithm {self.name!r}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                 f"allowed: {allowed}"] if unknown else []
        out = {}
        for name, spec in specs.items():
            try:
                out[name] = spec.validate(self.name, params.get(name, spec.default))
            except ParameterProblems as err:
                problems.extend(err.problems)
                lines.append(str(err))
        if problems:
            raise ParameterProblems(self.name, problems, lines)
        return out

    def bind(self, params: Mapping[str, Any] | None = None) -> "Router":
        """Validate ``params`` and return a ready-to-call :class:`Router`."""
        return Router(self, MappingProxyType(self.validate(params)))


@dataclass(frozen=True)
class Router:
    """An algorithm with validated parameters: ``router(graph, destinations, ctx)``.

    Checks the inputs every algorithm relies on (an undirected simple graph,
    destinations that are nodes of it) before delegating.
    """

    algorithm: Algorithm
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.algorithm.name

    def __call__(self, graph: nx.Graph, destinations: Iterable[int], ctx: RoutingContext) -> Routes:
        if not isinstance(graph, nx.Graph) or graph.is_directed() or graph.is_multigraph():
            raise RoutingError("routing needs an undirected networkx.Graph (see controllers.graph.to_graph)")
        destinations = frozenset(destinations)
        missing = sorted(d for d in destinations if d not in graph)
        if missing:
            raise RoutingError(f"destination switch(es) {missing} are not nodes of the graph")
        if not isinstance(ctx, RoutingContext):
            raise RoutingError(f"ctx must be a RoutingContext, got {type(ctx).__name__}")
        return self.algorithm.route(graph, destinations, ctx, **self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Router({self.name}: {args})"


def validate_routes(graph: nx.Graph, routes: Routes, destinations: Iterable[int] | None = None) -> None:
    """Check that ``routes`` has the shape promised by :data:`Routes`.

    Every key is a switch of ``graph``; no switch routes to itself; every
    destination is in ``destinations`` (if given); next hops are graph
    neighbours, distinct, sorted by id, with weights > 0 summing to 1.
    Does not check reachability or loops (the tests trace packets for that: ``tests/fakeoftable.py``).

    Raises
    ------
    RoutingError
        Naming the first offending switch and destination.
    """
    allowed = None if destinations is None else frozenset(destinations)
    for u, by_dest in routes.items():
        if u not in graph:
            raise RoutingError(f"routes: switch {u!r} is not in the graph")
        for d, hops in by_dest.items():
            where = f"routes[{u!r}][{d!r}]"
            if d == u:
                raise RoutingError(f"{where}: a switch must not route to itself")
            if allowed is not None and d not in allowed:
                raise RoutingError(f"{where}: {d!r} is not a destination")
            if not isinstance(hops, tuple) or not hops:
                raise RoutingError(f"{where}: must be a non-empty tuple of (neighbour, weight)")
            neighbours = [v for v, _ in hops]
            if neighbours != sorted(set(neighbours)):
                raise RoutingError(f"{where}: next hops must be distinct and sorted by id, got {neighbours}")
            for v, weight in hops:
                if not graph.has_edge(u, v):
                    raise RoutingError(f"{where}: next hop {v!r} is not a neighbour over an up link")
                if not (isinstance(weight, float) and weight > 0):
                    raise RoutingError(f"{where}: weight of {v!r} must be a float > 0, got {weight!r}")
            total = math.fsum(w for _, w in hops)
            if abs(total - 1.0) > 1e-9:
                raise RoutingError(f"{where}: weights sum to {total}, not 1")
