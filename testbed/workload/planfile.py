"""Replay plans: the explicit point-to-point schedule of a workload, and its file format.

A plan (:class:`Plan`) has one :class:`RankPlan` per rank; its *steps* each belong to one
stream of their rank ("compute" or "comm"); the steps of a stream run one at a time in id
order; a step's ``deps`` are steps (of any stream of the same rank) that must finish
before it starts. A step sleeps ``compute_s``, sends its ``sends`` and finishes when the
sends are written and all its ``recvs`` have arrived. Every transfer has a plan-wide id
``xfer`` shared by the send and the matching receive, so the replay agent can check each
arriving transfer against the plan. Plans are made by :func:`testbed.workload.expand`.

A plan file is JSON Lines: a header line, then one line per rank, so an agent parses
only its own rank (``load_rank_plan``); ``load_plan`` reads and checks all of it.
Each rank carries its byte totals.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from testbed.system.files import atomic_write
from testbed.workload.errors import WorkloadError
from testbed.workload.jsonl import parse_json_strict
from testbed.workload.model import Op, op_from_dict, op_to_dict

FORMAT = "lasermesh-plan"
VERSION = 1
STREAMS = ("compute", "comm")


@dataclass(frozen=True)
class Transfer:
    """One point-to-point message: ``peer`` is the other end, ``xfer`` its plan-wide id."""

    peer: int
    size_bytes: int
    xfer: int


@dataclass(frozen=True)
class Step:
    id: int
    op: int
    stream: str
    deps: tuple[int, ...] = ()
    compute_s: float = 0.0
    sends: tuple[Transfer, ...] = ()
    recvs: tuple[Transfer, ...] = ()


@dataclass(frozen=True)
class RankPlan:
    """What one rank replays.

    ``op_steps[i]`` is the (first, last) step id of op ``i``; ``op_instance[i]`` is
    an id shared by all ranks taking part in the same collective (or send/recv pair).
    """

    rank: int
    ops: tuple[Op, ...]
    op_steps: tuple[tuple[int, int], ...]
    op_instance: tuple[int, ...]
    steps: tuple[Step, ...]
    bytes_sent: int = field(init=False)
    bytes_received: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bytes_sent", sum(t.size_bytes for s in self.steps for t in s.sends))
        object.__setattr__(self, "bytes_received", sum(t.size_bytes for s in self.steps for t in s.recvs))

    def peers(self) -> set[int]:
        """Ranks this rank exchanges data with."""
        return {t.peer for s in self.steps for t in (*s.sends, *s.recvs)}


@dataclass(frozen=True)
class Plan:
    n_ranks: int
    iterations: int
    seed: int
    meta: Mapping[str, Any]
    ranks: tuple[RankPlan, ...]

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        return {**self.header(), "ranks": [_rank_to_dict(rp) for rp in self.ranks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Plan":
        """Build and validate a plan from :meth:`to_dict` form (raises WorkloadError)."""
        if not isinstance(data, dict) or not isinstance(data.get("ranks"), list):
            raise WorkloadError("plan must be a JSON object with a ranks list")
        header = _check_header({k: v for k, v in data.items() if k != "ranks"})
        ranks = tuple(_rank_from_dict(i, r) for i, r in enumerate(data["ranks"]))
        return cls(header["n_ranks"], header["iterations"], header["seed"], header["meta"], ranks)

    def header(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "n_ranks": self.n_ranks,
                "iterations": self.iterations, "seed": self.seed, "meta": dict(self.meta)}


_HEADER_KEYS = {"format", "version", "n_ranks", "iterations", "seed", "meta"}


def _check_header(header: Any) -> dict[str, Any]:
    _expect_keys("plan header", header, _HEADER_KEYS)
    if header["format"] != FORMAT or header["version"] != VERSION:
        raise WorkloadError(f"not a {FORMAT} version {VERSION} document")
    if not isinstance(header["meta"], dict):
        raise WorkloadError("plan: meta must be an object")
    for name in ("n_ranks", "iterations", "seed"):
        if isinstance(header[name], bool) or not isinstance(header[name], int):
            raise WorkloadError(f"plan: {name} must be an integer")
    return header


def _expect_keys(what: str, obj: Any, keys: set[str]) -> None:
    if not isinstance(obj, dict):
        raise WorkloadError(f"{what} must be a JSON object")
    if set(obj) != keys:
        raise WorkloadError(
            f"{what}: unknown keys {sorted(set(obj) - keys)}, missing keys {sorted(keys - set(obj))}"
        )


def _rank_to_dict(rp: RankPlan) -> dict[str, Any]:
    return {
        "rank": rp.rank,
        "bytes_sent": rp.bytes_sent,
        "bytes_received": rp.bytes_received,
        "ops": [
            {"id": i, **op_to_dict(op), "instance": inst, "steps": list(span)}
            for i, (op, inst, span) in enumerate(zip(rp.ops, rp.op_instance, rp.op_steps))
        ],
        "steps": [
            {
                "id": s.id,
                "op": s.op,
                "stream": s.stream,
                "deps": list(s.deps),
                "compute_s": s.compute_s,
                "sends": [[t.peer, t.size_bytes, t.xfer] for t in s.sends],
                "recvs": [[t.peer, t.size_bytes, t.xfer] for t in s.recvs],
            }
            for s in rp.steps
        ],
    }


def _transfers(what: str, value: Any) -> tuple[Transfer, ...]:
    if not isinstance(value, list):
        raise WorkloadError(f"{what} must be a list of [peer, size_bytes, xfer]")
    out = []
    for item in value:
        if (not isinstance(item, list) or len(item) != 3
                or any(isinstance(v, bool) or not isinstance(v, int) for v in item)):
            raise WorkloadError(f"{what}: bad transfer {item!r}, expected [peer, size_bytes, xfer]")
        out.append(Transfer(*item))
    return tuple(out)


def _rank_from_dict(index: int, data: Any) -> RankPlan:
    where = f"plan rank {index}"
    _expect_keys(where, data, {"rank", "bytes_sent", "bytes_received", "ops", "steps"})
    ops, spans, instances = [], [], []
    for i, rec in enumerate(data["ops"]):
        if not isinstance(rec, dict):
            raise WorkloadError(f"{where} op {i}: must be an object")
        rec = dict(rec)
        op_id, inst, span = rec.pop("id", None), rec.pop("instance", None), rec.pop("steps", None)
        if op_id != i or not isinstance(inst, int) or not isinstance(span, list) or len(span) != 2:
            raise WorkloadError(f"{where} op {i}: needs id={i}, an integer instance and steps [first, last]")
        try:
            ops.append(op_from_dict(rec))
        except (WorkloadError, TypeError) as exc:
            raise WorkloadError(f"{where} op {i}: {exc}") from exc
        spans.append((span[0], span[1]))
        instances.append(inst)
    steps = []
    for i, rec in enumerate(data["steps"]):
        _expect_keys(f"{where} step {i}", rec, {"id", "op", "stream", "deps", "compute_s", "sends", "recvs"})
        compute_s = rec["compute_s"]
        if isinstance(compute_s, bool) or not isinstance(compute_s, (int, float)) or not compute_s >= 0:
            raise WorkloadError(f"{where} step {i}: compute_s must be a number >= 0")
        if not isinstance(rec["deps"], list) or not all(isinstance(d, int) for d in rec["deps"]):
            raise WorkloadError(f"{where} step {i}: deps must be a list of step ids")
        steps.append(Step(rec["id"], rec["op"], rec["stream"], tuple(rec["deps"]), float(compute_s),
                          _transfers(f"{where} step {i} sends", rec["sends"]),
                          _transfers(f"{where} step {i} recvs", rec["recvs"])))
    rp = RankPlan(data["rank"], tuple(ops), tuple(spans), tuple(instances), tuple(steps))
    if (rp.bytes_sent, rp.bytes_received) != (data["bytes_sent"], data["bytes_received"]):
        raise WorkloadError(f"{where}: byte totals do not match its steps")
    return rp


def _validate_rank(rp: RankPlan, r: int, n_ranks: int) -> None:
    """Checks that need only this rank: ids, step spans, streams, deps, transfer ends."""
    where = f"plan rank {r}"
    if rp.rank != r:
        raise WorkloadError(f"{where}: rank field is {rp.rank}")
    if len(rp.op_steps) != len(rp.ops) or len(rp.op_instance) != len(rp.ops):
        raise WorkloadError(f"{where}: ops, op_steps and op_instance differ in length")
    for i, (first, last) in enumerate(rp.op_steps):
        if not (0 <= first <= last < len(rp.steps)) or any(rp.steps[s].op != i for s in range(first, last + 1)):
            raise WorkloadError(f"{where} op {i}: step span {first}..{last} is not its steps")
    for i, step in enumerate(rp.steps):
        if step.id != i or step.stream not in STREAMS or not 0 <= step.op < len(rp.ops):
            raise WorkloadError(f"{where} step {i}: bad id, op or stream {step.stream!r}")
        if any(not 0 <= d < i for d in step.deps):
            raise WorkloadError(f"{where} step {i}: deps {list(step.deps)} must be earlier steps")
        if not math.isfinite(step.compute_s):
            raise WorkloadError(f"{where} step {i}: compute_s must be finite")
        for t in (*step.sends, *step.recvs):
            if not 0 <= t.peer < n_ranks or t.peer == r or t.size_bytes < 1:
                raise WorkloadError(f"{where} step {i}: bad transfer {t}")


def _validate(plan: Plan) -> None:
    if len(plan.ranks) != plan.n_ranks:
        raise WorkloadError(f"plan has {len(plan.ranks)} ranks but n_ranks is {plan.n_ranks}")
    ends: dict[int, list[tuple[int, int, int]]] = defaultdict(list)  # xfer -> (sender, receiver, size)
    for r, rp in enumerate(plan.ranks):
        _validate_rank(rp, r, plan.n_ranks)
        for step in rp.steps:
            for t in step.sends:
                ends[t.xfer].append((r, t.peer, t.size_bytes))
            for t in step.recvs:
                ends[t.xfer].append((t.peer, r, t.size_bytes))
    for xfer, seen in ends.items():
        if len(seen) != 2 or seen[0] != seen[1]:
            raise WorkloadError(f"plan: transfer {xfer} must appear once as a send and once as the "
                                f"matching receive, found {seen}")


def save_plan(plan: Plan, path: str | os.PathLike) -> None:
    """Write the plan as JSON Lines: the header, then one line per rank (rank order)."""
    lines = [json.dumps(plan.header(), allow_nan=False)]
    lines += [json.dumps(_rank_to_dict(rp), separators=(",", ":"), allow_nan=False) for rp in plan.ranks]
    atomic_write(path, "\n".join(lines) + "\n")


def _plan_lines(path: str | os.PathLike) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{path}: cannot read plan: {exc}") from exc
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _parse_line(path: str | os.PathLike, lines: list[str], index: int) -> Any:
    try:
        return parse_json_strict(lines[index])
    except ValueError as exc:
        raise WorkloadError(f"{path}:{index + 1}: not valid JSON: {exc}") from exc


def load_plan(path: str | os.PathLike) -> Plan:
    """Read and fully validate a plan written by :func:`save_plan`; errors name the file."""
    lines = _plan_lines(path)
    if not lines:
        raise WorkloadError(f"{path}: empty plan file")
    try:
        header = _check_header(_parse_line(path, lines, 0))
        ranks = [_parse_line(path, lines, i) for i in range(1, len(lines))]
        return Plan.from_dict({**header, "ranks": ranks})
    except WorkloadError as exc:
        raise WorkloadError(f"{path}: {exc}") from exc


class RankPlanFile(NamedTuple):
    """What :func:`load_rank_plan` returns: the header, one rank, the file's SHA-256."""

    header: dict[str, Any]
    rank_plan: RankPlan
    sha256: bytes


def load_rank_plan(path: str | os.PathLike, rank: int) -> RankPlanFile:
    """Read only the header and one rank of a plan file (what a replay agent needs).

    One streaming pass that also hashes the whole file, so memory does not grow with
    the other ranks. Checks that rank alone; cross-rank consistency is what
    :func:`load_plan` (and ``expand``) check, and the agents compare the file hashes
    in their handshake.
    """
    digest = hashlib.sha256()
    wanted = None
    try:
        with open(path, "rb") as stream:
            first = stream.readline()
            digest.update(first)
            if not first.strip():
                raise WorkloadError("empty plan file")
            header = _check_header(_parse_line(path, [first.decode("utf-8")], 0))
            if not 0 <= rank < header["n_ranks"]:
                raise WorkloadError(f"rank {rank} is not a rank of the plan (0..{header['n_ranks'] - 1})")
            count = 0
            for index, line in enumerate(stream):
                digest.update(line)
                count += 1
                if index == rank:
                    wanted = line
        if count != header["n_ranks"] or wanted is None:
            raise WorkloadError(f"{count} rank lines but n_ranks is {header['n_ranks']}")
        try:
            record = parse_json_strict(wanted.decode("utf-8"))
        except ValueError as exc:
            raise WorkloadError(f"line {rank + 2}: not valid JSON: {exc}") from exc
        rp = _rank_from_dict(rank, record)
        _validate_rank(rp, rank, header["n_ranks"])
        return RankPlanFile(header, rp, digest.digest())
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{path}: cannot read plan: {exc}") from exc
    except WorkloadError as exc:
        raise WorkloadError(f"{path}: {exc}") from exc
