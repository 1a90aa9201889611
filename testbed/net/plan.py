"""The network plan: a pure description of what to build (no root, no side effects).

Every node of a schedule (satellite or ground station) becomes one OVS switch. Compute
satellites and ground stations also get one host (a network namespace) attached to their
own switch on port 1 by a zero-delay, unshaped veth (the GPU sits inside the satellite;
the ground station's router sits next to its terminal). Laser links (ISL) and ground
links (GSL) are links between switches; a ground-link handover is therefore a GSL going
down and another coming up, the same mechanism as any laser link.

Addressing is deterministic (documented in the README):
  host of node n  -> IPv4 10.100.0.0/16 + (n + 1), MAC 02:6c:6d:NN:NN:NN (n in hex),
  switch of node n -> datapath id n + 1, bridge ``lms<n>``,
  link (a, b)     -> interfaces ``lm<a>-<b>`` (port on a) and ``lm<b>-<a>`` (port on b).
Ports: 1 is the host port (if any); links get ports 2, 3, ... on each switch in sorted
(a, b) order.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

HOST_NET = ipaddress.IPv4Network("10.100.0.0/16")
HOST_PORT = 1
FIRST_LINK_PORT = 2


@dataclass(frozen=True)
class SwitchSpec:
    node_id: int
    bridge: str
    dpid: int


@dataclass(frozen=True)
class HostSpec:
    node_id: int
    name: str
    kind: str        # "compute" | "ground"
    netns: str
    ip: str
    mac: str
    switch: int      # node id of the switch it hangs off (its own node)
    port: int        # OpenFlow port on that switch
    sw_ifname: str   # switch-side veth end (root namespace)


@dataclass(frozen=True)
class LinkSpec:
    link_id: int
    a: int
    b: int
    kind: str        # "isl" | "gsl"
    port_a: int
    port_b: int
    if_a: str
    if_b: str
    rate_bps: float  # shaped rate, capacity_bps x rate_scale, each direction
    delay_s: float   # initial one-way delay
    up: bool         # initial state


@dataclass(frozen=True)
class NetworkPlan:
    switches: tuple[SwitchSpec, ...]
    hosts: tuple[HostSpec, ...]
    links: tuple[LinkSpec, ...]

    def ports(self) -> dict[tuple[int, int], int]:
        """(switch, neighbour switch) -> OpenFlow port on ``switch``."""
        out = {}
        for lk in self.links:
            out[(lk.a, lk.b)] = lk.port_a
            out[(lk.b, lk.a)] = lk.port_b
        return out

    def host_by_name(self, name: str) -> HostSpec:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)


def host_ip(node_id: int) -> str:
    return str(HOST_NET.network_address + node_id + 1)


def host_mac(node_id: int) -> str:
    n = node_id + 1
    return "02:6c:6d:%02x:%02x:%02x" % ((n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF)


def make_plan(
    node_ids: Iterable[int],
    host_nodes: dict[int, tuple[str, str]],
    links: Iterable[tuple[int, int, str, float, float, bool]],
) -> NetworkPlan:
    """Builds a plan.

    Parameters
    ----------
    node_ids : every node that gets a switch.
    host_nodes : node id -> (host name, kind) for nodes that get a host.
    links : (a, b, kind, rate_bps, initial delay_s, initially up) per link, any order;
        (a, b) and (b, a) are the same link and may appear once only.
    """
    node_ids = sorted(set(node_ids))
    if max(node_ids, default=0) >= HOST_NET.num_addresses - 2:
        raise ValueError(f"too many nodes for {HOST_NET}: {len(node_ids)}")
    switches = tuple(SwitchSpec(n, f"lms{n}", n + 1) for n in node_ids)
    known = set(node_ids)
    hosts = []
    for n in sorted(host_nodes):
        if n not in known:
            raise ValueError(f"host node {n} has no switch")
        name, kind = host_nodes[n]
        hosts.append(HostSpec(n, name, kind, f"lmtb-h{n}", host_ip(n), host_mac(n), n, HOST_PORT, f"lmh{n}"))
    canon = {}
    for a, b, kind, rate_bps, delay_s, up in links:
        if a == b or a not in known or b not in known:
            raise ValueError(f"link ({a}, {b}) joins unknown or identical nodes")
        key = (min(a, b), max(a, b))
        if key in canon:
            raise ValueError(f"link {key} listed twice")
        canon[key] = (kind, float(rate_bps), float(delay_s), bool(up))
    next_port: dict[int, int] = defaultdict(lambda: FIRST_LINK_PORT)
    specs = []
    for i, (a, b) in enumerate(sorted(canon)):
        kind, rate_bps, delay_s, up = canon[(a, b)]
        pa, pb = next_port[a], next_port[b]
        next_port[a] += 1
        next_port[b] += 1
        specs.append(LinkSpec(i, a, b, kind, pa, pb, f"lm{a}-{b}", f"lm{b}-{a}", rate_bps, delay_s, up))
    return NetworkPlan(switches, tuple(hosts), tuple(specs))


def chain_plan(n_switches: int, delay_s: float, rate_bps: float) -> NetworkPlan:
    """A chain of ``n_switches`` satellites with a host at each end (the end-to-end slice)."""
    if n_switches < 2:
        raise ValueError("a chain needs at least 2 switches")
    last = n_switches - 1
    return make_plan(
        range(n_switches),
        {0: ("h0", "compute"), last: (f"h{last}", "compute")},
        [(i, i + 1, "isl", rate_bps, delay_s, True) for i in range(last)],
    )
