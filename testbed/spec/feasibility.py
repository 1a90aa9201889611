"""Can ``testbed run`` do what a (well-formed) spec asks? Checked by ``testbed check`` too.

Each rule rejects, with the key path to change, a spec that would otherwise pass
``check`` and fail (or hang, or produce nonsense) only in ``run``:

- names too long to be folder names (``experiment.name``, algorithm and workload labels);
- an output folder that is a file, not writable, or on a virtual file system;
- an epoch whose replay window lies outside the Sun ephemeris (de421, 1899-2053): the
  same code the schedule generator uses is asked for the Sun at both ends;
- a schedule too large for this machine's memory (measured peak of schedule generation,
  :data:`BYTES_PER_NODE_STEP`, against MemAvailable);
- a replay step shorter than :data:`MIN_STEP_WALL_S` of wall time (``speedup`` too high),
  or a replay longer than :data:`MAX_WALL_S` (both in wall time: ``time_dilation`` stretches them);
- emulated link rates below :data:`MIN_LINK_RATE_BPS`, background rates below
  :data:`MIN_FLOW_RATE_BPS`;
- workloads whose bytes cannot cross the links within the agents' time limit, by a lower
  bound on each rank's transfer time (no expansion: a 1e23-byte job is rejected at once).
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from pathlib import Path

from testbed.net.dilation import wall_s as dilated_s, wall_speedup

#: Measured peak memory of schedule generation per (step x node), bytes: 224-245 B on
#: test4x4/test8x8 with 40,000-1.3 M node-steps (ru_maxrss); 300 B leaves room for the run's
#: own copies (timeline, geometric reference).
BYTES_PER_NODE_STEP = 300
BASE_BYTES = 400e6                 # the run's Python process before any schedule (~135 MB measured) and slack
#: The clock applies a step (a netlink batch, then a controller round trip) in milliseconds;
#: steps closer than this in wall time only pile up lag.
MIN_STEP_WALL_S = 0.01
MAX_WALL_S = 7 * 86400.0           # a replay of more than a week of wall time is a typo
#: Below this a 1514-byte frame takes over 120 ms to serialise, more than any LEO propagation delay.
MIN_LINK_RATE_BPS = 100e3
#: iperf3 takes whole bits per second, and 0 means "unlimited".
MIN_FLOW_RATE_BPS = 1000.0
#: At most this many links leave a satellite (laser terminals plus a ground link): the bound
#: on how fast one rank can send, for the transfer-time lower bound.
MAX_LINKS_PER_NODE = 8
MAX_NAME_BYTES = 128               # folder names: NAME_MAX is 255 bytes, and a run id and files follow
VIRTUAL_FS = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs",
              "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "efivarfs", "binfmt_misc"}


def agent_timeout_s(wall_s: float) -> float:
    """How long a run waits for a workload's agents: 120 s or four replay lengths."""
    return max(120.0, 4 * wall_s)


def problems(spec) -> list[tuple[str, str]]:
    """(key path, message) for everything ``run`` cannot do; empty if it can."""
    out: list[tuple[str, str]] = []
    for rule in RULES:
        out += rule(spec)
    return out


def _names(spec) -> list[tuple[str, str]]:
    out = []
    items = [("experiment.name", spec.name)] + [(f"algorithms[{i}].label", a.label) for i, a in enumerate(spec.algorithms)]
    items += [(f"workloads[{i}].label", w.label) for i, w in enumerate(spec.workloads)]
    for where, name in items:
        if len(name.encode()) > MAX_NAME_BYTES:
            out.append((where, f"{len(name.encode())} bytes long; at most {MAX_NAME_BYTES} (it becomes a folder name)"))
    return out


def _fs_type(path: Path) -> str | None:
    """File system type of the mount holding ``path`` (from /proc/self/mounts)."""
    best, fstype = "", None
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mnt = parts[1].replace("\\040", " ")
        if (str(path) == mnt or str(path).startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best, fstype = mnt, parts[2]
    return fstype


def _output(spec) -> list[tuple[str, str]]:
    folder = Path(spec.output_dir)
    existing = next((a for a in [folder, *folder.parents] if os.path.lexists(a)), None)
    if existing is None:
        return []
    if not existing.is_dir():
        return [("experiment.output_dir", f"{existing} exists and is not a folder")]
    fstype = _fs_type(existing.resolve())
    if fstype in VIRTUAL_FS:
        return [("experiment.output_dir", f"{existing} is on the virtual file system {fstype}; results cannot be written there")]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [("experiment.output_dir", f"{existing} is not writable by this user")]
    return []


def _epoch(spec) -> list[tuple[str, str]]:
    from topologies import TopologyError
    from topologies.config import DEFAULT_EPOCH_ISO
    from topologies.sun import sun_ecef_km
    from topologies.timebase import Timebase, parse_epoch
    cfg = spec.topology
    if cfg.epoch is None and cfg.tle_path is not None:
        return []          # the element sets' own epoch: real orbits, inside the ephemeris
    epoch = cfg.epoch or parse_epoch(DEFAULT_EPOCH_ISO)
    try:
        epoch + timedelta(seconds=float(cfg.duration_s))      # OverflowError past year 9999
        sun_ecef_km(Timebase(epoch, [0.0, float(cfg.duration_s)]))
    except (TopologyError, OverflowError, ValueError) as err:
        shown = f"{epoch:%Y-%m-%dT%H:%M:%SZ}"
        why = getattr(err, "problem", None) or str(err)
        return [("time.epoch", f"{shown} + time.duration_s is outside the Sun ephemeris the schedule needs: {why}")]
    return []


def _mem_available_bytes() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _memory(spec) -> list[tuple[str, str]]:
    cfg = spec.topology
    n_nodes = cfg.expected_satellites() + len(cfg.ground_stations)
    need = BASE_BYTES + BYTES_PER_NODE_STEP * cfg.n_steps * n_nodes
    have = _mem_available_bytes()
    if have is None or need <= have:
        return []
    return [("time.step_s", f"{cfg.n_steps} steps x {n_nodes} nodes need about {need / 1e9:.1f} GB "
                            f"({BYTES_PER_NODE_STEP} B per node-step), more than the {have / 1e9:.1f} GB this "
                            f"machine has available; use a longer step_s or a shorter duration_s")]


def _clock(spec) -> list[tuple[str, str]]:
    cfg = spec.topology
    per_wall_s = wall_speedup(spec.speedup, spec.time_dilation)     # orbital s per wall s
    step_wall_s = float(cfg.step_s) / per_wall_s
    wall_s = float(cfg.duration_s) / per_wall_s
    if step_wall_s < MIN_STEP_WALL_S:
        return [("time.speedup", f"{spec.speedup:g} makes a {cfg.step_s:g} s step last {step_wall_s * 1e3:.3g} ms of "
                                 f"wall time; the clock needs at least {MIN_STEP_WALL_S * 1e3:g} ms per step: use "
                                 f"speedup <= {float(cfg.step_s) * spec.time_dilation / MIN_STEP_WALL_S:g} "
                                 f"or a longer step_s")]
    if wall_s > MAX_WALL_S:
        if spec.time_dilation > 1:
            return [("emulation.time_dilation", f"{spec.time_dilation:g} with speedup {spec.speedup:g} makes the "
                                                f"replay last {wall_s / 3600:.3g} hours of wall time "
                                                f"(at most {MAX_WALL_S / 3600:g})")]
        return [("time.speedup", f"{spec.speedup:g} makes the replay last {wall_s / 3600:.3g} hours of wall time "
                                 f"(at most {MAX_WALL_S / 3600:g})")]
    return []


def _rates(spec) -> list[tuple[str, str]]:
    cfg = spec.topology
    out = []
    for key, nominal in (("constellation.capacity_bps", cfg.capacity_bps), ("ground.capacity_bps", cfg.gsl_capacity_bps)):
        if nominal is not None and nominal * spec.rate_scale < MIN_LINK_RATE_BPS:
            out.append(("emulation.rate_scale", f"{key} {nominal:g} x rate_scale {spec.rate_scale:g} = "
                                                f"{nominal * spec.rate_scale:g} bit/s per link, below the "
                                                f"{MIN_LINK_RATE_BPS:g} bit/s the links can emulate"))
    for i, b in enumerate(spec.background):
        if b.rate_bps < MIN_FLOW_RATE_BPS:
            out.append((f"background[{i}].rate_bps", f"{b.nominal_rate_bps:g} x rate_scale {spec.rate_scale:g} = "
                                                     f"{b.rate_bps:g} bit/s, below {MIN_FLOW_RATE_BPS:g} bit/s"))
        elif b.rate_bps / spec.time_dilation < MIN_FLOW_RATE_BPS:      # iperf3 runs at rate / D
            out.append((f"background[{i}].rate_bps", f"{b.rate_bps:g} bit/s / time_dilation {spec.time_dilation:g} "
                                                     f"is below the {MIN_FLOW_RATE_BPS:g} bit/s iperf3 can send"))
    return out


def rank_bytes_lower_bound(workload) -> list[float]:
    """Bytes each rank must at least send: its sends, and (g-1)/g of every collective over g ranks
    (what any all-gather, reduce-scatter or all-reduce algorithm sends per rank at least)."""
    from testbed.workload.model import Collective, Send
    out = []
    for ops in workload.ops:
        total = 0.0
        for op in ops:
            if isinstance(op, Send):
                total += op.size_bytes
            elif isinstance(op, Collective):
                g = len(op.group) if getattr(op, "group", None) else workload.n_ranks
                total += op.size_bytes * (g - 1) / g if g > 1 else 0.0
        out.append(total)
    return out


def _transfers(spec) -> list[tuple[str, str]]:
    from testbed.workload.errors import WorkloadError
    cfg = spec.topology
    rate_bps = max(cfg.capacity_bps, cfg.gsl_capacity_bps or 0.0) * spec.rate_scale * MAX_LINKS_PER_NODE
    limit_s = agent_timeout_s(float(cfg.duration_s) / wall_speedup(spec.speedup, spec.time_dilation))   # wall s
    out = []
    for i, w in enumerate(spec.workloads):
        try:
            wl = w.build().scaled(spec.rate_scale)
        except (WorkloadError, ValueError):
            continue          # reported where the workload is read
        worst = max(rank_bytes_lower_bound(wl), default=0.0)
        t_s = dilated_s(8 * worst / rate_bps, spec.time_dilation)     # wall s: the links run at rate / D
        if not math.isfinite(t_s) or t_s > limit_s:
            out.append((f"workloads[{i}]", f"{w.label}: a rank must send at least {worst:.3g} B (scaled), which takes "
                                           f"at least {t_s:.3g} s even over {MAX_LINKS_PER_NODE} links at "
                                           f"{rate_bps / MAX_LINKS_PER_NODE:g} bit/s; the run waits {limit_s:g} s "
                                           f"for its agents: make it smaller"))
    return out


RULES = (_names, _output, _epoch, _memory, _clock, _rates, _transfers)
