"""``ScheduleConfig``: everything that determines a schedule, validated strictly.

Build it directly (fields are checked in ``__post_init__``) or from plain data
with :meth:`ScheduleConfig.from_dict` -- e.g. an experiment spec's
``[topology]`` table -- which also rejects unknown keys.  Errors are
:class:`TopologyError` whose message starts with the field path, e.g.
``shell[0].altitude_km: must be > 0, got -5``.

Exactly one constellation source must be given: ``preset`` (a name in
``PRESETS``), ``shells`` (Walker shells) or ``tle_path`` (a TLE file).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._checks import as_bool, as_float, as_int, as_mapping, as_str, reject_unknown
from .compute import COMPUTE_SELECTIONS, compute_from_dict
from .errors import TopologyError
from .gsl import GSL_POLICIES
from .isl import make_isl_policy
from .shells import PRESETS, Shell, shells_from_list
from .timebase import format_epoch, parse_epoch

#: Epoch used for Walker constellations when none is given.
DEFAULT_EPOCH_ISO = "2025-01-01T00:00:00Z"

#: Upper bound on steps x nodes, to fail fast instead of exhausting memory.
MAX_STEP_NODES = 400_000_000


def _ground_stations(value: Any) -> tuple[tuple[str, float, float], ...]:
    field_ = "ground_stations"
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise TopologyError("must be a list of [name, lat_deg, lon_deg]", field_)
    stations = []
    for i, item in enumerate(value):
        where = f"{field_}[{i}]"
        if isinstance(item, Mapping):
            reject_unknown(item, ("name", "lat_deg", "lon_deg"), where)
            try:
                item = (item["name"], item["lat_deg"], item["lon_deg"])
            except KeyError as err:
                raise TopologyError("missing required key", f"{where}.{err.args[0]}") from None
        if isinstance(item, (str, bytes)) or not hasattr(item, "__len__") or len(item) != 3:
            raise TopologyError("must be [name, lat_deg, lon_deg]", where)
        name = as_str(item[0], f"{where}.name")
        lat = as_float(item[1], f"{where}.lat_deg", ge=-90.0, le=90.0)
        lon = as_float(item[2], f"{where}.lon_deg", ge=-180.0, le=360.0)
        stations.append((name, lat, lon))
    names = [s[0] for s in stations]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise TopologyError(f"duplicate station name {name!r}", f"{field_}[{i}].name")
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
    ground_stations : tuple of (name, lat_deg, lon_deg)
    gsl_min_elevation_deg : float
        Minimum elevation of a satellite seen from a station [deg], default 25.
    gsl_policy : str
        Key of ``GSL_POLICIES``: ``"nearest"`` or ``"all"``.
    gsl_capacity_bps : float or None
        Ground-link capacity [bit/s]; ``None`` uses ``capacity_bps``.
    gsl_acquisition_s : float
        Acquisition time of ground links [s], default 0.
    compute : selection or None
        Compute satellites (see :mod:`topologies.compute`); ``None`` = none.
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
    ground_stations: tuple[tuple[str, float, float], ...] = ()
    gsl_min_elevation_deg: float = 25.0
    gsl_policy: str = "nearest"
    gsl_capacity_bps: float | None = None
    gsl_acquisition_s: float = 0.0
    compute: Any = None
    epoch: datetime | None = None
    duration_s: float = 60.0
    step_s: float = 0.1
    capacity_bps: float = 200e9

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        sources = [name for name in ("preset", "shells", "tle_path") if getattr(self, name)]
        if len(sources) != 1:
            raise TopologyError(
                "give exactly one of preset, shells, tle_path"
                + (f" (got {', '.join(sources)})" if sources else ""), "constellation")
        if self.preset is not None:
            as_str(self.preset, "preset", choices=PRESETS)
        if self.shells:
            set_(self, "shells", shells_from_list(self.shells))
            names = [s.name or f"shell{i}" for i, s in enumerate(self.shells)]
            for i, name in enumerate(names):
                if names.index(name) != i:
                    raise TopologyError(f"duplicate shell name {name!r}", f"shell[{i}].name")
        else:
            set_(self, "shells", ())
        if self.tle_path is not None:
            set_(self, "tle_path", as_str(str(self.tle_path) if hasattr(self.tle_path, "__fspath__")
                                          else self.tle_path, "tle_path"))
        set_(self, "tle_include_unplaced", as_bool(self.tle_include_unplaced,
                                                   "tle_include_unplaced"))
        set_(self, "isl_policy", as_str(self.isl_policy, "isl_policy"))
        set_(self, "isl_params", dict(as_mapping(self.isl_params, "isl_params")))
        make_isl_policy(self.isl_policy, self.isl_params)      # validates params
        set_(self, "lasers_per_sat", as_int(self.lasers_per_sat, "lasers_per_sat",
                                            min_value=0, max_value=64))
        if self.max_range_km is not None:
            set_(self, "max_range_km", as_float(self.max_range_km, "max_range_km", gt=0.0))
        set_(self, "grazing_margin_km", as_float(self.grazing_margin_km, "grazing_margin_km",
                                                 ge=0.0, lt=1000.0))
        set_(self, "acquisition_s", as_float(self.acquisition_s, "acquisition_s", ge=0.0))
        set_(self, "ground_stations", _ground_stations(self.ground_stations))
        set_(self, "gsl_min_elevation_deg", as_float(
            self.gsl_min_elevation_deg, "gsl_min_elevation_deg", ge=0.0, lt=90.0))
        set_(self, "gsl_policy", as_str(self.gsl_policy, "gsl_policy", choices=GSL_POLICIES))
        if self.gsl_capacity_bps is not None:
            set_(self, "gsl_capacity_bps", as_float(self.gsl_capacity_bps, "gsl_capacity_bps",
                                                    gt=0.0))
        set_(self, "gsl_acquisition_s", as_float(self.gsl_acquisition_s, "gsl_acquisition_s",
                                                 ge=0.0))
        set_(self, "compute", compute_from_dict(self.compute))
        if self.epoch is not None:
            set_(self, "epoch", parse_epoch(self.epoch))
        set_(self, "duration_s", as_float(self.duration_s, "duration_s", gt=0.0))
        set_(self, "step_s", as_float(self.step_s, "step_s", gt=0.0))
        if self.step_s > self.duration_s:
            raise TopologyError(f"must be <= duration_s ({self.duration_s:g}), "
                                f"got {self.step_s:g}", "step_s")
        set_(self, "capacity_bps", as_float(self.capacity_bps, "capacity_bps", gt=0.0))
        n_nodes = self.expected_satellites() + len(self.ground_stations)
        if n_nodes and self.n_steps * n_nodes > MAX_STEP_NODES:
            raise TopologyError(
                f"{self.n_steps} steps x {n_nodes} nodes is too large for memory; "
                "use a longer step_s or a shorter duration_s", "duration_s")

    @property
    def n_steps(self) -> int:
        """Number of steps: ``ceil(duration_s / step_s)`` (tolerant to rounding)."""
        return max(1, math.ceil(self.duration_s / self.step_s - 1e-9))

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
        """Build from plain data (TOML/JSON); unknown keys and bad values raise.

        ``shells`` is a list of shell tables, ``epoch`` an ISO 8601 string (or
        datetime), ``compute`` a one-key table (see :mod:`topologies.compute`),
        ``ground_stations`` a list of ``[name, lat_deg, lon_deg]`` or tables.
        """
        data = as_mapping(data, "config")
        known = [f.name for f in dataclasses.fields(cls)]
        reject_unknown(data, known, None)
        values = dict(data)
        if "shells" in values:
            values["shells"] = shells_from_list(values["shells"])
        if "ground_stations" in values:
            values["ground_stations"] = _ground_stations(values["ground_stations"])
        if values.get("epoch") is not None:
            values["epoch"] = parse_epoch(values["epoch"])
        return cls(**values)

    def to_dict(self) -> dict:
        """JSON-friendly dict; ``ScheduleConfig.from_dict(c.to_dict()) == c``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "shells":
                value = [s.to_dict() for s in value]
            elif f.name == "ground_stations":
                value = [list(s) for s in value]
            elif f.name == "compute":
                value = None if value is None else value.to_dict()
            elif f.name == "epoch":
                value = None if value is None else format_epoch(value)
            elif f.name == "isl_params":
                value = dict(value)
            out[f.name] = value
        return out

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), used for the input hash."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def replace(self, **changes) -> "ScheduleConfig":
        """A copy with some fields changed (re-validated)."""
        return dataclasses.replace(self, **changes)


__all__ = ["ScheduleConfig", "DEFAULT_EPOCH_ISO", "COMPUTE_SELECTIONS"]
