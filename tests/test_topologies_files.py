"""Schedule files (Parquet) and the command line."""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from topologies import Schedule, ScheduleConfig, TopologyError, generate
from topologies.cli import add_arguments, run
from topologies.summary import summarize, up_transitions

from conftest import DATA

EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def schedule():
    return generate(ScheduleConfig(preset="test6x6", duration_s=300.0, step_s=1.0, epoch=EPOCH,
                                   acquisition_s=3.0, isl_params={"max_lat_deg": 45.0},
                                   ground_stations=(("Paris", 48.86, 2.35),
                                                    ("Luanda", -8.84, 13.23)),
                                   compute={"per_plane": 1}))


def test_save_and_load_round_trip(tmp_path, schedule):
    paths = schedule.save(tmp_path / "s.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["s.nodes.parquet", "s.parquet", "s.positions.parquet"]
    loaded = Schedule.load(paths["links"])
    pd.testing.assert_frame_equal(loaded.links, schedule.links)
    pd.testing.assert_frame_equal(loaded.nodes, schedule.nodes)
    assert np.array_equal(loaded.positions.ecef_km, schedule.positions.ecef_km)
    assert np.array_equal(loaded.positions.lat_deg, schedule.positions.lat_deg)
    assert np.array_equal(loaded.sunlit, schedule.sunlit)
    assert np.array_equal(loaded.times_s, schedule.times_s)
    assert loaded.epoch == schedule.epoch and loaded.step_s == schedule.step_s
    assert loaded.meta == schedule.meta


def test_files_are_plain_pandas_tables(tmp_path, schedule):
    schedule.save(tmp_path / "s.parquet")
    links = pd.read_parquet(tmp_path / "s.parquet")
    assert list(links.columns) == ["step", "a", "b", "kind", "distance_km", "delay_s",
                                   "capacity_bps", "up"]
    assert set(links["kind"].astype(str)) == {"isl", "gsl"}
    nodes = pd.read_parquet(tmp_path / "s.nodes.parquet")
    assert list(nodes.columns) == ["node_id", "name", "kind", "shell", "plane", "slot"]
    positions = pd.read_parquet(tmp_path / "s.positions.parquet")
    assert len(positions) == schedule.n_steps * schedule.n_nodes
    assert list(positions.columns) == ["step", "node_id", "x_km", "y_km", "z_km", "lat_deg",
                                       "lon_deg", "alt_km", "sunlit"]
    meta = json.loads(pq.read_schema(tmp_path / "s.parquet").metadata[b"lasermesh.schedule"])
    assert meta["meta"]["epoch"] == "2025-01-01T00:00:00Z"
    assert meta["meta"]["constants"]["c_km_s"] == 299792.458
    assert meta["meta"]["generator_version"] and meta["meta"]["input_hash"]


def test_load_rejects_bad_files_naming_them(tmp_path, schedule):
    paths = schedule.save(tmp_path / "s.parquet")
    # Not a Parquet file at all.
    garbage = tmp_path / "g.parquet"
    garbage.write_bytes(b"not parquet")
    with pytest.raises(TopologyError, match=str(garbage)):
        Schedule.load(garbage)
    # A missing part.
    shutil.copy(paths["links"], tmp_path / "m.parquet")
    with pytest.raises(TopologyError, match="m.nodes.parquet: missing"):
        Schedule.load(tmp_path / "m.parquet")
    # A plain Parquet file without our metadata.
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(TopologyError, match="p.parquet: not a schedule file"):
        Schedule.load(tmp_path / "p.parquet")
    # Parts of two different schedules.
    other = generate(ScheduleConfig(preset="test4x4", duration_s=5.0, step_s=1.0))
    other_paths = other.save(tmp_path / "o.parquet")
    shutil.copy(other_paths["nodes"], paths["nodes"])
    with pytest.raises(TopologyError, match="s.nodes.parquet: belongs to a different"):
        Schedule.load(paths["links"])


def test_load_validates_link_invariants(tmp_path, schedule):
    paths = schedule.save(tmp_path / "s.parquet")
    table = pq.read_table(paths["links"])
    delay = table.column("delay_s").to_numpy().copy()
    delay[3] *= 1.5
    tampered = table.set_column(table.schema.get_field_index("delay_s"), "delay_s", [delay])
    pq.write_table(tampered.replace_schema_metadata(table.schema.metadata), paths["links"])
    with pytest.raises(TopologyError) as err:
        Schedule.load(paths["links"])
    assert str(paths["links"]) in str(err.value) and "delay_s" in str(err.value)


def test_links_at_node_ids_and_graph(schedule):
    rows = schedule.links_at(10)
    assert (rows["step"] == 10).all() and rows.index[0] == 0
    assert len(rows) == (schedule.links["step"] == 10).sum()
    with pytest.raises(IndexError):
        schedule.links_at(schedule.n_steps)
    assert schedule.node_ids("ground").tolist() == [36, 37]
    assert len(schedule.node_ids("compute")) == 6
    assert len(schedule.node_ids()) == 38 and len(schedule.satellite_ids()) == 36
    graph = schedule.graph_at(10)
    assert graph.number_of_nodes() == 38
    assert graph.number_of_edges() == int(rows["up"].sum())


def test_summary_numbers(schedule):
    s = summarize(schedule)
    assert s["satellites"] == 36 and s["compute_satellites"] == 6 and s["ground_stations"] == 2
    per_step = schedule.links.groupby("step").size()
    assert s["links_per_step_min"] == per_step.min() and s["links_per_step_max"] == per_step.max()
    assert 0 < s["isl_delay_s_min"] <= s["isl_delay_s_max"]
    appear, disappear = up_transitions(schedule)
    assert appear > 0 and disappear > 0
    assert s["link_changes_per_min"] == pytest.approx((appear + disappear) / (299 / 60))
    assert 0.0 <= s["compute_sunlit_fraction"] <= 1.0


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="testbed topo")
    add_arguments(parser)
    return run(parser.parse_args(list(argv)))


def test_cli_generates_summarises_and_draws(tmp_path, capsys):
    out = tmp_path / "t.parquet"
    rc = cli("--preset", "test8x8", "--duration-s", "120", "--step-s", "1",
             "--ground", "Paris:48.86:2.35", "--ground", "Luanda:-8.84:13.23",
             "--compute", "per_plane:1", "--isl-param", "max_lat_deg=50", "-o", str(out),
             "--map", "60", str(tmp_path / "map.png"),
             "--delay-plot", "Paris:Luanda,link:0:1", str(tmp_path / "delay.png"))
    text = capsys.readouterr().out
    assert rc == 0
    for words in ("satellites        64 (8 compute)", "links per step", "ISL delay",
                  "link changes", "compute sunlit"):
        assert words in text
    assert Schedule.load(out).n_steps == 120
    for png in ("map.png", "delay.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG_MAGIC
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp files left


def test_cli_from_spec_and_existing_schedule(tmp_path, capsys):
    spec = tmp_path / "exp.toml"
    spec.write_text('[topology]\npreset = "test4x4"\nduration_s = 30.0\nstep_s = 1.0\n'
                    'compute = { every_k = 4 }\nground_stations = [["Quito", -0.18, -78.47]]\n'
                    '[other]\nx = 1\n')
    out = tmp_path / "s.parquet"
    assert cli("--spec", str(spec), "--duration-s", "20", "-o", str(out)) == 0
    assert Schedule.load(out).n_steps == 20          # the flag overrides the spec
    capsys.readouterr()
    assert cli("--schedule", str(out), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["satellites"] == 16 and summary["compute_satellites"] == 4
    assert summary["ground_stations"] == 1 and summary["steps"] == 20


def test_cli_tle_with_a_bad_line_exits_2_without_output(tmp_path, capsys):
    lines = (DATA / "iridium-2022-09-14.tle").read_text().splitlines()
    lines[7] = lines[7][:50]
    bad = tmp_path / "bad.tle"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "never.parquet"
    rc = cli("--tle", str(bad), "-o", str(out))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and f"{bad}:8:" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [bad]


@pytest.mark.parametrize("argv,words", [
    (["--preset", "test4x4", "--ground", "Paris"], "--ground: expected NAME:LAT:LON"),
    (["--preset", "test4x4", "--compute", "half"], "--compute: cannot parse"),
    (["--preset", "test4x4", "--isl-param", "max_lat_deg"], "--isl-param: expected KEY=VALUE"),
    (["--preset", "test4x4", "--step-s", "-1"], "step_s: must be > 0"),
    (["--tle", "/nonexistent/x.tle"], "/nonexistent/x.tle: cannot read"),
    (["--schedule", "/nonexistent/s.parquet"], "missing schedule file"),
    (["--preset", "test4x4", "--duration-s", "10", "--map", "99", "m.png"], "outside"),
    (["--preset", "test4x4", "--duration-s", "10", "--delay-plot", "A:B", "d.png"], "no node"),
])
def test_cli_user_errors_are_one_line_exit_2(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_cli_spec_errors_name_the_spec(tmp_path, capsys):
    spec = tmp_path / "exp.toml"
    spec.write_text('[topology]\nshells = [{planes = 0, sats_per_plane = 4, altitude_km = 500, '
                    'inclination_deg = 53}]\n')
    assert cli("--spec", str(spec)) == 2
    err = capsys.readouterr().err
    assert f"{spec}: shell[0].planes: must be >= 1, got 0" in err


def test_cli_reads_the_testbed_spec_layout(tmp_path, capsys):
    spec = tmp_path / "exp.toml"
    spec.write_text('[experiment]\nname = "x"\n'
                    '[constellation]\npreset = "test6x6"\n'
                    '[isl]\npolicy = "plus_grid"\nacquisition_s = 1.0\nparams = { max_lat_deg = 60.0 }\n'
                    '[ground]\nstations = [["Quito", -0.18, -78.47]]\nmin_elevation_deg = 20.0\n'
                    '[compute]\nper_plane = 1\n'
                    '[time]\nduration_s = 12.0\nstep_s = 2.0\nspeedup = 1.0\n')
    out = tmp_path / "s.parquet"
    assert cli("--spec", str(spec), "-o", str(out)) == 0
    loaded = Schedule.load(out)
    config = loaded.meta["config"]
    assert loaded.n_steps == 6 and config["acquisition_s"] == 1.0
    assert config["isl_params"] == {"max_lat_deg": 60.0}
    assert config["gsl_min_elevation_deg"] == 20.0 and len(loaded.node_ids("compute")) == 6
    spec.write_text('[constellation]\npreset = "test6x6"\n[isl]\nlasers = 3\n')
    assert cli("--spec", str(spec)) == 2
    assert "isl.lasers: unknown key" in capsys.readouterr().err


def test_progress_reports_every_stage_and_empty_schedules_summarise():
    calls = []
    config = ScheduleConfig(preset="test4x4", duration_s=10.0, step_s=1.0, lasers_per_sat=0,
                            ground_stations=(("Pole", 89.0, 0.0),), gsl_min_elevation_deg=80.0)
    schedule = generate(config, progress=lambda stage, n: calls.append((stage, n)))
    done = {}
    for stage, n in calls:
        done[stage] = done.get(stage, 0) + n
    assert done == {"propagation": 10, "laser links": 10, "ground links": 10}
    assert len(schedule.links) == 0
    s = summarize(schedule)
    assert s["links_per_step_max"] == 0 and s["isl_delay_s_min"] is None
