"""Turn policy output into the per-step link table, applying acquisition time.

Rows are one per (step, link) for every link that exists at that step, sorted
by (step, a, b).  A link that (re)appears at step k is ``up`` only from the
first step whose time is at least ``t_k + acquisition_s``; links present at
step 0 are taken as already acquired before the window starts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .constants import C_KM_S
from .errors import TopologyError
from .isl import LinkSet

#: Link kinds, in the order of the categorical codes used in the table.
LINK_KINDS = ("isl", "gsl")

#: Columns of the link table and their dtypes (kind is categorical).
LINK_COLUMNS = {
    "step": "int32", "a": "int32", "b": "int32", "kind": "category",
    "distance_km": "float64", "delay_s": "float64", "capacity_bps": "float64",
    "up": "bool",
}

_TIME_EPS_S = 1e-9


def up_mask(mask: np.ndarray, times_s: np.ndarray, acquisition_s: np.ndarray) -> np.ndarray:
    """Usable-link mask ``(T, P)`` from the existence mask ``(T, P)``.

    ``acquisition_s`` has shape (P,).  Runs that start at step 0 are up at once.
    """
    n_steps = mask.shape[0]
    if mask.size == 0:
        return mask.copy()
    appear = mask.copy()
    appear[1:] &= ~mask[:-1]
    start = np.where(appear, np.arange(n_steps, dtype=np.int32)[:, None], np.int32(-1))
    np.maximum.accumulate(start, axis=0, out=start)
    waited = times_s[:, None] - times_s[np.maximum(start, 0)]
    ready = (start == 0) | (waited >= acquisition_s[None, :] - _TIME_EPS_S)
    return mask & ready


def _row_distances_km(node_ecef_km: np.ndarray, steps: np.ndarray, a: np.ndarray,
                      b: np.ndarray, chunk_rows: int = 1 << 20) -> np.ndarray:
    """|pos[step, a] - pos[step, b]| per row, computed in chunks to bound memory."""
    n_nodes = node_ecef_km.shape[1]
    flat = node_ecef_km.reshape(-1, 3)
    out = np.empty(steps.size)
    for lo in range(0, steps.size, chunk_rows):
        hi = min(lo + chunk_rows, steps.size)
        base = steps[lo:hi].astype(np.int64) * n_nodes
        d = flat[base + a[lo:hi]] - flat[base + b[lo:hi]]
        out[lo:hi] = np.sqrt(np.einsum("ri,ri->r", d, d))
    return out


def _link_set_rows(link_set: LinkSet, kind: str, capacity: np.ndarray, acquisition_s: float,
                   node_ecef_km: np.ndarray, times_s: np.ndarray) -> dict[str, np.ndarray]:
    """Rows of one link set as column arrays, sorted by (step, a, b).

    Boolean-mask extraction over the (T, P) mask keeps the row order
    row-major, i.e. by step then pair (pairs are sorted by (a, b)).
    """
    mask = link_set.mask
    shape = mask.shape
    pairs = link_set.pairs
    keys = pairs[:, 0] * node_ecef_km.shape[1] + pairs[:, 1]
    if np.any(pairs[:, 0] >= pairs[:, 1]) or np.any(np.diff(keys) <= 0):
        raise TopologyError(f"internal error: {kind} pairs not unique, sorted and a < b")

    def per_row(values, dtype) -> np.ndarray:
        return np.broadcast_to(np.asarray(values, dtype=dtype), shape)[mask]

    step = np.broadcast_to(np.arange(shape[0], dtype=np.int32)[:, None], shape)[mask]
    a = per_row(pairs[:, 0], np.int32)
    b = per_row(pairs[:, 1], np.int32)
    if link_set.distance_km is not None:
        distance_km = link_set.distance_km[mask]
    else:
        distance_km = _row_distances_km(node_ecef_km, step, a, b)
    up = up_mask(mask, times_s, np.full(shape[1], float(acquisition_s)))[mask]
    return {"step": step, "a": a, "b": b,
            "kind": np.full(step.size, LINK_KINDS.index(kind), dtype=np.int8),
            "distance_km": distance_km, "capacity_bps": per_row(capacity, np.float64),
            "up": up}


def _merge_rows(x: dict, y: dict, n_nodes: int) -> dict:
    """Merge two row sets, each sorted by (step, a, b), into one sorted set."""
    if y["step"].size == 0:
        return x
    if x["step"].size == 0:
        return y

    def key(rows):
        return (rows["step"].astype(np.int64) * n_nodes + rows["a"]) * n_nodes + rows["b"]

    kx, ky = key(x), key(y)
    at = np.searchsorted(kx, ky)
    if np.any(kx[np.minimum(at, kx.size - 1)] == ky):
        raise TopologyError("internal error: two policies produced the same link")
    y_pos = at + np.arange(ky.size)
    from_y = np.zeros(kx.size + ky.size, dtype=bool)
    from_y[y_pos] = True
    merged = {}
    for column in x:
        out = np.empty(from_y.size, dtype=x[column].dtype)
        out[y_pos] = y[column]
        out[~from_y] = x[column]
        merged[column] = out
    return merged


def assemble_links(link_sets: list[LinkSet], kinds: list[str], capacities: list[np.ndarray],
                   acquisitions_s: list[float], node_ecef_km: np.ndarray,
                   times_s: np.ndarray) -> pd.DataFrame:
    """Build the link table.

    Parameters
    ----------
    link_sets : list of LinkSet
        One per link kind (e.g. ISL then GSL).
    kinds : list of str
        Kind of each link set (``"isl"`` or ``"gsl"``).
    capacities : list of numpy.ndarray
        Capacity [bit/s] per pair of each link set, shape (P_i,).
    acquisitions_s : list of float
        Acquisition time [s] of each link set.
    node_ecef_km : numpy.ndarray, shape (T, n_nodes, 3)
    times_s : numpy.ndarray, shape (T,)
    """
    n_nodes = node_ecef_km.shape[1]
    rows = None
    for link_set, kind, capacity, acquisition_s in zip(link_sets, kinds, capacities,
                                                       acquisitions_s):
        part = _link_set_rows(link_set, kind, capacity, acquisition_s, node_ecef_km, times_s)
        rows = part if rows is None else _merge_rows(rows, part, n_nodes)
    return pd.DataFrame({
        "step": rows["step"],
        "a": rows["a"],
        "b": rows["b"],
        "kind": pd.Categorical.from_codes(rows["kind"], categories=list(LINK_KINDS)),
        "distance_km": rows["distance_km"],
        "delay_s": rows["distance_km"] / C_KM_S,
        "capacity_bps": rows["capacity_bps"],
        "up": rows["up"],
    }, copy=False)


def check_link_table(links: pd.DataFrame, n_nodes: int, n_steps: int,
                     first_ground_id: int, lasers_per_sat: int | None = None,
                     where: str = "links") -> None:
    """Raise :class:`TopologyError` if the table breaks a structural invariant.

    Checks columns and dtypes, node and step ranges, ``a < b``, sort order and
    uniqueness, kinds consistent with endpoints (ISL between satellites, GSL
    satellite-ground), ``delay_s == distance_km / c`` (1 ns), positive
    distances and capacities, and (if given) ISLs per satellite per step
    <= ``lasers_per_sat`` (an int, or one limit per node, shape ``(n_nodes,)``).
    """
    missing = [c for c in LINK_COLUMNS if c not in links.columns]
    if missing:
        raise TopologyError(f"missing column {missing[0]!r}", where)
    if len(links) == 0:
        return
    step = links["step"].to_numpy()
    a = links["a"].to_numpy()
    b = links["b"].to_numpy()
    if step.min() < 0 or step.max() >= n_steps:
        raise TopologyError(f"step out of range 0..{n_steps - 1}", where)
    if a.min() < 0 or b.max() >= n_nodes:
        raise TopologyError(f"node id out of range 0..{n_nodes - 1}", where)
    if np.any(a >= b):
        raise TopologyError("a link has a >= b (links must be stored with a < b)", where)
    step_change = np.diff(step)
    pair_key = a.astype(np.int64) * n_nodes + b
    if np.any(step_change < 0) or np.any((step_change == 0) & (np.diff(pair_key) <= 0)):
        raise TopologyError("rows not sorted by (step, a, b) or duplicated", where)
    kind = links["kind"]
    if not isinstance(kind.dtype, pd.CategoricalDtype) or \
            list(kind.cat.categories) != list(LINK_KINDS):
        kind = pd.Categorical(kind, categories=list(LINK_KINDS))
    codes = np.asarray(kind.cat.codes if hasattr(kind, "cat") else kind.codes)
    if np.any(codes < 0):
        raise TopologyError(f"unknown link kind (known: {', '.join(LINK_KINDS)})", where)
    is_isl = codes == LINK_KINDS.index("isl")
    if np.any(is_isl & (b >= first_ground_id)):
        raise TopologyError("an 'isl' row has a ground-station endpoint", where)
    if np.any(~is_isl & ((a >= first_ground_id) | (b < first_ground_id))):
        raise TopologyError("a 'gsl' row must join a satellite (a) and a ground station (b)",
                            where)
    distance = links["distance_km"].to_numpy()
    delay = links["delay_s"].to_numpy()
    if not np.all(np.isfinite(distance)) or np.any(distance <= 0.0):
        raise TopologyError("distance_km must be finite and > 0", where)
    if np.any(np.abs(delay - distance / C_KM_S) > 1e-9):
        raise TopologyError("delay_s differs from distance_km / c by more than 1 ns", where)
    if np.any(~(links["capacity_bps"].to_numpy() > 0.0)):
        raise TopologyError("capacity_bps must be > 0", where)
    if lasers_per_sat is not None and is_isl.any():
        base = step[is_isl].astype(np.int64) * n_nodes
        size = n_steps * n_nodes
        degree = np.bincount(base + a[is_isl], minlength=size)
        degree += np.bincount(base + b[is_isl], minlength=size)
        limit = np.tile(np.broadcast_to(np.asarray(lasers_per_sat, np.int64), (n_nodes,)), n_steps)
        if np.any(degree > limit):
            worst = int(np.argmax(degree - limit))
            raise TopologyError(
                f"satellite {worst % n_nodes} has {degree[worst]} laser links at step "
                f"{worst // n_nodes}, more than its limit of {limit[worst]} (lasers_per_sat, or "
                "a cluster member's terminals)", where)
