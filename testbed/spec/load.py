"""``load_spec(path) -> Spec``: read an experiment TOML file and validate all of it.

Every problem is collected (one line each, naming its key path) and raised together
as :class:`~testbed.spec.model.SpecError`; nothing is written anywhere. Rules that
another package owns are delegated to it and its messages re-labelled with the
spec's key path: the topology to ``topologies.ScheduleConfig`` (see
:mod:`testbed.spec.topology`), algorithm parameters to
``controllers.ALGORITHMS[name].validate``, generator parameters to the generator
itself, traces to ``testbed.workload``'s readers.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from .checks import BAD, NAME_RE, NAME_RULE, Problems, Table, ok, show
from .model import (PLACEMENT_RULES, PROBE_PAIR_SETS, AlgorithmSpec, BackgroundSpec, PcapSpec, PlacementSpec, ProbeSpec,
                    Spec, SpecError, WorkloadSpec, load_trace, resolve_host, trace_format)
from .topology import Topology, read_topology

TOP_KEYS = ("experiment", "constellation", "isl", "ground", "compute", "time", "emulation",
            "algorithms", "workloads", "background", "probes", "pcap")
EXPERIMENT_KEYS = ("name", "description", "seed", "output_dir")
EMULATION_KEYS = ("rate_scale", "backend")
ALGORITHM_KEYS = ("name", "params", "label")
WORKLOAD_KEYS = ("label", "generator", "trace", "params", "n_ranks", "placement")
BACKGROUND_KEYS = ("label", "src", "dst", "rate_bps", "start_s", "duration_s")
PCAP_KEYS = ("label", "file", "hosts", "start_s")
PROBE_KEYS = ("pairs", "rate_hz")

DEFAULT_RATE_SCALE = 1e-4
DEFAULT_OUTPUT_DIR = "results"
DEFAULT_PROBE_RATE_HZ = 10.0
MAX_PROBE_RATE_HZ = 1000.0
MAX_SEED = 2**32 - 1


def backends() -> tuple[str, ...]:
    """``"auto"`` and the link-shaping backends of :data:`testbed.links.BACKENDS`."""
    try:
        from testbed.links import BACKENDS
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


def load_spec(path: str | Path) -> Spec:
    """Read and validate an experiment spec.

    Parameters
    ----------
    path : str or Path
        The TOML file. Relative paths inside it (TLE file, traces) start at its folder;
        ``experiment.output_dir`` starts at the current working directory.

    Raises
    ------
    SpecError
        With every problem found, one per line (an InputError: exit status 2).
    """
    path = Path(path).expanduser().resolve()
    raw = _read_toml(path)
    problems = Problems()
    top = Table(raw, "", problems, TOP_KEYS)
    tables = {key: top.table(key) for key in TOP_KEYS if key not in ("algorithms", "workloads", "background", "pcap")}

    name, description, seed, output_dir = _experiment(Table(tables["experiment"] or {}, "experiment",
                                                            problems, EXPERIMENT_KEYS), path)
    topology_tables = {k: tables[k] for k in ("constellation", "isl", "ground", "compute", "time")}
    topology = read_topology(topology_tables, path.parent, problems)
    emulation = Table(tables["emulation"] or {}, "emulation", problems, EMULATION_KEYS)
    rate_scale = emulation.number("rate_scale", DEFAULT_RATE_SCALE, gt=0.0, le=1.0)
    backend = emulation.string("backend", "auto", choices=backends())
    algorithms = _algorithms(top, problems)
    workloads = _workloads(top, problems, path.parent, topology)
    background = _background(top, problems, topology, rate_scale)
    probes = _probes(Table(tables["probes"] or {}, "probes", problems, PROBE_KEYS), topology)
    pcaps = _pcaps(top, problems, path.parent, topology)
    if problems:
        raise SpecError(path, problems.lines)
    return Spec(
        path=path, raw=json_friendly(raw), name=name, description=description, seed=seed,
        output_dir=output_dir, topology=topology.config, speedup=topology.speedup, rate_scale=rate_scale,
        backend=backend, algorithms=algorithms, workloads=workloads, background=background, probes=probes,
        n_satellites=topology.n_satellites, compute_node_ids=topology.compute_node_ids,
        compute_names=topology.compute_names, ground_names=topology.ground_names, pcaps=pcaps)


# -- [experiment] ----------------------------------------------------------------

def _experiment(t: Table, path: Path) -> tuple[str, str, int, Path]:
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
    output = t.string("output_dir", DEFAULT_OUTPUT_DIR)
    output_dir = Path(output).expanduser().absolute() if ok(output) else BAD
    return name, description, seed, output_dir


# -- [[algorithms]] --------------------------------------------------------------

_ALGORITHM_PREFIX = re.compile(r"^algorithm '[^']*'(?:, parameter '[^']*')?: ")
_UNKNOWN_PARAM = re.compile(r"^unknown parameter\(s\) '[^']*'; ")


def _algorithm_message(err: Exception) -> str:
    text = _ALGORITHM_PREFIX.sub("", str(err))
    return _UNKNOWN_PARAM.sub("unknown parameter; ", text)


def _algorithms(top: Table, problems: Problems) -> tuple[AlgorithmSpec, ...]:
    from controllers import ALGORITHMS, ParameterError
    known = ", ".join(ALGORITHMS)
    if not top.has("algorithms"):
        problems.add("algorithms", f"missing; add at least one [[algorithms]] table with a name ({known})")
        return ()
    items = top.tables("algorithms")
    if ok(top.data["algorithms"]) and isinstance(top.data["algorithms"], list) and not top.data["algorithms"]:
        problems.add("algorithms", f"must list at least one algorithm ({known})")
    out, labels = [], {}
    for where, data in items:
        t = Table(data, where, problems, ALGORITHM_KEYS)
        name = t.string("name", required=True)
        if ok(name) and name not in ALGORITHMS:
            name = t.bad("name", f"unknown algorithm {name!r}; known: {known}")
        params = t.table("params", {})
        label = t.string("label", name, name_rule=True)
        if ok(label) and label in labels:
            t.bad("label" if t.has("label") else "name",
                  f"duplicate label {label!r} (also {labels[label]}); give each algorithm a unique label")
        elif ok(label):
            labels[label] = where
        if not (ok(name) and ok(params)):
            continue
        fine = True
        for key, value in params.items():
            try:
                ALGORITHMS[name].validate({key: value})
            except ParameterError as err:
                problems.add(f"{where}.params.{key}", _algorithm_message(err))
                fine = False
        if not fine:
            continue
        try:
            full = ALGORITHMS[name].validate(params)
        except ParameterError as err:     # rules across parameters
            problems.add(f"{where}.params", _algorithm_message(err))
            continue
        if ok(label):
            out.append(AlgorithmSpec(name=name, params=full, label=label))
    return tuple(out)


# -- [[workloads]] ---------------------------------------------------------------

_GENERATOR_PARAM = re.compile(r"^\w+: parameter (\w+)\s*=?\s*(.*)$", re.S)


def _generator_problem(err: Exception, where: str, n_ranks_given: bool) -> tuple[str, str]:
    match = _GENERATOR_PARAM.match(str(err))
    if not match:
        return where, str(err)
    param, message = match.groups()
    if param == "n_ranks":
        if not n_ranks_given:
            message += " (n_ranks defaults to the number of compute satellites)"
        return f"{where}.n_ranks", message
    return f"{where}.params.{param}", message


def _check_generator(generator: str, n_ranks: int, params: dict, where: str, n_ranks_given: bool,
                     problems: Problems) -> bool:
    """Build the workload once; on failure, find each bad parameter by trying them one by one."""
    from testbed.workload import GENERATORS, WorkloadError
    fn = GENERATORS[generator]
    known = [p for p in inspect.signature(fn).parameters if p != "n_ranks"]
    fine = True
    for key in params:
        if key == "n_ranks":
            problems.add(f"{where}.params.n_ranks", f"set the rank count as {where}.n_ranks, not in params")
            fine = False
        elif key not in known:
            problems.add(f"{where}.params.{key}",
                         f"unknown parameter of generator {generator!r}; known: {', '.join(known)}")
            fine = False
    if not fine:
        return False
    try:
        fn(n_ranks=n_ranks, **params)
        return True
    except WorkloadError as whole:
        try:
            fn(n_ranks=n_ranks)
        except WorkloadError as err:
            problems.add(*_generator_problem(err, where, n_ranks_given))
            return False
        found = False
        for key, value in params.items():
            try:
                fn(n_ranks=n_ranks, **{key: value})
            except WorkloadError as err:
                problems.add(*_generator_problem(err, where, n_ranks_given))
                found = True
        if not found:
            problems.add(*_generator_problem(whole, where, n_ranks_given))
        return False


def _placement(t: Table, n_ranks: int, topology: Topology) -> PlacementSpec | Any:
    compute = topology.compute_node_ids
    value = t.data.get("placement", "first")
    if isinstance(value, str):
        if value not in PLACEMENT_RULES:
            return t.bad("placement", f"unknown rule {value!r}; use {' or '.join(map(repr, PLACEMENT_RULES))} "
                                      "or an array of compute satellite node ids")
        if n_ranks > len(compute):
            where = "n_ranks" if t.has("n_ranks") else ("trace" if t.has("trace") else "generator")
            have = (f"[compute] selects only {len(compute)}" if compute
                    else "no compute satellites are selected (add a [compute] table)")
            return t.bad(where, f"{n_ranks} ranks need {n_ranks} compute satellites, but {have}")
        if value == "first":
            indices = tuple(range(n_ranks))
        else:
            indices = tuple(r * len(compute) // n_ranks for r in range(n_ranks))
        return PlacementSpec(value, tuple(compute[i] for i in indices), indices)
    if not isinstance(value, list):
        return t.bad("placement", f"must be 'first', 'spread' or an array of node ids, got {show(value)}")
    fine = True
    for i, node in enumerate(value):
        if isinstance(node, bool) or not isinstance(node, int):
            t.bad("placement", f"item {i} must be an integer node id, got {show(node)}")
            fine = False
        elif node not in compute:
            t.bad("placement", f"node {node} is not a compute satellite (compute node ids: "
                               f"{', '.join(map(str, compute)) or 'none'})")
            fine = False
    if not fine:
        return BAD
    if len(set(value)) != len(value):
        return t.bad("placement", "lists a node twice (one rank per satellite)")
    if len(value) != n_ranks:
        return t.bad("placement", f"lists {len(value)} nodes for {n_ranks} ranks")
    return PlacementSpec("ids", tuple(value), tuple(compute.index(node) for node in value))


def _workloads(top: Table, problems: Problems, spec_dir: Path, topology: Topology | None) -> tuple[WorkloadSpec, ...]:
    from testbed.workload import GENERATORS, WorkloadError
    out, labels = [], {}
    for where, data in top.tables("workloads"):
        t = Table(data, where, problems, WORKLOAD_KEYS)
        if t.has("generator") == t.has("trace"):
            problems.add(where, "give exactly one of generator, trace")
        n_ranks = t.number("n_ranks", None, integer=True, ge=1)
        generator = t.string("generator")
        if ok(generator) and generator is not None and generator not in GENERATORS:
            generator = t.bad("generator", f"unknown generator {generator!r}; known: {', '.join(GENERATORS)}")
        params = t.table("params", {})
        if t.has("params") and t.has("trace") and not t.has("generator"):
            params = t.bad("params", "only a generator takes params")
        trace, trace_ranks = None, None
        text = t.string("trace")
        if ok(text) and text is not None:
            trace = (spec_dir / Path(text).expanduser()).resolve()
            if not trace.exists():
                trace = t.bad("trace", f"no such file or folder: {trace} (relative paths start at the spec's folder)")
            elif trace_format(trace) is None:
                trace = t.bad("trace", f"{trace}: not a trace (expected a Chakra .et file or folder, "
                                       "or a .jsonl workload file)")
            else:
                try:
                    trace_ranks = load_trace(trace).n_ranks
                except WorkloadError as err:
                    trace = t.bad("trace", str(err))
        default_label = generator if generator else (trace.stem if trace else None)
        if t.has("label"):
            label = t.string("label", name_rule=True)
        elif default_label and NAME_RE.match(default_label):
            label = default_label
        elif default_label:
            label = t.bad("label", f"missing, and {default_label!r} cannot stand in for it: {NAME_RULE}")
        else:
            label = BAD
        if ok(label) and label in labels:
            t.bad("label" if t.has("label") else ("generator" if generator else "trace"),
                  f"duplicate label {label!r} (also {labels[label]}); give each workload a unique label")
        elif ok(label) and label is not None:
            labels[label] = where

        # the rank count: as given, else the trace's, else every compute satellite
        if trace_ranks is not None and ok(n_ranks) and n_ranks is not None and n_ranks != trace_ranks:
            n_ranks = t.bad("n_ranks", f"the trace has {trace_ranks} ranks, got {n_ranks}")
        elif trace_ranks is not None:
            n_ranks = trace_ranks
        n_ranks_given = t.has("n_ranks")
        if generator and ok(n_ranks) and n_ranks is None:
            if isinstance(t.data.get("placement"), list):
                n_ranks = len(t.data["placement"])
            else:
                n_ranks = len(topology.compute_node_ids) if topology else None
        if generator and ok(params) and ok(n_ranks):
            if not _check_generator(generator, n_ranks if n_ranks is not None else 2, params, where,
                                    n_ranks_given, problems):
                continue
        if not (ok(n_ranks) and n_ranks is not None and topology is not None):
            continue
        placement = _placement(t, n_ranks, topology)
        if ok(placement) and ok(label) and ok(params) and ok(trace) and (generator or trace):
            out.append(WorkloadSpec(label=label, n_ranks=n_ranks, placement=placement,
                                    generator=generator or None, params=params if generator else {},
                                    trace=trace))
    return tuple(out)


# -- [[background]] --------------------------------------------------------------

def _resolve(selector: str, hosts: dict, topology: Topology) -> str:
    """resolve_host, with a clearer message for a satellite that has no host."""
    try:
        return resolve_host(selector, hosts)
    except ValueError:
        if selector in topology.satellite_names:
            raise ValueError(f"{selector!r} is not a compute satellite, so it has no host; compute "
                             f"satellites: {', '.join(topology.compute_names) or 'none'}") from None
        raise


def _host_lists(topology: Topology | None) -> dict[str, list[str]] | None:
    """Host names by kind, for :func:`_resolve` (None without a valid topology)."""
    return ({"compute": list(topology.compute_names), "ground": list(topology.ground_names)}
            if topology else None)


def _labelled(top: Table, key: str, known: tuple[str, ...], problems: Problems, prefix: str):
    """Each table of the array ``key`` as ``(Table, label)``; labels default to
    ``<prefix><i>`` and must be unique (a repeated one is reported and BAD)."""
    labels: dict[str, str] = {}
    for i, (where, data) in enumerate(top.tables(key)):
        t = Table(data, where, problems, known)
        label = t.string("label", f"{prefix}{i}", name_rule=True)
        if ok(label) and label in labels:
            label = t.bad("label", f"duplicate label {label!r} (also {labels[label]})")
        elif ok(label):
            labels[label] = where
        yield t, label


def _background(top: Table, problems: Problems, topology: Topology | None, rate_scale: Any) -> tuple[BackgroundSpec, ...]:
    out = []
    hosts = _host_lists(topology)
    run_s = topology.config.duration_s if topology else None
    for t, label in _labelled(top, "background", BACKGROUND_KEYS, problems, "bg"):
        ends, names = {}, {}
        for key in ("src", "dst"):
            ends[key] = t.string(key, required=True)
            if ok(ends[key]) and hosts is not None:
                try:
                    names[key] = _resolve(ends[key], hosts, topology)
                except ValueError as err:
                    ends[key] = t.bad(key, str(err))
        if ok(ends["src"]) and ok(ends["dst"]) and len(names) == 2 and names["src"] == names["dst"]:
            ends["dst"] = t.bad("dst", f"{ends['dst']!r} is the same host as src ({names['src']})")
        rate_bps = t.number("rate_bps", required=True, gt=0.0)
        start_s = t.number("start_s", 0.0, ge=0.0)
        duration_s = t.number("duration_s", None, gt=0.0)
        if run_s is not None and ok(start_s):
            if start_s >= run_s:
                start_s = t.bad("start_s", f"must be < time.duration_s ({run_s:g} s), got {show(start_s)}")
            elif duration_s is None:
                duration_s = run_s - start_s
            elif ok(duration_s) and start_s + duration_s > run_s * (1 + 1e-9):
                duration_s = t.bad("duration_s", f"the flow would end at {start_s + duration_s:g} s, after the "
                                                 f"run (time.duration_s = {run_s:g} s)")
        values = (label, ends["src"], ends["dst"], rate_bps, start_s, duration_s, rate_scale)
        if topology is not None and all(ok(v) for v in values):
            out.append(BackgroundSpec(label=label, src=names["src"], dst=names["dst"],
                                      rate_bps=rate_bps * rate_scale, start_s=start_s, duration_s=duration_s,
                                      nominal_rate_bps=rate_bps, src_selector=ends["src"],
                                      dst_selector=ends["dst"]))
    return tuple(out)


# -- [[pcap]] --------------------------------------------------------------------

def _pcaps(top: Table, problems: Problems, spec_dir: Path, topology: Topology | None) -> tuple[PcapSpec, ...]:
    from testbed.pcapreplay import capture_summary
    out = []
    hosts = _host_lists(topology)
    run_s = topology.config.duration_s if topology else None
    for t, label in _labelled(top, "pcap", PCAP_KEYS, problems, "pcap"):
        file, summary = t.string("file", required=True), None
        if ok(file):
            file = (spec_dir / Path(file).expanduser()).resolve()
            if not file.is_file():
                file = t.bad("file", f"no such file: {file} (relative paths start at the spec's folder)")
            else:
                try:
                    summary = capture_summary(file)
                except ValueError as err:
                    file = t.bad("file", str(err))
        selectors = t.array("hosts", ["compute:0", "compute:1"])
        names: Any = BAD
        if ok(selectors):
            if not all(isinstance(h, str) for h in selectors):
                selectors = t.bad("hosts", "must be an array of host selectors (strings)")
            elif len(selectors) < 2:
                selectors = t.bad("hosts", f"must name at least two hosts, got {len(selectors)}")
            elif hosts is not None:
                try:
                    names = tuple(_resolve(h, hosts, topology) for h in selectors)
                except ValueError as err:
                    selectors = t.bad("hosts", str(err))
                else:
                    if len(set(names)) < 2:
                        selectors = t.bad("hosts", f"{show(selectors)} name fewer than two distinct hosts")
        start_s = t.number("start_s", 0.0, ge=0.0)
        if summary is not None and ok(start_s) and run_s is not None and start_s + summary[1] > run_s * (1 + 1e-9):
            start_s = t.bad("start_s", f"the capture spans {summary[1]:g} s and would end at "
                                       f"{start_s + summary[1]:g} s, after the run (time.duration_s = {run_s:g} s)")
        if summary is not None and all(ok(v) for v in (label, file, selectors, names, start_s)):
            out.append(PcapSpec(label=label, file=file, hosts=names, host_selectors=tuple(selectors),
                                start_s=start_s, n_packets=summary[0], span_s=summary[1], size_bytes=summary[2]))
    return tuple(out)


# -- [probes] --------------------------------------------------------------------

def _probes(t: Table, topology: Topology | None) -> ProbeSpec | Any:
    rate_hz = t.number("rate_hz", DEFAULT_PROBE_RATE_HZ, gt=0.0, le=MAX_PROBE_RATE_HZ)
    value = t.data.get("pairs", "all-compute")
    pairs: Any = BAD
    if isinstance(value, str):
        if value in PROBE_PAIR_SETS:
            pairs = value
        else:
            t.bad("pairs", f"unknown value {value!r}; use {' or '.join(map(repr, PROBE_PAIR_SETS))} "
                           "or an array of [a, b] host selector pairs")
    elif isinstance(value, list):
        hosts = _host_lists(topology)
        seen: dict[frozenset, int] = {}
        good = []
        for i, pair in enumerate(value):
            where = f"pairs[{i}]"
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                t.bad(where, f"must be an array of two host selectors, e.g. [\"compute:0\", \"ground:name\"], "
                             f"got {show(pair)}")
                continue
            if hosts is None:
                good.append(tuple(pair))
                continue
            try:
                a, b = (_resolve(x, hosts, topology) for x in pair)
            except ValueError as err:
                t.bad(where, str(err))
                continue
            if a == b:
                t.bad(where, f"both ends are the same host ({a})")
            elif frozenset((a, b)) in seen:
                t.bad(where, f"same pair as pairs[{seen[frozenset((a, b))]}]")
            else:
                seen[frozenset((a, b))] = i
                good.append(tuple(pair))
        if len(good) == len(value):
            pairs = tuple(good)
    else:
        t.bad("pairs", f"must be 'all-compute', 'all' or an array of [a, b] pairs, got {show(value)}")
    if not (ok(rate_hz) and ok(pairs)):
        return BAD
    return ProbeSpec(pairs=pairs, rate_hz=rate_hz)


__all__ = ["load_spec", "json_friendly", "backends", "DEFAULT_RATE_SCALE", "TOP_KEYS"]
