"""Replay agents on loopback: bytes on the wire, byte-exact delivery, results, summaries.

Every test runs real agent processes (``python -m testbed.agent``) on 127.0.0.1.
"""

import json

import pytest

from testbed.agent.local import run_local
from testbed.workload import (GENERATORS, Collective, Compute, Workload, expand, load_chakra, summarise)
from testbed.workload.summary import read_results

from conftest import DATA

CHAKRA = DATA / "chakra"
MIB = 1024 * 1024


def replay(plan, tmp_path, timeout_s=30.0):
    run = run_local(plan, tmp_path, timeout_s=timeout_s)
    assert run.ok, (run.exit_codes, run.stderr)
    return [read_results(p) for p in run.results]


def records(results, kind):
    return [r for r in results if r["record"] == kind]


def test_ring_all_reduce_and_all_gather_bytes_on_the_wire(tmp_path):
    n, s_ar, s_ag = 4, 4 * MIB, 2 * MIB
    group = tuple(range(n))
    ops = [[Collective(kind="all_reduce", size_bytes=s_ar, group=group),
            Collective(kind="all_gather", size_bytes=s_ag, group=group, deps=(0,))] for _ in range(n)]
    plan = expand(Workload(n, ops))
    results = replay(plan, tmp_path)
    for rank, res in enumerate(results):
        (run,) = records(res, "run")
        assert run["status"] == "ok" and run["rank"] == rank
        expected = 2 * (n - 1) / n * s_ar + (n - 1) / n * s_ag
        assert run["bytes_sent"] == run["bytes_received"] == expected
        assert run["transfers_verified"] == run["transfers_received"] == 2 * (n - 1) + (n - 1)
        ar, ag = records(res, "collective")
        assert ar["bytes_sent"] == 2 * (n - 1) / n * s_ar and ag["bytes_sent"] == (n - 1) / n * s_ag
        assert ar["busbw_bps"] == pytest.approx(ar["algbw_bps"] * 2 * (n - 1) / n)
        assert ag["busbw_bps"] == pytest.approx(ag["algbw_bps"] * (n - 1) / n)
        assert ar["algbw_bps"] == pytest.approx(8 * s_ar / ar["duration_s"])
        assert ag["start_time_s"] >= ar["end_time_s"]
        sends = [t for t in records(res, "transfer") if t["direction"] == "send"]
        assert sum(t["size_bytes"] for t in sends) == expected
        assert {t["peer"] for t in sends} == {(rank + 1) % n}
        assert all(t["end_time_s"] >= t["start_time_s"] for t in records(res, "transfer"))


@pytest.mark.parametrize("kind", ["all_reduce", "all_gather", "reduce_scatter", "all_to_all"])
def test_chakra_microbenchmarks_replay(tmp_path, kind):
    plan = expand(load_chakra(CHAKRA / f"{kind}_8npus_1MB", n_ranks=8))
    results = replay(plan, tmp_path)
    for rp, res in zip(plan.ranks, results):
        (run,) = records(res, "run")
        assert run["bytes_sent"] == rp.bytes_sent and run["bytes_received"] == rp.bytes_received
        (coll,) = records(res, "collective")
        assert coll["kind"] == kind and coll["group_size"] == 8


@pytest.mark.parametrize("name, params", [
    ("ddp", dict(n_ranks=3, iterations=2, n_params=12e6, compute_s=0.3)),
    ("pipeline", dict(n_ranks=3, micro_batches=3, hidden=4096, forward_s=0.01, backward_s=0.02)),
    ("moe", dict(n_ranks=3, iterations=1, layers=2)),
    ("tp_decode", dict(n_ranks=2, iterations=3, layers=4)),
])
def test_generated_workloads_replay(tmp_path, name, params):
    workload = GENERATORS[name](**params).scaled(0.01)
    plan = expand(workload)
    results = replay(plan, tmp_path)
    for rp, res in zip(plan.ranks, results):
        iterations = records(res, "iteration")
        assert [it["iteration"] for it in iterations] == list(range(workload.iterations))
        computes = [op for op in rp.ops if isinstance(op, Compute)]
        planned = sum(op.duration_s for op in computes)
        measured = sum(it["compute_s"] for it in iterations)
        # sleeps never end early; allow scheduling slack per compute op on a busy 2-core machine
        assert planned - 1e-3 <= measured <= planned * 1.1 + 0.005 * len(computes) + 0.02
        for it in iterations:
            assert 0 <= it["exposed_comm_s"] <= it["duration_s"] + 1e-9
        assert records(res, "run")[0]["bytes_received"] == rp.bytes_received


def test_ddp_all_reduce_overlaps_backward(tmp_path):
    # 80 MiB of gradients -> buckets of 1, 25, 25, 25, 4 MiB; backward takes 0.3 s.
    w = GENERATORS["ddp"](n_ranks=2, iterations=1, n_params=20 * MIB, bytes_per_grad=4, compute_s=0.45)
    results = replay(expand(w.scaled(0.05)), tmp_path)
    for res in results:
        reduces = records(res, "collective")
        computes = {r["name"]: r for r in records(res, "compute")}
        assert len(reduces) == 5
        # the first bucket is reduced while later buckets are still being computed
        assert reduces[0]["end_time_s"] < computes["backward.bucket4"]["start_time_s"]
        (it,) = records(res, "iteration")
        assert it["compute_s"] == pytest.approx(0.45, abs=0.03)
        assert 0 <= it["exposed_comm_s"] < it["comm_s"]


def test_summarise(tmp_path):
    n = 3
    ops = [[Compute(duration_s=0.05), Collective(kind="all_reduce", size_bytes=MIB, group=(0, 1, 2), deps=(0,))]
           for _ in range(n)]
    plan = expand(Workload(n, ops))
    run = run_local(plan, tmp_path)
    assert run.ok, run.stderr
    summary = summarise(run.results, plan, rate_bps=10e9, latency_s=0.0)
    coll = summary.collectives
    assert len(coll) == n and set(coll["rank"]) == {0, 1, 2}
    assert set(coll["instance"]) == {plan.ranks[0].op_instance[1]}
    assert (coll["ideal_s"] > 0).all() and (coll["slowdown"] > 0).all()
    assert len(summary.iterations) == n and "slowdown" in summary.iterations
    assert summary.iterations["ideal_s"].iloc[0] == pytest.approx(0.05 + 4 * (8 * MIB / 3 / 10e9), rel=1e-6)
    assert len(summary.transfers) == n * 2 * 2 * (n - 1)  # sends and receives, 2(n-1) steps
    bad = tmp_path / "rank0.jsonl"
    lines = bad.read_text().splitlines()
    first = json.loads(lines[0])
    first["status"], first["error"] = "failed", "boom"
    bad.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    with pytest.raises(Exception, match="rank 0 did not complete: boom"):
        summarise(run.results, plan)
