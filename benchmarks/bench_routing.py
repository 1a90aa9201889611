"""Route computation time per algorithm on a Starlink-shell-1-sized +Grid.

The graph: 72 planes x 22 satellites = 1,584 switches, 3,168 laser links
(+Grid torus, ``plus_grid`` of ``tests/synthetic.py``), one-way delays drawn
uniformly in 2-17 ms with a fixed seed.  Destinations: 16 and 64 switches
drawn with the same seed.  Each algorithm runs with a realistic context:
``load_aware`` with measured utilisation on 30 % of the directed links and
the previous step's routes in force; ``predictive`` with two future
snapshots, each taking 2 % of the links down.

Timed: the router call only (graph in, Routes out), median of ``--repeat``
runs after one warm-up, as wall time and as CPU time of this process.  Extra rows break ``min_delay`` down and time the
references (networkx Dijkstra, pure-Python Dijkstra) and the rule building
and diff that follow routing in the controller.

Usage::

    .venv/bin/python benchmarks/bench_routing.py [--repeat 15] [--seed 1]

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable

import networkx as nx
import numpy as np

from controllers import ALGORITHMS, RoutingContext, build_flow_table, diff_rules, make_router
from controllers.algorithms.spt import IndexedGraph, best_next, dijkstra_distances, distances

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from synthetic import plus_grid, wiring  # noqa: E402  (the tests' synthetic meshes)

PLANES, PER_PLANE = 72, 22
TARGET_MS = 20.0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(median wall, min wall, median CPU) time of ``fn()`` in ms, after one warm-up.

    CPU time (``time.process_time``) is reported beside wall time because it
    is far less disturbed by other processes on a shared machine.
    """
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - start_cpu) * 1e3)
        wall.append((time.perf_counter() - start_wall) * 1e3)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def contexts(graph: nx.Graph, dests: frozenset, rng: random.Random) -> dict[str, RoutingContext]:
    directed = sorted(graph.to_directed().edges)
    utilisation = {edge: rng.random() for edge in directed if rng.random() < 0.3}
    edges = sorted(graph.edges)
    future = []
    for t_s in (1.0, 2.0):
        later = graph.copy()
        later.remove_edges_from(rng.sample(edges, len(edges) // 50))
        future.append((t_s, later))
    previous = make_router("load_aware")(graph, dests, RoutingContext(t_s=-1.0, utilisation=utilisation))
    # the measurement moves a little between steps
    utilisation = {edge: min(1.0, max(0.0, rho + rng.uniform(-0.05, 0.05))) for edge, rho in utilisation.items()}
    plain = RoutingContext(t_s=0.0)
    return {
        "load_aware": RoutingContext(t_s=0.0, utilisation=utilisation, previous=previous),
        "predictive": RoutingContext(t_s=0.0, future=tuple(future)),
        "default": plain,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per row (default 15)")
    parser.add_argument("--seed", type=int, default=1, help="seed for delays, destinations, load (default 1)")
    parser.add_argument("--destinations", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    graph = plus_grid(PLANES, PER_PLANE, seed=args.seed)
    rows: list[tuple[str, int, tuple[float, float, float], str]] = []
    for count in args.destinations:
        rng = random.Random(args.seed * 1000 + count)
        dests = frozenset(rng.sample(sorted(graph), count))
        ctxs = contexts(graph, dests, rng)
        for name in ALGORITHMS:
            router = make_router(name)
            ctx = ctxs.get(name, ctxs["default"])
            rows.append((name, count, timed(lambda: router(graph, dests, ctx), args.repeat), ""))

        # min_delay broken down into its stages
        indexed = IndexedGraph.from_graph(graph, "delay_s")
        dest = indexed.indices(dests)
        dist = distances(indexed, dest)
        next_idx = best_next(indexed, dist)
        stages = [
            ("index graph", lambda: IndexedGraph.from_graph(graph, "delay_s")),
            ("distances (vectorised)", lambda: distances(indexed, dest)),
            ("next hops", lambda: best_next(indexed, dist)),
            ("build Routes dicts", lambda: indexed.routes_from_next(dest, next_idx)),
        ]
        for label, fn in stages:
            rows.append((f"min_delay: {label}", count, timed(fn, args.repeat), "stage"))

        ref_repeat = max(3, args.repeat // 3)
        rows.append((
            "reference: networkx Dijkstra x D",
            count,
            timed(lambda: [nx.single_source_dijkstra_path_length(graph, d, weight="delay_s") for d in dests], ref_repeat),
            "distances only",
        ))
        rows.append((
            "reference: pure-Python Dijkstra x D",
            count,
            timed(lambda: dijkstra_distances(indexed, dest), ref_repeat),
            "distances only",
        ))

        # what follows routing in the controller: rules for one host per destination, and the diff
        ports, hosts = wiring(graph, dests)
        routes = make_router("min_delay")(graph, dests, ctxs["default"])
        table = build_flow_table(routes, ports, hosts)
        moved = make_router("predictive")(graph, dests, ctxs["predictive"])
        next_table = build_flow_table(moved, ports, hosts)
        rows.append(("rules: build_flow_table", count, timed(lambda: build_flow_table(routes, ports, hosts), ref_repeat), f"{sum(len(t.rules) for t in table.values())} rules"))
        diff = diff_rules(table, next_table)
        rows.append(("rules: diff_rules (min_delay -> predictive)", count, timed(lambda: diff_rules(table, next_table), ref_repeat), f"{diff.flow_mods} flow mods"))
        predictive = make_router("predictive")

        def controller_step():
            routes = predictive(graph, dests, ctxs["predictive"])
            return diff_rules(table, build_flow_table(routes, ports, hosts))

        rows.append(("step: predictive + build_flow_table + diff_rules", count, timed(controller_step, ref_repeat), "what the adapter runs per step"))

    print(f"Routing on a {PLANES}x{PER_PLANE} +Grid: {graph.number_of_nodes()} switches, "
          f"{graph.number_of_edges()} links; delays 2-17 ms; seed {args.seed}; "
          f"median of {args.repeat} runs (references: {max(3, args.repeat // 3)}).")
    print(f"Python {platform.python_version()}, networkx {nx.__version__}, numpy {np.__version__}, "
          f"{cpu_model()} ({os.cpu_count()} CPUs), load average {load_before:.1f} before / "
          f"{os.getloadavg()[0]:.1f} after.\n")
    print("| what | destinations | wall median ms | wall min ms | CPU median ms | note |")
    print("|---|---:|---:|---:|---:|---|")
    for label, count, (median, low, cpu), note in rows:
        if label == "min_delay":
            note = f"target <= {TARGET_MS:.0f} ms: {'met' if median <= TARGET_MS else 'MISSED'} (wall median)"
        print(f"| {label} | {count} | {median:.1f} | {low:.1f} | {cpu:.1f} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
