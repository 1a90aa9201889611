"""The capability probe's parsing and decisions (pure; no root needed)."""

import pytest

from testbed.system import machine
from testbed.errors import EnvironmentProblem, InputError

TOOLS = {t: f"/usr/bin/{t}" for t in machine.TOOLS}


def caps(**kw):
    base = dict(is_root=True, ovs_running=True, ovs_version="3.1.0", ovs_kernel_module=False,
                netem=False, netem_detail="kernel has no sch_netem", tools=dict(TOOLS), os_ken="4.2.2",
                skyfield_data=True, delayline_binary="/x/lmtb-delayline")
    base.update(kw)
    return machine.Capabilities(**base)


def test_netem_probe_parsing():
    assert machine.parse_netem_probe(0, "") == (True, "sch_netem present")
    ok, detail = machine.parse_netem_probe(2, "Error: Specified qdisc kind is unknown.\n")
    assert not ok and "no sch_netem" in detail
    ok, detail = machine.parse_netem_probe(1, "RTNETLINK answers: Operation not permitted\n")
    assert not ok and "Operation not permitted" in detail


def test_ovs_version_parsing():
    assert machine.parse_ovs_version("ovs-vsctl (Open vSwitch) 3.1.0\nDB Schema 8.3.1\n") == "3.1.0"
    assert machine.parse_ovs_version("") is None


@pytest.mark.parametrize("netem,requested,expected", [
    (True, "auto", "netem"), (False, "auto", "delayline"), (True, "delayline", "delayline"),
    (False, "delayline", "delayline"), (True, "netem", "netem")])
def test_backend_choice(netem, requested, expected):
    assert machine.choose_backend(caps(netem=netem), requested) == expected


def test_backend_errors():
    with pytest.raises(InputError, match="no sch_netem"):
        machine.choose_backend(caps(netem=False), "netem")
    with pytest.raises(InputError, match="expected auto, netem or delayline"):
        machine.choose_backend(caps(), "tc")
    with pytest.raises(EnvironmentProblem, match="not built"):
        machine.choose_backend(caps(netem=False, delayline_binary=None), "auto")


def test_datapath_choice():
    assert machine.choose_datapath(caps(ovs_kernel_module=True)) == "system"
    assert machine.choose_datapath(caps(ovs_kernel_module=False)) == "netdev"


def test_can_run_names_each_problem_with_a_fix():
    assert machine.can_run(caps()) == []
    assert "not root" in machine.can_run(caps(is_root=False))[0]
    assert "make setup" in machine.can_run(caps(ovs_running=False))[0]
    tools = dict(TOOLS, iperf3=None)
    assert machine.can_run(caps(tools=tools)) == ["iperf3 not found: run 'make setup' as root"]
    assert "no way to emulate delay" in machine.can_run(caps(netem=False, delayline_binary=None))[0]


def test_doctor_lines_say_when_delay_is_emulated_and_how():
    lines = dict((text.split(":")[0], (ok, text)) for ok, text in machine.doctor_lines(caps()))
    ok, text = lines["link backend"]
    assert ok and "delayline" in text
    ok, text = dict((t.split(":")[0], (o, t)) for o, t in machine.doctor_lines(
        caps(delayline_binary=None)))["link backend"]
    assert not ok and "not built" in text


def test_probe_runs_here():
    c = machine.probe()
    assert isinstance(c.is_root, bool)
    assert set(c.tools) == set(machine.TOOLS)
