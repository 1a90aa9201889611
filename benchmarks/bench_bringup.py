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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.emulation import Emulation  # noqa: E402
from testbed.plan import make_plan  # noqa: E402


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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["6x6", "10x10", "24x22"])
    args = ap.parse_args()
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
                shards = len(emu.network.daemons)
            teardown = emu.network.timings_s.get("teardown", float("nan"))
        built = tm.get("links", 0) + tm.get("hosts", 0)
        print(f"| {len(plan.switches)} | {len(plan.links)} | {shards} | {built:.1f} | {tm.get('switches', 0):.1f} | "
              f"{t_fwd - sum(tm.values()):.1f} | {t_fwd:.1f}{'' if ok else ' (no ping reply!)'} | {teardown:.1f} | "
              f"{mem[0]:.0f} | {mem[1]:.0f} | {mem[2]:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
