"""Tables from the replay agents' result files (JSON Lines, one file per rank).

``summarise(paths, plan)`` returns three pandas DataFrames, one row per rank and
item (group by ``instance`` for job-level views): collectives, iterations and
transfers. Given ``rate_bps`` and ``latency_s`` (scaled link rate and one-way path
latency, a number or {(src, dst): value}) it adds ``ideal_s`` and ``slowdown`` =
measured / ideal, the ideal being the no-contention model of
:mod:`testbed.workload.ideal` (a collective timed alone; an iteration within the
whole plan, compute included).

Given ``dilation`` D (testbed/net/dilation.py), measured durations (``duration_s``,
``compute_s``, ``comm_s``, ``exposed_comm_s``) are divided by D and measured rates
(``algbw_bps``, ``busbw_bps``) multiplied by D before ``slowdown`` is taken: the tables are in
emulated seconds; ``start_time_s``/``end_time_s`` stay wall-clock Unix stamps.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from testbed.net.dilation import WORKLOAD_DURATIONS, WORKLOAD_RATES, emulated_frame
from testbed.workload.errors import WorkloadError
from testbed.workload.expand import ideal_time_s
from testbed.workload.ideal import PathValue, simulate
from testbed.workload.jsonl import parse_json_strict
from testbed.workload.model import Collective
from testbed.workload.expand import Plan

RECORD_TYPES = ("run", "collective", "p2p", "compute", "iteration", "transfer")


class Summary(NamedTuple):
    """pandas DataFrames; unpacks as ``collectives, iterations, transfers``."""

    collectives: Any
    iterations: Any
    transfers: Any


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of one agent result file; errors name the file and line."""
    records = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{path}: cannot read results: {exc}") from exc
    for lineno, line in enumerate(lines, start=1):
        try:
            record = parse_json_strict(line)
        except ValueError as exc:
            raise WorkloadError(f"{path}:{lineno}: not valid JSON: {exc}") from exc
        if not isinstance(record, dict) or record.get("record") not in RECORD_TYPES:
            raise WorkloadError(f"{path}:{lineno}: not a result record (record must be one of {RECORD_TYPES})")
        records.append(record)
    return records


#: A rank's exit status when its ``--timeout-s`` elapsed first, and when a peer closed its
#: connection with transfers still expected (testbed.agent.replay): once one rank of a job
#: times out and closes, its peers exit with the second.
EXIT_TIMEOUT, EXIT_PEER_LOST = 4, 5


def unfinished_codes(exit_codes: Iterable[int | None]) -> bool:
    """True if a job's ranks ended as a job the network kept from finishing does: some timed
    out, the rest finished or lost those peers (no verification error, bad plan or signal)."""
    codes = [c for c in exit_codes if c not in (None, 0)]
    return EXIT_TIMEOUT in codes and set(codes) <= {EXIT_TIMEOUT, EXIT_PEER_LOST}


def run_records(results_jsonl_paths: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """The ``run`` record of each result file that has exactly one (rank, status, steps ...)."""
    out = []
    for path in results_jsonl_paths:
        run = [r for r in read_results(path) if r["record"] == "run"]
        if len(run) == 1:
            out.append(run[0])
    return out


def summarise(results_jsonl_paths: Iterable[str | os.PathLike], plan: Plan,
              rate_bps: PathValue | None = None, latency_s: PathValue | None = None,
              dilation: float = 1.0, allow_unfinished: bool = False) -> Summary:
    """Collect the agents' results into DataFrames (see module docstring). With
    ``allow_unfinished``, a job whose ranks timed out (:func:`unfinished_codes`) contributes
    what it completed (a job the network kept from finishing is a result); any other
    failure is still an error."""
    import pandas as pd

    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    runs: dict[int, str] = {}
    results_jsonl_paths = list(results_jsonl_paths)
    unfinished = allow_unfinished and unfinished_codes(r.get("exit_code") for r in run_records(results_jsonl_paths))
    for path in results_jsonl_paths:
        records = read_results(path)
        run = [r for r in records if r["record"] == "run"]
        if len(run) != 1:
            raise WorkloadError(f"{path}: expected one run record, found {len(run)}")
        rank = run[0].get("rank")
        if rank in runs:
            raise WorkloadError(f"{path}: rank {rank} also in {runs[rank]}")
        if run[0].get("status") != "ok" and not unfinished:
            raise WorkloadError(f"{path}: rank {rank} did not complete: {run[0].get('error')}")
        runs[rank] = str(path)
        for record in records:
            by_type[record["record"]].append(record)
    missing = sorted(set(range(plan.n_ranks)) - set(runs))
    if missing:
        raise WorkloadError(f"no results for ranks {missing} of the plan's {plan.n_ranks}")

    def frame(kind: str) -> Any:
        rows = [{k: v for k, v in r.items() if k != "record"} for r in by_type[kind]]
        return pd.DataFrame(rows).sort_values([c for c in ("rank", "op", "iteration", "step", "xfer")
                                               if rows and c in rows[0]]).reset_index(drop=True)

    collectives, iterations, transfers = (emulated_frame(frame(kind), dilation, WORKLOAD_DURATIONS, WORKLOAD_RATES)
                                          for kind in ("collective", "iteration", "transfer"))
    if rate_bps is not None and latency_s is not None:
        if len(collectives):
            cache: dict[tuple, float] = {}

            def ideal(row: Any) -> float:
                op = plan.ranks[row["rank"]].ops[row["op"]]
                assert isinstance(op, Collective)
                key = op.signature() + (op.group,)
                if key not in cache:
                    cache[key] = ideal_time_s(op, rate_bps, latency_s)
                return cache[key]

            collectives["ideal_s"] = collectives.apply(ideal, axis=1)
            collectives["slowdown"] = collectives["duration_s"] / collectives["ideal_s"]
        if len(iterations):
            sim = simulate(plan, rate_bps, latency_s)
            spans = {r: sim.iteration_spans(r) for r in range(plan.n_ranks)}
            iterations["ideal_s"] = [spans[r][i][1] - spans[r][i][0]
                                     for r, i in zip(iterations["rank"], iterations["iteration"])]
            iterations["slowdown"] = iterations["duration_s"] / iterations["ideal_s"]
    return Summary(collectives=collectives, iterations=iterations, transfers=transfers)
