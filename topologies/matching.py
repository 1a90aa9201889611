"""Greedy b-matching: pick edges cheapest-first while both ends have capacity.

The sequential rule -- sort edges by (cost, u, v), accept an edge when both
endpoints still have a free port -- is computed here in vectorised rounds
("b-suitor" style): in each round an edge is accepted when it is among the
``capacity`` cheapest remaining edges at *both* endpoints.  This accepts
exactly the edges the sequential rule accepts, in far fewer numpy passes.
"""

from __future__ import annotations

import numpy as np


def greedy_b_matching(u: np.ndarray, v: np.ndarray, cost: np.ndarray,
                      capacity: np.ndarray) -> np.ndarray:
    """Edges chosen by the greedy rule.

    Parameters
    ----------
    u, v : numpy.ndarray of int, shape (E,)
        Edge endpoints (vertex indices into ``capacity``), ``u != v``.
    cost : numpy.ndarray of float, shape (E,)
        Lower is preferred; ties are broken by (u, v) then input order.
    capacity : numpy.ndarray of int, shape (V,)
        Free ports per vertex (not modified).

    Returns
    -------
    numpy.ndarray of bool, shape (E,)
        Whether each edge is accepted.
    """
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    n_edges = u.size
    accepted = np.zeros(n_edges, dtype=bool)
    if n_edges == 0:
        return accepted
    cap = np.asarray(capacity, dtype=np.int64).copy()
    rank = np.empty(n_edges, dtype=np.int64)
    rank[np.lexsort((np.arange(n_edges), v, u, cost))] = np.arange(n_edges)
    live = np.flatnonzero((cap[u] > 0) & (cap[v] > 0))
    while live.size:
        # Each live edge appears once at each endpoint; rank them per vertex.
        ends = np.concatenate([u[live], v[live]])
        edge_rank = np.concatenate([rank[live], rank[live]])
        order = np.lexsort((edge_rank, ends))
        sorted_ends = ends[order]
        starts = np.flatnonzero(np.r_[True, sorted_ends[1:] != sorted_ends[:-1]])
        group_start = np.repeat(starts, np.diff(np.r_[starts, sorted_ends.size]))
        position = np.empty_like(order)
        position[order] = np.arange(order.size) - group_start
        in_top = position < cap[ends]
        win = in_top[:live.size] & in_top[live.size:]
        chosen = live[win]
        accepted[chosen] = True
        np.subtract.at(cap, u[chosen], 1)
        np.subtract.at(cap, v[chosen], 1)
        rest = live[~win]
        live = rest[(cap[u[rest]] > 0) & (cap[v[rest]] > 0)]
    return accepted


def greedy_b_matching_reference(u, v, cost, capacity) -> np.ndarray:
    """Plain sequential version of :func:`greedy_b_matching` (for tests)."""
    cap = np.asarray(capacity, dtype=np.int64).copy()
    order = np.lexsort((np.arange(len(u)), v, u, cost))
    accepted = np.zeros(len(u), dtype=bool)
    for e in order:
        if cap[u[e]] > 0 and cap[v[e]] > 0:
            accepted[e] = True
            cap[u[e]] -= 1
            cap[v[e]] -= 1
    return accepted
