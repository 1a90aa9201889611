"""Formation-flying clusters as constellation elements: configuration, positions, links.

A :class:`Cluster` (``ScheduleConfig.clusters``, spec ``[[constellation.clusters]]``)
adds ``count`` compute satellites after the constellation's satellites (node ids
``S .. S+M-1`` in cluster order, named ``<name>-m<k>``).  Their positions come from
:mod:`topologies.formation`; their links are laser links (kind ``isl``) of two sorts:

* intra-cluster optical links with their own capacity ``intra_rate_bps`` and range
  ``max_range_m``, chosen per step by ``intra_topology`` (registry
  ``INTRA_TOPOLOGIES``: ``nearest`` = greedy shortest-first with at most
  ``intra_k`` per member; ``all`` = every pair within range).  These use the
  cluster's own short-range terminals, not the ``lasers_per_sat`` budget;
* gateway links: each member listed in ``gateways`` gets up to ``gateway_links``
  laser links to the nearest constellation satellites that have a laser left over
  after the ISL policy, within range and line of sight (the same rule as ISLs),
  re-matched every step (a link is kept while feasible, like the ``nearest`` ISL
  policy); capacity ``gateway_rate_bps`` (default: the schedule's ``capacity_bps``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import as_float, as_int, as_mapping, as_str, reject_unknown
from .errors import INVALID, Collector, TopologyError
from .formation import (circular_relative_states_m, hcw_offsets_m, mean_motion_rad_s,
                        members_inertial_km, sso_inclination_deg, sunflower_layout)

#: Named reference orbits.  ``dawn_dusk_sso_650``: 650 km circular, sun-synchronous
#: inclination from J2 (97.99 deg), ascending node at 18:00 local time.
ORBIT_PRESETS: dict[str, dict[str, float]] = {
    "dawn_dusk_sso_650": {"altitude_km": 650.0, "inclination_deg": sso_inclination_deg(650.0),
                          "ltan_h": 18.0},
}


def _intra_nearest(distance_m: np.ndarray, in_range: np.ndarray, cluster: "Cluster",
                   iu: np.ndarray, ju: np.ndarray) -> np.ndarray:
    """Greedy shortest-first, at most ``intra_k`` links per member: mask ``(P,)``."""
    from .matching import greedy_b_matching
    pool = np.flatnonzero(in_range)
    chosen = np.zeros(in_range.size, bool)
    cap = np.full(cluster.count, cluster.intra_k, np.int64)
    chosen[pool[greedy_b_matching(iu[pool], ju[pool], distance_m[pool], cap)]] = True
    return chosen


def _intra_all(distance_m, in_range, cluster, iu, ju) -> np.ndarray:
    """Every member pair within ``max_range_m``."""
    return in_range.copy()


#: Intra-cluster topologies: ``f(distance_m (P,), in_range (P,), cluster, i (P,), j (P,))``
#: over the member pairs ``i < j`` of one step, returning which pairs are linked.
INTRA_TOPOLOGIES = {"nearest": _intra_nearest, "all": _intra_all}

_KEYS = ("name", "count", "radius_m", "orbit", "altitude_km", "inclination_deg", "raan_deg",
         "ltan_h", "arg_lat_deg", "intra_topology", "intra_k", "max_range_m",
         "intra_rate_bps", "gateways", "gateway_links", "gateway_rate_bps")


@dataclass(frozen=True)
class Cluster:
    """One formation-flying cluster (all distances in metres, rates in bit/s).

    Attributes
    ----------
    name : str
        Node names are ``<name>-m<k>``.
    count : int
        Members (>= 1).
    radius_m : float
        Every member stays within this distance of the reference orbit [m].
    orbit : str or None
        A key of ``ORBIT_PRESETS``; explicit orbit keys override its values.
    altitude_km, inclination_deg : float
        Circular reference orbit above the WGS-72 radius [km], inclination [deg].
    raan_deg, ltan_h : float or None
        The node: RAAN [deg] at the epoch, or the local time of the ascending node
        [h] (``raan = RA_sun + 15 (ltan_h - 12)``); at most one; neither = RAAN 0.
    arg_lat_deg : float
        Argument of latitude of the reference at the epoch [deg].
    intra_topology : str
        Key of ``INTRA_TOPOLOGIES``; ``intra_k`` links per member for ``nearest``.
    max_range_m : float or None
        Longest intra-cluster link [m]; None = ``2 radius_m`` (every pair).
    intra_rate_bps : float
        Intra-cluster link capacity (default 1.6 Tbit/s, Suncatcher's bench demo).
    gateways : tuple of int
        Member indices (0-based) that also link to the constellation.
    gateway_links : int
        Laser links per gateway towards the constellation.
    gateway_rate_bps : float or None
        Their capacity; None = the schedule's ``capacity_bps``.
    """

    count: int
    name: str = "cluster"
    radius_m: float = 1000.0
    orbit: str | None = None
    altitude_km: float | None = None
    inclination_deg: float | None = None
    raan_deg: float | None = None
    ltan_h: float | None = None
    arg_lat_deg: float = 0.0
    intra_topology: str = "nearest"
    intra_k: int = 4
    max_range_m: float | None = None
    intra_rate_bps: float = 1.6e12
    gateways: tuple = (0,)
    gateway_links: int = 1
    gateway_rate_bps: float | None = None

    def __post_init__(self) -> None:
        c = Collector()
        v: dict[str, Any] = {}
        v["name"] = c.check(as_str, self.name, "name")
        v["count"] = c.check(as_int, self.count, "count", min_value=1, max_value=1000)
        v["radius_m"] = c.check(as_float, self.radius_m, "radius_m", gt=0.0, le=100_000.0)
        preset: dict[str, float] = {}
        if self.orbit is not None:
            v["orbit"] = c.check(as_str, self.orbit, "orbit", choices=ORBIT_PRESETS)
            preset = ORBIT_PRESETS.get(v["orbit"], {}) if v["orbit"] is not INVALID else {}
        orbit = {k: getattr(self, k) for k in ("altitude_km", "inclination_deg", "ltan_h")
                 if getattr(self, k) is not None}
        if self.raan_deg is not None:      # an explicit RAAN replaces the preset's node time
            preset = {k: x for k, x in preset.items() if k != "ltan_h"}
        orbit = {**preset, **orbit}
        for key in ("altitude_km", "inclination_deg"):
            if key not in orbit:
                c.add("missing (give it or an orbit preset)", key)
        if "altitude_km" in orbit:
            v["altitude_km"] = c.check(as_float, orbit["altitude_km"], "altitude_km",
                                       gt=100.0, le=40_000.0)
        if "inclination_deg" in orbit:
            v["inclination_deg"] = c.check(as_float, orbit["inclination_deg"],
                                           "inclination_deg", ge=0.0, le=180.0)
        if self.raan_deg is not None and self.ltan_h is not None:
            c.add("give raan_deg or ltan_h, not both", "ltan_h")
        if self.raan_deg is not None:
            v["raan_deg"] = c.check(as_float, self.raan_deg, "raan_deg", ge=-360.0, le=360.0)
        if "ltan_h" in orbit:
            v["ltan_h"] = c.check(as_float, orbit["ltan_h"], "ltan_h", ge=0.0, lt=24.0)
        v["arg_lat_deg"] = c.check(as_float, self.arg_lat_deg, "arg_lat_deg",
                                   ge=-360.0, le=360.0)
        v["intra_topology"] = c.check(as_str, self.intra_topology, "intra_topology",
                                      choices=INTRA_TOPOLOGIES)
        v["intra_k"] = c.check(as_int, self.intra_k, "intra_k", min_value=1, max_value=64)
        if self.max_range_m is not None:
            v["max_range_m"] = c.check(as_float, self.max_range_m, "max_range_m", gt=0.0)
        v["intra_rate_bps"] = c.check(as_float, self.intra_rate_bps, "intra_rate_bps", gt=0.0)
        v["gateways"] = c.check(self._gateways, v["count"])
        v["gateway_links"] = c.check(as_int, self.gateway_links, "gateway_links",
                                     min_value=1, max_value=64)
        if self.gateway_rate_bps is not None:
            v["gateway_rate_bps"] = c.check(as_float, self.gateway_rate_bps,
                                            "gateway_rate_bps", gt=0.0)
        c.raise_if_any()
        for key, value in v.items():
            object.__setattr__(self, key, value)

    def _gateways(self, count: Any) -> tuple[int, ...]:
        value = self.gateways
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise TopologyError("must be a list of member indices", "gateways")
        c = Collector()
        limit = count - 1 if isinstance(count, int) else None
        out = [c.check(as_int, x, f"gateways[{i}]", min_value=0, max_value=limit)
               for i, x in enumerate(value)]
        c.raise_if_any()
        if len(set(out)) != len(out):
            raise TopologyError("lists a member twice", "gateways")
        return tuple(sorted(out))

    # ------------------------------------------------------------- derived

    @property
    def range_m(self) -> float:
        """Longest intra-cluster link [m]."""
        return self.max_range_m if self.max_range_m is not None else 2.0 * self.radius_m

    @property
    def lasers_per_member(self) -> int:
        """Terminals a member may use at once: intra links plus gateway links."""
        intra = self.intra_k if self.intra_topology == "nearest" else self.count - 1
        return min(intra, self.count - 1) + (self.gateway_links if self.gateways else 0)

    def member_names(self) -> tuple[str, ...]:
        width = len(str(self.count - 1))
        return tuple(f"{self.name}-m{k:0{width}d}" for k in range(self.count))

    def raan_at(self, sun_ra_deg: float) -> float:
        """RAAN [deg] at the epoch, given the Sun's right ascension then [deg]."""
        if self.ltan_h is not None:
            return (sun_ra_deg + 15.0 * (self.ltan_h - 12.0)) % 360.0
        return (self.raan_deg or 0.0) % 360.0

    def offsets_m(self, times_s: np.ndarray) -> np.ndarray:
        """Members' LVLH offsets from the reference [m], shape ``(T, count, 3)``."""
        n = mean_motion_rad_s(self.altitude_km)
        radius, phase = sunflower_layout(self.count, self.radius_m)
        return hcw_offsets_m(circular_relative_states_m(radius, phase, n), n, times_s)

    def to_dict(self) -> dict:
        return {f.name: (list(getattr(self, f.name)) if f.name == "gateways"
                         else getattr(self, f.name)) for f in dataclasses.fields(self)}


def clusters_from_list(value: Any, field: str = "clusters") -> tuple[Cluster, ...]:
    """Clusters from plain data (a list of tables); every problem reported at once."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise TopologyError("must be a list of cluster tables", field)
    c = Collector()
    out = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if isinstance(item, Cluster):
            out.append(item)
            continue
        item = c.check(as_mapping, item, where)
        if item is INVALID:
            continue
        inner = Collector(where)
        inner.check(reject_unknown, item, _KEYS, None)
        if "count" not in item:
            inner.add("missing required key", "count")
        cluster = inner.check(Cluster, **{k: x for k, x in item.items() if k in _KEYS}) \
            if "count" in item else INVALID
        c.check(inner.raise_if_any)
        out.append(cluster)
    names = [x.name for x in out if x is not INVALID]
    for i, x in enumerate(out):
        if x is not INVALID and names.count(x.name) > 1:
            c.add(f"duplicate cluster name {x.name!r}", f"{field}[{i}].name")
            break
    c.raise_if_any()
    return tuple(out)


# ------------------------------------------------------------------ positions

def sun_right_ascension_deg(timebase) -> float:
    """Apparent right ascension of the Sun at the epoch, equinox of date [deg]."""
    from .timebase import ephemeris
    eph = ephemeris()
    t = timebase.skyfield_times(np.zeros(1))
    ra, _, _ = eph["earth"].at(t).observe(eph["sun"]).apparent().radec(epoch="date")
    return float(np.degrees(ra.radians[0]))


def reference_satrec(cluster: Cluster, epoch, raan_deg: float):
    """SGP4 model of the circular reference orbit (WGS-72, no drag), elements at ``epoch``."""
    from sgp4.api import WGS72, Satrec

    from .fleet import _SGP4_EPOCH0_JD
    from .timebase import utc_julian_date
    whole, fraction = utc_julian_date(epoch)
    sat = Satrec()
    sat.sgp4init(WGS72, "i", 0, (whole - _SGP4_EPOCH0_JD) + fraction, 0.0, 0.0, 0.0, 0.0, 0.0,
                 math.radians(cluster.inclination_deg), math.radians(cluster.arg_lat_deg),
                 mean_motion_rad_s(cluster.altitude_km) * 60.0, math.radians(raan_deg))
    return sat


def cluster_teme_km(cluster: Cluster, timebase, raan_deg: float) -> np.ndarray:
    """Members' TEME positions [km], shape ``(T, count, 3)``: SGP4 reference + HCW offsets."""
    from sgp4.api import SGP4_ERRORS, SatrecArray
    jd, fr = timebase.sgp4_dates()
    errors, r, v = SatrecArray([reference_satrec(cluster, timebase.epoch, raan_deg)]).sgp4(jd, fr)
    if errors.any():
        raise TopologyError(f"SGP4 cannot propagate the reference orbit: "
                            f"{SGP4_ERRORS[int(errors.max())]}", "clusters")
    return members_inertial_km(r[0], v[0], cluster.offsets_m(timebase.times_s))


def clusters_ecef_km(clusters: tuple[Cluster, ...], timebase, earth_rotation: str,
                     out: np.ndarray) -> list[dict]:
    """Fill ``out`` ``(T, sum(count), 3)`` with ECEF member positions [km]; returns meta rows."""
    from .propagate import teme_to_ecef_inplace
    if not clusters:
        return []
    sun_ra = sun_right_ascension_deg(timebase)
    theta = timebase.earth_rotation_rad(scale=earth_rotation)
    rows, lo = [], 0
    for cluster in clusters:
        raan = cluster.raan_at(sun_ra)
        block = cluster_teme_km(cluster, timebase, raan)
        out[:, lo:lo + cluster.count] = teme_to_ecef_inplace(block, theta)
        rows.append({"name": cluster.name, "first_index": lo, "count": cluster.count,
                     "raan_deg": raan, "inclination_deg": cluster.inclination_deg,
                     "altitude_km": cluster.altitude_km, "radius_m": cluster.radius_m,
                     "lasers_per_member": cluster.lasers_per_member,
                     "sun_ra_deg_at_epoch": sun_ra})
        lo += cluster.count
    return rows


def laser_limits(n_nodes: int, lasers_per_sat: int, cluster_rows: list[dict],
                 first_member_id: int) -> np.ndarray:
    """Laser links allowed per node, shape ``(n_nodes,)`` (members: their own budget)."""
    limit = np.full(n_nodes, int(lasers_per_sat), np.int64)
    for row in cluster_rows:
        lo = first_member_id + int(row["first_index"])
        limit[lo:lo + int(row["count"])] = int(row["lasers_per_member"])
    return limit


__all__ = ["Cluster", "INTRA_TOPOLOGIES", "ORBIT_PRESETS", "cluster_teme_km", "clusters_ecef_km",
           "clusters_from_list", "laser_limits", "reference_satrec", "sun_right_ascension_deg"]
