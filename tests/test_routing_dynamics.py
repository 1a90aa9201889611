"""Behaviour over time: predictive make-before-break, load_aware hysteresis."""

import random

import networkx as nx
import pytest

from controllers import RoutingContext, build_flow_table, make_router
from controllers.algorithms.predictive import doomed_links
from fakeoftable import FakeOFNetwork
from synthetic import chain, host_address, plus_grid, ring, wiring


def uses_link(routes, link):
    a, b = link
    return any(
        {u, v} == {a, b} for u, by_dest in routes.items() for hops in by_dest.values() for v, _ in hops
    )


def busiest_link(routes):
    """The link carrying the most (switch, destination) routes; ties: smallest."""
    count = {}
    for u, by_dest in routes.items():
        for hops in by_dest.values():
            for v, _ in hops:
                edge = (min(u, v), max(u, v))
                count[edge] = count.get(edge, 0) + 1
    return max(sorted(count), key=count.get)


def deliveries(routes, graph, links):
    """Traces from every switch to every host over the physical ``links``."""
    ports, hosts = wiring(graph)
    network = FakeOFNetwork(ports, hosts)
    network.install(build_flow_table(routes, ports, hosts))
    return {(s, d): network.trace(s, host_address(d), links=links) for s in graph for d in graph}


# -- predictive -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_predictive_moves_traffic_off_a_link_before_it_goes_down(seed):
    now = plus_grid(5, 5, seed=seed)
    dests = frozenset(now)
    reactive = make_router("min_delay")(now, dests, RoutingContext(t_s=0.0))
    link = busiest_link(reactive)
    later = now.copy()
    later.remove_edge(*link)  # planned: down at t = 1.5 s
    ctx = RoutingContext(t_s=0.0, future=((1.5, later),))
    predictive = make_router("predictive", {"horizon_s": 2.0})(now, dests, ctx)

    assert uses_link(reactive, link)
    assert not uses_link(predictive, link)
    # make: with the link still up, the predictive rules deliver everything
    assert all(t.ok for t in deliveries(predictive, now, now).values())
    # break: once the link is gone, the rules already installed still deliver,
    # while min_delay's rules send traffic into the dead link until recomputed
    assert all(t.ok for t in deliveries(predictive, now, later).values())
    broken = deliveries(reactive, now, later)
    lost = [pair for pair, t in broken.items() if not t.ok]
    assert lost and all(reason == "link down" for pair in lost for _, reason in broken[pair].dropped)


def test_predictive_ignores_changes_outside_its_horizon():
    now = ring(6, seed=3)
    dests = frozenset(now)
    reference = make_router("min_delay")(now, dests, RoutingContext(t_s=10.0))
    link = busiest_link(reference)
    later = now.copy()
    later.remove_edge(*link)
    router = make_router("predictive", {"horizon_s": 1.0})
    for t in (9.0, 10.0, 11.5):  # past, now, beyond the horizon
        assert router(now, dests, RoutingContext(t_s=10.0, future=((t, later),))) == reference
    assert router(now, dests, RoutingContext(t_s=10.0, future=((11.0, later),))) != reference
    assert doomed_links(now, RoutingContext(t_s=10.0, future=((11.0, later),)), 1.0) == {link}


def test_predictive_never_partitions_early():
    """A doomed bridge is the only way across: keep using it until it goes."""
    now = chain(4)
    later = now.copy()
    later.remove_edge(1, 2)
    ctx = RoutingContext(t_s=0.0, future=((1.0, later),))
    routes = make_router("predictive")(now, frozenset(now), ctx)
    assert routes == make_router("min_delay")(now, frozenset(now), RoutingContext(t_s=0.0))
    assert routes[1][3] == ((2, 1.0),)


def test_predictive_prefers_fewer_doomed_links():
    now = ring(6)  # 0-1-2-3-4-5-0, equal delays
    later = now.copy()
    later.remove_edges_from([(0, 1), (1, 2), (4, 5)])
    routes = make_router("predictive")(now, frozenset({3}), RoutingContext(t_s=0.0, future=((1.0, later),)))
    assert routes[0][3] == ((5, 1.0),)  # one doomed link (4-5) rather than two (0-1, 1-2)
    assert routes[5][3] == ((4, 1.0),)  # both ways cross one doomed link: the shorter
    assert routes[1][3] == ((2, 1.0),)
    assert make_router("min_delay")(now, frozenset({3}), RoutingContext(t_s=0.0))[0][3] == ((1, 1.0),)


# -- load_aware -----------------------------------------------------------------------

RING = ring(5)  # equal 5 ms links: 0 -> 2 is 10 ms via 1, 15 ms via 4 and 3


def next_hop(routes, u, d):
    (hop,) = routes[u][d]
    return hop[0]


def step(router, rho, previous):
    ctx = RoutingContext(t_s=0.0, utilisation={(0, 1): rho}, previous=previous)
    return router(RING, frozenset(RING), ctx)


def test_load_aware_leaves_a_congested_link():
    router = make_router("load_aware", {"alpha_s": 0.01, "hysteresis": 0.1})
    idle = step(router, 0.0, None)
    assert next_hop(idle, 0, 2) == 1
    busy = step(router, 0.5, idle)  # +10 ms on 0 -> 1: 20 ms > 1.1 x 15 ms
    assert next_hop(busy, 0, 2) == 4
    assert next_hop(busy, 1, 0) == 0  # utilisation is directed: 1 -> 0 is idle
    assert next_hop(step(router, 0.36, None), 0, 2) == 4  # fresh start: least cost wins


def test_load_aware_keeps_the_route_in_force_within_the_hysteresis():
    router = make_router("load_aware", {"alpha_s": 0.01, "hysteresis": 0.1})
    idle = step(router, 0.0, None)
    # rho = 0.36: via 1 costs 15.6 ms, via 4 15 ms -- better by 4 % < 10 %
    assert next_hop(step(router, 0.36, idle), 0, 2) == 1
    moved = step(router, 0.5, idle)
    # back to rho = 0.3: via 1 is 14.3 ms, but 15 ms via 4 is within 10 %
    assert next_hop(step(router, 0.3, moved), 0, 2) == 4
    assert next_hop(step(router, 0.0, moved), 0, 2) == 1  # 10 ms vs 15 ms: move back


def test_load_aware_is_not_chased_by_its_own_traffic():
    router = make_router("load_aware", {"alpha_s": 0.01, "hysteresis": 0.1})
    idle = step(router, 0.0, None)
    # 0 -> 1 full, and all of it goes to switch 2 (measured per destination): the flow to 2
    # stays where it is, since its own load is no reason to leave.
    ctx = RoutingContext(t_s=0.0, utilisation={(0, 1): 0.9}, previous=idle, own_utilisation={(0, 1): {2: 0.9}})
    routes = router(RING, frozenset(RING), ctx)
    assert next_hop(routes, 0, 2) == 1
    # Without the per-destination share the same load drives the flow to 2 away.
    assert next_hop(step(router, 0.9, idle), 0, 2) == 4
    # Part of it goes elsewhere: 0.5 of the 0.9 is traffic to switch 3, enough for the
    # flow to 2 to move; the flow to 3 sees only the 0.4 to 2 on 0 -> 1, which it does not use.
    ctx = RoutingContext(t_s=0.0, utilisation={(0, 1): 0.9}, previous=idle,
                         own_utilisation={(0, 1): {2: 0.4, 3: 0.5}})
    routes = router(RING, frozenset(RING), ctx)
    assert next_hop(routes, 0, 2) == 4 and next_hop(routes, 0, 3) == 4


def test_load_aware_does_not_flap_on_noisy_load():
    noisy = [0.0, 0.36, 0.32, 0.37, 0.33, 0.38, 0.31, 0.36, 0.30]

    def changes(hysteresis):
        router = make_router("load_aware", {"alpha_s": 0.01, "hysteresis": hysteresis})
        previous, hops = None, []
        for rho in noisy:
            previous = step(router, rho, previous)
            hops.append(next_hop(previous, 0, 2))
        return sum(a != b for a, b in zip(hops, hops[1:]))

    assert changes(0.0) >= 6  # flaps with the noise
    assert changes(0.1) == 0


@pytest.mark.parametrize("seed", range(15))
def test_load_aware_stays_loop_free_whatever_routes_were_in_force(seed):
    rng = random.Random(seed)
    graph = plus_grid(4, 5, seed=seed)
    dests = frozenset(rng.sample(sorted(graph), 6))
    # arbitrary "previous" next hops, loops included
    previous = {u: {d: ((rng.choice(sorted(graph[u])), 1.0),) for d in dests if d != u} for u in graph}
    util = {(u, v): rng.random() for u, v in graph.to_directed().edges if rng.random() < 0.3}
    router = make_router("load_aware", {"hysteresis": 0.5})
    routes = router(graph, dests, RoutingContext(t_s=0.0, utilisation=util, previous=previous))
    ports, hosts = wiring(graph, dests)
    network = FakeOFNetwork(ports, hosts)
    network.install(build_flow_table(routes, ports, hosts))
    for s in graph:
        for d in dests:
            assert network.trace(s, host_address(d)).ok


def test_load_aware_ignores_measurements_for_links_that_are_gone():
    graph = RING.copy()
    graph.remove_edge(0, 1)
    router = make_router("load_aware")
    ctx = RoutingContext(t_s=0.0, utilisation={(0, 1): 0.9, (7, 8): 0.5})
    assert router(graph, frozenset(graph), ctx) == make_router("min_delay")(graph, frozenset(graph), ctx)
    assert nx.is_connected(graph)


def ring_session(algorithm, hosts):
    """A controller session on a ring of 8 switches with hosts on the given switches."""
    from controllers.session import ControllerSession
    from testbed.control.messages import state_message_from_plan, topology_message
    from testbed.net.plan import make_plan
    plan = make_plan(range(8), {s: (f"h{s}", "compute") for s in hosts},
                     [(i, (i + 1) % 8, "isl", 1e9, 0.001, True) for i in range(8)])
    session = ControllerSession(make_router(algorithm))
    session.on_topology(topology_message(plan))
    session.on_state(state_message_from_plan(plan, 0, 0.0))
    return session


def test_carrying_switches_are_those_on_routes_between_hosts():
    # Hosts on 0 and 2: min_hop goes 0-1-2; the five switches the other way round carry nothing.
    assert ring_session("min_hop", [0, 2]).carrying == {0, 1, 2}
    # Opposite hosts on equal-delay links: two equal paths, ECMP uses both, every switch carries.
    assert ring_session("ecmp_k", [0, 4]).carrying == set(range(8))
    assert ring_session("min_delay", [3]).carrying == frozenset()      # one host: no traffic between hosts


def test_only_load_aware_reads_port_counters_and_only_predictive_the_future():
    from controllers.algorithms import ALGORITHMS
    assert {name for name, a in ALGORITHMS.items() if a.uses_utilisation} == {"load_aware"}
    assert {name for name, a in ALGORITHMS.items() if a.uses_future} == {"predictive"}
