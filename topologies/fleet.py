"""The satellites of a constellation as arrays: orbits, grid coordinates, capacities.

A :class:`Fleet` is what the rest of the generator works on, whether the
satellites came from Walker shell parameters (:func:`fleet_from_shells`) or from
a TLE file (:func:`topologies.tle.fleet_from_tle`).  Satellites are ordered by
(shell, plane, slot); unplaced TLE satellites (plane = slot = -1) come last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sgp4.api import WGS72, Satrec

from .constants import EARTH_RADIUS_KM, MU_KM3_S2
from .shells import PATTERN_RAAN_SPAN_DEG, Shell
from .timebase import utc_julian_date

# sgp4init takes the epoch as days since 1949 December 31 00:00 UT.
_SGP4_EPOCH0_JD = 2433281.5


@dataclass(frozen=True, eq=False, repr=False)
class Fleet:
    """Satellites as parallel arrays, all of shape ``(n_sats,)``.

    Attributes
    ----------
    satrecs : tuple of sgp4.api.Satrec
        One SGP4 model per satellite.
    names : tuple of str
    shell, plane, slot : numpy.ndarray of int
        Grid coordinates; ``plane = slot = -1`` for satellites not placed in a grid.
    raan_deg : numpy.ndarray of float
        Mean right ascension of the ascending node at the schedule epoch [deg].
    arg_lat_deg : numpy.ndarray of float
        Mean argument of latitude at the schedule epoch [deg].
    radius_km : numpy.ndarray of float
        Nominal orbit radius (mean semi-major axis) [km].
    capacity_bps : numpy.ndarray of float
        Laser-link capacity of the satellite's shell [bit/s]; NaN = use default.
    shell_names : tuple of str
        Name of each shell index.
    shell_wraps : tuple of bool
        Whether the last and first plane of each shell are neighbours
        (delta pattern) or not (star pattern seam).
    placement : dict
        How satellites were placed (TLE input) or the shells' sizes (Walker).
    """

    satrecs: tuple
    names: tuple
    shell: np.ndarray
    plane: np.ndarray
    slot: np.ndarray
    raan_deg: np.ndarray
    arg_lat_deg: np.ndarray
    radius_km: np.ndarray
    capacity_bps: np.ndarray
    shell_names: tuple
    shell_wraps: tuple
    placement: dict = field(default_factory=dict)

    @property
    def n_sats(self) -> int:
        return len(self.satrecs)

    def __repr__(self) -> str:
        return f"Fleet(n_sats={self.n_sats}, shells={list(self.shell_names)})"


def kepler_mean_motion_rad_s(radius_km: float | np.ndarray) -> float | np.ndarray:
    """Mean motion of a circular orbit of the given radius [rad/s] (Kepler's third law)."""
    return np.sqrt(MU_KM3_S2 / np.asarray(radius_km, dtype=float) ** 3)


def kepler_period_s(radius_km: float | np.ndarray) -> float | np.ndarray:
    """Orbital period of a circular orbit of the given radius [s]."""
    return 2.0 * math.pi / kepler_mean_motion_rad_s(radius_km)


def walker_elements(shell: Shell) -> dict[str, np.ndarray]:
    """Plane, slot, RAAN [deg] and mean anomaly [deg] of every satellite of a shell.

    Returns arrays of shape ``(planes * sats_per_plane,)`` in (plane, slot) order.
    """
    n_planes, per_plane = shell.planes, shell.sats_per_plane
    plane, slot = np.divmod(np.arange(n_planes * per_plane), per_plane)
    span_deg = PATTERN_RAAN_SPAN_DEG[shell.pattern]
    raan_deg = (shell.raan_offset_deg + plane * span_deg / n_planes) % 360.0
    anomaly_deg = (slot * 360.0 / per_plane
                   + plane * shell.phasing * 360.0 / shell.n_sats
                   + (plane % 2) * shell.odd_plane_offset_slots * 360.0 / per_plane) % 360.0
    return {"plane": plane, "slot": slot, "raan_deg": raan_deg,
            "anomaly_deg": anomaly_deg}


def fleet_from_shells(shells: tuple[Shell, ...], epoch: datetime) -> Fleet:
    """Build circular-orbit SGP4 models for Walker shells, elements set at ``epoch``.

    Each satellite gets eccentricity 0, argument of perigee 0, no drag, and the
    Kepler mean motion for radius ``EARTH_RADIUS_KM + altitude_km`` (WGS-72).
    """
    whole, fraction = utc_julian_date(epoch)
    sgp4_epoch_days = (whole - _SGP4_EPOCH0_JD) + fraction
    satrecs, names = [], []
    cols = {k: [] for k in ("shell", "plane", "slot", "raan_deg", "arg_lat_deg",
                            "radius_km", "capacity_bps")}
    shell_names = []
    for index, shell in enumerate(shells):
        shell_name = shell.name or f"shell{index}"
        shell_names.append(shell_name)
        elements = walker_elements(shell)
        radius_km = EARTH_RADIUS_KM + shell.altitude_km
        no_kozai_rad_min = float(kepler_mean_motion_rad_s(radius_km)) * 60.0
        inclination_rad = math.radians(shell.inclination_deg)
        width_p = len(str(shell.planes - 1))
        width_s = len(str(shell.sats_per_plane - 1))
        for plane, slot, raan_deg, anomaly_deg in zip(
                elements["plane"].tolist(), elements["slot"].tolist(),
                elements["raan_deg"].tolist(), elements["anomaly_deg"].tolist()):
            sat = Satrec()
            sat.sgp4init(WGS72, "i", len(satrecs) % 100000, sgp4_epoch_days,
                         0.0, 0.0, 0.0, 0.0, 0.0, inclination_rad,
                         math.radians(anomaly_deg), no_kozai_rad_min,
                         math.radians(raan_deg))
            satrecs.append(sat)
            names.append(f"{shell_name}-p{plane:0{width_p}d}-s{slot:0{width_s}d}")
        n = shell.n_sats
        cols["shell"].append(np.full(n, index))
        cols["plane"].append(elements["plane"])
        cols["slot"].append(elements["slot"])
        cols["raan_deg"].append(elements["raan_deg"])
        cols["arg_lat_deg"].append(elements["anomaly_deg"])
        cols["radius_km"].append(np.full(n, radius_km))
        cols["capacity_bps"].append(np.full(n, np.nan if shell.capacity_bps is None
                                            else shell.capacity_bps))
    arrays = {k: np.concatenate(v) for k, v in cols.items()}
    for key in ("shell", "plane", "slot"):
        arrays[key] = arrays[key].astype(np.int64)
    return Fleet(
        satrecs=tuple(satrecs), names=tuple(names), shell_names=tuple(shell_names),
        shell_wraps=tuple(s.pattern == "delta" for s in shells),
        placement={"source": "walker", "n_total": len(satrecs),
                   "n_placed": len(satrecs)},
        **arrays)
