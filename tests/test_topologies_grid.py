"""The +Grid on phased shells: consistent pairing, Hypatia's index pairing, laser usage.

Property: every satellite has 4 ISLs wherever range and line of sight allow, for
every preset and for phased Walker and TLE shells, and the grid never changes from
step to step because of a tie (the planned pairs are fixed; only feasibility moves).
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from topologies import PRESETS, ScheduleConfig, Shell, TopologyError, generate
from topologies.fleet import fleet_from_shells
from topologies.geodesy import segment_clearance_km
from topologies.generate import build_fleet
from topologies.grid import plane_pair_offset_deg, plus_grid_plan
from topologies.hypatia import _tle_lines

EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
EARTH_RADIUS_KM = 6378.135
GRAZING_KM = 80.0


def isl_degree(schedule) -> np.ndarray:
    """ISLs per (step, satellite), shape (T, S)."""
    links = schedule.links[(schedule.links["kind"] == "isl").to_numpy()]
    n = schedule.n_nodes
    ends = np.r_[links["step"].to_numpy() * n + links["a"].to_numpy(),
                 links["step"].to_numpy() * n + links["b"].to_numpy()]
    degree = np.bincount(ends, minlength=schedule.n_steps * n).reshape(schedule.n_steps, n)
    return degree[:, schedule.satellite_ids()]


def isl_pairs_per_step(schedule) -> list[set]:
    links = schedule.links[(schedule.links["kind"] == "isl").to_numpy()]
    out = [set() for _ in range(schedule.n_steps)]
    for step, a, b in zip(links["step"].tolist(), links["a"].tolist(), links["b"].tolist()):
        out[step].add((a, b))
    return out


def clearly_feasible(schedule, step: int, a: int, b: int, margin_km: float = 20.0) -> bool:
    """Independent check: well within the derived line-of-sight range and clear of the
    Earth (the margin covers osculating vs nominal radius)."""
    p = schedule.positions.ecef_km[step]
    radius = schedule.positions.ecef_km[0, [a, b]]
    r = np.linalg.norm(radius, axis=1)          # ~ nominal radius
    g = EARTH_RADIUS_KM + GRAZING_KM
    reach = np.sqrt(np.clip(r**2 - g**2, 0, None)).sum()
    return (np.linalg.norm(p[a] - p[b]) <= reach - margin_km and
            segment_clearance_km(p[a], p[b]) >= g + margin_km)


def hypatia_grid(n_orbits: int, per_orbit: int, shift: int) -> set:
    """Hypatia's isls.txt for a +Grid (plane-major satellite ids), from its definition."""
    pairs = set()
    for i in range(n_orbits):
        for j in range(per_orbit):
            sat = i * per_orbit + j
            same = i * per_orbit + (j + 1) % per_orbit
            adjacent = ((i + 1) % n_orbits) * per_orbit + (j + shift) % per_orbit
            pairs |= {(min(sat, same), max(sat, same)), (min(sat, adjacent), max(sat, adjacent))}
    return pairs


def write_tles(path, shells, header: bool) -> None:
    """A TLE file of Walker shells (4-decimal angles, as a real TLE carries them)."""
    fleet = fleet_from_shells(tuple(shells), EPOCH)
    lines = [f"{shells[0].planes} {shells[0].sats_per_plane}"] if header else []
    for i, (name, rec) in enumerate(zip(fleet.names, fleet.satrecs)):
        lines += [f"{name} {i}" if header else name, *_tle_lines(rec)]
    path.write_text("\n".join(lines) + "\n")


# -- every preset ------------------------------------------------------------------

@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_has_four_isls_wherever_range_and_sight_allow(preset):
    config = ScheduleConfig(preset=preset, epoch=EPOCH, duration_s=600.0, step_s=200.0)
    schedule = generate(config)
    usage = schedule.meta["laser_usage"]
    # nothing is lost to the plan itself: no ties, no missing slots, no small planes
    assert set(usage["reasons"]) <= {"no_adjacent_plane", "no_neighbour_in_range"}
    star = all(s.pattern == "star" for s in PRESETS[preset].shells)
    assert ("no_adjacent_plane" in usage["reasons"]) == star
    degree = isl_degree(schedule)
    plane = schedule.nodes["plane"].to_numpy()[schedule.satellite_ids()]
    shell = schedule.nodes["shell"].to_numpy()[schedule.satellite_ids()]
    edge = np.zeros(plane.size, bool)
    for i, s in enumerate(PRESETS[preset].shells):
        if s.pattern == "star":
            edge |= (shell == i) & ((plane == 0) | (plane == s.planes - 1))
    pairs = isl_pairs_per_step(schedule)
    planned = {tuple(p) for p in plus_grid_plan(build_fleet(config)[0], 4).pairs.tolist()}
    assert set().union(*pairs) <= planned
    for step in range(schedule.n_steps):
        missing = planned - pairs[step]
        # a planned link is absent only where it is out of range or sight
        assert not any(clearly_feasible(schedule, step, a, b) for a, b in missing)
        lost = np.zeros(plane.size, np.int64)
        for a, b in missing:
            lost[a] += 1
            lost[b] += 1
        assert (degree[step] == 4 - edge - lost).all()
    if preset != "starlink_gen1":     # its 97.6 deg shells have planes 60-90 deg apart
        assert (degree == 4 - edge).all()


# -- phased Walker shells ---------------------------------------------------------

PHASED = [
    Shell(72, 22, 550.0, 53.0, phasing=36, name="f_half"),              # F = P/2
    Shell(72, 22, 550.0, 53.0, phasing=0, odd_plane_offset_slots=0.5, name="hyp"),
    Shell(24, 24, 800.0, 60.0, phasing=12, name="f_half_24"),
    Shell(20, 18, 700.0, 70.0, phasing=0, odd_plane_offset_slots=0.5, name="hyp20"),
]


#: Index pairing follows slot numbers, so it is tested on Hypatia-numbered shells
#: (with Walker F = P/2 plane p's slot 0 sits p/2 slots on: index links would skew).
CASES = [(shell, {}) for shell in PHASED] + \
    [(shell, {"pairing": "index"}) for shell in PHASED if shell.odd_plane_offset_slots]


@pytest.mark.parametrize("shell, isl_params", CASES,
                         ids=[f"{s.name}-{p.get('pairing', 'arg_lat')}" for s, p in CASES])
def test_phased_walker_shells_keep_a_full_grid_at_every_step(shell, isl_params):
    schedule = generate(ScheduleConfig(shells=(shell,), epoch=EPOCH, duration_s=3000.0,
                                       step_s=100.0, isl_params=isl_params))
    assert (isl_degree(schedule) == 4).all()
    pairs = isl_pairs_per_step(schedule)
    assert all(p == pairs[0] for p in pairs)          # no flapping
    plane = schedule.nodes["plane"].to_numpy()
    slot = schedule.nodes["slot"].to_numpy()
    # a regular grid: one slot offset per plane pair, the same for its every satellite
    offsets = {}
    for a, b in pairs[0]:
        if plane[a] != plane[b]:
            west, east = (a, b) if (plane[b] - plane[a]) % shell.planes == 1 else (b, a)
            offsets.setdefault(int(plane[west]), set()).add(
                int((slot[east] - slot[west]) % shell.sats_per_plane))
    assert len(offsets) == shell.planes and all(len(v) == 1 for v in offsets.values())


def test_half_slot_ties_resolve_to_the_partner_ahead_whatever_the_noise():
    rng = np.random.default_rng(1)
    u_west = np.arange(22) * 360.0 / 22
    for _ in range(50):
        noise = rng.normal(0.0, 0.02, (2, 22))    # ~ TLE and mean-element noise [deg]
        offset = plane_pair_offset_deg(u_west + noise[0], u_west + 180.0 / 22 + noise[1])
        assert offset == pytest.approx(180.0 / 22)
        back = plane_pair_offset_deg(u_west + noise[0], u_west - 180.0 / 22 + noise[1])
        assert back == pytest.approx(180.0 / 22)         # -half == +half: the same tie
    assert plane_pair_offset_deg(u_west, u_west + 3.0) == pytest.approx(3.0)


# -- TLE shells (the case: phased Starlink shell 1 from TLEs) ---------------

@pytest.mark.parametrize("header", [False, True], ids=["plain_tle", "hypatia_tles"])
def test_phased_tle_shell_keeps_a_full_grid(tmp_path, header):
    shell = Shell(72, 22, 550.0, 53.0, phasing=0, odd_plane_offset_slots=0.5, name="s1")
    path = tmp_path / "tles.txt"
    write_tles(path, [shell], header)
    schedule = generate(ScheduleConfig(tle_path=str(path), duration_s=200.0, step_s=20.0))
    assert schedule.meta["laser_usage"]["isls_per_satellite"]["4"] == 1584
    assert (isl_degree(schedule) == 4).all()
    pairs = isl_pairs_per_step(schedule)
    assert all(p == pairs[0] for p in pairs) and len(pairs[0]) == 2 * 1584


def test_acceptance_hypatia_index_grid_with_range_cap_and_utc(tmp_path):
    """Phased Starlink shell 1 from Hypatia's tles.txt, pairing = "index", shift = 0,
    ground range cap 1,089.686 km, Earth rotation by UTC: the ISL set is Hypatia's
    regular grid at every step and every satellite has 4 ISLs."""
    shell = Shell(72, 22, 550.0, 53.0, phasing=0, odd_plane_offset_slots=0.5, name="s1")
    path = tmp_path / "tles.txt"
    write_tles(path, [shell], header=True)
    schedule = generate(ScheduleConfig(
        tle_path=str(path), isl_params={"pairing": "index", "shift": 0}, duration_s=200.0,
        step_s=1.0, gsl_max_range_km=1089.686, gsl_min_elevation_deg=0.0,
        earth_rotation="utc", ground_stations=(("Paris", 48.86, 2.35), ("Luanda", -8.84, 13.23))))
    expected = hypatia_grid(72, 22, 0)
    assert all(p == expected for p in isl_pairs_per_step(schedule))
    assert (isl_degree(schedule) == 4).all()
    assert schedule.meta["earth_rotation"] == "utc"
    gsl = schedule.links[(schedule.links["kind"] == "gsl").to_numpy()]
    assert len(gsl) and gsl["distance_km"].max() <= 1089.686


def test_index_shift_moves_every_cross_plane_partner():
    schedule = generate(ScheduleConfig(preset="starlink_shell1_hypatia", epoch=EPOCH,
                                       duration_s=10.0, step_s=10.0,
                                       isl_params={"pairing": "index", "shift": 1}))
    assert isl_pairs_per_step(schedule)[0] == hypatia_grid(72, 22, 1)
    with pytest.raises(TopologyError, match="isl_params.shift: only applies with pairing"):
        ScheduleConfig(preset="test4x4", isl_params={"shift": 1})


# -- laser usage on an irregular shell ------------------------------------------

def test_laser_usage_names_missing_slots_gaps_and_range(tmp_path):
    """Delete satellites from a TLE shell: the summary says which lasers are lost to a
    missing slot (the neighbour plane is short) and which to range, and counts agree
    with the ISLs actually present."""
    shell = Shell(12, 12, 550.0, 53.0, phasing=0, odd_plane_offset_slots=0.5, name="s")
    fleet = fleet_from_shells((shell,), EPOCH)
    lines = []
    removed = {(3, 0), (3, 1), (3, 2), (3, 3), (7, 5)}   # a gap of 4 slots and a lone hole
    for name, rec, p, s in zip(fleet.names, fleet.satrecs, fleet.plane, fleet.slot):
        if (int(p), int(s)) not in removed:
            lines += [name, *_tle_lines(rec)]
    path = tmp_path / "gaps.tle"
    path.write_text("\n".join(lines) + "\n")
    schedule = generate(ScheduleConfig(tle_path=str(path), duration_s=1.0, step_s=1.0))
    usage = schedule.meta["laser_usage"]
    degree = isl_degree(schedule)[0]
    histogram = {k: int((degree == int(k)).sum()) for k in usage["isls_per_satellite"]}
    assert histogram == usage["isls_per_satellite"]
    reasons = usage["reasons"]
    assert "tie" not in reasons and reasons["missing_slot"]["lasers"] == 2 * 5
    # plane 3's ring closes across its 4-slot gap (150 deg) and plane 7's across its hole
    # (60 deg: 6,928 km > 5,017 km): both out of range, both spanning a gap
    assert reasons["gap"] == {"satellites": 4, "lasers": 4, "meaning": reasons["gap"]["meaning"]}
    lost = sum(r["lasers"] for r in reasons.values())
    assert lost == 4 * degree.size - int(degree.sum())
