"""Run folders: ``results/<experiment>/<run_id>/``, written atomically.

A run folder is created with an ``INCOMPLETE`` marker; every file is written to a
temporary name and renamed, so no reader ever sees half a file; :meth:`RunDir.complete`
removes the marker last. An interrupted or crashed run therefore leaves a folder that
says it is incomplete, never one that looks finished.

``INCOMPLETE`` is a JSON object: ``{"status": "running", "sentence": ...}`` while the run
runs, and after a failure (:meth:`RunDir.fail`) ``{"status": "failed", "sentence": "...",
"failure": {"kind", "message", "component", "where", ...}}`` (see :func:`failure_record`).
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
PACKAGES = ("numpy", "pandas", "pyarrow", "skyfield", "sgp4", "networkx", "os-ken", "protobuf",
            "matplotlib", "scapy")


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
    """A run folder (or one algorithm's trial folder inside it: then ``trial`` is set, and every
    table written into it carries that ``trial`` column)."""

    path: Path
    run_id: str
    trial: int | None = None

    @classmethod
    def create(cls, experiment_dir: Path) -> "RunDir":
        run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
        path = experiment_dir / run_id
        try:
            path.mkdir(parents=True, exist_ok=False)
        except OSError as e:
            raise output_folder_problem(experiment_dir, e) from None
        d = cls(path, run_id)
        d.write_json(INCOMPLETE, {"status": "running", "sentence": "this run did not finish; its files may be partial"})
        return d

    def fail(self, failure: dict) -> None:
        """Records in ``INCOMPLETE`` why the run stopped (``failure``: see :func:`failure_record`)."""
        where = f" during {failure['where']}" if failure.get("where") else ""
        self.write_json(INCOMPLETE, {"status": "failed", "failure": failure,
                                     "sentence": f"The run stopped{where} at {failure['at_utc']}: "
                                                 f"{failure['message']}."})

    def write_text(self, name: str, text: str) -> Path:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(p, text.encode())
        return p

    def write_json(self, name: str, obj) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")

    def complete(self) -> None:
        (self.path / INCOMPLETE).unlink(missing_ok=True)


def failure_record(exc: BaseException, where: str | None = None) -> dict:
    """Why a run stopped, JSON-friendly: ``kind`` (``process_exit``, ``openflow_disconnect``,
    ``interrupted``, ``environment``, ``input``, ``run_failed``, ``crash``), ``message`` (the line
    the command printed), ``exit_code``, ``where`` (``<algorithm>/trial-<k>``), ``at_utc``, and for
    a component fault ``component``, ``role``, ``pid``, ``signal`` or ``exit_status``."""
    from testbed.errors import EnvironmentProblem, InputError, TestbedError
    record = getattr(exc, "record", None)
    if callable(record):
        out = dict(record())
    elif isinstance(exc, KeyboardInterrupt):
        out = {"kind": "interrupted", "message": "interrupted (Ctrl-C or SIGTERM)"}
    elif isinstance(exc, TestbedError):
        kind = ("input" if isinstance(exc, InputError) else "environment" if isinstance(exc, EnvironmentProblem)
                else "run_failed")
        out = {"kind": kind, "message": str(exc)}
    else:
        out = {"kind": "crash", "message": f"{type(exc).__name__}: {exc}"}
    out["exit_code"] = 130 if isinstance(exc, KeyboardInterrupt) else getattr(exc, "exit_code", 1)
    out["where"] = where
    out["at_utc"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return out


def output_folder_problem(folder: Path, err: OSError) -> Exception:
    """One line for a results folder that cannot be made: an input error (exit 2) when the path
    itself is wrong (a file where a folder must be, a name too long), else an environment
    problem (exit 1: permissions, read-only or virtual file systems)."""
    from errno import ENAMETOOLONG, ENOTDIR, EEXIST
    from testbed.errors import EnvironmentProblem, InputError
    existing = next((a for a in [folder, *folder.parents] if os.path.lexists(a)), None)
    if err.errno in (ENOTDIR, EEXIST) and existing is not None and not existing.is_dir():
        return InputError(f"results folder {folder}: {existing} exists and is not a folder; "
                          f"choose another output folder (experiment.output_dir or --results)")
    if err.errno == ENAMETOOLONG:
        return InputError(f"results folder {folder}: a name in it is too long for the file system "
                          f"(at most 255 bytes per name, 4095 in all); shorten experiment.name or the output folder")
    return EnvironmentProblem(f"cannot create the results folder {folder}: {err.strerror}"
                              f"{f' ({err.filename})' if err.filename and str(err.filename) != str(folder) else ''}; "
                              f"choose a writable output folder (experiment.output_dir or --results)")


class FailureRecorder:
    """``with RunLock(), rec:`` — if the body raises, writes why into ``rec.run_dir``'s
    ``INCOMPLETE`` and, once ``rec.manifest`` is set, into the manifest's ``failure`` key
    (``rec.where``: what was running). The exception goes on unchanged."""

    def __init__(self) -> None:
        self.run_dir: RunDir | None = None
        self.manifest: dict | None = None
        self.where: str | None = None

    def __enter__(self) -> "FailureRecorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or self.run_dir is None:
            return False
        failure = failure_record(exc, self.where)
        try:
            if self.manifest is not None:
                self.manifest["failure"] = failure
                self.run_dir.write_json("manifest.json", self.manifest)
            self.run_dir.fail(failure)
        except OSError:
            pass        # the original error is the news
        return False
