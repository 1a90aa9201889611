"""Figures drawn from a schedule: a ground-track map and one-way delays over time.

Both functions read only the :class:`Schedule` (so they work on a loaded
file) and write PNGs atomically (temporary file, then rename).  Maps use a
plain equirectangular longitude/latitude frame (no coastline data needed).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .geodesy import geodetic_to_ecef_km
from .schedule import Schedule
from .summary import link_delay_series_s, path_delay_series_s, resolve_node
from .sun import satellites_sunlit, sun_ecef_km
from .timebase import Timebase


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save_atomic(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fig.savefig(temp, format=path.suffix.lstrip(".") or "png", dpi=130,
                    bbox_inches="tight")
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()
    return path


def step_at(schedule: Schedule, t_s: float) -> int:
    """The step nearest to ``t_s`` (seconds since epoch); ValueError outside the window."""
    times = schedule.times_s
    if not times[0] - schedule.step_s / 2 <= t_s <= times[-1] + schedule.step_s / 2:
        raise ValueError(f"t = {t_s:g} s is outside the schedule (0..{times[-1]:g} s)")
    return int(np.argmin(np.abs(times - t_s)))


def map_segments(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Line segments (S, 2, 2) in lon/lat; antimeridian crossings drawn as two halves."""
    wrap = np.abs(lon2 - lon1) > 180.0
    seg = [np.stack([np.c_[lon1[~wrap], lat1[~wrap]], np.c_[lon2[~wrap], lat2[~wrap]]], 1)]
    if wrap.any():
        l1, l2 = lon1[wrap], lon2[wrap]
        shift = np.where(l2 > l1, -360.0, 360.0)
        seg.append(np.stack([np.c_[l1, lat1[wrap]], np.c_[l2 + shift, lat2[wrap]]], 1))
        seg.append(np.stack([np.c_[l1 - shift, lat1[wrap]], np.c_[l2, lat2[wrap]]], 1))
    return np.concatenate(seg)


def plot_map(schedule: Schedule, t_s: float, path: str | os.PathLike,
             max_track_points: int = 200) -> Path:
    """Ground tracks over the window, links at time ``t_s``, compute satellites
    and ground stations marked, Earth's shadow at the shell altitude shaded."""
    plt = _pyplot()
    from matplotlib.collections import LineCollection

    step = step_at(schedule, t_s)
    kinds = schedule.nodes["kind"].to_numpy()
    sats = np.flatnonzero(kinds != "ground")
    compute = np.flatnonzero(kinds == "compute")
    ground = np.flatnonzero(kinds == "ground")
    lat, lon = schedule.positions.lat_deg, schedule.positions.lon_deg

    fig, ax = plt.subplots(figsize=(13, 6.8))
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.set_xticks(range(-180, 181, 30))
    ax.set_yticks(range(-90, 91, 30))
    ax.grid(color="0.85", lw=0.5)
    ax.set_xlabel("longitude [deg]")
    ax.set_ylabel("latitude [deg]")

    # Shadow region at the mean satellite altitude.
    if sats.size:
        alt_km = float(np.mean(schedule.positions.alt_km[step, sats]))
        grid_lon, grid_lat = np.meshgrid(np.linspace(-180, 180, 241),
                                         np.linspace(-90, 90, 121))
        points = geodetic_to_ecef_km(grid_lat, grid_lon, alt_km).reshape(1, -1, 3)
        sun = sun_ecef_km(Timebase(schedule.epoch, schedule.times_s[step:step + 1]))
        dark = ~satellites_sunlit(points, sun).reshape(grid_lat.shape)
        ax.contourf(grid_lon, grid_lat, dark.astype(float), levels=[0.5, 1.5],
                    colors=["#1f2a44"], alpha=0.18)
        ax.plot([], [], color="#1f2a44", alpha=0.3, lw=6,
                label=f"Earth's shadow at {alt_km:.0f} km")

        # Ground tracks (subsampled in time).
        stride = max(1, schedule.n_steps // max_track_points)
        track_lon = lon[::stride][:, sats]
        track_lat = lat[::stride][:, sats]
        if track_lon.shape[0] > 1:
            segs = map_segments(track_lon[:-1].ravel(), track_lat[:-1].ravel(),
                             track_lon[1:].ravel(), track_lat[1:].ravel())
            ax.add_collection(LineCollection(segs, colors="0.7", linewidths=0.4, zorder=1))

    rows = schedule.links_at(step)
    for kind, up, style in (("isl", True, dict(colors="tab:blue", linewidths=0.5)),
                            ("isl", False, dict(colors="tab:orange", linewidths=0.9,
                                                linestyles="dashed")),
                            ("gsl", True, dict(colors="tab:green", linewidths=1.0)),
                            ("gsl", False, dict(colors="tab:olive", linewidths=1.0,
                                                linestyles="dashed"))):
        sel = rows[(rows["kind"] == kind).to_numpy() & (rows["up"].to_numpy() == up)]
        if len(sel):
            a, b = sel["a"].to_numpy(), sel["b"].to_numpy()
            segs = map_segments(lon[step, a], lat[step, a], lon[step, b], lat[step, b])
            ax.add_collection(LineCollection(segs, zorder=2, **style))
            label = f"{kind.upper()} {'up' if up else 'acquiring'} ({len(sel)})"
            ax.plot([], [], color=style["colors"], ls="--" if not up else "-", label=label)

    lit = schedule.sunlit[step]
    plain = np.setdiff1d(sats, compute)
    ax.scatter(lon[step, plain[lit[plain]]], lat[step, plain[lit[plain]]], s=4, c="0.25",
               zorder=3, label="satellite (sunlit)")
    ax.scatter(lon[step, plain[~lit[plain]]], lat[step, plain[~lit[plain]]], s=5,
               facecolors="none", edgecolors="0.25", linewidths=0.5, zorder=3,
               label="satellite (eclipse)")
    if compute.size:
        ax.scatter(lon[step, compute], lat[step, compute], s=40, marker="*", c="tab:red",
                   edgecolors="k", linewidths=0.3, zorder=4, label="compute satellite")
    if ground.size:
        ax.scatter(lon[step, ground], lat[step, ground], s=45, marker="^", c="k", zorder=5,
                   label="ground station")
        for g in ground:
            ax.annotate(schedule.nodes["name"].iloc[g], (lon[step, g], lat[step, g]),
                        xytext=(4, 4), textcoords="offset points", fontsize=8, zorder=5)
    ax.set_title(f"{schedule.meta.get('epoch', '')} + {schedule.times_s[step]:.1f} s "
                 f"(step {step})")
    ax.legend(loc="lower left", fontsize=7, framealpha=0.85, ncol=2)
    try:
        return _save_atomic(fig, path)
    finally:
        plt.close(fig)


def plot_delays(schedule: Schedule, pairs: list[tuple[str, str, str]],
                path: str | os.PathLike, max_points: int = 400) -> Path:
    """One-way delay over time.

    ``pairs`` holds ``(mode, node_a, node_b)`` with mode ``"link"`` (that
    link's own delay; gaps where it is not up) or ``"path"`` (shortest path
    over usable links, ground stations as endpoints only; at most
    ``max_points`` evenly spaced steps).  Nodes are names or ids.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = schedule.nodes["name"].astype(str).tolist()
    steps = np.unique(np.linspace(0, schedule.n_steps - 1,
                                  min(max_points, schedule.n_steps)).round().astype(int))
    for mode, ref_a, ref_b in pairs:
        a, b = resolve_node(schedule, ref_a), resolve_node(schedule, ref_b)
        if mode == "link":
            delay = link_delay_series_s(schedule, a, b)
            t = schedule.times_s
            label = f"link {names[a]} - {names[b]}"
        else:
            delay = path_delay_series_s(schedule, a, b, steps)
            t = schedule.times_s[steps]
            label = f"path {names[a]} -> {names[b]}"
        ax.plot(t, delay * 1e3, lw=1.2, label=label)
    ax.set_xlabel(f"time since {schedule.meta.get('epoch', 'epoch')} [s]")
    ax.set_ylabel("one-way delay [ms]")
    ax.grid(color="0.9")
    ax.legend(fontsize=8)
    try:
        return _save_atomic(fig, path)
    finally:
        plt.close(fig)
