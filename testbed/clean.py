"""``testbed clean``: remove everything the testbed created, and nothing else.

What counts as ours (see :mod:`testbed.tracking`): processes recorded in the state
directory whose pid *and* kernel start time still match (private Open vSwitch daemons
among them, with their bridges and their folders under ``STATE_DIR/ovs``); bridges of the
machine's Open vSwitch carrying ``external_ids:lmtb-run``; network namespaces named
``lmtb-*``; interfaces whose alias is ``lmtb``. Safe to run at any time (it refuses while a live run holds the lock, unless
forced), twice in a row, and after a crash or ``kill -9``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EnvironmentProblem
from .links import delete_marked_links, group_members
from .ovs import SystemOvs, ovs_root
from .tracking import NETNS_PREFIX, OVS_EXTERNAL_ID, RunLock, recorded_processes, terminate


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
    return group_members(ip_detail)[0]


def our_netns() -> list[str]:
    d = Path("/run/netns")
    return sorted(p.name for p in d.iterdir() if p.name.startswith(NETNS_PREFIX)) if d.is_dir() else []


def _bridges(env: dict | None) -> list[str]:
    r = subprocess.run(["ovs-vsctl", "--timeout=10", "--format=csv", "--no-headings",
                        "--columns=name,external_ids", "list", "Bridge"], capture_output=True, text=True, env=env)
    return parse_bridge_list(r.stdout) if r.returncode == 0 else []


def private_ovs_dirs() -> list[Path]:
    root = ovs_root()
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def inventory() -> CleanReport:
    """Everything carrying the testbed's marks that exists right now (nothing is removed)."""
    bridges = _bridges(None)
    for d in private_ovs_dirs():
        if (d / "db.sock").exists():
            bridges += _bridges(dict(os.environ, OVS_RUNDIR=str(d)))
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return CleanReport(processes=[f"{p.role}[{p.pid}]" for p in recorded_processes() if p.alive()],
                       bridges=bridges, netns=our_netns(), interfaces=parse_link_aliases(links))


def clean(force: bool = False) -> CleanReport:
    holder = RunLock().held_by_other()
    if holder is not None and not force:
        raise EnvironmentProblem(
            f"a testbed run (pid {holder}) is active; stop it first (Ctrl-C) or use 'testbed clean --force'")
    found = inventory()
    rep = CleanReport(bridges=found.bridges, netns=found.netns)
    # Interfaces first, in one batched deletion: processes that held them then exit fast.
    rep.interfaces = delete_marked_links()
    for tp in recorded_processes():
        # Private OVS daemons are killed outright: a graceful exit closes ports one by one.
        if terminate(tp, grace_s=0.0 if tp.role.startswith("ovs") else 2.0):
            rep.processes.append(f"{tp.role}[{tp.pid}]")
    for d in private_ovs_dirs():
        shutil.rmtree(d, ignore_errors=True)
    SystemOvs().delete_bridges(_bridges(None))
    rest = parse_link_aliases(subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout)
    rep.interfaces += rest
    lines = [f"link del {i}" for i in rest] + [f"netns del {n}" for n in rep.netns]
    if lines:
        subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True)
    return rep
