"""Byte counters -> rates (pure; time is a parameter, never read from a clock here).

Switches report cumulative byte counters (per port, per flow entry). A rate needs two
readings of the same counter: :class:`CounterRates` keeps the last reading of each and
turns the next one into bit/s. A reading taken too long after the previous one (the
switch was not polled meanwhile) is only a new baseline, never a rate averaged over an
unknown stretch.

Resolution: a rate is ``8 * delta_bytes / delta_t_s``; its resolution is one byte per
polling interval (16 bit/s at a 0.5 s interval), and ``delta_t_s`` is the controller's
receive-time difference of the two replies (monotonic clock), not the switch's own
sampling time, so a reply delayed by ``d`` s skews one rate by ``d / interval``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

__all__ = ["UTILISATION_EPSILON", "CounterRates", "LoadUpdate"]

#: Utilisation changes (fraction of link capacity) smaller than this are not news.
UTILISATION_EPSILON = 0.01


@dataclass
class CounterRates:
    """Rates of cumulative byte counters from successive readings.

    Parameters
    ----------
    max_gap_s : float
        Longest time between two readings that still gives a rate, s.
    """

    max_gap_s: float
    last: dict[Hashable, tuple[float, int]] = field(default_factory=dict)   # key -> (t_s, bytes)

    def rate_bps(self, key: Hashable, now_s: float, byte_count: int) -> float | None:
        """Records a reading of counter ``key`` at ``now_s`` (s); returns its rate in bit/s
        since the previous reading, or None if there is none within ``max_gap_s``.

        A counter that went backwards (reset, entry replaced) gives 0, not a negative rate.
        """
        prev = self.last.get(key)
        self.last[key] = (now_s, byte_count)
        if prev is None or not 0 < now_s - prev[0] <= self.max_gap_s:
            return None
        return max(0.0, (byte_count - prev[1]) * 8 / (now_s - prev[0]))


@dataclass(frozen=True)
class LoadUpdate:
    """What a port-counter reply changed.

    ``changed``: some link's utilisation moved by more than :data:`UTILISATION_EPSILON`;
    ``rerouted``: the routes changed because of it (the new table must be pushed).
    """

    changed: bool = False
    rerouted: bool = False
