"""testbed clean recognises only what the testbed marked as its own."""

from testbed.clean import parse_bridge_list, parse_link_aliases


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
