"""Registry, parameter validation, router input checks, and purity (no os-ken)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import controllers
from controllers import (
    ALGORITHMS,
    Algorithm,
    Param,
    ParameterError,
    RoutingContext,
    RoutingError,
    make_router,
)
from controllers.algorithms.base import at_least
from synthetic import ring

REPO = Path(__file__).resolve().parents[1]
PURE_MODULES = [
    "controllers",
    "controllers.errors",
    "controllers.graph",
    "controllers.rules",
    "controllers.diff",
    "controllers.ofmsg",
    "controllers.counters",
    "controllers.session",
    "controllers.algorithms",
    "controllers.algorithms.base",
    "controllers.algorithms.spt",
] + [f"controllers.algorithms.{name}" for name in ALGORITHMS]


def test_routing_core_never_imports_os_ken():
    code = (
        "import importlib, json, sys\n"
        f"for name in {PURE_MODULES!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('os_ken', 'ryu', 'eventlet'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_registry_lists_every_shipped_algorithm_module_and_is_read_only():
    """Every module of controllers/algorithms/ that defines ALGORITHM is registered (the list is
    read from the folder, not written here), under its own name."""
    import importlib
    folder = REPO / "controllers" / "algorithms"
    shipped = {}
    for path in sorted(folder.glob("*.py")):
        module = importlib.import_module(f"controllers.algorithms.{path.stem}")
        if hasattr(module, "ALGORITHM"):
            shipped[module.ALGORITHM.name] = module.ALGORITHM
    assert shipped and dict(ALGORITHMS) == shipped
    for name, algorithm in ALGORITHMS.items():
        assert algorithm.name == name and algorithm.summary
        assert callable(algorithm.route)
    with pytest.raises(TypeError):
        ALGORITHMS["mine"] = ALGORITHMS["min_hop"]


def test_defaults():
    assert make_router("ecmp_k").params == {"k": 4, "max_stretch": 0.5}
    assert make_router("predictive", {"horizon_s": 5}).params == {"horizon_s": 5.0, "penalty_s": 1.0}
    assert make_router("min_delay", None).params == {}
    assert "ecmp_k" in repr(make_router("ecmp_k"))


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("shortest", {}, "unknown routing algorithm 'shortest'"),
        ("min_delay", {"k": 2}, "algorithm 'min_delay': unknown parameter(s) 'k'; allowed: none"),
        ("ecmp_k", {"kk": 2}, "unknown parameter(s) 'kk'; allowed: k, max_stretch"),
        ("ecmp_k", {"k": 0}, "parameter 'k': must be >= 1"),
        ("ecmp_k", {"k": "4"}, "parameter 'k': expected int"),
        ("ecmp_k", {"k": 2.0}, "parameter 'k': expected int"),
        ("ecmp_k", {"k": True}, "parameter 'k': expected int"),
        ("ecmp_k", {"max_stretch": -0.1}, "parameter 'max_stretch': must be >= 0"),
        ("ecmp_k", {"max_stretch": math.nan}, "parameter 'max_stretch': must be a finite number"),
        ("load_aware", {"rho_max": 1.0}, "parameter 'rho_max': must be < 1.0"),
        ("load_aware", {"alpha_s": math.inf}, "parameter 'alpha_s': must be a finite number"),
        ("load_aware", {"hysteresis": -1}, "parameter 'hysteresis': must be >= 0"),
        ("predictive", {"horizon_s": -1.0}, "parameter 'horizon_s': must be >= 0"),
        ("predictive", {"penalty_s": 0}, "parameter 'penalty_s': must be > 0"),
    ],
)
def test_bad_names_and_parameters_are_rejected_by_name(name, params, fragment):
    with pytest.raises(ParameterError) as info:
        make_router(name, params)
    assert fragment in str(info.value)
    assert isinstance(info.value, RoutingError) and isinstance(info.value, ValueError)
    assert isinstance(info.value, controllers.RoutingError)


def test_infinite_stretch_is_allowed():
    assert make_router("ecmp_k", {"max_stretch": math.inf}).params["max_stretch"] == math.inf


def test_router_checks_its_inputs():
    graph = ring(4)
    router = make_router("min_delay")
    with pytest.raises(RoutingError, match=r"destination switch\(es\) \[9\] are not nodes"):
        router(graph, frozenset({9}), RoutingContext(t_s=0.0))
    with pytest.raises(RoutingError, match="undirected"):
        router(nx.DiGraph(graph), frozenset({1}), RoutingContext(t_s=0.0))
    with pytest.raises(RoutingError, match="RoutingContext"):
        router(graph, frozenset({1}), None)
    assert router(graph, [1], RoutingContext(t_s=0.0)) == router(graph, frozenset({1}), RoutingContext(t_s=0.0))


def test_routing_context_validation():
    graph = ring(4)
    with pytest.raises(RoutingError, match="strictly increasing"):
        RoutingContext(t_s=0.0, future=((2.0, graph), (1.0, graph)))
    with pytest.raises(RoutingError, match="pair"):
        RoutingContext(t_s=0.0, future=((1.0, "graph"),))
    with pytest.raises(RoutingError, match="utilisation"):
        RoutingContext(t_s=0.0, utilisation={(0, 1): -0.5})
    with pytest.raises(RoutingError, match="t_s"):
        RoutingContext(t_s=math.nan)
    assert RoutingContext(t_s=1.0).utilisation == {}


def test_a_new_algorithm_is_one_function_and_one_algorithm_value():
    """What a new module provides; registering it is one line in _MODULES."""

    def route(graph, destinations, ctx, *, hops):
        return {u: {d: ((min(graph[u]), 1.0),) for d in destinations if d != u} for u in sorted(graph)}

    toy = Algorithm("toy", route, (Param("hops", int, 1, "example", (at_least(1),)),), "example only")
    router = toy.bind({"hops": 2})
    assert router(ring(3), frozenset({0}), RoutingContext(t_s=0.0)) == {0: {}, 1: {0: ((0, 1.0),)}, 2: {0: ((0, 1.0),)}}
    with pytest.raises(ParameterError, match="'toy', parameter 'hops'"):
        toy.bind({"hops": 0})
    with pytest.raises(ParameterError):  # a bad default is caught when the module is imported
        Algorithm("broken", route, (Param("hops", int, 0, "example", (at_least(1),)),))


def test_documented_examples_run():
    """The doctests, and the complete example the registry's docstring points to
    (examples/algos/widest.py, loaded by path as a spec would): on equal capacities the widest
    path is the least-delay path."""
    import doctest

    from controllers.algorithms import resolve_algorithm

    assert doctest.testmod(controllers, raise_on_error=True).attempted > 0
    widest = resolve_algorithm(str(REPO / "examples" / "algos" / "widest.py"))
    graph = ring(6, seed=1)
    routes = widest.bind({})(graph, frozenset({0}), RoutingContext(t_s=0.0))
    assert routes == make_router("min_delay")(graph, frozenset({0}), RoutingContext(t_s=0.0))


def test_every_bad_parameter_is_reported_at_once_as_data():
    """Unknown names and bad values of one algorithm come together, each as (parameter, problem)."""
    from controllers.algorithms.base import ParameterProblems
    with pytest.raises(ParameterError) as info:
        make_router("load_aware", {"alpha": 1, "rho_max": 1.0, "hysteresis": -1})
    err = info.value
    assert isinstance(err, ParameterProblems) and err.algorithm == "load_aware"
    assert err.problems == (
        ("alpha", "unknown parameter; allowed: alpha_s, hysteresis, rho_max"),
        ("rho_max", "must be < 1.0, got 1.0"),
        ("hysteresis", "must be >= 0, got -1.0"),
    )
    assert str(err).splitlines() == [
        "algorithm 'load_aware': unknown parameter(s) 'alpha'; allowed: alpha_s, hysteresis, rho_max",
        "algorithm 'load_aware', parameter 'rho_max': must be < 1.0, got 1.0",
        "algorithm 'load_aware', parameter 'hysteresis': must be >= 0, got -1.0",
    ]
