"""The ``[constellation]``, ``[isl]``, ``[ground]``, ``[compute]`` and ``[time]`` tables.

They become one :class:`topologies.ScheduleConfig`. The rules live in ``topologies``;
this module only maps the spec's key paths onto ScheduleConfig's fields and collects
*every* problem: ``ScheduleConfig`` stops at its first error, so each field is first
tried on its own against a small valid baseline (a "probe"), and only when all pass
is the full config built (which adds the cross-field checks, e.g. step_s <= duration_s).

The constellation's satellites are then laid out without propagating orbits (a
:class:`topologies.Fleet`, milliseconds even for thousands of satellites) so the
compute selection can be resolved to node ids and names offline.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import NAME_RE, NAME_RULE, Problems, Table, join, ok

CONSTELLATION_KEYS = ("preset", "shells", "tle_path", "tle_include_unplaced", "capacity_bps")
ISL_KEYS = ("policy", "params", "lasers_per_sat", "max_range_km", "grazing_margin_km", "acquisition_s")
GROUND_KEYS = ("stations", "min_elevation_deg", "policy", "capacity_bps", "acquisition_s")
TIME_KEYS = ("epoch", "duration_s", "step_s", "speedup")
SOURCES = ("preset", "shells", "tle_path")

#: Spec key path -> ScheduleConfig field (keys passed through unchanged).
CONFIG_FIELDS = {
    "constellation.preset": "preset",
    "constellation.shells": "shells",
    "constellation.tle_path": "tle_path",
    "constellation.tle_include_unplaced": "tle_include_unplaced",
    "constellation.capacity_bps": "capacity_bps",
    "isl.policy": "isl_policy",
    "isl.params": "isl_params",
    "isl.lasers_per_sat": "lasers_per_sat",
    "isl.max_range_km": "max_range_km",
    "isl.grazing_margin_km": "grazing_margin_km",
    "isl.acquisition_s": "acquisition_s",
    "ground.stations": "ground_stations",
    "ground.min_elevation_deg": "gsl_min_elevation_deg",
    "ground.policy": "gsl_policy",
    "ground.capacity_bps": "gsl_capacity_bps",
    "ground.acquisition_s": "gsl_acquisition_s",
    "compute": "compute",
    "time.epoch": "epoch",
    "time.duration_s": "duration_s",
    "time.step_s": "step_s",
}
_SPEC_PATHS = {field: path for path, field in CONFIG_FIELDS.items()}
_SPEC_PATHS.update({"shell": "constellation.shells", "constellation": "constellation"})

#: A valid constellation for probing one field at a time.
_BASELINE = {"preset": "test4x4", "duration_s": 1.0, "step_s": 1.0}


def spec_path(field: str | None) -> str:
    """The spec key path of a ScheduleConfig field path (``isl_params.k`` -> ``isl.params.k``)."""
    if not field:
        return "constellation"
    head = re.match(r"[A-Za-z_]*", field).group(0)
    return _SPEC_PATHS.get(head, head) + field[len(head):]


def _positive(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


@dataclass(frozen=True)
class Topology:
    """The validated topology part of a spec.

    Attributes
    ----------
    config : topologies.ScheduleConfig
    speedup : float
    n_satellites : int
    satellite_names : tuple of str
        Node names of the satellites in node-id order.
    compute_node_ids : tuple of int
    ground_names : tuple of str
    source : str
        One line saying where the satellites come from.
    """

    config: Any
    speedup: float
    n_satellites: int
    satellite_names: tuple[str, ...]
    compute_node_ids: tuple[int, ...]
    ground_names: tuple[str, ...]
    source: str

    @property
    def compute_names(self) -> tuple[str, ...]:
        return tuple(self.satellite_names[i] for i in self.compute_node_ids)


class _Reader:
    """Collects ScheduleConfig values from the spec tables, probing each one."""

    def __init__(self, problems: Problems, spec_dir: Path) -> None:
        from topologies import ScheduleConfig, TopologyError
        self.ScheduleConfig = ScheduleConfig
        self.TopologyError = TopologyError
        self.problems = problems
        self.spec_dir = spec_dir
        self.values: dict[str, Any] = {}

    def report(self, err, field: str | None = None, prefix: str | None = None) -> None:
        """Record a TopologyError under its spec path (``prefix`` overrides the mapping)."""
        field = err.field if field is None else field
        if prefix is not None:
            path = prefix if not field else (prefix + ("" if field.startswith("[") else ".") + field)
        else:
            path = spec_path(field)
        self.problems.add(path, err.problem)

    def probe(self, field: str, value: Any, extra: dict | None = None,
              rename: tuple[str, str] | None = None) -> bool:
        """Try one field on the baseline config; report its error (if any) and return ok."""
        data = dict(_BASELINE)
        if field in SOURCES:
            del data["preset"]
        if field == "duration_s" and _positive(value):
            data["step_s"] = value
        if field == "step_s" and _positive(value):
            data["duration_s"] = value
        data.update(extra or {})
        data[field] = value
        try:
            self.ScheduleConfig.from_dict(data)
        except self.TopologyError as err:
            where = err.field or field
            if rename and where.startswith(rename[0]):
                where = rename[1] + where[len(rename[0]):]
            self.report(err, where)
            return False
        return True

    def take(self, table: Table, key: str) -> None:
        """Probe ``table[key]`` (when present) and keep it for the full config."""
        if not table.has(key):
            return
        field = CONFIG_FIELDS[table.where(key)]
        value = table.data[key]
        if self.probe(field, value):
            self.values[field] = value

    # -- the tables -----------------------------------------------------------

    def constellation(self, table: Table) -> None:
        from topologies import PRESETS, Shell
        given = [k for k in SOURCES if table.has(k)]
        if len(given) != 1:
            self.problems.add("constellation", "give exactly one of preset, shells, tle_path"
                              + (f" (got {', '.join(given)})" if given else ""))
        if table.has("preset"):
            preset = table.string("preset")
            if ok(preset) and preset not in PRESETS:
                table.bad("preset", f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
            elif ok(preset):
                self.values["preset"] = preset
        if table.has("shells"):
            shells = table.array("shells")
            if ok(shells) and not shells:
                table.bad("shells", "must list at least one shell")
            elif ok(shells):
                all_ok = True
                for i, item in enumerate(shells):
                    try:
                        Shell.from_dict(item)
                    except self.TopologyError as err:
                        self.report(err, prefix=join("constellation.shells", i))
                        all_ok = False
                if all_ok and self.probe("shells", shells):   # duplicate names
                    self.values["shells"] = shells
        if table.has("tle_path"):
            text = table.string("tle_path")
            if ok(text):
                path = (self.spec_dir / Path(text).expanduser()).resolve()
                if not path.is_file():
                    table.bad("tle_path", f"no such file: {path} (relative paths start at the spec's folder)")
                else:
                    self.values["tle_path"] = str(path)
        unplaced = table.boolean("tle_include_unplaced")
        if ok(unplaced) and unplaced is not None:
            if not table.has("tle_path"):
                table.bad("tle_include_unplaced", "only applies with constellation.tle_path")
            else:
                self.values["tle_include_unplaced"] = unplaced
        self.take(table, "capacity_bps")

    def isl(self, table: Table) -> None:
        from topologies import ISL_POLICIES
        policy = table.string("policy", "plus_grid")
        if ok(policy) and policy not in ISL_POLICIES:
            policy = table.bad("policy", f"unknown policy {policy!r}; known: {', '.join(ISL_POLICIES)}")
        elif ok(policy) and table.has("policy"):
            self.values["isl_policy"] = policy
        params = table.table("params", {})
        if ok(params) and ok(policy):
            fine = [self.probe("isl_params", {k: v}, extra={"isl_policy": policy}) for k, v in params.items()]
            if all(fine) and params:
                self.values["isl_params"] = params
        for key in ("lasers_per_sat", "max_range_km", "grazing_margin_km", "acquisition_s"):
            self.take(table, key)

    def ground(self, table: Table) -> None:
        from topologies import GSL_POLICIES
        stations = table.array("stations")
        if ok(stations) and stations is not None:
            self._stations(stations)
        policy = table.string("policy")
        if ok(policy) and policy is not None:
            if policy not in GSL_POLICIES:
                table.bad("policy", f"unknown policy {policy!r}; known: {', '.join(GSL_POLICIES)}")
            else:
                self.values["gsl_policy"] = policy
        for key in ("min_elevation_deg", "capacity_bps", "acquisition_s"):
            self.take(table, key)

    def _stations(self, stations: list) -> None:
        """Each station on its own, then the list rules (unique names) over the good ones."""
        good = [i for i, item in enumerate(stations)
                if self.probe("ground_stations", [item], rename=("ground_stations[0]", f"ground_stations[{i}]"))]
        try:
            config = self.ScheduleConfig.from_dict({**_BASELINE, "ground_stations": [stations[i] for i in good]})
        except self.TopologyError as err:
            index = re.match(r"ground_stations\[(\d+)\]", err.field or "")
            self.report(err, f"ground_stations[{good[int(index.group(1))]}]" + err.field[index.end():]
                        if index else err.field)
            return
        names_ok = True
        for i, (name, _, _) in zip(good, config.ground_stations):
            if not NAME_RE.match(name):
                self.problems.add(f"ground.stations[{i}].name", f"{name!r} is not a valid host name: {NAME_RULE}")
                names_ok = False
        if names_ok and len(good) == len(stations):
            self.values["ground_stations"] = stations

    def compute(self, data: Any) -> None:
        from topologies import compute_from_dict
        try:
            compute_from_dict(data, "compute")
        except self.TopologyError as err:
            self.report(err)
            return
        self.values["compute"] = data

    def time(self, table: Table) -> Any:
        for key in ("epoch", "duration_s", "step_s"):
            self.take(table, key)
        return table.number("speedup", 1.0, gt=0.0)


def read_topology(tables: dict[str, Any], spec_dir: Path, problems: Problems) -> Topology | None:
    """Validate the topology tables; None if any problem was found (all are recorded).

    Parameters
    ----------
    tables : dict
        ``constellation``, ``isl``, ``ground``, ``compute``, ``time``: the TOML
        tables (dicts), absent ones as None (``compute`` None = no compute satellites).
    spec_dir : Path
        Folder of the spec file; relative paths start there.
    """
    from topologies import TopologyError
    start = len(problems)
    reader = _Reader(problems, spec_dir)
    if tables.get("constellation") is None:
        problems.add("constellation", "missing table; give exactly one of preset, shells, tle_path")
    elif ok(tables["constellation"]):
        reader.constellation(Table(tables["constellation"], "constellation", problems, CONSTELLATION_KEYS))
    reader.isl(Table(tables.get("isl") or {}, "isl", problems, ISL_KEYS))
    reader.ground(Table(tables.get("ground") or {}, "ground", problems, GROUND_KEYS))
    if tables.get("compute") is not None and ok(tables["compute"]):
        reader.compute(tables["compute"])
    speedup = reader.time(Table(tables.get("time") or {}, "time", problems, TIME_KEYS))
    if len(problems) > start:
        return None
    try:
        config = reader.ScheduleConfig.from_dict(reader.values)
    except TopologyError as err:    # cross-field rules
        reader.report(err)
        return None
    return _lay_out(config, speedup, problems)


def _lay_out(config, speedup: float, problems: Problems) -> Topology | None:
    """Satellites (no propagation), compute selection and host names."""
    from topologies import TopologyError, load_tle
    from topologies.config import DEFAULT_EPOCH_ISO
    from topologies.fleet import fleet_from_shells
    from topologies.timebase import parse_epoch
    if config.tle_path is not None:
        try:
            tle = load_tle(config.tle_path, epoch=config.epoch, include_unplaced=config.tle_include_unplaced)
        except TopologyError as err:
            problems.add("constellation.tle_path", str(err))
            return None
        fleet = tle.fleet
        if fleet.n_sats == 0:
            problems.add("constellation.tle_path", f"{config.tle_path}: no satellite could be placed in a "
                         "plane; set constellation.tle_include_unplaced = true to keep them")
            return None
        source = f"TLE {Path(config.tle_path).name}: placed {tle.placement['n_placed']} of " \
                 f"{tle.placement['n_total']} satellites in {len(tle.placement['shells'])} shell(s)"
    else:
        epoch = config.epoch or parse_epoch(DEFAULT_EPOCH_ISO)
        fleet = fleet_from_shells(config.walker_shells(), epoch)
        shells = " + ".join(f"{s.planes}x{s.sats_per_plane} at {s.altitude_km:g} km, {s.inclination_deg:g} deg"
                            for s in config.walker_shells())
        source = (f"preset {config.preset}" if config.preset else "Walker shells") + f": {shells}"
    satellite_names = tuple(fleet.names)
    ground_names = tuple(s[0] for s in config.ground_stations)
    clash = False
    for i, name in enumerate(ground_names):
        if name in satellite_names:
            problems.add(f"ground.stations[{i}].name", f"{name!r} is also a satellite name")
            clash = True
    compute_ids: tuple[int, ...] = ()
    if config.compute is not None:
        method = next(iter(config.compute.to_dict()))
        try:
            compute_ids = tuple(int(i) for i in config.compute.select(fleet))
        except TopologyError as err:
            problems.add(join("compute", method) + (f".{err.field}" if err.field and err.field != method else ""),
                         err.problem)
            return None
    if clash:
        return None
    return Topology(config, speedup, fleet.n_sats, satellite_names, compute_ids, ground_names, source)


__all__ = ["Topology", "read_topology", "spec_path", "CONFIG_FIELDS"]
