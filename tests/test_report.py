"""testbed report: figures and report.md from a synthetic run folder (no emulation).

The run folders come from tests/fixtures_report.py, which follows the results contract
of issue 7 with a real (small) orbital schedule.
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
from testbed.report import FIGURES, ReportError, ReportOptions, find_run, load_run, make_report  # noqa: E402
from testbed.report.common import Context  # noqa: E402
from testbed.report.metrics import collective_instances, metric_table, path_changes  # noqa: E402
from testbed.report import workload  # noqa: E402
from testbed.report.rtt import choose_pairs  # noqa: E402
from testbed.report.style import pyplot  # noqa: E402
from testbed.report.style import OKABE_ITO, palette  # noqa: E402

FIGURE_NAMES = [spec.name for spec in FIGURES]
plt = pyplot()
ALGORITHMS = fixtures_report.ALGORITHMS


@pytest.fixture(scope="module")
def schedule():
    return fixtures_report.make_schedule()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, schedule):
    """A complete run with every table, and its report (made once: it is the slow part)."""
    run = fixtures_report.write_run(tmp_path_factory.mktemp("results"), schedule=schedule, power=True,
                                    faults=True)
    return run, make_report(run)


def tree(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}


def results_section(report_md: str) -> str:
    return report_md.split("## Results", 1)[1].split("\n\n", 2)[1]


def ranking_rows(report_md: str) -> list[list[str]]:
    """Rows of the per-algorithm results table (cells stripped)."""
    section = results_section(report_md)
    lines = [l for l in section.splitlines() if l.startswith("|")]
    return [[c.strip() for c in l.strip("|").split("|")] for l in lines[2:]]


# ------------------------------------------------------------------ the full report


def test_every_figure_is_written_in_both_formats(full_run):
    run, result = full_run
    assert result.skipped == {}
    assert not result.incomplete
    for name in FIGURE_NAMES:
        for fmt in ("png", "pdf"):
            path = run / "plots" / f"{name}.{fmt}"
            assert path in result.files
            assert path.stat().st_size > 5000, path
    assert (run / "plots" / "rtt_over_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "plots" / "rtt_over_time.pdf").read_bytes()[:5] == b"%PDF-"
    assert result.report == run / "report.md" and result.files[-1] == result.report
    assert not [p for p in run.rglob(".*tmp*")], "temporary files left behind"


def test_report_md_has_results_scaling_and_figure_links(full_run):
    run, _ = full_run
    text = (run / "report.md").read_text()
    rows = ranking_rows(text)
    assert [r[0].strip("`") for r in rows] == list(ALGORITHMS)       # run order, no ranking
    header = results_section(text).splitlines()[0]
    for column in ("RTT excess median [ms]", "RTT excess p99 [ms]", "loss [%]", "path changes (not ranked)",
                   "collective mean [s]", "collective slowdown (mean) [x]", "iteration slowdown (mean) [x]",
                   "flow mods"):
        assert column in header
    assert "mean rank" not in text and "| rank |" not in header
    # one trial: no interval, nothing bold, nothing called better
    assert "**" not in results_section(text)
    assert "**better:" not in text
    assert "One trial: no confidence interval can be given" in text
    assert "No significant difference can be claimed for any of the" in text
    # collectives: 20 per trial cannot carry a p99
    assert "collective p99 [s] not given: a p99 needs at least 100 samples per trial; the trials had 20" in text
    scaling = next(l for l in text.splitlines() if l.startswith("**Scaling conventions.**"))
    for fact in ("rate_scale = 0.001", "speedup = 1 (orbital seconds per wall-clock second)", "backend: delayline", "propagation delay emulated: yes"):
        assert fact in scaling
    assert "Time compressed" not in text
    assert text.index("## Results") < text.index("**Scaling conventions.**") < text.index("## Figures")
    for name in FIGURE_NAMES:
        assert f"(plots/{name}.png)" in text and f"(plots/{name}.pdf)" in text
    assert "INCOMPLETE" not in text


def test_metrics_are_plausible(full_run):
    run, _ = full_run
    data = load_run(run)
    table = metric_table(data)
    assert list(table.index) == list(ALGORITHMS)
    assert (table["rtt_excess_median_ms"] > 0).all()            # queueing on top of propagation
    assert (table["rtt_excess_median_ms"] < 5).all()
    assert table["loss_pct"].between(0, 100).all()
    assert table.loc["load_aware", "path_changes"] > 0          # the fixture alternates its paths
    assert table["collective_p99_s"].isna().all()               # 20 collectives per trial < 100
    assert (table["iteration_slowdown_mean"] >= 1).all()
    assert (table["collective_slowdown_mean"] >= 1).all()
    flow_mods = data.table("min_hop", "clock")["flow_mods"].sum()
    assert table.loc["min_hop", "flow_mods"] == flow_mods


# ------------------------------------------------------------------ pure pieces


def test_path_changes_ignore_first_row_and_repeats():
    paths = pd.DataFrame({"t_s": [0.0, 0.0, 1.0, 2.0, 3.0, 3.0],
                          "src": ["a", "b", "a", "a", "a", "b"], "dst": ["b", "a", "b", "b", "b", "a"],
                          "path": ["1-2", "2-1", "1-3-2", "1-3-2", "1-2", "2-1"]})
    changes = path_changes(paths)
    assert changes["t_s"].tolist() == [1.0, 3.0]


def test_collective_instances_take_the_slowest_rank():
    frame = pd.DataFrame({"rank": [0, 1, 0, 1], "instance": [5, 5, 6, 6], "duration_s": [1.0, 2.0, 0.5, 0.25],
                          "ideal_s": [0.5, 0.5, 0.25, 0.25], "kind": ["all_reduce"] * 4})
    inst = collective_instances(frame)
    assert inst["duration_s"].tolist() == [2.0, 0.5]
    assert inst["slowdown"].tolist() == [4.0, 2.0]


def test_palette_is_keyed_by_manifest_order_and_distinct():
    labels = ["a", "b", "c", "d", "e", "f", "g", "h"]
    styles = palette(labels)
    assert [styles[l].colour for l in labels[:7]] == list(OKABE_ITO)
    assert len({(s.colour, s.linestyle) for s in styles.values()}) == len(labels)
    assert palette(["b", "a"])["b"] == styles["a"]         # by position, not by name


def test_rtt_pairs_are_deterministic_and_overridable(full_run):
    run, _ = full_run
    ctx = Context.of(load_run(run))
    pairs = choose_pairs(ctx)
    assert len(pairs) == 4 and pairs == choose_pairs(Context.of(load_run(run)))
    assert all((b, a) not in pairs for a, b in pairs)
    chosen = Context.of(ctx.run, ReportOptions(pairs=(("Paris", "test4x4-p0-s0"),)))
    assert choose_pairs(chosen) == [("Paris", "test4x4-p0-s0")]


def test_csv_is_read_when_parquet_is_missing(tmp_path, schedule):
    run = fixtures_report.write_run(tmp_path, schedule=schedule, algorithms=("min_delay",))
    expected = pd.read_parquet(run / "min_delay" / "throughput.parquet")
    (run / "min_delay" / "throughput.parquet").unlink()
    got = load_run(run).table("min_delay", "throughput")
    assert (got["trial"] == 0).all()                       # a run without trials reads as trial 0
    pd.testing.assert_frame_equal(got.drop(columns="trial"), expected, check_dtype=False)


# ------------------------------------------------------------------ partial runs


def test_missing_tables_skip_their_figures_with_a_note(tmp_path, schedule):
    run = fixtures_report.write_run(tmp_path, schedule=schedule,
                                    omit=("rtt", "collectives", "iterations", "transfers", "throughput",
                                          "link_util"),
                                    empty=("paths",))
    (run / "plots").mkdir()
    (run / "plots" / "throughput.png").write_bytes(b"stale")      # from an older report
    result = make_report(run)
    assert set(result.skipped) == {"rtt_over_time", "path_changes", "collective_cdf", "iteration_cdf",
                                   "slowdown", "throughput", "link_utilisation", "power"}
    assert {p.name for p in result.files} == {"constellation.png", "constellation.pdf", "report.md"}
    assert not (run / "plots" / "throughput.png").exists()
    text = result.report.read_text()
    figures = text.split("## Figures", 1)[1]
    for spec in FIGURES:
        if spec.name in result.skipped:             # one sentence where the figure would be
            assert f"### {spec.title}\n\nNo figure: {result.skipped[spec.name]}." in figures
    assert "No figure: no throughput table" in figures
    assert "missing table(s): rtt, collectives" in text and "empty table(s): paths" in text
    rows = ranking_rows(text)
    assert len(rows) == len(ALGORITHMS)                   # flow mods alone
    assert "collective mean [s]" not in results_section(text)
    assert "](plots/throughput.png)" not in text


def test_incomplete_run_is_flagged_loudly(tmp_path, schedule, capsys):
    run = fixtures_report.write_run(tmp_path, schedule=schedule, incomplete=True, ran=1,
                                    omit=("paths", "collectives", "iterations", "transfers", "throughput",
                                          "link_util"))
    assert main(["report", str(run)]) == 0
    captured = capsys.readouterr()
    assert "INCOMPLETE" in captured.err
    text = (run / "report.md").read_text()
    first_lines = "\n".join(text.splitlines()[:4])
    assert "WARNING: INCOMPLETE RUN" in first_lines
    assert "`min_hop`, `load_aware`" in first_lines        # algorithms that never ran
    rows = ranking_rows(text)
    assert len(rows) == len(ALGORITHMS)
    assert rows[0][1] != "n/a" and rows[1][1] == "n/a"    # only min_delay has data
    assert "load_aware: no results folder" in text


# ------------------------------------------------------------------ command line


def test_experiment_folder_reports_its_newest_complete_run(tmp_path, schedule, capsys):
    minimal = dict(schedule=schedule, algorithms=("min_delay",),
                   omit=("rtt", "paths", "collectives", "iterations", "transfers", "throughput", "link_util"))
    old = fixtures_report.write_run(tmp_path, run_id="20250101T000000Z-0001", **minimal)
    new = fixtures_report.write_run(tmp_path, run_id="20250102T000000Z-0002", **minimal)
    newest = fixtures_report.write_run(tmp_path, run_id="20250103T000000Z-0003", incomplete=True, **minimal)
    assert find_run(tmp_path / "synthetic") == new
    assert find_run(newest) == newest                      # a run folder is taken as given
    assert main(["report", str(tmp_path / "synthetic")]) == 0
    assert str(new / "report.md") in capsys.readouterr().out
    assert (new / "report.md").exists() and not (old / "report.md").exists()
    assert not (newest / "report.md").exists()


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, schedule):
    return fixtures_report.write_run(tmp_path_factory.mktemp("base"), schedule=schedule,
                                     algorithms=("min_delay", "min_hop"))


def _break(case: str, run: Path) -> str:
    """Damage a copy of a run; returns a fragment the error line must contain."""
    if case == "no_manifest":
        (run / "manifest.json").unlink()
        return "manifest.json"
    if case == "manifest_not_json":
        (run / "manifest.json").write_text("{ not json")
        return "manifest.json: not valid JSON"
    if case == "manifest_missing_key":
        manifest = json.loads((run / "manifest.json").read_text())
        del manifest["rate_scale"]
        (run / "manifest.json").write_text(json.dumps(manifest))
        return "manifest.json: missing key 'rate_scale'"
    if case == "table_corrupt":
        (run / "min_hop" / "rtt.parquet").write_bytes(b"PAR1 this is not parquet")
        return "min_hop/rtt.parquet: not a readable Parquet table"
    if case == "table_missing_column":
        frame = pd.read_parquet(run / "min_delay" / "link_util.parquet").drop(columns="utilisation")
        frame.to_parquet(run / "min_delay" / "link_util.parquet")
        return "min_delay/link_util.parquet: missing column(s) utilisation"
    if case == "schedule_corrupt":
        (run / "schedule.nodes.parquet").write_bytes(b"garbage")
        return "schedule.nodes.parquet"
    if case == "summary_not_json":
        (run / "summary.json").write_text("[1, 2")
        return "summary.json: not valid JSON"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["no_manifest", "manifest_not_json", "manifest_missing_key", "table_corrupt",
                                  "table_missing_column", "schedule_corrupt", "summary_not_json"])
def test_broken_folder_exits_2_with_one_line_and_writes_nothing(case, base_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    expected = _break(case, run)
    before = tree(run)
    assert main(["report", str(run)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("testbed report: ") and expected in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert tree(run) == before


@pytest.mark.parametrize("argv, expected", [
    (["--pair", "Paris", "nowhere"], "--pair Paris nowhere: no RTT probes"),
    (["--load-algorithm", "ecmp"], "--load-algorithm ecmp: not an algorithm of this run"),
    (["--snapshot-t-s", "1e6"], "--snapshot-t-s"),
])
def test_bad_options_exit_2_and_write_nothing(argv, expected, base_run, capsys):
    before = tree(base_run)
    assert main(["report", str(base_run), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert tree(base_run) == before


def test_missing_folder_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_report_error_is_an_input_error():
    from testbed.errors import InputError
    assert issubclass(ReportError, InputError) and ReportError.exit_code == 2


def test_several_workloads_are_read_from_their_own_tables(tmp_path, schedule):
    run = fixtures_report.write_run(tmp_path, schedule=schedule, algorithms=("min_delay", "min_hop"),
                                    workloads=("ddp", "moe"),
                                    omit=("rtt", "paths", "throughput", "link_util"))
    assert (run / "min_delay" / "collectives-moe.parquet").exists()
    assert not (run / "min_delay" / "collectives.parquet").exists()
    data = load_run(run)
    coll = data.table("min_delay", "collectives")
    assert set(coll["workload"]) == {"ddp", "moe"}
    # instance ids repeat across workloads; they stay separate instances
    assert len(collective_instances(coll)) == 2 * coll.groupby("workload")["instance"].nunique().iloc[0]
    ctx = Context.of(data)
    for draw in (workload.draw_collective_cdf, workload.draw_iteration_cdf, workload.draw_slowdown):
        fig = draw(ctx)                                   # drawn, not saved: saving is tested above
        titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
        plt.close(fig)
        if draw is workload.draw_collective_cdf:
            assert {"ddp, all_reduce", "moe, all_to_all"} <= set(titles)


def test_unreachable_pairs_do_not_poison_the_rtt_metrics(full_run):
    run, _ = full_run
    data = load_run(run)
    rtt = data.table("min_delay", "rtt")
    assert rtt["geo_rtt_s"].isna().any()                 # inf in the file (unreachable) -> no reference
    paths = data.table("min_delay", "paths")
    assert (paths["path"] == "").any()
    table = metric_table(data)
    assert np.isfinite(table["rtt_excess_p99_ms"]).all()
    assert (table["path_changes"] >= 2).all()             # into the outage and out again
