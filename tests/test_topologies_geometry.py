"""Orbital geometry against outside authorities (Skyfield, Kepler's law).

Tolerances are named with their units.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime, timezone

import numpy as np
import pytest
from skyfield.api import EarthSatellite, wgs84
from skyfield.framelib import itrs

import topologies
from topologies import PRESETS, ScheduleConfig, generate
from topologies.fleet import fleet_from_shells
from topologies.geodesy import ecef_to_geodetic, geodetic_to_ecef_km
from topologies.propagate import propagate_ecef_km
from topologies.timebase import Timebase, ephemeris, timescale
from topologies.tle import load_tle

from conftest import DATA

ONE_METRE_KM = 1e-3
ONE_MM_KM = 1e-6
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
MU_KM3_S2 = 398600.8          # WGS-72, as SGP4 uses
EARTH_RADIUS_KM = 6378.135    # WGS-72


@functools.lru_cache(maxsize=None)
def starlink_schedule():
    # 240 steps, knots every ~6 s: exercises the interpolated propagation path.
    return generate(ScheduleConfig(preset="starlink_shell1", duration_s=120.0, step_s=0.5,
                                   epoch=EPOCH))


def skyfield_itrs_km(sat: EarthSatellite, schedule, steps) -> np.ndarray:
    t = Timebase(schedule.epoch, schedule.times_s[steps]).skyfield_times()
    return sat.at(t).frame_xyz(itrs).km.T


def test_walker_positions_match_skyfield_within_1_m():
    schedule = starlink_schedule()
    assert schedule.meta["propagation"]["method"] == "sgp4+lagrange4"
    fleet = fleet_from_shells(PRESETS["starlink_shell1"].shells, EPOCH)
    ts = timescale()
    steps = np.array([0, 1, 3, 7, 11, 50, 117, 200, 239])
    for sat_id in (0, 1, 21, 22, 500, 1000, 1583):
        sat = EarthSatellite.from_satrec(fleet.satrecs[sat_id], ts)
        reference = skyfield_itrs_km(sat, schedule, steps)
        ours = schedule.positions.ecef_km[steps, sat_id]
        assert np.abs(ours - reference).max() < ONE_METRE_KM


def test_tle_positions_match_skyfield_within_1_m():
    path = DATA / "starlink-2022-09-14.tle"
    schedule = generate(ScheduleConfig(tle_path=str(path), duration_s=60.0, step_s=0.25))
    records = {r.name: r for r in load_tle(path).records}
    ts = timescale()
    steps = np.array([0, 5, 101, 239])
    for sat_id in (0, 700, 1400, 2000, schedule.satellite_ids()[-1]):
        record = records[schedule.nodes["name"].iloc[sat_id]]
        sat = EarthSatellite(record.line1, record.line2, record.name, ts)  # independent parse
        reference = skyfield_itrs_km(sat, schedule, steps)
        assert np.abs(schedule.positions.ecef_km[steps, sat_id] - reference).max() < ONE_METRE_KM


def test_interpolated_propagation_matches_direct_sgp4_within_1_mm():
    fleet = fleet_from_shells(PRESETS["starlink_shell1"].shells, EPOCH)
    index = np.arange(0, fleet.n_sats, 37)
    fleet = topologies.Fleet(**{**fleet.__dict__,
                                **{k: getattr(fleet, k)[index] for k in
                                   ("shell", "plane", "slot", "raan_deg", "arg_lat_deg",
                                    "radius_km", "capacity_bps")},
                                "satrecs": tuple(fleet.satrecs[i] for i in index),
                                "names": tuple(fleet.names[i] for i in index)})
    fine = Timebase(EPOCH, np.arange(0, 300.0, 0.1))
    info = {}
    interpolated = propagate_ecef_km(fleet, fine, info=info)
    assert info["method"] == "sgp4+lagrange4"
    coarse_steps = np.arange(0, fine.times_s.size, 7)
    direct = propagate_ecef_km(fleet, Timebase(EPOCH, fine.times_s[coarse_steps]), info=info,
                               exact=True)
    assert info["method"] == "sgp4"
    assert np.abs(interpolated[coarse_steps] - direct).max() < ONE_MM_KM


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_orbital_period_matches_kepler_within_0_1_s(name):
    for shell in PRESETS[name].shells:
        fleet = fleet_from_shells((shell,), EPOCH)
        a_km = EARTH_RADIUS_KM + shell.altitude_km
        kepler_s = 2.0 * math.pi * math.sqrt(a_km**3 / MU_KM3_S2)
        for sat in fleet.satrecs[:: max(1, fleet.n_sats // 10)]:
            period_s = 2.0 * math.pi / sat.no_kozai * 60.0     # no_kozai in rad/min
            assert abs(period_s - kepler_s) < 0.1
        assert abs(topologies.kepler_period_s(a_km) - kepler_s) < 0.1


def test_propagated_radius_stays_near_shell_altitude():
    schedule = starlink_schedule()
    radius_km = np.linalg.norm(schedule.positions.ecef_km, axis=-1)
    # Circular orbit plus SGP4's short-period J2 terms (a few km).
    assert np.abs(radius_km - (EARTH_RADIUS_KM + 550.0)).max() < 15.0


def test_all_satellites_of_a_plane_share_raan():
    shell = PRESETS["starlink_shell1"].shells[0]
    fleet = fleet_from_shells((shell,), EPOCH)
    nodeo = np.array([s.nodeo for s in fleet.satrecs]).reshape(shell.planes, shell.sats_per_plane)
    assert np.ptp(nodeo, axis=1).max() == 0.0
    spacing_deg = np.degrees(np.diff(nodeo[:, 0]))
    assert np.allclose(spacing_deg, 360.0 / shell.planes)
    # Independently, from the propagated (inertial TEME) positions: orbit normal r0 x r1.
    from topologies.propagate import propagate_teme_km
    r = propagate_teme_km(fleet, Timebase(EPOCH, np.array([0.0, 60.0])), np.array([0.0, 60.0]))
    normal = np.cross(r[0], r[1])
    raan_deg = np.degrees(np.arctan2(normal[:, 0], -normal[:, 1])) % 360.0
    raan_deg = raan_deg.reshape(shell.planes, shell.sats_per_plane)
    spread = np.abs((raan_deg - raan_deg[:, :1] + 180.0) % 360.0 - 180.0)
    assert spread.max() < 0.05      # osculating RAAN wobbles slightly with J2


def test_star_pattern_spans_180_degrees():
    fleet = fleet_from_shells(PRESETS["iridium"].shells, EPOCH)
    raans = np.unique(np.round(fleet.raan_deg, 9))
    assert np.allclose(np.diff(raans), 30.0) and fleet.shell_wraps == (False,)


def test_geodetic_matches_skyfield_wgs84():
    schedule = starlink_schedule()
    t = Timebase(schedule.epoch, schedule.times_s[[10]]).skyfield_times()
    fleet = fleet_from_shells(PRESETS["starlink_shell1"].shells, EPOCH)
    for sat_id in (3, 800):
        position = EarthSatellite.from_satrec(fleet.satrecs[sat_id], timescale()).at(t)
        point = wgs84.geographic_position_of(position)
        assert abs(point.latitude.degrees[0] - schedule.positions.lat_deg[10, sat_id]) < 1e-6
        assert abs(point.longitude.degrees[0] - schedule.positions.lon_deg[10, sat_id]) < 1e-6
        assert abs(point.elevation.km[0] - schedule.positions.alt_km[10, sat_id]) < ONE_METRE_KM
    lat, lon, alt = np.array([-89.9, -45.0, 0.0, 33.3, 89.99]), np.array([-179, -60, 0, 45, 179.5]), \
        np.array([0.0, 550.0, 8000.0, 0.1, 1200.0])
    back = ecef_to_geodetic(geodetic_to_ecef_km(lat, lon, alt))
    assert np.allclose(back[0], lat, atol=1e-9) and np.allclose(back[1], lon, atol=1e-9)
    assert np.allclose(back[2], alt, atol=ONE_MM_KM)


def test_sunlit_flags_match_skyfield():
    schedule = generate(ScheduleConfig(preset="starlink_shell1", duration_s=5400.0, step_s=60.0,
                                       epoch=EPOCH, compute={"every_k": 50}))
    fleet = fleet_from_shells(PRESETS["starlink_shell1"].shells, EPOCH)
    t = Timebase(schedule.epoch, schedule.times_s).skyfield_times()
    mismatches = 0
    for sat_id in schedule.node_ids("compute"):
        reference = EarthSatellite.from_satrec(fleet.satrecs[sat_id], timescale()).at(t) \
            .is_sunlit(ephemeris())
        mismatches += int(np.count_nonzero(reference != schedule.sunlit[:, sat_id]))
    assert mismatches == 0
    assert 0.2 < schedule.sunlit[:, schedule.node_ids("compute")].mean() < 0.95


def test_output_shapes_and_dtypes():
    schedule = generate(ScheduleConfig(preset="test4x4", duration_s=7.0, step_s=0.5, epoch=EPOCH,
                                       ground_stations=(("Quito", -0.18, -78.47),)))
    n_steps, n_nodes = 14, 17
    assert schedule.times_s.shape == (n_steps,) and schedule.n_steps == n_steps
    assert np.allclose(schedule.times_s, np.arange(n_steps) * 0.5)
    assert schedule.positions.ecef_km.shape == (n_steps, n_nodes, 3)
    for name in ("lat_deg", "lon_deg", "alt_km"):
        assert getattr(schedule.positions, name).shape == (n_steps, n_nodes)
    assert schedule.sunlit.shape == (n_steps, n_nodes) and schedule.sunlit.dtype == bool
    assert schedule.epoch.tzinfo is not None and schedule.epoch.utcoffset().total_seconds() == 0
    assert list(schedule.nodes.columns) == ["node_id", "name", "kind", "shell", "plane", "slot"]
    assert schedule.nodes["node_id"].tolist() == list(range(n_nodes))
    assert schedule.nodes["kind"].tolist() == ["satellite"] * 16 + ["ground"]
    ground = schedule.positions
    assert np.allclose(ground.lat_deg[:, 16], -0.18) and np.allclose(ground.alt_km[:, 16], 0.0)
    assert (schedule.nodes.loc[16, ["shell", "plane", "slot"]] == -1).all()
