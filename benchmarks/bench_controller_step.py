"""Controller cost of one clock step on a spec's network (pure, no root, no switches).

For each algorithm and number of future snapshots, builds the state messages the clock
sends (all links of the step, plus ``future`` upcoming steps), encodes and decodes them
as on the feed, and times :meth:`ControllerSession.on_state` (graph, routes, flow table).
Median of steps 1-5. Prints a Markdown table.

Usage: .venv/bin/python benchmarks/bench_controller_step.py [SPEC] [--future 0 10]
(default SPEC: experiments/starlink_v3_compute.toml, 3,363 switches).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controllers.algorithms import make_router  # noqa: E402
from controllers.feed import decode, encode  # noqa: E402
from controllers.session import ControllerSession  # noqa: E402
from testbed import experiment as runner  # noqa: E402
from testbed.net.clock import Clock  # noqa: E402
from testbed.control.messages import topology_message  # noqa: E402
from testbed.results.writer import RunDir  # noqa: E402
from testbed.spec import load_spec  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", nargs="?", default="experiments/starlink_v3_compute.toml")
    ap.add_argument("--future", type=int, nargs="+", default=[0, 10], help="future snapshots per message")
    ap.add_argument("--algorithms", nargs="+", default=["min_delay", "predictive"])
    args = ap.parse_args()
    spec = load_spec(args.spec)
    sc = runner.prepare(spec, RunDir(Path(tempfile.mkdtemp()), "bench"), log=lambda *a: None)
    print(f"{len(sc.plan.switches)} switches, {len(sc.plan.links)} links, {len(sc.plan.hosts)} hosts\n")
    print("| algorithm | future snapshots | message (MB) | encode + decode (ms) | on_state (ms) |")
    print("|---|---:|---:|---:|---:|")
    for name in args.algorithms:
        for future in args.future:
            clock = Clock(sc.plan, sc.timeline, lambda *a: None, lambda *a: None, future_steps=future)
            session = ControllerSession(make_router(name))
            session.on_topology(topology_message(sc.plan))
            session.on_state(clock.initial_state())
            wire_ms, state_ms, size_mb = [], [], 0.0
            for k in range(1, min(6, sc.timeline.n_steps)):
                msg = clock._state_message(k)
                t0 = time.perf_counter()
                line = encode(msg)
                received = decode(line)
                t1 = time.perf_counter()
                session.on_state(received)
                t2 = time.perf_counter()
                wire_ms.append((t1 - t0) * 1e3)
                state_ms.append((t2 - t1) * 1e3)
                size_mb = len(line) / 1e6
            print(f"| {name} | {future} | {size_mb:.1f} | {statistics.median(wire_ms):.0f} | "
                  f"{statistics.median(state_ms):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
