"""The controller's pure session: counters -> rates with time as a parameter, what each
switch has, and the messages the app would send (no os-ken event loop, no switches)."""

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controllers import GroupAction, Op, OutputAction, Rule, make_router, ofmsg
from controllers.counters import UTILISATION_EPSILON, CounterRates
from controllers.ofmsg import PortCount, RuleCount
from controllers.session import ControllerSession
from fakeoftable import STUB_DATAPATH as DP
from fakeoftable import FakeOFNetwork

CAPACITY_BPS = 1e9
POLL_S = 0.5
# A ring 0-1-2-3-0 (dpid = node + 1), hosts on 0 and 2 (port 1), equal 5 ms links:
# two equal paths between the hosts, 0-1-2 and 0-3-2.
PORTS = [(0, 1, 2), (0, 3, 3), (1, 0, 2), (1, 2, 3), (2, 1, 2), (2, 3, 3), (3, 2, 2), (3, 0, 3)]
HOSTS = [{"ip": "10.0.0.1", "switch": 0, "port": 1, "mac": "02:00:00:00:00:01"},
         {"ip": "10.0.0.3", "switch": 2, "port": 1, "mac": "02:00:00:00:00:03"}]
LINKS = [{"a": a, "b": b, "delay_s": 0.005, "capacity_bps": CAPACITY_BPS, "up": True}
         for a, b in ((0, 1), (1, 2), (2, 3), (0, 3))]


def session(algorithm="min_delay", params=None):
    s = ControllerSession(make_router(algorithm, params or {}), poll_interval_s=POLL_S)
    s.on_topology({"type": "topology", "switches": [[n, n + 1] for n in range(4)],
                   "ports": [list(p) for p in PORTS], "hosts": HOSTS})
    s.on_state({"type": "state", "step": 0, "t_s": 0.0, "links": [dict(r) for r in LINKS]})
    return s


def port_bytes(rate_bps, t_s):
    """Counter value after sending at ``rate_bps`` for ``t_s`` seconds."""
    return int(rate_bps * t_s / 8)


# -- counters -------------------------------------------------------------------------


def test_counter_rate_needs_two_readings_close_enough_in_time():
    rates = CounterRates(max_gap_s=1.5)
    assert rates.rate_bps("p", 10.0, 1000) is None           # first reading: a baseline
    assert rates.rate_bps("p", 10.5, 1000 + 62_500) == pytest.approx(1e6)   # 8 * 62,500 B / 0.5 s
    assert rates.rate_bps("p", 12.5, 2_000_000) is None      # 2 s since the last: a new baseline
    assert rates.rate_bps("p", 13.0, 2_000_000 + 125) == pytest.approx(2000.0)
    assert rates.rate_bps("p", 13.5, 10) == 0.0               # counter reset: never negative
    assert rates.rate_bps("p", 13.5, 20) is None              # no time passed: no rate
    assert rates.rate_bps("q", 13.5, 20) is None              # counters are independent


def test_port_counters_give_directed_utilisation_of_the_link_behind_the_port():
    s = session()
    t0 = 100.0
    assert not s.on_port_counts(0, [PortCount(2, 0), PortCount(1, 0)], t0).changed
    # port 2 of switch 0 leads to switch 1: 400 Mbit/s of 1 Gbit/s; port 1 is the host's
    update = s.on_port_counts(0, [PortCount(2, port_bytes(4e8, POLL_S)), PortCount(1, 10**9)], t0 + POLL_S)
    assert update.changed and not update.rerouted            # min_delay does not route on load
    assert s.utilisation == {(0, 1): pytest.approx(0.4)}
    assert s.utilisation_record(0) == {"event": "utilisation", "node": 0, "links": {"0-1": 0.4},
                                       "by_destination": {}}
    # a change below UTILISATION_EPSILON is not news; the reading still becomes the baseline
    small = port_bytes(4e8, POLL_S) + port_bytes((0.4 + UTILISATION_EPSILON / 2) * CAPACITY_BPS, POLL_S)
    assert not s.on_port_counts(0, [PortCount(2, small)], t0 + 2 * POLL_S).changed
    # a reply more than 3 poll intervals after the last only sets a new baseline
    assert not s.on_port_counts(0, [PortCount(2, 10**12)], t0 + 10.0).changed
    assert s.utilisation == {(0, 1): pytest.approx(0.4)}
    # unknown switch, or before the topology: ignored
    assert not s.on_port_counts(None, [PortCount(2, 0)], t0).changed


def test_load_moves_load_aware_routes_once_then_waits_for_the_counters_to_settle():
    s = session("load_aware", {"alpha_s": 0.01, "hysteresis": 0.1})
    first_hop = s.routes[0][2][0][0]
    other = 3 if first_hop == 1 else 1
    port = {(a, b): p for a, b, p in PORTS}
    t0 = 50.0
    s.on_port_counts(0, [PortCount(port[(0, first_hop)], 0), PortCount(port[(0, other)], 0)], t0)
    busy = port_bytes(0.9 * CAPACITY_BPS, POLL_S)
    update = s.on_port_counts(0, [PortCount(port[(0, first_hop)], busy), PortCount(port[(0, other)], 0)],
                              t0 + POLL_S)
    assert update.rerouted and s.routes[0][2] == ((other, 1.0),)
    assert s.load_rerouted_at_s == t0 + POLL_S
    # the new path fills up one interval later: counters still mix old and new routes,
    # so the session updates utilisation but does not re-route yet
    update = s.on_port_counts(0, [PortCount(port[(0, first_hop)], busy), PortCount(port[(0, other)], busy)],
                              t0 + 2 * POLL_S)
    assert update.changed and not update.rerouted and s.routes[0][2] == ((other, 1.0),)
    # more than 2 intervals after the re-route it acts again: the old path is idle now
    update = s.on_port_counts(0, [PortCount(port[(0, first_hop)], busy), PortCount(port[(0, other)], 2 * busy)],
                              t0 + 3.5 * POLL_S)
    assert update.rerouted and s.routes[0][2] == ((first_hop, 1.0),)


def test_rule_counters_split_each_links_load_by_destination():
    s = session()
    hop = s.routes[0][2][0][0]
    port = {(a, b): p for a, b, p in PORTS}[(0, hop)]
    t0 = 7.0
    route = RuleCount("10.0.0.3", None, 1000, port, 0)
    hairpin = RuleCount("10.0.0.3", port, 1001, port, 0)      # output IN_PORT: leaves by in_port
    local = RuleCount("10.0.0.1", None, 1000, 1, 0)           # to the host: no link
    stranger = RuleCount("192.0.2.9", None, 1000, port, 0)    # not one of ours
    s.on_rule_counts(0, [route, hairpin, local, stranger], complete=True, now_s=t0)
    assert s.own_utilisation == {(0, 1): {}, (0, 3): {}}      # measured, nothing sent yet
    s.on_rule_counts(0, [route._replace(byte_count=port_bytes(3e8, POLL_S)),
                         hairpin._replace(byte_count=port_bytes(1e8, POLL_S)), local, stranger],
                     complete=True, now_s=t0 + POLL_S)
    assert s.own_utilisation[(0, hop)] == {2: pytest.approx(0.4)}
    # a partial reply (more parts follow) keeps the entries it does not mention
    s.on_rule_counts(0, [], complete=False, now_s=t0 + 2 * POLL_S)
    assert s.own_utilisation[(0, hop)] == {2: pytest.approx(0.4)}
    # the whole table without those rules: they are gone
    s.on_rule_counts(0, [], complete=True, now_s=t0 + 2 * POLL_S)
    assert s.own_utilisation[(0, hop)] == {}
    # a rule read again long after its last reading: a new baseline, no stale load
    s.on_rule_counts(0, [route._replace(byte_count=10**6)], complete=True, now_s=t0 + 3 * POLL_S)
    s.on_rule_counts(0, [route._replace(byte_count=10**6 + port_bytes(2e8, POLL_S))], complete=True,
                     now_s=t0 + 4 * POLL_S)
    assert s.own_utilisation[(0, hop)] == {2: pytest.approx(0.2)}
    s.on_rule_counts(0, [route._replace(byte_count=10**9)], complete=False, now_s=t0 + 20.0)
    assert s.own_utilisation[(0, hop)] == {}


# -- what the switches have -------------------------------------------------------------


def test_changes_are_the_difference_to_what_each_switch_has():
    s = session()
    nodes = list(range(4))
    first = s.changes(nodes)
    assert set(first.switches) == {0, 1, 2, 3} and not s.all_installed()
    network = FakeOFNetwork({(a, b): p for a, b, p in PORTS}, s.hosts)
    for node, change in first.switches.items():
        before = s.installed.get(node)
        for msg in ofmsg.switch_messages(DP, change, before.rules if before else {}, s.local_addresses.get(node, ())):
            network.send(node, msg)
        s.mark_installed(node)
    assert s.all_installed() and not s.changes(nodes)
    assert network.table() == s.table
    assert network.trace(0, "10.0.0.3").ok and network.trace(2, "10.0.0.1").ok
    assert s.rules_per_switch() == {str(n): len(s.table[n].rules) for n in nodes}
    # a switch that reconnects was cleared: it gets its whole table again
    assert s.on_switch_connected(1)
    assert set(s.changes(nodes).switches) == {1}
    assert s.changes(nodes).flow_mods == len(s.table[1].rules)
    s.on_switch_gone(1)
    assert not s.all_installed() and 1 not in s.installed


def test_a_port_going_down_takes_its_link_out_and_reroutes_once():
    s = session("min_hop")
    hop = s.routes[0][2][0][0]
    port = {(a, b): p for a, b, p in PORTS}[(0, hop)]
    assert s.on_port_status(0, port, down=False) is None          # up: nothing to do
    assert s.on_port_status(0, 1, down=True) is None              # the host's port: no link
    stats = s.on_port_status(0, port, down=True)
    assert stats is not None and stats.compute_s >= 0
    assert s.routes[0][2] == (((1 if hop == 3 else 3), 1.0),)
    assert s.on_port_status(hop, {(a, b): p for a, b, p in PORTS}[(hop, 0)], down=True) is None   # already down
    desc = parser.OFPPort(port_no=port, hw_addr="02:00:00:00:00:09", name=b"p", config=0,
                          state=ofp.OFPPS_LINK_DOWN, curr=0, advertised=0, supported=0, peer=0,
                          curr_speed=0, max_speed=0)
    assert ofmsg.port_down(DP, desc) and not ofmsg.port_down(DP, desc._replace(state=0))
    assert ofmsg.port_down(DP, desc._replace(state=0, config=ofp.OFPPC_PORT_DOWN))


def test_path_records_name_only_what_changed():
    s = session("min_hop")
    first = s.paths_record("step")
    assert first["cause"] == "step" and set(first["paths"]) == {"0-2", "2-0"} and not first["unreachable"]
    assert first["paths"]["0-2"] in ("0-1-2", "0-3-2")
    assert s.paths_record("step") is None
    hop = s.routes[0][2][0][0]
    s.on_port_status(0, {(a, b): p for a, b, p in PORTS}[(0, hop)], down=True)
    again = s.paths_record("port_down")
    assert again["paths"]["0-2"] == f"0-{4 - hop}-2" and not again["unreachable"]
    for edge in list(s.links):
        s.links[edge]["up"] = False
    s.recompute()
    assert sorted(s.paths_record("port_down")["unreachable"]) == ["0-2", "2-0"]


def test_poll_targets_are_carrying_switches_plus_those_still_busy():
    s = session("min_hop")
    assert s.poll_targets() == sorted(s.carrying)
    s.utilisation = {(3, 0): 0.5, (1, 0): UTILISATION_EPSILON / 2}
    assert s.poll_targets() == sorted(s.carrying | {3})


# -- messages ---------------------------------------------------------------------------


def test_stats_replies_unpack_to_plain_counts():
    rule = Rule("10.0.0.3", OutputAction(2))
    entries = [ofmsg.flow_mod(DP, Op.FLOW_ADD, rule), ofmsg.hairpin_add(DP, rule, 2),
               ofmsg.flow_mod(DP, Op.FLOW_ADD, Rule("10.0.0.9", GroupAction(9)))]
    body = [parser.OFPFlowStats(table_id=0, duration_sec=1, duration_nsec=0, priority=fm.priority,
                                idle_timeout=0, hard_timeout=0, flags=0, cookie=0, packet_count=1,
                                byte_count=100 + i, match=fm.match, instructions=fm.instructions)
            for i, fm in enumerate(entries)]
    assert list(ofmsg.rule_counts(DP, body)) == [RuleCount("10.0.0.3", None, 1000, 2, 100),
                                                 RuleCount("10.0.0.3", 2, 1001, 2, 101)]   # group: skipped
    ports = [parser.OFPPortStats(port_no=p, rx_packets=0, tx_packets=0, rx_bytes=0, tx_bytes=10 * p,
                                 rx_dropped=0, tx_dropped=0, rx_errors=0, tx_errors=0, rx_frame_err=0,
                                 rx_over_err=0, rx_crc_err=0, collisions=0, duration_sec=0, duration_nsec=0)
             for p in (1, 2)]
    assert ofmsg.port_counts(ports) == [PortCount(1, 10), PortCount(2, 20)]
    reply = parser.OFPFlowStatsReply(DP, flags=ofp.OFPMPF_REPLY_MORE)
    assert ofmsg.more_follows(DP, reply) and not ofmsg.more_follows(DP, parser.OFPFlowStatsReply(DP, flags=0))


def test_message_builders_refuse_the_wrong_kind_of_operation():
    with pytest.raises(ValueError, match="not a flow operation"):
        ofmsg.flow_mod(DP, Op.GROUP_ADD, Rule("10.0.0.3", OutputAction(2)))
    with pytest.raises(ValueError, match="not a group operation"):
        ofmsg.group_mod(DP, Op.FLOW_ADD, None)
