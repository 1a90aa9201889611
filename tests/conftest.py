"""Shared fixtures. Emulation tests need root + Open vSwitch; in CI (CI=true) a missing
prerequisite is a failure, never a silent skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Several test sessions on one machine take turns with the network instead of failing.
os.environ.setdefault("LMTB_LOCK_WAIT_S", "900")
# Real inputs shipped with the repository (TLE sets, Chakra traces): see data/README.md.
DATA = REPO / "data"


#: The test lane this session is (``make test`` runs ``host`` and, inside a User-Mode Linux
#: guest, ``uml-netem``); the lane promises a link backend and an OVS datapath.
LANE = os.environ.get("LMTB_LANE", "host")
LANE_NEEDS = {"uml-netem": ("netem", "system")}


def pytest_report_header(config):
    return f"lane: {LANE}" + (" (link backend netem, OVS kernel datapath)" if LANE in LANE_NEEDS else "")


@pytest.fixture(autouse=True)
def lane() -> str:
    """The lane this test runs in; for emulation tests it is also a parameter, so the lane is
    in the test's id (``test_x[uml-netem]``) and a report names where a test failed."""
    return LANE


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("emulation") is not None:
        metafunc.parametrize("lane", [LANE], ids=[LANE])


def _check_lane(caps) -> None:
    """A lane that does not get what it promises is a usage error, never a silent fallback."""
    if LANE not in LANE_NEEDS:
        return
    from testbed.system import machine as probe
    backend, datapath = LANE_NEEDS[LANE]
    got = (probe.choose_backend(caps) if caps.netem or caps.delayline_binary else None, probe.choose_datapath(caps))
    if got != (backend, datapath):
        raise pytest.UsageError(f"lane {LANE}: expected backend {backend} and datapath {datapath}, "
                                f"this machine gives {got[0]} and {got[1]} ({caps.netem_detail})")


def pytest_collection_modifyitems(config, items):
    if not any("emulation" in item.keywords for item in items):
        return
    from testbed.system import machine as probe
    caps = probe.probe()
    _check_lane(caps)
    if not caps.netem:
        # Not a missing prerequisite of the machine: these belong to the UML lane.
        skip_netem = pytest.mark.skip(reason=f"needs sch_netem ({caps.netem_detail}): "
                                             "runs in the UML lane (scripts/uml.sh, make test)")
        for item in items:
            if "netem" in item.keywords:
                item.add_marker(skip_netem)
    problems = probe.can_run(caps)
    problem = problems[0] if problems else None
    if problem is None:
        # Start from a clean machine: remove what an earlier crashed run left (only the
        # testbed's own marked objects; skipped while a live run holds the lock).
        from testbed.system.clean import clean
        from testbed.errors import EnvironmentProblem
        try:
            clean()
        except EnvironmentProblem:
            pass
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"emulation tests cannot run in CI: {problem}")
    skip = pytest.mark.skip(reason=f"emulation prerequisites missing: {problem}")
    for item in items:
        if "emulation" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def testbed_cli():
    """Runs ``python -m testbed ARGS`` and returns the CompletedProcess."""
    def run(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "testbed", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO, **kw)
    return run


def leftovers() -> dict[str, list[str]]:
    """Everything the testbed could have left behind (its own marks only)."""
    from testbed.system.clean import inventory
    found = inventory()
    return {"bridges": found.bridges, "netns": found.netns, "interfaces": found.interfaces,
            "processes": found.processes}


def write_capture(path: Path, n: int = 100, gap_s: float = 0.01) -> Path:
    """A pcap of ``n`` 242-byte UDP packets alternating between two outside addresses
    (192.0.2.1 and 198.51.100.7), ``gap_s`` apart."""
    from scapy.all import IP, UDP, Ether, Raw, wrpcap
    pkts = []
    for i in range(n):
        a, b = ("192.0.2.1", "198.51.100.7") if i % 2 == 0 else ("198.51.100.7", "192.0.2.1")
        p = Ether() / IP(src=a, dst=b) / UDP(sport=4000, dport=5000) / Raw(bytes(200))
        p.time = 1_700_000_000 + i * gap_s
        pkts.append(p)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrpcap(str(path), pkts)
    return path
