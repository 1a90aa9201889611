"""Every algorithm on small and medium meshes, checked through the fake flow table.

Routes -> rules -> fake OpenFlow tables -> a packet traced from every switch
to every host, over every select-group bucket.  Properties, not answers:
full delivery, no loops, path cost = sum of link costs = least cost,
min_delay is never beaten on delay nor min_hop on hops, determinism.
"""

import functools
import random

import networkx as nx
import pytest

from controllers import ALGORITHMS, RoutingContext, build_flow_table, make_router, validate_routes
from fakeoftable import FakeOFNetwork
from synthetic import chain, host_address, plus_grid, ring, wiring

TOPOLOGIES = {
    "chain6": lambda: chain(6),
    "chain9_random": lambda: chain(9, seed=1),
    "ring8_ties": lambda: ring(8),
    "ring7_random": lambda: ring(7, seed=2),
    "grid4x4_ties": lambda: plus_grid(4, 4),
    "grid4x4_random": lambda: plus_grid(4, 4, seed=3),
    "grid8x8_random": lambda: plus_grid(8, 8, seed=4),
    "grid8x8_ties": lambda: plus_grid(8, 8),
}
NAMES = sorted(ALGORITHMS)
CTX = RoutingContext(t_s=0.0)


@functools.cache
def topology(name):
    return TOPOLOGIES[name]()


def path_delay(graph, path):
    return sum(graph.edges[u, v]["delay_s"] for u, v in zip(path, path[1:]))


@functools.cache
def traced(algorithm, topo):
    """{(switch, destination switch): delivered paths} plus the routes."""
    graph = topology(topo)
    routes = make_router(algorithm, {})(graph, frozenset(graph), CTX)
    ports, hosts = wiring(graph)
    network = FakeOFNetwork(ports, hosts)
    network.install(build_flow_table(routes, ports, hosts))
    paths = {}
    for s in graph:
        for d in graph:
            trace = network.trace(s, host_address(d))
            assert trace.ok, (algorithm, topo, s, d, trace)
            paths[(s, d)] = trace.delivered
    return routes, paths


@pytest.mark.parametrize("topo", sorted(TOPOLOGIES))
@pytest.mark.parametrize("algorithm", NAMES)
def test_every_host_reachable_from_every_switch_without_loops(algorithm, topo):
    graph = topology(topo)
    routes, paths = traced(algorithm, topo)  # asserts trace.ok for every pair
    validate_routes(graph, routes, graph.nodes)
    assert set(routes) == set(graph)
    for (s, d), delivered in paths.items():
        for path in delivered:
            assert path[0] == s and path[-1] == d
            assert len(set(path)) == len(path)
            assert all(graph.has_edge(u, v) for u, v in zip(path, path[1:]))


@pytest.mark.parametrize("topo", sorted(TOPOLOGIES))
def test_min_delay_path_cost_is_sum_of_link_delays_and_least(topo):
    graph = topology(topo)
    _, paths = traced("min_delay", topo)
    least = dict(nx.all_pairs_dijkstra_path_length(graph, weight="delay_s"))
    for (s, d), delivered in paths.items():
        assert len(delivered) == 1
        assert path_delay(graph, delivered[0]) == pytest.approx(least[s][d], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("topo", sorted(TOPOLOGIES))
def test_min_hop_paths_have_fewest_hops(topo):
    graph = topology(topo)
    _, paths = traced("min_hop", topo)
    hops = dict(nx.all_pairs_shortest_path_length(graph))
    for (s, d), delivered in paths.items():
        assert [len(p) - 1 for p in delivered] == [hops[s][d]]


@pytest.mark.parametrize("topo", sorted(TOPOLOGIES))
@pytest.mark.parametrize("algorithm", NAMES)
def test_min_delay_is_never_beaten_on_delay_nor_min_hop_on_hops(algorithm, topo):
    graph = topology(topo)
    _, best_delay = traced("min_delay", topo)
    _, best_hops = traced("min_hop", topo)
    _, paths = traced(algorithm, topo)
    for pair, delivered in paths.items():
        floor_delay = path_delay(graph, best_delay[pair][0])
        floor_hops = len(best_hops[pair][0])
        for path in delivered:
            assert path_delay(graph, path) >= floor_delay * (1 - 1e-12)
            assert len(path) >= floor_hops


@pytest.mark.parametrize("topo", sorted(TOPOLOGIES))
def test_ecmp_paths_respect_the_stretch_bound_and_spread(topo):
    graph = topology(topo)
    _, paths = traced("ecmp_k", topo)
    _, best = traced("min_delay", topo)
    stretch = make_router("ecmp_k").params["max_stretch"]  # the default
    for pair, delivered in paths.items():
        least = path_delay(graph, best[pair][0])
        for path in delivered:
            assert path_delay(graph, path) <= (1 + stretch) * least * (1 + 1e-12)
    if topo.endswith("ties") and topo.startswith("grid"):
        assert max(len(d) for d in paths.values()) > 1  # equal-delay grid: real multipath


@pytest.mark.parametrize("topo", sorted(TOPOLOGIES))
def test_algorithms_that_reduce_to_min_delay_do(topo):
    graph = topology(topo)
    dests = frozenset(graph)
    reference = make_router("min_delay")(graph, dests, CTX)
    assert make_router("ecmp_k", {"k": 1})(graph, dests, CTX) == reference
    assert make_router("load_aware")(graph, dests, CTX) == reference  # no load, no previous
    assert make_router("predictive")(graph, dests, CTX) == reference  # no future


def shuffled_copy(graph, seed):
    """Same graph, nodes and edges inserted in another order."""
    rng = random.Random(seed)
    nodes = list(graph.nodes)
    edges = list(graph.edges(data=True))
    rng.shuffle(nodes)
    rng.shuffle(edges)
    copy = nx.Graph()
    copy.add_nodes_from(nodes)
    copy.add_edges_from((v, u, dict(data)) if rng.random() < 0.5 else (u, v, dict(data)) for u, v, data in edges)
    return copy


@pytest.mark.parametrize("topo", ["ring8_ties", "grid4x4_ties", "grid8x8_ties", "grid8x8_random"])
@pytest.mark.parametrize("algorithm", NAMES)
def test_same_input_gives_same_routes_whatever_the_insertion_order(algorithm, topo):
    graph = topology(topo)
    dests = frozenset(list(graph)[::3])
    router = make_router(algorithm)
    first = router(graph, dests, CTX)
    assert router(graph, dests, CTX) == first
    for seed in range(3):
        again = router(shuffled_copy(graph, seed), dests, CTX)
        assert again == first
        assert list(again) == list(first)  # same key order too


@pytest.mark.parametrize("algorithm", NAMES)
def test_routes_shape_on_partitioned_graph_and_subset_of_destinations(algorithm):
    graph = nx.disjoint_union(ring(5), chain(3))  # switches 0-4 and 5-7
    for u, v in graph.edges:
        graph.edges[u, v].setdefault("delay_s", 0.003)
    dests = frozenset({1, 6})
    routes = make_router(algorithm)(graph, dests, CTX)
    validate_routes(graph, routes, dests)
    assert set(routes) == set(graph)
    for u in range(5):
        assert set(routes[u]) == ({1} - {u})
    for u in range(5, 8):
        assert set(routes[u]) == ({6} - {u})


# -- property check over many random meshes ---------------------------------------


def random_mesh(seed):
    rng = random.Random(seed)
    n = rng.randint(4, 30)
    graph = nx.connected_watts_strogatz_graph(n, k=min(4, n - 1) // 2 * 2 or 2, p=0.3, seed=seed)
    for u, v in graph.edges:
        graph.edges[u, v]["delay_s"] = rng.choice([0.005, rng.uniform(0.002, 0.017)])
        graph.edges[u, v]["capacity_bps"] = 2e11
    return graph


@pytest.mark.parametrize("seed", range(25))
def test_property_random_meshes_deliver_everywhere_loop_free(seed):
    graph = random_mesh(seed)
    rng = random.Random(seed)
    dests = frozenset(rng.sample(sorted(graph), rng.randint(1, len(graph))))
    ports, hosts = wiring(graph, dests)
    util = {(u, v): rng.random() for u, v in graph.edges if rng.random() < 0.5}
    ctx = RoutingContext(t_s=0.0, utilisation=util)
    least = dict(nx.all_pairs_dijkstra_path_length(graph, weight="delay_s"))
    for algorithm in NAMES:
        routes = make_router(algorithm)(graph, dests, ctx)
        validate_routes(graph, routes, dests)
        network = FakeOFNetwork(ports, hosts)
        network.install(build_flow_table(routes, ports, hosts))
        for s in graph:
            for d in dests:
                trace = network.trace(s, host_address(d))
                assert trace.ok, (seed, algorithm, s, d, trace)
                if algorithm == "min_delay":
                    (path,) = trace.delivered
                    assert path_delay(graph, path) == pytest.approx(least[s][d], rel=1e-12, abs=1e-15)
