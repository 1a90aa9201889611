"""The vectorised shortest-path engine (controllers.algorithms.spt)."""

import math
import random

import networkx as nx
import numpy as np
import pytest

from controllers.algorithms.spt import (
    IndexedGraph,
    best_next,
    dijkstra_distances,
    distances,
    multipath_masks,
)
from controllers.errors import RoutingError
from synthetic import plus_grid


def random_graph(seed, n=None, m=None):
    """Seeded random graph with random delays; may be disconnected."""
    rng = random.Random(seed)
    n = n or rng.randint(2, 40)
    m = m if m is not None else rng.randint(0, n * 3)
    graph = nx.gnm_random_graph(n, m, seed=seed)
    graph = nx.relabel_nodes(graph, {u: 3 * u + 7 for u in graph})  # non-contiguous ids
    for u, v in graph.edges:
        # integer milliseconds make exact ties common
        graph.edges[u, v]["delay_s"] = rng.choice([rng.randint(1, 5) * 1e-3, rng.uniform(0.002, 0.017)])
    return graph


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_distances_equal_dijkstra_bit_for_bit(seed):
    graph = random_graph(seed)
    indexed = IndexedGraph.from_graph(graph, "delay_s")
    dest = np.arange(indexed.size)
    dist = distances(indexed, dest)
    assert np.array_equal(dist, dijkstra_distances(indexed, dest))  # exact, inf included
    # and agree with networkx up to summation order
    for j, d in enumerate(dest):
        lengths = nx.single_source_dijkstra_path_length(graph, indexed.nodes[d], weight="delay_s")
        for i, u in enumerate(indexed.nodes):
            expected = lengths.get(u, math.inf)
            assert dist[j, i] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_directed_costs_measure_distance_toward_destination(seed):
    graph = random_graph(seed, n=25, m=60)
    rng = random.Random(seed)
    cost = {}
    for u, v in graph.edges:
        cost[(u, v)], cost[(v, u)] = rng.uniform(1, 9), rng.uniform(1, 9)
    indexed = IndexedGraph.from_graph(graph, lambda u, v, data: cost[(u, v)])
    digraph = nx.DiGraph()
    digraph.add_nodes_from(graph)
    digraph.add_weighted_edges_from((u, v, c) for (u, v), c in cost.items())
    dest = np.arange(indexed.size)
    dist = distances(indexed, dest)
    for j, d in enumerate(dest):
        to_d = nx.single_source_dijkstra_path_length(digraph.reverse(), indexed.nodes[d])
        for i, u in enumerate(indexed.nodes):
            assert dist[j, i] == pytest.approx(to_d.get(u, math.inf), rel=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_next_hops_strictly_descend_and_break_ties_to_smallest_id(seed):
    graph = random_graph(seed)
    indexed = IndexedGraph.from_graph(graph, "delay_s")
    dest = np.arange(indexed.size)
    dist = distances(indexed, dest)
    next_idx = best_next(indexed, dist)
    for j in range(dest.size):
        for u in range(indexed.size):
            v = int(next_idx[j, u])
            if u == dest[j] or math.isinf(dist[j, u]):
                assert v == -1
                continue
            slot = list(indexed.nbr[u]).index(v)
            assert indexed.valid[u, slot]
            assert dist[j, v] < dist[j, u]
            assert indexed.out_cost[u, slot] + dist[j, v] == dist[j, u]
            # no smaller neighbour id on an equally short path
            for k in range(slot):
                if indexed.valid[u, k]:
                    assert indexed.out_cost[u, k] + dist[j, indexed.nbr[u, k]] != dist[j, u]


def masks_of(indexed, next_idx):
    """Single-path next hops as slot bit masks."""
    masks = np.zeros(next_idx.shape, dtype=np.int64)
    for j, u in zip(*np.nonzero(next_idx >= 0)):
        masks[j, u] = 1 << list(indexed.nbr[u]).index(next_idx[j, u])
    return masks


def test_multipath_with_k1_is_single_path_and_k_bounds_the_fanout():
    graph = plus_grid(6, 6)  # equal delays: many ties
    indexed = IndexedGraph.from_graph(graph, "delay_s")
    dest = np.arange(indexed.size)
    dist = distances(indexed, dest)
    assert np.array_equal(multipath_masks(indexed, dist, 1, math.inf), masks_of(indexed, best_next(indexed, dist)))
    # on an even torus the switch opposite a destination has all 4 neighbours closer
    for k in (1, 2, 3, 4, 5):
        masks = multipath_masks(indexed, dist, k, math.inf)
        counts = np.vectorize(lambda m: bin(int(m)).count("1"))(masks)
        assert counts.max() == min(k, 4)


def test_indexing_rejects_bad_costs_and_self_loops():
    graph = nx.Graph()
    graph.add_edge(1, 2, delay_s=0.0)
    with pytest.raises(RoutingError, match=r"link \(1, 2\): cost must be finite and > 0"):
        IndexedGraph.from_graph(graph, "delay_s")
    graph.edges[1, 2]["delay_s"] = 0.001
    graph.add_edge(3, 3, delay_s=0.001)
    with pytest.raises(RoutingError, match="self-loop on switch 3"):
        IndexedGraph.from_graph(graph, "delay_s")
    graph = nx.Graph()
    graph.add_edge(1, 2)
    with pytest.raises(RoutingError, match=r"link \(1, 2\): cost .delay_s. is missing"):
        IndexedGraph.from_graph(graph, "delay_s")


def test_empty_and_edgeless_graphs():
    empty = IndexedGraph.from_graph(nx.Graph(), "delay_s")
    assert empty.routes_from_next([], np.zeros((0, 0), dtype=np.int64)) == {}
    assert empty.routes_from_masks([], np.zeros((0, 0), dtype=np.int64)) == {}
    lonely = nx.empty_graph([5, 6])
    indexed = IndexedGraph.from_graph(lonely, "delay_s")
    dest = indexed.indices([5, 6])
    routes = indexed.routes_from_next(dest, best_next(indexed, distances(indexed, dest)))
    assert routes == {5: {}, 6: {}}


@pytest.mark.parametrize("weight", ["delay_s", None], ids=["equal-delays", "unit-hops"])
def test_tie_heavy_large_grid_stays_linear(weight):
    """Equal costs on a 72 x 22 torus: astronomically many equal shortest
    paths.  The frontier must hold each (destination, switch) once per round
    (a duplicate-keeping frontier ran out of memory here)."""
    graph = plus_grid(72, 22)
    indexed = IndexedGraph.from_graph(graph, weight)
    dest = indexed.indices(range(0, 1584, 99))
    dist = distances(indexed, dest)
    assert np.array_equal(dist, dijkstra_distances(indexed, dest))


def test_a_ground_station_seeing_over_100_satellites_is_routed_by_min_delay():
    """No per-node link cap: a station with every visible satellite (no mask, Starlink
    Gen1's 4,408 satellites) has >= 100 links, and min_delay routes through it exactly."""
    from controllers.algorithms.base import RoutingContext
    from controllers.algorithms.ecmp_k import ALGORITHM as ECMP
    from controllers.algorithms.min_delay import route
    from topologies import ScheduleConfig, generate

    schedule = generate(ScheduleConfig(
        preset="starlink_gen1", duration_s=1.0, step_s=1.0, epoch="2025-01-01T00:00:00Z",
        ground_stations=(("Berlin", 52.52, 13.40), ("Madrid", 40.42, -3.70)),
        gsl_policy="all", gsl_min_elevation_deg=0.0))
    graph = schedule.graph_at(0)
    berlin, madrid = (int(i) for i in schedule.node_ids("ground"))
    assert graph.degree(berlin) >= 100 and graph.degree(madrid) >= 100
    routes = route(graph, frozenset({berlin}), RoutingContext(t_s=0.0))
    lengths = nx.single_source_dijkstra_path_length(graph, berlin, weight="delay_s")
    # walk Madrid's next hops to Berlin: the delay equals the true shortest path
    node, total, hops = madrid, 0.0, 0
    while node != berlin:
        (nxt, _), = routes[node][berlin]
        total += graph.edges[node, nxt]["delay_s"]
        node, hops = nxt, hops + 1
        assert hops < 100
    assert total == pytest.approx(lengths[madrid], rel=1e-12)
    # multipath over a wide node: next-hop masks beyond 63 slots still work
    multi = ECMP.route(graph, frozenset({berlin}), RoutingContext(t_s=0.0))
    assert all(multi[u][berlin] for u in graph if u != berlin and u in lengths)


@pytest.mark.parametrize("seed", range(8))
def test_wide_graph_masks_by_sort_equal_the_pairwise_ranking(seed):
    from controllers.algorithms.spt import _masks_by_sort
    graph = random_graph(seed, n=30, m=120)
    indexed = IndexedGraph.from_graph(graph, "delay_s")
    dist = distances(indexed, np.arange(indexed.size))
    for k, stretch in ((1, math.inf), (2, 0.1), (3, math.inf)):
        pairwise = multipath_masks(indexed, dist, k, stretch)
        vias, allowed = [], []
        for slot in range(indexed.nbr.shape[1]):
            ahead = dist[:, indexed.nbr[:, slot]]
            via = indexed.out_cost[:, slot] + ahead
            ok = ahead < dist
            if math.isfinite(stretch):
                ok &= (via == dist) | (indexed.out_cost[:, slot] + (1 + stretch) * ahead
                                       <= (1 + stretch) * dist)
            vias.append(via)
            allowed.append(ok)
        assert (_masks_by_sort(vias, allowed, k).astype(np.int64) == pairwise).all()
