"""Confidence bands and bars over trials for the cross-algorithm figures.

Same method as :mod:`.stats`: at each point (time bin, CDF grid value, bar) the trial
values are the replicates; the line is their mean and the band a two-sided 95 %
Student-t interval, drawn only where at least :data:`stats.MIN_TRIALS` trials have a
value there.
"""

from __future__ import annotations

import numpy as np

from testbed.report.stats import CONFIDENCE, MIN_TRIALS


def across_trials(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and interval per column of ``rows`` (shape (n_trials, n_points), NaN = no
    value): (mean, low, high), each (n_points,); low/high NaN where < MIN_TRIALS values."""
    rows = np.atleast_2d(np.asarray(rows, float))
    ok = np.isfinite(rows)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(rows, axis=0) / np.maximum(n, 1), np.nan)
        if not (n >= MIN_TRIALS).any():
            return mean, np.full(mean.shape, np.nan), np.full(mean.shape, np.nan)
        from scipy import stats
        dev = np.where(ok, rows - mean, 0.0)
        sd = np.sqrt((dev ** 2).sum(axis=0) / np.maximum(n - 1, 1))
        t = stats.t.ppf(0.5 + CONFIDENCE / 2, np.maximum(n - 1, 1))
        half = np.where(n >= MIN_TRIALS, t * sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, mean - half, mean + half


def binned_mean(t_s: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of ``values`` in each bin of ``edges`` (len(edges) - 1 bins; NaN where empty)."""
    t_s, values = np.asarray(t_s, float), np.asarray(values, float)
    keep = np.isfinite(values) & (t_s >= edges[0]) & (t_s <= edges[-1])
    idx = np.clip(np.searchsorted(edges, t_s[keep], side="right") - 1, 0, len(edges) - 2)
    total = np.bincount(idx, values[keep], minlength=len(edges) - 1)
    count = np.bincount(idx, minlength=len(edges) - 1)
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def ecdf_on(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Fraction of ``values`` <= each grid point (NaN if there are no values)."""
    x = np.sort(np.asarray(values, float)[np.isfinite(values)])
    if x.size == 0:
        return np.full(grid.shape, np.nan)
    return np.searchsorted(x, grid, side="right") / x.size


def draw_band(ax, x, mean, low, high, style, label=None, step: str | None = None) -> None:
    """The mean line and, where it exists, the shaded interval in the algorithm's colour."""
    kw = {"where": step} if step else {}
    (ax.step if step else ax.plot)(x, mean, label=label, **style.line(), **kw)
    if np.isfinite(low).any():
        ax.fill_between(x, low, high, color=style.colour, alpha=0.2, linewidth=0,
                        step=step if step else None)


def band_note(n_trials: int) -> str:
    """What the bands show, for a title or caption."""
    if n_trials >= MIN_TRIALS:
        return f"mean of {n_trials} trials, shaded or bars: 95 % CI"
    return f"{n_trials} trial{'s' if n_trials != 1 else ''}: no confidence interval, needs >= {MIN_TRIALS}"
