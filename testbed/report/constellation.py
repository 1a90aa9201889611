"""Figure: a constellation snapshot on a longitude/latitude map.

Ground tracks over the measured window, the laser and ground links existing at the
snapshot step coloured (and thickened) by load -- the mean utilisation of one
algorithm over the run, the busier direction of each link -- compute satellites
(filled star: sunlit, hollow star: in eclipse), other satellites and ground stations,
with the Earth's shadow at the shell altitude shaded. The map frame and the
antimeridian-safe segments come from :mod:`topologies.plots`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from testbed.report.common import Context, FigureSpec, Skip, measured_window_s
from testbed.results.reader import ReportError
from testbed.report.style import load_colours, pyplot

NAME = "constellation"
TITLE = "Constellation snapshot"
MAX_TRACK_POINTS = 200
SHADOW_COLOUR = "#1f2a44"
DENSE_SATELLITES = 300   # above this many satellites, thinner links and smaller dots


def load_algorithm(ctx: Context) -> str | None:
    """The algorithm whose utilisation colours the links (option, else the first with data)."""
    if ctx.options.load_algorithm is not None:
        return ctx.options.load_algorithm
    return next(iter(ctx.run.available("link_util")), None)


def snapshot_step(ctx: Context) -> int:
    """The schedule step of the snapshot (ReportError if the chosen time is outside)."""
    from topologies.plots import step_at
    schedule = ctx.run.schedule
    if ctx.options.snapshot_t_s is not None:
        t_s = ctx.options.snapshot_t_s
    else:
        window = measured_window_s(ctx.run)
        t_s = (window[0] + window[1]) / 2 if window else float(schedule.times_s[schedule.n_steps // 2])
        t_s = float(np.clip(t_s, schedule.times_s[0], schedule.times_s[-1]))
    try:
        return step_at(schedule, t_s)
    except ValueError as err:
        raise ReportError(f"--snapshot-t-s: {err}") from None


def node_ids(schedule, values) -> np.ndarray:
    """Node ids from a column of ids or node names (-1 where unknown)."""
    series = pd.Series(values)
    numeric = pd.to_numeric(series, errors="coerce")
    by_name = dict(zip(schedule.nodes["name"].astype(str), schedule.nodes["node_id"]))
    named = series.astype(str).map(by_name)
    out = np.array(numeric.where(numeric.notna(), named).fillna(-1), dtype=np.int64)
    out[(out < 0) | (out >= schedule.n_nodes)] = -1
    return out


def link_load(ctx: Context, label: str | None) -> dict[tuple[int, int], float]:
    """{(a, b) with a < b: mean utilisation of the busier direction} for ``label``."""
    table = ctx.run.table(label, "link_util") if label is not None else None
    if table is None:
        return {}
    a, b = node_ids(ctx.run.schedule, table["a"]), node_ids(ctx.run.schedule, table["b"])
    ok = (a >= 0) & (b >= 0)
    frame = pd.DataFrame({"a": a[ok], "b": b[ok], "u": table["utilisation"].to_numpy(float)[ok]})
    directed = frame.groupby(["a", "b"])["u"].mean().reset_index()
    directed["lo"] = directed[["a", "b"]].min(axis=1)
    directed["hi"] = directed[["a", "b"]].max(axis=1)
    undirected = directed.groupby(["lo", "hi"])["u"].max()
    return {(int(lo), int(hi)): float(u) for (lo, hi), u in undirected.items()}


def _shadow(ax, schedule, step: int, sats: np.ndarray) -> None:
    from topologies.geodesy import geodetic_to_ecef_km
    from topologies.sun import satellites_sunlit, sun_ecef_km
    from topologies.timebase import Timebase
    alt_km = float(np.mean(schedule.positions.alt_km[step, sats]))
    grid_lon, grid_lat = np.meshgrid(np.linspace(-180, 180, 241), np.linspace(-90, 90, 121))
    points = geodetic_to_ecef_km(grid_lat, grid_lon, alt_km).reshape(1, -1, 3)
    sun = sun_ecef_km(Timebase(schedule.epoch, schedule.times_s[step:step + 1]))
    dark = ~satellites_sunlit(points, sun).reshape(grid_lat.shape)
    ax.contourf(grid_lon, grid_lat, dark.astype(float), levels=[0.5, 1.5], colors=[SHADOW_COLOUR],
                alpha=0.13)
    ax.plot([], [], color=SHADOW_COLOUR, alpha=0.25, lw=6, label=f"Earth's shadow at {alt_km:.0f} km")


def draw(ctx: Context):
    schedule = ctx.run.schedule
    if schedule is None:
        raise Skip(f"the schedule file ({ctx.run.manifest['schedule']}) is missing")
    import matplotlib
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from topologies.plots import map_segments   # antimeridian-safe lon/lat segments

    step = snapshot_step(ctx)
    label = load_algorithm(ctx)
    load = link_load(ctx, label)
    kinds = schedule.nodes["kind"].to_numpy()
    sats = np.flatnonzero(kinds != "ground")
    compute = np.flatnonzero(kinds == "compute")
    ground = np.flatnonzero(kinds == "ground")
    lat, lon = schedule.positions.lat_deg, schedule.positions.lon_deg

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.2), layout="constrained")
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.set_xticks(range(-180, 181, 60))
    ax.set_yticks(range(-90, 91, 30))
    ax.set_xlabel("longitude [deg]")
    ax.set_ylabel("latitude [deg]")

    if sats.size:
        _shadow(ax, schedule, step, sats)
        window = measured_window_s(ctx.run)
        times = schedule.times_s
        in_window = np.flatnonzero((times >= window[0] - schedule.step_s) & (times <= window[1] + schedule.step_s)) \
            if window else np.arange(schedule.n_steps)
        if in_window.size < 2:
            in_window = np.arange(schedule.n_steps)
        idx = in_window[::max(1, in_window.size // MAX_TRACK_POINTS)]
        if idx.size > 1:
            tl, ta = lon[idx][:, sats], lat[idx][:, sats]
            segs = map_segments(tl[:-1].ravel(), ta[:-1].ravel(), tl[1:].ravel(), ta[1:].ravel())
            ax.add_collection(LineCollection(segs, colors="0.75", linewidths=0.35, zorder=1))
            ax.plot([], [], color="0.75", lw=0.8, label="ground tracks")

    rows = schedule.links_at(step)
    a, b = rows["a"].to_numpy(), rows["b"].to_numpy()
    up = rows["up"].to_numpy(bool)
    gsl = (rows["kind"].astype(str) == "gsl").to_numpy()
    value = np.array([load.get((int(x), int(y)), np.nan) for x, y in zip(a, b)])
    has = np.isfinite(value) & up
    cmap, norm = load_colours(ctx.run)
    norm = norm or Normalize(0.0, 1.0)

    def segments(mask):
        return map_segments(lon[step, a[mask]], lat[step, a[mask]], lon[step, b[mask]], lat[step, b[mask]])

    for mask, ls in ((up & ~has, "solid"), (~up, "dotted")):
        if mask.any():
            ax.add_collection(LineCollection(segments(mask), colors="0.55", linewidths=0.5,
                                             linestyles=ls, zorder=2))
    dense = sats.size > DENSE_SATELLITES
    width_idle, width_extra = (0.25, 1.6) if dense else (0.7, 2.5)
    for mask, ls in ((has & ~gsl, "solid"), (has & gsl, "dashed")):
        if mask.any():
            # Busiest last, so they are drawn on top.
            order = np.flatnonzero(mask)[np.argsort(value[mask], kind="stable")]
            la, lb = a[order], b[order]
            v = value[order]
            # map_segments may split a link in two at the antimeridian: repeat its value per piece.
            wrap = np.abs(lon[step, lb] - lon[step, la]) > 180.0
            colours = np.r_[v[~wrap], v[wrap], v[wrap]]
            segs = map_segments(lon[step, la], lat[step, la], lon[step, lb], lat[step, lb])
            ax.add_collection(LineCollection(segs, array=colours, cmap=cmap, norm=norm, zorder=3,
                                             linewidths=width_idle + width_extra * np.clip(norm(colours), 0, 1),
                                             linestyles=ls))
    if (~up).any():
        ax.plot([], [], color="0.55", lw=0.6, ls=":", label="link acquiring")
    if (up & ~has).any():
        ax.plot([], [], color="0.55", lw=0.6, label="link, no utilisation data")
    if (has & gsl).any():
        ax.plot([], [], color="0.3", lw=1.0, ls="--", label="ground link")

    lit = schedule.sunlit[step]
    plain = np.setdiff1d(sats, compute)
    ax.scatter(lon[step, plain], lat[step, plain], s=1 if dense else 5, c="0.3", zorder=4, label="satellite")
    if compute.size:
        sunlit, dark = compute[lit[compute]], compute[~lit[compute]]
        ax.scatter(lon[step, sunlit], lat[step, sunlit], s=70, marker="*", c="#E69F00",
                   edgecolors="black", linewidths=0.5, zorder=5, label="compute satellite (sunlit)")
        ax.scatter(lon[step, dark], lat[step, dark], s=70, marker="*", facecolors="white",
                   edgecolors="black", linewidths=0.7, zorder=5, label="compute satellite (eclipse)")
    if ground.size:
        ax.scatter(lon[step, ground], lat[step, ground], s=40, marker="^", c="black", zorder=6,
                   label="ground station")
        for g in ground:
            ax.annotate(str(schedule.nodes["name"].iloc[g]), (lon[step, g], lat[step, g]),
                        xytext=(4, 4), textcoords="offset points", fontsize=7, zorder=6)
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    what = (f"mean utilisation under {label}" if load else "utilisation (none measured)")
    fig.colorbar(mappable, ax=ax, shrink=0.62, aspect=25,
                 label=f"{what}\n[fraction of scaled capacity, 0 to {norm.vmax:.3g}]")
    fig.legend(loc="outside lower center", ncol=4, frameon=False, fontsize=7)
    epoch = schedule.meta.get("epoch", "epoch")
    ax.set_title(f"{epoch} + {schedule.times_s[step]:.0f} s (step {step})")
    return fig


FIGURES = (FigureSpec(
    NAME, TITLE,
    "Links at the snapshot step coloured and thickened by mean utilisation (busier direction) "
    "under one algorithm; ground tracks over the measured window; compute satellites filled "
    "when sunlit, hollow in eclipse; shaded: the Earth's shadow at the shell altitude.",
    draw),)
