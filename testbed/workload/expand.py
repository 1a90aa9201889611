"""Expansion of a workload into its replay plan (:mod:`testbed.workload.planfile`), and the
ideal (no-contention) time of a plan, workload or collective.

``expand(workload)`` turns every collective into the rounds of its algorithm
(:mod:`testbed.workload.schedules`) and every op into steps; a plan that would deadlock
is rejected (checked by :func:`testbed.workload.ideal.simulate`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

from testbed.workload.errors import WorkloadError
from testbed.workload.ideal import PathValue, simulate
from testbed.workload.model import Collective, Compute, Send, Workload
from testbed.workload.planfile import Plan, RankPlan, Step, Transfer
from testbed.workload.schedules import SCHEDULES


def expand(workload: Workload, seed: int = 0) -> Plan:
    """Expand collectives into point-to-point steps for every rank.

    Parameters
    ----------
    workload : Workload
    seed : int
        Recorded in the plan; the replay agents derive their payload bytes from it.

    Raises
    ------
    WorkloadError
        If the expanded schedules cannot complete (a dependency cycle across ranks).
    """
    n = workload.n_ranks
    next_xfer = 0
    next_instance = 0
    # Collective instances: (group, k-th collective on that group) -> rank -> rounds.
    coll_seen: dict[tuple[tuple[int, ...], int], int] = defaultdict(int)  # (group, rank) -> count
    coll_plan: dict[tuple[tuple[int, ...], int], tuple[int, dict[int, list]]] = {}
    p2p_seen: dict[tuple[str, int, int], int] = defaultdict(int)
    p2p_plan: dict[tuple[int, int, int], tuple[int, int]] = {}  # (src, dst, k) -> (instance, xfer)

    def collective_steps(op: Collective, rank: int) -> tuple[int, dict[int, list]]:
        nonlocal next_xfer, next_instance
        key = (op.group, coll_seen[(op.group, rank)])
        coll_seen[(op.group, rank)] += 1
        if key not in coll_plan:
            size = len(op.group)
            rounds = SCHEDULES[(op.kind, op.algorithm)](size, op.size_bytes, op.group.index(op.root))
            per_rank: dict[int, list] = {r: [] for r in op.group}
            for rnd in rounds:
                parts: dict[int, tuple[list, list]] = {}
                for src_pos, dst_pos, nbytes in rnd:
                    src, dst = op.group[src_pos], op.group[dst_pos]
                    parts.setdefault(src, ([], []))[0].append(Transfer(dst, nbytes, next_xfer))
                    parts.setdefault(dst, ([], []))[1].append(Transfer(src, nbytes, next_xfer))
                    next_xfer += 1
                for r in op.group:  # keep group order so step order is deterministic
                    if r in parts:
                        per_rank[r].append(parts[r])
            coll_plan[key] = (next_instance, per_rank)
            next_instance += 1
        return coll_plan[key]

    def p2p_transfer(src: int, dst: int, kind: str) -> tuple[int, int]:
        nonlocal next_xfer, next_instance
        k = p2p_seen[(kind, src, dst)]
        p2p_seen[(kind, src, dst)] += 1
        if (src, dst, k) not in p2p_plan:
            p2p_plan[(src, dst, k)] = (next_instance, next_xfer)
            next_instance += 1
            next_xfer += 1
        return p2p_plan[(src, dst, k)]

    ranks = []
    for rank in range(n):
        steps: list[Step] = []
        spans: list[tuple[int, int]] = []
        instances: list[int] = []
        for op in workload.ops[rank]:
            deps = tuple(sorted({spans[d][1] for d in op.deps}))
            first = len(steps)
            if isinstance(op, Compute):
                steps.append(Step(first, len(spans), "compute", deps, op.duration_s))
                instance = next_instance
                next_instance += 1
            elif isinstance(op, Collective):
                instance, per_rank = collective_steps(op, rank)
                for j, (sends, recvs) in enumerate(per_rank[rank]):
                    steps.append(Step(len(steps), len(spans), "comm", deps if j == 0 else (),
                                      0.0, tuple(sends), tuple(recvs)))
            elif isinstance(op, Send):
                instance, xfer = p2p_transfer(rank, op.peer, "send")
                steps.append(Step(first, len(spans), "comm", deps,
                                  sends=(Transfer(op.peer, op.size_bytes, xfer),)))
            else:  # Recv
                instance, xfer = p2p_transfer(op.peer, rank, "recv")
                steps.append(Step(first, len(spans), "comm", deps,
                                  recvs=(Transfer(op.peer, op.size_bytes, xfer),)))
            spans.append((first, len(steps) - 1))
            instances.append(instance)
        ranks.append(RankPlan(rank, workload.ops[rank], tuple(spans), tuple(instances), tuple(steps)))

    plan = Plan(n, workload.iterations, seed, dict(workload.meta), tuple(ranks))
    simulate(plan, rate_bps=math.inf, latency_s=0.0)  # raises WorkloadError on deadlock
    return plan


def ideal_time_s(plan_or_collective: Plan | Workload | Collective, rate_bps: PathValue,
                 latency_s: PathValue) -> float:
    """No-contention completion time in seconds.

    A Collective is timed alone (all members start together, nothing else runs);
    a Workload is expanded first; a Plan gives its makespan (compute included).
    """
    if isinstance(plan_or_collective, Collective):
        op = dataclasses.replace(plan_or_collective, deps=(), iteration=0)
        n_ranks = max(op.group) + 1
        ops = [[op] if r in op.group else [] for r in range(n_ranks)]
        plan = expand(Workload(n_ranks=n_ranks, ops=ops))
    elif isinstance(plan_or_collective, Workload):
        plan = expand(plan_or_collective)
    elif isinstance(plan_or_collective, Plan):
        plan = plan_or_collective
    else:
        raise WorkloadError(f"ideal_time_s needs a Plan, Workload or Collective, got {type(plan_or_collective).__name__}")
    return simulate(plan, rate_bps, latency_s).makespan_s
