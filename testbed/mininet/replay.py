"""The orbit's clock in a background thread, and what a Mininet user asks of it.

:class:`ClockThread` runs :meth:`testbed.net.clock.Clock.run` beside the user's commands
(the Mininet CLI, a script using :func:`testbed.open_network`); :meth:`stop` ends it
before its next step, :meth:`join` waits for the schedule's end and re-raises what
failed in the thread. :class:`InstalledPaths` reads the controller's step log
(:mod:`controllers.steplog`) incrementally and keeps the host-to-host switch paths in
force.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from controllers import steplog


class ClockThread:
    """Replays ``clock`` from ``start_unix`` (Unix s; step 0 is in force until then)."""

    def __init__(self, clock, start_unix: float | None = None, on_step=None):
        self.clock = clock
        self.start_unix = time.time() if start_unix is None else start_unix
        self.on_step = on_step
        self.records: list = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clock", daemon=True)

    def start(self) -> "ClockThread":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.records = self.clock.run(on_step=self.on_step, start_unix=self.start_unix, stop=self._stop)
        except BaseException as e:  # noqa: BLE001 - re-raised by join()
            self.error = e

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Ends the replay before its next step (a step being applied finishes first)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def join(self) -> list:
        """Waits for the schedule's end; returns the step records or raises the thread's error."""
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self.records

    # ------------------------------------------------------------ orbital time
    def orbital_time_s(self, now_unix: float | None = None) -> float:
        """Orbital seconds since the schedule's epoch at ``now_unix`` (default now), within its window."""
        tl = self.clock.timeline
        now_unix = time.time() if now_unix is None else now_unix
        t_s = float(tl.times_s[0]) + (now_unix - self.start_unix) * self.clock.speedup
        return min(max(t_s, float(tl.times_s[0])), float(tl.times_s[-1]))

    def applied_step(self) -> int:
        """Index of the last schedule step the clock has applied (0: the initial state)."""
        recs = self.clock.records
        return recs[-1].step if recs else 0


class InstalledPaths:
    """Host-to-host switch paths as the controller last logged them (step log, read on demand)."""

    def __init__(self, log_path: Path):
        self.log_path = Path(log_path)
        self._offset = 0
        self._partial = ""
        self.paths: dict[tuple[int, int], tuple[int, ...]] = {}
        self.step: int | None = None
        self.t_s: float | None = None

    def refresh(self) -> None:
        try:
            with open(self.log_path) as f:
                f.seek(self._offset)
                text = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return
        text = self._partial + text
        lines = text.split("\n")
        self._partial = lines.pop()          # an unfinished last line waits for its end
        for line in lines:
            if not line:
                continue
            rec = json.loads(line)
            if rec.get("event") != "paths":
                continue
            for key, text_path in rec["paths"].items():
                self.paths[steplog.parse_pair_key(key)] = tuple(int(n) for n in text_path.split("-") if n)
            for key in rec.get("unreachable", []):
                self.paths.pop(steplog.parse_pair_key(key), None)
            self.step, self.t_s = rec.get("step"), rec.get("t_s")

    def between(self, src_node: int, dst_node: int) -> tuple[int, ...] | None:
        """Switch path from ``src_node`` to ``dst_node`` (node ids), None if the controller has none."""
        self.refresh()
        if src_node == dst_node:
            return (src_node,)
        return self.paths.get((src_node, dst_node))
