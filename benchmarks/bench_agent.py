"""Replay-agent overhead on this machine (loopback, no shaping).

1. Single-transfer throughput: two agents, one rank sends S bytes to the other,
   repeated; reports the receiver-side rate (first header byte to last payload
   byte) and the agents' CPU time per GB, from which the share of one core needed
   at a 20 Mbit/s scaled link follows.
2. Concurrent ranks: N agents (processes) run ring all-reduces; reports for each N
   whether every agent finished and verified every byte, the start-up time, the
   median all-reduce time and the per-step overhead on tiny messages.

Usage: .venv/bin/python benchmarks/bench_agent.py [--quick] [--max-ranks N] [--ranks 192,256]
       [--skip-transfer] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.agent.local import agent_command, write_inputs  # noqa: E402
from testbed.workload import Collective, Recv, Send, Workload, expand  # noqa: E402
from testbed.workload.summary import read_results  # noqa: E402

MIB = 1024 * 1024


def run_agents(plan, workdir: Path, timeout_s: float) -> tuple[list[int], list[Path], float, float]:
    """Run all ranks; returns exit codes, result files, wall seconds, total agent CPU seconds."""
    plan_path, peers_path, addresses = write_inputs(plan, workdir)
    outs = [workdir / f"rank{r}.jsonl" for r in range(plan.n_ranks)]
    start = time.monotonic()
    procs = [subprocess.Popen(agent_command(plan_path, r, addresses[r], peers_path, outs[r], timeout_s),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for r in range(plan.n_ranks)]
    codes, cpu = [], 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        codes.append(proc.returncode)
        cpu += usage.ru_utime + usage.ru_stime
    return codes, outs, time.monotonic() - start, cpu


def single_transfer(size_bytes: int, repeats: int, baseline_cpu_s: float = 0.0) -> dict:
    ops = [[Send(peer=1, size_bytes=size_bytes, deps=(i - 1,) if i else ()) for i in range(repeats)],
           [Recv(peer=0, size_bytes=size_bytes, deps=(i - 1,) if i else ()) for i in range(repeats)]]
    plan = expand(Workload(2, ops))
    with tempfile.TemporaryDirectory() as tmp:
        codes, outs, wall, cpu = run_agents(plan, Path(tmp), timeout_s=300)
        if any(codes):
            return {"size_bytes": size_bytes, "ok": False, "exit_codes": codes}
        received = [r for r in read_results(outs[1]) if r["record"] == "transfer"]
        run = [r for r in read_results(outs[1]) if r["record"] == "run"][0]
    rates = [8 * r["size_bytes"] / r["duration_s"] for r in received if r["duration_s"] > 0] or [0.0]
    total_bytes = size_bytes * repeats
    cpu_per_gb = max(0.0, cpu - baseline_cpu_s) / (total_bytes / 1e9)  # start-up CPU subtracted
    return {
        "size_bytes": size_bytes, "repeats": repeats, "ok": True,
        "median_gbps": statistics.median(rates) / 1e9, "max_gbps": max(rates) / 1e9,
        "run_gbps": 8 * total_bytes / run["duration_s"] / 1e9,
        "agent_cpu_s": cpu, "baseline_cpu_s": baseline_cpu_s,
        "agent_cpu_s_per_gb": cpu_per_gb,
        "agent_cpu_us_per_transfer": 1e6 * max(0.0, cpu - baseline_cpu_s) / repeats,
        # both agents' CPU (sender + receiver, start-up included) at 20 Mbit/s
        "core_share_at_20mbps": cpu_per_gb * 20e6 / 8 / 1e9,
    }


def ring(n_ranks: int, size_bytes: int, repeats: int, timeout_s: float) -> dict:
    group = tuple(range(n_ranks))
    ops = [[Collective(kind="all_reduce", size_bytes=size_bytes, group=group, deps=(i - 1,) if i else ())
            for i in range(repeats)] for _ in range(n_ranks)]
    plan = expand(Workload(n_ranks, ops))
    with tempfile.TemporaryDirectory() as tmp:
        codes, outs, wall, cpu = run_agents(plan, Path(tmp), timeout_s)
        result = {"n_ranks": n_ranks, "size_bytes": size_bytes, "repeats": repeats, "wall_s": wall,
                  "agent_cpu_s": cpu, "ok": not any(codes)}
        if any(codes):
            result["exit_codes"] = sorted(set(codes))
            return result
        records = [read_results(p) for p in outs]
    runs = [r for res in records for r in res if r["record"] == "run"]
    # job-level time of each all-reduce: first start to last end over the ranks
    by_op: dict[int, list] = {}
    for res in records:
        for r in res:
            if r["record"] == "collective":
                by_op.setdefault(r["op"], []).append(r)
    durations = [max(r["end_time_s"] for r in rs) - min(r["start_time_s"] for r in rs) for rs in by_op.values()]
    steady = durations[1:] or durations  # the first includes start-up skew
    result.update({
        "verified_transfers": sum(r["transfers_verified"] for r in runs),
        "connect_s_max": max(r["connect_s"] for r in runs),
        "allreduce_median_s": statistics.median(steady),
        "per_step_s": statistics.median(steady) / (2 * (n_ranks - 1)),
        "busbw_gbps": 8 * size_bytes * 2 * (n_ranks - 1) / n_ranks / statistics.median(steady) / 1e9,
    })
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and rank counts")
    parser.add_argument("--max-ranks", type=int, default=128)
    parser.add_argument("--ranks", type=lambda t: [int(x) for x in t.split(",")], default=None,
                        help="comma-separated rank counts to try instead of the default ladder")
    parser.add_argument("--skip-transfer", action="store_true", help="only the concurrent-ranks part")
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "out" / "bench_agent.json")
    args = parser.parse_args()

    report: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "platform": platform.platform()}}
    print(f"# replay agent on loopback, {os.cpu_count()} CPUs")
    print("\n## single transfer (2 agents, receiver-side rate)")
    sizes = [(MIB, 20), (16 * MIB, 8)] if args.quick else [(64 * 1024, 1000), (MIB, 200), (16 * MIB, 20),
                                                           (256 * MIB, 3)]
    report["single_transfer"] = []
    baseline = 0.0 if args.skip_transfer else single_transfer(1, 1)["agent_cpu_s"]
    print(f"(agent start-up and teardown: {baseline:.2f} s CPU for the two agents, subtracted below)")
    for size, repeats in ([] if args.skip_transfer else sizes):
        r = single_transfer(size, repeats, baseline)
        report["single_transfer"].append(r)
        if r["ok"]:
            print(f"{size:>11} B x{repeats:<3} median {r['median_gbps']:6.2f} Gbit/s  max {r['max_gbps']:6.2f}  "
                  f"agent CPU {r['agent_cpu_us_per_transfer']:.0f} us/transfer, {r['agent_cpu_s_per_gb']:.2f} s/GB "
                  f"-> {100 * r['core_share_at_20mbps']:.2f} % of a core at 20 Mbit/s")
        else:
            print(f"{size:>11} B FAILED {r['exit_codes']}")

    print("\n## concurrent ranks (ring all-reduce; 1 KiB = per-step overhead, 1 MiB = throughput)")
    counts = [n for n in (2, 8, 16, 32, 64, 96, 128, 192, 256) if n <= args.max_ranks]
    if args.quick:
        counts = [n for n in counts if n <= 32]
    if args.ranks:
        counts = args.ranks
    report["ranks"] = []
    for n in counts:
        row = []
        for size, repeats in ((1024, 5), (MIB, 3)):
            r = ring(n, size, repeats, timeout_s=120 + 2 * n)
            report["ranks"].append(r)
            row.append(r)
        small, large = row
        if not (small["ok"] and large["ok"]):
            print(f"N={n:>4}: FAILED (exit codes {small.get('exit_codes')} / {large.get('exit_codes')})")
            break
        print(f"N={n:>4}: ok, {small['verified_transfers'] + large['verified_transfers']} transfers verified, "
              f"connect {large['connect_s_max']:.2f} s, wall {large['wall_s']:.1f} s | 1 KiB all-reduce "
              f"{1e3 * small['allreduce_median_s']:.1f} ms = {1e6 * small['per_step_s']:.0f} us/step | "
              f"1 MiB all-reduce {1e3 * large['allreduce_median_s']:.1f} ms, busbw {1e3 * large['busbw_gbps']:.1f} Mbit/s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"\nwritten {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
