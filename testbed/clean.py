"""``testbed clean``: remove everything the testbed created, and nothing else.

What counts as ours (see :mod:`testbed.tracking`): processes recorded in the state
directory whose pid *and* kernel start time still match; OVS bridges carrying
``external_ids:lmtb-run``; network namespaces named ``lmtb-*``; interfaces whose alias
is ``lmtb``. Safe to run at any time (it refuses while a live run holds the lock, unless
forced), twice in a row, and after a crash or ``kill -9``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EnvironmentProblem
from .tracking import (IFALIAS, NETNS_PREFIX, OVS_EXTERNAL_ID, RunLock, recorded_processes,
                       terminate)


@dataclass
class CleanReport:
    processes: list[str] = field(default_factory=list)
    bridges: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)

    def total(self) -> int:
        return len(self.processes) + len(self.bridges) + len(self.netns) + len(self.interfaces)


def parse_bridge_list(csv_text: str) -> list[str]:
    """Bridges marked as ours in ``ovs-vsctl --format=csv --no-headings --columns=name,external_ids list Bridge``."""
    ours = []
    for line in csv_text.splitlines():
        if not line.strip():
            continue
        name, _, ext = line.partition(",")
        if f"{OVS_EXTERNAL_ID}=" in ext:
            ours.append(name.strip('"'))
    return ours


def parse_link_aliases(ip_detail: str) -> list[str]:
    """Interfaces with alias ``lmtb`` in ``ip -o link show`` output (one line per interface)."""
    ours = []
    for line in ip_detail.splitlines():
        parts = line.split()
        if len(parts) < 2 or f"alias {IFALIAS}" not in line:
            continue
        if line.rstrip().endswith(f"alias {IFALIAS}"):
            ours.append(parts[1].rstrip(":").split("@")[0])
    return ours


def our_netns() -> list[str]:
    d = Path("/run/netns")
    return sorted(p.name for p in d.iterdir() if p.name.startswith(NETNS_PREFIX)) if d.is_dir() else []


def inventory() -> CleanReport:
    """Everything carrying the testbed's marks that exists right now (nothing is removed)."""
    r = subprocess.run(["ovs-vsctl", "--timeout=10", "--format=csv", "--no-headings",
                        "--columns=name,external_ids", "list", "Bridge"], capture_output=True, text=True)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return CleanReport(processes=[f"{p.role}[{p.pid}]" for p in recorded_processes() if p.alive()],
                       bridges=parse_bridge_list(r.stdout) if r.returncode == 0 else [],
                       netns=our_netns(), interfaces=parse_link_aliases(links))


def clean(force: bool = False) -> CleanReport:
    holder = RunLock().held_by_other()
    if holder is not None and not force:
        raise EnvironmentProblem(
            f"a testbed run (pid {holder}) is active; stop it first (Ctrl-C) or use 'testbed clean --force'")
    rep = CleanReport()
    for tp in recorded_processes():
        if terminate(tp):
            rep.processes.append(f"{tp.role}[{tp.pid}]")
    found = inventory()   # after the processes: a killed delay line takes its taps with it
    rep.bridges, rep.netns, rep.interfaces = found.bridges, found.netns, found.interfaces
    if rep.bridges:
        for i in range(0, len(rep.bridges), 200):
            args = []
            for br in rep.bridges[i:i + 200]:
                args += ["--", "--if-exists", "del-br", br]
            subprocess.run(["ovs-vsctl", "--timeout=60", *args[1:]], capture_output=True)
    lines = [f"link del {i}" for i in rep.interfaces] + [f"netns del {n}" for n in rep.netns]
    if lines:
        subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True)
    return rep
