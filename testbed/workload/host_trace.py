"""PyTorch execution traces (Chakra host trace JSON) -> Chakra ``Node`` messages.

A host trace is a call tree: every node names its caller in ``ctrl_deps``; the roots
are the per-thread nodes ``[pytorch|profiler|execution_trace|thread]``; node ids grow
in call order. Replay needs execution order instead, so :func:`host_trace_nodes` walks
each root's tree depth-first, children in id order, and makes every CPU node depend on
the CPU node visited before it (plus its ``inter_thread_dep``), and every GPU kernel
(a node with ``cat``) on the node that launched it. Types: ``process_group:init`` ->
METADATA_NODE; a GPU kernel named ``ncclKernel*`` / ``ncclDevKernel*`` -> COMM_COLL_NODE
(``comm_type`` from the name, ``comm_size`` from the input tensors, bytes); everything
else -> COMP_NODE of ``exclusive_dur`` microseconds (0 when absent; ``Optimizer.step``
is zeroed because its exclusive time covers the whole step). Nodes that end up with no
dependency in either direction are dropped. ``sync_dep`` is not used.

This follows the conversion rules of MLCommons Chakra's PyTorch converter, written
here so that reading a trace needs only ``protobuf``; what the caller maps from the
result is in :func:`testbed.workload.chakra.load_pytorch_host_trace`.
"""

from __future__ import annotations

import re
from typing import Any

from testbed.workload.errors import WorkloadError
from testbed.workload.etfile import schema

#: Schemas whose node layout this reader knows (``<pytorch ET>-chakra.0.0.4``).
SCHEMA_RE = re.compile(r"^\d+\.\d+\.\d+-chakra\.0\.0\.4$")
ROOT_NAMES = frozenset({"[pytorch|profiler|execution_trace|thread]", "[pytorch|profiler|execution_graph|thread]"})

#: Bytes per element of the tensor types a trace names (``Tensor(<type>)``).
ELEMENT_BYTES = {
    "float32": 4, "float": 4, "float64": 8, "double": 8, "float16": 2, "half": 2, "bfloat16": 2,
    "c10::Half": 2, "c10::BFloat16": 2, "complex64": 8, "complex128": 16, "uint8": 1, "unsigned char": 1,
    "int8": 1, "int16": 2, "short": 2, "int32": 4, "int": 4, "int64": 8, "long": 8, "long int": 8, "bool": 1,
}
_COLLECTIVE_WORDS = (("allreduce", "ALL_REDUCE"), ("alltoall", "ALL_TO_ALL"), ("allgather", "ALL_GATHER"),
                     ("reducescatter", "REDUCE_SCATTER"), ("broadcast", "BROADCAST"))


def tensor_bytes(raw: dict[str, Any], where: str) -> int:
    """Total bytes of the tensor inputs of one raw trace node.

    A tensor value is ``[tensor_id, storage_id, offset, n_elements, element_bytes,
    device]``; ``GenericList[Tensor(...)]`` inputs hold a list of such values.
    """
    total = 0
    inputs = raw.get("inputs") or {}
    for value, kind in zip(inputs.get("values", []), inputs.get("types", [])):
        if not isinstance(kind, str) or "Tensor" not in kind:
            continue
        tensors = value if kind.startswith("GenericList[Tensor") else [value]
        for tensor in tensors:
            if not (isinstance(tensor, list) and len(tensor) >= 5 and all(isinstance(x, int) for x in tensor[3:5])):
                raise WorkloadError(f"{where}: input of type {kind} is not a tensor record: {tensor!r}")
            total += tensor[3] * tensor[4]
    return total


def _collective_type(name: str, pb: Any, where: str) -> int:
    normal = name.replace("_", "").replace("-", "").lower()
    for word, enum_name in _COLLECTIVE_WORDS:
        if word in normal:
            return getattr(pb, enum_name)
    raise WorkloadError(f"{where}: GPU kernel {name!r}: cannot tell which collective it is from its name")


def _node_type(raw: dict[str, Any], pb: Any, where: str) -> int:
    name = raw["name"]
    if "process_group:init" in name:
        return pb.METADATA_NODE
    if raw.get("cat") is not None and ("ncclKernel" in name or "ncclDevKernel" in name):
        if "SendRecv" in name:
            raise WorkloadError(f"{where}: GPU kernel {name!r}: point-to-point NCCL kernels are not supported")
        return pb.COMM_COLL_NODE
    return pb.COMP_NODE


def _check(trace: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(trace, dict) or not isinstance(trace.get("nodes"), list):
        raise WorkloadError(f"{path}: not a PyTorch execution trace (no 'nodes' list)")
    schema_name = trace.get("schema")
    if not isinstance(schema_name, str) or not SCHEMA_RE.match(schema_name):
        raise WorkloadError(f"{path}: unsupported trace schema {schema_name!r} "
                            "(supported: <pytorch>-chakra.0.0.4, e.g. 1.0.2-chakra.0.0.4)")
    seen: set[int] = set()
    for i, raw in enumerate(trace["nodes"]):
        if not (isinstance(raw, dict) and isinstance(raw.get("id"), int) and isinstance(raw.get("name"), str)
                and isinstance(raw.get("inputs"), dict) and isinstance(raw["inputs"].get("values"), list)):
            raise WorkloadError(f"{path}: nodes[{i}] needs an integer 'id', a string 'name' and 'inputs.values'")
        if raw["id"] in seen:
            raise WorkloadError(f"{path}: nodes[{i}]: duplicate node id {raw['id']}")
        seen.add(raw["id"])
    return trace["nodes"]


def host_trace_nodes(trace: Any, path: str) -> list[Any]:
    """Chakra ``Node`` messages (sorted by id) for a parsed host trace.

    ``path`` only names the trace in error messages. Each node keeps the trace's
    ``id`` and ``name`` and gets ``type``, ``duration_micros``, ``data_deps`` and, for
    collectives, the attributes ``comm_type`` and ``comm_size``.
    """
    pb = schema()
    raw_nodes = _check(trace, path)
    by_id = {raw["id"]: raw for raw in raw_nodes}
    children: dict[int, list[int]] = {nid: [] for nid in by_id}
    for raw in raw_nodes:
        if raw.get("ctrl_deps") in by_id:
            children[raw["ctrl_deps"]].append(raw["id"])

    def is_gpu(nid: int) -> bool:
        return by_id[nid].get("cat") is not None

    # Host nodes become nodes; a GPU kernel only under a host caller that is one.
    kept: dict[int, Any] = {}
    for raw in raw_nodes:
        if is_gpu(raw["id"]):
            continue
        for nid in [raw["id"], *(c for c in children[raw["id"]] if is_gpu(c))]:
            node_raw, where = by_id[nid], f"{path}: node {nid}"
            node = pb.Node(id=nid, name=node_raw["name"], type=_node_type(node_raw, pb, where))
            duration = node_raw.get("exclusive_dur") or 0
            node.duration_micros = 0 if "Optimizer.step" in node.name else int(duration)
            if node.type == pb.COMM_COLL_NODE:
                node.attr.add(name="comm_type", int64_val=_collective_type(node.name, pb, where))
                node.attr.add(name="comm_size", int64_val=tensor_bytes(node_raw, where))
            kept[nid] = node

    deps: dict[int, list[int]] = {nid: [] for nid in kept}
    for root in sorted(nid for nid, raw in by_id.items() if raw["name"] in ROOT_NAMES and nid in kept):
        last_host: int | None = None
        last_any: int | None = None
        stack, visited = [root], set()
        while stack:
            nid = stack.pop()
            if nid in visited:
                continue
            visited.add(nid)
            if is_gpu(nid):
                if last_any is not None:
                    deps[nid].append(last_any)
                last_any = last_host
            else:
                other = by_id[nid].get("inter_thread_dep")
                for dep in (other, last_host):
                    if dep is not None and dep in kept and dep not in deps[nid]:
                        deps[nid].append(dep)
                last_host = last_any = nid
            stack.extend(c for c in sorted(children[nid], reverse=True) if c in kept and c not in visited)

    depended_on = {dep for ds in deps.values() for dep in ds}
    out = []
    for nid in sorted(kept):
        if deps[nid] or nid in depended_on:
            kept[nid].data_deps.extend(deps[nid])
            out.append(kept[nid])
    return out
