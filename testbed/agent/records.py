"""The records an agent writes when it ends: one ``run`` record, one per op (``collective``,
``compute``, ``p2p``), one per completed ``iteration`` and one per ``transfer``
(format: testbed/workload/README.md). Times are wall-clock Unix seconds (``agent.wall``
maps the agent's monotonic clock onto them); durations are seconds.
"""

from __future__ import annotations

import time
from typing import Any

from testbed.agent.wire import DATA
from testbed.workload import Collective, Compute, busbw_factor


def union_length(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def run_record(agent, code: int, ok: bool) -> dict[str, Any]:
    done = [s for s in agent.rp.steps if agent.step_end[s.id] is not None]
    sent = sum(r["size_bytes"] for r in agent.transfer_log if r["direction"] == "send")
    received = sum(r["size_bytes"] for r in agent.transfer_log if r["direction"] == "recv")
    n_sent = sum(1 for r in agent.transfer_log if r["direction"] == "send")
    n_received = len(agent.arrived)
    started = agent.started_at
    end = agent.finished_at if agent.finished_at is not None else time.monotonic()
    return {
        "record": "run", "rank": agent.rank, "n_ranks": agent.n_ranks,
        "status": "ok" if ok else "failed", "exit_code": code,
        "error": None if agent.failure is None else str(agent.failure),
        "plan_sha256": agent.plan_sha256.hex(), "seed": agent.seed,
        "listen": f"{agent.listen[0]}:{agent.listen[1]}", "peers": agent.peer_ranks,
        "start_time_s": None if started is None else agent.wall(started),
        "end_time_s": agent.wall(end),
        "duration_s": None if started is None else end - started,
        "connect_s": None if agent.connected_at is None else agent.connected_at - agent.mono0,
        "steps_done": len(done), "steps_total": len(agent.rp.steps),
        "bytes_sent": sent, "bytes_received": received,
        "transfers_sent": n_sent, "transfers_received": n_received,
        "transfers_verified": n_received,
        "wire_bytes_sent": sent + n_sent * DATA.size, "wire_bytes_received": received + n_received * DATA.size,
    }

def _op_span(agent, op_id: int) -> tuple[float, float] | None:
    first, last = agent.rp.op_steps[op_id]
    start, end = agent.step_start[first], agent.step_end[last]
    return None if start is None or end is None else (start, end)

def op_records(agent) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    per_iteration: dict[int, dict[str, list]] = {}
    complete: dict[int, bool] = {}
    for op_id, op in enumerate(agent.rp.ops):
        span = _op_span(agent, op_id)
        complete[op.iteration] = complete.get(op.iteration, True) and span is not None
        if span is None:
            continue
        start, end = span
        base = {"rank": agent.rank, "op": op_id, "instance": agent.rp.op_instance[op_id], "name": op.name,
                "iteration": op.iteration, "start_time_s": agent.wall(start), "end_time_s": agent.wall(end),
                "duration_s": end - start}
        bucket = per_iteration.setdefault(op.iteration, {"all": [], "compute": [], "comm": []})
        bucket["all"].append(span)
        bucket["compute" if isinstance(op, Compute) else "comm"].append(span)
        first, last = agent.rp.op_steps[op_id]
        steps = agent.rp.steps[first:last + 1]
        sent = sum(t.size_bytes for s in steps for t in s.sends)
        received = sum(t.size_bytes for s in steps for t in s.recvs)
        duration = max(end - start, 1e-9)
        if isinstance(op, Collective):
            n = len(op.group)
            algbw = 8 * op.size_bytes / duration
            records.append({"record": "collective", **base, "kind": op.kind, "algorithm": op.algorithm,
                            "group_size": n, "size_bytes": op.size_bytes, "algbw_bps": algbw,
                            "busbw_bps": algbw * busbw_factor(op.kind, n),
                            "busbw_factor": busbw_factor(op.kind, n),
                            "bytes_sent": sent, "bytes_received": received})
        elif isinstance(op, Compute):
            records.append({"record": "compute", **base, "planned_s": op.duration_s})
        else:
            records.append({"record": "p2p", **base, "type": op.type, "peer": op.peer,
                            "size_bytes": op.size_bytes, "algbw_bps": 8 * op.size_bytes / duration,
                            "bytes_sent": sent, "bytes_received": received})
    for it in sorted(per_iteration):
        if not complete[it]:
            continue
        spans = per_iteration[it]
        start = min(a for a, _ in spans["all"])
        end = max(b for _, b in spans["all"])
        compute = union_length(spans["compute"])
        records.append({"record": "iteration", "rank": agent.rank, "iteration": it,
                        "start_time_s": agent.wall(start), "end_time_s": agent.wall(end),
                        "duration_s": end - start, "compute_s": compute,
                        "comm_s": union_length(spans["comm"]),
                        "exposed_comm_s": max(0.0, (end - start) - compute)})
    return records

def transfer_records(agent) -> list[dict[str, Any]]:
    where = {t.xfer: (s.op, s.id) for s in agent.rp.steps for t in (*s.sends, *s.recvs)}
    records = []
    for entry in sorted(agent.transfer_log, key=lambda r: (r["start"], r["xfer"])):
        op, step = where[entry["xfer"]]
        records.append({"record": "transfer", "rank": agent.rank, "op": op, "step": step,
                        "xfer": entry["xfer"], "direction": entry["direction"], "peer": entry["peer"],
                        "size_bytes": entry["size_bytes"], "start_time_s": agent.wall(entry["start"]),
                        "end_time_s": agent.wall(entry["end"]), "duration_s": entry["end"] - entry["start"]})
    return records
