"""``testbed topo``: generate a schedule, summarise it, draw it.

Wired into the ``testbed`` console command elsewhere; this module only offers
``add_arguments(parser)`` and ``run(args) -> int``.  Also runnable alone as
``python -m topologies``.

Examples::

    testbed topo --preset starlink_shell1 --duration-s 200 --step-s 0.1 -o s1.parquet
    testbed topo --tle data/iridium-2022-09-14.tle --isl nearest
    testbed topo --preset starlink_shell1_hypatia --isl-param pairing=index \
        --min-elevation-deg 0 --gsl-max-range-km 1089.686 --export hypatia DIR
    testbed topo --hypatia DIR -o back.parquet          # the same constellation read back
    testbed topo --spec experiments/default.toml --map 30 map.png  # spec's topology tables
    testbed topo --schedule s1.parquet --delay-plot Paris:Luanda delay.png

User errors print one line on stderr and return 2; no partial files remain.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

from .compute import compute_from_text
from .config import ScheduleConfig
from .errors import TopologyError
from .gsl import GSL_POLICIES
from .hypatia import write_hypatia
from .isl import ISL_POLICIES
from .shells import PRESETS
from .timebase import EARTH_ROTATIONS

#: Above this many satellite-steps a progress bar is shown (if stderr is a tty).
PROGRESS_THRESHOLD = 200_000

PROG = "testbed topo"

#: ``--export FORMAT DIR`` writers: ``(schedule, folder, fleet) -> {name: path}``.
EXPORTERS = {"hypatia": write_hypatia}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``topo`` options to ``parser``."""
    src = parser.add_argument_group("constellation (one of; or from --spec)")
    src.add_argument("--spec", metavar="TOML",
                     help="experiment spec: its [constellation], [isl], [ground], [compute], "
                          "[time] tables (or one [topology] table) give the configuration; "
                          "flags below override it")
    src.add_argument("--preset", choices=sorted(PRESETS), help="named constellation")
    src.add_argument("--tle", metavar="FILE",
                     help="TLE file (2- or 3-line; Hypatia's tles.txt with its count header)")
    src.add_argument("--hypatia", metavar="DIR",
                     help="Hypatia constellation folder: tles.txt, isls.txt, "
                          "ground_stations.txt, description.txt")
    src.add_argument("--schedule", metavar="PARQUET",
                     help="load an existing schedule instead of generating one")
    links = parser.add_argument_group("links")
    links.add_argument("--isl", choices=sorted(ISL_POLICIES), help="laser-link policy")
    links.add_argument("--isl-param", action="append", default=[], metavar="KEY=VALUE",
                       help="policy parameter (value parsed as JSON, else text); repeatable")
    links.add_argument("--lasers", type=int, metavar="N", help="lasers per satellite")
    links.add_argument("--max-range-km", type=float, metavar="KM",
                       help="maximum ISL length (default: derived from line of sight)")
    links.add_argument("--acquisition-s", type=float, metavar="S", help="laser acquisition time")
    links.add_argument("--capacity-bps", type=float, metavar="BPS", help="laser link capacity")
    links.add_argument("--ground", action="append", default=[], metavar="NAME:LAT:LON",
                       help="ground station; repeatable")
    links.add_argument("--gsl-policy", choices=sorted(GSL_POLICIES),
                       help="ground links: nearest satellite or all visible")
    links.add_argument("--min-elevation-deg", type=float, metavar="DEG",
                       help="minimum elevation for ground links (0: no mask)")
    links.add_argument("--gsl-max-range-km", type=float, metavar="KM",
                       help="maximum ground-link slant range (e.g. Hypatia's 1089.686)")
    when = parser.add_argument_group("time and compute")
    when.add_argument("--epoch", metavar="ISO", help="start, e.g. 2025-01-01T00:00:00Z")
    when.add_argument("--earth-rotation", choices=sorted(EARTH_ROTATIONS),
                      help="time scale of the Earth's rotation (default ut1)")
    when.add_argument("--duration-s", type=float, metavar="S")
    when.add_argument("--step-s", type=float, metavar="S")
    when.add_argument("--compute", metavar="SPEC",
                      help="compute satellites: ids:1,5,9 | every_k:K | per_plane:N | "
                           "cluster:PLANE:SLOT:SIZE[:SHELL]")
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="PARQUET",
                     help="write the schedule (also .nodes.parquet and .positions.parquet)")
    out.add_argument("--map", nargs=2, metavar=("T_S", "PNG"),
                     help="draw tracks, links at time T_S, compute and ground nodes")
    out.add_argument("--delay-plot", nargs=2, metavar=("PAIRS", "PNG"),
                     help="one-way delay over time; PAIRS is comma-separated A:B "
                          "(shortest path) or link:A:B (one link), nodes by name or id")
    out.add_argument("--export", nargs=2, metavar=("FORMAT", "DIR"),
                     help="write the constellation for another tool; FORMAT: hypatia "
                          "(tles.txt, isls.txt, ground_stations.txt, description.txt)")
    out.add_argument("--json", action="store_true", help="print the summary as JSON")
    progress = out.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="always show a progress bar")
    progress.add_argument("--no-progress", dest="progress", action="store_false")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_ground(text: str) -> list:
    name, lat, lon = (text.rsplit(":", 2) + ["", ""])[:3] if text.count(":") >= 2 else \
        (None, None, None)
    if not name:
        raise TopologyError(f"expected NAME:LAT:LON, got {text!r}", "--ground")
    try:
        return [name, float(lat), float(lon)]
    except ValueError:
        raise TopologyError(f"latitude and longitude must be numbers in {text!r}",
                            "--ground") from None


def _parse_pairs(text: str) -> list[tuple[str, str, str]]:
    pairs = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        parts = item.split(":")
        if len(parts) == 3 and parts[0] == "link":
            pairs.append(("link", parts[1], parts[2]))
        elif len(parts) == 2:
            pairs.append(("path", parts[0], parts[1]))
        else:
            raise TopologyError(f"expected A:B or link:A:B, got {item!r}", "--delay-plot")
    if not pairs:
        raise TopologyError("no pairs given", "--delay-plot")
    return pairs


#: Experiment-spec tables that describe the topology, key -> ScheduleConfig field
#: (the testbed's spec layout).  ``None`` marks keys that belong to others.
SPEC_TABLES: dict[str, dict[str, str | None]] = {
    "constellation": {"preset": "preset", "shells": "shells", "tle_path": "tle_path",
                      "hypatia_dir": None,
                      "tle_include_unplaced": "tle_include_unplaced",
                      "capacity_bps": "capacity_bps", "clusters": "clusters"},
    "isl": {"policy": "isl_policy", "params": "isl_params", "lasers_per_sat": "lasers_per_sat",
            "max_range_km": "max_range_km", "grazing_margin_km": "grazing_margin_km",
            "acquisition_s": "acquisition_s"},
    "ground": {"stations": "ground_stations", "min_elevation_deg": "gsl_min_elevation_deg",
               "max_range_km": "gsl_max_range_km",
               "policy": "gsl_policy", "params": "gsl_params", "capacity_bps": "gsl_capacity_bps",
               "acquisition_s": "gsl_acquisition_s"},
    "time": {"epoch": "epoch", "duration_s": "duration_s", "step_s": "step_s",
             "earth_rotation": "earth_rotation", "speedup": None},
}


def spec_to_config_dict(spec: dict, spec_path: Path) -> dict[str, Any]:
    """ScheduleConfig data from an experiment spec.

    Accepts either one ``[topology]`` table with ``ScheduleConfig`` keys, or the
    testbed's layout: ``[constellation]``, ``[isl]``, ``[ground]``, ``[compute]``
    and ``[time]`` tables (see ``SPEC_TABLES``).  Other tables are ignored.
    """
    if "topology" in spec:
        table = spec["topology"]
        if not isinstance(table, dict):
            raise TopologyError(f"{spec_path}: [topology] must be a table")
        return dict(table)
    if "constellation" not in spec:
        raise TopologyError(f"{spec_path}: no [topology] or [constellation] table")
    data: dict[str, Any] = {}
    for name, keys in SPEC_TABLES.items():
        table = spec.get(name)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise TopologyError(f"{spec_path}: [{name}] must be a table")
        for key, value in table.items():
            if key not in keys:
                raise TopologyError(f"{spec_path}: {name}.{key}: unknown key (known keys: "
                                    f"{', '.join(keys)})")
            if keys[key] is not None:
                data[keys[key]] = value
    if spec.get("compute") is not None:     # [compute.power] belongs to the testbed
        compute = spec["compute"]
        data["compute"] = {k: v for k, v in compute.items() if k != "power"} \
            if isinstance(compute, dict) else compute
        if data["compute"] == {}:
            del data["compute"]
    folder = (spec.get("constellation") or {}).get("hypatia_dir")
    if isinstance(folder, str):          # the folder's values; the spec's own keys win
        from .hypatia import read_hypatia
        data = {**read_hypatia(spec_path.resolve().parent / folder), **data}
    return data


def config_from_args(args: argparse.Namespace) -> ScheduleConfig:
    """Merge the spec's [topology] table (if any) with flags; flags win."""
    data: dict[str, Any] = {}
    spec_dir = Path.cwd()
    if args.spec:
        spec_path = Path(args.spec)
        try:
            with spec_path.open("rb") as f:
                spec = tomllib.load(f)
        except OSError as err:
            raise TopologyError(f"{spec_path}: cannot read ({err.strerror or err})") from None
        except tomllib.TOMLDecodeError as err:
            raise TopologyError(f"{spec_path}: invalid TOML ({err})") from None
        data.update(spec_to_config_dict(spec, spec_path))
        spec_dir = spec_path.resolve().parent
        if isinstance(data.get("tle_path"), str) and not Path(data["tle_path"]).is_absolute():
            data["tle_path"] = str(spec_dir / data["tle_path"])
    if args.preset or args.tle or args.hypatia:
        for key in ("preset", "shells", "tle_path"):
            data.pop(key, None)
    if args.hypatia:
        from .hypatia import read_hypatia
        data.update(read_hypatia(args.hypatia))
    if args.preset:
        data["preset"] = args.preset
    if args.tle:
        data["tle_path"] = args.tle
    flags = {"isl_policy": args.isl, "lasers_per_sat": args.lasers,
             "max_range_km": args.max_range_km, "acquisition_s": args.acquisition_s,
             "capacity_bps": args.capacity_bps, "gsl_policy": args.gsl_policy,
             "gsl_min_elevation_deg": args.min_elevation_deg,
             "gsl_max_range_km": args.gsl_max_range_km,
             "earth_rotation": args.earth_rotation, "epoch": args.epoch,
             "duration_s": args.duration_s, "step_s": args.step_s}
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.isl_param:
        params = dict(data.get("isl_params") or {})
        for item in args.isl_param:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise TopologyError(f"expected KEY=VALUE, got {item!r}", "--isl-param")
            params[key] = _parse_value(value)
        data["isl_params"] = params
    if args.ground:
        data["ground_stations"] = [_parse_ground(g) for g in args.ground]
    if args.compute:
        data["compute"] = compute_from_text(args.compute)
    try:
        return ScheduleConfig.from_dict(data)
    except TopologyError as err:
        if args.spec:
            raise TopologyError(problems=[(None, f"{args.spec}: {line}")
                                          for line in str(err).splitlines()]) from None
        raise


def _check_writable(path: Path) -> None:
    """Fail before any work if an output file cannot be created."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise TopologyError(f"{path}: folder {folder} does not exist")
    if path.is_dir():
        raise TopologyError(f"{path}: is a folder, expected a file name")


def run(args: argparse.Namespace) -> int:
    """Execute ``testbed topo``; returns the exit status (0 ok, 2 user error)."""
    from .generate import generate
    from .schedule import Schedule
    from .summary import format_summary, summarize
    from .usage import format_laser_usage

    try:
        pairs = _parse_pairs(args.delay_plot[0]) if args.delay_plot else None
        if args.map:
            try:
                map_t_s = float(args.map[0])
            except ValueError:
                raise TopologyError(f"T_S must be a number, got {args.map[0]!r}",
                                    "--map") from None
        for target in (args.output, args.map and args.map[1],
                       args.delay_plot and args.delay_plot[1]):
            if target:
                _check_writable(Path(target))
        if args.export:
            if args.export[0] not in EXPORTERS:
                raise TopologyError(f"unknown format {args.export[0]!r} (known: "
                                    f"{', '.join(EXPORTERS)})", "--export")
            if not Path(args.export[1]).is_dir():
                raise TopologyError(f"{args.export[1]}: folder does not exist", "--export")
        if args.schedule:
            if args.spec or args.preset or args.tle or args.hypatia:
                raise TopologyError("--schedule cannot be combined with --spec, --preset, "
                                    "--tle or --hypatia")
            schedule = Schedule.load(args.schedule)
        else:
            config = config_from_args(args)
            n_sats = config.expected_satellites() or 1000
            show = args.progress if args.progress is not None else (
                sys.stderr.isatty() and config.n_steps * n_sats > PROGRESS_THRESHOLD)
            schedule = generate(config, progress=bool(show))
        if args.output:
            schedule.save(args.output)
        summary = summarize(schedule)
        if args.json:
            print(json.dumps(summary, indent=2, sort_keys=True))
        else:
            print(format_summary(summary))
            placement = schedule.meta.get("placement") or {}
            if placement.get("source") == "tle":
                for reason, count in sorted(placement.get("unplaced", {}).items()):
                    print(f"  unplaced: {count} ({reason})")
            if schedule.meta.get("laser_usage"):
                print("\n".join(format_laser_usage(schedule.meta["laser_usage"])))
        if args.export:
            from .generate import build_fleet
            fleet = build_fleet(ScheduleConfig.from_dict(schedule.meta["config"]))[0]
            written = EXPORTERS[args.export[0]](schedule, args.export[1], fleet)
            print(f"{args.export[0]} files written to {args.export[1]}: "
                  f"{', '.join(p.name for p in written.values())}")
        if args.map:
            from .plots import plot_map
            written = plot_map(schedule, map_t_s, args.map[1])
            print(f"map written to {written}")
        if pairs:
            from .plots import plot_delays
            written = plot_delays(schedule, pairs, args.delay_plot[1])
            print(f"delay plot written to {written}")
        if args.output:
            print(f"schedule written to {args.output}")
        return 0
    except (TopologyError, ValueError, OSError) as err:
        message = str(err)
        if isinstance(err, OSError) and getattr(err, "filename", None):
            message = f"{err.filename}: {err.strerror or err}"
        for line in message.splitlines() or [""]:     # one line per problem
            print(f"{PROG}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m topologies``)."""
    parser = argparse.ArgumentParser(prog="python -m topologies",
                                     description="Generate and inspect orbital link schedules.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
