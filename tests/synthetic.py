"""Small synthetic meshes and their wiring, for tests and benchmarks.

Stand-ins built directly with networkx so the routing core can be tested
without :mod:`topologies`: a chain, a ring and a +Grid torus (each satellite
linked to its two in-plane neighbours and the same slot in the two adjacent
planes -- the usual laser-mesh pattern).  Switch ids are ``plane * per_plane
+ slot``.  Random delays are drawn from a seeded generator, so a graph is
fully determined by its arguments.
"""

from __future__ import annotations

import random

import networkx as nx

from controllers.rules import HostAttachment

__all__ = ["CAPACITY_BPS", "HOST_PORT", "chain", "ring", "plus_grid", "wiring", "host_address"]

#: Laser link rate used for synthetic graphs (200 Gbps).
CAPACITY_BPS = 200e9
#: OpenFlow port of the (single) host on each switch in :func:`wiring`.
HOST_PORT = 1


def _delay(rng: random.Random | None, delay_s: float, delay_range_s: tuple[float, float]) -> float:
    return delay_s if rng is None else rng.uniform(*delay_range_s)


def _graph(n: int, edges, delay_s, delay_range_s, seed) -> nx.Graph:
    rng = None if seed is None else random.Random(seed)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    for u, v in edges:
        graph.add_edge(u, v, delay_s=_delay(rng, delay_s, delay_range_s), capacity_bps=CAPACITY_BPS)
    return graph


def chain(n: int, *, delay_s: float = 0.005, delay_range_s=(0.002, 0.017), seed: int | None = None) -> nx.Graph:
    """Switches ``0 - 1 - ... - n-1``.  Equal delays ``delay_s`` unless
    ``seed`` is given, then uniform in ``delay_range_s``."""
    return _graph(n, ((i, i + 1) for i in range(n - 1)), delay_s, delay_range_s, seed)


def ring(n: int, *, delay_s: float = 0.005, delay_range_s=(0.002, 0.017), seed: int | None = None) -> nx.Graph:
    """A chain closed into a ring (n >= 3)."""
    return _graph(n, ((i, (i + 1) % n) for i in range(n)), delay_s, delay_range_s, seed)


def plus_grid(
    planes: int,
    per_plane: int,
    *,
    delay_s: float = 0.005,
    delay_range_s=(0.002, 0.017),
    seed: int | None = None,
) -> nx.Graph:
    """+Grid torus: ``planes x per_plane`` switches, 4 links each (wrap-around).

    Both dimensions must be >= 3 so the four neighbours are distinct.
    ``planes=72, per_plane=22`` is Starlink shell 1: 1,584 switches, 3,168 links.
    """
    if planes < 3 or per_plane < 3:
        raise ValueError("plus_grid needs planes >= 3 and per_plane >= 3")

    def node(p: int, s: int) -> int:
        return (p % planes) * per_plane + s % per_plane

    edges = []
    for p in range(planes):
        for s in range(per_plane):
            edges.append((node(p, s), node(p, s + 1)))  # in-plane
            edges.append((node(p, s), node(p + 1, s)))  # cross-plane
    return _graph(planes * per_plane, edges, delay_s, delay_range_s, seed)


def wiring(graph: nx.Graph, host_switches=None) -> tuple[dict[tuple[int, int], int], dict[str, HostAttachment]]:
    """Port numbers and one host per switch.

    Port 1 of each switch is its host; neighbours get ports 2, 3, ... in
    neighbour-id order.  The host on switch ``s`` has address
    :func:`host_address` ``(s)``, unique for ``s < 65536``.

    Returns
    -------
    ports : dict (switch, neighbour) -> port
    hosts : dict address -> HostAttachment, for ``host_switches`` (default all)
    """
    ports = {}
    for u in sorted(graph):
        for i, v in enumerate(sorted(graph[u])):
            ports[(u, v)] = HOST_PORT + 1 + i
    switches = sorted(graph) if host_switches is None else sorted(host_switches)
    hosts = {
        host_address(s): HostAttachment(s, HOST_PORT, f"02:00:00:00:{s >> 8 & 0xFF:02x}:{s & 0xFF:02x}")
        for s in switches
    }
    return ports, hosts


def host_address(switch: int) -> str:
    """IPv4 address of the synthetic host on ``switch``."""
    return f"10.{switch >> 8 & 0xFF}.{switch & 0xFF}.1"
