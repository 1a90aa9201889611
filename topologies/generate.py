"""``generate(config) -> Schedule``: the whole pipeline, one stage after another.

constellation (Walker shells or TLE) -> SGP4 positions (T, N, 3) -> geodetic
coordinates and sunlight -> ISL policy -> GSL policy -> link table with
acquisition times -> invariant checks -> Schedule.  Pure: no files are
written here (see :meth:`Schedule.save`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DEFAULT_EPOCH_ISO, ScheduleConfig
from .constants import (EARTH_RADIUS_KM, FORMAT_NAME, FORMAT_VERSION, GENERATOR_VERSION,
                        constants_dict)
from .errors import TopologyError
from .cluster import clusters_ecef_km, laser_limits
from .clusterlinks import gateway_links, intra_links
from .fleet import Fleet, fleet_from_shells
from .geodesy import ecef_to_geodetic, geodetic_to_ecef_km, up_unit_vector
from .gsl import GslContext, make_gsl_policy
from .isl import IslContext, make_isl_policy
from .linktable import assemble_links, check_link_table
from .propagate import propagate_ecef_km
from .schedule import Positions, Schedule
from .sun import ground_daylight, satellites_sunlit, sun_ecef_km
from .timebase import Timebase, format_epoch, parse_epoch
from .tle import load_tle
from .usage import laser_usage


class _Progress:
    """Adapts ``progress`` (False, True for a tqdm bar, or a callable)."""

    def __init__(self, progress, total: int):
        self.bar = None
        self.callback = None
        if progress is True:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="step", desc="topology", leave=False)
        elif callable(progress):
            self.callback = progress

    def stage(self, name: str) -> Callable[[int], None] | None:
        if self.bar is not None:
            self.bar.set_description(name)
            return self.bar.update
        if self.callback is not None:
            return lambda n: self.callback(name, n)
        return None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def build_fleet(config: ScheduleConfig) -> tuple[Fleet, object, str]:
    """The fleet, the resolved epoch and a hash of the constellation input."""
    if config.tle_path is not None:
        tle = load_tle(config.tle_path, epoch=config.epoch,
                       include_unplaced=config.tle_include_unplaced)
        if tle.fleet.n_sats == 0:
            raise TopologyError(f"{config.tle_path}: no satellite could be placed; "
                                "set tle_include_unplaced = true to keep them", "tle_path")
        digest = hashlib.sha256(Path(config.tle_path).read_bytes()).hexdigest()
        return tle.fleet, tle.epoch, "tle-sha256:" + digest
    epoch = config.epoch or parse_epoch(DEFAULT_EPOCH_ISO)
    return fleet_from_shells(config.walker_shells(), epoch), epoch, "walker"


def input_hash(config: ScheduleConfig, constellation_hash: str) -> str:
    """sha256 over the canonical config and the TLE file contents.

    The TLE file's path is left out (its contents count), so moving the file
    does not change the hash.
    """
    data = config.to_dict()
    data["tle_path"] = None
    text = json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n" + constellation_hash
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _versions() -> dict:
    import sgp4
    import skyfield
    return {"numpy": np.__version__, "sgp4": sgp4.__version__,
            "skyfield": skyfield.__version__}


def generate(config: ScheduleConfig, *, progress=False,
             timings_s: dict | None = None) -> Schedule:
    """Compute the schedule described by ``config``.

    Parameters
    ----------
    config : ScheduleConfig
    progress : bool or callable
        ``True`` shows a tqdm bar on stderr; a callable is called as
        ``progress(stage_name, n_steps_done)``.
    timings_s : dict, optional
        Filled with wall time per stage [s]: ``propagation`` (SGP4, geodetic,
        Sun), ``isl``, ``gsl``, ``links`` (table assembly and checks), and the
        same stages' process CPU time as ``cpu_<stage>``.

    Raises
    ------
    TopologyError
        Bad inputs (e.g. a TLE file), or a violated physical invariant.
    """
    if not isinstance(config, ScheduleConfig):
        raise TypeError(f"config must be a ScheduleConfig, got {type(config).__name__}")
    clock, cpu_clock = time.perf_counter(), time.process_time()
    timings = timings_s if timings_s is not None else {}

    def lap(name: str) -> None:
        nonlocal clock, cpu_clock
        now, cpu_now = time.perf_counter(), time.process_time()
        timings[name] = timings.get(name, 0.0) + now - clock
        timings["cpu_" + name] = timings.get("cpu_" + name, 0.0) + cpu_now - cpu_clock
        clock, cpu_clock = now, cpu_now

    fleet, epoch, constellation_hash = build_fleet(config)
    n_fleet = fleet.n_sats                  # constellation satellites: node ids 0..n_fleet-1
    n_sats = n_fleet + config.n_cluster_members     # then cluster members
    n_steps = config.n_steps
    times_s = np.arange(n_steps) * config.step_s
    timebase = Timebase(epoch, times_s)
    stations = config.ground_stations
    n_ground = len(stations)
    n_nodes = n_sats + n_ground
    member_names = [name for cluster in config.clusters for name in cluster.member_names()]
    names = list(fleet.names) + member_names + [s[0] for s in stations]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise TopologyError(f"name {dup!r} is used twice (satellite, cluster member or "
                            "ground station)", "ground_stations")
    compute_ids = np.concatenate([
        config.compute.select(fleet) if config.compute is not None else np.zeros(0, np.int64),
        np.arange(n_fleet, n_sats, dtype=np.int64)])
    bar = _Progress(progress, total=n_steps * (3 if n_ground else 2))
    try:
        # --- positions: satellites then ground stations, (T, n_nodes, 3)
        ecef = np.empty((n_steps, n_nodes, 3))
        info: dict = {}
        propagate_ecef_km(fleet, timebase, progress=bar.stage("propagation"), info=info,
                          out=ecef[:, :n_fleet], earth_rotation=config.earth_rotation)
        cluster_rows = clusters_ecef_km(config.clusters, timebase, config.earth_rotation,
                                        ecef[:, n_fleet:n_sats])
        lat = np.empty((n_steps, n_nodes))
        lon = np.empty((n_steps, n_nodes))
        alt = np.empty((n_steps, n_nodes))
        for lo in range(0, n_steps, 64):      # chunks keep the temporaries in cache
            hi = min(lo + 64, n_steps)
            lat[lo:hi, :n_sats], lon[lo:hi, :n_sats], alt[lo:hi, :n_sats] = \
                ecef_to_geodetic(ecef[lo:hi, :n_sats])
        sat_alt = alt[:, :n_sats]      # the ground columns are not filled yet
        if n_sats and not (np.isfinite(sat_alt).all() and sat_alt.min() > 0.0):
            raise TopologyError("a satellite is below the Earth's surface or not finite "
                                "(decayed orbit?)")
        ground_lat = np.array([s[1] for s in stations], float)
        ground_lon = np.array([(s[2] + 180.0) % 360.0 - 180.0 for s in stations], float)
        ground_alt = np.array([s[3] for s in stations], float) / 1000.0
        ground_ecef = geodetic_to_ecef_km(ground_lat, ground_lon, ground_alt).reshape(n_ground, 3)
        ground_up = up_unit_vector(ground_lat, ground_lon).reshape(n_ground, 3)
        ecef[:, n_sats:] = ground_ecef[None]
        lat[:, n_sats:], lon[:, n_sats:], alt[:, n_sats:] = ground_lat, ground_lon, ground_alt
        sun = sun_ecef_km(timebase)
        sunlit = np.empty((n_steps, n_nodes), dtype=bool)
        sunlit[:, :n_sats] = satellites_sunlit(ecef[:, :n_sats], sun)
        sunlit[:, n_sats:] = ground_daylight(ground_up, ground_ecef, sun)
        lap("propagation")

        # --- links
        grazing_radius_km = EARTH_RADIUS_KM + config.grazing_margin_km
        isl_ctx = IslContext(fleet=fleet, ecef_km=ecef[:, :n_fleet], lat_deg=lat[:, :n_fleet],
                             times_s=times_s, lasers_per_sat=config.lasers_per_sat,
                             max_range_km=config.max_range_km,
                             grazing_radius_km=grazing_radius_km,
                             progress=bar.stage("laser links"))
        isl = make_isl_policy(config.isl_policy, config.isl_params)(isl_ctx)
        lap("isl")
        gsl_chunk = max(1, int(2_000_000 // max(1, n_ground * n_sats)))
        gsl_ctx = GslContext(sat_ecef_km=ecef[:, :n_sats], ground_ecef_km=ground_ecef,
                             ground_up=ground_up,
                             min_elevation_deg=config.gsl_min_elevation_deg,
                             max_range_km=config.gsl_max_range_km,
                             step_s=config.step_s,
                             first_ground_id=n_sats, chunk_steps=gsl_chunk,
                             progress=bar.stage("ground links") if n_ground else None)
        gsl = make_gsl_policy(config.gsl_policy, config.gsl_params)(gsl_ctx, n_steps)
        lap("gsl")
        sat_capacity = np.where(np.isnan(fleet.capacity_bps), config.capacity_bps,
                                fleet.capacity_bps)
        isl_capacity = np.minimum(sat_capacity[isl.pairs[:, 0]], sat_capacity[isl.pairs[:, 1]])
        gsl_capacity = np.full(len(gsl.pairs), config.gsl_capacity_bps or config.capacity_bps)
        intra, intra_capacity = intra_links(config.clusters, n_fleet, ecef)
        gateway, gateway_capacity = gateway_links(
            config.clusters, n_fleet, ecef, n_fleet, fleet.radius_km, isl, config.lasers_per_sat,
            config.max_range_km, grazing_radius_km, sat_capacity)
        links = assemble_links([isl, intra, gateway, gsl], ["isl", "isl", "isl", "gsl"],
                               [isl_capacity, intra_capacity, gateway_capacity, gsl_capacity],
                               [config.acquisition_s, config.acquisition_s, config.acquisition_s,
                                config.gsl_acquisition_s], ecef, times_s)
        check_link_table(links, n_nodes, n_steps, n_sats,
                         laser_limits(n_nodes, config.lasers_per_sat, cluster_rows, n_fleet))
        _check_isl_range(links, isl_ctx, n_fleet)
        lap("links")
    finally:
        bar.close()

    kind = np.array(["satellite"] * n_sats + ["ground"] * n_ground, dtype=object)
    kind[compute_ids] = "compute"
    nodes = pd.DataFrame({
        "node_id": np.arange(n_nodes, dtype=np.int64),
        "name": names,
        "kind": kind.astype(str),
        "shell": np.r_[fleet.shell, np.full(n_sats - n_fleet + n_ground, -1)].astype(np.int64),
        "plane": np.r_[fleet.plane, np.full(n_sats - n_fleet + n_ground, -1)].astype(np.int64),
        "slot": np.r_[fleet.slot, np.full(n_sats - n_fleet + n_ground, -1)].astype(np.int64),
    })
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "generator": "topologies",
        "generator_version": GENERATOR_VERSION,
        "epoch": format_epoch(epoch),
        "step_s": config.step_s,
        "n_steps": n_steps,
        "duration_s": n_steps * config.step_s,
        "time_scale": "times_s are elapsed SI seconds since epoch (UTC)",
        "earth_rotation": config.earth_rotation,
        "n_satellites": n_sats,
        "n_compute": int(compute_ids.size),
        "n_ground": n_ground,
        "lasers_per_sat": config.lasers_per_sat,
        "max_range_km": config.max_range_km if config.max_range_km is not None
        else "derived from line of sight per pair",
        "grazing_radius_km": grazing_radius_km,
        "constants": constants_dict(),
        "input_hash": input_hash(config, constellation_hash),
        "config": config.to_dict(),
        "shells": [{"index": i, "name": name, "wraps": bool(w)}
                   for i, (name, w) in enumerate(zip(fleet.shell_names, fleet.shell_wraps))],
        "placement": fleet.placement,
        "clusters": [{**row, "first_node_id": n_fleet + row["first_index"]}
                     for row in cluster_rows],
        "laser_usage": laser_usage(isl.pairs, isl.mask[0] if n_steps else
                                   np.zeros(len(isl.pairs), bool), n_fleet,
                                   config.lasers_per_sat, isl.usage),
        "propagation": info,
        "versions": _versions(),
    }
    return Schedule(nodes=nodes, times_s=times_s, epoch=epoch, step_s=config.step_s,
                    positions=Positions(ecef, lat, lon, alt), sunlit=sunlit, links=links,
                    meta=meta)


def _check_isl_range(links: pd.DataFrame, ctx: IslContext, n_fleet: int) -> None:
    """Raise if any laser link between constellation satellites is longer than its
    range limit (cluster links are range-checked where they are chosen)."""
    isl = (links["kind"] == "isl").to_numpy() & (links["b"].to_numpy() < n_fleet)
    if not isl.any():
        return
    a = links["a"].to_numpy()[isl]
    b = links["b"].to_numpy()[isl]
    limit = ctx.max_range_for(a, b)
    distance = links["distance_km"].to_numpy()[isl]
    if np.any(distance > limit + 1e-6):
        i = int(np.argmax(distance - limit))
        raise TopologyError(f"laser link {a[i]}-{b[i]} is {distance[i]:.1f} km long, above "
                            f"its maximum range {limit[i]:.1f} km (policy bug)")
