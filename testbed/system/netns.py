"""Network namespaces the testbed made, recorded so that only those are ever removed.

A network builds its namespaces in one ``ip -batch``. Before that, :func:`claim` checks
that none of the names exists (a name that does is someone else's, or a dead run's
that was not cleaned: one line says which and what to do) and records the names in
``STATE_DIR/netns/<owner pid>-<n>.json`` with the owner (pid and kernel start time of the
testbed process). After the batch, :meth:`Claim.confirm` adds the inode of each
``/run/netns/<name>``. ``testbed clean`` (and a run that finds a dead run's leftovers)
removes a namespace only if it is recorded and its inode still matches (or, for names
recorded but not yet confirmed when the run died, if it exists: the names were checked to
be free just before) — a namespace merely named ``lmtb-*`` is never touched.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from testbed.errors import EnvironmentProblem
from testbed.system import tracking
from testbed.system.files import atomic_write

NETNS_DIR = Path("/run/netns")
_counter = itertools.count()


def _records_dir() -> Path:
    d = tracking.STATE_DIR / "netns"
    d.mkdir(parents=True, exist_ok=True)
    return d


def netns_inode(name: str) -> list[int] | None:
    """[st_dev, st_ino] of /run/netns/NAME, or None if there is no such namespace."""
    try:
        st = os.stat(NETNS_DIR / name)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


@dataclass
class Claim:
    """The record of one network's namespaces (see the module docstring)."""

    path: Path
    names: list[str]
    owner: tuple[int, int | None] | None
    inodes: dict[str, list[int] | None]

    def _write(self) -> None:
        atomic_write(self.path, json.dumps({"owner": list(self.owner) if self.owner else None,
                                            "netns": {n: self.inodes.get(n) for n in self.names}}))

    def confirm(self) -> None:
        """Records the inode of every namespace that now exists."""
        self.inodes = {n: netns_inode(n) for n in self.names}
        self._write()

    def owned(self) -> list[str]:
        """Recorded namespaces that exist and are provably the ones recorded."""
        out = []
        for n in self.names:
            now = netns_inode(n)
            if now is not None and (self.inodes.get(n) is None or self.inodes[n] == now):
                out.append(n)
        return out

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)


def claim(names: Sequence[str]) -> Claim:
    """Records ``names`` as about to be made; raises if one exists already."""
    taken = [n for n in names if (NETNS_DIR / n).exists()]
    if taken:
        shown = ", ".join(taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise EnvironmentProblem(
            f"network namespace {shown} already exists and this run did not make it: if an earlier run "
            f"left it, run 'testbed clean' (it removes only namespaces the testbed recorded); otherwise "
            f"delete or rename it (names lmtb-* are the testbed's)")
    owner = tracking._owner()
    c = Claim(_records_dir() / f"{owner[0]}-{next(_counter)}.json", list(names), owner, {})
    c._write()
    return c


def recorded() -> list[Claim]:
    """Every namespace record on this machine (unreadable records are dropped)."""
    out = []
    for f in sorted(_records_dir().glob("*.json")):
        try:
            d = json.loads(f.read_text())
            owner = tuple(d["owner"]) if d.get("owner") else None
            out.append(Claim(f, list(d["netns"]), owner, dict(d["netns"])))
        except (OSError, ValueError, KeyError, TypeError):
            f.unlink(missing_ok=True)
    return out
