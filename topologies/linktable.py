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
    n_steps, n_nodes, _ = node_ecef_km.shape
    pairs = np.concatenate([ls.pairs for ls in link_sets]).reshape(-1, 2)
    kind_code = np.concatenate([np.full(len(ls.pairs), LINK_KINDS.index(k), np.int8)
                                for ls, k in zip(link_sets, kinds)])
    capacity = np.concatenate(capacities).astype(float)
    acquisition = np.concatenate([np.full(len(ls.pairs), float(acq))
                                  for ls, acq in zip(link_sets, acquisitions_s)])
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs, kind_code, capacity, acquisition = (pairs[order], kind_code[order],
                                               capacity[order], acquisition[order])
    keys = pairs[:, 0] * n_nodes + pairs[:, 1]
    if np.any(keys[1:] == keys[:-1]):
        raise TopologyError("internal error: two policies produced the same link")
    mask = np.concatenate([ls.mask for ls in link_sets], axis=1)[:, order]
    up = up_mask(mask, times_s, acquisition)
    steps, cols = np.nonzero(mask)
    a, b = pairs[cols, 0], pairs[cols, 1]
    distance_km = _row_distances_km(node_ecef_km, steps, a, b)
    return pd.DataFrame({
        "step": steps.astype(np.int32),
        "a": a.astype(np.int32),
        "b": b.astype(np.int32),
        "kind": pd.Categorical.from_codes(kind_code[cols], categories=list(LINK_KINDS)),
        "distance_km": distance_km,
        "delay_s": distance_km / C_KM_S,
        "capacity_bps": capacity[cols],
        "up": up[steps, cols],
    }, copy=False)


def check_link_table(links: pd.DataFrame, n_nodes: int, n_steps: int,
                     first_ground_id: int, lasers_per_sat: int | None = None,
                     where: str = "links") -> None:
    """Raise :class:`TopologyError` if the table breaks a structural invariant.

    Checks columns and dtypes, node and step ranges, ``a < b``, sort order and
    uniqueness, kinds consistent with endpoints (ISL between satellites, GSL
    satellite-ground), ``delay_s == distance_km / c`` (1 ns), positive
    distances and capacities, and (if given) ISLs per satellite per step
    <= ``lasers_per_sat``.
    """
    missing = [c for c in LINK_COLUMNS if c not in links.columns]
    if missing:
        raise TopologyError(f"missing column {missing[0]!r}", where)
    if len(links) == 0:
        return
    step = links["step"].to_numpy()
    a = links["a"].to_numpy().astype(np.int64)
    b = links["b"].to_numpy().astype(np.int64)
    if step.min() < 0 or step.max() >= n_steps:
        raise TopologyError(f"step out of range 0..{n_steps - 1}", where)
    if a.min() < 0 or b.max() >= n_nodes:
        raise TopologyError(f"node id out of range 0..{n_nodes - 1}", where)
    if np.any(a >= b):
        raise TopologyError("a link has a >= b (links must be stored with a < b)", where)
    step_change = np.diff(step)
    same_step = step_change == 0
    pair_key = a * n_nodes + b
    if np.any(step_change < 0) or np.any(same_step & (np.diff(pair_key) <= 0)):
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
        ends = np.concatenate([step[is_isl].astype(np.int64) * n_nodes + a[is_isl],
                               step[is_isl].astype(np.int64) * n_nodes + b[is_isl]])
        degree = np.bincount(ends)
        if degree.max() > lasers_per_sat:
            worst = int(np.argmax(degree))
            raise TopologyError(
                f"satellite {worst % n_nodes} has {degree.max()} laser links at step "
                f"{worst // n_nodes}, more than lasers_per_sat={lasers_per_sat}", where)
