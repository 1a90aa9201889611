"""The ``[constellation]``, ``[isl]``, ``[ground]``, ``[compute]`` and ``[time]`` tables.

They become one :class:`topologies.ScheduleConfig`. The rules live in ``topologies``:
the tables' values are handed to ``ScheduleConfig.from_dict`` once, and every
``(field, problem)`` pair of its :class:`~topologies.TopologyError` is reported
under the spec's key path (:func:`spec_path`: ``isl_params.max_lat_deg`` ->
``isl.params.max_lat_deg``). This module adds only what is the spec's own: which
source keys may be combined (``hypatia_dir``), relative paths, file existence,
host-name rules, registry names spelled with their known values, and ``speedup``.
Where the spec already reported a key, a problem ScheduleConfig finds at the same
key (or at a table that holds it) is not repeated.

The constellation's satellites are then laid out without propagating orbits (a
:class:`topologies.Fleet`, milliseconds even for thousands of satellites) so the
compute selection can be resolved to node ids and names offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topologies import GSL_POLICIES, ISL_POLICIES, PRESETS, ScheduleConfig, TopologyError, load_tle, read_hypatia
from topologies.config import DEFAULT_EPOCH_ISO
from topologies.fleet import fleet_from_shells
from topologies.timebase import parse_epoch

from testbed.spec.checks import NAME_RE, NAME_RULE, Problems, Table, join, ok

CONSTELLATION_KEYS = ("preset", "shells", "tle_path", "hypatia_dir", "tle_include_unplaced", "capacity_bps",
                      "clusters")
ISL_KEYS = ("policy", "params", "lasers_per_sat", "max_range_km", "grazing_margin_km", "acquisition_s")
GROUND_KEYS = ("stations", "min_elevation_deg", "max_range_km", "policy", "params", "capacity_bps",
               "acquisition_s")
TIME_KEYS = ("epoch", "duration_s", "step_s", "earth_rotation", "speedup")
SOURCES = ("preset", "shells", "tle_path")

#: Spec key path -> ScheduleConfig field (keys passed through unchanged).
CONFIG_FIELDS = {
    "constellation.preset": "preset",
    "constellation.shells": "shells",
    "constellation.tle_path": "tle_path",
    "constellation.tle_include_unplaced": "tle_include_unplaced",
    "constellation.capacity_bps": "capacity_bps",
    "constellation.clusters": "clusters",
    "isl.policy": "isl_policy",
    "isl.params": "isl_params",
    "isl.lasers_per_sat": "lasers_per_sat",
    "isl.max_range_km": "max_range_km",
    "isl.grazing_margin_km": "grazing_margin_km",
    "isl.acquisition_s": "acquisition_s",
    "ground.stations": "ground_stations",
    "ground.min_elevation_deg": "gsl_min_elevation_deg",
    "ground.max_range_km": "gsl_max_range_km",
    "ground.policy": "gsl_policy",
    "ground.params": "gsl_params",
    "ground.capacity_bps": "gsl_capacity_bps",
    "ground.acquisition_s": "gsl_acquisition_s",
    "compute": "compute",
    "time.epoch": "epoch",
    "time.duration_s": "duration_s",
    "time.step_s": "step_s",
    "time.earth_rotation": "earth_rotation",
}
_SPEC_PATHS = {field: path for path, field in CONFIG_FIELDS.items()}
_SPEC_PATHS.update({"shell": "constellation.shells", "constellation": "constellation"})

#: Topology tables in file order: problems are sorted by table, then by the key's position in it.
TABLE_ORDER = ("constellation", "isl", "ground", "compute", "time")


def spec_path(field: str | None) -> str:
    """The spec key path of a ScheduleConfig field path (``isl_params.k`` -> ``isl.params.k``)."""
    if not field:
        return "constellation"
    head = re.match(r"[A-Za-z_]*", field).group(0)
    return _SPEC_PATHS.get(head, head) + field[len(head):]


def _file_order(path: str, tables: dict[str, Any]) -> tuple[int, int, int]:
    """Where ``path`` is written: (index of its table in TABLE_ORDER, index of its key
    there, array index after the key or -1)."""
    head, _, rest = path.partition(".")
    table = TABLE_ORDER.index(head) if head in TABLE_ORDER else len(TABLE_ORDER)
    keys = list(tables.get(head) or {}) if isinstance(tables.get(head), dict) else []
    key = re.match(r"[A-Za-z0-9_]*", rest).group(0)
    item = re.match(r"\[(\d+)\]", rest[len(key):])
    return table, keys.index(key) if key in keys else -1, int(item.group(1)) if item else -1


def _covers(outer: str, inner: str) -> bool:
    """True if key path ``outer`` is ``inner`` or a table holding it (``isl`` covers ``isl.params.k``)."""
    return inner == outer or inner.startswith((outer + ".", outer + "["))


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
    """Gathers ScheduleConfig values from the spec tables, checking only the spec's own rules."""

    def __init__(self, problems: Problems, spec_dir: Path) -> None:
        self.problems = problems
        self.spec_dir = spec_dir
        self.values: dict[str, Any] = {}
        #: ScheduleConfig values from a Hypatia folder; the spec's own keys win.
        self.defaults: dict[str, Any] = {}

    def take(self, table: Table, key: str) -> None:
        """Hand ``table[key]`` (when present) to ScheduleConfig as it is."""
        if table.has(key):
            self.values[CONFIG_FIELDS[table.where(key)]] = table.data[key]

    def name(self, table: Table, key: str, registry: Any, what: str) -> None:
        """A registry name: an unknown one is reported with the registry's names in order."""
        value = table.data.get(key)
        if isinstance(value, str) and value not in registry:
            table.bad(key, f"unknown {what} {value!r}; known: {', '.join(registry)}")
        self.take(table, key)

    # -- the tables -----------------------------------------------------------

    def constellation(self, table: Table) -> None:
        given = [k for k in SOURCES + ("hypatia_dir",) if table.has(k)]
        if len(given) != 1:
            self.problems.add("constellation", "give exactly one of preset, shells, tle_path, hypatia_dir"
                              + (f" (got {', '.join(given)})" if given else ""))
        if table.has("hypatia_dir"):
            self._hypatia(table)
        self.name(table, "preset", PRESETS, "preset")
        if table.data.get("shells") == []:
            table.bad("shells", "must list at least one shell")
        self.take(table, "shells")
        if table.has("tle_path"):
            text = table.string("tle_path")
            if ok(text):
                path = (self.spec_dir / Path(text).expanduser()).resolve()
                if not path.is_file():
                    table.bad("tle_path", f"no such file: {path} (relative paths start at the spec's folder)")
                self.values["tle_path"] = str(path)
        if table.has("tle_include_unplaced") and not table.has("tle_path"):
            table.bad("tle_include_unplaced", "only applies with constellation.tle_path")
        self.take(table, "tle_include_unplaced")
        self.take(table, "capacity_bps")
        self.take(table, "clusters")

    def _hypatia(self, table: Table) -> None:
        """A Hypatia folder: its TLEs, ISLs, stations and ground-link rule (topologies.read_hypatia)."""
        text = table.string("hypatia_dir")
        if not ok(text):
            return
        folder = (self.spec_dir / Path(text).expanduser()).resolve()
        try:
            values = read_hypatia(folder)
        except TopologyError as err:
            for line in str(err).splitlines():      # one line per problem
                table.bad("hypatia_dir", line)
            return
        for i, (name, *_) in enumerate(values.get("ground_stations", [])):
            if not NAME_RE.match(name):
                table.bad("hypatia_dir", f"{folder / 'ground_stations.txt'}:{i + 1}: station {name!r} "
                          f"is not a valid host name: {NAME_RULE}")
                return
        self.values["tle_path"] = values.pop("tle_path")
        self.defaults = values

    def isl(self, table: Table) -> None:
        self.name(table, "policy", ISL_POLICIES, "policy")
        if ok(table.table("params")):
            self.take(table, "params")
        for key in ("lasers_per_sat", "max_range_km", "grazing_margin_km", "acquisition_s"):
            self.take(table, key)

    def ground(self, table: Table) -> None:
        stations = table.data.get("stations")
        if isinstance(stations, list):
            for i, item in enumerate(stations):
                name = item.get("name") if isinstance(item, dict) else \
                    item[0] if isinstance(item, list) and item else None
                if isinstance(name, str) and name.strip() and not NAME_RE.match(name):
                    self.problems.add(f"ground.stations[{i}].name",
                                      f"{name!r} is not a valid host name: {NAME_RULE}")
        self.take(table, "stations")
        self.name(table, "policy", GSL_POLICIES, "policy")
        if ok(table.table("params")):
            self.take(table, "params")
        for key in ("min_elevation_deg", "max_range_km", "capacity_bps", "acquisition_s"):
            self.take(table, key)

    def time(self, table: Table) -> Any:
        for key in ("epoch", "duration_s", "step_s", "earth_rotation"):
            self.take(table, key)
        return table.number("speedup", 1.0, gt=0.0)

    def config(self, start: int) -> Any:
        """ScheduleConfig from every value at once; its problems go under their spec paths,
        except where the spec already reported that key (problems from ``start`` on)."""
        try:
            return ScheduleConfig.from_dict({**self.defaults, **self.values})
        except TopologyError as err:
            reported = self.problems.paths[start:]
            for field, problem in err.problems:
                path = spec_path(field)
                if not any(_covers(path, done) for done in reported):
                    self.problems.add(path, problem)
            return None


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
    start = len(problems)
    reader = _Reader(problems, spec_dir)
    if tables.get("constellation") is None:
        problems.add("constellation", "missing table; give exactly one of preset, shells, tle_path, hypatia_dir")
    elif ok(tables["constellation"]):
        reader.constellation(Table(tables["constellation"], "constellation", problems, CONSTELLATION_KEYS))
    reader.isl(Table(tables.get("isl") or {}, "isl", problems, ISL_KEYS))
    reader.ground(Table(tables.get("ground") or {}, "ground", problems, GROUND_KEYS))
    if tables.get("compute") is not None and ok(tables["compute"]):
        reader.values["compute"] = tables["compute"]
    speedup = reader.time(Table(tables.get("time") or {}, "time", problems, TIME_KEYS))
    config = reader.config(start)
    problems.sort_from(start, key=lambda path: _file_order(path, tables))
    if len(problems) > start or config is None:
        return None
    return _lay_out(config, speedup, problems)


def _lay_out(config, speedup: float, problems: Problems) -> Topology | None:
    """Satellites (no propagation), compute selection and host names."""
    if config.tle_path is not None:
        try:
            tle = load_tle(config.tle_path, epoch=config.epoch, include_unplaced=config.tle_include_unplaced)
        except TopologyError as err:
            for line in str(err).splitlines():
                problems.add("constellation.tle_path", line)
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
    members = tuple(name for cluster in config.clusters for name in cluster.member_names())
    for i, cluster in enumerate(config.clusters):       # formation-flying members follow the shells
        if not NAME_RE.match(cluster.name):
            problems.add(f"constellation.clusters[{i}].name", f"{cluster.name!r} is not a valid host name: {NAME_RULE}")
            return None
    if config.clusters:
        source += f" + {len(members)} cluster member(s) in {len(config.clusters)} cluster(s)"
    satellite_names = tuple(fleet.names) + members
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
            for field, problem in err.problems:
                problems.add(join("compute", method) + (f".{field}" if field and field != method else ""), problem)
            return None
    if clash:
        return None
    compute_ids += tuple(range(fleet.n_sats, fleet.n_sats + len(members)))
    return Topology(config, speedup, len(satellite_names), satellite_names, compute_ids, ground_names, source)


__all__ = ["Topology", "read_topology", "spec_path", "CONFIG_FIELDS"]
