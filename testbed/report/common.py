"""What every figure module shares: the options, the drawing context and ``Skip``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .metrics import DEFAULT_METRICS
from .rundir import RunData
from .style import AlgoStyle, palette


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


def measured_window_s(run: RunData) -> tuple[float, float] | None:
    """(first, last) orbital time [s] in the clock table (else rtt, else link_util), or None."""
    for name in ("clock", "rtt", "link_util"):
        tables = run.available(name)
        if tables:
            return (min(float(t["t_s"].min()) for t in tables.values()),
                    max(float(t["t_s"].max()) for t in tables.values()))
    return None
