"""Expansion into point-to-point schedules, byte totals, ideal times, plan files."""

import hashlib
import json
import math

import pytest

from testbed.workload import (GENERATORS, Collective, Compute, Recv, Send, Workload, WorkloadError, expand,
                              ideal_time_s, load_plan, load_rank_plan, save_plan, simulate)

R = 1e9  # bit/s
L = 2e-3  # s


def one(kind, n, size, algorithm=""):
    c = Collective(kind=kind, size_bytes=size, group=tuple(range(n)), algorithm=algorithm)
    return c, Workload(n, [[c] for _ in range(n)])


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_ring_byte_totals(n):
    size = n * 3000
    for kind, factor in (("all_reduce", 2 * (n - 1) / n), ("all_gather", (n - 1) / n),
                         ("reduce_scatter", (n - 1) / n), ("all_to_all", (n - 1) / n)):
        plan = expand(one(kind, n, size)[1])
        for rp in plan.ranks:
            assert rp.bytes_sent == rp.bytes_received == factor * size, (kind, n)


def test_ring_all_reduce_schedule_shape():
    n, size = 4, 4000
    plan = expand(one("all_reduce", n, size)[1])
    for r, rp in enumerate(plan.ranks):
        assert len(rp.steps) == 2 * (n - 1)
        for step in rp.steps:
            (send,), (recv,) = step.sends, step.recvs
            assert send.peer == (r + 1) % n and recv.peer == (r - 1) % n
            assert send.size_bytes == recv.size_bytes == size // n


def test_uneven_sizes_keep_totals_exact():
    n, size = 3, 1000  # chunks 334, 333, 333
    plan = expand(one("all_gather", n, size)[1])
    assert sum(rp.bytes_sent for rp in plan.ranks) == (n - 1) * size
    assert expand(one("all_reduce", 8, 3)[1]).ranks[0].steps[0].sends[0].size_bytes == 1  # >= 1 byte


@pytest.mark.parametrize("n", [2, 4, 5, 8])
def test_ideal_times_match_closed_forms(n):
    size = 40 * 2**20  # divisible by every n here
    chunk_s = 8 * (size / n) / R
    whole_s = 8 * size / R
    expected = {
        ("all_reduce", "ring"): 2 * (n - 1) * (L + chunk_s),
        ("all_gather", "ring"): (n - 1) * (L + chunk_s),
        ("reduce_scatter", "ring"): (n - 1) * (L + chunk_s),
        ("all_to_all", "direct"): L + chunk_s,
        ("all_reduce", "direct"): 2 * (L + chunk_s),
        ("broadcast", "direct"): L + whole_s,
    }
    if n & (n - 1) == 0:  # binomial trees, power-of-two sizes
        expected[("all_reduce", "tree")] = 2 * math.log2(n) * (L + whole_s)
        expected[("broadcast", "tree")] = math.log2(n) * (L + whole_s)
    for (kind, algorithm), value in expected.items():
        c, _ = one(kind, n, size, algorithm)
        assert ideal_time_s(c, R, L) == pytest.approx(value, rel=1e-9), (kind, algorithm)


def test_per_path_latency():
    c, w = one("all_reduce", 3, 3000)
    uniform = {(a, b): L for a in range(3) for b in range(3) if a != b}
    assert ideal_time_s(c, R, uniform) == pytest.approx(ideal_time_s(c, R, L))
    slow = dict(uniform)
    slow[(0, 1)] = 10 * L
    assert ideal_time_s(c, R, slow) > ideal_time_s(c, R, L)
    del slow[(2, 0)]
    with pytest.raises(WorkloadError, match="no entry for the path from rank 2 to rank 0"):
        ideal_time_s(c, R, slow)


def test_compute_overlaps_communication_in_the_ideal_model():
    ops = [[Compute(duration_s=1.0), Collective(kind="all_reduce", size_bytes=1000, group=(0, 1), deps=(0,)),
            Compute(duration_s=1.0, deps=(0,))] for _ in range(2)]
    plan = expand(Workload(2, ops))
    sim = simulate(plan, R, 0.1)
    assert sim.op_span(0, 1)[0] == pytest.approx(1.0)  # all-reduce starts after the first compute
    assert sim.op_span(0, 2) == pytest.approx((1.0, 2.0))  # second compute runs during it
    assert sim.makespan_s == pytest.approx(2.0)


def test_dependencies_are_preserved_in_steps():
    plan = expand(GENERATORS["ddp"](n_ranks=2, iterations=1, n_params=2e7))
    rp = plan.ranks[0]
    for op_id, op in enumerate(rp.ops):
        first = rp.steps[rp.op_steps[op_id][0]]
        assert set(first.deps) == {rp.op_steps[d][1] for d in op.deps}
        assert first.stream == ("compute" if isinstance(op, Compute) else "comm")


def test_circular_wait_is_rejected():
    ops = [[Recv(peer=1, size_bytes=5), Send(peer=1, size_bytes=5)],
           [Recv(peer=0, size_bytes=5), Send(peer=0, size_bytes=5)]]
    with pytest.raises(WorkloadError, match="cannot complete.*rank 0 comm step 0"):
        expand(Workload(2, ops))


def test_plan_file_round_trip_and_strictness(tmp_path):
    plan = expand(GENERATORS["pipeline"](n_ranks=3, micro_batches=2, hidden=8, seq_len=4), seed=7)
    path = tmp_path / "plan.jsonl"
    save_plan(plan, path)
    assert load_plan(path) == plan
    header, rank1, sha256 = load_rank_plan(path, 1)
    assert rank1 == plan.ranks[1] and header["seed"] == 7 and header["n_ranks"] == 3
    assert sha256 == hashlib.sha256(path.read_bytes()).digest()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 1 + 3 and lines[2]["bytes_sent"] == plan.ranks[1].bytes_sent

    def rewrite():
        path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    lines[2]["steps"][0]["recvs"][0][1] += 1  # a receive that no longer matches its send
    lines[2]["bytes_received"] += 1
    rewrite()
    with pytest.raises(WorkloadError) as err:
        load_plan(path)
    assert str(path) in str(err.value) and "matching receive" in str(err.value)
    lines[2]["steps"][0]["colour"] = "red"
    rewrite()
    with pytest.raises(WorkloadError, match="unknown keys"):
        load_plan(path)
    with pytest.raises(WorkloadError, match="unknown keys"):
        load_rank_plan(path, 1)
    assert load_rank_plan(path, 2).rank_plan == plan.ranks[2]  # an agent reads only its own rank
    with pytest.raises(WorkloadError, match="rank 3 is not a rank"):
        load_rank_plan(path, 3)
