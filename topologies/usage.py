"""Laser usage at step 0: how many satellites have 4/3/2/1/0 ISLs, and why not 4.

Reasons come from the ISL policy (``LinkSet.usage``): for ``plus_grid`` the
plan's missing partners (:data:`topologies.grid.MISSING_REASONS`) plus planned
links that do not exist at step 0: out of range / line of sight across a gap in
a plane (``gap``: the partner is more than a slot away) or not
(``no_neighbour_in_range``), or off by the polar cut-off (``polar_cutoff``).  Policies that
choose freely (``nearest``) report only the histogram.
"""

from __future__ import annotations

import numpy as np

from .grid import MISSING_REASONS

#: Reasons beyond the plan's, with their explanation.
STEP_REASONS = {
    "gap": "planned partner more than a slot away (a gap in the plane), out of range at step 0",
    "no_neighbour_in_range": "planned partner out of range or line of sight at step 0",
    "polar_cutoff": "cross-plane link off above max_lat_deg at step 0",
}
REASONS = {**MISSING_REASONS, **STEP_REASONS}


def laser_usage(pairs: np.ndarray, present: np.ndarray, n_sats: int, lasers_per_sat: int,
                usage: dict | None) -> dict:
    """JSON-friendly laser-usage summary of one step.

    Parameters
    ----------
    pairs : numpy.ndarray of int64, shape (P, 2)
        The policy's candidate pairs.
    present : numpy.ndarray of bool, shape (P,)
        Which exist at the step.
    n_sats : int
    lasers_per_sat : int
    usage : dict of reason -> per-satellite counts, shape (n_sats,), or None

    Returns
    -------
    dict
        ``isls_per_satellite``: {"4": count, ...} for 0..lasers_per_sat;
        ``reasons``: {reason: {"satellites": with at least one laser lost to it,
        "lasers": lasers lost, "meaning": text}} (only reasons that occur).
    """
    ends = pairs[present].ravel()
    degree = np.bincount(ends, minlength=n_sats)[:n_sats]
    top = max(lasers_per_sat, int(degree.max()) if degree.size else 0)
    histogram = {str(k): int((degree == k).sum()) for k in range(top, -1, -1)}
    reasons = {}
    for reason, counts in (usage or {}).items():
        counts = np.asarray(counts)[:n_sats]
        if counts.any():
            reasons[reason] = {"satellites": int((counts > 0).sum()),
                               "lasers": int(counts.sum()),
                               "meaning": REASONS.get(reason, reason)}
    return {"step": 0, "isls_per_satellite": histogram, "reasons": reasons}


def format_laser_usage(summary: dict) -> list[str]:
    """Text lines for ``testbed topo``."""
    histogram = ", ".join(f"{k}: {v}" for k, v in summary["isls_per_satellite"].items())
    lines = [f"lasers at step 0  satellites with N ISLs -- {histogram}"]
    for reason, info in sorted(summary["reasons"].items(), key=lambda kv: -kv[1]["lasers"]):
        lines.append(f"  {info['lasers']:>5} lasers on {info['satellites']:>5} satellites: "
                     f"{reason} ({info['meaning']})")
    return lines
