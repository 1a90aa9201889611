"""Run examples/widest.toml from Python (a user's algorithm from a file against min_delay)
and compare the algorithms' probe RTTs. Needs root, like `testbed run`.

    sudo .venv/bin/python examples/run_widest.py [RESULTS_ROOT]
"""

import sys
from pathlib import Path

import testbed

HERE = Path(__file__).resolve().parent


def main(results_root: str = "results") -> None:
    spec = testbed.load_spec(HERE / "widest.toml")
    run_dir = testbed.run(spec, results_root=results_root)
    tables = testbed.load_results(run_dir)            # one tidy DataFrame per table
    rtt = tables["rtt"].dropna(subset=["rtt_s"])
    excess_ms = (rtt["rtt_s"] - rtt["geo_rtt_s"]) * 1e3
    per_algorithm = excess_ms.groupby(rtt["algorithm"]).median()
    print(f"run folder: {run_dir}")
    for algorithm, value in per_algorithm.items():
        print(f"{algorithm}: median RTT above the geometric RTT {value:.3f} ms")


if __name__ == "__main__":
    main(*sys.argv[1:])
