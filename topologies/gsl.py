"""Ground-to-satellite link policies and the registry ``GSL_POLICIES``.

A ground station sees a satellite when the satellite's elevation above the
station's geodetic horizon is at least ``gsl_min_elevation_deg`` and, if
``gsl_max_range_km`` is set, its slant range is at most that (a range cap
alone, as Hypatia uses, is ``gsl_min_elevation_deg = 0`` plus the cap).  Ground links
are radio links: they do not use lasers and are not counted against
``lasers_per_sat``; a satellite may serve several stations.

A policy is a frozen dataclass built by ``from_params(gsl_params)`` and called with
``(GslContext, n_steps)``; it returns a :class:`~topologies.isl.LinkSet`.  To add one,
write such a class and add it to ``GSL_POLICIES``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import as_float
from .isl import LinkSet, build_policy, policy_from_params


@dataclass(frozen=True, eq=False)
class GslContext:
    """What a GSL policy may use.

    Attributes
    ----------
    sat_ecef_km : numpy.ndarray, shape (T, N, 3)
    ground_ecef_km : numpy.ndarray, shape (G, 3)
    ground_up : numpy.ndarray, shape (G, 3)
        Unit local-vertical vectors of the stations.
    min_elevation_deg : float
    max_range_km : float or None
        Slant-range cap [km]; None = none.
    first_ground_id : int
        Node id of ground station 0 (= number of satellites).
    step_s : float
        Schedule step [s] (policies that look ahead or back in time use it).
    chunk_steps : int
    progress : callable or None
    """

    sat_ecef_km: np.ndarray
    ground_ecef_km: np.ndarray
    ground_up: np.ndarray
    min_elevation_deg: float
    first_ground_id: int
    max_range_km: float | None = None
    step_s: float = 1.0
    chunk_steps: int = 128
    progress: Callable[[int], None] | None = None

    def visibility(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances [km] and visibility for steps ``lo:hi``, each shape (t, G, N)."""
        rel = self.sat_ecef_km[lo:hi, None, :, :] - self.ground_ecef_km[None, :, None, :]
        return self._judge(rel, np.broadcast_to(self.ground_up[None, :, None, :], rel.shape))

    def visible_at(self, steps: np.ndarray, grounds: np.ndarray, sats: np.ndarray) -> np.ndarray:
        """Whether satellite ``sats[i]`` is visible from station ``grounds[i]`` at step
        ``steps[i]``; index arrays of one shape, result of that shape."""
        rel = self.sat_ecef_km[steps, sats] - self.ground_ecef_km[grounds]
        return self._judge(rel, self.ground_up[grounds])[1]

    def _judge(self, rel: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance [km] and visibility of station-to-satellite vectors ``rel`` (..., 3) [km]
        seen from stations whose local verticals are ``up`` (..., 3)."""
        distance = np.sqrt(np.einsum("...i,...i->...", rel, rel))
        height = np.einsum("...i,...i->...", rel, up)
        visible = height >= distance * np.sin(np.radians(self.min_elevation_deg))
        if self.max_range_km is not None:
            visible &= distance <= self.max_range_km
        return distance, visible


def _from_triples(ctx: GslContext, steps: np.ndarray, grounds: np.ndarray,
                  sats: np.ndarray, n_steps: int) -> LinkSet:
    n_nodes = ctx.first_ground_id + ctx.ground_ecef_km.shape[0]
    keys = sats.astype(np.int64) * n_nodes + ctx.first_ground_id + grounds
    universe = np.unique(keys)
    mask = np.zeros((n_steps, universe.size), dtype=bool)
    mask[steps, np.searchsorted(universe, keys)] = True
    pairs = np.stack(np.divmod(universe, n_nodes), axis=1).astype(np.int64)
    return LinkSet(pairs.reshape(-1, 2), mask)


def _serving(ctx: GslContext, n_steps: int) -> np.ndarray:
    """The closest visible satellite of each station per step, shape (T, G); -1: none."""
    best = np.full((n_steps, ctx.ground_ecef_km.shape[0]), -1, dtype=np.int64)
    for lo in range(0, n_steps, ctx.chunk_steps):
        hi = min(lo + ctx.chunk_steps, n_steps)
        distance, visible = ctx.visibility(lo, hi)
        closest = np.argmin(np.where(visible, distance, np.inf), axis=2)      # (t, G)
        best[lo:hi] = np.where(visible.any(axis=2), closest, -1)
        if ctx.progress:
            ctx.progress(hi - lo)
    return best


class _NoParams:
    """``from_params`` for policies without parameters."""

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None):
        return policy_from_params(cls, params, {})


def _serving_triples(best: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(step, station, satellite) of every served station in ``best`` (T, G)."""
    t, g = np.nonzero(best >= 0)
    return t, g, best[t, g]


@dataclass(frozen=True)
class NearestGsl(_NoParams):
    """Each station links to the single closest visible satellite; at a handover the old
    link goes in the step the new one comes (break before make)."""

    def __call__(self, ctx: GslContext, n_steps: int) -> LinkSet:
        return _from_triples(ctx, *_serving_triples(_serving(ctx, n_steps)), n_steps)


@dataclass(frozen=True)
class MakeBeforeBreakGsl:
    """Each station is served by its closest visible satellite, as ``nearest``, and links to
    the satellite that serves it next ``lead_s`` before the handover (a second antenna that
    the schedule points ahead of time): for those steps the station has both links, so a
    routing algorithm that reads the schedule can move its traffic before the old link goes.
    The early link exists only while that satellite is visible: where it rises later than
    ``lead_s`` before the handover, the overlap is shorter; across a coverage gap there is
    none.

    Parameters
    ----------
    lead_s : float
        How long before a handover the next link is up [s], > 0; rounded up to whole steps.
    """

    lead_s: float = 2.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> "MakeBeforeBreakGsl":
        return policy_from_params(cls, params, {"lead_s": lambda v, f: as_float(v, f, gt=0.0)})

    def __call__(self, ctx: GslContext, n_steps: int) -> LinkSet:
        best = _serving(ctx, n_steps)
        t, g, s = _serving_triples(best)
        # Handovers: a station served at step k by a satellite other than at step k - 1.
        prev = np.vstack([np.full((1, best.shape[1]), -1), best[:-1]])
        k, kg = np.nonzero((best >= 0) & (best != prev))
        k, kg = k[k > 0], kg[k > 0]
        ks = best[k, kg]
        lead_steps = max(1, math.ceil(self.lead_s / ctx.step_s - 1e-9))
        back = np.arange(1, lead_steps + 1)
        early_t = k[:, None] - back[None, :]                             # (H, L)
        ok = early_t >= 0
        seen = np.zeros(early_t.shape, dtype=bool)
        seen[ok] = ctx.visible_at(early_t[ok], np.broadcast_to(kg[:, None], ok.shape)[ok],
                                  np.broadcast_to(ks[:, None], ok.shape)[ok])
        seen = np.cumprod(seen, axis=1).astype(bool)     # up without a break until the handover
        hk, j = np.nonzero(seen)
        return _from_triples(ctx, np.concatenate([t, early_t[hk, j]]),
                             np.concatenate([g, kg[hk]]), np.concatenate([s, ks[hk]]), n_steps)


@dataclass(frozen=True)
class AllGsl(_NoParams):
    """Each station links to every visible satellite."""

    def __call__(self, ctx: GslContext, n_steps: int) -> LinkSet:
        steps, grounds, sats = [], [], []
        for lo in range(0, n_steps, ctx.chunk_steps):
            hi = min(lo + ctx.chunk_steps, n_steps)
            _, visible = ctx.visibility(lo, hi)
            t, g, n = np.nonzero(visible)
            steps.append(t + lo)
            grounds.append(g)
            sats.append(n)
            if ctx.progress:
                ctx.progress(hi - lo)
        return _from_triples(ctx, *(np.concatenate(x) if x else np.zeros(0, np.int64)
                                    for x in (steps, grounds, sats)), n_steps)


#: GSL policies by name; classes with ``from_params(dict)`` whose instances are called
#: with ``(GslContext, n_steps)``.
GSL_POLICIES: dict[str, type] = {
    "nearest": NearestGsl,
    "make_before_break": MakeBeforeBreakGsl,
    "all": AllGsl,
}


def make_gsl_policy(name: str, params: Mapping[str, Any] | None):
    """Instantiate a registered ground-link policy; errors name ``gsl_params.<key>``."""
    return build_policy(GSL_POLICIES, name, params, "gsl")
