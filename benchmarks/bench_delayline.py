"""The delay line alone (no OVS): throughput, added jitter and CPU cost (needs root).

Two network namespaces joined by one delay-line link (a tap in each), optionally several
such pairs in parallel. Measures:
  - aggregate forwarded Mbit/s with iperf3 (unshaped, so the delay line is the limit);
  - added jitter: RTT of a 100 Hz ping over a 5 ms link minus 10 ms, p50/p99 (and a
    0-delay baseline);
  - CPU of the delay-line process per 100 Mbit/s forwarded (utime+stime from /proc).
Prints Markdown. Usage: .venv/bin/python benchmarks/bench_delayline.py [--pairs 1 2 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.system import machine as probe  # noqa: E402
from testbed.traffic.tools import parse_ping  # noqa: E402
from testbed.links.backends import DelayLineBackend  # noqa: E402
from testbed.net.plan import LinkSpec  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def setup(n_pairs: int, delay_s: float, caps):
    links = [LinkSpec(i, 0, 1, "isl", 0, 0, f"lmd{i}a", f"lmd{i}b", 1e9, delay_s, True) for i in range(n_pairs)]
    be = DelayLineBackend(caps.delayline_binary)
    be.create(links)
    for i in range(n_pairs):
        for side, ifn in (("a", f"lmd{i}a"), ("b", f"lmd{i}b")):
            ns = f"lmtb-bench{i}{side}"
            ip = f"10.99.{i}.{1 if side == 'a' else 2}"
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["tc", "qdisc", "del", "dev", ifn, "root"], capture_output=True)
            subprocess.run(["ip", "link", "set", ifn, "netns", ns], check=True)
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", ifn], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", ifn, "up"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    return be


def teardown(be, n_pairs: int) -> None:
    be.close()
    for i in range(n_pairs):
        for side in "ab":
            subprocess.run(["ip", "netns", "del", f"lmtb-bench{i}{side}"], capture_output=True)


def jitter(delay_s: float, caps) -> np.ndarray:
    be = setup(1, delay_s, caps)
    try:
        r = subprocess.run(["ip", "netns", "exec", "lmtb-bench0a", "ping", "-n", "-c", "500", "-i", "0.01",
                            "10.99.0.2"], capture_output=True, text=True)
        return np.asarray(parse_ping(r.stdout).rtts_s[5:]) - 2 * delay_s
    finally:
        teardown(be, 1)


def throughput(n_pairs: int, caps, seconds: float = 5.0) -> tuple[float, float]:
    be = setup(n_pairs, 0.005, caps)
    try:
        servers = [subprocess.Popen(["ip", "netns", "exec", f"lmtb-bench{i}b", "iperf3", "-s", "-1", "-B",
                                     f"10.99.{i}.2"], stdout=subprocess.DEVNULL) for i in range(n_pairs)]
        time.sleep(0.5)
        c0, t0 = cpu_s(be.proc.pid), time.monotonic()
        clients = [subprocess.Popen(["ip", "netns", "exec", f"lmtb-bench{i}a", "iperf3", "-c", f"10.99.{i}.2",
                                     "-t", str(seconds), "-J"], stdout=subprocess.PIPE, text=True)
                   for i in range(n_pairs)]
        outs = [c.communicate()[0] for c in clients]
        c1, t1 = cpu_s(be.proc.pid), time.monotonic()
        for s in servers:
            s.wait(10)
        bps = sum(json.loads(o)["end"]["sum_received"]["bits_per_second"] for o in outs)
        return bps, (c1 - c0) / (t1 - t0)
    finally:
        teardown(be, n_pairs)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    caps = probe.require_runnable()
    print("| parallel links | aggregate Mbit/s | delay-line CPU (cores) | CPU per 100 Mbit/s |")
    print("|---:|---:|---:|---:|")
    for n in args.pairs:
        bps, cpu = throughput(n, caps)
        print(f"| {n} | {bps / 1e6:.0f} | {cpu:.2f} | {cpu / (bps / 1e8):.3f} |")
    print("\n| one-way delay | added RTT p50 (µs) | p99 (µs) | max (µs) |")
    print("|---:|---:|---:|---:|")
    for d in (0.0, 0.005):
        j = jitter(d, caps) * 1e6
        print(f"| {d * 1e3:g} ms | {np.percentile(j, 50):.0f} | {np.percentile(j, 99):.0f} | {j.max():.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
