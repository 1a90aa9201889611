"""Inter-satellite (laser) link policies and the registry ``ISL_POLICIES``.

A policy is a frozen dataclass built from its parameters (``isl_params``) and
called with an :class:`IslContext`; it returns a :class:`LinkSet`: candidate
pairs and, per step, which of them exist.  Every policy must respect the
context's limits -- lasers per satellite, maximum range, and line of sight
clearing the Earth plus the grazing margin -- and :func:`pair_geometry` is the
one place those limits are evaluated.  Acquisition time is applied later, to
all policies alike, in :mod:`topologies.linktable`.

To add a policy: write a frozen dataclass with a ``__call__(self, ctx)`` and
add it to ``ISL_POLICIES``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import as_bool, as_float, as_int, as_str
from .constants import MU_KM3_S2
from .errors import INVALID, Collector, TopologyError
from .fleet import Fleet
from .grid import PAIRINGS, plus_grid_plan, plus_grid_pairs  # noqa: F401 (re-export)
from .matching import greedy_b_matching


@dataclass(frozen=True, eq=False, repr=False)
class LinkSet:
    """Links chosen by a policy.

    Attributes
    ----------
    pairs : numpy.ndarray of int64, shape (P, 2)
        Node ids ``(a, b)`` with ``a < b``, unique, sorted.
    mask : numpy.ndarray of bool, shape (T, P)
        ``mask[t, p]``: pair ``p`` exists (is selected and feasible) at step t.
    distance_km : numpy.ndarray of float, shape (T, P), optional
        Pair distances if the policy computed them anyway (read where
        ``mask`` is True); otherwise they are computed from positions.
    usage : dict of str -> numpy.ndarray of int64, shape (N,), optional
        Per satellite, planned lasers without a link at step 0, by reason
        (see :func:`topologies.usage.laser_usage`).
    """

    pairs: np.ndarray
    mask: np.ndarray
    distance_km: np.ndarray | None = None
    usage: dict | None = None

    def __repr__(self) -> str:
        return f"LinkSet(pairs={len(self.pairs)}, steps={self.mask.shape[0]})"

    @staticmethod
    def from_step_keys(step_keys: list[np.ndarray], n_nodes: int) -> "LinkSet":
        """Build from per-step arrays of pair keys ``a * n_nodes + b``."""
        n_steps = len(step_keys)
        all_keys = np.unique(np.concatenate(step_keys)) if step_keys else \
            np.zeros(0, np.int64)
        mask = np.zeros((n_steps, all_keys.size), dtype=bool)
        for t, keys in enumerate(step_keys):
            mask[t, np.searchsorted(all_keys, keys)] = True
        pairs = np.stack(np.divmod(all_keys, n_nodes), axis=1).astype(np.int64)
        return LinkSet(pairs.reshape(-1, 2), mask)


@dataclass(frozen=True, eq=False)
class IslContext:
    """What an ISL policy may use.

    Attributes
    ----------
    fleet : Fleet
    ecef_km : numpy.ndarray, shape (T, N, 3)
        Satellite positions (node id = satellite index).
    lat_deg : numpy.ndarray, shape (T, N)
        Geodetic latitudes.
    times_s : numpy.ndarray, shape (T,)
    lasers_per_sat : int
    max_range_km : float or None
        Explicit range limit; ``None`` derives it per pair from line of sight.
    grazing_radius_km : float
        Earth radius plus grazing margin: links must clear this sphere.
    chunk_steps : int
        Steps processed at once (bounds temporary memory).
    progress : callable or None
        Called with a number of steps finished.
    """

    fleet: Fleet
    ecef_km: np.ndarray
    lat_deg: np.ndarray
    times_s: np.ndarray
    lasers_per_sat: int
    max_range_km: float | None
    grazing_radius_km: float
    chunk_steps: int = 256
    progress: Callable[[int], None] | None = None

    def max_range_for(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Range limit per pair [km], shape (P,).

        Derived: the longest chord between the two nominal orbit radii whose
        line of sight stays above the grazing sphere,
        ``sqrt(ra^2 - Rg^2) + sqrt(rb^2 - Rg^2)`` (5016.6 km for two satellites
        at 550 km with an 80 km margin).
        """
        if self.max_range_km is not None:
            return np.full(np.shape(a), float(self.max_range_km))
        r = self.fleet.radius_km
        g2 = self.grazing_radius_km**2
        reach = np.sqrt(np.clip(r**2 - g2, 0.0, None))
        return reach[a] + reach[b]


def pair_geometry(ctx: IslContext, a: np.ndarray, b: np.ndarray,
                  lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances [km] and feasibility of pairs over steps ``lo:hi``.

    Returns ``(distance_km, feasible)``, each shape ``(hi - lo, P)``; feasible
    means within range and with the whole segment clearing the grazing sphere.
    With p1, p2 the ends and d = p2 - p1, the segment's closest point to the
    centre is p1 + t d with t = -p1.d / |d|^2 clipped to [0, 1].
    """
    p1 = ctx.ecef_km[lo:hi, a]
    p2 = ctx.ecef_km[lo:hi, b]
    r1_2 = np.einsum("tpi,tpi->tp", p1, p1)
    r2_2 = np.einsum("tpi,tpi->tp", p2, p2)
    p1_dot_p2 = np.einsum("tpi,tpi->tp", p1, p2)
    d2 = np.maximum(r1_2 + r2_2 - 2.0 * p1_dot_p2, 0.0)
    distance = np.sqrt(d2)
    p1_dot_d = p1_dot_p2 - r1_2
    t = np.clip(-p1_dot_d / np.where(d2 > 0.0, d2, 1.0), 0.0, 1.0)
    # |p1 + t d|^2 = |p1|^2 + 2 t p1.d + t^2 |d|^2
    clearance2 = r1_2 + 2.0 * t * p1_dot_d + t * t * d2
    feasible = (distance <= ctx.max_range_for(a, b)[None, :]) & \
        (clearance2 >= ctx.grazing_radius_km**2)
    return distance, feasible


def policy_from_params(cls, params: Mapping[str, Any] | None, coerce: dict) -> Any:
    """Instantiate a policy dataclass from a dict, reporting every bad field at once
    (cross-field rules in the class's ``__post_init__`` run once all fields are good)."""
    params = dict(params or {})
    known = {f.name for f in dataclasses.fields(cls)}
    c = Collector()
    unknown = f"unknown parameter for this policy (known: {', '.join(sorted(known)) or 'none'})"
    values = {}
    for key, value in params.items():
        if key not in known:
            c.add(unknown, key)
        else:
            values[key] = c.check(coerce[key], value, key)
    c.raise_if_any()
    return cls(**values)


# --------------------------------------------------------------------- +Grid

@dataclass(frozen=True)
class PlusGrid:
    """+Grid: two intra-plane and two inter-plane neighbours per satellite.

    Parameters
    ----------
    max_lat_deg : float or None
        Inter-plane links are dropped while either end is above this |latitude|
        (geodetic, deg) and re-acquired after; ``None`` never drops them.
    pairing : str
        Cross-plane partners: ``"arg_lat"`` (default; by argument of latitude,
        plane-pair phase resolved once) or ``"index"`` (plane p slot s to plane
        p+1 slot s + shift, Hypatia's ``isl_shift``); see :mod:`topologies.grid`.
    shift : int
        Slot shift of ``pairing = "index"`` (default 0).
    """

    max_lat_deg: float | None = None
    pairing: str = "arg_lat"
    shift: int = 0

    def __post_init__(self) -> None:
        if self.shift and self.pairing != "index":
            raise TopologyError('only applies with pairing = "index"', "shift")

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> "PlusGrid":
        return policy_from_params(cls, params, {
            "max_lat_deg": lambda v, f: None if v is None else as_float(v, f, gt=0.0, le=90.0),
            "pairing": lambda v, f: as_str(v, f, choices=PAIRINGS),
            "shift": lambda v, f: as_int(v, f)})

    def __call__(self, ctx: IslContext) -> LinkSet:
        plan = plus_grid_plan(ctx.fleet, ctx.lasers_per_sat, self.pairing, self.shift)
        pairs, is_inter = plan.pairs, plan.inter_plane
        a, b = pairs[:, 0], pairs[:, 1]
        n_steps = ctx.times_s.size
        mask = np.zeros((n_steps, len(pairs)), dtype=bool)
        distance_km = np.empty((n_steps, len(pairs)))
        first_polar = np.zeros(len(pairs), bool)
        for lo in range(0, n_steps, ctx.chunk_steps):
            hi = min(lo + ctx.chunk_steps, n_steps)
            distance_km[lo:hi], feasible = pair_geometry(ctx, a, b, lo, hi)
            if self.max_lat_deg is not None:
                lat = np.abs(ctx.lat_deg[lo:hi])
                polar = (lat[:, a] > self.max_lat_deg) | (lat[:, b] > self.max_lat_deg)
                polar &= is_inter[None, :]
                if lo == 0:
                    first_polar = polar[0] & feasible[0]
                feasible &= ~polar
            mask[lo:hi] = feasible
            if ctx.progress:
                ctx.progress(hi - lo)
        usage = dict(plan.missing)
        n = ctx.fleet.n_sats
        if n_steps:
            unreachable = ~mask[0] & ~first_polar
            for reason, lost in (("polar_cutoff", first_polar),
                                 ("gap", unreachable & plan.across_gap),
                                 ("no_neighbour_in_range", unreachable & ~plan.across_gap)):
                usage[reason] = (np.bincount(a[lost], minlength=n)
                                 + np.bincount(b[lost], minlength=n)).astype(np.int64)
        return LinkSet(pairs, mask, distance_km, usage=usage)


# -------------------------------------------------------------------- listed

@dataclass(frozen=True)
class Listed:
    """A fixed list of satellite pairs (e.g. Hypatia's ``isls.txt``).

    Each listed pair exists at every step where range and line of sight allow.

    Parameters
    ----------
    pairs : list of [a, b]
        Satellite node ids; each satellite in at most ``lasers_per_sat`` pairs.
    """

    pairs: tuple = ()

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> "Listed":
        def coerce(value, field):
            if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
                raise TopologyError("must be a list of [a, b] satellite ids", field)
            c = Collector(field)
            out = []
            for i, item in enumerate(value):
                where = f"[{i}]"
                if isinstance(item, (str, bytes)) or not hasattr(item, "__len__") \
                        or len(item) != 2:
                    c.add("must be [a, b]", where)
                    continue
                a, b = (c.check(as_int, x, where, min_value=0) for x in item)
                if a is INVALID or b is INVALID:
                    continue
                if a == b:
                    c.add(f"links satellite {a} to itself", where)
                    continue
                out.append((min(a, b), max(a, b)))
            seen: set = set()
            for pair in out:
                if pair in seen:
                    c.add(f"pair {list(pair)} listed twice")
                seen.add(pair)
            c.raise_if_any()
            return tuple(out)
        return policy_from_params(cls, params, {"pairs": coerce})

    def __call__(self, ctx: IslContext) -> LinkSet:
        n = ctx.fleet.n_sats
        pairs = np.array(sorted(self.pairs), dtype=np.int64).reshape(-1, 2)
        if pairs.size and pairs.max() >= n:
            raise TopologyError(f"satellite id {int(pairs.max())} out of range 0..{n - 1}",
                                "isl_params.pairs")
        degree = np.bincount(pairs.ravel(), minlength=n)
        if degree.size and degree.max() > ctx.lasers_per_sat:
            worst = int(np.argmax(degree))
            raise TopologyError(f"satellite {worst} is in {int(degree[worst])} pairs, more than "
                                f"lasers_per_sat = {ctx.lasers_per_sat}", "isl_params.pairs")
        n_steps = ctx.times_s.size
        mask = np.zeros((n_steps, len(pairs)), dtype=bool)
        distance_km = np.empty((n_steps, len(pairs)))
        for lo in range(0, n_steps, ctx.chunk_steps):
            hi = min(lo + ctx.chunk_steps, n_steps)
            distance_km[lo:hi], mask[lo:hi] = pair_geometry(ctx, pairs[:, 0], pairs[:, 1], lo, hi)
            if ctx.progress:
                ctx.progress(hi - lo)
        usage = {}
        if n_steps:
            lost = ~mask[0]
            usage["no_neighbour_in_range"] = (np.bincount(pairs[lost, 0], minlength=n)
                                     + np.bincount(pairs[lost, 1], minlength=n)).astype(np.int64)
        return LinkSet(pairs, mask, distance_km, usage=usage)


# ------------------------------------------------------------------- nearest

@dataclass(frozen=True)
class Nearest:
    """Each satellite links to its closest visible satellites.

    Links are chosen greedily, shortest first, while both ends have a free
    laser (at most ``k`` per satellite, and never more than the lasers).

    Parameters
    ----------
    k : int or None
        Links per satellite (default: ``lasers_per_sat``).
    sticky : bool
        Keep an existing link while it stays feasible and only fill free
        lasers (default); ``False`` re-chooses all links at every step.
    refresh_s : float
        Period [s] of the all-pairs search for candidate neighbours.
    max_candidates : int
        Candidates kept per satellite at each refresh (its nearest ones, with a
        distance margin covering the refresh period).
    """

    k: int | None = None
    sticky: bool = True
    refresh_s: float = 10.0
    max_candidates: int = 16

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> "Nearest":
        return policy_from_params(cls, params, {
            "k": lambda v, f: None if v is None else as_int(v, f, min_value=1),
            "sticky": as_bool,
            "refresh_s": lambda v, f: as_float(v, f, gt=0.0),
            "max_candidates": lambda v, f: as_int(v, f, min_value=1)})

    def _candidates(self, ctx: IslContext, step: int, current: np.ndarray) -> np.ndarray:
        """Candidate pairs (C, 2) near each other at ``step``, plus ``current``."""
        pos = ctx.ecef_km[step]
        n = pos.shape[0]
        speed_km_s = float(np.sqrt(MU_KM3_S2 / ctx.fleet.radius_km.min()))
        margin_km = 2.0 * speed_km_s * self.refresh_s
        limit = ctx.max_range_for(np.arange(n), np.arange(n)).max() + margin_km
        keep = min(self.max_candidates, n - 1)
        found = []
        for lo in range(0, n, 512):
            block = pos[lo:lo + 512]
            d2 = np.einsum("ij,ij->i", block, block)[:, None] \
                + np.einsum("ij,ij->i", pos, pos)[None, :] - 2.0 * block @ pos.T
            rows = np.arange(lo, lo + len(block))
            d2[np.arange(len(block)), rows] = np.inf
            if keep < n - 1:
                nearest = np.argpartition(d2, keep, axis=1)[:, :keep]
            else:
                nearest = np.broadcast_to(np.arange(n), d2.shape)
            near_d2 = np.take_along_axis(d2, nearest, axis=1)
            ok = near_d2 <= limit**2
            i = np.broadcast_to(rows[:, None], nearest.shape)[ok]
            found.append(np.stack([i, nearest[ok]], axis=1))
        found.append(current)
        pairs = np.sort(np.concatenate(found), axis=1)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        keys = np.unique(pairs[:, 0] * n + pairs[:, 1])
        return np.stack(np.divmod(keys, n), axis=1)

    def __call__(self, ctx: IslContext) -> LinkSet:
        n = ctx.fleet.n_sats
        k = min(self.k or ctx.lasers_per_sat, ctx.lasers_per_sat)
        n_steps = ctx.times_s.size
        current = np.zeros((0, 2), np.int64)
        step_keys: list[np.ndarray] = []
        next_refresh = -np.inf
        candidates = current
        for t in range(n_steps):
            if ctx.times_s[t] >= next_refresh:
                candidates = self._candidates(ctx, t, current)
                next_refresh = ctx.times_s[t] + self.refresh_s
            a, b = candidates[:, 0], candidates[:, 1]
            distance, feasible = pair_geometry(ctx, a, b, t, t + 1)
            distance, feasible = distance[0], feasible[0]
            cand_keys = a * n + b
            if self.sticky and current.size:
                is_current = np.isin(cand_keys, current[:, 0] * n + current[:, 1])
            else:
                is_current = np.zeros(a.size, bool)
            kept = feasible & is_current
            free = np.full(n, k, dtype=np.int64)
            np.subtract.at(free, a[kept], 1)
            np.subtract.at(free, b[kept], 1)
            pool = np.flatnonzero(feasible & ~is_current & (free[a] > 0) & (free[b] > 0))
            added = pool[greedy_b_matching(a[pool], b[pool], distance[pool], free)]
            chosen = np.sort(np.concatenate([np.flatnonzero(kept), added]))
            current = candidates[chosen]
            step_keys.append(cand_keys[chosen])
            if ctx.progress:
                ctx.progress(1)
        return LinkSet.from_step_keys(step_keys, n)


#: ISL policies by name; values are classes with ``from_params(dict)`` whose
#: instances are called with an :class:`IslContext` and return a :class:`LinkSet`.
ISL_POLICIES: dict[str, type] = {
    "plus_grid": PlusGrid,
    "nearest": Nearest,
    "listed": Listed,
}


def build_policy(registry: Mapping[str, type], name: str, params: Mapping[str, Any] | None, kind: str):
    """Instantiate policy ``name`` of ``registry`` from its parameters; errors name
    ``<kind>_policy`` or ``<kind>_params.<key>``."""
    if name not in registry:
        raise TopologyError(f"unknown policy {name!r} (known: {', '.join(sorted(registry))})",
                            f"{kind}_policy")
    try:
        return registry[name].from_params(params)
    except TopologyError as err:
        raise err.with_prefix(f"{kind}_params") from None


def make_isl_policy(name: str, params: Mapping[str, Any] | None):
    """Instantiate a registered policy; errors name ``isl_params.<key>``."""
    return build_policy(ISL_POLICIES, name, params, "isl")
