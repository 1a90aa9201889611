"""Scheduled faults that follow the orbit, expanded onto a run's timeline (pure).

A fault here is part of the experiment, not a failure of the testbed: it is applied at its
orbital time by the clock, recorded in the run's ``faults`` table and the run goes on (an
*unexpected* component failure still stops the run). Kinds (registry ``FAULT_KINDS``):

- ``laser``: one laser terminal of satellite ``node`` is lost at ``t_s``: its ISL to ``peer``
  (default: its lowest-numbered neighbour over an ISL at that step) is down from then on, or
  for ``duration_s``;
- ``satellite``: satellite ``node`` is lost at ``t_s``: every link of it (ISLs and ground
  links) is down from then on, or for ``duration_s``;
- ``compute_reset``: compute satellites reset at random times, a Poisson process at
  ``rate_per_hour`` outside the South Atlantic Anomaly and ``saa_rate_per_hour`` inside it;
  a reset stops the accelerator for ``reset_s`` (replay agents stall, like a pause). The
  SAA is taken as the box 50 S-0 latitude, 90 W-40 E longitude (its extent in trapped
  proton flux maps at 400-800 km, e.g. the AP-8 model; the real boundary is irregular and
  moves west by ~0.3 deg per year). Draws come from the run's seed, so every algorithm of a
  trial sees the same resets;
- ``controller_outage``: the controller hears nothing from ``t_s`` for ``duration_s``: the
  clock stops its process (testbed/net/clock.py ``pause_controller``), so neither the feed
  nor the switches' port-down messages reach it; the switches keep their last rules while
  links change under them; when it ends the controller reads what the switches queued and
  gets the current state.

Times are orbital seconds since the schedule's epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SAA_LAT_DEG = (-50.0, 0.0)
SAA_LON_DEG = (-90.0, 40.0)


@dataclass(frozen=True)
class FaultSpec:
    """One ``[[faults]]`` entry (fields not used by its ``kind`` keep their defaults)."""

    kind: str
    t_s: float = 0.0
    node: int | None = None
    peer: int | None = None
    duration_s: float = math.inf
    rate_per_hour: float = 0.0
    saa_rate_per_hour: float = 0.0
    reset_s: float = 5.0


@dataclass(frozen=True)
class FaultEvent:
    """A fault as applied: orbital start and end, kind, node, and what it did."""

    t_s: float
    end_s: float
    kind: str
    node: int
    detail: str


@dataclass
class FaultPlan:
    """A timeline with the link faults applied, and what the clock and the agents need.

    ``up``: (n_steps, n_links) link usability with faults; ``clock_fraction``: (n_steps,
    n_compute) multipliers for the accelerators (0 while a node is resetting), or None;
    ``controller_outages``: (start_s, end_s) intervals; ``events``: every applied fault.
    """

    up: np.ndarray
    clock_fraction: np.ndarray | None
    controller_outages: list[tuple[float, float]] = field(default_factory=list)
    events: list[FaultEvent] = field(default_factory=list)


def in_saa(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """True inside the SAA box (arrays of any shape, degrees)."""
    return ((lat_deg >= SAA_LAT_DEG[0]) & (lat_deg <= SAA_LAT_DEG[1])
            & (lon_deg >= SAA_LON_DEG[0]) & (lon_deg <= SAA_LON_DEG[1]))


def _window(times_s: np.ndarray, t_s: float, duration_s: float) -> np.ndarray:
    return (times_s >= t_s) & (times_s < t_s + duration_s)


def _laser(f: FaultSpec, ctx: dict, out: FaultPlan) -> None:
    links, times = ctx["links"], ctx["times_s"]
    k = min(int(np.searchsorted(times, f.t_s)), len(times) - 1)
    isl = [lk for lk in links if lk.kind == "isl" and f.node in (lk.a, lk.b) and ctx["up"][k, lk.link_id]]
    if f.peer is not None:
        isl = [lk for lk in isl if f.peer in (lk.a, lk.b)]
    if not isl:
        out.events.append(FaultEvent(f.t_s, f.t_s, "laser", f.node, "no laser link in use at that time: nothing lost"))
        return
    lk = min(isl, key=lambda x: x.b if x.a == f.node else x.a)
    out.up[_window(times, f.t_s, f.duration_s), lk.link_id] = False
    out.events.append(FaultEvent(f.t_s, f.t_s + f.duration_s, "laser", f.node, f"laser link {lk.a}-{lk.b} lost"))


def _satellite(f: FaultSpec, ctx: dict, out: FaultPlan) -> None:
    ids = [lk.link_id for lk in ctx["links"] if f.node in (lk.a, lk.b)]
    out.up[np.ix_(_window(ctx["times_s"], f.t_s, f.duration_s), ids)] = False
    out.events.append(FaultEvent(f.t_s, f.t_s + f.duration_s, "satellite", f.node, f"{len(ids)} links lost"))


def _compute_reset(f: FaultSpec, ctx: dict, out: FaultPlan) -> None:
    times, rng = ctx["times_s"], ctx["rng"]
    if out.clock_fraction is None:
        out.clock_fraction = np.ones((len(times), len(ctx["compute"])))
    step_s = float(times[1] - times[0]) if len(times) > 1 else 1.0
    inside = in_saa(ctx["lat_deg"], ctx["lon_deg"])                   # (n_steps, n_compute)
    rate = np.where(inside, f.saa_rate_per_hour, f.rate_per_hour) / 3600.0
    hits = rng.random(inside.shape) < 1.0 - np.exp(-rate * step_s)
    for k, j in zip(*np.nonzero(hits)):
        t0 = float(times[k])
        out.clock_fraction[_window(times, t0, f.reset_s), j] = 0.0
        where = "inside the SAA" if inside[k, j] else "outside the SAA"
        out.events.append(FaultEvent(t0, t0 + f.reset_s, "compute_reset", ctx["compute"][j],
                                     f"accelerator reset for {f.reset_s:g} s ({where})"))


def _controller_outage(f: FaultSpec, ctx: dict, out: FaultPlan) -> None:
    out.controller_outages.append((f.t_s, f.t_s + f.duration_s))
    out.events.append(FaultEvent(f.t_s, f.t_s + f.duration_s, "controller_outage", -1,
                                 f"controller unreachable for {f.duration_s:g} s"))


#: kind -> (applier, fields the kind needs)
FAULT_KINDS = {
    "laser": (_laser, ("t_s", "node")),
    "satellite": (_satellite, ("t_s", "node")),
    "compute_reset": (_compute_reset, ("rate_per_hour",)),
    "controller_outage": (_controller_outage, ("t_s", "duration_s")),
}


def apply_faults(faults, links, times_s: np.ndarray, up: np.ndarray, compute_nodes, lat_deg: np.ndarray,
                 lon_deg: np.ndarray, seed: int) -> FaultPlan:
    """Every fault applied to a copy of ``up`` ((n_steps, n_links) bool, link_id = column).

    ``links``: the plan's links (``link_id``, ``a``, ``b``, ``kind``); ``compute_nodes``: node
    ids of the compute satellites, in the column order of ``lat_deg``/``lon_deg`` ((n_steps,
    n_compute) degrees, their sub-satellite points); ``seed``: for the random resets.
    """
    out = FaultPlan(up.copy(), None)
    ctx = {"links": list(links), "times_s": np.asarray(times_s, float), "up": up, "compute": list(compute_nodes),
           "lat_deg": lat_deg, "lon_deg": lon_deg, "rng": np.random.default_rng(seed)}
    for f in faults:
        FAULT_KINDS[f.kind][0](f, ctx, out)
    out.events.sort(key=lambda e: (e.t_s, e.kind, e.node))
    return out
