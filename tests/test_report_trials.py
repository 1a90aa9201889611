"""The report, the loader and ``testbed compare`` on synthetic runs with repeated trials
(tests/fixtures_report.py writes the ``<label>/trial-<k>/`` layout; no emulation).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_report  # noqa: E402

from testbed.cli import main  # noqa: E402
from testbed.report import load_run, make_report  # noqa: E402
from testbed.report import constellation, utilisation  # noqa: E402
from testbed.report.common import Context, window_s  # noqa: E402
from testbed.report.style import pyplot  # noqa: E402
from testbed.results import load_results  # noqa: E402

plt = pyplot()
#: predictive routes like min_delay (same paths) and draws the same noise: equal distributions.
LABELS = ("min_delay", "predictive", "load_aware")
PROFILES = {"min_delay": 0, "predictive": 0, "load_aware": 2}


@pytest.fixture(scope="module")
def schedule():
    return fixtures_report.make_schedule()


@pytest.fixture(scope="module")
def four(tmp_path_factory, schedule):
    run = fixtures_report.write_run(tmp_path_factory.mktemp("four"), schedule=schedule, trials=4,
                                    algorithms=LABELS, profiles=PROFILES, speedup=10.0, power=True, faults=True)
    return run, make_report(run)


def section(text: str, title: str) -> str:
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_two_trial_run_reads_per_trial_tables_and_says_no_interval(tmp_path, schedule):
    run = fixtures_report.write_run(tmp_path, schedule=schedule, trials=2, algorithms=("min_delay", "min_hop"))
    assert (run / "min_hop" / "trial-1" / "rtt.parquet").exists()
    data = load_run(run)
    assert data.trials == (0, 1)
    assert set(data.table("min_hop", "rtt")["trial"]) == {0, 1}
    stats = json.loads((run / "summary.json").read_text())["statistics"]
    entry = stats["per_algorithm"]["min_hop"]["flow_mods"]
    assert entry["n"] == 2 and entry["low"] is None and "no interval" in entry["why"]
    text = make_report(run).report.read_text()
    assert "2 trials (seeds 7, 8); the order of algorithms was rotated across trials." in text
    assert "No significant difference can be claimed for any of the" in text
    assert "**" not in section(text, "Results").split("\n\n")[1]


def test_intervals_significance_and_identical_paths_in_words(four):
    run, result = four
    assert result.skipped == {}
    text = result.report.read_text()
    first = "\n".join(text.splitlines()[:4])
    assert "Time compressed: speedup = 10" in first
    table = section(text, "Results").split("\n\n")[1].splitlines()
    rows = {r.split("|")[1].strip(" `"): [c.strip() for c in r.split("|")[2:-1]] for r in table[2:]}
    assert list(rows) == list(LABELS)
    assert all("[" in cell for cell in rows["min_delay"] if cell != "n/a")      # mean [low, high]
    differences = section(text, "Differences between algorithms")
    assert ("**Identical paths:** `min_delay` and `predictive` installed identical paths for every host "
            "pair throughout every trial") in differences
    # equal distributions: no significant difference on RTT; a clear shift: significant
    assert "- RTT excess median: `min_delay` vs `predictive`: no significant difference (" in differences
    assert "- RTT excess median: **better: `min_delay`** (`min_delay` lower than `load_aware`" in differences
    assert "- path changes: **`min_delay` and `load_aware` differ**" in differences
    # bold cells only where that algorithm beats every other significantly
    assert not any(c.startswith("**") for c in rows["predictive"] + rows["load_aware"])
    stats = json.loads((run / "summary.json").read_text())["statistics"]
    assert stats["trials"] == 4 and stats["order"]["rotated"] is True


def test_percentiles_without_enough_samples_are_explained(four):
    run, result = four
    text = result.report.read_text()
    assert ("collective p99 [s] not given: a p99 needs at least 100 samples per trial; the trials had 20"
            in text)
    assert "collective p99" not in section(text, "Results").split("\n\n")[1]


def test_no_path_change_replaces_the_figure_by_a_sentence(tmp_path, schedule):
    run = fixtures_report.write_run(tmp_path, schedule=schedule, trials=3, algorithms=("min_delay", "min_hop"),
                                    outage=False, omit=("link_util", "throughput", "collectives",
                                                        "iterations", "transfers"))
    result = make_report(run)
    assert "path_changes" in result.skipped
    assert not (run / "plots" / "path_changes.png").exists()
    text = result.report.read_text()
    assert ("### Path changes\n\nNo figure: no algorithm changed the path of any of the 20 probed host pairs "
            "in any of the 3 trials") in text
    assert "**Identical paths:**" not in text                 # min_hop routes by hops, min_delay by delay


def test_utilisation_colours_come_from_the_data_and_agree_across_figures(four):
    run, _ = four
    ctx = Context.of(load_run(run))
    top = max(float(t["utilisation"].max()) for t in ctx.run.available("link_util").values())
    heat = utilisation.draw(ctx)
    try:
        image = heat.axes[0].images[0]
        assert image.norm.vmin == 0 and image.norm.vmax == pytest.approx(top)
        assert f"scale 0 to {top:.3g}" in heat.axes[-1].get_ylabel()
        labels = [t.get_text() for t in heat.axes[0].get_yticklabels()]
        assert [l.split("\n")[0] for l in labels] == ["intra-plane ISL", "inter-plane ISL", "ground link"]
        assert heat.axes[0].get_xlim() == pytest.approx(window_s(ctx.run))   # the whole window
        cmap = image.cmap
    finally:
        plt.close(heat)
    snap = constellation.draw(ctx)
    try:
        loaded = [c for c in snap.axes[0].collections if getattr(c, "get_array", lambda: None)() is not None
                  and c.get_cmap() is not None and c.norm is not None and c.norm.vmax == pytest.approx(top)]
        assert loaded, "constellation links not on the heat map's scale"
        assert all(c.get_cmap()(0.9) == cmap(0.9) for c in loaded)          # same colour, same meaning
    finally:
        plt.close(snap)


def test_load_results_returns_tidy_frames_of_every_table(four):
    run, _ = four
    tables = load_results(run)
    assert set(tables) == set(fixtures_report.TABLES) | {"faults", "power"}
    power = tables.pop("power")                 # run level: one row per step and compute host
    assert "algorithm" not in power.columns and len(power) == 4 * 20
    for name, frame in tables.items():
        assert list(frame.columns[:2]) == ["algorithm", "trial"], name
        assert set(frame["algorithm"]) == set(LABELS) and set(frame["trial"]) == {0, 1, 2, 3}, name
        assert "t_s" in frame.columns and frame["t_s"].notna().all(), name
    per_file = sum(len(pd.read_parquet(run / l / f"trial-{k}" / "transfers.parquet")) for l in LABELS for k in range(4))
    assert len(tables["transfers"]) == per_file


def test_load_results_derives_orbital_time_from_the_time_base(tmp_path, schedule):
    run = fixtures_report.write_run(tmp_path, schedule=schedule, trials=1, algorithms=("min_delay",),
                                    speedup=4.0)
    path = run / "min_delay" / "trial-0" / "iterations.parquet"
    frame = pd.read_parquet(path)
    (run / "min_delay" / "trial-0" / "iterations.csv").unlink()
    frame.drop(columns="t_s").to_parquet(path)                 # a table written without t_s
    base = json.loads((run / "manifest.json").read_text())["time_base"]["min_delay/0"]
    got = load_results(run)["iterations"]["t_s"].to_numpy()
    expected = (frame["start_time_s"].to_numpy() - base["start_unix"]) * 4.0 + base["t_first_s"]
    np.testing.assert_allclose(got, expected)


def test_bad_trial_keys_exit_2_with_one_line(tmp_path, schedule, capsys):
    run = fixtures_report.write_run(tmp_path, schedule=schedule, trials=2, algorithms=("min_delay", "min_hop"),
                                    omit=("rtt", "paths", "collectives", "iterations", "transfers",
                                          "throughput", "link_util", "pcap"))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["trial_order"][1] = ["min_delay", "min_delay"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "manifest.json: 'trial_order'[1] must list each algorithm" in err[0]


# ------------------------------------------------------------------ testbed compare


@pytest.fixture(scope="module")
def runs(tmp_path_factory, schedule):
    root = tmp_path_factory.mktemp("cmp")
    kw = dict(schedule=schedule, trials=4, algorithms=("min_delay", "min_hop"))
    base = fixtures_report.write_run(root / "a", run_id="20250101T000000Z-aaaa", **kw)
    same = fixtures_report.write_run(root / "b", run_id="20250102T000000Z-bbbb", **kw)
    slower = fixtures_report.write_run(root / "c", run_id="20250103T000000Z-cccc", rtt_shift_s=2e-3, **kw)
    other = fixtures_report.write_run(root / "d", run_id="20250104T000000Z-dddd", trial_seeds=[50, 51, 52, 53], **kw)
    manifest = json.loads((slower / "manifest.json").read_text())
    manifest["spec"]["constellation"]["preset"] = "test4x4-slow"
    (slower / "manifest.json").write_text(json.dumps(manifest))
    return base, same, slower, other


def test_compare_pairs_by_trial_when_seeds_are_shared(runs, tmp_path, capsys):
    base, _, slower, _ = runs
    assert main(["compare", str(base), str(slower), "--out", str(tmp_path / "out")]) == 0
    assert str(tmp_path / "out" / "compare.md") in capsys.readouterr().out
    text = (tmp_path / "out" / "compare.md").read_text()
    assert "differences are **paired by trial index**" in text
    assert "`spec.constellation.preset`: `test4x4` vs `test4x4-slow`" in text
    assert ("- RTT excess median: **better: `20250101T000000Z-aaaa/min_delay`** "
            "(`20250101T000000Z-aaaa/min_delay` lower than `20250103T000000Z-cccc/min_delay`") in text
    assert (tmp_path / "out" / "plots" / "compare_metrics.png").stat().st_size > 5000


def test_compare_of_the_same_scenario_finds_no_difference_and_welch_without_shared_seeds(runs, tmp_path):
    base, same, _, other = runs
    main(["compare", str(base), str(same), "--out", str(tmp_path / "same")])
    text = (tmp_path / "same" / "compare.md").read_text()
    assert "nothing in the spec or the commit" in text
    assert "No comparison shows a significant difference" in text       # same seeds, same numbers
    main(["compare", str(base), str(other), "--out", str(tmp_path / "other")])
    text = (tmp_path / "other" / "compare.md").read_text()
    assert "differences are **unpaired (Welch intervals)**" in text and "Welch" in text


def test_compare_needs_two_runs_with_an_algorithm_in_common(runs, tmp_path, capsys):
    base = runs[0]
    assert main(["compare", str(base), "--out", str(tmp_path / "x")]) == 2
    assert "at least two run folders" in capsys.readouterr().err
    lonely = tmp_path / "lonely"
    shutil.copytree(base, lonely)
    manifest = json.loads((lonely / "manifest.json").read_text())
    manifest["algorithms"] = ["ecmp"]
    manifest.pop("trial_order")
    (lonely / "manifest.json").write_text(json.dumps(manifest))
    assert main(["compare", str(base), str(lonely), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "share no algorithm" in err[0]


def test_folder_metrics_are_the_reports_numbers(four):
    """What the experiment can store per trial (summary ``metrics``) equals what the
    report computes from the same tables."""
    from testbed.report.metrics import folder_metrics, trial_values
    run, _ = four
    from_report = trial_values(load_run(run))["load_aware"][2]
    stored = folder_metrics(run / "load_aware" / "trial-2")
    assert stored.keys() == from_report.keys()
    for key, value in stored.items():
        assert (value is None and np.isnan(from_report[key])) or value == pytest.approx(from_report[key]), key
    json.dumps(stored, allow_nan=False)


@pytest.mark.parametrize("name", ["rtt_over_time", "path_changes", "collective_cdf", "iteration_cdf",
                                  "slowdown", "throughput"])
def test_every_cross_algorithm_figure_shows_intervals_over_trials(four, name):
    from matplotlib.collections import PolyCollection
    from matplotlib.container import ErrorbarContainer
    from testbed.report import FIGURES
    run, _ = four
    spec = next(s for s in FIGURES if s.name == name)
    fig = spec.draw(Context.of(load_run(run)))
    try:
        bands = [c for ax in fig.axes for c in ax.collections if isinstance(c, PolyCollection)]
        bars = [c for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert bands or bars, name
        assert "95 % CI" in fig.get_suptitle()
    finally:
        plt.close(fig)


def test_a_run_without_trials_reads_as_trial_0(tmp_path, schedule):
    run = fixtures_report.write_run(tmp_path, schedule=schedule, algorithms=("min_delay", "min_hop"),
                                    omit=("collectives", "iterations", "transfers", "throughput", "link_util"))
    data = load_run(run)
    assert data.trials == (0,)
    assert set(data.table("min_hop", "rtt")["trial"]) == {0}
    legacy = json.loads((run / "summary.json").read_text())["algorithms"]["min_hop"]
    assert "trials" not in legacy and data.trial_summaries["min_hop"] == {"0": legacy}
    assert set(load_results(run)["paths"]["trial"]) == {0}


def test_heat_map_holds_each_logged_value_until_the_next_log():
    """The controller logs a switch only when a port's utilisation changed: a value holds
    until the link's next log; nothing is shown before its first log."""
    table = pd.DataFrame({"trial": [0, 0, 1, 1], "t_s": [1.0, 3.0, 1.0, 3.0], "a": 1, "b": 2,
                          "utilisation": [0.5, 0.1, 0.3, 0.3]})
    grid = utilisation.held_grid(table, [(1, 2), (2, 1)], np.array([0.5, 2.0, 4.0, 29.0]))
    assert np.isnan(grid[0, 0]) and np.isnan(grid[1]).all()
    np.testing.assert_allclose(grid[0, 1:], [0.4, 0.2, 0.2])      # mean over the two trials
