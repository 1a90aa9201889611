"""What every figure module shares: the options, the drawing context and ``Skip``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from testbed.report.metrics import DEFAULT_METRICS
from testbed.results.reader import RunData
from testbed.report.style import AlgoStyle, palette

if TYPE_CHECKING:
    import numpy as np


class Skip(Exception):
    """A figure cannot be drawn from this run's files; the message says why (for report.md)."""


@dataclass(frozen=True)
class FigureSpec:
    """One figure: file stem in plots/, title and caption in report.md, and the function
    ``draw(ctx) -> matplotlib Figure`` that raises :class:`Skip` when data is missing."""

    name: str
    title: str
    caption: str
    draw: Callable[["Context"], Any]


@dataclass(frozen=True)
class ReportOptions:
    """Choices a reader of the report can make (all optional).

    Attributes
    ----------
    pairs : tuple of (src, dst) host names
        RTT pairs to plot; default: up to ``max_pairs`` chosen by :func:`rtt.choose_pairs`.
    max_pairs : int
    load_algorithm : str or None
        Whose mean link utilisation colours the constellation snapshot (default: the first).
    snapshot_t_s : float or None
        Orbital time of the snapshot [s since the schedule epoch]; default: the middle of
        the measured window.
    metrics : tuple of str
        Keys of :data:`metrics.METRICS` in the ranking table.
    max_heatmap_links : int
        At most this many directed links (rows) in the utilisation heat map.
    """

    pairs: tuple[tuple[str, str], ...] = ()
    max_pairs: int = 4
    load_algorithm: str | None = None
    snapshot_t_s: float | None = None
    metrics: tuple[str, ...] = DEFAULT_METRICS
    max_heatmap_links: int = 120


@dataclass(frozen=True)
class Context:
    run: RunData
    options: ReportOptions = ReportOptions()
    styles: dict[str, AlgoStyle] = field(default_factory=dict)

    @classmethod
    def of(cls, run: RunData, options: ReportOptions | None = None) -> "Context":
        return cls(run, options or ReportOptions(), palette(run.algorithms))


def time_label(run: RunData) -> str:
    epoch = run.manifest.get("epoch") or (run.schedule.meta.get("epoch") if run.schedule is not None else None)
    return f"orbital time since {epoch} [s]" if epoch else "orbital time since the schedule epoch [s]"


def window_s(run: RunData) -> tuple[float, float]:
    """The replayed window in orbital time [s]: from the first step of the clock table to
    one step after its last (else the measured window, else the schedule's span)."""
    step_s = float(run.manifest.get("step_s") or (run.schedule.step_s if run.schedule is not None else 1.0))
    clock = run.available("clock")
    if clock:
        return (min(float(t["t_s"].min()) for t in clock.values()),
                max(float(t["t_s"].max()) for t in clock.values()) + step_s)
    measured = measured_window_s(run)
    if measured is not None:
        return measured[0], max(measured[1], measured[0] + step_s)
    if run.schedule is not None:
        return float(run.schedule.times_s[0]), float(run.schedule.times_s[-1]) + step_s
    return 0.0, step_s


def bin_edges_s(run: RunData, max_bins: int = 400) -> "np.ndarray":
    """Time-bin edges [s] over :func:`window_s`: one bin per schedule step (fewer, wider
    bins when there would be more than ``max_bins``)."""
    import numpy as np
    t0, t1 = window_s(run)
    step_s = float(run.manifest.get("step_s") or (run.schedule.step_s if run.schedule is not None else 1.0))
    n = max(1, min(max_bins, int(np.ceil((t1 - t0) / step_s - 1e-9))))
    return np.linspace(t0, t0 + n * max(step_s, (t1 - t0) / n), n + 1)


def measured_window_s(run: RunData) -> tuple[float, float] | None:
    """(first, last) orbital time [s] in the clock table (else rtt, else link_util), or None."""
    for name in ("clock", "rtt", "link_util"):
        tables = run.available(name)
        if tables:
            return (min(float(t["t_s"].min()) for t in tables.values()),
                    max(float(t["t_s"].max()) for t in tables.values()))
    return None
