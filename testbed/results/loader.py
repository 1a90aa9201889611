"""``load_results``: every table of a run folder as one tidy pandas DataFrame per table.

    from testbed.results import load_results
    tables = load_results("results/default/20250101T000000Z-ab12")
    rtt = tables["rtt"]                # columns: algorithm, trial, t_s, src, dst, rtt_s, ...
    rtt.groupby(["algorithm", "trial"])["rtt_s"].median()

Built on :func:`testbed.results.reader.load_run`, so a broken folder raises
:class:`~testbed.results.reader.ReportError` naming the file. Columns and units are
listed in results/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from testbed.results.reader import TABLE_COLUMNS, RunData, load_run

#: Tables whose rows carry wall-clock ``*_time_s`` (Unix s) stamps; ``t_s`` is derived
#: from ``start_time_s`` with the manifest's ``time_base`` when a table lacks it.
WALL_CLOCK_TABLES = ("collectives", "iterations", "transfers")


def _orbital_start(frame: pd.DataFrame, label: str, time_base: dict) -> pd.DataFrame:
    """Adds ``t_s`` = (start_time_s - start_unix) x speedup + t_first_s per trial, where
    the manifest's ``time_base`` has the trial's entry."""
    if "t_s" in frame.columns or "start_time_s" not in frame.columns or not time_base:
        return frame
    t_s = pd.Series(float("nan"), index=frame.index)
    for trial, rows in frame.groupby("trial"):
        base = time_base.get(f"{label}/{trial}")
        if base is not None:
            t_s[rows.index] = ((rows["start_time_s"] - base["start_unix"]) * base["speedup"]
                               + base["t_first_s"])
    return frame.assign(t_s=t_s)


def tidy_tables(run: RunData) -> dict[str, pd.DataFrame]:
    """{table name: all algorithms and trials concatenated}, ``algorithm`` and ``trial``
    first; only tables that some algorithm has."""
    time_base = run.manifest.get("time_base") or {}
    out = {}
    for name in TABLE_COLUMNS:
        frames = []
        for label, table in run.available(name).items():
            if name in WALL_CLOCK_TABLES:
                table = _orbital_start(table, label, time_base)
            frames.append(table.assign(algorithm=label))
        if not frames:
            continue
        frame = pd.concat(frames, ignore_index=True)
        first = ["algorithm", "trial"]
        out[name] = frame[first + [c for c in frame.columns if c not in first]]
    if run.power is not None:          # run level: the same for every algorithm and trial
        out["power"] = run.power
    return out


def load_results(run_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of ``run_dir`` (clock, rtt, paths, collectives, iterations, transfers,
    throughput, link_util, pcap, faults; the run-level power) as one DataFrame each, with ``algorithm`` and ``trial``
    columns; a table no algorithm recorded is absent from the dict."""
    return tidy_tables(load_run(run_dir))
