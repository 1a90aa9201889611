"""From an orbital :class:`topologies.Schedule` to what the emulator builds and replays.

:func:`from_schedule` returns the :class:`~testbed.net.plan.NetworkPlan` (one switch per
node, one host per compute satellite and ground station, one link per laser or ground
link that exists at any step of the run) and the :class:`~testbed.net.clock.LinkTimeline`
(delay and usable state of every link at every step). Rates are
``capacity_bps x rate_scale`` (docs/architecture.md, Conventions); delays are never scaled.

A link absent at a step is not usable there; its delay is carried from the nearest
step where it exists (so a link that comes up starts at its real delay).
"""

from __future__ import annotations

import numpy as np

from testbed.net.clock import LinkTimeline
from testbed.net.plan import NetworkPlan, make_plan

HOST_KINDS = ("compute", "ground")


def from_schedule(schedule, rate_scale: float) -> tuple[NetworkPlan, LinkTimeline]:
    if not rate_scale > 0:
        raise ValueError(f"rate_scale must be > 0, got {rate_scale}")
    nodes = schedule.nodes
    links = schedule.links
    n_steps = schedule.n_steps
    pairs = links[["a", "b"]].drop_duplicates().sort_values(["a", "b"]).to_numpy()
    # link id = index of (a, b) in sorted order, as make_plan numbers them
    key = links["a"].to_numpy(np.int64) * (len(nodes) + 1) + links["b"].to_numpy(np.int64)
    pair_key = pairs[:, 0].astype(np.int64) * (len(nodes) + 1) + pairs[:, 1].astype(np.int64)
    link_id = np.searchsorted(pair_key, key)
    steps = links["step"].to_numpy(np.int64)

    delay = np.full((n_steps, len(pairs)), np.nan)
    up = np.zeros((n_steps, len(pairs)), dtype=bool)
    delay[steps, link_id] = links["delay_s"].to_numpy(float)
    up[steps, link_id] = links["up"].to_numpy(bool)
    delay = _fill_along_time(delay)

    first = np.full(len(pairs), len(links), dtype=np.int64)
    np.minimum.at(first, link_id, np.arange(len(links)))
    kinds = links["kind"].to_numpy()[first]
    capacity = links["capacity_bps"].to_numpy(float)[first]

    hosts = {int(r.node_id): (str(r.name), str(r.kind)) for r in nodes.itertuples() if r.kind in HOST_KINDS}
    plan = make_plan(
        nodes["node_id"].astype(int).tolist(), hosts,
        [(int(a), int(b), str(k), float(c) * rate_scale, float(d), bool(u))
         for (a, b), k, c, d, u in zip(pairs, kinds, capacity, delay[0], up[0])])
    return plan, LinkTimeline(np.asarray(schedule.times_s, float), delay, up)


def _fill_along_time(delay: np.ndarray) -> np.ndarray:
    """Forward-fills NaNs along axis 0, then back-fills the leading ones."""
    out = delay.copy()
    n = out.shape[0]
    idx = np.where(np.isnan(out), 0, np.arange(n)[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = out[idx, np.arange(out.shape[1])]
    if np.isnan(out).any():
        idx = np.where(np.isnan(out), n - 1, np.arange(n)[:, None])
        idx = np.minimum.accumulate(idx[::-1], axis=0)[::-1]
        out = out[idx, np.arange(out.shape[1])]
    return out
