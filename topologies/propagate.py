"""Vectorised SGP4 propagation to Earth-fixed positions.

One :class:`sgp4.api.SatrecArray` call propagates all satellites at a set of
knot times; positions at the schedule steps are then either those SGP4 values
themselves (short runs) or a 4-point (cubic) Lagrange interpolation of the SGP4
positions between equally spaced knots.  (SGP4's velocities are not exactly the
derivative of its positions -- they differ by ~1 cm/s -- so they are not used.)
The knot spacing is chosen from the orbits so that the interpolation error
stays below ``tolerance_km`` (default 1 mm): for a circular orbit of radius r
and angular rate w, ``|error| <= r w^4 h^4 / 24``.
TEME -> ECEF is a rotation by GMST-1982 about z, exactly Skyfield's TEME->ITRS
transform without polar motion.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sgp4.api import SGP4_ERRORS, SatrecArray

from .constants import MU_KM3_S2
from .errors import TopologyError
from .fleet import Fleet
from .timebase import Timebase

#: Default bound on interpolation error [km] (1 mm).
TOLERANCE_KM = 1e-6
#: Never space knots further apart than this [s].
MAX_KNOT_S = 30.0


def knot_spacing_s(fleet: Fleet, tolerance_km: float = TOLERANCE_KM,
                   max_knot_s: float = MAX_KNOT_S) -> float:
    """Largest knot spacing [s] keeping Hermite error below ``tolerance_km``.

    Uses the perigee radius and angular rate of the most demanding orbit
    (eccentricity included), with a safety factor of 2 on the error bound
    ``r w^4 h^4 / 24`` of 4-point Lagrange interpolation.
    """
    n_rad_s = np.array([s.no_kozai for s in fleet.satrecs]) / 60.0
    ecc = np.array([s.ecco for s in fleet.satrecs])
    a_km = (MU_KM3_S2 / n_rad_s**2) ** (1.0 / 3.0)
    rate_perigee = n_rad_s * (1.0 + ecc) ** 2 / (1.0 - ecc**2) ** 1.5
    worst = float(np.max(a_km * (1.0 + ecc) * rate_perigee**4))
    h = (24.0 * tolerance_km / (2.0 * worst)) ** 0.25
    return float(min(h, max_knot_s))


def propagate_teme_km(fleet: Fleet, timebase: Timebase, times_s: np.ndarray):
    """SGP4 positions in TEME [km], shape ``(len(times_s), n_sats, 3)``.

    Raises :class:`TopologyError` naming a satellite SGP4 cannot propagate.
    """
    jd, fr = timebase.sgp4_dates(times_s)
    errors, r, _ = SatrecArray(list(fleet.satrecs)).sgp4(jd, fr)
    if errors.any():
        sat, step = np.argwhere(errors)[0]
        raise TopologyError(
            f"SGP4 cannot propagate satellite {fleet.names[sat]!r} at "
            f"t={times_s[step]:g} s: {SGP4_ERRORS[int(errors[sat, step])]} "
            "(decayed or bad elements?)")
    return np.ascontiguousarray(r.transpose(1, 0, 2))


def teme_to_ecef_inplace(r_km: np.ndarray, theta_rad: np.ndarray) -> np.ndarray:
    """Rotate TEME vectors ``(T, N, 3)`` by GMST angles ``(T,)`` into ECEF, in place."""
    c = np.cos(theta_rad)[:, None]
    s = np.sin(theta_rad)[:, None]
    x = r_km[..., 0].copy()
    y = r_km[..., 1]
    r_km[..., 0] = c * x + s * y
    r_km[..., 1] = c * y - s * x
    return r_km


def propagate_ecef_km(fleet: Fleet, timebase: Timebase, *,
                      tolerance_km: float = TOLERANCE_KM,
                      chunk_steps: int = 256,
                      progress: Callable[[int], None] | None = None,
                      info: dict | None = None,
                      out: np.ndarray | None = None,
                      exact: bool = False,
                      earth_rotation: str = "ut1") -> np.ndarray:
    """ECEF positions of all satellites at all steps [km], shape ``(T, N, 3)``.

    ``progress(n)`` is called with the number of steps finished per chunk;
    ``info`` (if given) receives the method and knot spacing used; ``out``
    (optional, shape (T, N, 3), may be a view) receives the result;
    ``exact`` forces SGP4 at every step (no interpolation); ``earth_rotation``
    (``"ut1"`` or ``"utc"``) is the time scale of the TEME -> ECEF rotation.
    """
    times = timebase.times_s
    n_steps = times.size
    if out is None:
        out = np.empty((n_steps, fleet.n_sats, 3))
    if n_steps == 0 or fleet.n_sats == 0:
        return out
    h = knot_spacing_s(fleet, tolerance_km)
    span = float(times[-1] - times[0])
    n_knots = int(math.ceil(span / h)) + 1 if span > 0 else 1
    direct = exact or n_knots + 1 >= n_steps / 4
    if info is not None:
        info.update({"method": "sgp4" if direct else "sgp4+lagrange4",
                     "knot_s": None if direct else span / max(n_knots - 1, 1),
                     "tolerance_km": None if direct else tolerance_km})
    if direct:
        for lo in range(0, n_steps, chunk_steps):
            hi = min(lo + chunk_steps, n_steps)
            out[lo:hi] = propagate_teme_km(fleet, timebase, times[lo:hi])
            if progress:
                progress(hi - lo)
    else:
        n_knots = max(n_knots, 4)
        knots = np.linspace(times[0], times[-1], n_knots)
        h = knots[1] - knots[0]
        r_knots = propagate_teme_km(fleet, timebase, knots)
        for lo in range(0, n_steps, chunk_steps):
            hi = min(lo + chunk_steps, n_steps)
            # Interval i holds t; use knots i-1..i+2 (clamped at the ends).
            i = np.floor((times[lo:hi] - knots[0]) / h).astype(np.int64)
            first = np.clip(i - 1, 0, n_knots - 4)
            x = ((times[lo:hi] - knots[first]) / h)[:, None, None]
            block = out[lo:hi]
            block[...] = 0.0
            for k in range(4):
                weight = np.ones_like(x)
                for j in range(4):
                    if j != k:
                        weight = weight * (x - j) / (k - j)
                block += weight * r_knots[first + k]
            if progress:
                progress(hi - lo)
    theta = timebase.earth_rotation_rad(scale=earth_rotation)
    for lo in range(0, n_steps, chunk_steps):
        hi = min(lo + chunk_steps, n_steps)
        teme_to_ecef_inplace(out[lo:hi], theta[lo:hi])
    return out
