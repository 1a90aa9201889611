"""Link-state snapshots and their conversion to a networkx graph.

A :class:`Snapshot` is the state of the laser mesh at one instant: which
switches (satellites) exist and, for each inter-satellite link, its one-way
delay, capacity and whether it is up.  It is an immutable value; the routing
algorithms never see it directly, they see :func:`to_graph` of it.

The link-state feed arrives as JSON; :func:`from_records` builds a snapshot
from the decoded dicts and rejects unknown or missing keys, so a misspelt
field fails loudly instead of being ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .errors import SnapshotError

__all__ = ["LinkState", "Snapshot", "from_records", "to_graph", "LINK_RECORD_KEYS"]

#: Keys of one link record, exactly (see :func:`from_records`).
LINK_RECORD_KEYS = ("a", "b", "delay_s", "capacity_bps", "up")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class LinkState:
    """State of one undirected inter-switch link.

    Attributes
    ----------
    a, b : int
        Switch ids of the two ends, canonical order ``a < b``.
    delay_s : float
        One-way propagation delay in seconds.  Finite and > 0 when the link
        is up; a down link may carry ``math.inf`` (no line of sight).
    capacity_bps : float
        Link rate in bit/s.  Finite and > 0 when up; >= 0 when down.
    up : bool
        Whether the link carries traffic in this snapshot.
    """

    a: int
    b: int
    delay_s: float
    capacity_bps: float
    up: bool

    def __post_init__(self) -> None:
        if not (_is_int(self.a) and _is_int(self.b)):
            raise SnapshotError(f"link ends must be int switch ids, got a={self.a!r}, b={self.b!r}")
        if not self.a < self.b:
            raise SnapshotError(
                f"link ({self.a}, {self.b}): ends must be in canonical order a < b "
                "(use from_records, which orders them, or swap them)"
            )
        if not isinstance(self.up, bool):
            raise SnapshotError(f"link ({self.a}, {self.b}): up must be a bool, got {self.up!r}")
        for name in ("delay_s", "capacity_bps"):
            value = getattr(self, name)
            if not _is_number(value) or math.isnan(value):
                raise SnapshotError(f"link ({self.a}, {self.b}): {name} must be a number, got {value!r}")
        if self.up:
            if not (math.isfinite(self.delay_s) and self.delay_s > 0):
                raise SnapshotError(
                    f"link ({self.a}, {self.b}) is up: delay_s must be finite and > 0, got {self.delay_s!r}"
                )
            if not (math.isfinite(self.capacity_bps) and self.capacity_bps > 0):
                raise SnapshotError(
                    f"link ({self.a}, {self.b}) is up: capacity_bps must be finite and > 0, "
                    f"got {self.capacity_bps!r}"
                )
        else:
            if not self.delay_s > 0:
                raise SnapshotError(f"link ({self.a}, {self.b}): delay_s must be > 0, got {self.delay_s!r}")
            if not self.capacity_bps >= 0:
                raise SnapshotError(
                    f"link ({self.a}, {self.b}): capacity_bps must be >= 0, got {self.capacity_bps!r}"
                )

    @property
    def edge(self) -> tuple[int, int]:
        """The canonical edge ``(a, b)``."""
        return (self.a, self.b)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Link state of the whole mesh at time ``t_s``.

    Attributes
    ----------
    t_s : float
        Orbital time of the snapshot in seconds (the schedule's clock).
    switches : tuple[int, ...]
        All switch ids, stored sorted.
    links : tuple[LinkState, ...]
        Links between those switches, stored sorted by ``(a, b)``; at most one
        per switch pair.  Down links may be listed (``up=False``) or omitted.
    """

    t_s: float
    switches: tuple[int, ...]
    links: tuple[LinkState, ...]

    def __post_init__(self) -> None:
        if not _is_number(self.t_s) or not math.isfinite(self.t_s):
            raise SnapshotError(f"t_s must be a finite number, got {self.t_s!r}")
        switches = tuple(self.switches)
        for s in switches:
            if not _is_int(s):
                raise SnapshotError(f"switch ids must be int, got {s!r}")
        ordered = tuple(sorted(set(switches)))
        if len(ordered) != len(switches):
            raise SnapshotError("duplicate switch ids in snapshot")
        known = set(ordered)
        links = tuple(sorted(self.links, key=lambda link: (link.a, link.b)))
        for i, link in enumerate(links):
            if not isinstance(link, LinkState):
                raise SnapshotError(f"links must be LinkState, got {type(link).__name__}")
            if link.a not in known or link.b not in known:
                raise SnapshotError(f"link ({link.a}, {link.b}) names a switch that is not in switches")
            if i and links[i - 1].edge == link.edge:
                raise SnapshotError(f"duplicate link ({link.a}, {link.b}) in snapshot")
        object.__setattr__(self, "switches", ordered)
        object.__setattr__(self, "links", links)


def _link_from_record(i: int, record: Mapping[str, Any]) -> LinkState:
    if not isinstance(record, Mapping):
        raise SnapshotError(f"link record {i} must be a mapping, got {type(record).__name__}")
    unknown = sorted(set(record) - set(LINK_RECORD_KEYS), key=str)
    if unknown:
        raise SnapshotError(
            f"link record {i}: unknown key(s) {unknown}; allowed keys are {list(LINK_RECORD_KEYS)}"
        )
    missing = [key for key in LINK_RECORD_KEYS if key not in record]
    if missing:
        raise SnapshotError(f"link record {i}: missing key(s) {missing}")
    a, b = record["a"], record["b"]
    if not (_is_int(a) and _is_int(b)):
        raise SnapshotError(f"link record {i}: a and b must be int switch ids, got a={a!r}, b={b!r}")
    if a == b:
        raise SnapshotError(f"link record {i}: a link from switch {a} to itself")
    a, b = min(a, b), max(a, b)
    try:
        return LinkState(a, b, record["delay_s"], record["capacity_bps"], record["up"])
    except SnapshotError as exc:
        raise SnapshotError(f"link record {i}: {exc}") from None


def from_records(
    t_s: float, switches: Iterable[int], records: Iterable[Mapping[str, Any]]
) -> Snapshot:
    """Build a :class:`Snapshot` from decoded JSON link records.

    Parameters
    ----------
    t_s : float
        Orbital time of the snapshot, seconds.
    switches : iterable of int
        All switch ids (including switches that currently have no up link).
    records : iterable of mapping
        One dict per link with exactly the keys ``a``, ``b`` (int switch ids,
        any order; they are put in canonical order), ``delay_s`` (float, s),
        ``capacity_bps`` (float, bit/s) and ``up`` (bool).

    Raises
    ------
    SnapshotError
        On an unknown or missing key, a bad value, a duplicate link or a
        link to a switch not in ``switches``; the message names the record.
    """
    links = [_link_from_record(i, record) for i, record in enumerate(records)]
    return Snapshot(t_s=t_s, switches=tuple(switches), links=tuple(links))


def to_graph(snapshot: Snapshot) -> nx.Graph:
    """The routing graph of a snapshot.

    Returns
    -------
    networkx.Graph
        Nodes: every switch of the snapshot (isolated ones included), added
        in sorted order.  Edges: only the links that are up, with attributes
        ``delay_s`` (s) and ``capacity_bps`` (bit/s).  ``graph.graph["t_s"]``
        holds the snapshot time.
    """
    graph = nx.Graph(t_s=snapshot.t_s)
    graph.add_nodes_from(snapshot.switches)
    graph.add_edges_from(
        (link.a, link.b, {"delay_s": float(link.delay_s), "capacity_bps": float(link.capacity_bps)})
        for link in snapshot.links
        if link.up
    )
    return graph
