"""The workload model: per-rank graphs of compute, collective and point-to-point ops.

A :class:`Workload` holds, for every rank, a tuple of operations in program order.
An operation's id is its index in that tuple; ``deps`` name earlier ops of the same
rank that must finish before it starts. Compute ops run on the rank's compute stream
and communication ops (collectives, send, recv) on its communication stream, each
stream one op at a time in program order, as CUDA streams do on a GPU; so a
collective overlaps compute exactly where the dependencies allow it.

Every rank in a collective's ``group`` must issue the same sequence of collectives
on that group (same kind, size, algorithm and root), and the k-th send from a to b
must match the k-th receive at b from a in size; the constructor checks both, so a
Workload that exists can be expanded and replayed.

Units: ``duration_s`` seconds, ``size_bytes`` bytes (per collective, in the
nccl-tests convention described in :mod:`testbed.workload.schedules`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Union

from testbed.workload.errors import WorkloadError
from testbed.workload.schedules import COLLECTIVE_KINDS, DEFAULT_ALGORITHM, SCHEDULES, algorithms_for


def _check_int(what: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkloadError(f"{what} must be an integer, got {value!r}")
    if value < minimum:
        raise WorkloadError(f"{what} must be >= {minimum}, got {value}")
    return value


def _check_float(what: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WorkloadError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise WorkloadError(f"{what} must be finite and >= {minimum}, got {value}")
    return float(value)


def _int_tuple(what: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise WorkloadError(f"{what} must be a list of integers, got {value!r}")
    return tuple(_check_int(f"{what} entry", v, 0) for v in value)


@dataclass(frozen=True, kw_only=True)
class _OpBase:
    deps: tuple[int, ...] = ()
    iteration: int = 0
    name: str = ""

    def _check_common(self) -> None:
        object.__setattr__(self, "deps", _int_tuple("deps", self.deps))
        _check_int("iteration", self.iteration, 0)
        if not isinstance(self.name, str):
            raise WorkloadError(f"name must be a string, got {self.name!r}")


@dataclass(frozen=True, kw_only=True)
class Compute(_OpBase):
    """Busy time on the rank's compute stream (replayed as a sleep)."""

    duration_s: float = 0.0
    type: ClassVar[str] = "compute"

    def __post_init__(self) -> None:
        self._check_common()
        object.__setattr__(self, "duration_s", _check_float("duration_s", self.duration_s))


@dataclass(frozen=True, kw_only=True)
class Collective(_OpBase):
    """A collective over ``group`` (ranks in ring order); ``root`` defaults to group[0]."""

    kind: str = "all_reduce"
    size_bytes: int = 1
    group: tuple[int, ...] = ()
    algorithm: str = ""
    root: int | None = None
    type: ClassVar[str] = "collective"

    def __post_init__(self) -> None:
        self._check_common()
        if self.kind not in COLLECTIVE_KINDS:
            raise WorkloadError(
                f"unknown collective kind {self.kind!r}; known: {', '.join(COLLECTIVE_KINDS)}"
            )
        algorithm = self.algorithm or DEFAULT_ALGORITHM[self.kind]
        if (self.kind, algorithm) not in SCHEDULES:
            raise WorkloadError(
                f"algorithm {algorithm!r} is not available for {self.kind}; "
                f"available: {', '.join(algorithms_for(self.kind))}"
            )
        object.__setattr__(self, "algorithm", algorithm)
        _check_int("size_bytes", self.size_bytes, 1)
        group = _int_tuple("group", self.group)
        if len(group) < 2 or len(set(group)) != len(group):
            raise WorkloadError(f"group must list at least 2 distinct ranks, got {list(group)}")
        object.__setattr__(self, "group", group)
        root = group[0] if self.root is None else _check_int("root", self.root, 0)
        if root not in group:
            raise WorkloadError(f"root {root} is not in the group {list(group)}")
        object.__setattr__(self, "root", root)

    def signature(self) -> tuple:
        """What every member of the group must agree on."""
        return (self.kind, self.size_bytes, self.algorithm, self.root)


@dataclass(frozen=True, kw_only=True)
class Send(_OpBase):
    """Send ``size_bytes`` to rank ``peer`` (matched with the peer's Recv in order)."""

    peer: int = 0
    size_bytes: int = 1
    type: ClassVar[str] = "send"

    def __post_init__(self) -> None:
        self._check_common()
        _check_int("peer", self.peer, 0)
        _check_int("size_bytes", self.size_bytes, 1)


@dataclass(frozen=True, kw_only=True)
class Recv(_OpBase):
    """Receive ``size_bytes`` from rank ``peer``."""

    peer: int = 0
    size_bytes: int = 1
    type: ClassVar[str] = "recv"

    def __post_init__(self) -> None:
        self._check_common()
        _check_int("peer", self.peer, 0)
        _check_int("size_bytes", self.size_bytes, 1)


Op = Union[Compute, Collective, Send, Recv]
OP_TYPES: dict[str, type] = {cls.type: cls for cls in (Compute, Collective, Send, Recv)}


@dataclass(frozen=True)
class Workload:
    """A GPU job as per-rank op graphs.

    Parameters
    ----------
    n_ranks : int
        Number of ranks (compute satellites), >= 1.
    ops : sequence of sequences of Op, shape (n_ranks, ops of that rank)
        ``ops[r][i]`` is op ``i`` of rank ``r``; deps refer to smaller ids.
    iterations : int
        Number of training steps (or generated tokens); each op's ``iteration``
        is in ``range(iterations)``.
    meta : mapping
        JSON-serialisable provenance: ``source`` and ``parameters`` at least.
    """

    n_ranks: int
    ops: tuple[tuple[Op, ...], ...]
    iterations: int = 1
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_int("n_ranks", self.n_ranks, 1)
        _check_int("iterations", self.iterations, 1)
        ops = tuple(tuple(rank_ops) for rank_ops in self.ops)
        if len(ops) != self.n_ranks:
            raise WorkloadError(f"ops lists {len(ops)} ranks but n_ranks is {self.n_ranks}")
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "meta", dict(self.meta))
        for rank, rank_ops in enumerate(ops):
            for op_id, op in enumerate(rank_ops):
                self._check_op(rank, op_id, op)
        self._check_matching()

    def _check_op(self, rank: int, op_id: int, op: Op) -> None:
        try:
            self._check_op_context(rank, op_id, op)
        except WorkloadError as exc:
            exc.location = (rank, op_id)  # lets file readers name the line
            raise

    def _check_op_context(self, rank: int, op_id: int, op: Op) -> None:
        where = f"rank {rank} op {op_id}"
        if not isinstance(op, tuple(OP_TYPES.values())):
            raise WorkloadError(f"{where}: not an op: {op!r}")
        for dep in op.deps:
            if dep >= op_id:
                raise WorkloadError(f"{where}: dependency {dep} is not an earlier op of rank {rank}")
        if len(set(op.deps)) != len(op.deps):
            raise WorkloadError(f"{where}: repeated dependency in {list(op.deps)}")
        if op.iteration >= self.iterations:
            raise WorkloadError(f"{where}: iteration {op.iteration} >= iterations {self.iterations}")
        if isinstance(op, Collective):
            bad = [r for r in op.group if r >= self.n_ranks]
            if bad:
                raise WorkloadError(f"{where}: group ranks {bad} out of range 0..{self.n_ranks - 1}")
            if rank not in op.group:
                raise WorkloadError(f"{where}: rank {rank} is not in its collective's group {list(op.group)}")
        elif isinstance(op, (Send, Recv)):
            if op.peer >= self.n_ranks or op.peer == rank:
                raise WorkloadError(f"{where}: bad peer {op.peer} for {op.type}")

    def _check_matching(self) -> None:
        coll: dict[tuple[int, ...], dict[int, list[tuple]]] = defaultdict(lambda: defaultdict(list))
        sent: dict[tuple[int, int], list[int]] = defaultdict(list)
        received: dict[tuple[int, int], list[int]] = defaultdict(list)
        for rank, rank_ops in enumerate(self.ops):
            for op in rank_ops:
                if isinstance(op, Collective):
                    coll[op.group][rank].append(op.signature())
                elif isinstance(op, Send):
                    sent[(rank, op.peer)].append(op.size_bytes)
                elif isinstance(op, Recv):
                    received[(op.peer, rank)].append(op.size_bytes)
        for group, by_rank in coll.items():
            ref_rank = group[0]
            ref = by_rank.get(ref_rank, [])
            for member in group:
                mine = by_rank.get(member, [])
                if mine == ref:
                    continue
                for k, (a, b) in enumerate(zip(ref, mine)):
                    if a != b:
                        raise WorkloadError(
                            f"collective #{k} on group {list(group)} differs: rank {ref_rank} has "
                            f"{_describe(a)}, rank {member} has {_describe(b)}"
                        )
                raise WorkloadError(
                    f"group {list(group)}: rank {ref_rank} issues {len(ref)} collectives "
                    f"but rank {member} issues {len(mine)}"
                )
        for pair in sorted(set(sent) | set(received)):
            if sent.get(pair, []) != received.get(pair, []):
                a, b = pair
                raise WorkloadError(
                    f"sends from rank {a} to rank {b} {sent.get(pair, [])} do not match "
                    f"receives posted by rank {b} {received.get(pair, [])} (sizes in bytes, in order)"
                )

    def scaled(self, rate_scale: float) -> "Workload":
        """Multiply every byte count by ``rate_scale`` (>= 1 byte each); times unchanged.

        docs/architecture.md: link rates are scaled by rate_scale and so are workload bytes,
        so transfer times stay those of the real system.
        """
        rate_scale = _check_float("rate_scale", rate_scale)
        if rate_scale <= 0:
            raise WorkloadError(f"rate_scale must be > 0, got {rate_scale}")

        def scale(op: Op) -> Op:
            if isinstance(op, Compute):
                return op
            return dataclasses.replace(op, size_bytes=max(1, round(op.size_bytes * rate_scale)))

        meta = dict(self.meta)
        meta["rate_scale"] = float(meta.get("rate_scale", 1.0)) * rate_scale
        return Workload(
            n_ranks=self.n_ranks,
            ops=tuple(tuple(scale(op) for op in rank_ops) for rank_ops in self.ops),
            iterations=self.iterations,
            meta=meta,
        )


def _describe(signature: tuple) -> str:
    kind, size_bytes, algorithm, root = signature
    return f"{kind} of {size_bytes} B ({algorithm}, root {root})"


def op_to_dict(op: Op) -> dict[str, Any]:
    """The op's fields as a JSON-ready dict, ``type`` first (used by JSONL and plans)."""
    record: dict[str, Any] = {"type": op.type}
    common = [f.name for f in dataclasses.fields(_OpBase)]
    own = [f.name for f in dataclasses.fields(op) if f.name not in common]
    for name in own + common:
        value = getattr(op, name)
        record[name] = list(value) if isinstance(value, tuple) else value
    return record


def op_from_dict(record: Mapping[str, Any]) -> Op:
    """Inverse of :func:`op_to_dict`; unknown or missing keys raise WorkloadError."""
    op_type = record.get("type")
    cls = OP_TYPES.get(op_type)  # type: ignore[arg-type]
    if cls is None:
        raise WorkloadError(f"unknown op type {op_type!r}; known: {', '.join(OP_TYPES)}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(record) - names - {"type"})
    if unknown:
        raise WorkloadError(f"unknown key(s) {unknown} for a {op_type} op; allowed: {sorted(names)}")
    required = {"compute": {"duration_s"}, "collective": {"kind", "size_bytes", "group"},
                "send": {"peer", "size_bytes"}, "recv": {"peer", "size_bytes"}}[op_type]
    missing = sorted(required - set(record))
    if missing:
        raise WorkloadError(f"{op_type} op is missing {missing}")
    return cls(**{k: v for k, v in record.items() if k != "type"})
