"""Physical constants and format identifiers, with units in their names.

Gravity model: SGP4 runs with WGS-72 constants (as the TLE format requires), so
Walker shells are built with the same Earth radius and gravitational parameter.
Geodetic latitude/longitude/altitude are reported on the WGS-84 ellipsoid.
"""

from __future__ import annotations

#: Speed of light in vacuum [km/s] (exact, SI definition).
C_KM_S = 299_792.458

#: WGS-72 equatorial Earth radius [km]; SGP4's radius, also used for the
#: line-of-sight sphere and for altitude -> semi-major axis of Walker shells.
EARTH_RADIUS_KM = 6378.135

#: WGS-72 gravitational parameter [km^3/s^2] (SGP4's value).
MU_KM3_S2 = 398_600.8

#: WGS-84 ellipsoid for geodetic coordinates: semi-major axis [km], flattening.
WGS84_A_KM = 6378.137
WGS84_F = 1.0 / 298.257223563

#: Seconds per day.
DAY_S = 86_400.0

#: Default maximum ISL length quoted for 550 km shells with an 80 km grazing
#: margin [km] (Hypatia); by default the range is derived per pair instead.
HYPATIA_MAX_ISL_KM = 5016.0

#: Identifies the Parquet schedule files written by this package.
FORMAT_NAME = "lasermesh-schedule"
FORMAT_VERSION = 1

#: Version of the generator; part of every schedule's metadata.
GENERATOR_VERSION = "0.1.0"


def constants_dict() -> dict:
    """All constants as a JSON-friendly dict (stored in schedule metadata)."""
    return {
        "c_km_s": C_KM_S,
        "earth_radius_km": EARTH_RADIUS_KM,
        "mu_km3_s2": MU_KM3_S2,
        "gravity_model": "wgs72",
        "geodetic_ellipsoid": "wgs84",
        "wgs84_a_km": WGS84_A_KM,
        "wgs84_f": WGS84_F,
    }
