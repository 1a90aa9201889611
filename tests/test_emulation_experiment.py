"""Experiments end to end on the real stack: the default experiment, and an interrupted run."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, leftovers, write_capture

pytestmark = pytest.mark.emulation

TABLES = {
    "clock": {"step", "t_s", "delay_changes", "links_up", "links_down", "apply_s", "controller_s", "lag_s",
              "flow_mods"},
    "rtt": {"t_s", "src", "dst", "seq", "rtt_s", "geo_rtt_s"},
    "paths": {"t_s", "src", "dst", "path", "hops"},
    "link_util": {"t_s", "a", "b", "utilisation"},
    "collectives": {"rank", "duration_s", "slowdown"},
    "iterations": {"rank", "slowdown"},
    "transfers": {"rank", "direction", "size_bytes"},
}
PLOTS = ["rtt_over_time", "path_changes", "collective_cdf", "iteration_cdf", "slowdown", "link_utilisation",
         "constellation"]


def _geo_floor_s(rtt: pd.DataFrame, step_s: float) -> pd.Series:
    """Per probe, the least geometric RTT of its pair within one step of its send time: a probe
    in flight across a change may go out on the old path and come back on the new one, and the
    clock applies a step a few ms after it is due (with speedup 4, up to a step of orbit)."""
    floor = pd.Series(index=rtt.index, dtype=float)
    for _, rows in rtt.groupby(["src", "dst"]):
        rows = rows.sort_values("t_s")
        t, geo = rows["t_s"].to_numpy(), rows["geo_rtt_s"].to_numpy()
        lo = np.searchsorted(t, t - step_s, side="left")
        hi = np.searchsorted(t, t + step_s, side="right")
        floor[rows.index] = [geo[a:b].min() for a, b in zip(lo, hi)]
    return floor


def test_default_experiment_runs_end_to_end_with_every_table_and_plot(testbed_cli, tmp_path):
    r = testbed_cli("demo", "--results", str(tmp_path), timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = list((tmp_path / "default").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert not (run / "INCOMPLETE").exists()
    manifest = json.loads((run / "manifest.json").read_text())
    for key in ("spec", "seed", "git_commit", "versions", "backend", "rate_scale", "speedup", "host", "trials",
                "trial_seeds", "trial_order", "time_base", "fidelity"):
        assert key in manifest
    assert manifest["delay_emulated"] is True          # read back from the backend, every network
    trials = manifest["trials"]
    assert trials >= 3 and len({tuple(o) for o in manifest["trial_order"]}) == min(trials, len(manifest["algorithms"]))
    summary = json.loads((run / "summary.json").read_text())
    path_changes = {}
    for label in manifest["algorithms"]:
        for k in range(trials):
            folder = run / label / f"trial-{k}"
            for name, columns in TABLES.items():
                df = pd.read_parquet(folder / f"{name}.parquet")
                assert (folder / f"{name}.csv").stat().st_size > 0
                assert columns | {"trial"} <= set(df.columns), (label, k, name, set(df.columns))
                assert len(df) > 0 and (df["trial"] == k).all(), (label, k, name)
            rtt = pd.read_parquet(folder / "rtt.parquet").dropna(subset=["rtt_s"])
            # Plausible: never faster than light along the schedule's best path around the send
            # time (see _geo_floor_s); mostly close to it.
            assert (rtt["rtt_s"] >= _geo_floor_s(rtt, step_s=manifest["step_s"]) - 0.5e-3).all(), (label, k)
            assert (rtt["rtt_s"] - rtt["geo_rtt_s"]).median() < 0.05, (label, k)
            # The injected laser loss is applied and recorded in every network.
            faults = pd.read_parquet(folder / "faults.parquet")
            assert list(faults["kind"]) == ["laser"] and "4-5" in faults["detail"].iloc[0]
            compute = {h for h in set(rtt["src"]) | set(rtt["dst"]) if not h.startswith(("svalbard", "reykjavik"))}
            paths = pd.read_parquet(folder / "paths.parquet")
            gone = paths[(paths["hops"] < 0) & paths["src"].isin(compute) & paths["dst"].isin(compute)]
            assert gone.empty, (label, k, gone.head())       # the lasers that drop never cut compute apart
            trial = summary["algorithms"][label]["trials"][str(k)]
            path_changes[(label, k)] = trial["path_changes"]
            for w in trial["workloads"].values():
                assert w["start_late_s"] is not None and 0 <= w["start_late_s"] < 60, (label, k, w)
    # What the demo exists to show: routing reacts to the scheduled changes ...
    assert max(path_changes.values()) > 0, path_changes
    # ... and the report says, in words, which differences are significant over the trials.
    report = (run / "report.md").read_text()
    assert "better: `" in report, report[:3000]
    assert "speedup" in report.split("\n## ")[0]       # speedup > 1 is stated in the first lines
    stats = summary["statistics"]
    assert stats and "per_algorithm" in stats
    for name in PLOTS:
        if name == "path_changes" and "### Path changes\n\nNo figure: no algorithm changed the path" in report:
            continue      # nothing to show: the report says so in one sentence instead
        for ext in ("png", "pdf"):
            assert (run / "plots" / f"{name}.{ext}").stat().st_size > 1000, name
    assert "rate_scale" in report and all(label in report for label in manifest["algorithms"])
    assert leftovers() == {"bridges": [], "netns": [], "interfaces": [], "processes": []}


@pytest.mark.uml
def test_sigint_mid_run_cleans_up_and_marks_the_folder_incomplete(tmp_path):
    # tests/specs/tiny.toml for 60 s of orbit with a second algorithm still to come: Ctrl-C
    # arrives while the first one's network replays, with traffic, probes and the clock running.
    text = (REPO / "tests" / "specs" / "tiny.toml").read_text().replace("duration_s = 4", "duration_s = 60")
    (tmp_path / "long.toml").write_text(text + '\n[[algorithms]]\nname = "min_hop"\n')
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "run", "--results", str(tmp_path),
                             str(tmp_path / "long.toml")], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:   # wait until a network is up and replaying
        if leftovers()["bridges"] and any((tmp_path / "tiny").glob("*/min_delay/trial-0")):
            break
        time.sleep(0.5)
    time.sleep(3)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert leftovers() == {"bridges": [], "netns": [], "interfaces": [], "processes": []}
    runs = list((tmp_path / "tiny").iterdir())
    assert len(runs) == 1 and (runs[0] / "INCOMPLETE").exists()
    assert not (runs[0] / "report.md").exists()


def tiny_with_capture(folder: Path) -> Path:
    """tests/specs/tiny.toml plus a 100-packet UDP capture between two outside addresses
    (10 ms apart), replayed between compute:0 and compute:2 from 1 s of orbital time."""
    write_capture(folder / "cap.pcap")
    text = (REPO / "tests" / "specs" / "tiny.toml").read_text()
    text += '\n[[pcap]]\nlabel = "udp"\nfile = "cap.pcap"\nhosts = ["compute:0", "compute:2"]\nstart_s = 1.0\n'
    (folder / "tiny.toml").write_text(text)
    return folder / "tiny.toml"


def test_cli_shell_explores_the_running_network(testbed_cli, tmp_path):
    spec = tiny_with_capture(tmp_path / "spec")
    # Mininet's CLI (testbed/mininet/cli.py) while the run replays, then the run goes on.
    r = testbed_cli("run", str(spec), "--cli", "--results", str(tmp_path),
                    input="nodes\nc_unknown\npingall\ndpctl dump-flows\nexit\n", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout + r.stderr
    assert "available nodes are: " in out and "lms15" in out and "test4x4-p3-s0" in out
    assert "*** Unknown command: c_unknown" in out
    assert "*** Results: 0% dropped (12/12 received)" in out
    # dpctl reads the rules from the run's own OVS daemon holding each switch.
    assert "*** lms0 ---" in out and "nw_dst=10.100." in out and "actions=" in out
    run = next((tmp_path / "tiny").iterdir())
    assert not (run / "INCOMPLETE").exists()
    tables = run / "min_delay" / "trial-0"     # one trial: tables per <label>/trial-<k>/
    # The background flow ran at its scaled rate: 50 Gbit/s x 1e-4 = 5 Mbit/s.
    thr = pd.read_parquet(tables / "throughput.parquet")
    assert len(thr) >= 2 and thr["bps"].median() == pytest.approx(5e6, rel=0.1)
    # The capture was replayed open loop during the run: every packet delivered, at its
    # orbital time, never faster than the links' delays between the two hosts allow.
    pcap = pd.read_parquet(tables / "pcap.parquet")
    assert len(pcap) == 100 and pcap["one_way_s"].notna().all()
    assert pcap["t_s"].min() == pytest.approx(1.0, abs=0.1) and pcap["late_s"].median() < 1e-3
    ends = set(pcap["src"]) | set(pcap["dst"])
    rtt = pd.read_parquet(tables / "rtt.parquet")
    same_pair = rtt[[{a, b} == ends for a, b in zip(rtt["src"], rtt["dst"])]]
    assert len(ends) == 2 and len(same_pair) > 0
    assert (pcap["one_way_s"] >= same_pair["geo_rtt_s"].min() / 2 - 0.5e-3).all()
    summary = json.loads((run / "summary.json").read_text())["algorithms"]["min_delay"]["trials"]["0"]
    assert summary["pcap"]["udp"]["packets"] == 100 and summary["pcap"]["udp"]["loss"] == 0.0
