"""Probe resolution and cost: ``ping -D`` (text, 3 significant digits) against the UDP probe
mesh (kernel timestamps), on the same real network (needs root + OVS).

Resolution: a chain of 3 switches, ``--delay-ms`` per link (default 50: a geometric RTT of
200 ms, where the old probes were whole milliseconds), one pair each way at ``--rate-hz``
for ``--seconds``, ping and the probes at the same time. Per method: samples, loss, the fraction on
a whole millisecond (|rtt x 1000 - round| < 1e-6), the smallest non-zero difference
between consecutive samples of a pair, median and p99 RTT minus the geometric RTT.

Cost: ``--hosts`` hosts on a chain, every ordered pair probed (5 hosts: 20 pairs) at
``--rate-hz``; CPU (utime + stime from /proc) of all probe processes, as a share of one
core, and the same for one ping per pair. Prints Markdown.

Usage: flock /tmp/emu.lock .venv/bin/python benchmarks/bench_probes.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.emulation import Emulation  # noqa: E402
from testbed.net.plan import chain_plan, make_plan  # noqa: E402
from testbed.traffic.probes import ProbeMesh  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def resolution_row(name: str, rows: pd.DataFrame, geo_rtt_s: float) -> str:
    rtt = rows["rtt_s"].to_numpy(float)
    got = rtt[~np.isnan(rtt)]
    on_ms = np.abs(got * 1e3 - np.round(got * 1e3)) < 1e-6
    steps = np.concatenate([np.abs(np.diff(g["rtt_s"].dropna().to_numpy())) for _, g in rows.groupby(["src", "dst"])])
    steps = steps[steps > 0]
    return (f"| {name} | {len(rtt)} | {np.isnan(rtt).mean():.3f} | {on_ms.mean():.3f} | "
            f"{steps.min() * 1e6:.3f} | {(np.median(got) - geo_rtt_s) * 1e3:.3f} | "
            f"{(np.percentile(got, 99) - geo_rtt_s) * 1e3:.3f} |")


def start_pings(emu, pairs, rate_hz: float, seconds: float):
    count = int(seconds * rate_hz)
    return time.time(), [(s, d, emu.start_ping(s, d, count=count, interval_s=1 / rate_hz, deadline_s=seconds + 1))
                         for s, d in pairs]


def finish_pings(emu, started) -> tuple[pd.DataFrame, float]:
    """Rows (src, dst, seq, rtt_s; NaN = lost) of pings from :func:`start_pings`, CPU s per s."""
    t0, procs = started
    cpu = sum(cpu_s(p.pid) for _, _, p in procs) / (time.time() - t0)
    rows = []
    for s, d, p in procs:
        res = emu.finish_ping(p)
        got = dict(zip(res.seqs, res.rtts_s))            # duplicates (DUP!) count once
        rows += [(s, d, q, got.get(q, np.nan)) for q in range(1, res.sent + 1)]
    return pd.DataFrame(rows, columns=["src", "dst", "seq", "rtt_s"]), cpu


def ping_rows(emu, pairs, rate_hz: float, seconds: float) -> tuple[pd.DataFrame, float]:
    """One ``ping -D`` per pair, in parallel, for ``seconds``."""
    started = start_pings(emu, pairs, rate_hz, seconds)
    time.sleep(seconds - 0.3)
    return finish_pings(emu, started)


def probe_rows(emu, pairs, rate_hz: float, seconds: float) -> tuple[pd.DataFrame, float]:
    """The probe mesh's rows and its CPU seconds per second of probing (interpreter start excluded)."""
    mesh = ProbeMesh(emu, pairs, rate_hz, seconds)
    t0, cpu0 = time.time(), sum(cpu_s(p.pid) for p in mesh.procs.values())
    time.sleep(max(0.0, mesh.start_unix + seconds - 0.3 - time.time()))
    cpu = sum(cpu_s(p.pid) for p in mesh.procs.values()) - cpu0
    return mesh.collect(), cpu / (time.time() - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate-hz", type=float, default=20.0)
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--hosts", type=int, default=5)
    args = ap.parse_args()
    log = Path(tempfile.mkdtemp(prefix="bench-probes-"))
    plan = chain_plan(3, args.delay_ms / 1e3, 20e6)
    geo = 2 * len(plan.links) * args.delay_ms / 1e3
    pairs = [("h0", "h2"), ("h2", "h0")]
    with Emulation(plan, "min_hop", log_dir=log / "res") as emu:
        emu.ping("h0", "h2", count=2, interval_s=0.1)
        # Both at once: the same network state (load from other jobs varies over seconds).
        started = start_pings(emu, pairs, args.rate_hz, args.seconds + 0.5)
        probes, _ = probe_rows(emu, pairs, args.rate_hz, args.seconds)
        ping, _ = finish_pings(emu, started)
    probes.to_csv(log / "probes.csv", index=False)
    print(f"## Probe resolution: chain of 3 switches, {args.delay_ms:g} ms per link (geometric RTT "
          f"{geo * 1e3:g} ms), 2 pairs x {args.rate_hz:g} Hz x {args.seconds:g} s\n")
    print("| method | samples | loss | on whole ms | smallest step (us) | median - geo (ms) | p99 - geo (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(resolution_row("ping -D (text)", ping, geo))
    print(resolution_row("UDP probes (kernel stamps)", probes, geo))
    print(f"\nprobes: kernel TX stamps on {probes['tx_kernel'].mean():.3f} of probes; reflector turnaround "
          f"median {probes['turnaround_s'].median() * 1e6:.0f} us (excluded from rtt_s); rows in {log}")

    n = args.hosts
    big = make_plan(range(n), {i: (f"h{i}", "compute") for i in range(n)},
                    [(i, i + 1, "isl", 20e6, 0.005, True) for i in range(n - 1)])
    all_pairs = [(f"h{a}", f"h{b}") for a in range(n) for b in range(n) if a != b]
    with Emulation(big, "min_hop", log_dir=log / "cost") as emu:
        for s, d in all_pairs[: n - 1]:
            emu.ping(s, d, count=1, interval_s=0.1)
        ping, ping_cpu = ping_rows(emu, all_pairs, args.rate_hz, args.seconds)
        probes, probe_cpu = probe_rows(emu, all_pairs, args.rate_hz, args.seconds)
    print(f"\n## Probe cost: {len(all_pairs)} pairs x {args.rate_hz:g} Hz on {n} hosts, {args.seconds:g} s\n")
    print("| method | processes | CPU (% of one core) | loss |")
    print("|---|---:|---:|---:|")
    print(f"| ping -D | {len(all_pairs)} | {ping_cpu * 100:.1f} | {ping['rtt_s'].isna().mean():.3f} |")
    print(f"| UDP probes | {n} | {probe_cpu * 100:.1f} | {probes['rtt_s'].isna().mean():.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
