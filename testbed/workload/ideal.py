"""Ideal (no-contention) timing of a plan: the analytic reference for slowdowns.

Model, the same rules the replay agent follows but with perfect links:
a step starts when its stream is free and its deps are done; it computes for
``compute_s``; each send then takes ``8*size_bytes/rate_bps`` to serialise and
arrives ``latency_s`` after that; the step ends when its sends are serialised and
its receives have arrived. Transfers never share capacity (no contention), and a
transfer arriving before its receiver asks for it is buffered (as TCP does).

For a ring all-reduce of S bytes over N ranks this gives exactly
``2(N-1) * (latency_s + 8*(S/N)/rate_bps)``, for ring all-gather and
reduce-scatter ``(N-1) * (...)``, for a direct all-to-all ``latency_s +
8*(S/N)/rate_bps``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, Mapping, Union

from testbed.workload.errors import WorkloadError
from testbed.workload.planfile import STREAMS, Plan

PathValue = Union[float, Mapping[tuple[int, int], float], Callable[[int, int], float]]


def _path_fn(value: PathValue, name: str, positive: bool) -> Callable[[int, int], float]:
    def check(v: float, where: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v < 0 or (positive and v == 0):
            raise WorkloadError(f"{name}{where} must be a number {'> 0' if positive else '>= 0'}, got {v!r}")
        return float(v)

    if isinstance(value, Mapping):
        table = dict(value)

        def lookup(src: int, dst: int) -> float:
            if (src, dst) not in table:
                raise WorkloadError(f"{name} has no entry for the path from rank {src} to rank {dst}")
            return check(table[(src, dst)], f"[({src}, {dst})]")
        return lookup
    if callable(value):
        return lambda src, dst: check(value(src, dst), f"({src}, {dst})")
    constant = check(value, "")
    return lambda src, dst: constant


@dataclass(frozen=True)
class Simulation:
    """Start and end time (s, from 0) of every step: ``start[rank][step]``."""

    plan: Plan
    start: tuple[tuple[float, ...], ...]
    end: tuple[tuple[float, ...], ...]

    @property
    def makespan_s(self) -> float:
        return max((max(e) for e in self.end if e), default=0.0)

    def op_span(self, rank: int, op: int) -> tuple[float, float]:
        first, last = self.plan.ranks[rank].op_steps[op]
        return self.start[rank][first], self.end[rank][last]

    def iteration_spans(self, rank: int) -> dict[int, tuple[float, float]]:
        spans: dict[int, tuple[float, float]] = {}
        for i, op in enumerate(self.plan.ranks[rank].ops):
            s, e = self.op_span(rank, i)
            lo, hi = spans.get(op.iteration, (s, e))
            spans[op.iteration] = (min(lo, s), max(hi, e))
        return spans


def simulate(plan: Plan, rate_bps: PathValue, latency_s: PathValue) -> Simulation:
    """Run the ideal model over ``plan``.

    Parameters
    ----------
    rate_bps : float, mapping {(src, dst): rate} or callable(src, dst)
        Path rate in bit/s (use the scaled rate when the plan's bytes are scaled).
    latency_s : float, mapping or callable
        One-way path latency in seconds.

    Raises
    ------
    WorkloadError
        If some step can never run (a cycle of waits across ranks), naming it.
    """
    rate = _path_fn(rate_bps, "rate_bps", positive=True)
    latency = _path_fn(latency_s, "latency_s", positive=False)
    n = plan.n_ranks
    start: list[list[float | None]] = [[None] * len(rp.steps) for rp in plan.ranks]
    end: list[list[float | None]] = [[None] * len(rp.steps) for rp in plan.ranks]
    queues = [{st: [s.id for s in rp.steps if s.stream == st] for st in STREAMS} for rp in plan.ranks]
    position = [{st: 0 for st in STREAMS} for _ in range(n)]
    free_at = [{st: 0.0 for st in STREAMS} for _ in range(n)]
    arrival: dict[int, float] = {}
    receiver: dict[int, tuple[int, str]] = {
        t.xfer: (r, s.stream) for r, rp in enumerate(plan.ranks) for s in rp.steps for t in s.recvs
    }
    work = deque((r, st) for r in range(n) for st in STREAMS)
    queued = set(work)

    def wake(key: tuple[int, str]) -> None:
        if key not in queued:
            queued.add(key)
            work.append(key)

    while work:
        key = work.popleft()
        queued.discard(key)
        r, st = key
        steps = plan.ranks[r].steps
        queue = queues[r][st]
        while position[r][st] < len(queue):
            sid = queue[position[r][st]]
            step = steps[sid]
            if start[r][sid] is None:
                if any(end[r][d] is None for d in step.deps):
                    break
                t0 = max([free_at[r][st]] + [end[r][d] for d in step.deps])  # type: ignore[misc]
                start[r][sid] = t0
                for t in step.sends:
                    arrival[t.xfer] = t0 + step.compute_s + latency(r, t.peer) + 8 * t.size_bytes / rate(r, t.peer)
                    wake(receiver[t.xfer])
            t0 = start[r][sid]
            t_end = t0 + step.compute_s  # type: ignore[operator]
            for t in step.sends:
                t_end = max(t_end, t0 + step.compute_s + 8 * t.size_bytes / rate(r, t.peer))  # type: ignore[operator]
            if any(t.xfer not in arrival for t in step.recvs):
                break
            for t in step.recvs:
                t_end = max(t_end, arrival[t.xfer])
            end[r][sid] = t_end
            free_at[r][st] = t_end
            position[r][st] += 1
            for other in STREAMS:
                if other != st:
                    wake((r, other))

    stuck = []
    for r in range(n):
        for st in STREAMS:
            queue = queues[r][st]
            if position[r][st] < len(queue):
                step = plan.ranks[r].steps[queue[position[r][st]]]
                waits = [f"transfer {t.xfer} from rank {t.peer}" for t in step.recvs if t.xfer not in arrival]
                waits += [f"step {d}" for d in step.deps if end[r][d] is None]
                stuck.append(f"rank {r} {st} step {step.id} (op {step.op}) waits for {', '.join(waits)}")
    if stuck:
        raise WorkloadError(
            "the plan cannot complete (circular wait across ranks): " + "; ".join(stuck[:6])
            + (f"; and {len(stuck) - 6} more" if len(stuck) > 6 else "")
        )
    return Simulation(plan, tuple(tuple(x) for x in start), tuple(tuple(x) for x in end))  # type: ignore[arg-type]
