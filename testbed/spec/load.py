"""``load_spec(path) -> Spec``: read an experiment TOML file and validate all of it.

Every problem is collected (one line each, naming its key path) and raised together
as :class:`~testbed.spec.model.SpecError`; nothing is written anywhere. Rules that
another package owns are delegated to it, called once with all of the table's
values; its error carries every problem as ``(field, problem)`` data, and the
field is mapped onto the spec's key path (no message text is parsed): the topology
to ``topologies.ScheduleConfig`` (see :mod:`testbed.spec.topology`), algorithm
parameters to ``controllers.ALGORITHMS[name].validate`` and generator parameters to
the generator itself (:mod:`testbed.spec.entries`), traces to ``testbed.workload``'s
readers. Background flows, captures and probes are read in
:mod:`testbed.spec.traffic_tables`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

from testbed.control.placement import parse_location
from testbed.links.backends import BACKENDS
from testbed.power import POLICIES, PowerSpec
from testbed.spec import feasibility
from testbed.spec.checks import BAD, NAME_RE, NAME_RULE, Problems, Table, join, ok, show
from testbed.spec.entries import read_algorithms, read_workloads
from testbed.spec.faults import read_faults
from testbed.spec.model import Spec, SpecError
from testbed.spec.topology import read_topology
from testbed.spec.traffic_tables import PROBE_KEYS, read_background, read_pcaps, read_probes

TOP_KEYS = ("experiment", "constellation", "isl", "ground", "compute", "time", "emulation",
            "algorithms", "workloads", "background", "probes", "pcap", "faults", "controller")
MAX_TRIALS = 100       # repeated trials of every algorithm, each on a fresh network
EXPERIMENT_KEYS = ("name", "description", "seed", "trials", "output_dir")
EMULATION_KEYS = ("rate_scale", "backend", "max_lag_steps", "time_dilation")
CONTROLLER_KEYS = ("location",)

DEFAULT_RATE_SCALE = 1e-4
DEFAULT_OUTPUT_DIR = "results"
MAX_SEED = 2**32 - 1
MAX_TIME_DILATION = 1000.0   # [emulation] time_dilation: a replay 1000 x slower than wall time is a typo


def backends() -> tuple[str, ...]:
    """``"auto"`` and the link-shaping backends of :data:`testbed.links.backends.BACKENDS`."""
    try:
        return ("auto", *BACKENDS)
    except ImportError:
        return ("auto", "netem", "delayline")


def json_friendly(value: Any) -> Any:
    """The parsed TOML with date-times as ISO 8601 strings (for JSON manifests)."""
    if isinstance(value, Mapping):
        return {k: json_friendly(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_friendly(v) for v in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return value


def _read_toml(path: Path) -> dict:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SpecError(path, ["no such spec file"]) from None
    except IsADirectoryError:
        raise SpecError(path, ["is a folder, not a spec file"]) from None
    except OSError as err:
        raise SpecError(path, [f"cannot read the spec: {err.strerror or err}"]) from None
    except UnicodeDecodeError as err:
        raise SpecError(path, [f"not UTF-8 text: {err}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(path, [f"not valid TOML: {err}"]) from None


def load_spec(source: str | Path | Mapping, base_dir: str | Path | None = None) -> Spec:
    """Read and validate an experiment spec.

    Parameters
    ----------
    source : str, Path or mapping
        The TOML file, or its content as a dict (what ``tomllib.load`` gives; for scripts
        and notebooks). Relative paths inside it (TLE file, traces, algorithm files) start
        at the file's folder, or at ``base_dir`` (default: the working directory) for a
        dict; ``experiment.output_dir`` starts at the current working directory.

    Raises
    ------
    SpecError
        With every problem found, one per line (an InputError: exit status 2).
    """
    if isinstance(source, Mapping):
        path = Path(base_dir or ".").expanduser().resolve() / "<dict>"
        raw = json_friendly(dict(source))
    else:
        path = Path(source).expanduser().resolve()
        raw = _read_toml(path)
    problems = Problems()
    top = Table(raw, "", problems, TOP_KEYS)
    tables = {key: top.table(key) for key in TOP_KEYS
              if key not in ("algorithms", "workloads", "background", "pcap", "faults")}

    name, description, seed, trials, output_dir = _experiment(Table(tables["experiment"] or {}, "experiment",
                                                            problems, EXPERIMENT_KEYS), path)
    compute_table = tables["compute"] if isinstance(tables["compute"], dict) else None
    power = _power(compute_table.get("power") if compute_table else None, problems)
    if compute_table is not None and "power" in compute_table:     # [compute.power] is not topology
        tables["compute"] = {k: v for k, v in compute_table.items() if k != "power"}
    topology_tables = {k: tables[k] for k in ("constellation", "isl", "ground", "compute", "time")}
    topology = read_topology(topology_tables, path.parent, problems)
    emulation = Table(tables["emulation"] or {}, "emulation", problems, EMULATION_KEYS)
    rate_scale = emulation.number("rate_scale", DEFAULT_RATE_SCALE, gt=0.0, le=1.0)
    backend = emulation.string("backend", "auto", choices=backends())
    max_lag_steps = emulation.number("max_lag_steps", 1.0, gt=0.0, le=1000.0)
    time_dilation = emulation.number("time_dilation", 1.0, ge=1.0, le=MAX_TIME_DILATION)
    algorithms = read_algorithms(top, problems, path.parent)
    controller_location = _controller_locations(Table(tables["controller"] or {}, "controller", problems,
                                                      CONTROLLER_KEYS), top, topology, problems)
    workloads = read_workloads(top, problems, path.parent, topology)
    background = read_background(top, problems, topology, rate_scale)
    probes = read_probes(Table(tables["probes"] or {}, "probes", problems, PROBE_KEYS), topology)
    pcaps = read_pcaps(top, problems, path.parent, topology)
    faults = read_faults(top, problems, topology.n_satellites if topology else None,
                         getattr(topology.config, "duration_s", None) if topology else None)
    if problems:
        raise SpecError(path, problems.lines)
    spec = Spec(
        path=path, raw=json_friendly(raw), name=name, description=description, seed=seed, trials=trials,
        output_dir=output_dir, topology=topology.config, speedup=topology.speedup, rate_scale=rate_scale,
        backend=backend, max_lag_steps=max_lag_steps, power=power, algorithms=algorithms, workloads=workloads, background=background, probes=probes,
        n_satellites=topology.n_satellites, compute_node_ids=topology.compute_node_ids,
        compute_names=topology.compute_names, ground_names=topology.ground_names, pcaps=pcaps,
        faults=faults, time_dilation=float(time_dilation), controller_location=controller_location)
    infeasible = feasibility.problems(spec)     # well-formed, but more than `run` can do
    if infeasible:
        raise SpecError(path, [f"{where}: {message}" for where, message in infeasible])
    return spec


# -- [compute.power] -------------------------------------------------------------

POWER_KEYS = tuple(f.name for f in dataclasses.fields(PowerSpec))
_FRACTIONS = ("initial_soc", "throttle_fraction", "reserve_soc")


def _power(data: Any, problems: Problems) -> PowerSpec | None:
    """``[compute.power]``: every key optional (defaults in testbed/power/model.py); None if absent."""
    if data is None:
        return None
    t = Table(data, "compute.power", problems, POWER_KEYS)
    if not isinstance(data, dict):
        return None
    defaults = PowerSpec()
    values = {}
    for key in POWER_KEYS:
        if key == "policy":
            values[key] = t.string(key, defaults.policy, choices=POLICIES)
        else:
            values[key] = t.number(key, getattr(defaults, key), ge=0.0, le=1.0 if key in _FRACTIONS else None)
    return PowerSpec(**values) if all(ok(v) for v in values.values()) else None


# -- [controller] ----------------------------------------------------------------

def _controller_locations(t: Table, top: Table, topology, problems: Problems) -> str:
    """``[controller] location`` and each ``[[algorithms]]`` entry's ``controller_location``,
    checked against the topology's ground stations and satellites; the spec-wide location."""
    location = t.string("location", "local")
    given = [("controller.location", location)] if ok(location) else []
    entries = top.data.get("algorithms")
    given += [(f"{join('algorithms', i)}.controller_location", data["controller_location"])
              for i, data in enumerate(entries if isinstance(entries, list) else [])
              if isinstance(data, dict) and isinstance(data.get("controller_location"), str)]
    if topology is None:
        return location
    for where, text in given:
        try:
            parse_location(text, topology.ground_names, topology.n_satellites)
        except ValueError as err:
            problems.add(where, str(err))
    return location


# -- [experiment] ----------------------------------------------------------------

def _experiment(t: Table, path: Path) -> tuple[str, str, int, int, Path]:
    if t.has("name"):
        name = t.string("name", name_rule=True)
    elif NAME_RE.match(path.stem):
        name = path.stem
    else:
        name = t.bad("name", f"missing, and the file name {path.stem!r} cannot stand in for it: {NAME_RULE}")
    description = t.data.get("description", "")
    if not isinstance(description, str):
        description = t.bad("description", f"must be a string, got {show(description)}")
    seed = t.number("seed", 0, integer=True, ge=0, le=MAX_SEED)
    trials = t.number("trials", 1, integer=True, ge=1, le=MAX_TRIALS)
    output = t.string("output_dir", DEFAULT_OUTPUT_DIR)
    output_dir = Path(output).expanduser().absolute() if ok(output) else BAD
    return name, description, seed, trials, output_dir


__all__ = ["load_spec", "json_friendly", "backends", "DEFAULT_RATE_SCALE", "TOP_KEYS"]
