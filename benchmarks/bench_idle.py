"""Idle CPU of the userspace data plane vs OVS settings, in one bring-up (needs root + OVS).

Builds a +Grid torus of each size as a run does (``bench_bringup.torus``: 4 compute hosts,
``min_hop``), proves it forwards with one ping, then for each settings variant applies
its ``Open_vSwitch other_config`` values to every shard (live, ``ovs-vsctl set``), waits
``--settle-s`` and measures the cores used by the run's ``ovs-vswitchd`` daemons, their
``ovsdb-server`` and the controller over ``--idle-s`` of no traffic. All variants share one
network, so they compare on the same switches and the same machine load; the first row
sets OVS's own defaults explicitly. The per-daemon wake-up sources are OVS's coverage
counters (``ovs-appctl coverage/show``, 5 s average of shard 0): ``poll_create_node`` is
file descriptors registered per main-loop wake-up, so it grows with bridges x wake-ups.

Usage: .venv/bin/python benchmarks/bench_idle.py [--sizes 24x22 72x22 120x28]
       [--poll-interval-s 0.5] [--idle-s 10]
Resolution: CPU time from /proc/<pid>/stat in clock ticks (10 ms) over ``--idle-s``, so
about 0.001 cores per process at 10 s; the machine's other load adds noise of its own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_bringup import idle_cores, torus  # noqa: E402

from testbed.emulation import Emulation  # noqa: E402
from testbed.net.ovs import COUNTING_OTHER_CONFIG, IDLE_OTHER_CONFIG  # noqa: E402

#: name -> Open_vSwitch other_config values (ms). OVS 3.1 defaults first, then one
#: setting at a time, cumulatively.
VARIANTS: dict[str, dict[str, str]] = {
    "OVS defaults": {"stats-update-interval": "5000", "max-revalidator": "500"},
    "+ interface statistics hourly (testbed, algorithms reading rule counters)": dict(COUNTING_OTHER_CONFIG),
    "+ revalidation every 5 s (testbed, all other algorithms)": dict(IDLE_OTHER_CONFIG),
}
COUNTERS = ("poll_create_node", "seq_change", "netdev_get_stats", "vconn_received", "util_xalloc")


def coverage_per_s(daemon) -> dict[str, float]:
    """OVS coverage counters of one shard: 5 s average rate per event."""
    out = subprocess.run(["ovs-appctl", "coverage/show"], env=daemon.env,
                         capture_output=True, text=True, check=True).stdout
    rates = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 1 and parts[1].endswith("/sec"):
            rates[parts[0]] = float(parts[1][:-4])
    return rates


def pids(emu) -> dict[str, list[int]]:
    procs = [p for d in emu.network.daemons for p in getattr(d, "_procs", [])]
    return {"ovs-vswitchd": [p.pid for p in procs if p.role == "ovs-vswitchd"],
            "ovsdb-server": [p.pid for p in procs if p.role == "ovsdb-server"],
            "controller": [emu.controller.proc.pid]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["24x22", "72x22"])
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--settle-s", type=float, default=6.0, help="after applying a variant (> one 5 s coverage window)")
    ap.add_argument("--poll-interval-s", type=float, default=0.5, help="controller port-statistics poll (0: off)")
    args = ap.parse_args()
    rows = []
    for size in args.sizes:
        planes, per_plane = (int(x) for x in size.split("x"))
        plan = torus(planes, per_plane)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory() as d, \
                Emulation(plan, "min_hop", log_dir=Path(d), poll_interval_s=args.poll_interval_s) as emu:
            hosts = [h.name for h in plan.hosts]
            if emu.ping(hosts[0], hosts[-1], count=1).loss:
                print(f"{size}: no forwarding", file=sys.stderr)
                return 1
            print(f"{size}: {len(plan.switches)} switches in {len(emu.network.daemons)} daemons, "
                  f"up in {time.monotonic() - t0:.1f} s", flush=True)
            for name, values in VARIANTS.items():
                for daemon in emu.network.daemons:
                    daemon.vsctl(["set", "Open_vSwitch", ".",
                                  *(f"other_config:{k}={v}" for k, v in values.items())])
                time.sleep(args.settle_s)
                cores = idle_cores(pids(emu), args.idle_s)
                cov = coverage_per_s(emu.network.daemons[0])
                rows.append((len(plan.switches), name, cores, cov))
                print(f"  {name}: {cores}", flush=True)
    print(f"\nIdle CPU (cores over {args.idle_s:g} s, no traffic; controller polls port counters every "
          f"{args.poll_interval_s:g} s), coverage rates of shard 0 per second:\n")
    print("| satellites | settings | ovs-vswitchd | ovsdb-server | controller | "
          + " | ".join(COUNTERS) + " |")
    print("|---:|---|---:|---:|---:|" + "---:|" * len(COUNTERS))
    for n, name, cores, cov in rows:
        print(f"| {n:,} | {name} | {cores['ovs-vswitchd']:.3f} | {cores['ovsdb-server']:.3f} | "
              f"{cores['controller']:.3f} | " + " | ".join(f"{cov.get(c, 0.0):,.0f}" for c in COUNTERS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
