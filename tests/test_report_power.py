"""The report's power figure and scheduled faults, from synthetic run folders (no emulation).

The power table is the power model evaluated on the fixture's real schedule (one of its four
compute satellites is in eclipse throughout); the faults tables are what the runner records
(tests/fixtures_report.py). Figure data are read back from the matplotlib objects.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_report  # noqa: E402

from testbed.report import load_run, make_report  # noqa: E402
from testbed.report import faults, power, rtt  # noqa: E402
from testbed.report.common import Context, Skip  # noqa: E402
from testbed.report.style import pyplot  # noqa: E402
from testbed.results import load_results  # noqa: E402

plt = pyplot()


@pytest.fixture(scope="module")
def schedule():
    return fixtures_report.make_schedule()


@pytest.fixture(scope="module")
def powered(tmp_path_factory, schedule):
    """Two trials with a power table and faults tables."""
    return fixtures_report.write_run(tmp_path_factory.mktemp("powered"), schedule=schedule, trials=2,
                                     algorithms=("min_delay", "min_hop"), power=True, faults=True)


def _by_gid(artists) -> dict:
    return {a.get_gid(): a for a in artists if a.get_gid()}


def test_power_figure_draws_the_tables_values_per_satellite(powered):
    run = load_run(powered)
    table = pd.read_parquet(powered / "power.parquet")
    fig = power.draw(Context.of(run))
    try:
        ax_soc, ax_clk, ax_ecl = fig.axes[:3]
        soc_lines, clk_lines = _by_gid(ax_soc.get_lines()), _by_gid(ax_clk.get_lines())
        hosts = list(dict.fromkeys(table["host"]))
        assert len(hosts) == 4
        step_s = float(run.manifest["step_s"])
        for host in hosts:
            rows = table[table["host"] == host].sort_values("t_s")
            line = soc_lines[f"soc:{host}"]
            np.testing.assert_allclose(line.get_xdata(), rows["t_s"])
            np.testing.assert_allclose(line.get_ydata(), rows["soc"] * 100.0)
            step = clk_lines[f"clock:{host}"]
            np.testing.assert_allclose(step.get_xdata()[:-1], rows["t_s"])
            assert step.get_xdata()[-1] == pytest.approx(rows["t_s"].iloc[-1] + step_s)
            np.testing.assert_allclose(step.get_ydata()[:-1], rows["clock_fraction"])
            # eclipse lane: one bar per run of sunlit == False, covering exactly those steps
            bars = _by_gid(ax_ecl.collections).get(f"eclipse:{host}")
            dark_s = step_s * int((~rows["sunlit"]).sum())
            covered_s = sum(w for _, w in _widths(bars)) if bars is not None else 0.0
            assert covered_s == pytest.approx(dark_s)
        # the fixture's eclipsed satellite drains to its reserve and throttles; the others do not
        dark = table.groupby("host")["sunlit"].mean()
        eclipsed = dark.idxmin()
        assert dark[eclipsed] == 0.0 and (dark.drop(eclipsed) == 1.0).all()
        e = table[table["host"] == eclipsed]
        assert e["soc"].iloc[-1] < e["soc"].iloc[0] and (e["clock_fraction"] < 1).any()
        assert (table[table["host"] != eclipsed]["clock_fraction"] == 1).all()
        # compute resets from the faults tables, at their start, on the eclipsed node (node 4)
        resets = _by_gid(ax_clk.get_lines())
        (reset_gid,) = [g for g in resets if g.startswith("reset:")]
        assert reset_gid == f"reset:{table.loc[table['node'] == 4, 'host'].iloc[0]}"
        assert sorted(resets[reset_gid].get_xdata()) == [8.0, 9.0]          # trial 0 and trial 1
        # shading: the eclipse spans the whole window, drawn on both quantity panels
        for ax in (ax_soc, ax_clk):
            spans = [_span(p) for p in ax.patches]
            assert len(spans) == 1
            assert spans[0] == pytest.approx((table["t_s"].min(), table["t_s"].max() + step_s))
        assert "[%]" in ax_soc.get_ylabel() and "fraction" in ax_clk.get_ylabel()
        assert "orbital time" in ax_ecl.get_xlabel() and "[s]" in ax_ecl.get_xlabel()
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert hosts == labels[:4] and any("eclipse" in l for l in labels) and any("reset" in l for l in labels)
    finally:
        plt.close(fig)


def _span(patch) -> tuple[float, float]:
    """(start, end) in data x of an axvspan (a Rectangle in recent matplotlib, else a Polygon)."""
    if hasattr(patch, "get_width"):
        return float(patch.get_x()), float(patch.get_x() + patch.get_width())
    x = patch.get_xy()[:, 0]
    return float(x.min()), float(x.max())


def _widths(collection) -> list[tuple[float, float]]:
    """(x, width) of each bar of a broken_barh collection."""
    out = []
    for path in collection.get_paths():
        x = path.vertices[:, 0]
        out.append((float(x.min()), float(x.max() - x.min())))
    return out


def test_report_with_power_has_the_figure_and_a_faults_table(powered):
    result = make_report(powered)
    assert "power" not in result.skipped
    for fmt in ("png", "pdf"):
        assert (powered / "plots" / f"power.{fmt}").stat().st_size > 5000
    text = (powered / "report.md").read_text()
    assert f"### {power.TITLE}" in text and "(plots/power.png)" in text
    section = text.split("## Scheduled faults", 1)[1].split("## Figures", 1)[0]
    rows = [l for l in section.splitlines() if l.startswith("| ") and not l.startswith("| start")]
    # laser and outage in both trials ("all"); one reset per trial, each in its own row
    assert rows == ["| 5 | end of run | laser | 1 | laser link 1-2 lost | all |",
                    "| 8 | 10 | compute_reset | 4 | accelerator reset for 2 s (outside the SAA) | 0 |",
                    "| 9 | 11 | compute_reset | 4 | accelerator reset for 2 s (outside the SAA) | 1 |",
                    "| 12 | 14 | controller_outage | controller | controller unreachable for 2 s | all |"]
    tables = load_results(powered)
    assert set(tables["faults"]["algorithm"]) == {"min_delay", "min_hop"} and len(tables["power"]) == 80


def test_rtt_figure_marks_link_losses_and_controller_outages(powered):
    fig = rtt.draw(Context.of(load_run(powered)))
    try:
        ax = fig.axes[0]
        vertical = [l for l in ax.get_lines() if len(set(l.get_xdata())) == 1 and len(l.get_xdata()) == 2]
        assert [float(l.get_xdata()[0]) for l in vertical] == [5.0]          # the lost laser
        assert [_span(p) for p in ax.patches] == [(12.0, 14.0)]          # the controller outage
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "laser / satellite lost" in labels and "controller outage" in labels
    finally:
        plt.close(fig)


def test_run_without_power_or_faults_draws_no_power_figure(tmp_path, schedule):
    run = fixtures_report.write_run(tmp_path, schedule=schedule, algorithms=("min_delay",), trials=1)
    with pytest.raises(Skip, match="no power model"):
        power.draw(Context.of(load_run(run)))
    result = make_report(run)
    assert "no power model" in result.skipped["power"]
    assert not list((run / "plots").glob("power.*"))
    text = (run / "report.md").read_text()
    assert "No figure: the run has no power model" in text and "## Scheduled faults" not in text
    assert faults.applied(Context.of(load_run(run))) is None


def test_an_empty_faults_table_says_none_was_applied(tmp_path, schedule):
    run = fixtures_report.write_run(tmp_path, schedule=schedule, algorithms=("min_delay",), trials=1)
    fixtures_report._write_table(run / "min_delay" / "trial-0", "faults",
                                 fixtures_report.fixture_faults(0).iloc[0:0].assign(trial=0))
    ctx = Context.of(load_run(run))
    assert faults.applied(ctx) is None            # an empty table reads as absent (with a note)
    assert any("faults" in n for n in ctx.run.notes)
