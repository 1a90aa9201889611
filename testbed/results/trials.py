"""Repeated trials in a run folder: where each trial's tables are, and what the manifest
and summary say about the trials (format in results/README.md).

A run with ``"trials": N`` in its manifest keeps algorithm ``label``'s trial ``k`` in
``<label>/trial-<k>/`` (k = 0 .. N-1). A run written before trials existed (no
``trials`` key, tables directly in ``<label>/``) reads as one trial, number 0; so does
its summary (``{label: {metric: value}}`` becomes ``{label: {"trials": {"0": ...}}}``).
Every problem raises :class:`ReportError` naming ``manifest.json`` or ``summary.json``
and the key.
"""

from __future__ import annotations

from pathlib import Path

from testbed.errors import InputError

TRIAL_PREFIX = "trial-"


class ReportError(InputError):
    """A run folder (or a report option) that cannot be reported on; exit status 2."""


def trial_folder(run_dir: Path, label: str, trial: int, layered: bool) -> Path:
    """The folder holding ``label``'s tables of ``trial`` (``<label>/trial-<k>`` or, for a
    run without trials, ``<label>``)."""
    return run_dir / label / f"{TRIAL_PREFIX}{trial}" if layered else run_dir / label


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_trial_keys(manifest: dict, path: Path) -> None:
    """Validates ``trials``, ``trial_seeds``, ``trial_order`` and ``time_base`` when present."""
    if "trials" not in manifest:
        return
    n = manifest["trials"]
    if not _is_int(n) or n < 1:
        raise ReportError(f"{path}: 'trials' must be an integer >= 1, got {n!r}")
    seeds = manifest.get("trial_seeds")
    if seeds is not None and (not isinstance(seeds, list) or len(seeds) != n
                              or not all(_is_int(s) for s in seeds)):
        raise ReportError(f"{path}: 'trial_seeds' must be a list of {n} integers (one seed per trial), "
                          f"got {seeds!r}")
    order = manifest.get("trial_order")
    if order is not None:
        labels = sorted(manifest["algorithms"])
        if not isinstance(order, list) or len(order) != n:
            raise ReportError(f"{path}: 'trial_order' must be a list of {n} lists of algorithm labels")
        for k, run_order in enumerate(order):
            if not isinstance(run_order, list) or sorted(map(str, run_order)) != labels:
                raise ReportError(f"{path}: 'trial_order'[{k}] must list each algorithm of 'algorithms' "
                                  f"once, got {run_order!r}")
    time_base = manifest.get("time_base")
    if time_base is not None:
        if not isinstance(time_base, dict):
            raise ReportError(f"{path}: 'time_base' must be an object {{\"<label>/<trial>\": {{...}}}}")
        for key, entry in time_base.items():
            fields = ("start_unix", "t_first_s", "speedup")
            if not isinstance(entry, dict) or any(not isinstance(entry.get(f), (int, float))
                                                  or isinstance(entry.get(f), bool) for f in fields):
                raise ReportError(f"{path}: 'time_base'.{key} must hold numbers {', '.join(fields)}, "
                                  f"got {entry!r}")


def trial_numbers(manifest: dict) -> tuple[tuple[int, ...], bool]:
    """(trial numbers, whether tables live in ``trial-<k>`` folders)."""
    if "trials" in manifest:
        return tuple(range(int(manifest["trials"]))), True
    return (0,), False


def trial_summaries(summary: dict, path: Path) -> dict[str, dict[str, dict]]:
    """``{label: {trial (str): per-trial summary}}`` from a summary of either layout."""
    out: dict[str, dict[str, dict]] = {}
    for label, entry in (summary.get("algorithms") or {}).items():
        if not isinstance(entry, dict):
            raise ReportError(f"{path}: 'algorithms'.{label} must be an object, got {entry!r}")
        if "trials" in entry:
            trials = entry["trials"]
            if not isinstance(trials, dict) or not all(isinstance(v, dict) for v in trials.values()):
                raise ReportError(f"{path}: 'algorithms'.{label}.trials must map trial numbers to objects")
            bad = [k for k in trials if not str(k).isdigit()]
            if bad:
                raise ReportError(f"{path}: 'algorithms'.{label}.trials: key {bad[0]!r} is not a trial number")
            out[label] = {str(k): v for k, v in trials.items()}
        else:
            out[label] = {"0": entry}
    return out


def shared_seeds(manifests: list[dict]) -> bool:
    """True when every run lists the same per-trial seeds (then trial k of one run is the
    same scenario as trial k of another, and runs can be paired by trial)."""
    seeds = [m.get("trial_seeds") or ([m["seed"]] if "seed" in m and "trials" not in m else None)
             for m in manifests]
    return all(s is not None for s in seeds) and all(s == seeds[0] for s in seeds)
