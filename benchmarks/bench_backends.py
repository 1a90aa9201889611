"""The link backends side by side on the slice (needs root + OVS).

For each backend given (default: every one this machine can run), runs ``testbed slice``
``--repeats`` times (3 switches, 2 laser links of 5 ms and 20 Mbit/s, ping every 0.2 s,
a 5 s iperf3) and prints a Markdown table: RTT error against the geometric 20 ms (median
and p90 of the per-run medians of ``--pings`` samples, ping's 0.01 ms resolution at these
RTTs), and iperf3 goodput as a fraction of the shaped rate and of the most TCP payload a
frame-counting shaper carries (1448 of 1514 bytes). netem needs sch_netem: run this inside
the UML guest (``scripts/uml.sh .venv/bin/python benchmarks/bench_backends.py``).

Usage: .venv/bin/python benchmarks/bench_backends.py [--backends netem delayline] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testbed.system import machine as probe  # noqa: E402


def slice_once(backend: str, pings: int, iperf_s: int, out: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "testbed", "slice", "--backend", backend, "--pings", str(pings),
                        "--iperf-s", str(iperf_s), "--results", str(out)], cwd=REPO, capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench_backends: slice with {backend} failed: {(r.stderr or r.stdout).strip()[-300:]}")
    run = sorted((out / "slice").iterdir())[-1]
    summary = json.loads((run / "summary.json").read_text())
    summary["ovs_datapath"] = json.loads((run / "manifest.json").read_text())["ovs_datapath"]
    return summary


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pings", type=int, default=50)
    ap.add_argument("--iperf-s", type=int, default=5)
    args = ap.parse_args()
    caps = probe.require_runnable()
    backends = args.backends or [b for b in ("netem", "delayline")
                                 if (b != "netem" or caps.netem) and (b != "delayline" or caps.delayline_binary)]
    print("| backend | OVS datapath | runs | RTT error vs geometry, median of run medians (ms) | worst run median (ms) "
          "| iperf3 / shaped rate, median (range) | iperf3 / TCP payload rate, median |")
    print("|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for b in backends:
            runs = [slice_once(b, args.pings, args.iperf_s, Path(tmp) / f"{b}{i}") for i in range(args.repeats)]
            err_ms = [(s["rtt_median_s"] - s["expected_rtt_s"]) * 1e3 for s in runs]
            frac = [s["iperf3_fraction_of_rate"] for s in runs]
            pay = [s["iperf3_fraction_of_payload_rate"] for s in runs]
            print(f"| {b} | {runs[0]['ovs_datapath']} | {len(runs)} | {statistics.median(err_ms):.2f} | "
                  f"{max(err_ms):.2f} | {statistics.median(frac):.3f} ({min(frac):.3f}-{max(frac):.3f}) | "
                  f"{statistics.median(pay):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
