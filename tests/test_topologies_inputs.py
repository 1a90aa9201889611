"""Inputs: TLE files (real and corrupted), strict configuration, presets."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from topologies import (ISL_POLICIES, PRESETS, ScheduleConfig, Shell, TopologyError, generate,
                        load_tle)
from topologies.compute import compute_from_text
from topologies.tle import tle_checksum

from conftest import DATA

TLE_FILES = {"starlink": 3023, "oneweb": 426, "iridium": 31}
# One real 3-line element set (name, line 1, line 2).
SET = [line.rstrip() for line in (DATA / "iridium-2022-09-14.tle").read_text().splitlines()[:3]]
SATNUM = SET[1][2:7]


@pytest.mark.parametrize("name,count", sorted(TLE_FILES.items()))
def test_shared_tle_files_load(name, count):
    tle = load_tle(DATA / f"{name}-2022-09-14.tle")
    placement = tle.placement
    assert len(tle.records) == placement["n_total"] == count
    assert 0 < placement["n_placed"] <= count
    assert tle.fleet.n_sats == placement["n_placed"]
    assert f"placed {placement['n_placed']} of {count}" in tle.report()
    fleet = tle.fleet
    # Slots within each plane are numbered 0..n-1 by argument of latitude.
    for key in set(zip(fleet.shell.tolist(), fleet.plane.tolist())):
        members = np.flatnonzero((fleet.shell == key[0]) & (fleet.plane == key[1]))
        assert sorted(fleet.slot[members].tolist()) == list(range(members.size))
        assert np.all(np.diff(fleet.arg_lat_deg[members][np.argsort(fleet.slot[members])]) > 0)


def test_starlink_tle_places_shell_1_in_72_planes_and_builds_a_plus_grid():
    path = DATA / "starlink-2022-09-14.tle"
    tle = load_tle(path)
    shells = {s["name"]: s for s in tle.placement["shells"]}
    shell1 = [s for s in shells.values() if abs(s["inclination_deg"] - 53.05) < 0.05
              and abs(s["altitude_km"] - 548) < 5]
    assert len(shell1) == 1 and shell1[0]["planes"] == 72 and shell1[0]["satellites"] > 1400
    schedule = generate(ScheduleConfig(tle_path=str(path), duration_s=10.0, step_s=1.0))
    rows = schedule.links_at(0)
    degree = np.bincount(np.r_[rows["a"], rows["b"]], minlength=schedule.n_nodes)
    assert degree.max() <= 4 and np.median(degree) == 4
    assert schedule.meta["placement"]["n_placed"] == schedule.n_nodes


def test_two_line_files_without_names_load(tmp_path):
    path = tmp_path / "two.tle"
    path.write_text("\n".join(SET[1:]) + "\n")
    tle = load_tle(path, min_shell_sats=1, min_plane_sats=1)
    assert tle.records[0].name == f"NORAD-{SATNUM.strip()}"
    assert tle.fleet.n_sats == 1


def corrupt(tmp_path, lines, name="bad.tle") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_checksum_names_file_and_line(tmp_path):
    lines = (DATA / "iridium-2022-09-14.tle").read_text().splitlines()[:9]
    line = lines[4]                       # line 5 of the file: a TLE line 1
    lines[4] = line[:68] + str((int(line[68]) + 1) % 10)
    path = corrupt(tmp_path, lines)
    with pytest.raises(TopologyError) as err:
        load_tle(path)
    assert f"{path}:5:" in str(err.value) and "checksum" in str(err.value)


def test_truncated_line_names_file_and_line(tmp_path):
    lines = (DATA / "iridium-2022-09-14.tle").read_text().splitlines()[:9]
    lines[8] = lines[8][:40]               # line 9: a TLE line 2 cut short
    path = corrupt(tmp_path, lines)
    with pytest.raises(TopologyError) as err:
        load_tle(path)
    assert f"{path}:9:" in str(err.value) and "truncated" in str(err.value)


@pytest.mark.parametrize("lines,line_no,words", [
    (SET[:2], 2, "without a line 2"),                   # file ends after line 1
    ([SET[0], SET[2]], 2, "line 2 without"),            # line 1 missing
    ([SET[0], SET[0], *SET[1:]], 1, "not followed"),    # two name lines
    ([SET[0], SET[1], SET[2][:68] + "X"], 3, "checksum"),
    ([SET[0], SET[1], SET[2][:2] + "99999" + SET[2][7:]], 3, "catalogue number"),
])
def test_malformed_element_sets_name_the_line(tmp_path, lines, line_no, words):
    path = corrupt(tmp_path, lines)
    with pytest.raises(TopologyError) as err:
        load_tle(path)
    assert f"{path}:{line_no}:" in str(err.value) and words in str(err.value)


def with_checksum(line: str) -> str:
    """``line`` (69 characters) with its checksum digit recomputed."""
    return line[:68] + str(tle_checksum(line))


@pytest.mark.parametrize("number,first,text,column,field", [
    (2, 9, "abc.3944", 9, "inclination (columns 9-16)"),           # issue 13 item 9
    (2, 9, " 8x.3944", 11, "inclination (columns 9-16)"),
    (2, 27, "00O2345", 29, "eccentricity (columns 27-33)"),          # a letter O for a zero
    (2, 53, "14.3425x321", 60, "mean motion (columns 53-63)"),
    (1, 21, "257.5x000000", 26, "epoch day (columns 21-32)"),
    (1, 54, " 1234.-3", 54, "BSTAR drag term (columns 54-61)"),      # right characters, wrong form
])
def test_letters_in_a_numeric_field_name_file_line_and_column(tmp_path, number, first, text, column, field):
    """A malformed number is rejected where it is, even with a valid checksum (it used to be
    accepted, and the satellite silently dropped as "cannot propagate to epoch (decayed?)")."""
    line = SET[number]
    bad = with_checksum(line[:first - 1] + text + line[first - 1 + len(text):])
    assert len(bad) == 69 and bad != line
    path = corrupt(tmp_path, [SET[0], *(bad if k == number else SET[k] for k in (1, 2))])
    with pytest.raises(TopologyError) as err:
        load_tle(path, min_shell_sats=1, min_plane_sats=1)
    message = str(err.value)
    assert message.startswith(f"{path}:{number + 1}:{column}: TLE line {number} {field} ")
    assert f"got {text!r}" in message and "\n" not in message
    load_tle(corrupt(tmp_path, SET, "good.tle"), min_shell_sats=1, min_plane_sats=1)   # the original loads


def test_checksum_rule():
    assert tle_checksum(SET[1]) == int(SET[1][68])
    assert tle_checksum(SET[2]) == int(SET[2][68])
    assert tle_checksum("1 -" + "0" * 65) == 2


@pytest.mark.parametrize("shell,field", [
    ({"altitude_km": -5}, "shell[0].altitude_km: must be > 0, got -5"),
    ({"altitude_km": 0}, "shell[0].altitude_km: must be > 0"),
    ({"inclination_deg": 181}, "shell[0].inclination_deg: must be <= 180"),
    ({"inclination_deg": -1}, "shell[0].inclination_deg: must be >= 0"),
    ({"planes": 0}, "shell[0].planes: must be >= 1, got 0"),
    ({"sats_per_plane": 2.5}, "shell[0].sats_per_plane: must be an integer"),
    ({"pattern": "spiral"}, "shell[0].pattern: unknown value 'spiral'"),
    ({"phasing": 9}, "shell[0].phasing: must be < planes"),
    ({"colour": "red"}, "shell[0].colour: unknown key"),
])
def test_invalid_shells_name_the_field(shell, field):
    good = {"planes": 4, "sats_per_plane": 4, "altitude_km": 5000.0, "inclination_deg": 53.0}
    with pytest.raises(TopologyError) as err:
        ScheduleConfig.from_dict({"shells": [good, {**good, **shell}]})
    assert str(err.value).startswith(field.replace("shell[0]", "shell[1]"))
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("data,message", [
    ({"preset": "starlink_shell1", "durations": 5}, "durations: unknown key"),
    ({"preset": "nope"}, "preset: unknown value 'nope'"),
    ({}, "constellation: give exactly one of"),
    ({"preset": "test4x4", "tle_path": "x.tle"}, "constellation: give exactly one of"),
    ({"preset": "test4x4", "step_s": 0}, "step_s: must be > 0"),
    ({"preset": "test4x4", "duration_s": -1}, "duration_s: must be > 0"),
    ({"preset": "test4x4", "isl_policy": "ring"}, "isl_policy: unknown policy 'ring'"),
    ({"preset": "test4x4", "isl_params": {"max_lat": 3}}, "isl_params.max_lat: unknown parameter"),
    ({"preset": "test4x4", "isl_params": {"max_lat_deg": 95}}, "isl_params.max_lat_deg: must be <= 90"),
    ({"preset": "test4x4", "lasers_per_sat": True}, "lasers_per_sat: must be an integer"),
    ({"preset": "test4x4", "gsl_policy": "best"}, "gsl_policy: unknown value"),
    ({"preset": "test4x4", "ground_stations": [["A", 95, 0]]}, "ground_stations[0].lat_deg"),
    ({"preset": "test4x4", "ground_stations": [["A", 1, 0], ["A", 2, 0]]},
     "ground_stations[1].name: duplicate"),
    ({"preset": "test4x4", "epoch": "2025-01-01T00:00:00"}, "epoch: must be timezone-aware"),
    ({"preset": "test4x4", "epoch": "yesterday"}, "epoch: not an ISO 8601"),
    ({"preset": "test4x4", "compute": {"every_k": 0}}, "compute.every_k.k: must be >= 1"),
    ({"preset": "test4x4", "compute": {"best": 1}}, "compute.best: unknown selection"),
    ({"preset": "test4x4", "compute": {"cluster": {"plane": 1, "slot": 1}}}, "compute.cluster.size: missing"),
    ({"preset": "test4x4", "compute": {"cluster": 5}}, "compute.cluster: must be a table with keys plane, slot, size"),
    ({"preset": "test4x4", "compute": {"ids": [1, "a"]}}, "compute.ids[1]: must be an integer, got 'a'"),
    ({"preset": "test4x4", "acquisition_s": -2}, "acquisition_s: must be >= 0"),
])
def test_config_from_dict_is_strict(data, message):
    with pytest.raises(TopologyError) as err:
        ScheduleConfig.from_dict(data)
    assert str(err.value).startswith(message)


def test_config_round_trips_through_plain_data():
    config = ScheduleConfig.from_dict({
        "shells": [{"planes": 6, "sats_per_plane": 6, "altitude_km": 2000, "inclination_deg": 53,
                    "name": "a", "capacity_bps": 1e11}],
        "isl_policy": "nearest", "isl_params": {"k": 3}, "ground_stations": [["Paris", 48.9, 2.3]],
        "compute": {"cluster": {"plane": 1, "slot": 2, "size": 5}},
        "epoch": "2024-06-01T12:00:00+02:00", "duration_s": 30, "step_s": 0.5})
    assert config.epoch == datetime(2024, 6, 1, 10, tzinfo=timezone.utc)
    assert ScheduleConfig.from_dict(config.to_dict()) == config
    assert config.n_steps == 60


def test_step_count_tolerates_rounding():
    assert ScheduleConfig(preset="test4x4", duration_s=200.0, step_s=0.1).n_steps == 2000
    assert ScheduleConfig(preset="test4x4", duration_s=1.0, step_s=0.3).n_steps == 4


def test_presets_and_registries():
    assert {"starlink_shell1", "kuiper_shell1", "iridium", "starlink_v3", "test4x4", "test6x6",
            "test8x8"} <= set(PRESETS)
    s1 = PRESETS["starlink_shell1"].shells[0]
    assert (s1.planes, s1.sats_per_plane, s1.altitude_km, s1.inclination_deg, s1.pattern) == \
        (72, 22, 550.0, 53.0, "delta")
    k1 = PRESETS["kuiper_shell1"].shells[0]
    assert (k1.planes, k1.sats_per_plane, k1.altitude_km, k1.inclination_deg) == (34, 34, 630.0, 51.9)
    ir = PRESETS["iridium"].shells[0]
    assert (ir.planes, ir.sats_per_plane, ir.altitude_km, ir.inclination_deg, ir.pattern) == \
        (6, 11, 780.0, 86.4, "star")
    assert PRESETS["starlink_v3"].shells[0].capacity_bps == 200e9
    assert {"plus_grid", "nearest"} <= set(ISL_POLICIES)
    with pytest.raises(TopologyError, match="altitude_km"):
        Shell(4, 4, -1.0, 53.0)


def test_compute_selections():
    base = dict(preset="test8x8", duration_s=1.0, step_s=1.0)
    def chosen(compute):
        s = generate(ScheduleConfig(**base, compute=compute))
        return s.node_ids("compute").tolist(), s
    assert chosen({"ids": [5, 1]})[0] == [1, 5]
    assert chosen({"every_k": 20})[0] == [0, 20, 40, 60]
    ids, s = chosen({"per_plane": 2})
    assert len(ids) == 16 and sorted(set(s.nodes["slot"][ids])) == [0, 4]
    ids, s = chosen({"cluster": {"plane": 0, "slot": 0, "size": 5}})
    planes, slots = s.nodes["plane"][ids].to_numpy(), s.nodes["slot"][ids].to_numpy()
    assert len(ids) == 5 and (0, 0) in zip(planes, slots)
    assert all(min(p, 8 - p) + min(q, 8 - q) <= 1 for p, q in zip(planes, slots))
    assert chosen(compute_from_text("cluster:0:0:5"))[0] == ids
    assert len(s.satellite_ids()) == 64 and len(s.node_ids("satellite")) == 59
    with pytest.raises(TopologyError, match="ids"):
        generate(ScheduleConfig(**base, compute={"ids": [64]}))
    with pytest.raises(TopologyError, match="--compute"):
        compute_from_text("some:3")


def test_config_reports_every_problem_at_once_as_data():
    """One TopologyError carries every (field, problem) pair, in field order; nothing stops
    at the first: nested shells, stations, policy parameters and compute selections too."""
    good = {"planes": 4, "sats_per_plane": 4, "altitude_km": 5000.0, "inclination_deg": 53.0}
    with pytest.raises(TopologyError) as err:
        ScheduleConfig.from_dict({
            "shells": [{**good, "altitude_km": -5, "planes": 0, "colour": "red"},
                       {"sats_per_plane": 4, "inclination_deg": 200}, good],
            "isl_params": {"max_lat_deg": 120, "cutoff_deg": 60},
            "lasers_per_sat": "four",
            "ground_stations": [["a", 1, 2], ["b", 95, 0], {"name": "c", "lat_deg": 1}, ["a", 3, 4]],
            "compute": {"cluster": {"plane": -1, "size": 0}},
            "duration_s": -1, "step_s": 0, "durations": 5})
    assert err.value.problems == (
        ("durations", "unknown key (known keys: " + ", ".join(sorted(
            f.name for f in dataclasses.fields(ScheduleConfig))) + ")"),
        ("shell[0].colour", "unknown key (known keys: altitude_km, capacity_bps, inclination_deg, name, "
                            "odd_plane_offset_slots, pattern, phasing, planes, raan_offset_deg, "
                            "sats_per_plane)"),
        ("shell[0].planes", "must be >= 1, got 0"),
        ("shell[0].altitude_km", "must be > 0, got -5"),
        ("shell[1].planes", "missing required key"),
        ("shell[1].altitude_km", "missing required key"),
        ("shell[1].inclination_deg", "must be <= 180, got 200"),
        ("isl_params.max_lat_deg", "must be <= 90, got 120"),
        ("isl_params.cutoff_deg", "unknown parameter for this policy (known: max_lat_deg, pairing, shift)"),
        ("lasers_per_sat", "must be an integer, got 'four'"),
        ("ground_stations[1].lat_deg", "must be <= 90, got 95"),
        ("ground_stations[2].lon_deg", "missing required key"),
        ("ground_stations[3].name", "duplicate station name 'a'"),
        ("compute.cluster.slot", "missing required key"),
        ("compute.cluster.plane", "must be >= 0, got -1"),
        ("compute.cluster.size", "must be >= 1, got 0"),
        ("duration_s", "must be > 0, got -1"),
        ("step_s", "must be > 0, got 0"),
    )
    assert str(err.value).splitlines()[1] == "shell[0].colour: " + err.value.problems[1][1]
    assert (err.value.field, err.value.problem) == err.value.problems[0]


def test_cross_field_rules_wait_for_their_fields():
    """step_s <= duration_s is reported only when both are valid numbers, beside other problems."""
    with pytest.raises(TopologyError) as err:
        ScheduleConfig.from_dict({"preset": "test4x4", "duration_s": 10, "step_s": 20,
                                  "gsl_policy": "best"})
    assert [f for f, _ in err.value.problems] == ["gsl_policy", "step_s"]
    with pytest.raises(TopologyError) as err:
        ScheduleConfig.from_dict({"preset": "test4x4", "duration_s": "long", "step_s": 20})
    assert err.value.problems == (("duration_s", "must be a number, got 'long'"),)


def test_shell_and_listed_pairs_report_every_problem():
    with pytest.raises(TopologyError) as err:
        Shell(0, 2.5, -1.0, 200.0, pattern="ring")
    assert [f for f, _ in err.value.problems] == [
        "planes", "sats_per_plane", "altitude_km", "inclination_deg", "pattern"]
    with pytest.raises(TopologyError) as err:
        ScheduleConfig.from_dict({"preset": "test4x4", "isl_policy": "listed",
                                  "isl_params": {"pairs": [[0, 1], [3, 3], [1, 0], ["x", 2], [1]]}})
    assert err.value.problems == (
        ("isl_params.pairs[1]", "links satellite 3 to itself"),
        ("isl_params.pairs[3]", "must be an integer, got 'x'"),
        ("isl_params.pairs[4]", "must be [a, b]"),
        ("isl_params.pairs", "pair [0, 1] listed twice"))
