"""Where the controller sits, and how far (in propagation delay) each switch is from it.

A controller *location* is ``"local"`` (on the testbed's own machine, no delay: the
default), ``"ground:<station name>"`` (or ``"ground:<a>,<b>,..."``: the controller
reaches each switch through the nearest of several stations, which are taken to be joined
by a terrestrial network whose own delay is not modelled) or ``"satellite:<node id>"``. For a non-local
location the control path is a separate management path whose one-way delay follows the
in-band geometry: at each schedule step, the shortest-delay path over the links that are
up at that step, from the location's node to every switch
(:func:`control_delays_s`). Packets of the control channel do not cross the emulated
data plane; :mod:`testbed.control.relay` holds them for these delays. A switch with no
path at a step has an infinite delay there (out of reach).

Pure: numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

#: A link's weight never falls below this (s): scipy's sparse graphs drop explicit zeros.
MIN_LINK_DELAY_S = 1e-12


@dataclass(frozen=True)
class ControlLocation:
    """A parsed location: ``kind`` is a key of :data:`LOCATION_KINDS`, ``name`` its argument
    (the station's name, the satellite's node id as text; ``""`` for local)."""

    kind: str
    name: str = ""

    @property
    def text(self) -> str:
        return self.kind if self.kind == "local" else f"{self.kind}:{self.name}"

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


def _local(name: str, ground: Sequence[str], n_satellites: int) -> str | None:
    return None if not name else "takes no argument (write \"local\")"


def _ground(name: str, ground: Sequence[str], n_satellites: int) -> str | None:
    names = name.split(",")
    unknown = [n for n in names if n not in ground]
    if not unknown and len(set(names)) == len(names):
        return None
    if not unknown:
        return "a station is named twice"
    return f"no ground station {unknown[0]!r}; stations: {', '.join(ground) or 'none'}"


def _satellite(name: str, ground: Sequence[str], n_satellites: int) -> str | None:
    if name.isdigit() and int(name) < n_satellites:
        return None
    return f"satellite:<id> needs a node id 0 .. {n_satellites - 1}, got {name!r}"


#: kind -> check(argument, ground station names, number of satellites) -> problem or None.
LOCATION_KINDS: dict[str, Callable[[str, Sequence[str], int], str | None]] = {
    "local": _local, "ground": _ground, "satellite": _satellite}


def parse_location(text: str, ground_names: Sequence[str], n_satellites: int) -> ControlLocation:
    """``"local"``, ``"ground:NAME"`` or ``"satellite:ID"`` checked against the topology.

    Raises
    ------
    ValueError
        One line saying what is wrong (no key path; the spec reader adds it).
    """
    kind, _, name = text.partition(":")
    check = LOCATION_KINDS.get(kind)
    if check is None:
        raise ValueError(f"unknown controller location {text!r}: use local, ground:<station> or satellite:<id>")
    problem = check(name, ground_names, n_satellites)
    if problem:
        raise ValueError(f"{text!r}: {problem}")
    return ControlLocation(kind, name)


def location_node(location: ControlLocation, host_switch: Mapping[str, int]) -> tuple[int, ...] | None:
    """The switch nodes the location sits at (None for local; several for several ground
    stations). ``host_switch``: host name -> switch node id (ground stations' hosts are
    named after their station)."""
    if location.is_local:
        return None
    if location.kind == "ground":
        return tuple(int(host_switch[n]) for n in location.name.split(","))
    return (int(location.name),)


def control_delays_s(n_nodes: int, a: np.ndarray, b: np.ndarray, delay_s: np.ndarray, up: np.ndarray,
                     source: int | Sequence[int]) -> np.ndarray:
    """One-way shortest-delay from ``source`` (the nearest of several) to every node, per step.

    Parameters
    ----------
    n_nodes : int
        Node ids are ``0 .. n_nodes - 1``.
    a, b : (n_links,) int
        The two ends of each (undirected) link.
    delay_s : (n_steps, n_links) float
        One-way delay of each link per step [s]; ignored where not ``up``.
    up : (n_steps, n_links) bool
        Link usable at the step.
    source : int or sequence of int
        The controller's node, or the nodes it reaches the network through.

    Returns
    -------
    (n_steps, n_nodes) float
        Delay [s] of the shortest-delay path over the step's up links; 0 at ``source``,
        ``inf`` where no path exists (out of reach).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    delay_s = np.atleast_2d(np.asarray(delay_s, dtype=float))
    up = np.atleast_2d(np.asarray(up, dtype=bool))
    if delay_s.shape != up.shape or delay_s.shape[1] != len(a) or len(a) != len(b):
        raise ValueError(f"shapes disagree: a {a.shape}, b {b.shape}, delay {delay_s.shape}, up {up.shape}")
    sources = np.atleast_1d(np.asarray(source, dtype=np.int64))
    if sources.size == 0 or sources.min() < 0 or sources.max() >= n_nodes:
        raise ValueError(f"sources {sources.tolist()} are not all node ids in 0 .. {n_nodes - 1}")
    from scipy.sparse import coo_matrix           # here: importing scipy costs every testbed
    from scipy.sparse.csgraph import dijkstra     # process ~0.2 s (seconds in the UML guest)

    out = np.empty((delay_s.shape[0], n_nodes))
    for k in range(delay_s.shape[0]):
        m = up[k]
        w = np.maximum(np.nan_to_num(delay_s[k, m], nan=np.inf), MIN_LINK_DELAY_S)
        g = coo_matrix((w, (a[m], b[m])), shape=(n_nodes, n_nodes)).tocsr()
        out[k] = dijkstra(g, directed=False, indices=sources, min_only=True)
    return out




@dataclass(frozen=True)
class ControlDelays:
    """The control channel's one-way delays of a run, per step and switch.

    Attributes
    ----------
    source : tuple of int
        The controller's node(s).
    switch_ids : (n_switches,) int
        The switch nodes (columns of ``delay_s``).
    delay_s : (n_steps, n_switches) float
        One-way delay [s] per step; ``inf`` out of reach.
    """

    source: tuple[int, ...]
    switch_ids: tuple[int, ...]
    delay_s: np.ndarray

    @classmethod
    def from_links(cls, source: int | Sequence[int], switch_ids: Sequence[int], a, b, delay_s, up) -> "ControlDelays":
        """From the links' ends (``(n_links,)``) and their per-step ``delay_s`` and ``up``
        (``(n_steps, n_links)``), as :func:`control_delays_s` takes them."""
        ids = tuple(int(n) for n in switch_ids)
        sources = tuple(int(n) for n in np.atleast_1d(source))
        n_nodes = max(max(ids, default=0), *sources) + 1
        full = control_delays_s(n_nodes, a, b, delay_s, up, sources)
        return cls(sources, ids, full[:, list(ids)])

    def at(self, step: int) -> dict[int, float]:
        """Switch node -> one-way delay [s] at ``step``."""
        return dict(zip(self.switch_ids, self.delay_s[step].tolist()))
