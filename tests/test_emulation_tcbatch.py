"""The long-lived ``tc -batch`` process (BatchTool) the netem backend changes delays through: each
``run`` is acknowledged once applied, and a bad line is an error naming it. Uses tbf on a
veth pair, so it runs on kernels without sch_netem too."""

import json
import subprocess

import pytest

from testbed.errors import EnvironmentProblem
from testbed.links.backends import BatchTool

pytestmark = [pytest.mark.emulation, pytest.mark.uml]


def tbf_rate_bytes_per_s(ifname: str) -> int:
    out = subprocess.run(["tc", "-j", "qdisc", "show", "dev", ifname], check=True, capture_output=True,
                         text=True).stdout
    (root,) = [q for q in json.loads(out) if q.get("root")]
    return int(root["options"]["rate"])


def test_tc_batch_applies_each_run_before_returning_and_names_a_bad_line():
    subprocess.run(["ip", "link", "add", "lmtcb0", "type", "veth", "peer", "name", "lmtcb1"], check=True)
    tc = None
    try:
        subprocess.run(["tc", "qdisc", "add", "dev", "lmtcb0", "root", "tbf", "rate", "1mbit", "burst", "3028",
                        "limit", "30000"], check=True)
        tc = BatchTool("tc")
        for rate_mbit in (2, 3, 5):
            tc.run([f"qdisc change dev lmtcb0 root tbf rate {rate_mbit}mbit burst 3028 limit 30000"])
            assert tbf_rate_bytes_per_s("lmtcb0") == rate_mbit * 125_000     # tc -j gives bytes/s
        with pytest.raises(EnvironmentProblem, match="lmtcb9"):
            tc.run(["qdisc change dev lmtcb9 root tbf rate 2mbit burst 3028 limit 30000"])
        # The process survives a bad line (-force) and goes on acknowledging.
        tc.run(["qdisc change dev lmtcb0 root tbf rate 7mbit burst 3028 limit 30000"])
        assert tbf_rate_bytes_per_s("lmtcb0") == 7 * 125_000
        tc.check_alive()
    finally:
        if tc is not None:
            tc.close()
        subprocess.run(["ip", "link", "del", "lmtcb0"], capture_output=True)
    assert tc.proc.poll() is not None


def operstate(ifname: str) -> str:
    return open(f"/sys/class/net/{ifname}/operstate").read().strip()


def test_ip_batch_applies_link_state_before_returning():
    subprocess.run(["ip", "link", "add", "lmtcb2", "type", "veth", "peer", "name", "lmtcb3"], check=True)
    ip = BatchTool("ip")
    try:
        ip.run(["link set dev lmtcb2 up", "link set dev lmtcb3 up"])
        assert operstate("lmtcb2") in ("up", "unknown")
        ip.run(["link set dev lmtcb2 down"])
        assert operstate("lmtcb2") == "down"
        with pytest.raises(EnvironmentProblem, match="lmtcb8"):
            ip.run(["link set dev lmtcb8 down"])
        ip.run(["link set dev lmtcb2 up"])
        assert operstate("lmtcb2") in ("up", "unknown")
    finally:
        ip.close()
        subprocess.run(["ip", "link", "del", "lmtcb2"], capture_output=True)
