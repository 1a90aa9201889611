"""The network plan: deterministic names, ports and addresses (pure)."""

import pytest

from testbed.net import plan
from testbed.links.backends import tbf_params


def test_chain_plan_ports_and_addresses():
    p = plan.chain_plan(3, 0.005, 20e6)
    assert [s.bridge for s in p.switches] == ["lms0", "lms1", "lms2"]
    assert [s.dpid for s in p.switches] == [1, 2, 3]
    assert [(h.name, h.ip, h.port) for h in p.hosts] == [("h0", "10.100.0.1", 1), ("h2", "10.100.0.3", 1)]
    assert p.ports() == {(0, 1): 2, (1, 0): 2, (1, 2): 3, (2, 1): 2}
    assert [(lk.if_a, lk.if_b) for lk in p.links] == [("lm0-1", "lm1-0"), ("lm1-2", "lm2-1")]
    assert all(len(lk.if_a) <= 15 for lk in p.links)


def test_plan_is_deterministic_whatever_the_link_order():
    links = [(2, 1, "isl", 1e6, 0.01, True), (0, 1, "isl", 1e6, 0.01, True), (0, 2, "isl", 1e6, 0.01, False)]
    p1 = plan.make_plan([0, 1, 2], {1: ("h1", "compute")}, links)
    p2 = plan.make_plan([2, 1, 0], {1: ("h1", "compute")}, list(reversed(links)))
    assert p1 == p2
    assert len({(lk.a, lk.port_a) for lk in p1.links} | {(lk.b, lk.port_b) for lk in p1.links}) == 6


def test_addresses_unique_and_macs_locally_administered():
    ips = {plan.host_ip(n) for n in range(2000)}
    macs = {plan.host_mac(n) for n in range(2000)}
    assert len(ips) == len(macs) == 2000
    assert all(int(m.split(":")[0], 16) & 0x02 for m in macs)


@pytest.mark.parametrize("links,match", [
    ([(0, 0, "isl", 1, 1, True)], "identical"),
    ([(0, 5, "isl", 1, 1, True)], "unknown"),
    ([(0, 1, "isl", 1, 1, True), (1, 0, "isl", 1, 1, True)], "twice"),
])
def test_bad_links_rejected(links, match):
    with pytest.raises(ValueError, match=match):
        plan.make_plan([0, 1], {}, links)


def test_tbf_params_scale_with_rate():
    b1, l1 = tbf_params(20e6)
    b2, l2 = tbf_params(2e9)
    assert b1 >= 2 * 1514 and l1 > b1
    assert b2 == int(2e9 / 8 * 0.001) and l2 > l1


def test_time_without_a_route_is_summed_per_pair_from_the_paths_table():
    import pandas as pd
    from testbed.results.tables import unreachable_s
    paths = pd.DataFrame([(0.0, "a", "b", "1-2", 1), (5.0, "a", "b", "", -1), (7.5, "a", "b", "1-3-2", 2),
                          (9.0, "a", "b", "", -1), (0.0, "b", "a", "2-1", 1)],
                         columns=["t_s", "src", "dst", "path", "hops"])
    assert unreachable_s(paths, t_end_s=10.0) == {"a->b": 2.5 + 1.0}


def test_coverage_gaps_name_the_station_and_the_intervals_without_a_satellite():
    import topologies
    from topologies.summary import coverage_gaps, format_summary, summarize
    cfg = topologies.ScheduleConfig(preset="test4x4", ground_stations=[("pole", 89.0, 0.0), ("eq", 0.0, 0.0)],
                                    gsl_min_elevation_deg=60.0, duration_s=600.0, step_s=10.0)
    schedule = topologies.generate(cfg)
    gaps = coverage_gaps(schedule)
    assert gaps, "a 4x4 shell at 5000 km cannot keep a station at 60 deg mask covered"
    for name, intervals in gaps.items():
        for a, b in intervals:
            assert 0.0 <= a < b <= 610.0
    assert "WARNING: ground station" in format_summary(summarize(schedule))
