"""Sunlight: which satellites are in the Earth's shadow at each step.

The Sun's position comes from the JPL de421 ephemeris shipped by
``skyfield-data`` (geometric Earth->Sun vector, rotated to ECEF).  A satellite
is sunlit when the segment from it towards the Sun does not pass within
``EARTH_RADIUS_KM`` of the Earth's centre -- the same spherical-Earth test as
Skyfield's ``ICRF.is_sunlit``.  A ground station is "sunlit" when the Sun's
centre is above its geodetic horizon (daytime).
"""

from __future__ import annotations

import numpy as np

from .constants import EARTH_RADIUS_KM
from .errors import TopologyError
from .timebase import Timebase, ephemeris

#: Step [s] between exact ephemeris Sun positions; in between, the ECEF vector
#: is interpolated linearly and rescaled to the interpolated distance.  At 10 s
#: the direction error is ~1e-6 deg (the terminator moves by < 1 m at LEO).
SUN_SAMPLE_S = 10.0


def sun_ecef_km(timebase: Timebase) -> np.ndarray:
    """Geocentric Sun position in ECEF [km], shape ``(n_steps, 3)``."""
    from skyfield.framelib import itrs
    times = timebase.times_s
    if times.size == 0:
        return np.zeros((0, 3))
    span = float(times[-1] - times[0])
    n_samples = max(2, int(np.ceil(span / SUN_SAMPLE_S)) + 1)
    if n_samples >= times.size:
        sample_times = times
    else:
        sample_times = np.linspace(times[0], times[-1], n_samples)
    from skyfield.errors import EphemerisRangeError
    eph = ephemeris()
    t = timebase.skyfield_times(sample_times)
    try:
        sun = (eph["sun"] - eph["earth"]).at(t).frame_xyz(itrs).km.T   # (n_samples, 3)
    except EphemerisRangeError as err:
        raise TopologyError(f"outside the de421 Sun ephemeris ({err})", "epoch") from None
    if sample_times is times:
        return sun
    out = np.empty((times.size, 3))
    for axis in range(3):
        out[:, axis] = np.interp(times, sample_times, sun[:, axis])
    # Keep the true distance; only the direction is interpolated.
    distance = np.interp(times, sample_times, np.linalg.norm(sun, axis=1))
    out *= (distance / np.linalg.norm(out, axis=1))[:, None]
    return out


def satellites_sunlit(sat_ecef_km: np.ndarray, sun_km: np.ndarray) -> np.ndarray:
    """Sunlit flags for satellites, shape ``(T, N)`` from positions ``(T, N, 3)``.

    ``sun_km`` has shape ``(T, 3)``.  With P the satellite and S the Sun, the
    ray P + l (S - P), l >= 0, passes closest to the Earth's centre at
    ``along = -P.(S-P) / |S-P|``; the satellite is in shadow when that point
    is ahead (along > 0) and within ``EARTH_RADIUS_KM`` of the centre.
    Written with dot products only, so no (T, N, 3) temporaries are made.
    """
    p_dot_s = np.einsum("tni,ti->tn", sat_ecef_km, sun_km)
    p2 = np.einsum("tni,tni->tn", sat_ecef_km, sat_ecef_km)
    s2 = np.einsum("ti,ti->t", sun_km, sun_km)[:, None]
    to_sun2 = s2 - 2.0 * p_dot_s + p2
    p_dot_to_sun = p_dot_s - p2
    # along > 0  <=>  P.(S-P) < 0 ;  miss^2 = |P|^2 - along^2
    miss2 = p2 - p_dot_to_sun**2 / to_sun2
    return (p_dot_to_sun >= 0.0) | (miss2 > EARTH_RADIUS_KM**2)


def ground_daylight(up_unit: np.ndarray, ground_ecef_km: np.ndarray,
                    sun_km: np.ndarray) -> np.ndarray:
    """Whether the Sun is above each station's horizon, shape ``(T, G)``.

    ``up_unit`` and ``ground_ecef_km`` have shape ``(G, 3)``; ``sun_km`` (T, 3).
    """
    to_sun = sun_km[:, None, :] - ground_ecef_km[None, :, :]
    return np.einsum("tgi,gi->tg", to_sun, up_unit) > 0.0
