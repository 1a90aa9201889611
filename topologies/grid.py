"""+Grid candidate pairs: in-plane rings and the cross-plane pairing.

In-plane, each satellite links to its successor in argument of latitude (a
ring).  Cross-plane, each plane links to the next one of the same shell in
RAAN order (and the last to the first for delta shells), one partner per
satellite on each side.  Two pairings are offered (``PAIRINGS``):

``"arg_lat"`` (default)
    By argument of latitude ``u`` [deg], with the phase offset between two
    planes resolved *once per plane pair*: ``phi`` in ``(-w/2, +w/2]`` is the
    angle between the two planes' slot combs, from the circular mean of
    ``S * u`` over each plane, where ``S`` is the planes' slot count
    (:func:`nominal_slots`) and ``w = 360 / S`` the slot spacing.  An offset
    within ``TIE_TOLERANCE_SLOTS`` of half a slot counts as exactly ``+w/2``:
    the partner *ahead* is taken, for every satellite of the pair of planes
    and for every plane pair of the shell alike.  Then satellites are matched
    one-to-one, greedily, by ``|u_b - u_a - phi|``.  So an exactly phased
    shell (Hypatia's odd planes half a slot ahead, or Walker F = P/2) gives a
    regular grid whatever the rounding of its angles, and an irregular TLE
    shell still gets the nearest partners.
``"index"``
    Plane ``p`` slot ``s`` links to plane ``p+1`` slot ``(s + shift) mod S``,
    for the whole shell (Hypatia's ``isl_shift``).  Where the two planes hold
    different numbers of satellites, slots ``s >= S_next`` of the larger plane
    get no partner on that side.

:func:`plus_grid_plan` returns the pairs, and for every satellite why a
planned laser has no partner (see ``MISSING_REASONS``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fleet import Fleet
from .matching import greedy_b_matching

#: Plane-pair phase offsets this close to half a slot [slots] are ties,
#: resolved to the partner ahead.  TLE angles carry 1e-4 deg and mean
#: elements ~0.01 deg of noise; half a slot of a 22-satellite plane is 8.2 deg.
TIE_TOLERANCE_SLOTS = 0.05

#: Coherence (|mean of exp(i S u)|) below which a plane's satellites are too
#: unevenly spaced for a phase: the pairing falls back to plain nearest.
MIN_COHERENCE = 0.5

#: Why a satellite lacks a planned +Grid laser (keys of ``GridPlan.missing``).
MISSING_REASONS = {
    "small_plane": "plane has fewer than 3 satellites (no in-plane ring)",
    "no_adjacent_plane": "no adjacent plane on that side (star seam, a partial shell "
                         "that does not wrap, a shell of 1-2 planes)",
    "missing_slot": "adjacent plane has fewer satellites (no partner left)",
    "tie": "adjacent plane had a partner but the matching gave it to a neighbour",
    "laser_limit": "lasers_per_sat < 4",
}


@dataclass(frozen=True, eq=False)
class GridPlan:
    """Static +Grid candidates.

    Attributes
    ----------
    pairs : numpy.ndarray of int64, shape (P, 2)
        ``a < b``, unique, sorted.
    inter_plane : numpy.ndarray of bool, shape (P,)
    across_gap : numpy.ndarray of bool, shape (P,)
        The two ends are more than a slot apart in argument of latitude
        (in-plane: more than 1.5 slots), i.e. the link spans a gap in a plane.
    missing : dict of str -> numpy.ndarray of int64, shape (N,)
        Planned lasers without a partner per satellite, by reason.
    """

    pairs: np.ndarray
    inter_plane: np.ndarray
    missing: dict
    across_gap: np.ndarray | None = None


def circular_gap_deg(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed angular difference ``x - y`` wrapped to [-180, 180) [deg]."""
    return (x - y + 180.0) % 360.0 - 180.0


def nominal_slots(u_deg: np.ndarray) -> int:
    """Slots of a plane's comb: ``round(360 / median gap)`` between neighbours in ``u``.

    Equals the satellite count of an evenly filled plane; a real plane with
    spares or gaps still gives the spacing most of its satellites keep.
    """
    if u_deg.size < 2:
        return max(int(u_deg.size), 1)
    u = np.sort(u_deg % 360.0)
    gaps = np.diff(np.r_[u, u[0] + 360.0])
    return max(1, int(round(360.0 / max(float(np.median(gaps)), 1e-9))))


def plane_pair_offset_deg(u_west: np.ndarray, u_east: np.ndarray) -> float:
    """Phase offset of the east plane's slot comb relative to the west one [deg].

    In ``(-w/2, w/2]`` with ``w = 360 / S`` and ``S`` the planes' common
    :func:`nominal_slots`; near-half-slot ties give ``+w/2``.  Planes with
    different combs, or too unevenly filled for a phase, give 0 (plain nearest).
    """
    n_slots = nominal_slots(u_west)
    if nominal_slots(u_east) != n_slots:
        return 0.0
    z_west = np.exp(1j * np.radians(n_slots * u_west)).mean()
    z_east = np.exp(1j * np.radians(n_slots * u_east)).mean()
    if min(abs(z_west), abs(z_east)) < MIN_COHERENCE:
        return 0.0
    fraction = float(np.angle(z_east * np.conj(z_west))) / (2.0 * np.pi)   # [-0.5, 0.5]
    if abs(fraction) > 0.5 - TIE_TOLERANCE_SLOTS:
        fraction = 0.5
    return fraction * 360.0 / n_slots


def _groups(fleet: Fleet) -> dict[tuple[int, int], np.ndarray]:
    """(shell, plane) -> members sorted by slot."""
    placed = np.flatnonzero(fleet.plane >= 0)
    order = placed[np.lexsort((fleet.slot[placed], fleet.plane[placed], fleet.shell[placed]))]
    key = fleet.shell[order] * 1_000_000 + fleet.plane[order]
    groups = {}
    for members in np.split(order, np.flatnonzero(np.diff(key)) + 1):
        if members.size:
            groups[(int(fleet.shell[members[0]]), int(fleet.plane[members[0]]))] = members
    return groups


def _plane_neighbours(fleet: Fleet, groups: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """(west members, east members) for every adjacent plane pair."""
    by_shell: dict[int, list[int]] = {}
    for shell, plane in sorted(groups):
        by_shell.setdefault(shell, []).append(plane)
    out = []
    for shell, planes in by_shell.items():
        pairs = list(zip(planes[:-1], planes[1:]))
        if fleet.shell_wraps[shell] and len(planes) > 2:
            pairs.append((planes[-1], planes[0]))
        out.extend((groups[(shell, p)], groups[(shell, q)]) for p, q in pairs)
    return out


def _index_candidates(fleet: Fleet, west: np.ndarray, east: np.ndarray, shift: int):
    """Slot s of the west plane to slot (s + shift) mod S_east: one candidate each."""
    count = min(west.size, east.size)
    return west[:count], east[(np.arange(count) + shift) % east.size], np.zeros(count)


def _arg_lat_candidates(fleet: Fleet, west: np.ndarray, east: np.ndarray, shift: int):
    """All west x east pairs, cost = |u_east - u_west - phi| with the pair's phase phi."""
    phi = plane_pair_offset_deg(fleet.arg_lat_deg[west], fleet.arg_lat_deg[east])
    u = np.repeat(west, east.size)
    v = np.tile(east, west.size)
    cost = np.abs(circular_gap_deg(fleet.arg_lat_deg[v], fleet.arg_lat_deg[u] + phi))
    return u, v, cost


#: Cross-plane pairings by name: ``(fleet, west, east, shift) -> (u, v, cost)``,
#: candidate pairs of two adjacent planes for the one-to-one greedy matching.
PAIRINGS = {"arg_lat": _arg_lat_candidates, "index": _index_candidates}


def plus_grid_plan(fleet: Fleet, lasers_per_sat: int, pairing: str = "arg_lat",
                   shift: int = 0) -> GridPlan:
    """The +Grid's static candidate pairs and the reasons for missing ones."""
    n = fleet.n_sats
    missing = {reason: np.zeros(n, np.int64) for reason in MISSING_REASONS}
    groups = _groups(fleet)
    intra = []
    for members in groups.values():
        if members.size >= 3:
            intra.append(np.stack([members, np.roll(members, -1)], axis=1))
        else:
            if members.size == 2:
                intra.append(members[None, :])
            missing["small_plane"][members] += 3 - members.size
    placed = fleet.plane >= 0
    east_port = np.zeros(n, bool)      # has a plane to the east / west
    west_port = np.zeros(n, bool)
    inter_u, inter_v, inter_cost = [], [], []
    for west, east in _plane_neighbours(fleet, groups):
        east_port[west] = True
        west_port[east] = True
        u, v, cost = PAIRINGS[pairing](fleet, west, east, shift)
        inter_u.append(u)
        inter_v.append(v)
        inter_cost.append(cost)
    if inter_u:
        u = np.concatenate(inter_u)
        v = np.concatenate(inter_v)
        # Ports: each satellite has one "east" (2i) and one "west" (2i+1) port.
        chosen = greedy_b_matching(2 * u, 2 * v + 1, np.concatenate(inter_cost),
                                   np.ones(2 * n, dtype=np.int64))
        inter = np.stack([u[chosen], v[chosen]], axis=1)
    else:
        inter = np.zeros((0, 2), np.int64)
    matched_east = np.zeros(n, bool)
    matched_west = np.zeros(n, bool)
    matched_east[inter[:, 0]] = True
    matched_west[inter[:, 1]] = True
    missing["no_adjacent_plane"] += placed & ~east_port
    missing["no_adjacent_plane"] += placed & ~west_port
    for west, east in _plane_neighbours(fleet, groups):
        for side, own, other in ((matched_east, west, east), (matched_west, east, west)):
            lost = own[~side[own]]
            reason = "missing_slot" if other.size < own.size else "tie"
            missing[reason][lost] += 1
    intra_pairs = np.concatenate(intra) if intra else np.zeros((0, 2), np.int64)
    pairs = np.concatenate([intra_pairs, inter]).astype(np.int64)
    is_inter = np.r_[np.zeros(len(intra_pairs), bool), np.ones(len(inter), bool)]
    pairs = np.sort(pairs, axis=1)
    keys = pairs[:, 0] * n + pairs[:, 1]
    keys, first = np.unique(keys, return_index=True)   # P=2 delta: both ways
    pairs, is_inter = pairs[first], is_inter[first]
    if lasers_per_sat < 4:
        priority = is_inter.astype(float)
        keep = greedy_b_matching(pairs[:, 0], pairs[:, 1], priority,
                                 np.full(n, lasers_per_sat))
        dropped = pairs[~keep].ravel()
        np.add.at(missing["laser_limit"], dropped, 1)
        pairs, is_inter = pairs[keep], is_inter[keep]
    return GridPlan(pairs, is_inter, missing, _across_gap(fleet, groups, pairs, is_inter))


def _across_gap(fleet: Fleet, groups: dict, pairs: np.ndarray,
                is_inter: np.ndarray) -> np.ndarray:
    """Whether each pair spans more than a slot (1.5 in-plane) in argument of latitude."""
    spacing = np.full(fleet.n_sats, 360.0)
    for members in groups.values():
        spacing[members] = 360.0 / nominal_slots(fleet.arg_lat_deg[members])
    a, b = pairs[:, 0], pairs[:, 1]
    gap = np.abs(circular_gap_deg(fleet.arg_lat_deg[b], fleet.arg_lat_deg[a]))
    limit = np.where(is_inter, 1.0, 1.5) * np.maximum(spacing[a], spacing[b])
    return gap > limit


def plus_grid_pairs(fleet: Fleet, lasers_per_sat: int, pairing: str = "arg_lat",
                    shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(pairs (P, 2) sorted, inter_plane (P,) bool)`` of :func:`plus_grid_plan`."""
    plan = plus_grid_plan(fleet, lasers_per_sat, pairing, shift)
    return plan.pairs, plan.inter_plane
