"""The controller's view of the network and the rules it wants installed (pure, no os-ken).

:class:`ControllerSession` takes the feed's messages (see :mod:`controllers.feed`), port
events and counter readings (unpacked by :mod:`controllers.ofmsg`), runs the chosen
router, and answers with the desired :data:`FlowTable` and, per switch, the
:class:`~controllers.diff.SwitchDiff` between that and what the switch has
(:meth:`ControllerSession.changes`). The os-ken app (:mod:`controllers.app`) turns those
into OpenFlow messages and sends them. Time is a parameter: ``now_s`` (monotonic
seconds) for counter readings, ``clock`` for timing route computation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable

from .algorithms.base import Router, Routes, RoutingContext
from .counters import UTILISATION_EPSILON, CounterRates, LoadUpdate
from .diff import RuleDiff, diff_rules
from .graph import from_records, to_graph
from .ofmsg import PortCount, RuleCount
from .rules import FlowTable, HostAttachment, SwitchTable, build_flow_table

_EMPTY = SwitchTable()


@dataclass
class StepStats:
    compute_s: float = 0.0   # wall time of graph + routes + flow table, s (clock's resolution)


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
    #: Port statistics poll period, s: counter readings further apart than 3 periods give
    #: no rate, and load is not acted on within 2 periods of a load-driven re-route.
    poll_interval_s: float = 0.5
    local_addresses: dict[int, frozenset[str]] = field(default_factory=dict)   # switch -> its hosts' IPs
    installed: dict[int, SwitchTable] = field(default_factory=dict)   # connected switch -> its rules
    rule_load: dict[int, dict[tuple, tuple[int, int, float]]] = field(default_factory=dict)
    load_rerouted_at_s: float = -float("inf")   # now_s of the last load-driven re-route
    logged_paths: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)   # as last logged
    port_rates: CounterRates = field(init=False)   # key (node, port): tx bytes
    rule_rates: CounterRates = field(init=False)   # key (node, ipv4_dst, in_port, priority): bytes

    def __post_init__(self) -> None:
        self.port_rates = CounterRates(3 * self.poll_interval_s)
        self.rule_rates = CounterRates(3 * self.poll_interval_s)

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
        local: dict[int, set[str]] = {}
        for ip, host in self.hosts.items():
            local.setdefault(host.switch, set()).add(ip)
        self.local_addresses = {s: frozenset(ips) for s, ips in local.items()}

    def on_state(self, msg: dict) -> StepStats:
        self.step = int(msg["step"])
        self.t_s = float(msg["t_s"])
        self.links = {(min(r["a"], r["b"]), max(r["a"], r["b"])): dict(r) for r in msg["links"]}
        self.future = [(float(f["t_s"]), f["links"]) for f in msg.get("future", [])]
        return self.recompute()

    def on_port_status(self, node: int | None, port: int, down: bool) -> StepStats | None:
        """A switch reported the state of ``port``. A port going down takes its link out
        at once and the routes are recomputed: returns their :class:`StepStats`; None if
        the view did not change (port up, unknown switch or port, link already down)."""
        edge = self.port_to_edge.get((node, port))
        if not down or edge is None or edge not in self.links or not self.links[edge]["up"]:
            return None
        self.links[edge]["up"] = False
        return self.recompute()

    # -- what the switches have ----------------------------------------------------------
    def on_switch_connected(self, node: int) -> bool:
        """A switch connected (its tables were just cleared). True if it needs rules now."""
        self.installed[node] = SwitchTable()
        return self.has_topology and self.step >= 0

    def on_switch_gone(self, node: int) -> None:
        self.installed.pop(node, None)

    def changes(self, nodes: Iterable[int]) -> RuleDiff:
        """What to send to bring switches ``nodes`` from what they have to the desired table."""
        old = {n: self.installed[n] for n in nodes if self.installed.get(n)}
        new = {n: self.table[n] for n in nodes if self.table.get(n)}
        return diff_rules(old, new)

    def mark_installed(self, node: int) -> None:
        """The changes for ``node`` were sent: it now has the desired table."""
        self.installed[node] = self.table.get(node, _EMPTY)

    def all_installed(self) -> bool:
        """Every switch has its desired table (a switch not connected has none)."""
        return all(self.installed.get(n) == self.table.get(n, _EMPTY) for n in self.switches)

    def rules_per_switch(self) -> dict[str, int]:
        return {str(n): len(t.rules) for n, t in self.installed.items()}

    # -- counters -------------------------------------------------------------------------
    def poll_targets(self) -> list[int]:
        """Switches whose counters matter: those traffic can cross (see
        :meth:`carrying_switches`) and those still showing load from before a re-route."""
        busy = {a for (a, _b), u in self.utilisation.items() if u > UTILISATION_EPSILON}
        return sorted(self.carrying | busy)

    def _link_out(self, node: int, port: int) -> tuple[int, float] | None:
        """(neighbour, capacity in bit/s) of the link behind ``port`` of ``node``, if any."""
        edge = self.port_to_edge.get((node, port))
        if edge is None:
            return None
        return (edge[1] if edge[0] == node else edge[0]), self.links.get(edge, {}).get("capacity_bps")

    def on_port_counts(self, node: int | None, counts: Iterable[PortCount], now_s: float) -> LoadUpdate:
        """Port transmit counters of ``node`` read at ``now_s`` (monotonic s).

        Updates :attr:`utilisation` (directed link -> fraction of capacity) and, for an
        algorithm that routes on load, recomputes the routes, unless a load-driven
        re-route happened less than two poll intervals ago: counters read across a
        re-route mix the old paths with the new ones.
        """
        if node is None or not self.has_topology:
            return LoadUpdate()
        util = dict(self.utilisation)
        changed = False
        for port_no, tx_bytes in counts:
            rate_bps = self.port_rates.rate_bps((node, port_no), now_s, tx_bytes)
            link = self._link_out(node, port_no)
            if link is None or rate_bps is None or not link[1]:
                continue
            u = rate_bps / link[1]
            changed |= abs(util.get((node, link[0]), 0.0) - u) > UTILISATION_EPSILON
            util[(node, link[0])] = u
        if not changed:
            return LoadUpdate()
        self.utilisation = util
        settled = now_s - self.load_rerouted_at_s > 2 * self.poll_interval_s
        if self.step >= 0 and self.router.algorithm.uses_utilisation and settled:
            before = self.routes
            self.recompute()
            if self.routes != before:
                self.load_rerouted_at_s = now_s
                return LoadUpdate(changed=True, rerouted=True)
        return LoadUpdate(changed=True)

    def on_rule_counts(self, node: int | None, counts: Iterable[RuleCount], complete: bool, now_s: float) -> None:
        """Byte counters of ``node``'s unicast rules read at ``now_s`` (monotonic s).

        A rule matches one destination host; the port its traffic leaves by names the
        link. Result: :attr:`own_utilisation` ``[(node, nbr)][destination switch]`` as a
        fraction of the link's capacity. ``complete``: this reply held the whole table,
        so rules not in it are gone.
        """
        if node is None or not self.has_topology:
            return
        seen = set()
        loads = self.rule_load.setdefault(node, {})
        for count in counts:
            host = self.hosts.get(count.ipv4_dst)
            if host is None:
                continue                      # not a route rule of ours
            key = (node, count.ipv4_dst, count.in_port, count.priority)
            seen.add(key)
            rate_bps = self.rule_rates.rate_bps(key, now_s, count.byte_count)
            link = self._link_out(node, count.out_port)
            if link is None or rate_bps is None:
                loads.pop(key, None)
                continue
            if link[1]:
                loads[key] = (link[0], host.switch, rate_bps / link[1])
        if complete:
            for key in [k for k in loads if k not in seen]:
                del loads[key]
        # Every link out of this switch is now measured, loaded or not: an empty share map
        # means "no rule sent anything here", not "unknown" (rule counters lag port
        # counters by up to a revalidation interval, ~0.5 s in OVS, so a window can be empty).
        own = {k: v for k, v in self.own_utilisation.items() if k[0] != node}
        own.update({(node, nbr): {} for nbr in self.neighbours.get(node, ())})
        for nbr, dst, u in loads.values():
            if u > 0:
                shares = own.setdefault((node, nbr), {})
                shares[dst] = shares.get(dst, 0.0) + u
        self.own_utilisation = own

    def utilisation_record(self, node: int) -> dict:
        """Stats-log record of the links out of ``node`` (4 decimals: 1e-4 of capacity)."""
        return {"event": "utilisation", "node": node,
                "links": {f"{a}-{b}": round(u, 4) for (a, b), u in self.utilisation.items() if a == node},
                "by_destination": {f"{a}-{b}": {str(d): round(x, 4) for d, x in shares.items()}
                                   for (a, b), shares in self.own_utilisation.items() if a == node}}

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

    def paths_record(self, cause: str) -> dict | None:
        """Stats-log record of the host-to-host switch paths that changed since the last
        record (``cause``: what recomputed them); None if none changed."""
        paths = self.host_paths()
        changed = {f"{a}-{b}": "-".join(map(str, p)) for (a, b), p in paths.items()
                   if self.logged_paths.get((a, b)) != p}
        gone = [f"{a}-{b}" for (a, b) in self.logged_paths if (a, b) not in paths]
        self.logged_paths = paths
        if not changed and not gone:
            return None
        return {"event": "paths", "cause": cause, "t_s": self.t_s, "step": self.step,
                "paths": changed, "unreachable": gone}

    def carrying_switches(self) -> frozenset[int]:
        """Switches that traffic between hosts can cross under the current routes.

        Every switch reachable from a host's switch along any next hop (every ECMP
        bucket) towards another host's switch. Traffic enters only at hosts and the
        rules only lead to host switches, so no other switch carries any (hosts have
        static ARP entries: nothing is flooded); their links are idle by construction.
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
        return StepStats(compute_s=self.clock() - t0)
