"""Shortest-path trees toward many destinations at once, vectorised with numpy.

All shipped algorithms share one shape: give every directed link ``u -> v`` a
cost, compute for every destination ``d`` the cost-distance ``dist[d, u]``
from every switch ``u`` to ``d``, then let each switch pick next hops among
its neighbours.  This module does the heavy part fast and deterministically.

Representation (:class:`IndexedGraph`)
    Switches are renumbered ``0..N-1`` in sorted id order.  Neighbours are
    held in a padded ``(N, W)`` matrix (``W`` = max degree), each row sorted by
    neighbour id, so "first matching slot" = "smallest neighbour id": that is
    the tie-break everywhere.  ``out_cost[u, k]`` is the cost of ``u -> nbr[u, k]``;
    padding slots point back at ``u`` and cost ``inf``, so they never win.
    Laser meshes have degree <= ~6, so padding is cheap; a ground station that
    sees a hundred satellites makes ``W`` 100 (memory ``O(N * W)``) but no
    degree is refused.  Memory is ``O(N * W)`` for the graph and ``O(D * N)``
    per working array.

Distances (:func:`distances`)
    A label-correcting (Bellman-Ford) search run for all ``D`` destinations
    together over one flat array of ``D`` rows: each round relaxes only the
    entries whose distance dropped in the previous round, each once.  Rounds
    = hop depth of the trees (~60 on a 72 x 22 +Grid), each a handful of
    numpy calls on flat arrays.  (scipy's csgraph would do Dijkstra in C, but scipy is not
    a dependency.)
    With positive costs the float fixed point is unique, so the result is
    bit-identical to Dijkstra's (:func:`dijkstra_distances`, kept as the
    reference and tested against it).

Loop freedom
    Every next hop chosen here satisfies ``dist[d, v] < dist[d, u]``: the
    distance to the destination strictly decreases at each hop, so the union
    of all switches' choices (single- or multipath) cannot loop.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np

from ..errors import RoutingError
from .base import NextHops, Routes

__all__ = [
    "IndexedGraph",
    "distances",
    "dijkstra_distances",
    "via_costs",
    "best_next",
    "pick_first",
    "multipath_masks",
    "MASK_BITS",
]

#: Slots an int64 next-hop bit mask can hold; wider graphs use Python-int masks.
MASK_BITS = 63

Weight = str | Callable[[Any, Any, dict], float] | None


class IndexedGraph:
    """Array form of an undirected graph with directed link costs.

    Build with :meth:`from_graph`; derive other costs with :meth:`with_costs`.

    Attributes
    ----------
    nodes : tuple
        Switch ids in sorted order; index ``i`` <-> ``nodes[i]``.
    index : dict
        Switch id -> index.
    nbr : ndarray, shape (N, W), int64
        Neighbour indices, each row ascending; padding slots hold the row's
        own index (so a padding slot is never "closer" to anything).
    valid : ndarray, shape (N, W), bool
        True for real slots.
    out_cost : ndarray, shape (N, W), float64
        Cost of ``u -> nbr[u, k]``; ``inf`` on padding.
    rev_slot : ndarray, shape (N, W), int64
        Slot of ``u`` in row ``nbr[u, k]`` (the reverse direction).
    """

    __slots__ = ("nodes", "index", "nbr", "valid", "out_cost", "rev_slot", "__dict__")

    def __init__(self, nodes, index, nbr, valid, out_cost, rev_slot):
        self.nodes = nodes
        self.index = index
        self.nbr = nbr
        self.valid = valid
        self.out_cost = out_cost
        self.rev_slot = rev_slot

    # -- construction ---------------------------------------------------------

    @classmethod
    def from_graph(cls, graph: nx.Graph, weight: Weight = "delay_s") -> "IndexedGraph":
        """Index ``graph`` with link costs from ``weight``.

        Parameters
        ----------
        graph : networkx.Graph
            Undirected, no self-loops.
        weight : str, callable or None
            Edge attribute name (same cost both directions), a function
            ``weight(u, v, data) -> float`` giving the cost of ``u -> v``,
            or None for cost 1 on every link.  Costs must be finite and > 0.

        Raises
        ------
        RoutingError
            On a self-loop or a missing/non-positive/non-finite cost.
        """
        try:
            nodes = tuple(sorted(graph))
        except TypeError:
            raise RoutingError("switch ids must be mutually comparable (ints)") from None
        index = {u: i for i, u in enumerate(nodes)}
        n = len(nodes)
        us: list[int] = []
        vs: list[int] = []
        c_uv: list[float] = []
        c_vu: list[float] = []
        if weight is None:
            for u, v in graph.edges():
                us.append(index[u])
                vs.append(index[v])
            c_uv = [1.0] * len(us)
            c_vu = c_uv
        elif isinstance(weight, str):
            for u, v, c in graph.edges(data=weight):
                us.append(index[u])
                vs.append(index[v])
                c_uv.append(c)
            c_vu = c_uv
        else:
            for u, v, data in graph.edges(data=True):
                us.append(index[u])
                vs.append(index[v])
                c_uv.append(weight(u, v, data))
                c_vu.append(weight(v, u, data))
        if None in c_uv or None in c_vu:
            i = (c_uv + c_vu).index(None)
            u, v = (us + vs)[i], (vs + us)[i]
            raise RoutingError(f"link ({nodes[u]}, {nodes[v]}): cost {weight!r} is missing")
        src = np.array(us + vs, dtype=np.int64)
        dst = np.array(vs + us, dtype=np.int64)
        try:
            cost = np.array(c_uv + c_vu, dtype=np.float64)
        except (TypeError, ValueError):
            bad = next(i for i, c in enumerate(c_uv + c_vu) if not _is_number(c))
            raise RoutingError(
                f"link ({nodes[src[bad]]}, {nodes[dst[bad]]}): cost {weight!r} is missing or not a number"
            ) from None
        if np.any(src == dst):
            bad = int(src[np.argmax(src == dst)])
            raise RoutingError(f"self-loop on switch {nodes[bad]}: links must join two different switches")
        bad_cost = ~(np.isfinite(cost) & (cost > 0))
        if np.any(bad_cost):
            i = int(np.argmax(bad_cost))
            raise RoutingError(
                f"link ({nodes[src[i]]}, {nodes[dst[i]]}): cost must be finite and > 0, got {cost[i]!r}"
            )
        return cls._from_arrays(nodes, index, n, src, dst, cost)

    @classmethod
    def _from_arrays(cls, nodes, index, n, src, dst, cost) -> "IndexedGraph":
        order = np.lexsort((dst, src))
        src, dst, cost = src[order], dst[order], cost[order]
        degree = np.bincount(src, minlength=n)
        width = max(int(degree.max()) if n and src.size else 0, 1)
        start = np.concatenate(([0], np.cumsum(degree)[:-1])) if n else np.zeros(0, np.int64)
        slot = np.arange(src.size) - start[src]
        nbr = np.repeat(np.arange(n, dtype=np.int64)[:, None], width, axis=1)  # padding: self
        valid = np.zeros((n, width), dtype=bool)
        out_cost = np.full((n, width), np.inf)
        nbr[src, slot] = dst
        valid[src, slot] = True
        out_cost[src, slot] = cost
        # slot of the reverse link: edges are sorted by key src * n + dst
        key = src * n + dst
        rev = np.searchsorted(key, dst * n + src)
        rev_slot = np.zeros((n, width), dtype=np.int64)
        rev_slot[src, slot] = slot[rev]
        return cls(nodes, index, nbr, valid, out_cost, rev_slot)

    def with_costs(self, out_cost: np.ndarray) -> "IndexedGraph":
        """Same topology with another ``(N, W)`` directed cost matrix.

        Padding slots are forced to ``inf``; real slots must be finite > 0.
        """
        out_cost = np.where(self.valid, np.asarray(out_cost, dtype=np.float64), np.inf)
        real = out_cost[self.valid]
        if not np.all(np.isfinite(real) & (real > 0)):
            raise RoutingError("derived link costs must be finite and > 0")
        return IndexedGraph(self.nodes, self.index, self.nbr, self.valid, out_cost, self.rev_slot)

    # -- lookups --------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of switches N."""
        return len(self.nodes)

    @cached_property
    def in_cost(self) -> np.ndarray:
        """``(N, W)``: cost of ``nbr[v, k] -> v`` at row ``v``; inf on padding."""
        return np.where(self.valid, self.out_cost[self.nbr, self.rev_slot], np.inf)

    @cached_property
    def slots(self) -> dict[tuple[Any, Any], tuple[int, int]]:
        """``(u id, v id) -> (index of u, slot of v in u's row)`` for every directed link."""
        rows, cols = np.nonzero(self.valid)
        nodes = self.nodes
        nbr = self.nbr
        return {
            (nodes[r], nodes[nbr[r, c]]): (r, c) for r, c in zip(rows.tolist(), cols.tolist())
        }

    @cached_property
    def _nbr_ids(self) -> list[list[Any]]:
        nodes = self.nodes
        return [[nodes[i] for i in row] for row in self.nbr.tolist()]

    def indices(self, switches: Iterable[Any]) -> np.ndarray:
        """Sorted indices of ``switches`` (ids that are nodes of the graph)."""
        return np.array(sorted(self.index[s] for s in switches), dtype=np.int64)

    # -- output ---------------------------------------------------------------

    def routes_from_next(self, dest_idx: Sequence[int], next_idx: np.ndarray) -> Routes:
        """Build single-path :data:`Routes` from next-hop indices.

        Parameters
        ----------
        dest_idx : sequence of int, length D
            Destination indices (rows of ``next_idx``).
        next_idx : ndarray, shape (D, N), int64
            ``next_idx[j, u]`` = index of the neighbour switch ``u`` forwards
            to for destination ``dest_idx[j]``; -1 = no entry.
        """
        nodes = self.nodes
        dest_ids = [nodes[int(d)] for d in dest_idx]
        dest_set = set(dest_ids)
        # index -> ((id, 1.0),); the extra last element (None) serves index -1.
        # Gathering these objects with numpy and one tolist() avoids creating
        # a Python int per entry; what remains is the dict inserts.
        hops = np.fromiter(
            itertools.chain((((u, 1.0),) for u in nodes), (None,)), dtype=object, count=len(nodes) + 1
        )
        rows = hops.take(next_idx.T).tolist()  # (N, D) next hops
        missing = np.count_nonzero(next_idx < 0, axis=0).tolist()
        routes: Routes = {}
        for u, row, holes in zip(nodes, rows, missing):
            entry = dict(zip(dest_ids, row))
            if holes:
                if holes == 1 and u in dest_set and entry[u] is None:
                    del entry[u]
                else:
                    entry = {d: h for d, h in entry.items() if h is not None}
            routes[u] = entry
        return routes

    def routes_from_masks(self, dest_idx: Sequence[int], masks: np.ndarray) -> Routes:
        """Build :data:`Routes` from next-hop slot bit masks (multipath).

        Parameters
        ----------
        dest_idx : sequence of int, length D
            Destination indices (rows of ``masks``).
        masks : ndarray, shape (D, N), int64
            Bit ``k`` of ``masks[j, u]`` set = switch ``u`` forwards traffic
            for destination ``dest_idx[j]`` to ``nbr[u, k]``.  0 = no entry.
            Weights are equal over the set bits.
        """
        nodes = self.nodes
        dest_ids = [nodes[int(d)] for d in dest_idx]
        nbr_ids = self._nbr_ids
        routes: Routes = {}
        for u, row, ids in zip(nodes, masks.T.tolist(), nbr_ids):
            cache = {m: _next_hops(ids, m) for m in set(row)}
            entry = dict(zip(dest_ids, map(cache.__getitem__, row)))
            if 0 in cache:
                entry = {d: h for d, h in entry.items() if h is not None}
            routes[u] = entry
        return routes


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)


def _next_hops(ids: list[Any], mask: int) -> NextHops | None:
    if mask == 0:
        return None
    chosen = [ids[k] for k in range(mask.bit_length()) if mask >> k & 1]
    weight = 1.0 / len(chosen)
    return tuple((v, weight) for v in chosen)


# -- distances ---------------------------------------------------------------


def distances(graph: IndexedGraph, dest_idx: Sequence[int]) -> np.ndarray:
    """Cost-distance from every switch to every destination.

    Parameters
    ----------
    graph : IndexedGraph
    dest_idx : sequence of int, length D
        Destination indices.

    Returns
    -------
    ndarray, shape (D, N), float64
        ``dist[j, u]`` = least total cost of a path ``u -> dest_idx[j]``
        (``inf`` if unreachable, 0 at the destination).

    Notes
    -----
    Entry ``(j, v)`` lives at flat index ``j * stride + v`` of one array,
    ``stride`` the power of two >= N, so an entry's switch is
    ``index & (stride - 1)`` (a bit mask; ``% N`` costs ~10x more).
    Each round, every *active* entry ``(j, v)`` offers ``dist + cost(u -> v)``
    to each in-neighbour ``u``; only offers below the current distance are
    applied, and the entries they lower are the next round's active set.
    The link tables are slot-major ``(W * N,)`` (element ``k * N + v`` =
    slot ``k`` of ``v``), so a round gathers them with one flat ``take`` per
    table: a row gather of an ``(N, W)`` matrix (``in_cost[v]``) is about
    six times slower in numpy.
    """
    n = graph.size
    dest = np.asarray(dest_idx, dtype=np.int64)
    if dest.size == 0:
        return np.full((0, n), np.inf)
    stride = 1 << (n - 1).bit_length()
    width = graph.nbr.shape[1]
    # slot-major link tables, (W * N,): neighbour index minus own index, and
    # the cost of the in-link nbr[v, k] -> v
    step = (graph.nbr - np.arange(n, dtype=np.int64)[:, None]).T.ravel()
    in_cost = graph.in_cost.T.ravel()
    slot_start = (np.arange(width, dtype=np.int64) * n)[:, None]  # (W, 1)
    dist = np.full(dest.size * stride, np.inf)
    owner = np.empty(dist.size, dtype=np.int64)  # scratch for removing duplicates
    active = dest + np.arange(dest.size, dtype=np.int64) * stride
    dist[active] = 0.0
    while active.size:
        link = (active & (stride - 1)) + slot_start  # (W, A): in-links of each active entry
        target = (step.take(link) + active).ravel()  # flat index of (j, neighbour u)
        offer = (in_cost.take(link) + dist.take(active)).ravel()
        better = np.flatnonzero(offer < dist.take(target))
        target = target.take(better)
        np.minimum.at(dist, target, offer.take(better))
        # entries lowered this round relax next round, each once (with equal
        # costs many offers tie; a frontier keeping duplicates would multiply
        # them every round): keep one occurrence of each target, the one
        # whose position won the scatter into ``owner``
        order = np.arange(target.size)
        owner[target] = order
        active = target.take(np.flatnonzero(owner.take(target) == order))
    return np.ascontiguousarray(dist.reshape(dest.size, stride)[:, :n])


def dijkstra_distances(graph: IndexedGraph, dest_idx: Sequence[int]) -> np.ndarray:
    """Reference: Dijkstra toward each destination, pure Python (heapq).

    Same contract as :func:`distances` and, bit for bit, the same result
    (tested); kept as the oracle and as the benchmark's baseline.
    """
    n = graph.size
    in_rows = [
        [(u, c) for u, c, ok in zip(nbrs, costs, oks) if ok]
        for nbrs, costs, oks in zip(graph.nbr.tolist(), graph.in_cost.tolist(), graph.valid.tolist())
    ]
    rows = []
    for dest in dest_idx:
        dist = [math.inf] * n
        dist[int(dest)] = 0.0
        done = [False] * n
        heap = [(0.0, int(dest))]
        while heap:
            d, v = heapq.heappop(heap)
            if done[v]:
                continue
            done[v] = True
            for u, c in in_rows[v]:
                candidate = d + c
                if candidate < dist[u]:
                    dist[u] = candidate
                    heapq.heappush(heap, (candidate, u))
        rows.append(dist)
    return np.array(rows, dtype=np.float64).reshape(len(rows), n)


# -- next-hop choice ------------------------------------------------------------


def via_costs(graph: IndexedGraph, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cost of reaching each destination through each neighbour.

    Returns
    -------
    via : ndarray, shape (D, N, W)
        ``out_cost[u, k] + dist[j, nbr[u, k]]`` (``inf`` on padding).
    downhill : ndarray, shape (D, N, W), bool
        ``dist[j, nbr[u, k]] < dist[j, u]``: the neighbours allowed as next
        hops.  False on padding (a padding slot points at ``u`` itself) and
        for unreachable ``u`` (nothing is below ``inf`` that ``u`` can reach).
    """
    ahead = dist[:, graph.nbr]
    via = graph.out_cost[None, :, :] + ahead
    downhill = ahead < dist[:, :, None]
    return via, downhill


def best_next(graph: IndexedGraph, dist: np.ndarray) -> np.ndarray:
    """One next hop per (destination, switch): the neighbour on a least-cost
    path, smallest neighbour id on ties.

    Returns
    -------
    ndarray, shape (D, N), int64
        Neighbour index, or -1 (the destination itself, or unreachable).
    """
    chosen = np.full(dist.shape, -1, dtype=np.int64)
    hit = np.empty(dist.shape, dtype=bool)
    # slot by slot (W is small), from the last: a smaller slot overwrites a
    # larger one, and ascending slots = ascending neighbour ids
    for k in reversed(range(graph.nbr.shape[1])):
        nbr_k = graph.nbr[:, k]
        ahead = dist.take(nbr_k, axis=1)
        np.less(ahead, dist, out=hit)
        hit &= graph.out_cost[:, k] + ahead == dist
        np.copyto(chosen, nbr_k, where=hit)
    return chosen


def pick_first(graph: IndexedGraph, hit: np.ndarray) -> np.ndarray:
    """``(D, N)`` index of the neighbour in the first ``True`` slot of
    ``hit`` (``(D, N, W)``; slots ascend by neighbour id), -1 if none."""
    first = hit.argmax(axis=2)
    chosen = np.take_along_axis(graph.nbr, first.T, axis=1).T
    return np.where(hit.any(axis=2), chosen, -1)


def multipath_masks(graph: IndexedGraph, dist: np.ndarray, k_max: int, max_stretch: float) -> np.ndarray:
    """Up to ``k_max`` downhill next hops per (destination, switch).

    A neighbour ``v`` of ``u`` qualifies if it is downhill
    (``dist[v] < dist[u]``) and ``cost(u, v) + (1 + s) * dist[v] <= (1 + s) *
    dist[u]`` with ``s = max_stretch``.  By induction from the destination,
    every path through the union of qualifying next hops then costs at most
    ``(1 + s)`` times the least cost -- an end-to-end bound, not a per-hop
    one.  The least-cost neighbour always qualifies, so reachable switches
    get >= 1 next hop; ``s = inf`` admits every downhill neighbour.  Of the
    qualifying neighbours the ``k_max`` with the cheapest ``cost(u, v) + dist[v]``
    are kept (ties: smaller neighbour id).

    Returns
    -------
    ndarray, shape (D, N), int64 (object of Python ints when W > MASK_BITS)
        Bit masks of the chosen slots.
    """
    width = graph.nbr.shape[1]
    wide = width > MASK_BITS
    scale = 1.0 + max_stretch
    vias, allowed = [], []
    for k in range(width):
        ahead = dist[:, graph.nbr[:, k]]
        via = graph.out_cost[:, k] + ahead
        ok = ahead < dist  # downhill
        if math.isfinite(max_stretch):
            ok &= (via == dist) | (graph.out_cost[:, k] + scale * ahead <= scale * dist)
        vias.append(via)
        allowed.append(ok)
    if wide:
        return _masks_by_sort(vias, allowed, k_max)
    masks = np.zeros(dist.shape, dtype=np.int64)
    for k in range(width):
        # rank of slot k among allowed slots: cheaper ones, then equal ones with smaller id
        rank = np.zeros(dist.shape, dtype=np.int64)
        for j in range(width):
            if j != k:
                ahead_of_k = (vias[j] < vias[k]) | ((vias[j] == vias[k]) & (j < k))
                rank += allowed[j] & ahead_of_k
        masks |= np.where(allowed[k] & (rank < k_max), np.int64(1) << k, 0)
    return masks


def _masks_by_sort(vias: list[np.ndarray], allowed: list[np.ndarray], k_max: int) -> np.ndarray:
    """The same choice as :func:`multipath_masks`' pairwise ranking, for wide graphs.

    A stable sort of the allowed slots by via cost (disallowed ones last) ranks
    equal costs by slot, as the pairwise count does, in ``O(W log W)`` instead of
    ``O(W^2)`` passes.  Masks are Python ints (object array), as ``W`` exceeds
    :data:`MASK_BITS`.  Memory ``D * N * W``.
    """
    ok = np.stack(allowed, axis=-1)
    key = np.where(ok, np.stack(vias, axis=-1), np.inf)
    order = np.argsort(key, axis=-1, kind="stable")[..., :k_max]
    chosen = np.take_along_axis(ok, order, axis=-1)
    one = np.array(1, dtype=object)
    masks = np.zeros(ok.shape[:-1], dtype=object)
    for j in range(order.shape[-1]):
        masks |= np.where(chosen[..., j], one << order[..., j].astype(object), 0)
    return masks
