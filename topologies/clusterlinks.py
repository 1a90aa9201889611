"""Links of formation-flying clusters: intra-cluster optics and gateway lasers.

Both return a :class:`topologies.isl.LinkSet` over node ids (members are
``first_member_id + index``) plus a capacity per pair [bit/s]; the link table
stores them as kind ``isl``.  Distances are float64 kilometres from float64
ECEF positions, so a 300 m link is 0.3 km to ~1e-12 km and its delay
``distance_km / c`` is exact to ~1e-17 s.
"""

from __future__ import annotations

import numpy as np

from .cluster import INTRA_TOPOLOGIES, Cluster
from .isl import LinkSet
from .matching import greedy_b_matching


def _member_ids(clusters: tuple[Cluster, ...], first_member_id: int) -> list[np.ndarray]:
    ids, lo = [], first_member_id
    for cluster in clusters:
        ids.append(np.arange(lo, lo + cluster.count, dtype=np.int64))
        lo += cluster.count
    return ids


def intra_links(clusters: tuple[Cluster, ...], first_member_id: int, ecef_km: np.ndarray,
                chunk_steps: int = 256) -> tuple[LinkSet, np.ndarray]:
    """Intra-cluster links chosen per step by each cluster's ``intra_topology``.

    ``ecef_km``: node positions ``(T, N, 3)``.  Returns the link set (pairs of
    member node ids, mask ``(T, P)``, distances ``(T, P)`` [km]) and the
    capacities ``(P,)`` [bit/s].
    """
    n_steps = ecef_km.shape[0]
    pairs, masks, dists, caps = [], [], [], []
    for cluster, ids in zip(clusters, _member_ids(clusters, first_member_id)):
        iu, ju = np.triu_indices(cluster.count, k=1)
        if iu.size == 0:
            continue
        choose = INTRA_TOPOLOGIES[cluster.intra_topology]
        mask = np.zeros((n_steps, iu.size), bool)
        distance_km = np.empty((n_steps, iu.size))
        for lo in range(0, n_steps, chunk_steps):
            hi = min(lo + chunk_steps, n_steps)
            d = ecef_km[lo:hi, ids[iu]] - ecef_km[lo:hi, ids[ju]]
            distance_km[lo:hi] = np.sqrt(np.einsum("tpi,tpi->tp", d, d))
        in_range = distance_km * 1000.0 <= cluster.range_m
        for t in range(n_steps):
            mask[t] = choose(distance_km[t] * 1000.0, in_range[t], cluster, iu, ju)
        pairs.append(np.stack([ids[iu], ids[ju]], axis=1))
        masks.append(mask)
        dists.append(distance_km)
        caps.append(np.full(iu.size, cluster.intra_rate_bps))
    if not pairs:
        empty = np.zeros((n_steps, 0))
        return LinkSet(np.zeros((0, 2), np.int64), empty.astype(bool), empty), np.zeros(0)
    return (LinkSet(np.concatenate(pairs), np.concatenate(masks, axis=1),
                    np.concatenate(dists, axis=1)), np.concatenate(caps))


def _segment_feasible(p1: np.ndarray, p2: np.ndarray, limit_km: np.ndarray,
                      grazing_radius_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance [km] and feasibility (range, line of sight) of segments ``(T, P, 3)``."""
    d = p2 - p1
    d2 = np.einsum("tpi,tpi->tp", d, d)
    p1_dot_d = np.einsum("tpi,tpi->tp", p1, d)
    t = np.clip(-p1_dot_d / np.where(d2 > 0.0, d2, 1.0), 0.0, 1.0)
    closest = p1 + t[..., None] * d
    clearance2 = np.einsum("tpi,tpi->tp", closest, closest)
    distance = np.sqrt(d2)
    return distance, (distance <= limit_km[None, :]) & (clearance2 >= grazing_radius_km**2)


def gateway_links(clusters: tuple[Cluster, ...], first_member_id: int, ecef_km: np.ndarray,
                  n_fleet: int, fleet_radius_km: np.ndarray, isl: LinkSet, lasers_per_sat: int,
                  max_range_km: float | None, grazing_radius_km: float,
                  sat_capacity_bps: np.ndarray, chunk_steps: int = 64
                  ) -> tuple[LinkSet, np.ndarray]:
    """Gateway members' lasers to the nearest constellation satellites with a free laser.

    Per step, a constellation satellite has ``lasers_per_sat`` minus its ISLs
    free; candidates within range (``max_range_km``, else the line-of-sight
    limit from the nominal radii) whose segment clears the grazing sphere are
    matched greedily shortest-first, links held at the previous step first
    (kept while feasible).  Capacities: the cluster's ``gateway_rate_bps``,
    else the satellite's laser capacity ``sat_capacity_bps[s]``.
    """
    from .constants import EARTH_RADIUS_KM
    n_steps = ecef_km.shape[0]
    gw_ids, gw_cap, gw_radius, gw_rate = [], [], [], []
    for cluster, ids in zip(clusters, _member_ids(clusters, first_member_id)):
        for g in cluster.gateways:
            gw_ids.append(int(ids[g]))
            gw_cap.append(cluster.gateway_links)
            gw_radius.append(EARTH_RADIUS_KM + cluster.altitude_km)
            gw_rate.append(np.nan if cluster.gateway_rate_bps is None else cluster.gateway_rate_bps)
    if not gw_ids or n_fleet == 0:
        empty = np.zeros((n_steps, 0))
        return LinkSet(np.zeros((0, 2), np.int64), empty.astype(bool)), np.zeros(0)
    gw = np.array(gw_ids, np.int64)
    sats = np.arange(n_fleet, dtype=np.int64)
    a = np.tile(sats, gw.size)                  # candidate pairs (shell sat, gateway)
    b = np.repeat(gw, n_fleet)
    if max_range_km is not None:
        limit = np.full(a.size, float(max_range_km))
    else:
        reach = lambda r: np.sqrt(np.clip(np.asarray(r) ** 2 - grazing_radius_km**2, 0.0, None))  # noqa: E731
        limit = reach(fleet_radius_km)[a] + np.repeat(reach(np.array(gw_radius)), n_fleet)
    # matching vertices: shell satellites 0..n_fleet-1, then the gateways
    index_of_b = n_fleet + np.repeat(np.arange(gw.size), n_fleet)
    isl_a, isl_b = isl.pairs[:, 0], isl.pairs[:, 1]
    current = np.zeros(a.size, bool)
    step_keys, n_nodes = [], ecef_km.shape[1]
    for lo in range(0, n_steps, chunk_steps):
        hi = min(lo + chunk_steps, n_steps)
        distance, feasible = _segment_feasible(ecef_km[lo:hi, a], ecef_km[lo:hi, b], limit,
                                               grazing_radius_km)
        for k in range(hi - lo):
            t = lo + k
            used = isl.mask[t]
            degree = np.bincount(isl_a[used], minlength=n_fleet) + \
                np.bincount(isl_b[used], minlength=n_fleet)
            cap = np.concatenate([np.maximum(lasers_per_sat - degree[:n_fleet], 0), gw_cap])
            pool = np.flatnonzero(feasible[k] & (cap[a] > 0))
            cost = np.where(current[pool], -1.0, distance[k, pool])   # held links first
            chosen = pool[greedy_b_matching(a[pool], index_of_b[pool], cost, cap)]
            current = np.zeros(a.size, bool)
            current[chosen] = True
            step_keys.append(np.sort(a[chosen] * n_nodes + b[chosen]))
    links = LinkSet.from_step_keys(step_keys, n_nodes)
    rate_by_gw = dict(zip(gw_ids, gw_rate))
    rate = np.array([rate_by_gw[int(m)] for m in links.pairs[:, 1]], float)
    capacity = np.where(np.isnan(rate), sat_capacity_bps[links.pairs[:, 0]], rate) \
        if rate.size else rate
    return links, capacity


__all__ = ["gateway_links", "intra_links"]
