"""Formation-flying clusters: HCW geometry, the SSO preset, cluster links and their config.

Pure tests (no root).  Tolerances are stated where they are used, with why they hold.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import topologies as topo
from topologies.cluster import ORBIT_PRESETS, Cluster, reference_satrec
from topologies.constants import C_KM_S, EARTH_RADIUS_KM, MU_KM3_S2
from topologies.formation import (circular_relative_states_m, hcw_offsets_m, lvlh_basis,
                                  mean_motion_rad_s, members_inertial_km, sso_inclination_deg,
                                  sunflower_layout)
from topologies.timebase import Timebase, parse_epoch

CLUSTER = {"name": "sc", "count": 10, "radius_m": 1000.0, "orbit": "dawn_dusk_sso_650",
           "gateways": [0, 5]}


def _schedule(epoch="2025-12-21T00:00:00Z", duration_s=120.0, step_s=1.0, **cluster):
    return topo.generate(topo.ScheduleConfig(
        preset="test6x6", clusters=({**CLUSTER, **cluster},), lasers_per_sat=5,
        duration_s=duration_s, step_s=step_s, epoch=epoch))


# ------------------------------------------------------------------ orbit and SSO

def test_sso_inclination_at_650_km_is_97_99_deg():
    assert sso_inclination_deg(650.0) == pytest.approx(97.99, abs=0.01)
    assert ORBIT_PRESETS["dawn_dusk_sso_650"]["inclination_deg"] == sso_inclination_deg(650.0)
    # higher orbits need more inclination (cos i ~ -a^3.5)
    assert sso_inclination_deg(800.0) > sso_inclination_deg(650.0) > sso_inclination_deg(500.0)


def test_sso_preset_node_follows_the_sun_under_sgp4():
    """An independent check of the J2 formula: SGP4 (with its own J2, J4 secular terms)
    must precess the node by the Sun's 0.9856 deg/day; J4 and J2^2 terms change the rate
    by well under 1 %, so 1 % is the tolerance."""
    cluster = Cluster(**CLUSTER)
    epoch = parse_epoch("2025-12-21T00:00:00Z")
    sat = reference_satrec(cluster, epoch, raan_deg=100.0)
    timebase = Timebase(epoch, np.array([0.0, 10 * 86_400.0]))
    jd, fr = timebase.sgp4_dates()
    _, r, v = sat.sgp4_array(jd, fr)
    h = np.cross(r, v)
    raan_deg = np.degrees(np.arctan2(h[:, 0], -h[:, 1]))
    drift_deg_day = ((raan_deg[1] - raan_deg[0]) % 360.0) / 10.0
    assert drift_deg_day == pytest.approx(360.0 / 365.2422, rel=0.01)


def test_dawn_dusk_orbit_is_sunlit_in_december_and_sees_eclipses_in_june():
    """The dawn-dusk SSO's eclipse season is around the June solstice (beta angle
    ~59 deg < the 65 deg eclipse limit at 650 km); in December it never enters shadow."""
    orbit_s = 2 * math.pi / mean_motion_rad_s(650.0)
    december = _schedule("2025-12-21T00:00:00Z", orbit_s, 30.0)
    june = _schedule("2025-06-21T00:00:00Z", orbit_s, 30.0)
    members = december.nodes.index[december.nodes.name.str.startswith("sc-")]
    assert december.sunlit[:, members].all()
    eclipsed = 1.0 - june.sunlit[:, members].mean()
    assert 0.05 < eclipsed < 0.3      # ~15 % of an orbit: a ~15-20 min eclipse


# ------------------------------------------------------------------ HCW geometry

def test_circular_relative_orbits_are_bounded_at_their_radius():
    n = mean_motion_rad_s(650.0)
    radius, phase = sunflower_layout(81, 1000.0)
    t = np.linspace(0.0, 3 * 2 * math.pi / n, 500)          # three orbits
    rho = hcw_offsets_m(circular_relative_states_m(radius, phase, n), n, t)
    assert rho.shape == (500, 81, 3)
    distance = np.linalg.norm(rho, axis=-1)
    np.testing.assert_allclose(distance, np.broadcast_to(radius, distance.shape), rtol=1e-9)
    assert distance.max() <= 1000.0
    # a rigid disc: mutual distances constant, the closest pair hundreds of metres apart
    pair = np.linalg.norm(rho[:, :, None] - rho[:, None, :], axis=-1)
    np.testing.assert_allclose(pair, np.broadcast_to(pair[0], pair.shape), atol=1e-6)
    assert np.sort(pair[0], axis=1)[:, 1].min() > 100.0


def test_members_stay_within_radius_of_the_reference_over_a_full_orbit():
    """In the schedule itself: every member's ECEF distance from the SGP4 reference
    (propagated here separately) stays <= radius_m over one orbit (float64 km positions
    resolve ~1e-9 km, so 1e-6 m of slack)."""
    orbit_s = 2 * math.pi / mean_motion_rad_s(650.0)
    schedule = _schedule(duration_s=orbit_s, step_s=20.0)
    cluster = schedule.meta["clusters"][0]
    first = cluster["first_node_id"]
    members = schedule.positions.ecef_km[:, first:first + 10]
    sat = reference_satrec(Cluster(**CLUSTER), schedule.epoch, cluster["raan_deg"])
    timebase = Timebase(schedule.epoch, schedule.times_s)
    _, r, _ = sat.sgp4_array(*timebase.sgp4_dates())
    from topologies.propagate import teme_to_ecef_inplace
    ref = teme_to_ecef_inplace(r[None].transpose(1, 0, 2).copy(), timebase.earth_rotation_rad())
    distance_m = np.linalg.norm(members - ref, axis=-1) * 1000.0
    assert distance_m.max() <= 1000.0 + 1e-6
    expected_m, _ = sunflower_layout(10, 1000.0)
    np.testing.assert_allclose(distance_m, np.broadcast_to(expected_m, distance_m.shape), atol=1e-5)


def _two_body_members(radius_m: float, count: int, steps: int = 300):
    """HCW member positions and an independent two-body integration of each member,
    both inertial [m], shape (T, count, 3), over one orbit of a 650 km circular orbit."""
    mu = MU_KM3_S2 * 1e9
    r0 = (EARTH_RADIUS_KM + 650.0) * 1e3
    n = math.sqrt(mu / r0**3)
    period = 2 * math.pi / n
    inc = math.radians(97.99)
    t = np.linspace(0.0, period, steps)
    u = n * t
    ref_r = r0 * np.stack([np.cos(u), np.sin(u) * math.cos(inc), np.sin(u) * math.sin(inc)], -1)
    ref_v = r0 * n * np.stack([-np.sin(u), np.cos(u) * math.cos(inc), np.cos(u) * math.sin(inc)], -1)
    radius, phase = sunflower_layout(count, radius_m)
    state0 = circular_relative_states_m(radius, phase, n)
    hcw = members_inertial_km(ref_r / 1e3, ref_v / 1e3, hcw_offsets_m(state0, n, t)) * 1e3
    basis = lvlh_basis(ref_r[:1], ref_v[:1])[0]          # rows: LVLH axes in inertial
    omega = np.array([0.0, 0.0, n])                      # LVLH rotation, in LVLH
    integrated = np.empty_like(hcw)
    for k in range(count):
        rho, rho_dot = state0[k, :3], state0[k, 3:]
        y0 = np.r_[ref_r[0] + rho @ basis, ref_v[0] + (rho_dot + np.cross(omega, rho)) @ basis]
        sol = solve_ivp(lambda _, y: np.r_[y[3:], -mu * y[:3] / np.linalg.norm(y[:3]) ** 3],
                        (0.0, period), y0, t_eval=t, method="DOP853", rtol=1e-13, atol=1e-7)
        integrated[:, k] = sol.y[:3].T
    return hcw, integrated, r0


def test_hcw_positions_match_two_body_integration_within_metres():
    """HCW linearises gravity about the reference: the dropped terms are of order
    3 n^2 rho^2 / r (rho = 1 km, r = 7,028 km: 0.14 m of position scale rho^2/r), and
    along-track they accumulate over an orbit (measured: at most 1.7 m for 10 members
    on a 1 km disc).  Tolerance: 25 rho^2 / r = 3.6 m.  The integration itself (DOP853,
    rtol 1e-13) is good to millimetres over one orbit."""
    hcw, integrated, r0 = _two_body_members(1000.0, 10)
    error_m = np.linalg.norm(hcw - integrated, axis=-1)
    assert error_m.max() < 25 * 1000.0**2 / r0
    # and it *is* HCW's second-order error, not noise: ten times the radius, ~100 x the error
    hcw10, integrated10, _ = _two_body_members(10_000.0, 10)
    ratio = np.linalg.norm(hcw10 - integrated10, axis=-1).max() / error_m.max()
    assert 50.0 < ratio < 200.0


# ------------------------------------------------------------------ links

def test_intra_cluster_delays_are_metre_exact_distance_over_c():
    schedule = _schedule()
    first = schedule.meta["clusters"][0]["first_node_id"]
    links = schedule.links
    intra = links[(links.a >= first) & (links.b < first + 10)]
    assert len(intra) > 0 and (intra.kind == "isl").all()
    assert (intra.capacity_bps == 1.6e12).all()
    # delay = distance / c in float64, no rounding to km steps (relative 1e-15)
    np.testing.assert_allclose(intra.delay_s, intra.distance_km / C_KM_S, rtol=1e-15, atol=0)
    # the distance is the geometric one between the two positions at that step ...
    pos = schedule.positions.ecef_km
    geometric = np.linalg.norm(pos[intra.step, intra.a] - pos[intra.step, intra.b], axis=-1)
    np.testing.assert_allclose(intra.distance_km, geometric, rtol=0, atol=1e-12)
    # ... and equals the rigid disc's chord to micrometres (HCW offsets are rotated, not rounded)
    n = mean_motion_rad_s(650.0)
    radius, phase = sunflower_layout(10, 1000.0)
    rho = hcw_offsets_m(circular_relative_states_m(radius, phase, n), n, np.zeros(1))[0]
    chord_m = np.linalg.norm(rho[intra.a - first] - rho[intra.b - first], axis=-1)
    np.testing.assert_allclose(intra.distance_km * 1000.0, chord_m, atol=1e-5)
    assert intra.distance_km.min() * 1000.0 > 100.0 and intra.distance_km.max() * 1000.0 <= 2000.0
    # nearest 4: no member has more than 4 intra-cluster links at a step
    degree = np.bincount(np.r_[intra.a, intra.b] - first + 10 * np.r_[intra.step, intra.step])
    assert degree.max() <= 4


def test_gateways_link_to_shell_satellites_with_a_free_laser():
    schedule = _schedule()
    first = schedule.meta["clusters"][0]["first_node_id"]
    links = schedule.links
    gateway = links[(links.a < first) & (links.b >= first) & (links.kind == "isl")]
    assert set(gateway.b) <= {first, first + 5}
    assert (gateway.groupby("step").size() >= 1).all()          # the cluster stays joined
    assert gateway.step.nunique() == schedule.meta["n_steps"]
    shell = links[(links.b < first) & (links.kind == "isl")]
    lasers = np.bincount(np.r_[shell.a, shell.b, gateway.a] + first * np.r_[shell.step, shell.step,
                                                                             gateway.step])
    assert lasers.max() <= 5                                     # lasers_per_sat
    np.testing.assert_allclose(gateway.delay_s, gateway.distance_km / C_KM_S, rtol=1e-15)


def test_cluster_members_are_compute_satellites_and_the_file_round_trips(tmp_path):
    schedule = _schedule(duration_s=10.0)
    members = schedule.nodes[schedule.nodes.name.str.startswith("sc-")]
    assert len(members) == 10 and (members.kind == "compute").all()
    assert members.node_id.tolist() == list(range(36, 46))
    schedule.save(tmp_path / "s.parquet")
    loaded = topo.Schedule.load(tmp_path / "s.parquet")     # validates per-node laser limits
    assert loaded.links.equals(schedule.links)
    assert loaded.sunlit[:, 36:46].all()


# ------------------------------------------------------------------ configuration

def test_bad_cluster_config_names_each_key_path():
    bad = {"count": 4, "radius_m": -1, "orbit": "geo", "gateways": [12], "colour": "red",
           "intra_topology": "ring"}
    with pytest.raises(topo.TopologyError) as caught:
        topo.ScheduleConfig.from_dict({"preset": "test4x4", "clusters": [bad]})
    fields = [field for field, _ in caught.value.problems]
    assert fields == ["clusters[0].colour", "clusters[0].radius_m", "clusters[0].orbit",
                      "clusters[0].altitude_km", "clusters[0].inclination_deg",
                      "clusters[0].intra_topology", "clusters[0].gateways[0]"]
    assert all("\n" not in problem for _, problem in caught.value.problems)


def test_cluster_config_round_trips_through_plain_data():
    config = topo.ScheduleConfig(preset="test4x4", clusters=(CLUSTER,))
    again = topo.ScheduleConfig.from_dict(config.to_dict())
    assert again == config
    assert again.clusters[0].inclination_deg == pytest.approx(97.99, abs=0.01)
    assert again.clusters[0].ltan_h == 18.0


def test_shipped_orbital_datacenter_spec_builds_its_cluster_and_eclipse():
    """experiments/orbital_datacenter.toml through `testbed topo --spec`'s reader: the
    cluster is sunlit all window (December), and the shell's compute satellites are in
    the Earth's shadow until sunrise inside the window (what its header says)."""
    from pathlib import Path

    from topologies.cli import spec_to_config_dict, tomllib
    path = Path(__file__).resolve().parents[1] / "experiments" / "orbital_datacenter.toml"
    config = topo.ScheduleConfig.from_dict(
        spec_to_config_dict(tomllib.loads(path.read_text()), path))
    schedule = topo.generate(config)
    members = schedule.nodes.index[schedule.nodes.name.str.startswith("suncatcher-")]
    assert len(members) == 8 and schedule.sunlit[:, members].all()
    sunlit = schedule.sunlit[:, [7, 32]]                   # the shell's compute satellites
    assert not sunlit[0].any() and sunlit[-1].all()         # in shadow at first, then sunrise
    sunrise_s = schedule.times_s[np.argmax(sunlit, axis=0)]
    assert 30 <= sunrise_s.min() and sunrise_s.max() <= 50     # 40 s and 44 s
