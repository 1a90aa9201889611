"""Run folders: ``results/<experiment>/<run_id>/``, written atomically.

A run folder is created with an ``INCOMPLETE`` marker; every file is written to a
temporary name and renamed, so no reader ever sees half a file; :meth:`RunDir.complete`
removes the marker last. An interrupted or crashed run therefore leaves a folder that
says it is incomplete, never one that looks finished.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

INCOMPLETE = "INCOMPLETE"
REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("numpy", "pandas", "pyarrow", "skyfield", "sgp4", "networkx", "os-ken", "pyroute2",
            "matplotlib", "mlc-chakra")


def git_commit() -> str | None:
    r = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + ("-dirty" if dirty else "")


def package_versions() -> dict[str, str | None]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    for tool, argv in (("ovs", ["ovs-vsctl", "--version"]), ("iperf3", ["iperf3", "--version"])):
        try:
            out[tool] = subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            out[tool] = None
    return out


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


@dataclass
class RunDir:
    path: Path
    run_id: str

    @classmethod
    def create(cls, experiment_dir: Path) -> "RunDir":
        run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
        path = experiment_dir / run_id
        path.mkdir(parents=True, exist_ok=False)
        (path / INCOMPLETE).write_text("this run did not finish; its files may be partial\n")
        return cls(path, run_id)

    def write_text(self, name: str, text: str) -> Path:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(p, text.encode())
        return p

    def write_json(self, name: str, obj) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")

    def complete(self) -> None:
        (self.path / INCOMPLETE).unlink(missing_ok=True)
