"""Routes -> rules, rule diffs, their OpenFlow messages, and the fake OpenFlow 1.3 tables."""

import itertools

import pytest

from controllers import (
    GroupAction,
    HostAttachment,
    OutputAction,
    RoutingContext,
    Rule,
    RuleError,
    SelectGroup,
    SwitchTable,
    build_flow_table,
    diff_rules,
    make_router,
)
from controllers import Op, ofmsg
from controllers.rules import bucket_weights
from fakeoftable import STUB_DATAPATH as DP
from fakeoftable import FakeOFError, FakeOFNetwork
from synthetic import host_address, plus_grid, ring, wiring

CTX = RoutingContext(t_s=0.0)
# a triangle 1-2-3 plus switch 4 behind 3; hosts on 1 and 4
PORTS = {(1, 2): 10, (1, 3): 11, (2, 1): 20, (2, 3): 21, (3, 1): 30, (3, 2): 31, (3, 4): 32, (4, 3): 40}
HOSTS = {
    "10.0.0.1": HostAttachment(1, 1, "02:00:00:00:00:01"),
    "10.0.0.4": HostAttachment(4, 2, "02:00:00:00:00:04"),
}


def test_single_path_multipath_and_local_delivery():
    routes = {
        1: {4: ((2, 0.5), (3, 0.5))},
        2: {4: ((3, 1.0),), 1: ((1, 1.0),)},
        3: {4: ((4, 1.0),), 1: ((1, 1.0),)},
        4: {1: ((3, 1.0),)},
    }
    table = build_flow_table(routes, PORTS, HOSTS)
    assert table[1] == SwitchTable(
        {
            "10.0.0.1": Rule("10.0.0.1", OutputAction(1)),  # local delivery to the host port
            "10.0.0.4": Rule("10.0.0.4", GroupAction(4)),  # group id = destination switch
        },
        {4: SelectGroup(4, ((10, 1), (11, 1)))},
    )
    assert table[2].rules["10.0.0.4"].action == OutputAction(21)
    assert table[2].rules["10.0.0.1"].action == OutputAction(20)
    assert table[4].rules == {
        "10.0.0.1": Rule("10.0.0.1", OutputAction(40)),
        "10.0.0.4": Rule("10.0.0.4", OutputAction(2)),
    }
    assert not table[2].groups


def test_unreachable_destination_gets_no_rule_and_empty_switches_are_omitted():
    routes = {1: {}, 2: {}, 3: {}, 4: {}}
    table = build_flow_table(routes, PORTS, HOSTS)
    assert set(table) == {1, 4}  # only local delivery rules
    assert list(table[1].rules) == ["10.0.0.1"]


def test_bucket_weights_are_small_integers():
    assert bucket_weights((0.5, 0.5)) == (1, 1)
    assert bucket_weights((1 / 3,) * 3) == (1, 1, 1)
    assert bucket_weights((0.5, 0.25, 0.25)) == (2, 1, 1)
    assert bucket_weights((0.9999, 0.0001)) == (1, 0)


@pytest.mark.parametrize(
    "routes, hosts, fragment",
    [
        ({2: {4: ((9, 1.0),)}}, HOSTS, "no port known on switch 2 toward neighbour 9"),
        ({2: {4: ((3, 0.7),)}}, HOSTS, "weights sum to 0.7"),
        ({2: {4: ((3, -1.0), (1, 2.0))}}, HOSTS, "must be > 0"),
        ({}, {"10.0.0.300": HOSTS["10.0.0.1"]}, "not an IPv4 host address"),
        ({}, {"10.0.0.1": (1, 1, "x")}, "must be a HostAttachment"),
    ],
)
def test_bad_input_raises_rule_error(routes, hosts, fragment):
    with pytest.raises(RuleError) as info:
        build_flow_table(routes, PORTS, hosts)
    assert fragment in str(info.value)


def test_host_attachment_validation():
    assert HostAttachment(1, 3, "02:AA:00:00:00:01").mac == "02:aa:00:00:00:01"
    with pytest.raises(RuleError, match="bad MAC"):
        HostAttachment(1, 3, "02:aa:00:00:00")
    with pytest.raises(RuleError, match="OpenFlow port"):
        HostAttachment(1, 0, "02:aa:00:00:00:01")


# -- diffs ------------------------------------------------------------------------


def tables_for(graph, ports, hosts):
    """Flow tables of every algorithm (and some variants) on ``graph``."""
    dests = frozenset(h.switch for h in hosts.values())
    variants = [("min_hop", {}), ("min_delay", {}), ("ecmp_k", {}), ("ecmp_k", {"k": 2, "max_stretch": 0.0})]
    return [build_flow_table(make_router(n, p)(graph, dests, CTX), ports, hosts) for n, p in variants]


def assert_minimal(old, new, diff):
    """Every change in ``diff`` is needed; unchanged entries are absent."""
    for switch, change in diff.switches.items():
        before = old.get(switch, SwitchTable())
        after = new.get(switch, SwitchTable())
        for rule in change.flow_adds:
            assert before.rules.get(rule.ipv4_dst) != rule
        for rule in change.flow_modifies:
            assert before.rules[rule.ipv4_dst] != rule == after.rules[rule.ipv4_dst]
        for rule in change.flow_deletes:
            assert rule.ipv4_dst not in after.rules or after.rules[rule.ipv4_dst].priority != rule.priority
        for group in change.group_adds:
            assert group.group_id not in before.groups
        for group in change.group_modifies:
            assert before.groups[group.group_id] != group
        for group in change.group_deletes:
            assert group.group_id not in after.groups
    untouched = {s for s in set(old) | set(new) if old.get(s) == new.get(s)}
    assert not untouched & set(diff.switches)


@pytest.mark.parametrize("graph", [ring(8), plus_grid(4, 4), plus_grid(6, 6, seed=7)], ids=["ring", "grid", "grid6"])
def test_diff_sent_as_openflow_turns_old_into_new(graph):
    ports, hosts = wiring(graph)
    tables = tables_for(graph, ports, hosts) + [{}]
    for old, new in itertools.permutations(tables, 2):
        diff = diff_rules(old, new)
        assert_minimal(old, new, diff)
        # the diff as the controller's OpenFlow messages, on tables with OpenFlow 1.3 semantics
        network = FakeOFNetwork(ports, hosts)
        network.install(old)
        network.apply(diff)
        assert network.table() == new
    for table in tables:
        assert not diff_rules(table, table)


def test_diff_counts_and_switches_that_did_not_change():
    graph = ring(6)
    ports, hosts = wiring(graph)
    old = build_flow_table(make_router("min_delay")(graph, frozenset(graph), CTX), ports, hosts)
    graph.remove_edge(0, 1)
    new = build_flow_table(make_router("min_delay")(graph, frozenset(graph), CTX), ports, hosts)
    diff = diff_rules(old, new)
    assert diff.flow_mods == sum(len(c.flow_modifies) for c in diff.switches.values()) > 0
    assert diff.group_mods == 0
    changed = {s for s in old if old[s] != new[s]}
    assert set(diff.switches) == changed and changed != set(old)  # unchanged switches get nothing


def test_priority_change_is_delete_plus_add():
    old = {1: SwitchTable({"10.0.0.4": Rule("10.0.0.4", OutputAction(10), 100)})}
    new = {1: SwitchTable({"10.0.0.4": Rule("10.0.0.4", OutputAction(10), 200)})}
    change = diff_rules(old, new).switches[1]
    assert change.flow_deletes == (old[1].rules["10.0.0.4"],)
    assert change.flow_adds == (new[1].rules["10.0.0.4"],)
    network = FakeOFNetwork(PORTS, HOSTS)
    network.install(old)
    network.install(new)
    assert network.table() == new


def test_operations_order_is_safe_for_group_lifecycle():
    group = SelectGroup(4, ((10, 1), (11, 1)))
    with_group = {1: SwitchTable({"10.0.0.4": Rule("10.0.0.4", GroupAction(4))}, {4: group})}
    single = {1: SwitchTable({"10.0.0.4": Rule("10.0.0.4", OutputAction(10))})}
    ops = [op for _, op, _ in diff_rules(single, with_group).operations()]
    assert ops == [Op.GROUP_ADD, Op.FLOW_MODIFY]
    ops = [op for _, op, _ in diff_rules(with_group, single).operations()]
    assert ops == [Op.FLOW_MODIFY, Op.GROUP_DELETE]


# -- fake OpenFlow semantics ---------------------------------------------------------


def test_fake_switch_refuses_what_a_real_one_refuses():
    network = FakeOFNetwork(PORTS, HOSTS)
    rule = Rule("10.0.0.4", GroupAction(4))
    group = SelectGroup(4, ((10, 1), (11, 1)))
    with pytest.raises(FakeOFError, match="OFPBAC_BAD_OUT_GROUP"):
        network.send(1, ofmsg.flow_mod(DP, Op.FLOW_ADD, rule))
    with pytest.raises(FakeOFError, match="OFPGMFC_UNKNOWN_GROUP"):
        network.send(1, ofmsg.group_mod(DP, Op.GROUP_MODIFY, group))
    network.send(1, ofmsg.group_mod(DP, Op.GROUP_ADD, group))
    with pytest.raises(FakeOFError, match="OFPGMFC_GROUP_EXISTS"):
        network.send(1, ofmsg.group_mod(DP, Op.GROUP_ADD, group))
    network.send(1, ofmsg.flow_mod(DP, Op.FLOW_MODIFY, rule))  # strict modify of a missing flow: nothing
    assert "10.0.0.4" not in network.table()[1].rules
    network.send(1, ofmsg.flow_mod(DP, Op.FLOW_ADD, rule))
    network.send(1, ofmsg.group_mod(DP, Op.GROUP_DELETE, group))  # takes the flow with it
    assert network.table() == {}


def test_wrong_order_would_lose_the_rule():
    """Deleting the group before re-pointing the flow loses the flow: the
    fake table catches diffs applied in an unsafe order."""
    group = SelectGroup(4, ((10, 1), (11, 1)))
    with_group = {1: SwitchTable({"10.0.0.4": Rule("10.0.0.4", GroupAction(4))}, {4: group})}
    network = FakeOFNetwork(PORTS, HOSTS)
    network.install(with_group)
    network.send(1, ofmsg.group_mod(DP, Op.GROUP_DELETE, group))
    network.send(1, ofmsg.flow_mod(DP, Op.FLOW_MODIFY, Rule("10.0.0.4", OutputAction(10))))
    assert network.trace(1, "10.0.0.4").dropped == (((1,), "no rule"),)


def test_trace_reports_loops_drops_and_wrong_hosts():
    network = FakeOFNetwork(PORTS, HOSTS)
    loop = {
        1: SwitchTable({"10.0.0.4": Rule("10.0.0.4", OutputAction(10))}),  # 1 -> 2
        2: SwitchTable({"10.0.0.4": Rule("10.0.0.4", OutputAction(20))}),  # 2 -> 1
        3: SwitchTable({"10.0.0.4": Rule("10.0.0.4", OutputAction(30))}),  # 3 -> 1
        4: SwitchTable({"10.0.0.1": Rule("10.0.0.1", OutputAction(2))}),  # to the wrong host
    }
    network.install(loop)
    trace = network.trace(3, "10.0.0.4")
    # 2 sends it back to 1 (its hairpin companion: in from 1, rule toward 1), 1 to 2 again
    # (same), and 2 sees it a second time on the same port: a loop.
    assert trace.looped == ((3, 1, 2, 1, 2),) and not trace.ok
    assert network.trace(4, "10.0.0.4").dropped == (((4,), "no rule"),)
    assert network.trace(4, "10.0.0.1").dropped == (((4,), "wrong host"),)


def test_trace_follows_every_bucket_and_honours_link_state():
    graph = plus_grid(4, 4)
    ports, hosts = wiring(graph)
    routes = make_router("ecmp_k")(graph, frozenset(graph), CTX)
    network = FakeOFNetwork(ports, hosts)
    network.install(build_flow_table(routes, ports, hosts))
    trace = network.trace(0, host_address(10))  # (0,0) -> (2,2): opposite corner of the torus
    assert trace.ok and len(trace.delivered) == 24  # 4!/(2!2!) orders x 2 x 2 wrap directions
    broken = graph.copy()
    broken.remove_edge(0, 1)
    trace = network.trace(0, host_address(10), links=broken)
    assert not trace.ok and ((0,), "link down") in trace.dropped and trace.delivered


# -- hairpin companions ---------------------------------------------------------------


def assert_hairpins_match_rules(network, hosts):
    """Exactly one companion per single-path rule toward a neighbour, none stale."""
    local = {(h.switch, ip) for ip, h in hosts.items()}
    want = {}
    for switch, table in network.table().items():
        for ip, rule in table.rules.items():
            if isinstance(rule.action, OutputAction) and (switch, ip) not in local:
                want.setdefault(switch, {})[(ip, rule.action.port)] = rule.priority + 1
    assert network.hairpins() == want


@pytest.mark.parametrize("graph", [ring(8), plus_grid(4, 4, seed=3)], ids=["ring", "grid"])
def test_every_change_keeps_exactly_the_hairpins_its_rules_need(graph):
    ports, hosts = wiring(graph)
    tables = tables_for(graph, ports, hosts)
    broken = graph.copy()
    broken.remove_edge(*sorted(graph.edges)[0])
    tables += tables_for(broken, ports, hosts) + [{}]
    network = FakeOFNetwork(ports, hosts)
    companions = 0
    for table in tables + tables[::-1]:
        network.install(table)
        assert network.table() == table
        assert_hairpins_match_rules(network, hosts)
        companions += sum(map(len, network.hairpins().values()))
    assert companions > 0


def test_hairpin_returns_a_packet_that_arrives_from_the_new_next_hop():
    """Mid-update: switch 1 already routes to 2's host via 0, but 0 had sent it a packet
    under the old route. OpenFlow drops output to the ingress port; the companion sends
    it back, and 0 (already updated) takes it the long way."""
    graph = ring(4)  # 0-1-2-3-0
    ports, hosts = wiring(graph, [2])
    network = FakeOFNetwork(ports, hosts)
    old = build_flow_table({0: {2: ((1, 1.0),)}, 1: {2: ((2, 1.0),)}, 3: {2: ((2, 1.0),)}}, ports, hosts)
    new = build_flow_table({0: {2: ((3, 1.0),)}, 1: {2: ((0, 1.0),)}, 3: {2: ((2, 1.0),)}}, ports, hosts)
    network.install(old)
    assert network.trace(0, host_address(2)).delivered == ((0, 1, 2),)
    network.install(new)
    assert network.trace(1, host_address(2), from_switch=0).delivered == ((1, 0, 3, 2),)
    # without its companion the same packet is dropped at 1
    for (ip, in_port), priority in network.hairpins()[1].items():
        rule = Rule(ip, OutputAction(in_port), priority - 1)
        network.send(1, ofmsg.hairpin_delete(DP, rule, in_port))
    assert network.trace(1, host_address(2), from_switch=0).dropped == (((1,), "output to in_port"),)
