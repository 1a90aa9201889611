"""Collective times under time dilation, with the kernel's TCP counters (needs root + OVS).

The scenario of tests/test_emulation_dilation.py held static at its first step (4 x 4
shell at 5,000 km, 4 compute satellites, a 4-rank DDP job of 2 x 200 kB all-reduces per
iteration), one network per variant: D and whether TCP's minimum RTO is dilated per route
(``--no-rto-min``) or slow start after idle is off (``--no-ssai``). Prints, per variant,
each all-reduce's time (emulated s, the slowest rank) and the TCP counters summed over the
host namespaces (nstat), so an effect of TCP's undilated timers shows as what it is.
Usage: flock /tmp/emu.lock .venv/bin/python benchmarks/bench_dilation_tcp.py
[--dilations 1 4] [--iterations 6] [--no-rto-min] [--no-ssai]; run from the repository.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import topologies  # noqa: E402
from testbed.emulation import Emulation  # noqa: E402
from testbed.experiment import host_names_by_kind  # noqa: E402
from testbed.net.scenario import from_schedule  # noqa: E402
from testbed.spec import load_spec  # noqa: E402
from testbed.traffic import AgentGroup  # noqa: E402
from testbed.workload import expand  # noqa: E402

COUNTERS = ("TcpRetransSegs", "TcpExtTCPTimeouts", "TcpExtTCPLossProbes", "TcpExtTCPSpuriousRTOs",
            "TcpExtTCPFastRetrans", "TcpExtTCPDelayedACKs", "TcpExtTCPDelayedACKLost")


def spec(root: Path, iterations: int) -> dict:
    return {"experiment": {"name": "dilation-tcp", "seed": 3, "output_dir": str(root)},
            "constellation": {"preset": "test4x4"}, "isl": {"policy": "plus_grid"}, "compute": {"every_k": 4},
            "time": {"epoch": "2025-01-01T00:00:00Z", "duration_s": 4.0, "step_s": 1.0},
            "algorithms": [{"name": "min_delay"}],
            "workloads": [{"generator": "ddp", "n_ranks": 4, "label": "ddp",
                           "params": {"iterations": iterations, "n_params": 1e9, "compute_s": 0.3,
                                      "first_bucket_bytes": 2_000_000_000, "bucket_cap_bytes": 2_000_000_000}}]}


def nstat(netns: str, reset: bool = False) -> dict[str, int]:
    argv = ["ip", "netns", "exec", netns, "nstat", "-n"] if reset else ["ip", "netns", "exec", netns, "nstat",
                                                                       "-az", *COUNTERS]
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    return {p[0]: int(p[1]) for p in (line.split() for line in out.splitlines()[1:]) if len(p) >= 2 and p[0] in COUNTERS}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dilations", type=float, nargs="+", default=[1.0, 4.0])
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument("--no-rto-min", action="store_true", help="leave TCP's minimum RTO undilated")
    ap.add_argument("--no-ssai", action="store_true", help="net.ipv4.tcp_slow_start_after_idle = 0 on the hosts")
    args = ap.parse_args()
    if args.no_rto_min:
        Emulation._dilate_tcp_rto_min = lambda self: None
    print("| D | rto_min dilated | slow start after idle | all-reduces (emulated s) | TCP counters |")
    print("|---|---|---|---|---|")
    for d in args.dilations:
        with tempfile.TemporaryDirectory(prefix="lmtb-dilation-") as tmp:
            root = Path(tmp)
            raw = spec(root, args.iterations)
            raw["emulation"] = {"time_dilation": d}
            s = load_spec(raw, base_dir=root)
            plan, timeline = from_schedule(topologies.generate(s.schedule_config()), s.rate_scale)
            workload = s.workloads[0].build().scaled(s.rate_scale)
            hosts = host_names_by_kind(plan)["compute"][:workload.n_ranks]
            with Emulation(plan, "min_delay", log_dir=root, timeline=timeline, time_dilation=d) as emu:
                for h in hosts:
                    nstat(emu.host(h).netns, reset=True)
                    if args.no_ssai:
                        subprocess.run(["ip", "netns", "exec", emu.host(h).netns, "sysctl", "-qw",
                                        "net.ipv4.tcp_slow_start_after_idle=0"], check=True)
                group = AgentGroup(emu, expand(workload, seed=s.seed), hosts, root / "agents", timeout_s=300,
                                   dilation=d)
                group.wait()
                totals = {k: 0 for k in COUNTERS}
                for h in hosts:
                    for k, v in nstat(emu.host(h).netns).items():
                        totals[k] += v
            per = group.summary().collectives.groupby("instance")["duration_s"].max()
            times = ", ".join(f"{x:.3f}" for x in per)
            counts = ", ".join(f"{k.removeprefix('TcpExt').removeprefix('Tcp')} {v}" for k, v in totals.items())
            rto = "no" if args.no_rto_min or d == 1 else "yes"
            print(f"| {d:g} | {rto} | {'off' if args.no_ssai else 'on'} | {times} | {counts} |", flush=True)


if __name__ == "__main__":
    main()
