"""Loss, reordering and mixed-generation packets per scheduled change: ``min_delay`` and
``predictive``, each with direct and with consistent updates (needs root + OVS).

Scenario (the ladder of tests/test_emulation_consistent.py): six switches, h0 on 0 and h5
on 5; the short path 0-1-2-5 (40 ms one way) uses link 1-2, which the schedule takes down
in three windows (``DOWN_S``) and brings back after each: six scheduled changes. The
detour 0-3-4-5 takes 60 ms; a packet forwarded by two generations (old rules at one
switch, new at the next) takes 0-1-4-5 (90 ms) or, on the way back, 5-2-5-4-3-0 (80 ms,
only deliverable through direct mode's hairpin companion at switch 2). UDP probes h0 -> h5
at ``--rate-hz`` with kernel timestamps; a probe counts as lost with no reply in 1 s,
reordered when its reply came after a later probe's, mixed when its forward one-way delay
exceeds 75 ms, hairpinned when its return one-way delay does (the return mix exists only
because a hairpin companion sent it back: without those rules it would be lost).

Each lost, reordered or mixed probe is charged to the nearest scheduled change by send
time; the table gives the mean per change over ``--trials`` fresh networks with a 95 %
t-interval over trials (n = trials). Resolution: one probe = 1 / rate_hz s of traffic.

Usage: flock /tmp/emu.lock .venv/bin/python benchmarks/bench_updates.py [--trials 3] [--rate-hz 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.emulation import Emulation  # noqa: E402
from testbed.net.clock import LinkTimeline  # noqa: E402
from testbed.net.plan import make_plan  # noqa: E402
from testbed.traffic.probes import ProbeMesh  # noqa: E402

LADDER = [(0, 1, 0.020), (0, 3, 0.020), (1, 2, 0.010), (1, 4, 0.050), (2, 5, 0.010), (3, 4, 0.020),
          (4, 5, 0.020)]             # sorted by (a, b): make_plan numbers links in this order
DROP_LINK = 2                        # 1-2
STEP_S = 0.25
DOWN_S = ((2.0, 3.0), (4.5, 5.5), (7.0, 8.0))
DURATION_S = 9.0
MIXED_ABOVE_S = 0.075
RUNS = [("min_delay", {}, "direct"), ("min_delay", {}, "consistent"),
        ("predictive", {"horizon_s": 0.5}, "direct"), ("predictive", {"horizon_s": 0.5}, "consistent")]


def scenario():
    plan = make_plan(range(6), {0: ("h0", "compute"), 5: ("h5", "compute")},
                     [(a, b, "isl", 20e6, d, True) for a, b, d in LADDER])
    times = np.arange(0, DURATION_S, STEP_S)
    up = np.ones((len(times), len(LADDER)), dtype=bool)
    for a, b in DOWN_S:
        up[(times >= a) & (times < b), DROP_LINK] = False
    return plan, LinkTimeline(times, np.tile([d for _, _, d in LADDER], (len(times), 1)), up)


def one_run(algorithm, params, updates, rate_hz, workdir: Path) -> dict[str, np.ndarray]:
    """Counts per scheduled change (arrays of len 6): lost, reordered, mixed (forward), hairpinned
    (return path 5-2-5-4-3-0: sent back by switch 2's hairpin companion)."""
    plan, tl = scenario()
    with Emulation(plan, algorithm, params, log_dir=workdir, timeline=tl, future_steps=4, updates=updates) as emu:
        emu.ping("h0", "h5", count=2, interval_s=0.05)
        mesh = ProbeMesh(emu, [("h0", "h5")], rate_hz=rate_hz, duration_s=DURATION_S, timeout_s=1.0)
        start = mesh.start_unix + 0.2
        emu.clock.run(start_unix=start)
        rows = mesh.collect()
    changes = np.array(sorted(t for window in DOWN_S for t in window))
    t = rows["t_unix"].to_numpy() - start
    nearest = np.abs(t[:, None] - changes[None, :]).argmin(axis=1)
    flags = {"lost": rows["rtt_s"].isna().to_numpy(), "reordered": rows["reordered"].to_numpy(),
             "mixed": (rows["one_way_s"] > MIXED_ABOVE_S).to_numpy(),
             "hairpinned": (rows["back_s"] > MIXED_ABOVE_S).to_numpy()}
    return {k: np.bincount(nearest[f], minlength=len(changes)) for k, f in flags.items()}


def interval(per_trial: list[float]) -> str:
    x = np.asarray(per_trial, float)
    if len(x) < 2:
        return f"{x.mean():.2f}"
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return f"{x.mean():.2f} ± {half:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--rate-hz", type=float, default=200.0)
    args = ap.parse_args()
    print("| algorithm | updates | lost / drop | lost / return | reordered / change | mixed / change "
          "| hairpinned / change | lost per trial |\n|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-updates-") as tmp:
        for algorithm, params, updates in RUNS:
            per = [one_run(algorithm, params, updates, args.rate_hz, Path(tmp) / f"{algorithm}-{updates}-{k}")
                   for k in range(args.trials)]
            drops, returns = slice(0, None, 2), slice(1, None, 2)     # changes alternate: down, up, ...
            print(f"| {algorithm} | {updates} | {interval([p['lost'][drops].mean() for p in per])} "
                  f"| {interval([p['lost'][returns].mean() for p in per])} "
                  f"| {interval([p['reordered'].mean() for p in per])} | {interval([p['mixed'].mean() for p in per])} "
                  f"| {interval([p['hairpinned'].mean() for p in per])} "
                  f"| {[int(p['lost'].sum()) for p in per]} |", flush=True)


if __name__ == "__main__":
    main()
