"""The manifest of a run folder: what ran, where, with which software, and what the link
backend really did. Built here only (``testbed run`` and ``testbed slice`` both use it).

Fidelity fields are never asserted: ``fidelity`` holds, per algorithm (or for the slice's
one network), what the backend read back from its data path (see
:meth:`testbed.links.backends.LinkBackend.fidelity`), and ``delay_emulated`` is True only
when every network of the run showed delay, False when any did not, None when none could
tell.
"""

from __future__ import annotations

import datetime as dt
import os
import platform

from testbed.results.writer import git_commit, package_versions


def base_manifest(experiment: str, run_id: str, backend: str, ovs_datapath: str, **fields) -> dict:
    """The fields every manifest has, plus ``fields``."""
    return {"experiment": experiment, "run_id": run_id, "backend": backend, "ovs_datapath": ovs_datapath,
            "git_commit": git_commit(), "versions": package_versions(),
            "host": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(),
            "fidelity": {}, "delay_emulated": None, **fields}


def record_fidelity(manifest: dict, network: str, fidelity: dict) -> None:
    """Adds one network's read-back fidelity and re-derives ``delay_emulated`` from all of them."""
    manifest["fidelity"][network] = fidelity
    seen = [f.get("delay_emulated") for f in manifest["fidelity"].values()]
    known = [x for x in seen if x is not None]
    manifest["delay_emulated"] = (all(known) if known else None)
