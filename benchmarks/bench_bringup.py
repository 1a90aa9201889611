"""Bring-up and tear-down time vs constellation size (needs root + OVS).

For each size (planes x sats per plane, +Grid torus, 4 compute hosts), builds the whole
emulation as a run does: delay line / netem links, host namespaces, all OVS bridges in a
few transactions, controller connected, rules installed on every switch, then one ping
between two compute hosts proves it forwards. Reports the phases, the total until
forwarding, tear-down, and memory (RSS of the run's ovs-vswitchd daemons, controller, delay line).
Usage: .venv/bin/python benchmarks/bench_bringup.py [--sizes 6x6 10x10 24x22 72x22]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.emulation import Emulation  # noqa: E402
from testbed.net.plan import make_plan  # noqa: E402


def torus(planes: int, per_plane: int, n_hosts: int = 4):
    def nid(p, s):
        return p * per_plane + s
    links = set()
    for p in range(planes):
        for s in range(per_plane):
            for q, t in (((p + 1) % planes, s), (p, (s + 1) % per_plane)):
                a, b = sorted((nid(p, s), nid(q, t)))
                if a != b:
                    links.add((a, b))
    n = planes * per_plane
    hosts = {i * n // n_hosts: (f"c{i * n // n_hosts}", "compute") for i in range(n_hosts)}
    return make_plan(range(n), hosts, [(a, b, "isl", 20e6, 0.005, True) for a, b in sorted(links)])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ovs_rss_mb(daemons) -> float:
    """RSS of the run's ovs-vswitchd processes (private shards), or the machine's daemon's."""
    return sum(rss_mb(pid) for d in daemons for pid in d.vswitchd_pids())


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cores(groups: dict[str, list[int]], seconds: float) -> dict[str, float]:
    """Cores used by each group of processes over ``seconds`` of an idle network."""
    before = {k: sum(map(cpu_s, pids)) for k, pids in groups.items()}
    time.sleep(seconds)
    return {k: (sum(map(cpu_s, pids)) - before[k]) / seconds for k, pids in groups.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["6x6", "10x10", "24x22"])
    ap.add_argument("--idle-s", type=float, default=10.0, help="seconds of idle CPU measurement per size")
    args = ap.parse_args()
    idle_rows = []
    print("| satellites | links | OVS daemons | links+hosts (s) | OVS bridges (s) | connected + rules (s) | "
          "total to forwarding (s) | tear-down (s) | ovs-vswitchd RSS (MB) | controller RSS (MB) | delay line RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        planes, per = map(int, size.split("x"))
        plan = torus(planes, per)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            emu = Emulation(plan, "min_hop", log_dir=Path(tmp))
            with emu:
                ping = emu.ping(plan.hosts[0].name, plan.hosts[-1].name, count=3, interval_s=0.2)
                t_fwd = time.perf_counter() - t0 - (ping.sent * 0.2)
                mem = (ovs_rss_mb(emu.network.daemons), rss_mb(emu.controller.proc.pid),
                       rss_mb(emu.backend.proc.pid) if getattr(emu.backend, "proc", None) else float("nan"))
                tm = dict(emu.network.timings_s)
                ok = ping.received > 0
                idle = idle_cores({"ovs": [p for d in emu.network.daemons for p in d.vswitchd_pids()],
                                   "controller": [emu.controller.proc.pid]}, args.idle_s)
                idle_rows.append((len(plan.switches), idle))
                shards = len(emu.network.daemons)
            teardown = emu.network.timings_s.get("teardown", float("nan"))
        built = tm.get("links", 0) + tm.get("hosts", 0)
        print(f"| {len(plan.switches)} | {len(plan.links)} | {shards} | {built:.1f} | {tm.get('switches', 0):.1f} | "
              f"{t_fwd - sum(tm.values()):.1f} | {t_fwd:.1f}{'' if ok else ' (no ping reply!)'} | {teardown:.1f} | "
              f"{mem[0]:.0f} | {mem[1]:.0f} | {mem[2]:.0f} |", flush=True)
    print(f"\nIdle network (no traffic), CPU over {args.idle_s:g} s:\n")
    print("| satellites | OVS daemons (cores) | controller (cores) |\n|---:|---:|---:|")
    for n, idle in idle_rows:
        print(f"| {n} | {idle['ovs']:.2f} | {idle['controller']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
