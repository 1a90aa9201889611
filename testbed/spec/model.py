"""What a validated experiment spec is: frozen dataclasses the runner reads.

Nothing here validates user input (that is :mod:`testbed.spec.load`); these classes
hold values already checked, plus the small pure functions that turn host
*selectors* into host names once the network's hosts are known.

Host selectors (background traffic, explicit probe pairs)::

    "compute:<k>"     the k-th compute satellite in node-id order (0-based)
    "ground:<name>"   the ground station called <name>
    "<host name>"     a host by its name: a compute satellite's node name
                      (e.g. "test6x6-p1-s3") or a ground station's name
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.errors import InputError

from testbed.workload import GENERATORS, WorkloadError, load_chakra, read_jsonl

HOST_KINDS = ("compute", "ground")

#: Probe pair sets by name.
PROBE_PAIR_SETS = ("all-compute", "all")

#: Workload placement rules by name (an explicit list of node ids is the third form).
PLACEMENT_RULES = ("first", "spread", "sunlit")


class SpecError(InputError):
    """A spec with problems; ``problems`` holds one line per problem (exit status 2).

    ``str(error)`` is every problem on its own line, each prefixed with the spec path.
    """

    def __init__(self, path: Path | str, problems: Sequence[str]):
        self.path = Path(path)
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{self.path}: {p}" for p in self.problems))


# -- host selectors ------------------------------------------------------------

def resolve_host(selector: str, host_names_by_kind: Mapping[str, Sequence[str]]) -> str:
    """The host name a selector stands for.

    Parameters
    ----------
    selector : str
        ``compute:<k>``, ``ground:<name>`` or a host name (see module docstring).
    host_names_by_kind : mapping
        ``{"compute": [...], "ground": [...]}``, host names in node-id order.

    Raises
    ------
    ValueError
        With a message saying what is wrong (no key path; callers add it).
    """
    compute = list(host_names_by_kind.get("compute", ()))
    ground = list(host_names_by_kind.get("ground", ()))
    kind, sep, rest = selector.partition(":")
    if sep and kind == "compute":
        if not rest.isdigit():
            raise ValueError(f"{selector!r}: compute:<k> needs a whole number k >= 0")
        k = int(rest)
        if k >= len(compute):
            raise ValueError(f"{selector!r}: there are {len(compute)} compute satellites "
                             f"(compute:0 .. compute:{len(compute) - 1})" if compute else
                             f"{selector!r}: there are no compute satellites (add a [compute] table)")
        return compute[k]
    if sep and kind == "ground":
        if rest not in ground:
            raise ValueError(f"{selector!r}: no ground station {rest!r}; stations: "
                             f"{', '.join(ground) or 'none'}")
        return rest
    if selector in compute or selector in ground:
        return selector
    raise ValueError(f"{selector!r} is not a host; use compute:<k>, ground:<name>, or the name "
                     "of a compute satellite or ground station")


# -- parts of a spec -------------------------------------------------------------

@dataclass(frozen=True)
class AlgorithmSpec:
    """A routing algorithm to compare.

    Attributes
    ----------
    name : str
        Key of ``controllers.ALGORITHMS``, or the ``name`` of a user's algorithm file's
        ``ALGORITHM``.
    params : dict
        All parameters, validated, defaults filled in.
    label : str
        Unique within the spec; names the algorithm's results folder and plot legend.
    path : Path or None
        A user's algorithm file (absolute), when the spec gave ``path`` instead of ``name``.
    updates : str
        How route changes reach the switches: ``"direct"`` (in place) or ``"consistent"``
        (two-phase, version-tagged: controllers/consistent.py).
    controller_location : str or None
        Where this entry's controller sits (``controller_location``, checked like
        ``[controller] location``); None: the spec's ``[controller] location``.
    """

    name: str
    params: Mapping[str, Any]
    label: str
    path: Path | None = None
    updates: str = "direct"
    controller_location: str | None = None

    @property
    def ref(self) -> str:
        """What the controller is started with: the registered name or the file's path."""
        return str(self.path) if self.path is not None else self.name


@dataclass(frozen=True)
class PlacementSpec:
    """Which compute satellite runs each rank of a workload.

    Attributes
    ----------
    rule : str
        ``"first"`` (the first n_ranks compute satellites in node-id order),
        ``"spread"`` (evenly spaced over the compute satellites in node-id order),
        ``"sunlit"`` (energy-aware: the compute satellites sunlit for the largest share of
        the window, ties by node id; resolved from the schedule when the run prepares, so
        ``node_ids`` is empty at load time) or
        ``"ids"`` (the node ids listed in the spec, rank r on ``node_ids[r]``).
    node_ids : tuple of int
        Satellite node id of each rank, resolved at load time.
    compute_indices : tuple of int
        Index of each rank's satellite among the compute satellites (node-id order).
    """

    rule: str
    node_ids: tuple[int, ...]
    compute_indices: tuple[int, ...]

    def hosts(self, compute_hosts: Sequence[str], n_ranks: int | None = None,
              sunlit_share: Sequence[float] | None = None) -> list[str]:
        """Host name of each rank, given the compute hosts' names in node-id order (and, for
        ``"sunlit"``, each one's share of the window in sunlight, same order)."""
        if self.rule == "sunlit":
            if sunlit_share is None or n_ranks is None:
                raise InputError("placement 'sunlit' needs the schedule's sunlight (resolved when the run prepares)")
            order = sorted(range(len(compute_hosts)), key=lambda i: (-sunlit_share[i], i))
            return [compute_hosts[i] for i in order[:n_ranks]]
        if len(compute_hosts) <= max(self.compute_indices, default=-1):
            raise InputError(f"placement {self.rule!r} needs compute host #{max(self.compute_indices)}, "
                             f"but the network has {len(compute_hosts)} compute hosts")
        return [compute_hosts[i] for i in self.compute_indices]


@dataclass(frozen=True)
class WorkloadSpec:
    """A GPU job: a generator with parameters, or a trace file, and its placement.

    Attributes
    ----------
    label : str
        Unique within the spec.
    n_ranks : int
        Ranks of the job (one per compute satellite it uses).
    placement : PlacementSpec
    generator : str or None
        Key of ``testbed.workload.GENERATORS``.
    params : dict
        Generator parameters as written (without ``n_ranks``).
    trace : Path or None
        Absolute path of a Chakra ``.et`` file or folder, or a ``.jsonl`` workload file.
    """

    label: str
    n_ranks: int
    placement: PlacementSpec
    generator: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    trace: Path | None = None

    @property
    def source(self) -> str:
        """``generator:<name>`` or ``trace:<path>``."""
        return f"generator:{self.generator}" if self.generator else f"trace:{self.trace}"

    def build(self):
        """The workload with the job's real byte counts (not yet scaled by rate_scale).

        Returns
        -------
        testbed.workload.Workload
        """
        if self.generator is not None:
            return GENERATORS[self.generator](n_ranks=self.n_ranks, **dict(self.params))
        return load_trace(self.trace, self.n_ranks)

    def place(self, host_names_by_kind: Mapping[str, Sequence[str]],
              sunlit_share: Sequence[float] | None = None) -> list[str]:
        """Host name of each rank, given ``{"compute": [...], ...}`` host names in node-id order
        (``sunlit_share``: per compute host, for the ``"sunlit"`` rule)."""
        return self.placement.hosts(list(host_names_by_kind.get("compute", ())), self.n_ranks, sunlit_share)


def trace_format(path: Path) -> str | None:
    """``"jsonl"``, ``"chakra"`` or None (unsupported) for a trace path."""
    if path.suffix == ".jsonl":
        return "jsonl"
    if path.is_dir() or path.suffix == ".et":
        return "chakra"
    return None


def load_trace(path: Path, n_ranks: int | None = None):
    """Read a trace: a project ``.jsonl`` workload file or a Chakra ``.et`` file/folder.

    Raises ``testbed.workload.WorkloadError`` for a bad file or a rank count other
    than ``n_ranks`` (when given).
    """
    fmt = trace_format(path)
    if fmt == "jsonl":
        workload = read_jsonl(path)
        if n_ranks is not None and workload.n_ranks != n_ranks:
            raise WorkloadError(f"{path}: the trace has {workload.n_ranks} ranks but {n_ranks} are expected")
        return workload
    if fmt == "chakra":
        return load_chakra(path, n_ranks=n_ranks)
    raise WorkloadError(f"{path}: not a trace (expected a Chakra .et file or folder, or a .jsonl workload file)")


@dataclass(frozen=True)
class PcapSpec:
    """A capture replayed open loop between hosts (``[[pcap]]``; :mod:`testbed.traffic.pcapreplay`).

    Attributes
    ----------
    label : str
    file : Path
        The pcap, absolute.
    hosts : tuple of str
        Host names the capture's IPv4 addresses map onto, in order of first appearance,
        cycling (resolved from ``host_selectors`` at load time).
    host_selectors : tuple of str
        The hosts as written.
    start_s : float
        Orbital time of the first packet, from the schedule epoch [s].
    n_packets : int
        IPv4 packets in the capture.
    span_s : float
        Time from its first to its last packet [s].
    size_bytes : int
        Their frame bytes. Replayed as captured: ``rate_scale`` scales neither sizes
        nor timing (a packet-level experiment keeps its packets).
    """

    label: str
    file: Path
    hosts: tuple[str, ...]
    host_selectors: tuple[str, ...]
    start_s: float
    n_packets: int
    span_s: float
    size_bytes: int


@dataclass(frozen=True)
class BackgroundSpec:
    """A constant-rate background flow between two hosts.

    Attributes
    ----------
    label : str
    src, dst : str
        Host names of the two ends, resolved from the selectors at load time (they
        are the schedule's node names, i.e. the emulated hosts' names).
    rate_bps : float
        What the emulation sends [bit/s]: ``nominal_rate_bps * rate_scale`` (like a
        link's ``rate_bps`` in the network plan).
    start_s, duration_s : float
        Orbital time of the start, from the schedule epoch, and length [s].
    nominal_rate_bps : float
        The rate as written in the spec [bit/s], on the scale of the real links.
    src_selector, dst_selector : str
        The ends as written (``compute:0``, ``ground:svalbard``, a host name);
        :meth:`resolve` re-resolves them against other host lists.
    """

    label: str
    src: str
    dst: str
    rate_bps: float
    start_s: float
    duration_s: float
    nominal_rate_bps: float
    src_selector: str
    dst_selector: str

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def resolve(self, host_names_by_kind: Mapping[str, Sequence[str]]) -> tuple[str, str]:
        """``(src_host, dst_host)`` names of the selectors among the given hosts."""
        return (resolve_host(self.src_selector, host_names_by_kind),
                resolve_host(self.dst_selector, host_names_by_kind))


@dataclass(frozen=True)
class ProbeSpec:
    """RTT probes between pairs of hosts.

    Attributes
    ----------
    pairs : str or tuple of (str, str)
        ``"all-compute"`` (every unordered pair of compute hosts), ``"all"`` (every
        unordered pair of hosts, compute then ground), or explicit selector pairs.
    rate_hz : float
        Probes per second per pair.
    """

    pairs: str | tuple[tuple[str, str], ...] = "all-compute"
    rate_hz: float = 10.0

    def resolve_pairs(self, host_names_by_kind: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
        """Host-name pairs to probe, in a deterministic order.

        Parameters
        ----------
        host_names_by_kind : mapping
            ``{"compute": [...], "ground": [...]}``, host names in node-id order.
        """
        compute = list(host_names_by_kind.get("compute", ()))
        ground = list(host_names_by_kind.get("ground", ()))
        if self.pairs == "all-compute":
            return list(itertools.combinations(compute, 2))
        if self.pairs == "all":
            return list(itertools.combinations(compute + ground, 2))
        return [(resolve_host(a, host_names_by_kind), resolve_host(b, host_names_by_kind))
                for a, b in self.pairs]


@dataclass(frozen=True)
class Spec:
    """A validated experiment spec (see experiments/README.md for the file format).

    Attributes
    ----------
    path : Path
        The spec file (absolute).
    raw : dict
        The parsed TOML, JSON-friendly (TOML date-times become ISO 8601 strings),
        for the results manifest.
    name, description : str
    seed : int
        Trial k uses seed + k (workload expansion); every algorithm of a trial the same.
    trials : int
        Repeated trials of every algorithm, each on a freshly built network.
    output_dir : Path
        Absolute; results go to ``output_dir / name / <run_id>``.
    topology : topologies.ScheduleConfig
        Everything that determines the link schedule (also :meth:`schedule_config`).
    speedup : float
        Orbital seconds per wall second.
    rate_scale : float
        Link rates and workload bytes are multiplied by it (docs/architecture.md, Conventions).
    backend : str
        ``"auto"``, ``"netem"`` or ``"delayline"``.
    power : testbed.power.PowerSpec or None
        ``[compute.power]``: the compute satellites' power model (None: always full clock).
    max_lag_steps : float
        A replay whose clock fell further behind than this many schedule steps is not
        valid: the summary and the report say so first (the run still completes).
    time_dilation : float
        ``[emulation] time_dilation``, >= 1: the emulated world runs this many times slower
        than the wall clock (testbed/net/dilation.py); results stay in emulated seconds.
    algorithms, workloads, background, pcaps : tuples of the specs above
    probes : ProbeSpec
    n_satellites : int
    compute_node_ids : tuple of int
        Node ids of the compute satellites, ascending.
    compute_names : tuple of str
        Their node (host) names, same order.
    ground_names : tuple of str
        Ground station (host) names in node-id order.
    controller_location : str
        ``[controller] location``: ``"local"``, ``"ground:<name>"`` or ``"satellite:<id>"``
        (see :mod:`testbed.control.placement`); an algorithm entry may override it.
    """

    path: Path
    raw: dict
    name: str
    description: str
    seed: int
    trials: int
    output_dir: Path
    topology: Any
    speedup: float
    rate_scale: float
    backend: str
    max_lag_steps: float
    power: Any
    algorithms: tuple[AlgorithmSpec, ...]
    workloads: tuple[WorkloadSpec, ...]
    background: tuple[BackgroundSpec, ...]
    probes: ProbeSpec
    n_satellites: int
    compute_node_ids: tuple[int, ...]
    compute_names: tuple[str, ...]
    ground_names: tuple[str, ...]
    pcaps: tuple[PcapSpec, ...] = ()
    faults: tuple = ()                 # testbed.faults.FaultSpec, applied by the clock at their times
    time_dilation: float = 1.0         # emulated seconds last this many wall seconds
    controller_location: str = "local"

    def location_of(self, alg: AlgorithmSpec) -> str:
        """Where ``alg``'s controller sits: its own ``controller_location`` or the spec's."""
        return alg.controller_location or self.controller_location

    def schedule_config(self):
        """The :class:`topologies.ScheduleConfig` to generate the schedule from."""
        return self.topology

    @property
    def duration_s(self) -> float:
        return self.topology.duration_s

    @property
    def step_s(self) -> float:
        return self.topology.step_s

    @property
    def n_steps(self) -> int:
        return self.topology.n_steps

    @property
    def wall_s_per_algorithm(self) -> float:
        """Wall time of one algorithm's replay: ``duration_s / speedup x time_dilation`` [s]
        (set-up not included)."""
        return self.duration_s / self.speedup * self.time_dilation

    def host_names_by_kind(self) -> dict[str, list[str]]:
        """Host names the network will have, by kind, in node-id order."""
        return {"compute": list(self.compute_names), "ground": list(self.ground_names)}
