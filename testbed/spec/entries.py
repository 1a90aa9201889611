"""The ``[[algorithms]]`` and ``[[workloads]]`` tables of an experiment spec (with placement).

Algorithm parameters are checked by ``controllers.ALGORITHMS[name].validate`` and
generator parameters by the generator itself, each called once with the whole
``params`` table; their errors carry every bad parameter as ``(parameter, problem)``
data, which lands at ``algorithms[i].params.<name>``, ``workloads[i].params.<name>``
or ``workloads[i].n_ranks``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from controllers import ALGORITHMS, ParameterError
from controllers.algorithms import resolve_algorithm
from controllers.algorithms.base import ParameterProblems
from testbed.spec.checks import BAD, NAME_RE, NAME_RULE, Problems, Table, join, ok, show
from testbed.spec.model import PLACEMENT_RULES, AlgorithmSpec, PlacementSpec, WorkloadSpec, load_trace, trace_format
from testbed.spec.topology import Topology
from testbed.workload import GENERATORS, WorkloadError

ALGORITHM_KEYS = ("name", "path", "params", "label", "updates", "controller_location")
UPDATE_MODES = ("direct", "consistent")
WORKLOAD_KEYS = ("label", "generator", "trace", "params", "n_ranks", "placement")


# -- [[algorithms]] --------------------------------------------------------------

def _algorithm_ref(t: Table, spec_dir: Path, known: str):
    """(name, Algorithm, path) of an ``[[algorithms]]`` entry: a registered ``name`` or a ``path``
    to a user's module (relative to the spec) defining ``ALGORITHM``."""
    if t.has("path") and t.has("name"):
        t.bad("path", "give either name (a built-in algorithm) or path (your own module), not both")
        return BAD, None, None
    if t.has("path"):
        given = t.string("path")
        if not ok(given):
            return BAD, None, None
        path = (spec_dir / given).expanduser().resolve()
        if path.suffix != ".py":
            return t.bad("path", f"must be a .py file defining ALGORITHM, got {given!r}"), None, None
        try:
            algorithm = resolve_algorithm(str(path))
        except ParameterError as err:
            return t.bad("path", str(err).replace(f"{path}: ", "", 1)), None, None
        return algorithm.name, algorithm, path
    name = t.string("name", required=True)
    if ok(name) and name not in ALGORITHMS:
        return t.bad("name", f"unknown algorithm {name!r}; known: {known} (or give path = \"your_module.py\")"), None, None
    return name, (ALGORITHMS[name] if ok(name) else None), None


def read_algorithms(top: Table, problems: Problems, spec_dir: Path) -> tuple[AlgorithmSpec, ...]:
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
        name, algorithm, path = _algorithm_ref(t, spec_dir, known)
        params = t.table("params", {})
        label = t.string("label", name, name_rule=True)
        updates = t.string("updates", "direct", choices=UPDATE_MODES)
        location = t.string("controller_location")     # checked against the topology by load.py
        if ok(label) and label in labels:
            t.bad("label" if t.has("label") else "name",
                  f"duplicate label {label!r} (also {labels[label]}); give each algorithm a unique label")
        elif ok(label):
            labels[label] = where
        if not (ok(name) and ok(params) and ok(updates) and algorithm is not None):
            continue
        try:
            full = algorithm.validate(params)
        except ParameterProblems as err:     # every bad parameter, as (parameter, problem)
            for param, problem in err.problems:
                problems.add(join(f"{where}.params", param) if param else f"{where}.params", problem)
            continue
        if ok(label) and ok(location):
            out.append(AlgorithmSpec(name=name, params=full, label=label, path=path, updates=updates,
                                     controller_location=location))
    return tuple(out)


# -- [[workloads]] ---------------------------------------------------------------

def _check_generator(generator: str, n_ranks: int, params: dict, where: str, n_ranks_given: bool,
                     problems: Problems) -> bool:
    """Build the workload once; every problem the generator reports goes under its key path
    (``n_ranks`` -> ``<where>.n_ranks``, any other parameter -> ``<where>.params.<name>``)."""
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
    try:
        fn(n_ranks=n_ranks, **{key: value for key, value in params.items() if key in known})
    except WorkloadError as err:
        for param, problem in err.problems:
            if param == "n_ranks":
                note = "" if n_ranks_given else " (n_ranks defaults to the number of compute satellites)"
                problems.add(f"{where}.n_ranks", problem + note)
            else:
                problems.add(join(f"{where}.params", param) if param else where, problem)
        return False
    return fine


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
        if value == "sunlit":      # chosen from the schedule's sunlight when the run prepares
            return PlacementSpec(value, (), ())
        if value == "first":
            indices = tuple(range(n_ranks))
        else:
            indices = tuple(r * len(compute) // n_ranks for r in range(n_ranks))
        return PlacementSpec(value, tuple(compute[i] for i in indices), indices)
    if not isinstance(value, list):
        return t.bad("placement", f"must be 'first', 'spread', 'sunlit' or an array of node ids, got {show(value)}")
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


def read_workloads(top: Table, problems: Problems, spec_dir: Path, topology: Topology | None) -> tuple[WorkloadSpec, ...]:
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
                    for line in str(err).splitlines():      # one line per problem
                        trace = t.bad("trace", line)
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


__all__ = ["read_algorithms", "read_workloads", "ALGORITHM_KEYS", "WORKLOAD_KEYS"]
