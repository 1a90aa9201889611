"""PyTorch host traces -> Chakra nodes (testbed.workload.host_trace), and the .et framing.

The conversion is checked against MLCommons' own converter (mlc-chakra's
PyTorchConverter) where that package is installed: both must give the same nodes,
types, durations, dependencies and collective attributes.
"""

import importlib.util
import json
import subprocess
import sys

import pytest

from testbed.workload import Collective, WorkloadError, etfile, load_pytorch_host_trace
from testbed.workload.host_trace import host_trace_nodes

from conftest import DATA

HOST_TRACE = DATA / "chakra" / "pytorch-host-trace-1.0.2-chakra.0.0.4.json"
F32 = "Tensor(float)"
ATTRS = ("rf_id", "fw_parent", "seq_id", "scope", "tid", "fw_tid")  # PyTorch ET node attributes


def node(nid, name, parent, *, dur=None, cat=None, tensors=(), **extra):
    raw = {"id": nid, "name": name, "ctrl_deps": parent,
           "inputs": {"values": [list(t) for t in tensors], "shapes": [[t[3]] for t in tensors],
                      "types": [F32] * len(tensors)},
           "outputs": {"values": [], "shapes": [], "types": []},
           "attrs": [{"name": key, "type": "uint64", "value": 0} for key in ATTRS] +
                    [{"name": "op_schema", "type": "string", "value": ""}], **extra}
    if dur is not None:
        raw["exclusive_dur"] = dur
    if cat is not None:
        raw["cat"] = cat
    return raw


def device_trace():
    """Two threads, a GPU all-reduce kernel of 256 floats, durations, an inter-thread dependency."""
    grad = (11, 12, 0, 256, 4, "cuda:0")
    return {"schema": "1.0.2-chakra.0.0.4", "pid": 1, "time": "2024-01-01 00:00:00", "start_ts": 0,
            "finish_ts": 100, "nodes": [
                node(2, "[pytorch|profiler|execution_trace|thread]", 1),
                node(3, "aten::mm", 2, dur=50),
                node(4, "c10d::allreduce_", 2, dur=5),
                dict(node(5, "record_param_comms", 4, dur=1),  # its last input: the process group size
                     inputs={"values": [1, 0, "0", 0, "allreduce", [], [], 2], "shapes": [[]] * 8,
                             "types": ["Int", "Int", "String", "Int", "String", "GenericList[]", "GenericList[]",
                                       "Int"]}),
                node(6, "ncclDevKernel_AllReduce_Sum_f32_RING_LL", 5, dur=300, cat="kernel", tensors=[grad]),
                node(7, "aten::add", 2, dur=20),
                node(8, "Optimizer.step#SGD.step", 2, dur=1000),
                node(9, "[pytorch|profiler|execution_trace|thread]", 1),
                node(10, "aten::mul", 9, dur=7, inter_thread_dep=7),
                node(11, "aten::lonely", 99, dur=3),  # no caller in the trace: dangling, dropped
            ]}


def summary(nodes):
    return [(n.id, n.name, n.type, n.duration_micros, sorted(n.data_deps),
             sorted((a.name, a.int64_val) for a in n.attr if a.name in ("comm_type", "comm_size")))
            for n in sorted(nodes, key=lambda n: n.id)]


def test_device_trace_order_types_and_sizes():
    nodes = {n.id: n for n in host_trace_nodes(device_trace(), "t.json")}
    assert 11 not in nodes
    assert nodes[6].type == etfile.schema().COMM_COLL_NODE
    assert {a.name: a.int64_val for a in nodes[6].attr} == {"comm_type": etfile.schema().ALL_REDUCE,
                                                           "comm_size": 256 * 4}
    # depth first in id order: 2 -> 3 -> 4 -> 5 -> (kernel 6 after its launcher 5) ; 7 after 5
    assert [list(nodes[i].data_deps) for i in (3, 4, 5, 6, 7, 8)] == [[2], [3], [4], [5], [5], [7]]
    assert list(nodes[10].data_deps) == [7, 9]  # inter-thread dependency first, then its own thread
    assert nodes[8].duration_micros == 0  # Optimizer.step's exclusive time is the whole step


def test_device_trace_as_a_workload(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(device_trace()))
    w = load_pytorch_host_trace(path)
    ops = w.ops[0]
    assert [type(op).__name__ for op in ops] == ["Compute"] * 3 + ["Collective"] + ["Compute"] * 2
    assert ops[3].kind == "all_reduce" and ops[3].size_bytes == 1024 and ops[3].group == (0, 1)
    assert ops[3].deps == (2,)  # after record_param_comms, which launched it
    assert [op.duration_s for op in ops if not isinstance(op, Collective)] == [50e-6, 5e-6, 1e-6, 20e-6, 7e-6]
    assert w.meta["conversion"]["collectives_typed_by_converter"] == 1


@pytest.mark.parametrize("damage, words", [
    (lambda t: t.update(schema="2.0.0-chakra.1.0.0"), "unsupported trace schema"),
    (lambda t: t["nodes"].append(dict(t["nodes"][1])), "duplicate node id 3"),
    (lambda t: t["nodes"][1].pop("inputs"), r"nodes\[1\] needs an integer 'id', a string 'name' and 'inputs.values'"),
    (lambda t: t["nodes"][4].update(name="ncclDevKernel_Mystery"), "cannot tell which collective"),
    (lambda t: t["nodes"][4]["inputs"]["values"].__setitem__(0, "oops"), "not a tensor record"),
])
def test_bad_traces_are_named(tmp_path, damage, words):
    trace = device_trace()
    damage(trace)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(trace))
    with pytest.raises(WorkloadError, match=words) as err:
        load_pytorch_host_trace(path)
    assert str(path) in str(err.value)


def _has_reference_converter() -> bool:
    """mlc-chakra's converter importable (not just a ``chakra`` folder an uninstall left behind)."""
    try:
        return importlib.util.find_spec("chakra.src.converter.pytorch_converter") is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.skipif(not _has_reference_converter(),
                    reason="mlc-chakra (the reference converter) is not installed")
@pytest.mark.parametrize("which", ["shipped", "device"])
def test_same_nodes_as_mlcommons_converter(tmp_path, which):
    source = HOST_TRACE
    if which == "device":
        source = tmp_path / "device.json"
        source.write_text(json.dumps(device_trace()))
    out = tmp_path / "reference.et"
    # In a child process: its generated schema module and ours may not share a descriptor pool.
    subprocess.run([sys.executable, "-c",
                    "import sys; from chakra.src.converter.pytorch_converter import PyTorchConverter as C; "
                    "C().convert(sys.argv[1], sys.argv[2], False)", str(source), str(out)],
                   check=True, capture_output=True, timeout=120)
    _, reference = etfile.read_et(out)
    ours = host_trace_nodes(json.loads(source.read_text()), str(source))
    assert summary(ours) == summary(reference)


def test_et_framing_round_trip_and_gzip(tmp_path):
    import gzip

    pb = etfile.schema()
    nodes = [pb.Node(id=i, name="n" * (200 * i), type=pb.COMP_NODE, duration_micros=i) for i in range(1, 4)]
    path = tmp_path / "x.0.et"
    etfile.write_et(path, pb.GlobalMetadata(version="0.0.4"), nodes)  # 400+ bytes: 2-byte length prefixes
    meta, back = etfile.read_et(path)
    assert meta.version == "0.0.4" and [n.name for n in back] == [n.name for n in nodes]
    zipped = tmp_path / "z.0.et"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    assert [n.duration_micros for n in etfile.read_et(zipped)[1]] == [1, 2, 3]
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(WorkloadError, match="x.0.et: truncated: message 3"):
        etfile.read_et(path)
