"""Generators: the math stated in their docstrings, and parameter checking."""

import pytest

from testbed.workload import (GENERATORS, Collective, Compute, Recv, Send, WorkloadError, expand, read_jsonl,
                              write_jsonl)
from testbed.workload.generators import (ACHIEVED_TRAIN_FLOPS, ddp_buckets, pipeline_order)

MIB = 1024 * 1024


def collectives(rank_ops):
    return [op for op in rank_ops if isinstance(op, Collective)]


def test_registry_names():
    assert set(GENERATORS) == {"ddp", "pipeline", "moe", "tp_decode"}


def test_ddp_bucket_split():
    assert ddp_buckets(100 * MIB) == [MIB, 25 * MIB, 25 * MIB, 25 * MIB, 24 * MIB]
    assert ddp_buckets(MIB // 2) == [MIB // 2]
    assert sum(ddp_buckets(5_200_000_000)) == 5_200_000_000


def test_ddp_structure_and_compute_time():
    w = GENERATORS["ddp"](n_ranks=4, iterations=3, n_params=30 * MIB, bytes_per_grad=2,
                          global_batch_tokens=4096)
    grad_bytes = 60 * MIB
    per_iter = [op for op in w.ops[0] if op.iteration == 1]
    reduces = collectives(per_iter)
    assert [c.size_bytes for c in reduces] == [MIB, 25 * MIB, 25 * MIB, 9 * MIB]
    assert all(c.kind == "all_reduce" and c.algorithm == "ring" and c.group == (0, 1, 2, 3) for c in reduces)
    compute = sum(op.duration_s for op in per_iter if isinstance(op, Compute))
    assert compute == pytest.approx(6 * 30 * MIB * 1024 / ACHIEVED_TRAIN_FLOPS)
    # each bucket's all-reduce waits only for the backward compute that produced it
    for c in reduces:
        (dep,) = c.deps
        assert w.ops[0][dep].name.startswith("backward.bucket")
    assert w.meta["derived"] == {"gradient_bytes": grad_bytes, "buckets": 4}
    assert w.iterations == 3 and w.n_ranks == 4


def test_ddp_default_matches_docstring():
    w = GENERATORS["ddp"]()
    assert w.meta["parameters"]["compute_s"] == pytest.approx(6 * 1.3e9 * 131072 / 400e12)
    assert w.meta["derived"]["gradient_bytes"] == 5_200_000_000


def test_pipeline_activation_bytes_and_matching():
    w = GENERATORS["pipeline"](n_ranks=4, micro_batches=6, micro_batch_size=2, seq_len=16, hidden=32)
    act = 2 * 16 * 32 * 2
    for stage in range(4):
        sends = [op for op in w.ops[stage] if isinstance(op, Send)]
        recvs = [op for op in w.ops[stage] if isinstance(op, Recv)]
        assert all(op.size_bytes == act for op in sends + recvs)
        n_neighbours = (stage > 0) + (stage < 3)
        assert len(sends) == len(recvs) == 6 * n_neighbours  # forward + backward per micro-batch
    assert GENERATORS["pipeline"]().meta["derived"]["activation_bytes"] == 2 * 2048 * 12288 * 2


def test_pipeline_orders():
    assert pipeline_order(0, 4, 5, "1f1b") == [("F", 0), ("F", 1), ("F", 2), ("F", 3), ("B", 0), ("F", 4),
                                                ("B", 1), ("B", 2), ("B", 3), ("B", 4)]
    assert pipeline_order(3, 4, 2, "1f1b") == [("F", 0), ("B", 0), ("F", 1), ("B", 1)]
    assert pipeline_order(1, 4, 2, "gpipe") == [("F", 0), ("F", 1), ("B", 0), ("B", 1)]
    for schedule in ("1f1b", "gpipe"):  # deadlock-free: expand simulates the plan
        expand(GENERATORS["pipeline"](n_ranks=5, micro_batches=7, schedule=schedule).scaled(1e-6))


def test_moe_all_to_all_per_layer():
    w = GENERATORS["moe"](n_ranks=4, iterations=1, layers=3, hidden=64, top_k=2, tokens_per_rank=10)
    a2a = collectives(w.ops[0])
    assert len(a2a) == 3 * 4  # dispatch + combine, forward and backward, per layer
    assert {c.size_bytes for c in a2a} == {10 * 2 * 64 * 2}
    assert all(c.kind == "all_to_all" and c.algorithm == "direct" for c in a2a)
    assert GENERATORS["moe"]().meta["derived"]["all_to_all_bytes"] == 4096 * 2 * 4096 * 2


def test_tp_decode_small_all_reduces():
    w = GENERATORS["tp_decode"](n_ranks=4, iterations=3, layers=5)
    ars = collectives(w.ops[0])
    assert len(ars) == 3 * 5 * 2
    assert {c.size_bytes for c in ars} == {8192 * 2}
    per_token = sum(op.duration_s for op in w.ops[0] if isinstance(op, Compute) and op.iteration == 0)
    assert per_token == pytest.approx(18.58e-3 * 2 / 4)


@pytest.mark.parametrize("name, params, words", [
    ("ddp", {"n_ranks": 1}, "n_ranks"),
    ("ddp", {"n_params": -5}, "n_params"),
    ("ddp", {"iterations": 2.5}, "iterations"),
    ("ddp", {"algorithm": "direkt"}, "algorithm"),
    ("ddp", {"bucket_size": 3}, "unknown parameter"),
    ("pipeline", {"schedule": "zb"}, "schedule"),
    ("pipeline", {"hidden": 0}, "hidden"),
    ("moe", {"top_k": 0}, "top_k"),
    ("moe", {"algorithm": "ring"}, "algorithm"),
    ("tp_decode", {"token_s": float("inf")}, "token_s"),
])
def test_bad_parameters_name_the_parameter(name, params, words):
    with pytest.raises(WorkloadError, match=words):
        GENERATORS[name](**params)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_expand_and_round_trip(name, tmp_path):
    params = {"ddp": {"n_params": 1e7}, "moe": {"layers": 2}, "pipeline": {"micro_batches": 4},
              "tp_decode": {"iterations": 2}}[name]
    workload = GENERATORS[name](**params)
    assert workload.meta["source"] == f"generator:{name}" and workload.meta["parameters"]
    assert expand(workload).n_ranks == workload.n_ranks
    write_jsonl(workload, tmp_path / "w.jsonl")
    assert read_jsonl(tmp_path / "w.jsonl") == workload


def test_every_bad_parameter_is_reported_at_once_as_data():
    """One call, one WorkloadError: unknown names first, then each bad value, as (parameter, problem)."""
    with pytest.raises(WorkloadError) as info:
        GENERATORS["ddp"](n_ranks=1, iterations=0, n_params=-1, forward_fraction=1.5, bucket_size=3,
                          algorithm="direkt")
    err = info.value
    assert err.source == "ddp"
    assert [name for name, _ in err.problems] == [
        "bucket_size", "n_ranks", "iterations", "n_params", "forward_fraction", "algorithm"]
    assert dict(err.problems)["iterations"] == "must be an integer >= 1, got 0"
    assert dict(err.problems)["algorithm"] == "must be an algorithm for all_reduce: 'ring', 'tree', 'direct'; got 'direkt'"
    assert str(err).splitlines() == [f"ddp: {name}: {problem}" for name, problem in err.problems]
    with pytest.raises(WorkloadError) as info:
        GENERATORS["pipeline"](hidden=0, schedule="zb", forward_s=-1.0)
    assert [name for name, _ in info.value.problems] == ["hidden", "forward_s", "schedule"]
