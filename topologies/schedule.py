"""``Schedule``: the generator's output, and its Parquet files.

A schedule is saved as three Parquet files next to each other::

    out.parquet            links:     one row per (step, link)
    out.nodes.parquet      nodes:     one row per node
    out.positions.parquet  positions: one row per (step, node)

Each file carries the key ``lasermesh.schedule`` in its Parquet schema metadata
(JSON: format, version, part, schedule id; the links file also holds the full
``meta``).  Files are written to temporary names and renamed into place, links
last, so a crash never leaves a half-written schedule behind; loading checks
that the three parts belong together.  The columns are documented in
``topologies/README.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .cluster import laser_limits
from .constants import FORMAT_NAME, FORMAT_VERSION
from .errors import TopologyError
from .linktable import LINK_COLUMNS, LINK_KINDS, check_link_table
from .timebase import parse_epoch

#: Node kinds.  "compute" is a satellite that hosts GPUs.
NODE_KINDS = ("satellite", "compute", "ground")
SATELLITE_KINDS = ("satellite", "compute")
NODE_COLUMNS = ("node_id", "name", "kind", "shell", "plane", "slot")
POSITION_COLUMNS = ("step", "node_id", "x_km", "y_km", "z_km", "lat_deg", "lon_deg",
                    "alt_km", "sunlit")
METADATA_KEY = b"lasermesh.schedule"
#: Writer options: zstd; dictionary encoding only where values repeat (it costs
#: time and gains nothing on float columns); min/max statistics on ``step`` and
#: ``node_id`` so readers can filter row groups, e.g.
#: ``pd.read_parquet(path, filters=[("step", "==", 10)])``.
PARQUET_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": ["kind", "capacity_bps", "up", "sunlit", "name", "shell", "plane"],
    "write_statistics": ["step", "node_id"],
}


def schedule_paths(path: str | os.PathLike) -> dict[str, Path]:
    """The three file paths of a schedule saved at ``path`` (links file)."""
    path = Path(path)
    base = path.name[:-len(".parquet")] if path.name.endswith(".parquet") else path.name
    return {"links": path,
            "nodes": path.with_name(base + ".nodes.parquet"),
            "positions": path.with_name(base + ".positions.parquet")}


class _PartError(Exception):
    """A problem in one part of a schedule being loaded (internal)."""

    def __init__(self, part: str, message: str):
        super().__init__(message)
        self.part, self.message = part, message


@dataclass(frozen=True, eq=False, repr=False)
class Positions:
    """Node positions per step.

    Attributes
    ----------
    ecef_km : numpy.ndarray, shape (n_steps, n_nodes, 3)
        Earth-fixed (ITRS) x, y, z [km].
    lat_deg, lon_deg : numpy.ndarray, shape (n_steps, n_nodes)
        Geodetic (WGS-84) latitude and longitude in [-180, 180) [deg].
    alt_km : numpy.ndarray, shape (n_steps, n_nodes)
        Height above the WGS-84 ellipsoid [km].
    """

    ecef_km: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    alt_km: np.ndarray

    def __repr__(self) -> str:
        return f"Positions(shape={self.ecef_km.shape})"


@dataclass(frozen=True, eq=False, repr=False)
class Schedule:
    """Time-varying topology of a constellation.

    Attributes
    ----------
    nodes : pandas.DataFrame
        One row per node: ``node_id`` (0..N-1; satellites first, then ground
        stations), ``name``, ``kind`` ("satellite" | "compute" | "ground"),
        ``shell``, ``plane``, ``slot`` (-1 for ground stations and unplaced
        satellites).
    times_s : numpy.ndarray, shape (n_steps,)
        Seconds since ``epoch`` of each step (``step * step_s``).
    epoch : datetime
        Timezone-aware UTC time of step 0.
    step_s : float
    positions : Positions
    sunlit : numpy.ndarray of bool, shape (n_steps, n_nodes)
        Satellites: outside the Earth's shadow.  Ground stations: the Sun is
        above the horizon (daytime).
    links : pandas.DataFrame
        One row per (step, link) for every link that exists at that step,
        sorted by (step, a, b): ``step``, ``a`` < ``b`` (node ids), ``kind``
        ("isl" | "gsl"), ``distance_km``, ``delay_s`` (= distance / c),
        ``capacity_bps``, ``up`` (False while the link is still being acquired).
    meta : dict
        Epoch, step, constants, generator version, input hash, config, ...
    """

    nodes: pd.DataFrame
    times_s: np.ndarray
    epoch: datetime
    step_s: float
    positions: Positions
    sunlit: np.ndarray
    links: pd.DataFrame
    meta: dict

    def __repr__(self) -> str:
        return (f"Schedule(epoch={self.meta.get('epoch')!s}, n_steps={self.n_steps}, "
                f"step_s={self.step_s:g}, n_nodes={self.n_nodes}, link_rows={len(self.links)})")

    # ---------------------------------------------------------------- access

    @property
    def n_steps(self) -> int:
        return int(self.times_s.size)

    @property
    def n_nodes(self) -> int:
        return int(len(self.nodes))

    def _step_bounds(self, step: int) -> tuple[int, int]:
        if not isinstance(step, (int, np.integer)) or isinstance(step, bool):
            raise TypeError(f"step must be an integer, got {step!r}")
        if not 0 <= step < self.n_steps:
            raise IndexError(f"step {step} out of range 0..{self.n_steps - 1}")
        steps = self.links["step"].to_numpy()
        return (int(np.searchsorted(steps, step, side="left")),
                int(np.searchsorted(steps, step, side="right")))

    def links_at(self, step: int) -> pd.DataFrame:
        """Links existing at ``step`` (same columns as ``links``, fresh index)."""
        lo, hi = self._step_bounds(step)
        return self.links.iloc[lo:hi].reset_index(drop=True)

    def node_ids(self, kind: str | tuple | list | None = None) -> np.ndarray:
        """Node ids, optionally only of the given kind(s).

        ``kind`` is one of "satellite", "compute", "ground", a sequence of
        them, or None (all).  Note "satellite" excludes compute satellites;
        use :meth:`satellite_ids` for every satellite.
        """
        ids = self.nodes["node_id"].to_numpy()
        if kind is None:
            return ids.copy()
        kinds = (kind,) if isinstance(kind, str) else tuple(kind)
        for k in kinds:
            if k not in NODE_KINDS:
                raise ValueError(f"unknown node kind {k!r} (known: {', '.join(NODE_KINDS)})")
        return ids[self.nodes["kind"].isin(kinds).to_numpy()]

    def satellite_ids(self) -> np.ndarray:
        """Ids of all satellites, compute or not."""
        return self.node_ids(SATELLITE_KINDS)

    def graph_at(self, step: int, up_only: bool = True):
        """A ``networkx.Graph`` of the links at ``step``.

        Nodes carry the node-table columns; edges carry ``kind``,
        ``distance_km``, ``delay_s``, ``capacity_bps``, ``up``.  With
        ``up_only`` (default) links still being acquired are left out.
        """
        import networkx as nx
        graph = nx.Graph()
        for row in self.nodes.itertuples(index=False):
            graph.add_node(int(row.node_id), name=row.name, kind=row.kind,
                           shell=int(row.shell), plane=int(row.plane), slot=int(row.slot))
        rows = self.links_at(step)
        if up_only:
            rows = rows[rows["up"].to_numpy()]
        a = rows["a"].to_numpy().tolist()
        b = rows["b"].to_numpy().tolist()
        attrs = {c: rows[c].to_numpy().tolist()
                 for c in ("distance_km", "delay_s", "capacity_bps", "up")}
        kinds = rows["kind"].astype(str).tolist()
        graph.add_edges_from(
            (a[i], b[i], {"kind": kinds[i], **{c: attrs[c][i] for c in attrs}})
            for i in range(len(a)))
        return graph

    # ------------------------------------------------------------------ files

    def schedule_id(self) -> str:
        """Identifies this schedule's three files as belonging together."""
        text = json.dumps([self.meta.get("input_hash"), self.meta.get("generator_version"),
                           self.n_steps, self.n_nodes, int(len(self.links))])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def save(self, path: str | os.PathLike) -> dict[str, Path]:
        """Write the schedule's three Parquet files (see module docstring).

        Each part is written to a temporary file in the same directory and
        renamed into place; the links file, which names the schedule, last.
        Returns the paths written.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        paths = schedule_paths(path)
        folder = paths["links"].parent
        if not folder.is_dir():
            raise TopologyError(f"{paths['links']}: folder {folder} does not exist")
        sid = self.schedule_id()

        def header(part: str, extra: dict | None = None) -> dict:
            info = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                    "part": part, "schedule_id": sid}
            info.update(extra or {})
            return {METADATA_KEY: json.dumps(info, sort_keys=True).encode()}

        n_steps, n_nodes = self.n_steps, self.n_nodes
        links = self.links
        kind_codes = pd.Categorical(links["kind"], categories=list(LINK_KINDS)).codes
        tables = {
            "nodes": pa.table({
                "node_id": pa.array(self.nodes["node_id"].to_numpy(np.int32)),
                "name": pa.array(self.nodes["name"].astype(str).tolist(), pa.string()),
                "kind": pa.array(self.nodes["kind"].astype(str).tolist(), pa.string()),
                "shell": pa.array(self.nodes["shell"].to_numpy(np.int32)),
                "plane": pa.array(self.nodes["plane"].to_numpy(np.int32)),
                "slot": pa.array(self.nodes["slot"].to_numpy(np.int32)),
            }).replace_schema_metadata(header("nodes")),
            "positions": pa.table({
                "step": pa.array(np.repeat(np.arange(n_steps, dtype=np.int32), n_nodes)),
                "node_id": pa.array(np.tile(np.arange(n_nodes, dtype=np.int32), n_steps)),
                "x_km": pa.array(self.positions.ecef_km[..., 0].ravel()),
                "y_km": pa.array(self.positions.ecef_km[..., 1].ravel()),
                "z_km": pa.array(self.positions.ecef_km[..., 2].ravel()),
                "lat_deg": pa.array(self.positions.lat_deg.ravel()),
                "lon_deg": pa.array(self.positions.lon_deg.ravel()),
                "alt_km": pa.array(self.positions.alt_km.ravel()),
                "sunlit": pa.array(self.sunlit.ravel()),
            }).replace_schema_metadata(header("positions")),
            "links": pa.table({
                "step": pa.array(links["step"].to_numpy(np.int32)),
                "a": pa.array(links["a"].to_numpy(np.int32)),
                "b": pa.array(links["b"].to_numpy(np.int32)),
                "kind": pa.DictionaryArray.from_arrays(
                    pa.array(kind_codes.astype(np.int8)), pa.array(list(LINK_KINDS))),
                "distance_km": pa.array(links["distance_km"].to_numpy(np.float64)),
                "delay_s": pa.array(links["delay_s"].to_numpy(np.float64)),
                "capacity_bps": pa.array(links["capacity_bps"].to_numpy(np.float64)),
                "up": pa.array(links["up"].to_numpy(bool)),
            }).replace_schema_metadata(header("links", {"meta": self.meta})),
        }
        temps: dict[str, Path] = {}
        try:
            for part in ("nodes", "positions", "links"):
                target = paths[part]
                temp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
                temps[part] = temp
                pq.write_table(tables[part], temp, **PARQUET_OPTIONS)
            for part in ("nodes", "positions", "links"):
                os.replace(temps.pop(part), paths[part])
        finally:
            for temp in temps.values():
                try:
                    temp.unlink()
                except FileNotFoundError:
                    pass
        return paths

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Schedule":
        """Read and validate a schedule written by :meth:`save`.

        Raises :class:`TopologyError` naming the file on any problem (missing
        part, foreign or corrupt file, parts from different schedules, bad
        columns, broken invariants).
        """
        import pyarrow.parquet as pq

        paths = schedule_paths(path)
        tables, headers = {}, {}
        for part in ("links", "nodes", "positions"):
            file = paths[part]
            try:
                table = pq.read_table(file)
            except FileNotFoundError:
                raise TopologyError(f"{file}: missing schedule file ({part})") from None
            except Exception as err:  # pyarrow raises several types for corrupt files
                raise TopologyError(f"{file}: not a readable Parquet file ({err})") from None
            metadata = table.schema.metadata or {}
            try:
                info = json.loads(metadata[METADATA_KEY])
            except (KeyError, ValueError):
                raise TopologyError(f"{file}: not a schedule file (no lasermesh.schedule "
                                    "metadata)") from None
            if info.get("format") != FORMAT_NAME or info.get("part") != part:
                raise TopologyError(f"{file}: not the {part} part of a schedule")
            if info.get("format_version") != FORMAT_VERSION:
                raise TopologyError(f"{file}: format version {info.get('format_version')} "
                                    f"not supported (this reader: {FORMAT_VERSION})")
            tables[part], headers[part] = table, info
        sid = headers["links"]["schedule_id"]
        for part in ("nodes", "positions"):
            if headers[part]["schedule_id"] != sid:
                raise TopologyError(f"{paths[part]}: belongs to a different schedule than "
                                    f"{paths['links']}")
        meta = headers["links"].get("meta")
        try:
            return cls._from_tables(tables, meta)
        except _PartError as err:
            raise TopologyError(f"{paths[err.part]}: {err.message}") from None

    @classmethod
    def _from_tables(cls, tables: dict, meta: Any) -> "Schedule":
        def fail(part: str, message: str):
            raise _PartError(part, message)

        if not isinstance(meta, dict):
            fail("links", "metadata has no 'meta' object")
        try:
            epoch = parse_epoch(meta["epoch"])
            step_s = float(meta["step_s"])
            n_steps = int(meta["n_steps"])
            lasers = int(meta["lasers_per_sat"])
        except (KeyError, TypeError, ValueError, TopologyError) as err:
            fail("links", f"metadata incomplete or invalid ({err})")
        nodes = tables["nodes"].to_pandas()
        if list(nodes.columns) != list(NODE_COLUMNS):
            fail("nodes", f"columns {list(nodes.columns)}, expected {list(NODE_COLUMNS)}")
        n_nodes = len(nodes)
        if not np.array_equal(nodes["node_id"].to_numpy(), np.arange(n_nodes)):
            fail("nodes", "node_id must be 0..N-1 in order")
        if not nodes["kind"].isin(NODE_KINDS).all():
            fail("nodes", f"kind must be one of {', '.join(NODE_KINDS)}")
        is_ground = (nodes["kind"] == "ground").to_numpy()
        first_ground = int(np.argmax(is_ground)) if is_ground.any() else n_nodes
        if is_ground[:first_ground].any() or not is_ground[first_ground:].all():
            fail("nodes", "satellites must come first, then ground stations")
        for column in ("node_id", "shell", "plane", "slot"):
            nodes[column] = nodes[column].astype(np.int64)

        pos = tables["positions"]
        if pos.column_names != list(POSITION_COLUMNS):
            fail("positions", f"columns {pos.column_names}, expected {list(POSITION_COLUMNS)}")
        if pos.num_rows != n_steps * n_nodes:
            fail("positions", f"{pos.num_rows} rows, expected n_steps x n_nodes = "
                              f"{n_steps} x {n_nodes}")
        column = {name: pos.column(name).to_numpy() for name in POSITION_COLUMNS}
        if not (np.array_equal(column["step"], np.repeat(np.arange(n_steps), n_nodes))
                and np.array_equal(column["node_id"], np.tile(np.arange(n_nodes), n_steps))):
            fail("positions", "rows must be sorted by (step, node_id) and complete")
        shape = (n_steps, n_nodes)
        ecef = np.stack([column[c].reshape(shape) for c in ("x_km", "y_km", "z_km")], axis=-1)
        positions = Positions(ecef, column["lat_deg"].reshape(shape).copy(),
                              column["lon_deg"].reshape(shape).copy(),
                              column["alt_km"].reshape(shape).copy())
        sunlit = column["sunlit"].reshape(shape).astype(bool)

        links = tables["links"].to_pandas()
        if list(links.columns) != list(LINK_COLUMNS):
            fail("links", f"columns {list(links.columns)}, expected {list(LINK_COLUMNS)}")
        if not isinstance(links["kind"].dtype, pd.CategoricalDtype):
            links["kind"] = links["kind"].astype("category")
        links["kind"] = links["kind"].cat.set_categories(list(LINK_KINDS))
        if links["kind"].isna().any():
            fail("links", f"kind must be one of {', '.join(LINK_KINDS)}")
        for name, dtype in LINK_COLUMNS.items():
            if name != "kind":
                try:
                    links[name] = links[name].astype(dtype)
                except (TypeError, ValueError):
                    fail("links", f"column {name!r} is not {dtype}")
        try:
            if meta.get("clusters"):          # cluster members have their own terminals
                lasers = laser_limits(n_nodes, lasers, meta["clusters"],
                                      int(meta["clusters"][0]["first_node_id"])
                                      - int(meta["clusters"][0]["first_index"]))
            check_link_table(links, n_nodes, n_steps, first_ground, lasers)
        except TopologyError as err:
            fail("links", str(err))
        return cls(nodes=nodes, times_s=np.arange(n_steps) * step_s, epoch=epoch,
                   step_s=step_s, positions=positions, sunlit=sunlit, links=links, meta=meta)
