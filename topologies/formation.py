"""Formation-flying clusters: members on bounded Hill--Clohessy--Wiltshire orbits.

A cluster is ``count`` compute satellites flying within ``radius_m`` of a
circular reference orbit (Google's Suncatcher study, arXiv 2511.19468: 81
satellites within ~1 km at ~650 km in a dawn--dusk sun-synchronous orbit).

Frames and units
----------------
LVLH (Hill) frame of the reference, metres: ``x`` radial (outward), ``y``
along-track (completing the triad, ~ the velocity), ``z`` cross-track (along
the orbit normal ``r x v``).  Reference states are TEME [km, km/s] from SGP4
(so the reference carries SGP4's J2 secular motion: an SSO's node drifts with
the Sun); members are ``r_ref + R_lvlh->teme @ rho`` rotated into ECEF like
every other satellite.  Positions stay float64 kilometres (resolution ~1.5 um
at 7,000 km), so metre-scale distances, hence delays, are exact.

Relative motion (HCW, linearised about a circular orbit of mean motion n)::

    x'' - 2 n y' - 3 n^2 x = 0,   y'' + 2 n x' = 0,   z'' + n^2 z = 0

closed form from ``(x0, y0, z0, vx0, vy0, vz0)`` in :func:`hcw_offsets_m`.
It is bounded (no along-track drift) when ``vy0 = -2 n x0``.  Members are
placed on the bounded "circular" relative orbits
``rho(t) = a (cos(th)/2, -sin(th), sqrt(3)/2 cos(th))``, ``th = n t + phi``:
``|rho| = a`` at all times, and all of them lie in one plane, so the whole
formation is a rigid disc that turns once per orbit.  Radii and phases follow
a sunflower (Vogel) spiral, ``a_k = radius_m sqrt((k + 1/2) / count)``,
``phi_k = k pi (3 - sqrt 5)``: evenly spread, every member within radius_m.
Neglected: differential J2 and drag between members, and HCW's second-order
terms (~ 3 n^2 rho^2 / r, i.e. metres per orbit at 1 km; see the tests).

Sun-synchronous inclination (circular orbit, J2 only): the node must precess at
the Sun's mean rate ``dOmega/dt = 2 pi / 365.2422 d``, and
``dOmega/dt = -3/2 J2 (R / a)^2 n cos i``, hence
``cos i = -(2 a^2 dOmega/dt) / (3 J2 R^2 n)`` -- 97.99 deg at 650 km
(WGS-72 J2 and radius, as SGP4 uses).  The node's local time (``ltan_h``)
sets ``raan = RA_sun(epoch) + 15 deg/h (ltan_h - 12)``; 18 h is dawn--dusk.
"""

from __future__ import annotations

import math

import numpy as np

from .constants import EARTH_RADIUS_KM, MU_KM3_S2

#: WGS-72 second zonal harmonic (SGP4's ``j2``).
J2_WGS72 = 0.001082616
#: Mean tropical year [s]: the Sun's mean motion in right ascension.
TROPICAL_YEAR_S = 365.2421897 * 86_400.0
#: Golden angle [rad] of the sunflower layout.
GOLDEN_ANGLE_RAD = math.pi * (3.0 - math.sqrt(5.0))


def sso_inclination_deg(altitude_km: float) -> float:
    """Inclination [deg] of a circular sun-synchronous orbit at ``altitude_km``.

    ``cos i = -(2 a^2 w_sun) / (3 J2 R^2 n)`` with ``a = R + altitude_km``,
    ``n = sqrt(mu / a^3)``, ``w_sun = 2 pi / tropical year`` (J2 only).
    Raises ValueError above ~5,970 km, where no SSO exists (|cos i| > 1).
    """
    a_km = EARTH_RADIUS_KM + float(altitude_km)
    n_rad_s = math.sqrt(MU_KM3_S2 / a_km**3)
    w_sun = 2.0 * math.pi / TROPICAL_YEAR_S
    cos_i = -(2.0 * a_km**2 * w_sun) / (3.0 * J2_WGS72 * EARTH_RADIUS_KM**2 * n_rad_s)
    if not -1.0 <= cos_i <= 1.0:
        raise ValueError(f"no sun-synchronous orbit at {altitude_km:g} km")
    return math.degrees(math.acos(cos_i))


def mean_motion_rad_s(altitude_km: float) -> float:
    """Kepler mean motion [rad/s] of a circular orbit ``altitude_km`` above R (WGS-72)."""
    return math.sqrt(MU_KM3_S2 / (EARTH_RADIUS_KM + float(altitude_km)) ** 3)


def sunflower_layout(count: int, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Relative-orbit radii [m] and phases [rad], each shape ``(count,)``."""
    k = np.arange(count, dtype=float)
    return radius_m * np.sqrt((k + 0.5) / count), (k * GOLDEN_ANGLE_RAD) % (2.0 * math.pi)


def circular_relative_states_m(radius_m: np.ndarray, phase_rad: np.ndarray,
                               n_rad_s: float) -> np.ndarray:
    """HCW initial states ``(M, 6)`` [m, m/s] of bounded circular relative orbits.

    State order ``(x, y, z, vx, vy, vz)`` in LVLH; ``vy = -2 n x`` (no drift),
    ``|rho(t)| = radius_m`` for all t.
    """
    a = np.asarray(radius_m, float)
    c, s = np.cos(phase_rad), np.sin(phase_rad)
    h = math.sqrt(3.0) / 2.0
    return np.stack([a * c / 2.0, -a * s, h * a * c,
                     -a * n_rad_s * s / 2.0, -a * n_rad_s * c, -h * a * n_rad_s * s], axis=-1)


def hcw_offsets_m(state0_m: np.ndarray, n_rad_s: float, t_s: np.ndarray) -> np.ndarray:
    """Closed-form HCW positions ``(T, M, 3)`` [m] from states ``(M, 6)`` at times ``(T,)``.

    The Clohessy--Wiltshire solution::

        x = (4 - 3c) x0 + s/n vx0 + 2/n (1 - c) vy0
        y = 6 (s - nt) x0 + y0 - 2/n (1 - c) vx0 + (4 s - 3 n t)/n vy0
        z = c z0 + s/n vz0,      c = cos(nt), s = sin(nt)
    """
    x0, y0, z0, vx, vy, vz = (np.asarray(state0_m, float)[:, i][None, :] for i in range(6))
    nt = (n_rad_s * np.asarray(t_s, float))[:, None]
    c, s, n = np.cos(nt), np.sin(nt), n_rad_s
    x = (4.0 - 3.0 * c) * x0 + s / n * vx + 2.0 / n * (1.0 - c) * vy
    y = 6.0 * (s - nt) * x0 + y0 - 2.0 / n * (1.0 - c) * vx + (4.0 * s - 3.0 * nt) / n * vy
    z = c * z0 + s / n * vz
    return np.stack([x, y, z], axis=-1)


def lvlh_basis(r_km: np.ndarray, v_km_s: np.ndarray) -> np.ndarray:
    """LVLH axes in the inertial frame, shape ``(T, 3, 3)``: rows are x, y, z unit vectors.

    ``x = r/|r|``, ``z = (r x v)/|r x v|``, ``y = z x x``.  ``r_km``, ``v_km_s``: (T, 3).
    """
    x = r_km / np.linalg.norm(r_km, axis=-1, keepdims=True)
    h = np.cross(r_km, v_km_s)
    z = h / np.linalg.norm(h, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def members_inertial_km(ref_r_km: np.ndarray, ref_v_km_s: np.ndarray,
                        offsets_m: np.ndarray) -> np.ndarray:
    """Member positions ``(T, M, 3)`` [km] = reference ``(T, 3)`` + LVLH offsets ``(T, M, 3)`` [m]."""
    basis = lvlh_basis(ref_r_km, ref_v_km_s)
    return ref_r_km[:, None, :] + np.einsum("tmj,tji->tmi", offsets_m, basis) / 1000.0


def relative_lvlh_m(ref_r_km: np.ndarray, ref_v_km_s: np.ndarray,
                    members_km: np.ndarray) -> np.ndarray:
    """Inverse of :func:`members_inertial_km`: LVLH offsets ``(T, M, 3)`` [m]."""
    basis = lvlh_basis(ref_r_km, ref_v_km_s)
    return np.einsum("tmi,tji->tmj", (members_km - ref_r_km[:, None, :]) * 1000.0, basis)


__all__ = ["GOLDEN_ANGLE_RAD", "J2_WGS72", "TROPICAL_YEAR_S", "circular_relative_states_m",
           "hcw_offsets_m", "lvlh_basis", "mean_motion_rad_s", "members_inertial_km",
           "relative_lvlh_m", "sso_inclination_deg", "sunflower_layout"]
