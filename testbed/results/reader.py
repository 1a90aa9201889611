"""Reading a run folder (``results/<experiment>/<run_id>/``) with validation.

:func:`load_run` reads everything a report needs before anything is drawn, so a broken
folder fails before a single output file is written. Each problem raises
:class:`ReportError` (exit status 2) with one line that names the file.

A *missing* or *empty* table is not an error: the run may have had no workload or no
background traffic, or may have stopped early. Such a table is ``None`` in
:attr:`RunData.tables` and the reason is kept in :attr:`RunData.notes`, so figures
that need it are skipped with a note. A table that exists but cannot be read, or lacks
a column the contract promises, is an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from testbed.results.trials import (ReportError, check_trial_keys, trial_folder, trial_numbers,
                                    trial_summaries)
from testbed.results.writer import INCOMPLETE

MANIFEST = "manifest.json"
SUMMARY = "summary.json"

#: Table name -> columns a report needs (the contract promises more; extra columns are kept).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "clock": ("step", "t_s", "flow_mods"),
    "rtt": ("t_s", "src", "dst", "rtt_s", "geo_rtt_s"),
    "paths": ("t_s", "src", "dst", "path"),
    "collectives": ("rank", "duration_s"),
    "iterations": ("rank", "iteration", "duration_s"),
    "throughput": ("t_s", "src", "dst", "bps"),
    "link_util": ("t_s", "a", "b", "utilisation"),
    "transfers": ("rank", "duration_s"),
    "pcap": ("t_s", "one_way_s"),
    "faults": ("t_s", "end_s", "kind", "node"),
}
#: Run-level tables (one per run folder, the same for every algorithm) -> columns a report needs.
RUN_TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "power": ("t_s", "host", "node", "sunlit", "soc", "clock_fraction"),
}
#: Tables a run with several workloads writes once per workload, as ``<name>-<workload>``.
PER_WORKLOAD_TABLES = ("collectives", "iterations", "transfers")
#: Tables written once per capture when there are several, as ``<name>-<capture>``.
PER_CAPTURE_TABLES = ("pcap",)
#: Tables only some runs have (a pcap replay, scheduled faults); their absence is not noted.
OPTIONAL_TABLES = ("pcap", "faults")
#: Collectives are grouped into job-level instances by the first of these columns found.
COLLECTIVE_ID_COLUMNS = ("instance", "op")

#: manifest key -> (accepted types, description for the error message)
_MANIFEST_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "experiment": ((str,), "a string"),
    "run_id": ((str,), "a string"),
    "algorithms": ((list,), "a non-empty list of unique algorithm labels"),
    "schedule": ((str,), "the schedule file name, e.g. \"schedule.parquet\""),
    "backend": ((str,), "\"netem\" or \"delayline\""),
    "delay_emulated": ((bool, type(None)), "true, false or null (read back from the link backend)"),
    "rate_scale": ((int, float), "a number > 0"),
    "speedup": ((int, float), "a number > 0"),
}


@dataclass(frozen=True)
class RunData:
    """Everything read from one run folder.

    Attributes
    ----------
    path : Path
        The run folder.
    manifest : dict
        ``manifest.json`` as read (validated keys listed in ``_MANIFEST_KEYS``).
    summary : dict
        ``summary.json`` as read; empty if absent. :attr:`trial_summaries` gives the
        per-trial summaries of either layout.
    incomplete : bool
        The folder holds an ``INCOMPLETE`` marker: the run did not finish.
    schedule : topologies.Schedule or None
        The run's orbital schedule; None if its file is missing.
    tables : dict
        ``tables[label][name]`` is a DataFrame (non-empty) or None (missing or empty),
        for every label in ``manifest["algorithms"]`` and every name in
        :data:`TABLE_COLUMNS`: all trials concatenated, with an int column ``trial``.
    trials : tuple of int
        Trial numbers of the run (``(0,)`` for a run without trials).
    trial_summaries : dict
        ``{label: {trial (str): per-trial summary}}``.
    notes : list of str
        What is missing, in reading order (shown in report.md).
    power : DataFrame or None
        The run-level ``power`` table (per step and compute host; see
        :data:`RUN_TABLE_COLUMNS`), or None when the run had no power model.
    """

    path: Path
    manifest: dict
    summary: dict
    incomplete: bool
    schedule: Any
    tables: dict[str, dict[str, pd.DataFrame | None]]
    notes: list[str] = field(default_factory=list)
    trials: tuple[int, ...] = (0,)
    trial_summaries: dict[str, dict[str, dict]] = field(default_factory=dict)
    power: pd.DataFrame | None = None

    @property
    def algorithms(self) -> list[str]:
        """Algorithm labels in run order (the manifest's order)."""
        return list(self.manifest["algorithms"])

    @property
    def rate_scale(self) -> float:
        return float(self.manifest["rate_scale"])

    def table(self, label: str, name: str) -> pd.DataFrame | None:
        return self.tables.get(label, {}).get(name)

    def available(self, name: str) -> dict[str, pd.DataFrame]:
        """{label: table} for the algorithms that have a non-empty ``name`` table, in run order."""
        return {label: t for label in self.algorithms
                if (t := self.table(label, name)) is not None}

    def trial_table(self, label: str, name: str, trial: int) -> pd.DataFrame | None:
        """One trial's rows of a table, or None when that trial has none."""
        table = self.table(label, name)
        if table is None:
            return None
        rows = table[table["trial"] == trial]
        return rows if len(rows) else None


# ------------------------------------------------------------------------- finding


def is_run_dir(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def find_run(results_dir: str | Path) -> Path:
    """The run folder to report on.

    ``results_dir`` is a run folder (it holds ``manifest.json``) or an experiment folder
    (its sub-folders are runs): then the newest complete run, by run id (run ids start
    with the UTC start time, so they sort in time order).
    """
    path = Path(results_dir)
    if not path.is_dir():
        raise ReportError(f"{path}: no such folder")
    if is_run_dir(path):
        return path
    runs = sorted((p for p in path.iterdir() if p.is_dir() and is_run_dir(p)), key=lambda p: p.name)
    if not runs:
        raise ReportError(f"{path}: neither a run folder (no {MANIFEST}) nor an experiment folder "
                          f"(no sub-folder holds a {MANIFEST})")
    complete = [p for p in runs if not (p / INCOMPLETE).exists()]
    if not complete:
        raise ReportError(f"{path}: no complete run among {len(runs)} (newest: {runs[-1].name}); "
                          f"pass a run folder to report on an incomplete run")
    return complete[-1]


# ------------------------------------------------------------------------- reading


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ReportError(f"{path}: cannot read ({err})") from None
    try:
        return json.loads(text)
    except ValueError as err:
        raise ReportError(f"{path}: not valid JSON ({err})") from None


def read_manifest(run_dir: Path) -> dict:
    path = run_dir / MANIFEST
    manifest = _read_json(path)
    if not isinstance(manifest, dict):
        raise ReportError(f"{path}: must be a JSON object")
    for key, (types, what) in _MANIFEST_KEYS.items():
        if key not in manifest:
            raise ReportError(f"{path}: missing key {key!r} ({what})")
        value = manifest[key]
        ok = isinstance(value, types) and not (bool not in types and isinstance(value, bool))
        if ok and key in ("rate_scale", "speedup"):
            ok = math.isfinite(value) and value > 0
        if ok and key == "algorithms":
            ok = (len(value) > 0 and all(isinstance(v, str) and v for v in value)
                  and len(set(value)) == len(value))
        if not ok:
            raise ReportError(f"{path}: {key!r} must be {what}, got {value!r}")
        if key == "algorithms":
            for label in value:
                if "/" in label or label in (".", ".."):
                    raise ReportError(f"{path}: algorithm label {label!r} cannot name a folder")
    check_trial_keys(manifest, path)
    return manifest


def read_summary(run_dir: Path) -> dict:
    path = run_dir / SUMMARY
    if not path.exists():
        return {}
    summary = _read_json(path)
    if not isinstance(summary, dict) or not isinstance(summary.get("algorithms", {}), dict):
        raise ReportError(f"{path}: must be a JSON object with an \"algorithms\" object")
    return summary


def _read_file(parquet: Path, csv: Path) -> tuple[pd.DataFrame, Path]:
    """One table file: the Parquet one, or its CSV twin when the Parquet file is missing."""
    if parquet.exists():
        try:
            return pd.read_parquet(parquet), parquet
        except Exception as err:  # pyarrow raises several types for a corrupt file
            first = str(err).splitlines()[0] if str(err) else ""
            raise ReportError(f"{parquet}: not a readable Parquet table ({type(err).__name__}: {first})") from None
    try:
        return pd.read_csv(csv, keep_default_na=True), csv
    except pd.errors.EmptyDataError:
        return pd.DataFrame(), csv
    except Exception as err:
        raise ReportError(f"{csv}: not a readable CSV table ({type(err).__name__}: {err})") from None


def table_files(folder: Path, name: str) -> list[tuple[Path, Path, str | None]]:
    """(parquet, csv, workload) per file of table ``name``: ``name.parquet`` and, for the
    per-workload tables of a run with several workloads, ``name-<workload>.parquet``
    (Parquet or CSV twin, whichever exists)."""
    stems: dict[str, str | None] = {}
    if (folder / f"{name}.parquet").exists() or (folder / f"{name}.csv").exists():
        stems[name] = None
    if name in PER_WORKLOAD_TABLES or name in PER_CAPTURE_TABLES:
        for path in sorted(folder.glob(f"{name}-*.parquet")) + sorted(folder.glob(f"{name}-*.csv")):
            stem = path.name.rsplit(".", 1)[0]
            stems.setdefault(stem, stem[len(name) + 1:])
    return [(folder / f"{stem}.parquet", folder / f"{stem}.csv", workload) for stem, workload in stems.items()]


def read_table(folder: Path, name: str) -> tuple[pd.DataFrame | None, str | None]:
    """One table of one algorithm: (frame, None) or (None, why it is absent)."""
    files = table_files(folder, name)
    if not files:
        return None, "missing"
    frames = []
    for parquet, csv, workload in files:
        frame, path = _read_file(parquet, csv)
        if len(frame) == 0:
            continue
        _check_columns(frame, name, path)
        column = "capture" if name in PER_CAPTURE_TABLES else "workload"
        if workload is not None and column not in frame.columns:
            frame = frame.assign(**{column: workload})
        frames.append(frame)
    if not frames:
        return None, "empty"
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if name == "paths":
        frame["path"] = frame["path"].fillna("").astype(str)   # "" = unreachable (CSV reads it as NaN)
    if "geo_rtt_s" in frame.columns:
        # the schedule's reference is inf where a pair is unreachable: no reference there
        frame["geo_rtt_s"] = frame["geo_rtt_s"].where(np.isfinite(frame["geo_rtt_s"]))
    return frame, None


def _check_columns(frame: pd.DataFrame, name: str, path: Path) -> None:
    required = TABLE_COLUMNS[name] if name in TABLE_COLUMNS else RUN_TABLE_COLUMNS[name]
    missing = [c for c in required if c not in frame.columns]
    if name == "collectives" and not any(c in frame.columns for c in COLLECTIVE_ID_COLUMNS):
        missing.append(" or ".join(COLLECTIVE_ID_COLUMNS))
    if missing:
        raise ReportError(f"{path}: missing column(s) {', '.join(missing)} "
                          f"(has: {', '.join(map(str, frame.columns))})")
    for column in ("t_s", "rtt_s", "geo_rtt_s", "bps", "utilisation", "duration_s", "flow_mods", "end_s",
                   "soc", "clock_fraction"):
        if column in required and not pd.api.types.is_numeric_dtype(frame[column]):
            raise ReportError(f"{path}: column {column!r} must be numeric, got {frame[column].dtype}")


def read_schedule(run_dir: Path, manifest: dict):
    """The run's schedule, or None when its file is missing."""
    from topologies import Schedule, TopologyError
    path = run_dir / manifest["schedule"]
    if not path.exists():
        return None
    try:
        return Schedule.load(path)
    except TopologyError as err:
        raise ReportError(str(err)) from None


def load_run(run_dir: str | Path) -> RunData:
    """Read and validate a run folder; :class:`ReportError` names the first bad file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such folder")
    manifest = read_manifest(run_dir)
    summary = read_summary(run_dir)
    incomplete = (run_dir / INCOMPLETE).exists()
    notes: list[str] = []
    schedule = read_schedule(run_dir, manifest)
    if schedule is None:
        notes.append(f"schedule file {manifest['schedule']} is missing")
    trials, layered = trial_numbers(manifest)
    tables: dict[str, dict[str, pd.DataFrame | None]] = {}
    for label in manifest["algorithms"]:
        tables[label] = _read_algorithm(run_dir, label, trials, layered, notes)
    power, _ = read_table(run_dir, "power")      # absent: the run had no power model
    return RunData(path=run_dir, manifest=manifest, summary=summary, incomplete=incomplete,
                   schedule=schedule, tables=tables, notes=notes, trials=trials,
                   trial_summaries=trial_summaries(summary, run_dir / SUMMARY), power=power)


def _read_algorithm(run_dir: Path, label: str, trials: tuple[int, ...], layered: bool,
                    notes: list[str]) -> dict[str, pd.DataFrame | None]:
    """Every table of one algorithm, its trials concatenated (column ``trial``)."""
    if not (run_dir / label).is_dir():
        notes.append(f"{label}: no results folder (the algorithm did not run)")
        return {name: None for name in TABLE_COLUMNS}
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLE_COLUMNS}
    for trial in trials:
        folder = trial_folder(run_dir, label, trial, layered)
        where = f"{label}/{folder.name}" if layered else label
        if not folder.is_dir():
            notes.append(f"{where}: no results folder (the trial did not run)")
            continue
        absent: dict[str, list[str]] = {}
        for name in TABLE_COLUMNS:
            frame, why = read_table(folder, name)
            if why:
                if not (why == "missing" and name in OPTIONAL_TABLES):
                    absent.setdefault(why, []).append(name)
                continue
            if "trial" not in frame.columns:
                frame.insert(0, "trial", trial)
            frames[name].append(frame.astype({"trial": "int64"}))
        for why, names in absent.items():
            notes.append(f"{where}: {why} table(s): {', '.join(names)}")
    return {name: (pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]) if parts else None
            for name, parts in frames.items()}
