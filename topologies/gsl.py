"""Ground-to-satellite link policies and the registry ``GSL_POLICIES``.

A ground station sees a satellite when the satellite's elevation above the
station's geodetic horizon is at least ``gsl_min_elevation_deg``.  Ground links
are radio links: they do not use lasers and are not counted against
``lasers_per_sat``; a satellite may serve several stations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .isl import LinkSet


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
    first_ground_id : int
        Node id of ground station 0 (= number of satellites).
    chunk_steps : int
    progress : callable or None
    """

    sat_ecef_km: np.ndarray
    ground_ecef_km: np.ndarray
    ground_up: np.ndarray
    min_elevation_deg: float
    first_ground_id: int
    chunk_steps: int = 128
    progress: Callable[[int], None] | None = None

    def visibility(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances [km] and visibility for steps ``lo:hi``, each shape (t, G, N)."""
        rel = self.sat_ecef_km[lo:hi, None, :, :] - self.ground_ecef_km[None, :, None, :]
        distance = np.sqrt(np.einsum("tgni,tgni->tgn", rel, rel))
        height = np.einsum("tgni,gi->tgn", rel, self.ground_up)
        visible = height >= distance * np.sin(np.radians(self.min_elevation_deg))
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


@dataclass(frozen=True)
class NearestGsl:
    """Each station links to the single closest visible satellite."""

    def __call__(self, ctx: GslContext, n_steps: int) -> LinkSet:
        steps, grounds, sats = [], [], []
        for lo in range(0, n_steps, ctx.chunk_steps):
            hi = min(lo + ctx.chunk_steps, n_steps)
            distance, visible = ctx.visibility(lo, hi)
            distance = np.where(visible, distance, np.inf)
            best = np.argmin(distance, axis=2)                     # (t, G)
            seen = visible.any(axis=2)
            t, g = np.nonzero(seen)
            steps.append(t + lo)
            grounds.append(g)
            sats.append(best[t, g])
            if ctx.progress:
                ctx.progress(hi - lo)
        return _from_triples(ctx, *(np.concatenate(x) if x else np.zeros(0, np.int64)
                                    for x in (steps, grounds, sats)), n_steps)


@dataclass(frozen=True)
class AllGsl:
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


#: GSL policies by name; instances are called with ``(GslContext, n_steps)``.
GSL_POLICIES: dict[str, type] = {
    "nearest": NearestGsl,
    "all": AllGsl,
}
