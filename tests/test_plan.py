"""The network plan: deterministic names, ports and addresses (pure)."""

import pytest

from testbed import plan
from testbed.links import tbf_params


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
