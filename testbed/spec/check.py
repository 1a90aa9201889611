"""``testbed check SPEC...``: validate experiment specs offline and summarise them.

No root, no network, no orbit propagation, nothing written. Exit status 0 when every
spec is valid, 2 otherwise (each problem on its own line on stderr, prefixed with the
spec's path).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from testbed.spec.load import load_spec
from testbed.spec.model import Spec, SpecError


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC", help="experiment spec file(s) (TOML)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only, no summary")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: per spec, ok and its problems or its summary lines")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _rate(bps: float) -> str:
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.4g} {unit}"
    return f"{bps:.4g} bit/s"


def _names(names, limit: int = 6) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def summary_lines(spec: Spec) -> list[str]:
    """The short human summary ``testbed check`` prints for a valid spec."""
    cfg = spec.schedule_config()
    from topologies.timebase import format_epoch
    if cfg.preset:
        constellation = f"preset {cfg.preset}"
    elif cfg.tle_path:
        constellation = f"TLE file {cfg.tle_path}"
    else:
        constellation = " + ".join(f"{s.planes}x{s.sats_per_plane} {s.pattern} at {s.altitude_km:g} km, "
                                   f"{s.inclination_deg:g} deg" for s in cfg.walker_shells())
    isl_params = ", ".join(f"{k}={v}" if not isinstance(v, (list, tuple)) or len(v) <= 4
                           else f"{k}=[{len(v)} items]" for k, v in cfg.isl_params.items())
    capacity = max((s.capacity_bps or cfg.capacity_bps for s in cfg.walker_shells()), default=cfg.capacity_bps)
    lines = [
        f"experiment     {spec.name}" + (f": {spec.description.strip().splitlines()[0]}" if spec.description.strip() else ""),
        f"seed           {spec.seed}; {spec.trials} trial(s) (trial k: seed + k); "
        f"results under {spec.output_dir / spec.name}",
        f"constellation  {constellation}",
        f"satellites     {spec.n_satellites}; ISL {cfg.isl_policy}" + (f" ({isl_params})" if isl_params else "")
        + f", {cfg.lasers_per_sat} lasers per satellite",
        f"compute sats   {len(spec.compute_node_ids)}" + (f": {_names(spec.compute_names)}" if spec.compute_names else ""),
        f"ground         {len(spec.ground_names)} station(s)" + (f": {_names(spec.ground_names)}; GSL {cfg.gsl_policy}"
                                                                + "".join(f" {k}={v:g}" for k, v in cfg.gsl_params.items()) + ", "
                                                                f"min elevation {cfg.gsl_min_elevation_deg:g} deg"
                                                                + (f", max range {cfg.gsl_max_range_km:g} km"
                                                                   if cfg.gsl_max_range_km else "")
                                                                if spec.ground_names else ""),
        "time           " + (f"from {format_epoch(cfg.epoch)}, " if cfg.epoch else "")
        + f"{cfg.duration_s:g} s in steps of {cfg.step_s:g} s = {cfg.n_steps} steps; speedup {spec.speedup:g}",
        f"emulation      rate_scale {spec.rate_scale:g} (links {_rate(capacity)} -> {_rate(capacity * spec.rate_scale)}); "
        f"backend {spec.backend}; time_dilation {spec.time_dilation:g}",
        f"algorithms     {len(spec.algorithms)}: " + ", ".join(map(_algorithm_text, spec.algorithms)),
        "controller     " + ", ".join(dict.fromkeys(spec.location_of(a) for a in spec.algorithms)),
    ]
    if not spec.workloads:
        lines.append("workloads      none")
    for w in spec.workloads:
        params = ", ".join(f"{k}={v}" for k, v in w.params.items())
        what = f"generator {w.generator}" + (f" ({params})" if params else "") if w.generator else f"trace {w.trace}"
        where = (f"nodes {', '.join(map(str, w.placement.node_ids))} ({w.placement.rule})" if w.placement.node_ids
                 else "the compute satellites sunlit longest in the window (sunlit)")
        lines.append(f"workload       {w.label}: {what}; {w.n_ranks} ranks on {where}")
    lines.append(f"background     {len(spec.background)} flow(s)" + "".join(
        f"; {b.label}: {b.src} -> {b.dst} at {_rate(b.nominal_rate_bps)} (emulated {_rate(b.rate_bps)}), "
        f"{b.start_s:g}-{b.end_s:g} s" for b in spec.background))
    for c in spec.pcaps:
        mean_bps = c.size_bytes * 8 / c.span_s if c.span_s > 0 else float("inf")
        lines.append(f"pcap           {c.label}: {c.file.name}, {c.n_packets} IPv4 packets over {c.span_s:g} s "
                     f"(mean {_rate(mean_bps)}, replayed unscaled) onto {', '.join(c.hosts)}, from {c.start_s:g} s")
    pairs = spec.probes.resolve_pairs(spec.host_names_by_kind())
    which = spec.probes.pairs if isinstance(spec.probes.pairs, str) else "listed"
    lines.append(f"probes         {len(pairs)} pair(s) ({which}) at {spec.probes.rate_hz:g} Hz")
    per = spec.wall_s_per_algorithm
    lines.append(f"wall time      {_duration(per)} per algorithm (duration_s / speedup x time_dilation), "
                 f"{_duration(per * len(spec.algorithms) * spec.trials)} for {len(spec.algorithms)} algorithm(s) "
                 f"x {spec.trials} trial(s), plus set-up")
    return lines


def _algorithm_text(a) -> str:
    what = [a.name] if a.label != a.name else []
    if a.path is not None:
        what.append(f"from {a.path.name}")
    if a.updates != "direct":
        what.append(f"{a.updates} updates")
    return a.label + (f" ({', '.join(what)})" if what else "")


def check(path: str, out: TextIO = sys.stdout, err: TextIO = sys.stderr, quiet: bool = False) -> int:
    """Validate one spec; print its summary or its problems. Returns 0 or 2."""
    try:
        spec = load_spec(path)
    except SpecError as error:
        for problem in error.problems:
            print(f"{path}: {problem}", file=err)
        return error.exit_code
    if not quiet:
        print(f"{path}: ok", file=out)
        for line in summary_lines(spec):
            print("  " + line, file=out)
    return 0


def check_json(path: str) -> dict:
    """One spec's verdict as data: ``{"ok", "problems", "summary"}``."""
    try:
        spec = load_spec(path)
    except SpecError as error:
        return {"ok": False, "problems": list(error.problems), "summary": []}
    return {"ok": True, "problems": [], "summary": summary_lines(spec)}


def check_command(args: argparse.Namespace) -> int:
    """``testbed check``: 0 if every spec is valid, else 2."""
    if getattr(args, "json", False):
        verdicts = {str(path): check_json(path) for path in args.specs}
        print(json.dumps(verdicts, indent=2))
        return 0 if all(v["ok"] for v in verdicts.values()) else 2
    status = 0
    for path in args.specs:
        # `testbed -q check` (the global flag) is as quiet as `testbed check -q`
        quiet = getattr(args, "quiet", False) or getattr(args, "verbosity", 0) < 0
        status = max(status, check(path, quiet=quiet))
    return status
