"""testbed clean recognises only what the testbed marked as its own; how a run is sharded."""

from testbed.system.clean import parse_bridge_list, parse_link_aliases
from testbed.links.backends import group_members, mark_lines
from testbed.net.ovs import MAX_SHARDS, shard_count
from testbed.system.tracking import LINK_GROUP


def test_only_marked_bridges():
    csv = ('lms0,"{lmtb-run=20261122-ab}"\n'
           'br-user,"{}"\n'
           'lms1,"{lmtb-run=x, other=1}"\n'
           'lmsX,"{owner=someone}"\n')
    assert parse_bridge_list(csv) == ["lms0", "lms1"]


def test_only_aliased_interfaces():
    text = ("1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue\\    link/loopback 00:00:00:00:00:00\n"
            "13: lmh0@if12: <BROADCAST> mtu 1500\\    link/ether 76:1a\\    alias lmtb\n"
            "14: lm0-1: <BROADCAST> mtu 1500\\    link/ether 76:1b\\    alias lmtb\n"
            "15: lm9-9: <BROADCAST> mtu 1500\\    link/ether 76:1c\\    alias lmtbx\n"
            "16: veth-user: <BROADCAST> mtu 1500\\    link/ether 76:1d\n")
    assert parse_link_aliases(text) == ["lmh0", "lm0-1"]


def test_group_members_split_ours_from_foreign_by_alias():
    text = ("13: lmh0@if12: <BROADCAST> mtu 1500 group 1280136258\\    link/ether 76:1a\\    alias lmtb\n"
            "16: veth-user: <BROADCAST> mtu 1500 group 1280136258\\    link/ether 76:1d\n"
            "17: lm0-1: <BROADCAST> mtu 1500 group 1280136258\\    link/ether 76:1e\\    alias lmtb\n")
    assert group_members(text) == (["lmh0", "lm0-1"], ["veth-user"])
    assert group_members("") == ([], [])


def test_marks_give_alias_and_group_in_one_command():
    assert mark_lines(["lm0-1"]) == [f"link set dev lm0-1 alias lmtb group {LINK_GROUP}"]


def test_shards_grow_with_switches_and_are_capped():
    assert [shard_count(n) for n in (1, 4, 16, 17, 38, 100)] == [1, 1, 1, 2, 3, 7]
    assert shard_count(528) == shard_count(1584) == MAX_SHARDS


def test_netem_delays_are_read_from_tc_output():
    from testbed.links.backends import parse_netem_delays
    text = ("qdisc netem 8001: dev lm0-1 root refcnt 2 limit 1000 delay 5ms rate 20Mbit\n"
            "qdisc netem 8002: dev lm1-0 root refcnt 2 limit 1000 delay 812us rate 20Mbit\n"
            "qdisc tbf 8003: dev lm2-3 root refcnt 2 rate 20Mbit burst 3028b lat 50ms\n"
            "qdisc netem 8004: dev lm4-5 root refcnt 2 limit 1000 delay 1.25s\n")
    assert parse_netem_delays(text) == {"lm0-1": 0.005, "lm1-0": 812e-6, "lm4-5": 1.25}
