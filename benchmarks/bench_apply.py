"""Apply latency per clock step vs number of changed links (needs root).

Creates N links with one backend (``--backend delayline``: tap pairs in one delay-line
process; ``--backend netem``: veth pairs with a netem qdisc on each end; no OVS needed
for this measurement), then times, per batch size (100, 1,000, 3,168 = Starlink shell 1
ISLs):
  - delay changes: the backend's ``set_delays`` (delay line: one batch on its control
    pipe, acknowledged; netem: one ``tc -batch`` of ``qdisc change``);
  - link state changes: one ``ip -batch`` setting both ends of each link down (and up);
  - baseline: one ``tc`` subprocess per link (what a naive per-link update costs).
Prints a Markdown table. Usage: .venv/bin/python benchmarks/bench_apply.py [--links 3168]
[--backend delayline|netem] (netem needs sch_netem: scripts/uml.sh runs it in a guest)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.system import machine as probe  # noqa: E402
from testbed.links.backends import BACKENDS, NetemBackend, run_batch  # noqa: E402
from testbed.net.plan import LinkSpec  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--links", type=int, default=3168)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tc-sample", type=int, default=300, help="links timed with one tc process each")
    ap.add_argument("--backend", choices=sorted(BACKENDS), default="delayline")
    args = ap.parse_args()
    caps = probe.require_runnable()
    links = [LinkSpec(i, 2 * i, 2 * i + 1, "isl", 0, 0, f"lmb{i}a", f"lmb{i}b", 20e6, 0.01, True)
             for i in range(args.links)]
    be = BACKENDS[probe.choose_backend(caps, args.backend)](caps)
    t = time.perf_counter()
    be.create(links)
    create_s = time.perf_counter() - t
    rows = []
    try:
        run_batch("ip", [f"link set dev {i} up" for lk in links for i in (lk.if_a, lk.if_b)])
        for n in (100, 1000, args.links):
            n = min(n, args.links)
            delay_ms, state_ms = [], []
            for r in range(args.repeats):
                changes = [(i, 0.01 + 1e-4 * (r + 1), 0.01 + 1e-4 * (r + 1)) for i in range(n)]
                delay_ms.append(be.set_delays(changes) * 1e3)
                t = time.perf_counter()
                run_batch("ip", [f"link set dev {i} {'down' if r % 2 == 0 else 'up'}"
                                 for lk in links[:n] for i in (lk.if_a, lk.if_b)])
                state_ms.append((time.perf_counter() - t) * 1e3)
            rows.append((n, statistics.median(delay_ms), statistics.median(state_ms)))
        sample = min(args.tc_sample, args.links)
        t = time.perf_counter()
        for lk in links[:sample]:
            if isinstance(be, NetemBackend):
                argv = ["tc", *NetemBackend._netem(lk.if_a, 0.02, lk.rate_bps, "change").split()]
            else:
                argv = ["tc", "qdisc", "change", "dev", lk.if_a, "root", "tbf", "rate", "20mbit",
                        "burst", "3028", "limit", "130000"]
            subprocess.run(argv, check=True, capture_output=True)
        per_link_ms = (time.perf_counter() - t) * 1e3 / sample
    finally:
        be.close()
    print(f"backend {args.backend}: {args.links} links ({2 * args.links} interfaces) created in {create_s:.2f} s\n")
    print("| changed links | delay changes, one batch (ms) | link up/down, one ip -batch (ms) | "
          "one tc process per link (ms, extrapolated) |")
    print("|---:|---:|---:|---:|")
    for n, d, s in rows:
        print(f"| {n} | {d:.2f} | {s:.1f} | {per_link_ms * n:.0f} |")
    print(f"\none `tc qdisc change` subprocess: {per_link_ms:.2f} ms per link (measured on {sample} links)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
