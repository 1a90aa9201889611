"""Earth-fixed geometry: geodetic conversion, elevation and line of sight.

All positions are Earth-centred Earth-fixed (ECEF, ITRS axes) in km, with the
coordinate axis last: ``(..., 3)``.  Latitude/longitude/altitude are geodetic on
the WGS-84 ellipsoid.  Line of sight is tested against a sphere of radius
``EARTH_RADIUS_KM + grazing_margin_km``.
"""

from __future__ import annotations

import numpy as np

from .constants import WGS84_A_KM, WGS84_F

_E2 = WGS84_F * (2.0 - WGS84_F)          # first eccentricity squared
_B_KM = WGS84_A_KM * (1.0 - WGS84_F)     # polar radius


def geodetic_to_ecef_km(lat_deg, lon_deg, alt_km=0.0) -> np.ndarray:
    """ECEF position [km] of geodetic coordinates; output shape ``(..., 3)``."""
    lat = np.radians(np.asarray(lat_deg, dtype=float))
    lon = np.radians(np.asarray(lon_deg, dtype=float))
    alt = np.asarray(alt_km, dtype=float)
    sin_lat, cos_lat = np.sin(lat), np.cos(lat)
    n = WGS84_A_KM / np.sqrt(1.0 - _E2 * sin_lat**2)
    return np.stack([(n + alt) * cos_lat * np.cos(lon),
                     (n + alt) * cos_lat * np.sin(lon),
                     (n * (1.0 - _E2) + alt) * sin_lat], axis=-1)


def ecef_to_geodetic(ecef_km: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geodetic latitude [deg], longitude [deg] in [-180, 180) and altitude [km].

    Input shape ``(..., 3)``; outputs shape ``(...)``.  Bowring's method with two
    refinements, written with ratios instead of trigonometric calls (only one
    ``arctan2`` each for latitude and longitude): sub-millimetre for any point
    above the Earth's surface.
    """
    x, y, z = ecef_km[..., 0], ecef_km[..., 1], ecef_km[..., 2]
    p = np.hypot(x, y)
    lon = np.degrees(np.arctan2(y, x))
    ep2 = _E2 / (1.0 - _E2)
    # Parametric latitude beta as (sin, cos) from tan(beta) = (a z) / (b p).
    sb_num, cb_num = z * WGS84_A_KM, p * _B_KM
    for _ in range(2):
        h = np.hypot(sb_num, cb_num)
        sin_b, cos_b = sb_num / h, cb_num / h
        lat_num = z + ep2 * _B_KM * sin_b**3
        lat_den = p - _E2 * WGS84_A_KM * cos_b**3
        # tan(beta) = (1 - f) tan(lat)
        sb_num, cb_num = (1.0 - WGS84_F) * lat_num, lat_den
    h = np.hypot(lat_num, lat_den)
    sin_lat, cos_lat = lat_num / h, lat_den / h
    n = WGS84_A_KM / np.sqrt(1.0 - _E2 * sin_lat**2)
    # Altitude along the normal; this form is stable at all latitudes.
    alt = p * cos_lat + z * sin_lat - WGS84_A_KM**2 / n
    lon = np.where(lon >= 180.0, lon - 360.0, lon)
    return np.degrees(np.arctan2(lat_num, lat_den)), lon, alt


def up_unit_vector(lat_deg, lon_deg) -> np.ndarray:
    """Local vertical (ellipsoid normal) as a unit ECEF vector, shape ``(..., 3)``."""
    lat = np.radians(np.asarray(lat_deg, dtype=float))
    lon = np.radians(np.asarray(lon_deg, dtype=float))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon),
                     np.sin(lat)], axis=-1)


def segment_clearance_km(p1_km: np.ndarray, p2_km: np.ndarray) -> np.ndarray:
    """Smallest distance from the Earth's centre to the segment p1-p2 [km].

    Inputs broadcast to ``(..., 3)``; output shape ``(...)``.
    """
    d = p2_km - p1_km
    dd = np.einsum("...i,...i->...", d, d)
    t = -np.einsum("...i,...i->...", p1_km, d) / np.where(dd > 0.0, dd, 1.0)
    t = np.clip(t, 0.0, 1.0)
    closest = p1_km + t[..., None] * d
    return np.sqrt(np.einsum("...i,...i->...", closest, closest))

