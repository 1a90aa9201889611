"""The project-native workload file: JSON Lines, one header then one op per line.

See ``testbed/workload/README.md`` for the format. The reader is strict: unknown or
missing keys, duplicate keys, NaN/Infinity, wrong types, out-of-order op ids and
unmatched collectives are errors that name the file and line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from testbed.system.files import atomic_write
from testbed.workload.errors import WorkloadError
from testbed.workload.model import Workload, op_from_dict, op_to_dict

FORMAT = "lasermesh-workload"
VERSION = 1
_HEADER_KEYS = {"format", "version", "n_ranks", "iterations", "meta"}


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def parse_json_strict(text: str) -> Any:
    """json.loads that rejects duplicate keys and NaN/Infinity (raises ValueError)."""
    return json.loads(text, object_pairs_hook=_strict_object, parse_constant=_reject_constant)


def write_jsonl(workload: Workload, path: str | os.PathLike) -> None:
    """Write ``workload`` to ``path`` in the JSON Lines workload format."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "n_ranks": workload.n_ranks,
        "iterations": workload.iterations,
        "meta": workload.meta,
    }
    try:
        lines = [json.dumps(header, allow_nan=False, sort_keys=False)]
        for rank, rank_ops in enumerate(workload.ops):
            for op_id, op in enumerate(rank_ops):
                lines.append(json.dumps({"rank": rank, "id": op_id, **op_to_dict(op)}, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise WorkloadError(f"{path}: workload is not JSON-serialisable: {exc}") from exc
    atomic_write(path, "\n".join(lines) + "\n")


def read_jsonl(path: str | os.PathLike) -> Workload:
    """Read a workload written by :func:`write_jsonl` (or by hand); strict."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{path}: cannot read workload file: {exc}") from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise WorkloadError(f"{path}: empty file, expected a header line")

    def parse(lineno: int, line: str) -> dict[str, Any]:
        if not line.strip():
            raise WorkloadError(f"{path}:{lineno}: empty line")
        try:
            obj = parse_json_strict(line)
        except ValueError as exc:
            raise WorkloadError(f"{path}:{lineno}: not valid JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise WorkloadError(f"{path}:{lineno}: expected a JSON object")
        return obj

    header = parse(1, lines[0])
    if header.get("format") != FORMAT:
        raise WorkloadError(f"{path}:1: not a workload file (format must be {FORMAT!r})")
    if header.get("version") != VERSION:
        raise WorkloadError(f"{path}:1: unsupported version {header.get('version')!r}, expected {VERSION}")
    if set(header) != _HEADER_KEYS:
        extra, missing = sorted(set(header) - _HEADER_KEYS), sorted(_HEADER_KEYS - set(header))
        raise WorkloadError(f"{path}:1: header keys wrong (unknown {extra}, missing {missing})")
    n_ranks = header["n_ranks"]
    if isinstance(n_ranks, bool) or not isinstance(n_ranks, int) or n_ranks < 1:
        raise WorkloadError(f"{path}:1: n_ranks must be a positive integer, got {n_ranks!r}")
    if not isinstance(header["meta"], dict):
        raise WorkloadError(f"{path}:1: meta must be a JSON object")

    ops: list[list] = [[] for _ in range(n_ranks)]
    line_of: dict[tuple[int, int], int] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        record = parse(lineno, line)
        rank, op_id = record.pop("rank", None), record.pop("id", None)
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < n_ranks:
            raise WorkloadError(f"{path}:{lineno}: rank must be an integer in 0..{n_ranks - 1}, got {rank!r}")
        if op_id != len(ops[rank]) or isinstance(op_id, bool):
            raise WorkloadError(
                f"{path}:{lineno}: rank {rank} op id must be {len(ops[rank])} "
                f"(ops of a rank are numbered 0, 1, ... in file order), got {op_id!r}"
            )
        try:
            op = op_from_dict(record)
        except (WorkloadError, TypeError) as exc:
            raise WorkloadError(f"{path}:{lineno}: {exc}") from exc
        line_of[(rank, op_id)] = lineno
        ops[rank].append(op)
    try:
        return Workload(n_ranks=n_ranks, ops=ops, iterations=header["iterations"], meta=header["meta"])
    except WorkloadError as exc:
        lineno = line_of.get(getattr(exc, "location", None), 1)
        where = f"{path}:{lineno}" if hasattr(exc, "location") else str(path)
        raise WorkloadError(f"{where}: {exc}") from exc
