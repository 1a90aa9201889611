"""``testbed clean``: remove everything the testbed created, and nothing else.

What counts as ours (see :mod:`testbed.system.tracking`): processes recorded in the state
directory whose pid *and* kernel start time still match (private Open vSwitch daemons
among them, with their bridges and their folders under ``STATE_DIR/ovs``); bridges of the
machine's Open vSwitch carrying ``external_ids:lmtb-run``; network namespaces recorded by
the run that made them whose inode still matches (:mod:`testbed.system.netns`; a
namespace merely named ``lmtb-*`` is never removed); interfaces whose alias is ``lmtb``;
the controllers' socket folders under ``STATE_DIR/ctl``. Safe to run at any time (it
refuses while a live run holds the lock, unless forced), twice in a row, and after a
crash or ``kill -9``; all processes are ended together (one shared grace period), so a
crashed 6x6 run is cleaned in about a second.

:func:`remove_dead_leftovers` is the same for a run that holds the lock and finds what a
dead run left: only what provably belongs to dead runs (processes and namespaces whose
recorded owner is gone; marked objects, which only a lock holder makes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import EnvironmentProblem
from testbed.links.backends import delete_marked_links, group_members
from testbed.net.ovs import CONTROLLER_LINK_PREFIX, SYSTEM_RUNDIR, SystemOvs, ovs_root
from testbed.system import netns as netns_records
from testbed.system import tracking
from testbed.system.tracking import OVS_EXTERNAL_ID, RunLock, owner_alive, recorded_processes, terminate_all


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
    """Namespaces the testbed recorded making that still exist as recorded."""
    return sorted(n for c in netns_records.recorded() for n in c.owned())


def _bridges(env: dict | None) -> list[str]:
    r = subprocess.run(["ovs-vsctl", "--timeout=10", "--format=csv", "--no-headings",
                        "--columns=name,external_ids", "list", "Bridge"], capture_output=True, text=True, env=env)
    return parse_bridge_list(r.stdout) if r.returncode == 0 else []


def private_ovs_dirs() -> list[Path]:
    root = ovs_root()
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def inventory() -> CleanReport:
    """Everything carrying the testbed's marks that exists right now (nothing is removed)."""
    bridges = inventory_bridges()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return CleanReport(processes=[f"{p.role}[{p.pid}]" for p in recorded_processes() if p.alive()],
                       bridges=bridges, netns=our_netns(), interfaces=parse_link_aliases(links))


def clean(force: bool = False) -> CleanReport:
    holder = RunLock().held_by_other()
    if holder is not None and not force:
        raise EnvironmentProblem(
            f"a testbed run (pid {holder}) is active; stop it first (Ctrl-C) or use 'testbed clean --force'")
    return _remove(dead_owners_only=False)


def remove_dead_leftovers() -> CleanReport:
    """What dead runs left, removed by a run that holds the lock (returns what went).

    Processes and namespaces go if their recorded owner is dead; marked interfaces,
    bridges, private OVS folders and controller folders only if this process holds the run
    lock and runs no tracked process itself (only a lock holder makes them, so they are a
    dead holder's). Without the lock: only the dead owners' processes and namespaces.
    """
    unowned = tracking.lock_held_here() and not any(p.poll() is None for p in list(tracking.LIVE.values()))
    return _remove(dead_owners_only=True, unowned=unowned)


def _remove(dead_owners_only: bool, unowned: bool = True) -> CleanReport:
    def ours(owner) -> bool:
        return not dead_owners_only or not owner_alive(owner)

    claims = [c for c in netns_records.recorded() if ours(c.owner)]
    rep = CleanReport(netns=sorted(n for c in claims for n in c.owned()))
    if unowned:
        rep.bridges = inventory_bridges()
        # Interfaces first, in one batched deletion: processes that held them then exit fast.
        rep.interfaces = delete_marked_links()
    # Private OVS daemons are killed outright: a graceful exit closes ports one by one.
    procs = [tp for tp in recorded_processes() if ours(tp.owner)]
    gone = terminate_all(procs, grace_s=2.0, kill_now=lambda tp: tp.role.startswith("ovs"))
    rep.processes = [f"{tp.role}[{tp.pid}]" for tp in gone]
    if unowned:
        for d in private_ovs_dirs():
            shutil.rmtree(d, ignore_errors=True)
        SystemOvs().delete_bridges(_bridges(None))
        _remove_channel_dirs(dead_owners_only)
        for link in SYSTEM_RUNDIR.glob(f"{CONTROLLER_LINK_PREFIX}*.sock"):
            if link.is_symlink():
                link.unlink(missing_ok=True)
        rest = parse_link_aliases(subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout)
        rep.interfaces += rest
    else:
        rest = []
    lines = [f"link del {i}" for i in rest] + [f"netns del {n}" for n in rep.netns]
    if lines:
        subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True)
    for c in claims:
        if not c.owned():
            c.forget()
    return rep


def inventory_bridges() -> list[str]:
    bridges = _bridges(None)
    for d in private_ovs_dirs():
        if (d / "db.sock").exists():
            bridges += _bridges(dict(os.environ, OVS_RUNDIR=str(d)))
    return bridges


def _remove_channel_dirs(dead_owners_only: bool) -> None:
    """Controller socket folders ``STATE_DIR/ctl/<pid>-<n>`` (of dead pids only, if so asked)."""
    root = tracking.STATE_DIR / "ctl"
    if not root.is_dir():
        return
    for d in root.iterdir():
        pid = d.name.split("-")[0]
        if dead_owners_only and pid.isdigit() and tracking.process_start_ticks(int(pid)) is not None:
            continue
        shutil.rmtree(d, ignore_errors=True)
