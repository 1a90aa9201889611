"""Other tools' conventions: Hypatia files out and back in, ground range cap, UTC
Earth rotation, station elevation, Hypatia's tles.txt header."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest

from topologies import ScheduleConfig, Schedule, TopologyError, generate, load_tle
from topologies.cli import main
from topologies.geodesy import geodetic_to_ecef_km
from topologies.timebase import timescale

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
STATIONS = (("Paris", 48.86, 2.35), ("Luanda", -8.84, 13.23, 1200.0), ("Quito", -0.18, -78.47))
OMEGA_EARTH_RAD_S = 7.2921158553e-5


def _hypatia_like(**changes) -> ScheduleConfig:
    base = dict(preset="starlink_shell1_hypatia", isl_params={"pairing": "index"},
                gsl_min_elevation_deg=0.0, gsl_max_range_km=1089.686, earth_rotation="utc",
                ground_stations=STATIONS, epoch=EPOCH, duration_s=30.0, step_s=1.0)
    base.update(changes)
    return ScheduleConfig(**base)


def test_export_then_import_gives_the_same_schedule(tmp_path, capsys):
    out = tmp_path / "hyp"
    out.mkdir()
    assert main(["--preset", "starlink_shell1_hypatia", "--isl-param", 'pairing="index"',
                 "--min-elevation-deg", "0", "--gsl-max-range-km", "1089.686",
                 "--earth-rotation", "utc", "--epoch", "2000-01-01T00:00:00Z",
                 "--ground", "Paris:48.86:2.35", "--ground", "Quito:-0.18:-78.47",
                 "--duration-s", "30", "--step-s", "1", "-o", str(tmp_path / "a.parquet"),
                 "--export", "hypatia", str(out)]) == 0
    text = capsys.readouterr().out
    assert "hypatia files written" in text and "lasers at step 0" in text
    tles = (out / "tles.txt").read_text().splitlines()
    assert tles[0] == "72 22" and tles[1] == "starlink_shell1-p00-s00 0"
    assert len(tles) == 1 + 3 * 1584
    assert len((out / "isls.txt").read_text().splitlines()) == 3168
    assert (out / "ground_stations.txt").read_text().splitlines()[1] == \
        "1,Quito,-0.180000,-78.470000,0.000000"
    assert "max_gsl_length_m=1089686.0000000000" in (out / "description.txt").read_text()
    assert main(["--hypatia", str(out), "--duration-s", "30", "--step-s", "1",
                 "-o", str(tmp_path / "b.parquet")]) == 0
    a, b = Schedule.load(tmp_path / "a.parquet"), Schedule.load(tmp_path / "b.parquet")
    assert list(a.nodes["name"]) == list(b.nodes["name"])
    keys = ["step", "a", "b", "kind", "up"]
    assert (a.links[keys].to_numpy() == b.links[keys].to_numpy()).all()
    # TLEs keep 4 decimals of each angle (<= 6 m at 6,928 km) and e >= 1e-7 (0.7 m)
    assert np.abs(a.positions.ecef_km - b.positions.ecef_km).max() < 0.010
    assert np.abs(a.links["distance_km"] - b.links["distance_km"]).max() < 0.020
    assert b.meta["config"]["isl_policy"] == "listed"
    # and the files read back export to the same files
    again = tmp_path / "again"
    again.mkdir()
    assert main(["--hypatia", str(out), "--duration-s", "2", "--step-s", "1",
                 "--export", "hypatia", str(again)]) == 0
    for name in ("tles.txt", "isls.txt", "ground_stations.txt", "description.txt"):
        assert (again / name).read_text() == (out / name).read_text(), name


def test_hypatia_reader_errors_name_file_and_line(tmp_path, capsys):
    folder = tmp_path / "h"
    folder.mkdir()
    assert main(["--hypatia", str(folder)]) == 2
    assert "no tles.txt" in capsys.readouterr().err
    lines = ["2 2"]
    config = generate(ScheduleConfig(preset="test4x4", duration_s=1.0, step_s=1.0))
    from topologies.generate import build_fleet
    from topologies.hypatia import write_hypatia
    write_hypatia(config, folder, build_fleet(ScheduleConfig(preset="test4x4"))[0])
    text = (folder / "tles.txt").read_text().splitlines()
    (folder / "tles.txt").write_text("\n".join(lines + text[1:]) + "\n")
    assert main(["--hypatia", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "tles.txt:1: count header says 2 x 2 = 4 satellites, the file has 16" in err
    (folder / "tles.txt").write_text("\n".join(text) + "\n")
    (folder / "isls.txt").write_text("0 1\n5 x\n")
    assert main(["--hypatia", str(folder)]) == 2
    assert "isls.txt:2: expected '<a> <b>'" in capsys.readouterr().err
    (folder / "isls.txt").write_text("0 1\n0 2\n0 3\n0 4\n0 5\n")
    assert main(["--hypatia", str(folder)]) == 2
    assert "satellite 0 is in 5 pairs, more than lasers_per_sat = 4" in capsys.readouterr().err


def test_ground_range_cap_alone_and_with_the_mask():
    cap_km = 1089.686
    alone = generate(_hypatia_like(gsl_policy="all"))
    masked = generate(_hypatia_like(gsl_policy="all", gsl_min_elevation_deg=25.0))
    mask_only = generate(_hypatia_like(gsl_policy="all", gsl_min_elevation_deg=25.0,
                                       gsl_max_range_km=None))
    for s in (alone, masked):
        gsl = s.links[(s.links["kind"] == "gsl").to_numpy()]
        assert len(gsl) and gsl["distance_km"].max() <= cap_km
    # independent check of the cap alone: every satellite above the horizon within range
    n_sats = 1584
    pos = alone.positions.ecef_km
    for g in range(len(STATIONS)):
        rel = pos[:, :n_sats] - pos[:, n_sats + g][:, None]
        dist = np.linalg.norm(rel, axis=2)
        expected = dist <= cap_km
        got = np.zeros_like(expected)
        gsl = alone.links[(alone.links["b"] == n_sats + g).to_numpy()]
        got[gsl["step"].to_numpy(), gsl["a"].to_numpy()] = True
        assert (got == expected).all()
    rows = {k: len(s.links[(s.links["kind"] == "gsl").to_numpy()])
            for k, s in (("alone", alone), ("masked", masked), ("mask_only", mask_only))}
    assert rows["masked"] <= min(rows["alone"], rows["mask_only"])


def test_utc_earth_rotation_differs_by_ut1_minus_utc():
    ut1 = generate(_hypatia_like(earth_rotation="ut1", duration_s=2.0))
    utc = generate(_hypatia_like(duration_s=2.0))
    assert ut1.meta["earth_rotation"] == "ut1" and utc.meta["earth_rotation"] == "utc"
    dut1_s = float(timescale().from_datetime(EPOCH).dut1)          # UT1 - UTC, 0.355 s
    assert 0.3 < dut1_s < 0.4
    a, b = ut1.positions.ecef_km[:, :1584], utc.positions.ecef_km[:, :1584]
    angle = np.arctan2(a[..., 1], a[..., 0]) - np.arctan2(b[..., 1], b[..., 0])
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    # the UT1 Earth is turned further east: satellites sit dut1 * omega further west
    assert np.allclose(angle, -OMEGA_EARTH_RAD_S * dut1_s, rtol=2e-3)
    assert np.allclose(a[..., 2], b[..., 2])
    shift_m = np.hypot(*(a[..., :2] - b[..., :2]).transpose(2, 0, 1)) * 1e3
    assert 50 < shift_m.min() and shift_m.max() < 200


def test_station_elevation_raises_the_station():
    schedule = generate(_hypatia_like(duration_s=1.0))
    luanda = 1584 + 1
    assert schedule.positions.alt_km[0, luanda] == pytest.approx(1.2)
    expected = geodetic_to_ecef_km(-8.84, 13.23, 1.2)
    assert np.allclose(schedule.positions.ecef_km[0, luanda], expected, atol=1e-9)
    assert math.dist(expected, geodetic_to_ecef_km(-8.84, 13.23, 0.0)) == pytest.approx(1.2)
    assert ScheduleConfig.from_dict(schedule.meta["config"]).ground_stations[1] == \
        ("Luanda", -8.84, 13.23, 1200.0)


def test_tle_reader_accepts_hypatias_count_header(tmp_path):
    out = tmp_path / "h"
    out.mkdir()
    assert main(["--preset", "test6x6", "--duration-s", "1", "--step-s", "1",
                 "--export", "hypatia", str(out)]) == 0
    tle = load_tle(out / "tles.txt")
    assert tle.placement["count_header"] == [6, 6] and tle.fleet.n_sats == 36
    assert list(tle.fleet.plane) == [i // 6 for i in range(36)]
    assert list(tle.fleet.slot) == [i % 6 for i in range(36)]
    assert tle.fleet.names[7] == "test6x6-p1-s1"
    # Hypatia's own names ("<constellation> <id>") stay unique
    text = (out / "tles.txt").read_text().splitlines()
    for i in range(36):
        text[1 + 3 * i] = f"Starlink-550 {i}"
    (out / "tles.txt").write_text("\n".join(text) + "\n")
    assert load_tle(out / "tles.txt").fleet.names[:2] == ("Starlink-550-0", "Starlink-550-1")


def test_listed_policy_rejects_bad_pairs():
    with pytest.raises(TopologyError, match=r"isl_params.pairs\[1\]: links satellite 3 to itself"):
        ScheduleConfig(preset="test4x4", isl_policy="listed",
                       isl_params={"pairs": [[0, 1], [3, 3]]})
    with pytest.raises(TopologyError, match="pair \\[0, 1\\] listed twice"):
        ScheduleConfig(preset="test4x4", isl_policy="listed",
                       isl_params={"pairs": [[0, 1], [1, 0]]})
    with pytest.raises(TopologyError, match="satellite id 16 out of range"):
        generate(ScheduleConfig(preset="test4x4", isl_policy="listed",
                                isl_params={"pairs": [[0, 16]]}, duration_s=1.0, step_s=1.0))


def test_hypatia_files_start_at_their_common_tle_epoch(tmp_path):
    out = tmp_path / "h"
    out.mkdir()
    assert main(["--preset", "test4x4", "--epoch", "2024-03-01T12:00:30Z", "--duration-s", "1",
                 "--step-s", "1", "--export", "hypatia", str(out)]) == 0
    assert load_tle(out / "tles.txt").epoch == datetime(2024, 3, 1, 12, 0, 30,
                                                        tzinfo=timezone.utc)
