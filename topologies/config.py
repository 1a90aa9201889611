"""``ScheduleConfig``: everything that determines a schedule, validated strictly.

Build it directly (fields are checked in ``__post_init__``) or from plain data
with :meth:`ScheduleConfig.from_dict` -- e.g. an experiment spec's
``[topology]`` table -- which also rejects unknown keys.  Every problem is
reported at once: the :class:`TopologyError` carries ``problems``, a tuple of
``(field, problem)`` pairs such as ``("shell[0].altitude_km", "must be > 0,
got -5")``; cross-field rules (``step_s <= duration_s``, the memory bound) are
checked once the fields they relate are valid.

Exactly one constellation source must be given: ``preset`` (a name in
``PRESETS``), ``shells`` (Walker shells) or ``tle_path`` (a TLE file).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._checks import as_bool, as_float, as_int, as_mapping, as_str, reject_unknown
from .cluster import clusters_from_list
from .compute import COMPUTE_SELECTIONS, compute_from_dict
from .errors import INVALID, Collector, TopologyError
from .gsl import GSL_POLICIES, make_gsl_policy
from .isl import make_isl_policy
from .shells import PRESETS, Shell, shells_from_list
from .timebase import EARTH_ROTATIONS, format_epoch, parse_epoch

#: Epoch used for Walker constellations when none is given.
DEFAULT_EPOCH_ISO = "2025-01-01T00:00:00Z"

#: Upper bound on steps x nodes, to fail fast instead of exhausting memory.
MAX_STEP_NODES = 400_000_000


def _station(item: Any, where: str) -> tuple[str, float, float, float]:
    """One station as ``(name, lat_deg, lon_deg, elevation_m)``, every bad part reported."""
    c = Collector(where)
    if isinstance(item, Mapping):
        c.check(reject_unknown, item, _STATION_KEYS, None)
        for key in _STATION_KEYS[:3]:
            if key not in item:
                c.add("missing required key", key)
        values = {key: item[key] for key in _STATION_KEYS if key in item}
    elif isinstance(item, (str, bytes)) or not hasattr(item, "__len__") or len(item) not in (3, 4):
        raise TopologyError("must be [name, lat_deg, lon_deg] or "
                            "[name, lat_deg, lon_deg, elevation_m]", where)
    else:
        values = dict(zip(_STATION_KEYS, item))
    checked = {key: c.check(check, values[key], key, **kwargs)
               for key, (check, kwargs) in _STATION_CHECKS.items() if key in values}
    c.raise_if_any()
    return (checked["name"], checked["lat_deg"], checked["lon_deg"], checked.get("elevation_m", 0.0))


_STATION_KEYS = ("name", "lat_deg", "lon_deg", "elevation_m")
_STATION_CHECKS = {
    "name": (as_str, {}),
    "lat_deg": (as_float, {"ge": -90.0, "le": 90.0}),
    "lon_deg": (as_float, {"ge": -180.0, "le": 360.0}),
    "elevation_m": (as_float, {"ge": -500.0, "le": 9000.0}),
}


def _ground_stations(value: Any) -> tuple[tuple[str, float, float, float], ...]:
    """Stations as ``(name, lat_deg, lon_deg, elevation_m)``; elevation defaults to 0.

    Every bad station is reported (``ground_stations[i].lat_deg``), and so is a name
    used twice.
    """
    field_ = "ground_stations"
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise TopologyError("must be a list of [name, lat_deg, lon_deg(, elevation_m)]", field_)
    c = Collector()
    stations = [c.check(_station, item, f"{field_}[{i}]") for i, item in enumerate(value)]
    seen: set[str] = set()
    for i, station in enumerate(stations):
        if station is INVALID:
            continue
        if station[0] in seen:
            c.add(f"duplicate station name {station[0]!r}", f"{field_}[{i}].name")
        seen.add(station[0])
    c.raise_if_any()
    return tuple(stations)


@dataclass(frozen=True)
class ScheduleConfig:
    """Inputs of :func:`topologies.generate`.

    Attributes
    ----------
    preset, shells, tle_path
        The constellation: exactly one of a preset name, Walker shells, or a
        TLE file path.
    tle_include_unplaced : bool
        TLE input: keep satellites that could not be placed in a plane/slot
        grid (e.g. still raising their orbit) as nodes (default False).
    isl_policy : str
        Key of ``ISL_POLICIES`` (``"plus_grid"``, ``"nearest"``).
    isl_params : dict
        Parameters of the policy (checked by the policy).
    lasers_per_sat : int
        Laser terminals per satellite (max ISLs per satellite), default 4.
    max_range_km : float or None
        Maximum ISL length [km]; ``None`` (default) derives it per pair from
        the line of sight clearing the Earth plus ``grazing_margin_km``
        (5016.6 km at 550 km altitude).
    grazing_margin_km : float
        Links must pass at least this high above the Earth [km], default 80.
    acquisition_s : float
        A laser link that (re)appears is usable only after this time [s].
    ground_stations : tuple of (name, lat_deg, lon_deg, elevation_m)
        Geodetic (WGS-84) positions; ``elevation_m`` above the ellipsoid
        (given as 3 items it is 0).
    gsl_min_elevation_deg : float
        Minimum elevation of a satellite seen from a station [deg], default 25;
        0 turns the mask off (the satellite must still be above the horizon).
    gsl_max_range_km : float or None
        Maximum ground-link slant range [km] (e.g. Hypatia's 1,089.686 km at
        550 km); ``None`` (default): no range cap.  Works with the mask or alone.
    gsl_policy : str
        Key of ``GSL_POLICIES``: ``"nearest"``, ``"make_before_break"`` or ``"all"``.
    gsl_params : dict
        Parameters of the ground-link policy (``make_before_break``: ``lead_s``).
    gsl_capacity_bps : float or None
        Ground-link capacity [bit/s]; ``None`` uses ``capacity_bps``.
    gsl_acquisition_s : float
        Acquisition time of ground links [s], default 0.
    compute : selection or None
        Compute satellites (see :mod:`topologies.compute`); ``None`` = none.
    clusters : tuple of Cluster
        Formation-flying clusters of compute satellites (see
        :mod:`topologies.cluster`), appended after the constellation's satellites.
    earth_rotation : str
        Time scale of the Earth's rotation angle (GMST-1982): ``"ut1"``
        (default, correct) or ``"utc"`` (as tools that ignore UT1 - UTC do;
        up to 0.9 s, i.e. up to ~400 m at the equator).
    epoch : datetime or None
        UTC start of the schedule; ``None`` means 2025-01-01T00:00:00Z for
        Walker shells and, for TLE input, the latest element-set epoch in the
        file rounded up to the next whole minute.
    duration_s, step_s : float
        Window length and step [s]; ``n_steps = ceil(duration_s / step_s)``,
        step k at ``k * step_s``.
    capacity_bps : float
        Default laser-link capacity [bit/s], 200 Gbit/s.
    """

    preset: str | None = None
    shells: tuple[Shell, ...] = ()
    tle_path: str | None = None
    tle_include_unplaced: bool = False
    isl_policy: str = "plus_grid"
    isl_params: Mapping[str, Any] = field(default_factory=dict)
    lasers_per_sat: int = 4
    max_range_km: float | None = None
    grazing_margin_km: float = 80.0
    acquisition_s: float = 2.0
    ground_stations: tuple[tuple[str, float, float, float], ...] = ()
    gsl_min_elevation_deg: float = 25.0
    gsl_max_range_km: float | None = None
    gsl_policy: str = "nearest"
    gsl_params: Mapping[str, Any] = field(default_factory=dict)
    gsl_capacity_bps: float | None = None
    gsl_acquisition_s: float = 0.0
    compute: Any = None
    clusters: tuple = ()
    earth_rotation: str = "ut1"
    epoch: datetime | None = None
    duration_s: float = 60.0
    step_s: float = 0.1
    capacity_bps: float = 200e9

    def __post_init__(self) -> None:
        c = Collector()
        v: dict[str, Any] = {}     # checked values by field name; INVALID where a check failed
        sources = [name for name in ("preset", "shells", "tle_path") if getattr(self, name)]
        if len(sources) != 1:
            c.add("give exactly one of preset, shells, tle_path"
                  + (f" (got {', '.join(sources)})" if sources else ""), "constellation")
        if self.preset is not None:
            v["preset"] = c.check(as_str, self.preset, "preset", choices=PRESETS)
        v["shells"] = c.check(shells_from_list, self.shells) if self.shells else ()
        if self.tle_path is not None:
            v["tle_path"] = c.check(as_str, str(self.tle_path) if hasattr(self.tle_path, "__fspath__")
                                    else self.tle_path, "tle_path")
        v["tle_include_unplaced"] = c.check(as_bool, self.tle_include_unplaced, "tle_include_unplaced")
        v["isl_policy"] = c.check(as_str, self.isl_policy, "isl_policy")
        v["isl_params"] = c.check(lambda: dict(as_mapping(self.isl_params, "isl_params")))
        if v["isl_policy"] is not INVALID and v["isl_params"] is not INVALID:
            c.check(make_isl_policy, v["isl_policy"], v["isl_params"])     # validates params
        v["lasers_per_sat"] = c.check(as_int, self.lasers_per_sat, "lasers_per_sat",
                                      min_value=0, max_value=64)
        if self.max_range_km is not None:
            v["max_range_km"] = c.check(as_float, self.max_range_km, "max_range_km", gt=0.0)
        v["grazing_margin_km"] = c.check(as_float, self.grazing_margin_km, "grazing_margin_km",
                                         ge=0.0, lt=1000.0)
        v["acquisition_s"] = c.check(as_float, self.acquisition_s, "acquisition_s", ge=0.0)
        v["ground_stations"] = c.check(_ground_stations, self.ground_stations)
        v["gsl_min_elevation_deg"] = c.check(as_float, self.gsl_min_elevation_deg,
                                             "gsl_min_elevation_deg", ge=0.0, lt=90.0)
        if self.gsl_max_range_km is not None:
            v["gsl_max_range_km"] = c.check(as_float, self.gsl_max_range_km, "gsl_max_range_km",
                                            gt=0.0)
        v["earth_rotation"] = c.check(as_str, self.earth_rotation, "earth_rotation",
                                      choices=EARTH_ROTATIONS)
        v["gsl_policy"] = c.check(as_str, self.gsl_policy, "gsl_policy", choices=GSL_POLICIES)
        v["gsl_params"] = c.check(lambda: dict(as_mapping(self.gsl_params, "gsl_params")))
        if v["gsl_policy"] is not INVALID and v["gsl_params"] is not INVALID:
            c.check(make_gsl_policy, v["gsl_policy"], v["gsl_params"])     # validates params
        if self.gsl_capacity_bps is not None:
            v["gsl_capacity_bps"] = c.check(as_float, self.gsl_capacity_bps, "gsl_capacity_bps",
                                            gt=0.0)
        v["gsl_acquisition_s"] = c.check(as_float, self.gsl_acquisition_s, "gsl_acquisition_s",
                                         ge=0.0)
        v["compute"] = c.check(compute_from_dict, self.compute)
        v["clusters"] = c.check(clusters_from_list, self.clusters) if self.clusters else ()
        if self.epoch is not None:
            v["epoch"] = c.check(parse_epoch, self.epoch)
        v["duration_s"] = c.check(as_float, self.duration_s, "duration_s", gt=0.0)
        v["step_s"] = c.check(as_float, self.step_s, "step_s", gt=0.0)
        if INVALID not in (v["duration_s"], v["step_s"]) and v["step_s"] > v["duration_s"]:
            c.add(f"must be <= duration_s ({v['duration_s']:g}), got {v['step_s']:g}", "step_s")
        v["capacity_bps"] = c.check(as_float, self.capacity_bps, "capacity_bps", gt=0.0)
        c.raise_if_any()
        for name, value in v.items():
            object.__setattr__(self, name, value)
        n_nodes = self.expected_satellites() + self.n_cluster_members + len(self.ground_stations)
        if n_nodes and self.n_steps * n_nodes > MAX_STEP_NODES:
            raise TopologyError(
                f"{self.n_steps} steps x {n_nodes} nodes is too large for memory; "
                "use a longer step_s or a shorter duration_s", "duration_s")

    @property
    def n_steps(self) -> int:
        """Number of steps: ``ceil(duration_s / step_s)`` (tolerant to rounding)."""
        return max(1, math.ceil(self.duration_s / self.step_s - 1e-9))

    @property
    def n_cluster_members(self) -> int:
        """Satellites of all formation-flying clusters."""
        return sum(cluster.count for cluster in self.clusters)

    def walker_shells(self) -> tuple[Shell, ...]:
        """The Walker shells (from ``shells`` or the preset); empty for TLE input."""
        if self.preset is not None:
            return PRESETS[self.preset].shells
        return self.shells

    def expected_satellites(self) -> int:
        """Satellites of a Walker constellation (0 when unknown before reading a TLE)."""
        return sum(s.n_sats for s in self.walker_shells())

    # ------------------------------------------------------------ plain data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ScheduleConfig":
        """Build from plain data (TOML/JSON); unknown keys and bad values raise, all at once.

        ``shells`` is a list of shell tables, ``epoch`` an ISO 8601 string (or
        datetime), ``compute`` a one-key table (see :mod:`topologies.compute`),
        ``ground_stations`` a list of ``[name, lat_deg, lon_deg]`` or tables.
        """
        data = as_mapping(data, "config")
        known = [f.name for f in dataclasses.fields(cls)]
        c = Collector()
        c.check(reject_unknown, data, known, None)
        config = c.check(cls, **{key: value for key, value in data.items() if key in known})
        c.raise_if_any()
        return config

    def to_dict(self) -> dict:
        """JSON-friendly dict; ``ScheduleConfig.from_dict(c.to_dict()) == c``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "shells":
                value = [s.to_dict() for s in value]
            elif f.name == "ground_stations":   # elevation 0 written as 3 items
                value = [list(s) if s[3] else list(s[:3]) for s in value]
            elif f.name == "clusters":
                value = [cluster.to_dict() for cluster in value]
            elif f.name == "compute":
                value = None if value is None else value.to_dict()
            elif f.name == "epoch":
                value = None if value is None else format_epoch(value)
            elif f.name in ("isl_params", "gsl_params"):
                value = dict(value)
            out[f.name] = value
        return out

    def replace(self, **changes) -> "ScheduleConfig":
        """A copy with some fields changed (re-validated)."""
        return dataclasses.replace(self, **changes)


__all__ = ["ScheduleConfig", "DEFAULT_EPOCH_ISO", "COMPUTE_SELECTIONS"]
