"""Consistent updates, pure part: drain times, tags, and the order of the two phases
(what controllers/consistent.py asks the app to send; the real stack is in
tests/test_emulation_consistent.py)."""

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp

from controllers import make_router
from controllers.consistent import (DRAIN_MARGIN_S, N_TAGS, ROUTE_TABLE, ConsistentUpdates, drain_s, tag_of)
from controllers.session import ControllerSession
from fakeoftable import STUB_DATAPATH as DP

# A ring 0-1-2-3-0, hosts on 0 and 2 (port 1); 0-1-2 is shorter (5 + 5 ms) than 0-3-2 (10 + 10 ms).
PORTS = [(0, 1, 2), (0, 3, 3), (1, 0, 2), (1, 2, 3), (2, 1, 2), (2, 3, 3), (3, 2, 2), (3, 0, 3)]
HOSTS = [{"ip": "10.0.0.1", "switch": 0, "port": 1, "mac": "02:00:00:00:00:01"},
         {"ip": "10.0.0.3", "switch": 2, "port": 1, "mac": "02:00:00:00:00:03"}]
DELAYS = {(0, 1): 0.005, (1, 2): 0.005, (2, 3): 0.010, (0, 3): 0.010}


def links(down=()):
    return [{"a": a, "b": b, "delay_s": d, "capacity_bps": 1e9, "up": (a, b) not in down}
            for (a, b), d in DELAYS.items()]


def test_drain_time_is_the_longest_path_delay_over_every_bucket():
    # toward 3: 0 splits over 1 and 2; 1 -> 3 directly (1 ms); 2 -> 1 -> 3 (4 + 1 ms)
    routes = {0: {3: ((1, 0.5), (2, 0.5))}, 1: {3: ((3, 1.0),)}, 2: {3: ((1, 1.0),)}, 3: {}}
    delays = {(0, 1): 0.002, (0, 2): 0.003, (1, 3): 0.001, (1, 2): 0.004}
    assert drain_s(routes, delays) == pytest.approx(0.003 + 0.004 + 0.001)
    with pytest.raises(ValueError, match="loop"):
        drain_s({0: {3: ((1, 1.0),)}, 1: {3: ((0, 1.0),)}}, delays)


def test_tags_are_dscp_values_1_to_63_in_turn():
    assert [tag_of(g) for g in (0, 1, 62, 63)] == [1, 2, 63, 1]
    assert {tag_of(g) for g in range(3 * N_TAGS)} == set(range(1, N_TAGS + 1))


def _kind(msg):
    if type(msg).__name__ == "OFPGroupMod":
        return "group"
    if msg.command == ofp.OFPFC_DELETE:
        return f"retire:{msg.cookie}"
    if msg.table_id == 0 and msg.priority > 0:
        dscp = [a.value for inst in msg.instructions for a in getattr(inst, "actions", [])
                if type(a).__name__ == "OFPActionSetField"]
        return f"stamp:{dscp[0]}"
    if msg.table_id == ROUTE_TABLE and "ip_dscp" in msg.match:
        return f"route:{msg.match['ip_dscp']}"
    return "base"


def test_a_new_generation_is_installed_everywhere_before_any_ingress_flips_and_the_old_goes_after_draining():
    s = ControllerSession(make_router("min_delay", {}))
    s.on_topology({"type": "topology", "switches": [[n, n + 1] for n in range(4)],
                   "ports": [list(p) for p in PORTS], "hosts": HOSTS})
    events, timers = [], []
    dps = {n: DP for n in range(4)}
    up = ConsistentUpdates()

    def send(dp, msgs):
        events.extend(_kind(m) for m in msgs)
        for m in msgs:      # no hairpin companion in this mode: nothing outputs to IN_PORT
            for inst in getattr(m, "instructions", []):
                assert all(getattr(a, "port", None) != ofp.OFPP_IN_PORT for a in getattr(inst, "actions", []))

    def push():
        return up.push(s, dps, sorted(dps), send, lambda nodes: events.append(("barrier", tuple(nodes))) is not None,
                       lambda delay_s, fn: timers.append((delay_s, fn)))

    s.on_state({"type": "state", "step": 0, "t_s": 0.0, "links": links()})
    push()
    assert events[0] == "base"
    first_stamp = events.index("stamp:1")
    assert "route:1" in events[:first_stamp] and "route:1" not in events[first_stamp:]
    assert events[first_stamp - 1][0] == "barrier"
    assert timers == []                                      # nothing to retire yet
    events.clear()
    s.on_state({"type": "state", "step": 1, "t_s": 1.0, "links": links()})
    assert push()["flow_mods"] == 0 and events == []        # same routes: no generation, nothing sent
    s.on_state({"type": "state", "step": 2, "t_s": 2.0, "links": links(down={(1, 2)})})
    push()
    stamps = [i for i, e in enumerate(events) if e == "stamp:2"]
    routes = [i for i, e in enumerate(events) if e == "route:2"]
    barriers = [i for i, e in enumerate(events) if isinstance(e, tuple)]
    # phase 1 on every switch with rules, one barrier round, phase 2 on both host switches
    assert routes and max(routes) < barriers[0] < min(stamps) and len(stamps) == 2 and barriers[-1] > max(stamps)
    assert not [e for e in events if str(e).startswith("retire")]
    assert len(timers) == 1
    # generation 0 routed over 0-1-2 (5 + 5 ms) both ways: its drain time is that plus the margin
    assert timers[0][0] == pytest.approx(0.010 + DRAIN_MARGIN_S)
    events.clear()
    timers[0][1]()
    assert events and set(events) <= {"retire:1", "group"} and "retire:1" in events
    assert s.all_installed()
