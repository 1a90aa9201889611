"""Chakra execution traces: the shared microbenchmarks, malformed traces, the PyTorch host trace."""

import shutil
from pathlib import Path

import pytest

from testbed.workload import WorkloadError, expand, load_chakra, load_pytorch_host_trace
from testbed.workload import etfile
from testbed.workload.etfile import schema

from conftest import DATA

CHAKRA = DATA / "chakra"
MICRO = ["all_reduce", "all_gather", "reduce_scatter", "all_to_all"]
MIB = 1024 * 1024


@pytest.mark.parametrize("kind", MICRO)
def test_microbenchmarks_load_and_expand(kind):
    w = load_chakra(CHAKRA / f"{kind}_8npus_1MB", n_ranks=8)
    assert w.n_ranks == 8
    for rank_ops in w.ops:
        (op,) = rank_ops
        assert op.kind == kind and op.group == tuple(range(8))
    # all-gather's comm_size is each rank's input (ASTRA-sim): 1 MiB * 8 in nccl-tests terms
    assert w.ops[0][0].size_bytes == (8 * MIB if kind == "all_gather" else MIB)
    plan = expand(w)
    sent = {rp.bytes_sent for rp in plan.ranks}
    expected = {"all_reduce": 2 * 7 * MIB // 8, "all_gather": 7 * MIB, "reduce_scatter": 7 * MIB // 8,
                "all_to_all": 7 * MIB // 8}[kind]
    assert sent == {expected}


def test_loading_one_file_finds_its_siblings():
    w = load_chakra(CHAKRA / "all_reduce_8npus_1MB" / "all_reduce.3.et")
    assert w.n_ranks == 8


def copy_trace(tmp_path, kind="all_reduce"):
    return Path(shutil.copytree(CHAKRA / f"{kind}_8npus_1MB", tmp_path / kind))


def test_truncated_file_is_named(tmp_path):
    trace = copy_trace(tmp_path)
    victim = trace / "all_reduce.3.et"
    victim.write_bytes(victim.read_bytes()[:-5])
    with pytest.raises(WorkloadError, match=r"all_reduce\.3\.et: truncated"):
        load_chakra(trace)


def test_file_cut_after_metadata_is_named(tmp_path):
    trace = copy_trace(tmp_path)
    victim = trace / "all_reduce.6.et"
    data = victim.read_bytes()
    victim.write_bytes(data[:data[0] + 1])  # keep only the length-prefixed GlobalMetadata
    with pytest.raises(WorkloadError, match=r"all_reduce\.6\.et: no nodes"):
        load_chakra(trace)


def test_empty_file_is_named(tmp_path):
    trace = copy_trace(tmp_path)
    (trace / "all_reduce.0.et").write_bytes(b"")
    with pytest.raises(WorkloadError, match=r"all_reduce\.0\.et: empty trace"):
        load_chakra(trace)


def write_et(path, comm_type, comm_size=1024):
    pb = schema()
    etfile.write_et(path, pb.GlobalMetadata(version="0.0.4"), [
        pb.Node(id=1, name="mystery", type=pb.COMM_COLL_NODE, attr=[
            pb.AttributeProto(name="comm_type", int64_val=comm_type),
            pb.AttributeProto(name="comm_size", int64_val=comm_size)])])


@pytest.mark.parametrize("comm_type, words", [(42, "unknown collective type comm_type=42"),
                                               (9, "unsupported collective type BARRIER")])
def test_unknown_collective_is_named(tmp_path, comm_type, words):
    for rank in range(2):
        write_et(tmp_path / f"odd.{rank}.et", comm_type)
    with pytest.raises(WorkloadError) as err:
        load_chakra(tmp_path)
    assert "odd.0.et" in str(err.value) and words in str(err.value)


def test_rank_count_mismatch_is_named():
    trace = CHAKRA / "all_to_all_8npus_1MB"
    with pytest.raises(WorkloadError) as err:
        load_chakra(trace, n_ranks=4)
    assert str(trace) in str(err.value) and "8 ranks" in str(err.value) and "4 are expected" in str(err.value)


def test_missing_rank_file_is_named(tmp_path):
    trace = copy_trace(tmp_path)
    (trace / "all_reduce.5.et").unlink()
    with pytest.raises(WorkloadError, match=r"missing ranks \[5\]"):
        load_chakra(trace)


def test_ranks_that_disagree_are_reported(tmp_path):
    for rank, size in ((0, 1024), (1, 2048)):
        write_et(tmp_path / f"x.{rank}.et", comm_type=0, comm_size=size)
    with pytest.raises(WorkloadError, match="ranks disagree"):
        load_chakra(tmp_path)


def test_pytorch_host_trace_conversion_reports_what_it_could_not_map():
    path = CHAKRA / "pytorch-host-trace-1.0.2-chakra.0.0.4.json"
    w = load_pytorch_host_trace(path)
    assert w.n_ranks == 2  # world size from record_param_comms
    assert [op.kind for op in w.ops[0]] == ["all_gather"] * 10
    assert {op.size_bytes for op in w.ops[0]} == {8}  # one 4-byte float per rank, gathered on 2 ranks
    assert [op.deps for op in w.ops[0][1:]] == [(i,) for i in range(9)]  # trace order kept
    conversion = w.meta["conversion"]
    assert conversion["converter"].startswith("testbed host_trace")
    assert conversion["collectives_typed_by_converter"] == 0
    assert conversion["collectives_recovered"] == 10
    text = " ".join(conversion["unmapped"])
    assert "nccl:all_gather" in text and "no duration" in text and "one rank's view" in text
    expand(w)
    with pytest.raises(WorkloadError, match="2 ranks but 4 are expected"):
        load_pytorch_host_trace(path, n_ranks=4)
