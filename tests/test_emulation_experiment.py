"""Experiments end to end on the real stack: the default experiment, and an interrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def test_default_experiment_runs_end_to_end_with_every_table_and_plot(testbed_cli, tmp_path):
    r = testbed_cli("demo", "--results", str(tmp_path), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = list((tmp_path / "default").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert not (run / "INCOMPLETE").exists()
    manifest = json.loads((run / "manifest.json").read_text())
    for key in ("spec", "seed", "git_commit", "versions", "backend", "rate_scale", "speedup", "host"):
        assert key in manifest
    assert manifest["delay_emulated"] is True
    for label in manifest["algorithms"]:
        for name, columns in TABLES.items():
            df = pd.read_parquet(run / label / f"{name}.parquet")
            assert (run / label / f"{name}.csv").stat().st_size > 0
            assert columns <= set(df.columns), (label, name, set(df.columns))
            assert len(df) > 0, (label, name)
        rtt = pd.read_parquet(run / label / "rtt.parquet").dropna(subset=["rtt_s"])
        # Plausible: never faster than light along the schedule's best path; mostly close to it.
        assert (rtt["rtt_s"] >= rtt["geo_rtt_s"] - 0.5e-3).all(), label
        assert (rtt["rtt_s"] - rtt["geo_rtt_s"]).median() < 0.05, label
        assert pd.read_parquet(run / label / "transfers.parquet")["size_bytes"].sum() > 0
        # Satellites of a +Grid shell stay connected: a compute pair is never unreachable
        # (the tear-down's ports going down once showed up here as path changes).
        compute = set(rtt["src"]) | set(rtt["dst"])
        paths = pd.read_parquet(run / label / "paths.parquet")
        gone = paths[(paths["hops"] < 0) & paths["src"].isin(compute) & paths["dst"].isin(compute)]
        assert gone.empty, (label, gone.head())
    for name in PLOTS:
        for ext in ("png", "pdf"):
            assert (run / "plots" / f"{name}.{ext}").stat().st_size > 1000, name
    # Every workload records when its agents began relative to step 0 of the orbit clock.
    summary = json.loads((run / "summary.json").read_text())["algorithms"]
    for label in manifest["algorithms"]:
        for w in summary[label]["workloads"].values():
            assert w["start_late_s"] is not None and 0 <= w["start_late_s"] < 60, (label, w)
    report = (run / "report.md").read_text()
    assert "rate_scale" in report and all(label in report for label in manifest["algorithms"])
    assert leftovers() == {"bridges": [], "netns": [], "interfaces": [], "processes": []}


def test_sigint_mid_run_cleans_up_and_marks_the_folder_incomplete(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "demo", "--results", str(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:   # wait until a network is up and replaying
        if leftovers()["bridges"] and any((tmp_path / "default").glob("*/min_hop")):
            break
        time.sleep(0.5)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert leftovers() == {"bridges": [], "netns": [], "interfaces": [], "processes": []}
    runs = list((tmp_path / "default").iterdir())
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
    r = testbed_cli("run", str(spec), "--cli", "--results", str(tmp_path),
                    input="nodes\nc_unknown\npingall\ndpctl lms0\ndpctl lms9999\nexit\n", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "hosts:" in r.stdout and "*** unknown command or host: c_unknown" in r.stdout
    assert "*** 0/12 lost" in r.stdout
    # dpctl reads the rules from the run's own OVS daemon holding lms0.
    assert "nw_dst=10.100." in r.stdout and "actions=" in r.stdout
    assert "no switch 'lms9999'" in r.stdout
    run = next((tmp_path / "tiny").iterdir())
    assert not (run / "INCOMPLETE").exists()
    # The background flow ran at its scaled rate: 50 Gbit/s x 1e-4 = 5 Mbit/s.
    thr = pd.read_parquet(run / "min_delay" / "throughput.parquet")
    assert len(thr) >= 2 and thr["bps"].median() == pytest.approx(5e6, rel=0.1)
    # The capture was replayed open loop during the run: every packet delivered, at its
    # orbital time, never faster than the links' delays between the two hosts allow.
    pcap = pd.read_parquet(run / "min_delay" / "pcap.parquet")
    assert len(pcap) == 100 and pcap["one_way_s"].notna().all()
    assert pcap["t_s"].min() == pytest.approx(1.0, abs=0.1) and pcap["late_s"].median() < 1e-3
    ends = set(pcap["src"]) | set(pcap["dst"])
    rtt = pd.read_parquet(run / "min_delay" / "rtt.parquet")
    same_pair = rtt[[{a, b} == ends for a, b in zip(rtt["src"], rtt["dst"])]]
    assert len(ends) == 2 and len(same_pair) > 0
    assert (pcap["one_way_s"] >= same_pair["geo_rtt_s"].min() / 2 - 0.5e-3).all()
    summary = json.loads((run / "summary.json").read_text())["algorithms"]["min_delay"]
    assert summary["pcap"]["udp"]["packets"] == 100 and summary["pcap"]["udp"]["loss"] == 0.0
