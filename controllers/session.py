"""The controller's view of the network and the rules it wants installed (pure, no os-ken).

:class:`ControllerSession` takes the feed's messages (see :mod:`controllers.feed`) and
port events, runs the chosen router, and answers with the desired :data:`FlowTable`.
The os-ken app (:mod:`controllers.app`) diffs that against what each switch has and
sends only the difference. Time is a parameter (``clock``) so tests can drive it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .algorithms.base import Router, Routes, RoutingContext
from .graph import from_records, to_graph
from .rules import FlowTable, HostAttachment, build_flow_table


@dataclass
class StepStats:
    compute_s: float = 0.0
    routes: int = 0


@dataclass
class ControllerSession:
    router: Router
    clock: Callable[[], float] = time.perf_counter
    dpid_to_node: dict[int, int] = field(default_factory=dict)
    ports: dict[tuple[int, int], int] = field(default_factory=dict)
    port_to_edge: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    neighbours: dict[int, list[int]] = field(default_factory=dict)
    hosts: dict[str, HostAttachment] = field(default_factory=dict)
    switches: tuple[int, ...] = ()
    links: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    future: list[tuple[float, list[dict]]] = field(default_factory=list)
    utilisation: dict[tuple[int, int], float] = field(default_factory=dict)
    own_utilisation: dict[tuple[int, int], dict[int, float]] = field(default_factory=dict)
    t_s: float = 0.0
    step: int = -1
    routes: Routes | None = None
    table: FlowTable = field(default_factory=dict)
    carrying: frozenset[int] = frozenset()

    @property
    def has_topology(self) -> bool:
        return bool(self.switches)

    def on_topology(self, msg: dict) -> None:
        self.dpid_to_node = {int(dpid): int(node) for node, dpid in msg["switches"]}
        self.switches = tuple(sorted(self.dpid_to_node.values()))
        self.ports = {(int(s), int(n)): int(p) for s, n, p in msg["ports"]}
        self.port_to_edge = {(s, p): (min(s, n), max(s, n)) for (s, n), p in self.ports.items()}
        self.neighbours = {}
        for s, n in sorted(self.ports):
            self.neighbours.setdefault(s, []).append(n)
        self.hosts = {h["ip"]: HostAttachment(switch=int(h["switch"]), port=int(h["port"]), mac=h["mac"])
                      for h in msg["hosts"]}

    def on_state(self, msg: dict) -> StepStats:
        self.step = int(msg["step"])
        self.t_s = float(msg["t_s"])
        self.links = {(min(r["a"], r["b"]), max(r["a"], r["b"])): dict(r) for r in msg["links"]}
        self.future = [(float(f["t_s"]), f["links"]) for f in msg.get("future", [])]
        return self.recompute()

    def on_port_down(self, node: int, port: int) -> bool:
        """A switch reported a port down: the link is out at once. True if the view changed."""
        edge = self.port_to_edge.get((node, port))
        if edge is None or edge not in self.links or not self.links[edge]["up"]:
            return False
        self.links[edge]["up"] = False
        return True

    def on_utilisation(self, utilisation: dict[tuple[int, int], float]) -> None:
        self.utilisation = dict(utilisation)

    def host_paths(self, max_hops: int = 256) -> dict[tuple[int, int], tuple[int, ...]]:
        """Switch path between every ordered pair of host switches (first next hop at each
        switch: the heaviest bucket for multipath); pairs with no route are absent."""
        if self.routes is None:
            return {}
        ends = sorted({h.switch for h in self.hosts.values()})
        out = {}
        for src in ends:
            for dst in ends:
                if src == dst:
                    continue
                path, node = [src], src
                while node != dst and len(path) <= max_hops:
                    hops = self.routes.get(node, {}).get(dst)
                    if not hops:
                        break
                    node = max(hops, key=lambda h: (h[1], -h[0]))[0]
                    path.append(node)
                if node == dst:
                    out[(src, dst)] = tuple(path)
        return out

    def carrying_switches(self) -> frozenset[int]:
        """Switches that traffic between hosts can cross under the current routes.

        Every switch reachable from a host's switch along any next hop (every ECMP
        bucket) towards another host's switch. Traffic enters only at hosts and the
        rules only lead to host switches, so no other switch carries any (the controller
        answers ARP); their links are idle by construction.
        """
        if self.routes is None:
            return frozenset()
        ends = {h.switch for h in self.hosts.values()}
        out: set[int] = set()
        for dst in ends:
            reached = {s for s in ends if s != dst}
            stack = list(reached)
            while stack:
                node = stack.pop()
                for nbr, _weight in self.routes.get(node, {}).get(dst, ()):
                    if nbr not in reached:
                        reached.add(nbr)
                        stack.append(nbr)
            out |= reached
        return frozenset(out)

    def recompute(self) -> StepStats:
        t0 = self.clock()
        graph = to_graph(from_records(self.t_s, self.switches, self.links.values()))
        future = tuple((t, to_graph(from_records(t, self.switches, recs))) for t, recs in self.future
                       if self.router.algorithm.uses_future)
        destinations = frozenset(h.switch for h in self.hosts.values())
        ctx = RoutingContext(t_s=self.t_s, future=future, utilisation=self.utilisation, previous=self.routes,
                             own_utilisation=self.own_utilisation)
        self.routes = self.router(graph, destinations, ctx)
        self.table = build_flow_table(self.routes, self.ports, self.hosts)
        self.carrying = self.carrying_switches()
        return StepStats(compute_s=self.clock() - t0,
                         routes=sum(len(v) for v in self.routes.values()))
