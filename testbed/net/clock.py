"""The clock: replays a link timeline on the live network, in (scaled) real time.

A :class:`LinkTimeline` holds, for every link of the plan and every schedule step, the
one-way delay and whether the link is usable (arrays shaped ``(n_steps, n_links)``).
:func:`step_changes` (pure) diffs two steps: links going down, coming up, and delays that
moved by more than a threshold. :class:`Clock` maps wall time to orbital time
(``speedup`` orbital seconds per wall second) and at each step applies only the diff —
delays in one batch to the link backend, link states in one netlink batch — then tells
the controller (so the controller's view trails the data plane by at most one step).

Order within a step (make-before-break friendly): delays first, then links that come up,
then links that go down, then the controller's feed. A predictive controller has been
told about a planned change in earlier steps (``future``) and has already moved traffic.

Every step is applied, none skipped; when the clock falls behind the schedule it logs a
warning saying by how much. Two lags are recorded per step: ``lag_s``, how late the step's
link changes were in force (what the schedule's fidelity turns on), and ``done_lag_s``, how
late the step was done, the controller's confirmation included (a step whose controller
work outlasts a step delays the next step's ``lag_s``, never hides in it).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from testbed.control.messages import state_message
from testbed.net.plan import NetworkPlan

LOG = logging.getLogger("lmtb.clock")


@dataclass(frozen=True)
class LinkTimeline:
    """Per-step link state for the links of a plan (link_id = column index).

    Attributes
    ----------
    times_s : (n_steps,) float, orbital seconds since the schedule's epoch, increasing.
    delay_s : (n_steps, n_links) float, one-way delay; meaningless where not up.
    up : (n_steps, n_links) bool, link usable (exists and past its acquisition time).
    """

    times_s: np.ndarray
    delay_s: np.ndarray
    up: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.times_s)
        if self.delay_s.shape != self.up.shape or self.delay_s.shape[0] != n:
            raise ValueError(f"timeline shapes disagree: times {self.times_s.shape}, "
                             f"delay {self.delay_s.shape}, up {self.up.shape}")
        if n > 1 and not np.all(np.diff(self.times_s) > 0):
            raise ValueError("timeline times must increase strictly")

    @property
    def n_steps(self) -> int:
        return len(self.times_s)


@dataclass(frozen=True)
class StepChanges:
    """What changes from one step to the next (link ids, sorted)."""

    down: np.ndarray            # links that stop being usable
    up: np.ndarray              # links that become usable
    delay_ids: np.ndarray       # links whose delay moved by more than the threshold
    delay_s: np.ndarray         # their new delays


def step_changes(prev_delay_s: np.ndarray, prev_up: np.ndarray, delay_s: np.ndarray, up: np.ndarray,
                 threshold_s: float) -> StepChanges:
    """Diff of two link states (vectorised over links).

    Delays are compared against the delay *last applied* (``prev_delay_s``), so many
    sub-threshold drifts add up and get applied once they exceed ``threshold_s``. A link
    that comes up always gets its current delay applied.
    """
    down = np.flatnonzero(prev_up & ~up)
    came_up = np.flatnonzero(~prev_up & up)
    moved = np.abs(delay_s - prev_delay_s) > threshold_s
    moved |= ~prev_up & up
    ids = np.flatnonzero(moved & up)
    return StepChanges(down, came_up, ids, delay_s[ids])


@dataclass
class StepRecord:
    step: int
    t_s: float
    delay_changes: int
    links_up: int
    links_down: int
    apply_s: float          # data plane: delays + link states
    controller_s: float     # feed request until the controller confirmed its rules
    lag_s: float            # wall time behind the schedule when the step's link changes were in force
    flow_mods: int
    install_s: float = 0.0  # the controller's decision until its last barrier reply (as it saw it)
    unreachable_switches: int = 0   # switches with no control path from the controller's location
    done_lag_s: float = 0.0  # wall time behind the schedule when the step was done (controller included)


@dataclass
class Clock:
    plan: NetworkPlan
    timeline: LinkTimeline
    set_delays: Callable[[Sequence[tuple[int, float, float]]], float]
    set_links_up: Callable[[Sequence[int], Sequence[int]], None]
    controller_request: Callable[[dict], dict] | None = None
    speedup: float = 1.0
    delay_threshold_s: float = 10e-6
    future_steps: int = 0
    check_alive: Callable[[], None] = lambda: None
    #: (start_s, end_s) orbital intervals in which the controller hears nothing (a scheduled
    #: controller outage): the data plane changes, the switches keep their rules; the first
    #: step after an outage sends the controller the current state.
    controller_outages: Sequence[tuple[float, float]] = ()
    #: Called with True at the first step inside an outage (before that step's data-plane
    #: changes) and with False at the first step after it (and when the run ends inside one):
    #: the emulation stops the controller process in between, so that it hears nothing from
    #: the switches either (not even a port going down). Resolution: one schedule step.
    pause_controller: Callable[[bool], None] | None = None
    #: With a distant controller: step -> switch nodes out of its reach, after giving the
    #: control relay that step's delays (:class:`testbed.control.placement.ControlDelays`);
    #: called after the data plane's changes and before the controller hears of the step,
    #: whose state message then names them (``out_of_reach``: no barrier is awaited there).
    control_step: Callable[[int], list[int]] | None = None
    records: list[StepRecord] = field(default_factory=list)
    _missed_controller: bool = False
    _controller_paused: bool = False
    _applied_delay_s: np.ndarray | None = None
    _applied_up: np.ndarray | None = None

    def _records(self, k: int) -> list[dict]:
        """Feed link records at step k (a link that is not up still needs a positive delay)."""
        tl = self.timeline
        d = tl.delay_s[k]
        d = np.where(np.isfinite(d) & (d > 0), d, 1.0)
        return [{"a": lk.a, "b": lk.b, "delay_s": float(d[lk.link_id]), "capacity_bps": lk.rate_bps,
                 "up": bool(tl.up[k, lk.link_id])} for lk in self.plan.links]

    def _state_message(self, k: int) -> dict:
        last = min(k + 1 + self.future_steps, self.timeline.n_steps)
        future = [(float(self.timeline.times_s[j]), self._records(j)) for j in range(k + 1, last)]
        return state_message(k, float(self.timeline.times_s[k]), self._records(k), future)

    def applied(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(delay_s, up), each shaped (n_links,): what the clock last applied to the network
        (copies; None before step 0). Readers such as the Mininet view report these."""
        if self._applied_delay_s is None:
            return None
        return self._applied_delay_s.copy(), self._applied_up.copy()

    def set_elsewhere(self, link_ids: Sequence[int], up: bool) -> None:
        """Records that someone else (a user's ``link a b down`` in the Mininet CLI) set these
        links' state: the next step then finds them off the schedule and re-applies it."""
        if self._applied_up is not None:
            self._applied_up[np.asarray(link_ids, dtype=np.int64)] = up

    def initial_state(self) -> dict:
        """Step 0 as built (the network is built with step 0's delays and states)."""
        self._applied_delay_s = self.timeline.delay_s[0].copy()
        self._applied_up = self.timeline.up[0].copy()
        return self._state_message(0)

    def _set_paused(self, paused: bool) -> None:
        if paused != self._controller_paused:
            if self.pause_controller is not None:
                self.pause_controller(paused)
            self._controller_paused = paused

    def apply_step(self, k: int, due: float | None = None) -> StepRecord:
        """Applies step ``k``; with ``due`` (its ``time.monotonic()`` target) the record gets
        how late its link changes were in force (``lag_s``); ``done_lag_s`` is set by the caller."""
        tl = self.timeline
        t_k = float(tl.times_s[k])
        in_outage = any(a <= t_k < b for a, b in self.controller_outages)
        self._set_paused(in_outage)
        ch = step_changes(self._applied_delay_s, self._applied_up, tl.delay_s[k], tl.up[k], self.delay_threshold_s)
        t0 = time.perf_counter()
        if len(ch.delay_ids):
            self.set_delays([(int(i), float(d), float(d)) for i, d in zip(ch.delay_ids, ch.delay_s)])
            self._applied_delay_s[ch.delay_ids] = ch.delay_s
        if len(ch.up) or len(ch.down):
            self.set_links_up([int(i) for i in ch.up], [int(i) for i in ch.down])
            self._applied_up = tl.up[k].copy()
        apply_s = time.perf_counter() - t0
        applied_lag_s = max(0.0, time.monotonic() - due) if due is not None else 0.0
        out_of_reach = self.control_step(k) if self.control_step is not None else []
        ctl_s, flow_mods, install_s = 0.0, 0, 0.0
        changed = bool(len(ch.up) or len(ch.down) or self.future_steps or len(ch.delay_ids))
        if in_outage:
            self._missed_controller |= changed
            changed = False
        elif self._missed_controller:
            changed, self._missed_controller = True, False
        if self.controller_request is not None and changed:
            t1 = time.perf_counter()
            msg = self._state_message(k)
            if out_of_reach:
                msg["out_of_reach"] = list(out_of_reach)
            reply = self.controller_request(msg)
            ctl_s = time.perf_counter() - t1
            flow_mods = int(reply.get("flow_mods", 0)) + int(reply.get("group_mods", 0))
            install_s = float(reply.get("install_s", 0.0))
        return StepRecord(k, float(tl.times_s[k]), len(ch.delay_ids), len(ch.up), len(ch.down),
                          apply_s, ctl_s, applied_lag_s, flow_mods, install_s, len(out_of_reach))

    def run(self, start_step: int = 1, on_step: Callable[[StepRecord], None] | None = None,
            start_unix: float | None = None, stop: threading.Event | None = None) -> list[StepRecord]:
        """Applies steps ``start_step..n-1`` at their wall times; returns the records.

        With ``stop``, returns early (before the next step) once it is set.

        Step ``start_step - 1`` is taken to be in force at ``start_unix`` (``time.time()``;
        default: now), so orbital time t maps to wall time
        ``start_unix + (t - times_s[start_step - 1]) / speedup``.
        """
        tl = self.timeline
        if self._applied_delay_s is None:
            self.initial_state()
        stop = stop or threading.Event()
        if start_unix is not None:
            wait = start_unix - time.time()
            if wait > 0 and stop.wait(wait):
                return self.records
        t_wall0 = time.monotonic()
        t_orb0 = float(tl.times_s[start_step - 1]) if start_step > 0 else float(tl.times_s[0])
        try:
            self._run_steps(start_step, tl, t_wall0, t_orb0, stop, on_step)
        finally:
            self._set_paused(False)          # the run ends inside an outage (or fails): resume
        return self.records

    def _run_steps(self, start_step, tl, t_wall0, t_orb0, stop, on_step) -> None:
        behind_warned = 0.0
        for k in range(start_step, tl.n_steps):
            target = t_wall0 + (float(tl.times_s[k]) - t_orb0) / self.speedup
            wait = target - time.monotonic()
            if stop.wait(max(wait, 0.0)):
                break
            self.check_alive()
            rec = self.apply_step(k, due=target)
            rec.done_lag_s = max(0.0, time.monotonic() - target)
            step_wall_s = (float(tl.times_s[k]) - float(tl.times_s[k - 1])) / self.speedup if k else 0.0
            if step_wall_s and rec.lag_s > step_wall_s and rec.lag_s > 2 * behind_warned:
                LOG.warning("clock is %.3f s behind the schedule at step %d (step is %.3f s wall)",
                            rec.lag_s, k, step_wall_s)
                behind_warned = rec.lag_s
            self.records.append(rec)
            if on_step:
                on_step(rec)
