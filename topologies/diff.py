"""What changes between two steps of a schedule -- the testbed applies only this.

"Appeared" and "disappeared" are about *usable* links (``up`` True): a link
still within its acquisition time counts as absent.  A link usable at both
steps whose one-way delay changed by more than ``delay_threshold_s`` is in
``delay_changed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .schedule import Schedule

#: Default delay-change threshold [s]: 1 microsecond.
DEFAULT_DELAY_THRESHOLD_S = 1e-6


@dataclass(frozen=True, eq=False)
class LinkDiff:
    """Changes from ``step_from`` to ``step_to``; every frame is sorted by (a, b).

    Attributes
    ----------
    step_from, step_to : int
    appeared : pandas.DataFrame
        Links usable at ``step_to`` but not at ``step_from``; columns ``a``,
        ``b``, ``kind``, ``distance_km``, ``delay_s``, ``capacity_bps`` (values
        at ``step_to``).
    disappeared : pandas.DataFrame
        Links usable at ``step_from`` but not at ``step_to``; same columns,
        values at ``step_from``.
    delay_changed : pandas.DataFrame
        Links usable at both steps with ``|delay change| > threshold``; columns
        ``a``, ``b``, ``kind``, ``delay_s_from``, ``delay_s_to``,
        ``distance_km`` (at ``step_to``), ``capacity_bps``.
    """

    step_from: int
    step_to: int
    appeared: pd.DataFrame
    disappeared: pd.DataFrame
    delay_changed: pd.DataFrame

    @property
    def empty(self) -> bool:
        return not (len(self.appeared) or len(self.disappeared) or len(self.delay_changed))


_COLUMNS = ["a", "b", "kind", "distance_km", "delay_s", "capacity_bps"]


def diff(schedule: Schedule, step_from: int, step_to: int,
         delay_threshold_s: float = DEFAULT_DELAY_THRESHOLD_S) -> LinkDiff:
    """Links that appear, disappear or change delay between two steps.

    Parameters
    ----------
    schedule : Schedule
    step_from, step_to : int
        Any two steps (usually consecutive).
    delay_threshold_s : float
        Report a delay change only if strictly larger than this [s].
    """
    if delay_threshold_s < 0:
        raise ValueError(f"delay_threshold_s must be >= 0, got {delay_threshold_s}")
    n = schedule.n_nodes
    before = schedule.links_at(step_from)
    after = schedule.links_at(step_to)
    before = before[before["up"].to_numpy()].reset_index(drop=True)
    after = after[after["up"].to_numpy()].reset_index(drop=True)
    key_before = before["a"].to_numpy(np.int64) * n + before["b"].to_numpy(np.int64)
    key_after = after["a"].to_numpy(np.int64) * n + after["b"].to_numpy(np.int64)
    in_after = np.isin(key_before, key_after)
    in_before = np.isin(key_after, key_before)
    appeared = after.loc[~in_before, _COLUMNS].reset_index(drop=True)
    disappeared = before.loc[~in_after, _COLUMNS].reset_index(drop=True)
    # Both frames are sorted by key, so the common rows line up one-to-one.
    common_before = before[in_after].reset_index(drop=True)
    common_after = after[in_before].reset_index(drop=True)
    delay_from = common_before["delay_s"].to_numpy()
    delay_to = common_after["delay_s"].to_numpy()
    changed = np.abs(delay_to - delay_from) > delay_threshold_s
    delay_changed = pd.DataFrame({
        "a": common_after["a"].to_numpy()[changed],
        "b": common_after["b"].to_numpy()[changed],
        "kind": common_after["kind"].to_numpy()[changed],
        "delay_s_from": delay_from[changed],
        "delay_s_to": delay_to[changed],
        "distance_km": common_after["distance_km"].to_numpy()[changed],
        "capacity_bps": common_after["capacity_bps"].to_numpy()[changed],
    })
    return LinkDiff(int(step_from), int(step_to), appeared, disappeared, delay_changed)
