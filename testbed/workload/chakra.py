"""Chakra execution traces (MLCommons) -> Workload.

``load_chakra`` reads ``<prefix>.<rank>.et`` files, one per rank: a length-prefixed
stream of one ``GlobalMetadata`` and then ``Node`` messages (:mod:`.etfile`, decoded
with the vendored generated protobuf classes of the Chakra schema). Node mapping:

- ``COMM_COLL_NODE`` -> Collective over all ranks (attribute ``comm_type``:
  ALL_REDUCE, ALL_GATHER, REDUCE_SCATTER(_BLOCK), ALL_TO_ALL, BROADCAST; REDUCE,
  GATHER, SCATTER and BARRIER are not supported; ``comm_size`` bytes).
  ``comm_size`` of an all-gather is each rank's *input* (ASTRA-sim's Ring: msg_size
  = data_size, final_data_size = data_size * nodes), so it is multiplied by the
  number of ranks to get the nccl-tests size this package uses.
- ``COMM_SEND_NODE`` / ``COMM_RECV_NODE`` -> Send / Recv (``comm_dst`` / ``comm_src``).
- ``COMP_NODE``, ``MEM_LOAD_NODE``, ``MEM_STORE_NODE`` -> Compute of
  ``duration_micros``; zero-duration ones and ``METADATA_NODE`` are dropped, their
  dependencies passed through.
- Dependencies: ``data_deps`` (the execution order the Chakra converter encodes).

Collective algorithms are not in the traces: ``algorithm`` (default: ring for
all-reduce, all-gather and reduce-scatter, direct for all-to-all, tree for broadcast).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import re
from pathlib import Path
from typing import Any, Callable

from testbed.workload.errors import WorkloadError
from testbed.workload.etfile import read_et as _read_et
from testbed.workload.etfile import schema as _schema
from testbed.workload.host_trace import host_trace_nodes, tensor_bytes
from testbed.workload.model import Collective, Compute, Op, Recv, Send, Workload

log = logging.getLogger(__name__)

_ET_NAME = re.compile(r"^(?P<prefix>.+)\.(?P<rank>\d+)\.et$")
_COMM_KIND = {0: "all_reduce", 2: "all_gather", 7: "reduce_scatter", 8: "reduce_scatter",
              6: "all_to_all", 5: "broadcast"}  # CollectiveCommType values of et_def.proto
_UNSUPPORTED_COMM = {1: "REDUCE", 3: "GATHER", 4: "SCATTER", 9: "BARRIER"}


def _attrs(node: Any) -> dict[str, Any]:
    out = {}
    for attr in node.attr:
        which = attr.WhichOneof("value")
        out[attr.name] = getattr(attr, which) if which else None
    return out


def _topological(nodes: list[Any], where: Path) -> list[Any]:
    """Nodes ordered so that data_deps come first (stable by file order)."""
    by_id: dict[int, Any] = {}
    for node in nodes:
        if node.id in by_id:
            raise WorkloadError(f"{where}: duplicate node id {node.id}")
        by_id[node.id] = node
    indegree = {node.id: 0 for node in nodes}
    children: dict[int, list[int]] = {node.id: [] for node in nodes}
    for node in nodes:
        for dep in node.data_deps:
            if dep not in by_id:
                raise WorkloadError(f"{where}: node {node.id} ({node.name!r}) depends on missing node {dep}")
            indegree[node.id] += 1
            children[dep].append(node.id)
    position = {node.id: i for i, node in enumerate(nodes)}
    ready = [(position[i], i) for i, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, nid = heapq.heappop(ready)
        order.append(by_id[nid])
        for child in children[nid]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, (position[child], child))
    if len(order) != len(nodes):
        raise WorkloadError(f"{where}: the data_deps of the trace form a cycle")
    return order


def _convert_rank(nodes: list[Any], n_ranks: int, where: Path, algorithm: str | None,
                  recover: Callable[[Any], Collective | None] | None = None) -> list[Op]:
    """Map one rank's Chakra nodes to ops; dropped nodes pass their deps through."""
    et_def_pb2 = _schema()
    group = tuple(range(n_ranks))
    ops: list[Op] = []
    carried: dict[int, frozenset[int]] = {}  # node id -> op ids it stands for

    for node in _topological(nodes, where):
        deps = frozenset().union(*(carried[d] for d in node.data_deps)) if node.data_deps else frozenset()
        op = _node_to_op(node, et_def_pb2, group, where, algorithm, recover)
        if op is None:
            carried[node.id] = deps
            continue
        ops.append(_with_deps(op, tuple(sorted(deps))))
        carried[node.id] = frozenset({len(ops) - 1})
    return ops


def _with_deps(op: Op, deps: tuple[int, ...]) -> Op:
    return dataclasses.replace(op, deps=deps)


def _node_to_op(node: Any, pb: Any, group: tuple[int, ...], where: Path, algorithm: str | None,
                recover: Callable[[Any], Collective | None] | None) -> Op | None:
    label = f"{where}: node {node.id} ({node.name!r})"
    attrs = _attrs(node)
    if node.type == pb.COMM_COLL_NODE:
        comm_type = attrs.get("comm_type")
        if comm_type in _UNSUPPORTED_COMM:
            raise WorkloadError(f"{label}: unsupported collective type {_UNSUPPORTED_COMM[comm_type]} "
                                f"(comm_type={comm_type}); supported: {sorted(set(_COMM_KIND.values()))}")
        if comm_type not in _COMM_KIND:
            raise WorkloadError(f"{label}: unknown collective type comm_type={comm_type!r}; "
                                f"supported: {sorted(set(_COMM_KIND.values()))}")
        kind = _COMM_KIND[comm_type]
        size = _comm_size(attrs, label)
        if kind == "all_gather":
            size *= len(group)
        try:
            return Collective(kind=kind, size_bytes=size, group=group, algorithm=algorithm or "", name=node.name)
        except WorkloadError as exc:
            raise WorkloadError(f"{label}: {exc}") from exc
    if node.type in (pb.COMM_SEND_NODE, pb.COMM_RECV_NODE):
        key = "comm_dst" if node.type == pb.COMM_SEND_NODE else "comm_src"
        peer = attrs.get(key)
        if not isinstance(peer, int):
            raise WorkloadError(f"{label}: point-to-point node without integer attribute {key}")
        cls = Send if node.type == pb.COMM_SEND_NODE else Recv
        return cls(peer=peer, size_bytes=_comm_size(attrs, label), name=node.name)
    if node.type in (pb.COMP_NODE, pb.MEM_LOAD_NODE, pb.MEM_STORE_NODE):
        if recover is not None:
            recovered = recover(node)
            if recovered is not None:
                return recovered
        return Compute(duration_s=node.duration_micros / 1e6, name=node.name) if node.duration_micros else None
    if node.type == pb.METADATA_NODE:
        return None
    raise WorkloadError(f"{label}: unknown node type {node.type}")


def _comm_size(attrs: dict[str, Any], label: str) -> int:
    size = attrs.get("comm_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise WorkloadError(f"{label}: needs an integer attribute comm_size >= 1, got {size!r}")
    return size


def _rank_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.et"))
        if not files:
            raise WorkloadError(f"{path}: no .et files in this directory")
    elif path.is_file():
        match = _ET_NAME.match(path.name)
        if not match:
            return [path]
        files = sorted(path.parent.glob(f"{_glob_escape(match['prefix'])}.*.et"))
    else:
        raise WorkloadError(f"{path}: no such file or directory")
    by_rank: dict[int, Path] = {}
    prefixes = set()
    for f in files:
        match = _ET_NAME.match(f.name)
        if not match:
            raise WorkloadError(f"{f}: name must be <prefix>.<rank>.et")
        prefixes.add(match["prefix"])
        by_rank[int(match["rank"])] = f
    if len(prefixes) != 1:
        raise WorkloadError(f"{path}: .et files of several traces mixed: prefixes {sorted(prefixes)}")
    missing = sorted(set(range(len(by_rank))) - set(by_rank))
    if missing:
        raise WorkloadError(f"{path}: rank files must be numbered 0..{len(by_rank) - 1}; missing ranks {missing}")
    return [by_rank[r] for r in range(len(by_rank))]


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def load_chakra(path_or_dir: str | Path, n_ranks: int | None = None, algorithm: str | None = None) -> Workload:
    """Load a Chakra ET trace set (one ``<prefix>.<rank>.et`` per rank).

    Parameters
    ----------
    path_or_dir : path
        The directory holding the rank files, or one of them.
    n_ranks : int, optional
        Expected number of ranks (the compute satellites); a different count in the
        trace raises WorkloadError.
    algorithm : str, optional
        Collective algorithm for every collective (default per kind, see module doc).
    """
    path = Path(path_or_dir)
    files = _rank_files(path)
    if n_ranks is not None and n_ranks != len(files):
        raise WorkloadError(
            f"{path}: the trace has {len(files)} ranks ({files[0].name} .. {files[-1].name}) "
            f"but {n_ranks} are expected (one rank per compute satellite)"
        )
    versions, ops = set(), []
    for f in files:
        metadata, nodes = _read_et(f)
        if not nodes:
            raise WorkloadError(f"{f}: no nodes after the GlobalMetadata (truncated?)")
        versions.add(metadata.version)
        ops.append(_convert_rank(nodes, len(files), f, algorithm))
    meta = {
        "source": "chakra",
        "path": str(path),
        "files": [f.name for f in files],
        "schema_versions": sorted(versions),
        "parameters": {"n_ranks": len(files), "algorithm": algorithm},
    }
    try:
        return Workload(n_ranks=len(files), ops=ops, iterations=1, meta=meta)
    except WorkloadError as exc:
        raise WorkloadError(f"{path}: ranks disagree: {exc}") from exc


def load_pytorch_host_trace(path: str | Path, n_ranks: int | None = None,
                            algorithm: str | None = None) -> Workload:
    """Convert a PyTorch (Chakra host) execution trace into a Workload.

    :func:`.host_trace.host_trace_nodes` turns the JSON call tree into Chakra ``Node``
    messages in execution order (the rules of MLCommons Chakra's PyTorch converter),
    which are then mapped like :func:`load_chakra`. What the conversion cannot map is
    recovered where the trace allows it and always reported, in ``meta["conversion"]["unmapped"]`` and as log warnings:

    - Host-side collectives (``nccl:*`` CPU ops): the converter types collectives
      only from GPU kernel nodes (``ncclKernel``/``ncclDevKernel``) of a host+device
      trace linked by chakra_trace_link; a host-only trace has none, so it types them
      as compute. They are recovered from the trace itself: kind from the name, size
      from the input tensors (:func:`.host_trace.tensor_bytes`), group size
      from the parent ``record_param_comms`` (its last input, the world size).
    - Durations: nodes without ``exclusive_dur`` get 0 and are dropped.
    - ``record_param_comms`` "wait" markers: synchronisation is implicit in replay.

    The trace is one rank's view; every rank replays the same op sequence (SPMD).
    """
    path = Path(path)
    try:
        trace = json.loads(path.read_text(encoding="utf-8"))
        schema, raw_nodes = trace["schema"], trace["nodes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WorkloadError(f"{path}: not a PyTorch execution trace: {exc}") from exc
    nodes = host_trace_nodes(trace, str(path))  # validates the nodes, too
    raw_by_id = {n["id"]: n for n in raw_nodes}

    # World size: the last input of every collective's record_param_comms node.
    world_sizes = {
        n["inputs"]["values"][-1] for n in raw_nodes
        if n.get("name") == "record_param_comms" and len(n["inputs"]["values"]) == 8
        and isinstance(n["inputs"]["values"][-1], int) and n["inputs"]["values"][4] != "wait"
    }
    if len(world_sizes) > 1:
        raise WorkloadError(f"{path}: collectives with different world sizes {sorted(world_sizes)}")
    world = world_sizes.pop() if world_sizes else (n_ranks or 1)
    if n_ranks is not None and n_ranks != world:
        raise WorkloadError(f"{path}: the trace's process group has {world} ranks but {n_ranks} are expected")

    et_def_pb2 = _schema()
    recovered: list[str] = []

    def recover(node: Any) -> Collective | None:
        if not node.name.startswith("nccl:"):
            return None
        raw = raw_by_id.get(node.id)
        kind = _kind_from_name(node.name)
        if raw is None or kind is None or world < 2:
            raise WorkloadError(f"{path}: node {node.id} ({node.name!r}): cannot recover this collective "
                                f"(unknown kind or no record_param_comms world size)")
        size = max(1, tensor_bytes(raw, f"{path}: node {node.id}")) * (world if kind == "all_gather" else 1)
        recovered.append(node.name)
        return Collective(kind=kind, size_bytes=size, group=tuple(range(world)), algorithm=algorithm or "",
                          name=node.name)

    rank_ops = _convert_rank(nodes, world, path, algorithm, recover)
    by_converter = sum(1 for n in nodes if n.type == et_def_pb2.COMM_COLL_NODE)
    unmapped = []
    if recovered:
        unmapped.append(
            f"{len(recovered)} host-side collective op(s) ({', '.join(sorted(set(recovered)))}) were typed "
            "as compute by the converter (it maps collectives only from GPU kernel nodes of a host+device "
            "trace); recovered from the trace: kind from the name, size from the input tensors, "
            f"group of {world} ranks from record_param_comms"
        )
    zero = [n for n in nodes if n.type == et_def_pb2.COMP_NODE and not n.duration_micros
            and not n.name.startswith("nccl:")]
    if zero:
        unmapped.append(f"{len(zero)} compute node(s) have no duration in the trace (no exclusive_dur): "
                        "dropped, their dependencies kept")
    waits = [n for n in raw_nodes if n.get("name") == "record_param_comms"
             and "wait" in n.get("inputs", {}).get("values", [])]
    if waits:
        unmapped.append(f"{len(waits)} record_param_comms 'wait' marker(s) not replayed (the replay waits "
                        "for every transfer anyway)")
    dropped = len(raw_nodes) - len(nodes)
    if dropped:
        unmapped.append(f"{dropped} node(s) dropped by the converter (root/dangling nodes)")
    unmapped.append(f"the trace is one rank's view: all {world} ranks replay the same op sequence")
    for line in unmapped:
        log.warning("%s: %s", path.name, line)

    meta = {
        "source": "pytorch_host_trace",
        "path": str(path),
        "schema": schema,
        "parameters": {"n_ranks": world, "algorithm": algorithm},
        "conversion": {
            "converter": "testbed host_trace (Chakra PyTorch converter rules)",
            "nodes_in": len(raw_nodes),
            "nodes_out": len(nodes),
            "collectives_typed_by_converter": by_converter,
            "collectives_recovered": len(recovered),
            "ops": len(rank_ops),
            "unmapped": unmapped,
        },
    }
    return Workload(n_ranks=world, ops=[rank_ops] * world, iterations=1, meta=meta)


def _kind_from_name(name: str) -> str | None:
    normal = name.split(":", 1)[-1].replace("_", "").replace("-", "").lower()
    for key, kind in (("allreduce", "all_reduce"), ("allgather", "all_gather"),
                      ("reducescatter", "reduce_scatter"), ("alltoall", "all_to_all"),
                      ("broadcast", "broadcast")):
        if key in normal:
            return kind
    return None

