"""Hypatia's input files (snkas/hypatia, satgenpy): write them, and read them back.

A Hypatia constellation folder holds (formats as satgenpy writes and reads them):

``tles.txt``
    First line ``<orbits> <satellites per orbit>``, then per satellite a name
    line ``<name> <id>`` (ids 0, 1, ... in order) and the two TLE lines.
``isls.txt``
    One laser link per line, ``<a> <b>`` (satellite ids, ``a < b``).
``ground_stations.txt``
    ``<gid>,<name>,<latitude_deg>,<longitude_deg>,<elevation_m>`` per line
    (the "basic" format; the extended one adds ``,x,y,z`` [m] and is read too).
``description.txt``
    ``max_gsl_length_m=<m>`` and ``max_isl_length_m=<m>``.

:func:`write_hypatia` exports a schedule's constellation so it can be run in
Hypatia/ns-3; :func:`read_hypatia` turns such a folder into ScheduleConfig
values: the TLE file (read with Hypatia's numbering, see :mod:`topologies.tle`),
the listed ISLs, the stations with their elevation, Hypatia's ground-link
rule (slant range cap, no elevation mask) and Earth rotation by UTC.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .constants import EARTH_RADIUS_KM
from .errors import TopologyError

FILES = ("tles.txt", "isls.txt", "ground_stations.txt", "description.txt")


#: Eccentricity written for circular orbits: Hypatia reads TLEs with pyephem,
#: which rejects 0 (satgenpy itself writes 1e-7; ~0.7 m at 550 km).
MIN_ECCENTRICITY_FIELD = "0000001"


def _tle_lines(satrec) -> tuple[str, str]:
    """The element set's two lines, eccentricity at least 1e-7, checksums fixed."""
    from sgp4.exporter import export_tle

    from .tle import tle_checksum
    line1, line2 = export_tle(satrec)
    if line2[26:33] == "0000000":
        line2 = line2[:26] + MIN_ECCENTRICITY_FIELD + line2[33:68]
        line2 += str(tle_checksum(line2))
    return line1, line2


def max_gsl_range_km(altitude_km: float, min_elevation_deg: float) -> float:
    """Slant range [km] at which a satellite at ``altitude_km`` sits at ``min_elevation_deg``
    (spherical Earth of radius ``EARTH_RADIUS_KM``)."""
    r_sat = EARTH_RADIUS_KM + altitude_km
    el = math.radians(min_elevation_deg)
    return math.sqrt(r_sat**2 - (EARTH_RADIUS_KM * math.cos(el))**2) - \
        EARTH_RADIUS_KM * math.sin(el)


def write_hypatia(schedule, folder: str | Path, fleet) -> dict[str, Path]:
    """Write ``tles.txt``, ``isls.txt``, ``ground_stations.txt``, ``description.txt``.

    Parameters
    ----------
    schedule : Schedule
        Its satellites (node order = Hypatia ids), its ISLs (the union over
        all steps: Hypatia's ISLs are static) and its ground stations.
    folder : path
        Existing folder; the four files are overwritten.
    fleet : Fleet
        The schedule's satellites (:func:`topologies.generate.build_fleet`):
        their TLE lines are written (4-decimal angles, as TLEs carry them) and
        their nominal radius gives the derived ``max_isl_length_m``.

    Returns the paths written.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TopologyError(f"{folder}: export folder does not exist")
    if schedule.meta.get("clusters"):
        raise TopologyError("cannot export formation-flying clusters to Hypatia (their members "
                            "follow HCW relative motion, not TLEs); export without clusters",
                            "clusters")
    nodes = schedule.nodes
    sat = nodes["kind"].isin(["satellite", "compute"]).to_numpy()
    n_sats = int(sat.sum())
    satrecs = fleet.satrecs
    if len(satrecs) != n_sats:
        raise TopologyError(f"{len(satrecs)} orbits for {n_sats} satellites")
    planes = nodes["plane"].to_numpy()[:n_sats]
    per_plane = np.bincount(planes[planes >= 0]) if (planes >= 0).any() else np.zeros(0)
    regular = per_plane.size and (per_plane == per_plane[0]).all() and \
        per_plane.sum() == n_sats
    header = (per_plane.size, int(per_plane[0])) if regular else (1, n_sats)
    lines = [f"{header[0]} {header[1]}"]
    for i, (name, rec) in enumerate(zip(nodes["name"].astype(str)[:n_sats], satrecs)):
        line1, line2 = _tle_lines(rec)
        lines += [f"{'_'.join(name.split())} {i}", line1, line2]
    paths = {name: folder / name for name in FILES}
    paths["tles.txt"].write_text("\n".join(lines) + "\n")
    isl = schedule.links[(schedule.links["kind"] == "isl").to_numpy()]
    pairs = np.unique(isl["a"].to_numpy(np.int64) * n_sats + isl["b"].to_numpy(np.int64))
    a, b = np.divmod(pairs, n_sats)
    paths["isls.txt"].write_text("".join(f"{x} {y}\n" for x, y in zip(a.tolist(), b.tolist())))
    config = schedule.meta.get("config") or {}
    stations = []
    for gid, station in enumerate(config.get("ground_stations") or []):
        name, lat, lon = station[:3]
        name = "_".join(str(name).replace(",", " ").split())     # a comma splits columns
        elevation = station[3] if len(station) > 3 else 0.0
        stations.append(f"{gid},{name},{lat:.6f},{lon:.6f},{elevation:.6f}\n")
    paths["ground_stations.txt"].write_text("".join(stations))
    alt_km = float(np.median(fleet.radius_km)) - EARTH_RADIUS_KM if n_sats else 0.0
    gsl_km = config.get("gsl_max_range_km") or max_gsl_range_km(
        alt_km, config.get("gsl_min_elevation_deg", 25.0))
    isl_km = config.get("max_range_km")
    if isl_km is None:      # the derived line-of-sight limit at the median altitude
        grazing = schedule.meta.get("grazing_radius_km", EARTH_RADIUS_KM + 80.0)
        isl_km = 2.0 * math.sqrt(max((EARTH_RADIUS_KM + alt_km)**2 - grazing**2, 0.0))
    paths["description.txt"].write_text(f"max_gsl_length_m={gsl_km * 1e3:.10f}\n"
                                        f"max_isl_length_m={isl_km * 1e3:.10f}\n")
    return paths


def _read_isls(path: Path) -> list[list[int]]:
    pairs = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            a, b = int(parts[0]), int(parts[1])
        except (ValueError, IndexError):
            raise TopologyError(f"{path}:{line_no}: expected '<a> <b>', got {line!r}") from None
        if not 0 <= a < b:
            raise TopologyError(f"{path}:{line_no}: need 0 <= a < b, got {a} {b}")
        pairs.append([a, b])
    return pairs


def _read_stations(path: Path) -> list[list]:
    stations = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) not in (5, 8):
            raise TopologyError(f"{path}:{line_no}: expected 5 (basic) or 8 (extended) "
                                f"comma-separated columns, got {len(parts)}")
        try:
            gid = int(parts[0])
            lat, lon, elevation = (float(x) for x in parts[2:5])
        except ValueError:
            raise TopologyError(f"{path}:{line_no}: gid, latitude, longitude and "
                                "elevation must be numbers") from None
        if gid != len(stations):
            raise TopologyError(f"{path}:{line_no}: ground station id {gid}, expected "
                                f"{len(stations)} (ids count up from 0)")
        name = "-".join(parts[1].split()) or f"gs{gid}"
        stations.append([name, lat, lon, elevation])
    return stations


def _read_description(path: Path) -> dict[str, float]:
    values = {}
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        key, sep, value = line.partition("=")
        if not sep:
            continue
        try:
            values[key.strip()] = float(value)
        except ValueError:
            raise TopologyError(f"{path}:{line_no}: {key.strip()} is not a number") from None
    return values


def header_placement(path: Path, records: list, elements: dict, header: tuple[int, int]):
    """Hypatia's numbering: satellite ``i`` of the file is plane ``i // S``, slot ``i % S``.

    One delta shell (Hypatia's +Grid wraps), every satellite kept in file order.
    """
    n_orbits, per_orbit = header
    n = len(records)
    if n_orbits * per_orbit != n:
        raise TopologyError(f"{path}:1: count header says {n_orbits} x {per_orbit} = "
                            f"{n_orbits * per_orbit} satellites, the file has {n}")
    if not elements["ok"].all():
        bad = int(np.argmin(elements["ok"]))
        raise TopologyError(f"{path}:{records[bad].line_no}: SGP4 cannot propagate this "
                            "satellite to the epoch (Hypatia files keep every satellite)")
    ids = np.arange(n)
    inc = elements["inc_deg"]
    alt_km = float(np.median(elements["radius_km"]) - EARTH_RADIUS_KM)
    name = f"{path.stem}-i{float(np.median(inc)):.1f}-h{alt_km:.0f}"
    info = {"name": name, "inclination_deg": float(np.median(inc)), "altitude_km": alt_km,
            "planes": n_orbits, "satellites": n}
    return (np.zeros(n, np.int64), ids // per_orbit, ids % per_orbit, ids, [name],
            [n_orbits > 2], [info])


def hypatia_names(names: list[str]) -> list[str]:
    """``"<name> <id>"`` name lines: the name alone if unique, else ``<name>-<id>``."""
    parts = [n.rsplit(None, 1) for n in names]
    bases = [p[0] if len(p) == 2 and p[1] == str(i) else None for i, p in enumerate(parts)]
    if None not in bases and len(set(bases)) == len(bases):
        return bases
    return [n if b is None else f"{b}-{i}" for i, (n, b) in enumerate(zip(names, bases))]


def read_hypatia(folder: str | Path) -> dict[str, Any]:
    """ScheduleConfig values from a Hypatia constellation folder.

    ``tles.txt`` is required; ``isls.txt`` (else the +Grid policy stays),
    ``ground_stations.txt`` and ``description.txt`` are used when present.
    With a ``max_gsl_length_m`` the ground links follow Hypatia: that range cap
    and no elevation mask.  Earth rotation is by UTC, as in the comparison
    that motivated this reader (issue 12); pass ``earth_rotation`` to override.
    """
    folder = Path(folder)
    tles = folder / "tles.txt"
    if not tles.is_file():
        raise TopologyError(f"{folder}: no tles.txt (not a Hypatia constellation folder)")
    values: dict[str, Any] = {"tle_path": str(tles), "earth_rotation": "utc"}
    if (folder / "isls.txt").is_file():
        values["isl_policy"] = "listed"
        values["isl_params"] = {"pairs": _read_isls(folder / "isls.txt")}
    if (folder / "ground_stations.txt").is_file():
        stations = _read_stations(folder / "ground_stations.txt")
        if stations:
            values["ground_stations"] = stations
    if (folder / "description.txt").is_file():
        description = _read_description(folder / "description.txt")
        if "max_gsl_length_m" in description:
            values["gsl_max_range_km"] = description["max_gsl_length_m"] / 1e3
            values["gsl_min_elevation_deg"] = 0.0
        if "max_isl_length_m" in description:
            values["max_range_km"] = description["max_isl_length_m"] / 1e3
    return values
