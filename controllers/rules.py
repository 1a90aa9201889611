"""Routes -> abstract OpenFlow 1.3 rules.

Pure translation, no os-ken: :mod:`controllers.ofmsg` turns these values into flow
mods and group mods.  Plan, then apply: :func:`build_flow_table` plans the whole
table for a step, :func:`controllers.diff.diff_rules` computes what to send, and
:meth:`controllers.diff.SwitchDiff.operations` gives the order that is safe on a
live switch.

Model
    One rule per (switch, destination host): match ``eth_type=IPv4,
    ipv4_dst=<host>/32`` (:mod:`controllers.ofmsg` adds ``eth_type``), one priority, and
    either :class:`OutputAction` (single path, or local delivery at the
    host's own switch) or :class:`GroupAction` pointing at a
    :class:`SelectGroup` whose buckets ``(port, weight)`` spread flows over
    several next hops.  A switch with no route to a host gets no rule for it
    (no table-miss entry is installed: OpenFlow 1.3 drops what matches nothing).

Group ids
    The select group on switch ``s`` toward destination switch ``d`` has
    group id ``d`` (all hosts behind ``d`` share it), so a group id is stable
    across steps and a change of buckets is one group modify, not a rule
    change.  :mod:`controllers.ofmsg` must not use group ids in ``0..max switch id`` for
    anything else.

Invariant
    A :data:`FlowTable` never holds an empty :class:`SwitchTable`, so two
    tables that forward the same are equal as values.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import Union

from .algorithms.base import Routes
from .errors import RuleError

__all__ = [
    "DEFAULT_PRIORITY",
    "OFPP_MAX",
    "OFPG_MAX",
    "HostAttachment",
    "OutputAction",
    "GroupAction",
    "Action",
    "SelectGroup",
    "Rule",
    "SwitchTable",
    "FlowTable",
    "build_flow_table",
    "bucket_weights",
]

#: Priority of the per-host IPv4 rules.
DEFAULT_PRIORITY = 1000
#: Largest physical port number in OpenFlow 1.3.
OFPP_MAX = 0xFFFFFF00
#: Largest group id in OpenFlow 1.3.
OFPG_MAX = 0xFFFFFF00
#: Bucket weights are integers in 1..WEIGHT_RESOLUTION (OpenFlow: uint16).
WEIGHT_RESOLUTION = 1000

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_port(port: object, what: str) -> None:
    if not _is_int(port) or not 1 <= port <= OFPP_MAX:
        raise RuleError(f"{what}: OpenFlow port must be an int in 1..{OFPP_MAX:#x}, got {port!r}")


def _ipv4(address: object) -> str:
    try:
        return str(ipaddress.IPv4Address(address))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise RuleError(f"not an IPv4 host address: {address!r}") from None


@dataclass(frozen=True, slots=True)
class HostAttachment:
    """Where a host is plugged in.

    Attributes
    ----------
    switch : int
        Switch id the host hangs off.
    port : int
        OpenFlow port number of that switch leading to the host.
    mac : str
        Host MAC, ``aa:bb:cc:dd:ee:ff`` (stored lower-case).
    """

    switch: int
    port: int
    mac: str

    def __post_init__(self) -> None:
        if not _is_int(self.switch):
            raise RuleError(f"host switch must be an int switch id, got {self.switch!r}")
        _check_port(self.port, f"host on switch {self.switch}")
        mac = self.mac.lower() if isinstance(self.mac, str) else self.mac
        if not isinstance(mac, str) or not _MAC.match(mac):
            raise RuleError(f"host on switch {self.switch}: bad MAC {self.mac!r} (want aa:bb:cc:dd:ee:ff)")
        object.__setattr__(self, "mac", mac)


@dataclass(frozen=True, slots=True)
class OutputAction:
    """Output to one port."""

    port: int


@dataclass(frozen=True, slots=True)
class GroupAction:
    """Hand the packet to select group ``group_id`` on the same switch."""

    group_id: int


Action = Union[OutputAction, GroupAction]


@dataclass(frozen=True, slots=True)
class SelectGroup:
    """OpenFlow select group: each flow hashed to one bucket by weight.

    Attributes
    ----------
    group_id : int
    buckets : tuple of (int, int)
        ``(output port, weight)``, sorted by port, weights >= 1, >= 2 buckets.
    """

    group_id: int
    buckets: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """One flow entry: IPv4 destination /32 -> action.

    Attributes
    ----------
    ipv4_dst : str
        Destination host address, dotted quad, exact match.
    action : OutputAction or GroupAction
    priority : int
    """

    ipv4_dst: str
    action: Action
    priority: int = DEFAULT_PRIORITY


@dataclass(frozen=True)
class SwitchTable:
    """Rules and groups of one switch (read-only by convention).

    Attributes
    ----------
    rules : dict str -> Rule
        Keyed by ``ipv4_dst``, in sorted address order.
    groups : dict int -> SelectGroup
        Keyed by group id, sorted.
    """

    rules: Mapping[str, Rule] = field(default_factory=dict)
    groups: Mapping[int, SelectGroup] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rules) or bool(self.groups)


#: switch id -> its table; switches without rules are absent.
FlowTable = dict[int, SwitchTable]


def bucket_weights(weights: tuple[float, ...]) -> tuple[int, ...]:
    """Integer bucket weights for route weights that sum to 1.

    Scaled to :data:`WEIGHT_RESOLUTION` and divided by their gcd, so equal
    weights become all 1 and ``(0.5, 0.25, 0.25)`` becomes ``(2, 1, 1)``.
    A weight that rounds to 0 gives 0 (the caller drops that bucket).
    """
    scaled = [round(w * WEIGHT_RESOLUTION) for w in weights]
    common = reduce(math.gcd, scaled, 0) or 1
    return tuple(s // common for s in scaled)


def build_flow_table(
    routes: Routes,
    ports: Mapping[tuple[int, int], int],
    hosts: Mapping[str, HostAttachment],
    *,
    priority: int = DEFAULT_PRIORITY,
) -> FlowTable:
    """Plan every switch's rules for the given routes.

    Parameters
    ----------
    routes : Routes
        From a router: switch -> destination switch -> ((neighbour, weight), ...).
    ports : mapping (int, int) -> int
        ``(switch, neighbour switch)`` -> OpenFlow port on ``switch`` toward it.
    hosts : mapping str -> HostAttachment
        Host IPv4 address -> attachment.
    priority : int
        Priority of every rule.

    Returns
    -------
    FlowTable
        For each switch with at least one rule: a rule per reachable host
        (local delivery at the host's own switch) and a select group per
        multipath destination switch.

    Raises
    ------
    RuleError
        On a missing port for a next hop, a bad address, bad weights, or a
        destination switch id unusable as a group id.
    """
    if not _is_int(priority) or not 0 <= priority <= 0xFFFF:
        raise RuleError(f"priority must be an int in 0..65535, got {priority!r}")
    attached = []
    for ip, host in hosts.items():
        address = _ipv4(ip)
        if not isinstance(host, HostAttachment):
            raise RuleError(f"hosts[{address!r}] must be a HostAttachment, got {type(host).__name__}")
        attached.append((_address_key(address), address, host))
    attached.sort(key=lambda item: item[0])
    dest_switches = sorted({host.switch for _, _, host in attached})
    switches = sorted(set(routes) | set(dest_switches))
    # (address, action code) -> Rule, where code = port (output) or -1 - group id
    known: dict[tuple[str, int], Rule] = {}
    table: FlowTable = {}
    for s in switches:
        by_dest = routes.get(s, {})
        groups: dict[int, SelectGroup] = {}
        memo: dict[tuple, tuple[int, Action]] = {}  # single next hop -> (code, action), on this switch
        codes: dict[int, tuple[int, Action] | None] = {}  # destination switch -> (code, action)
        for d in dest_switches:
            hops = by_dest.get(d) if d != s else None
            if hops is not None and len(hops) == 1:
                coded = memo.get(hops)
                if coded is None:
                    coded = memo[hops] = _coded(_forwarding_action(s, d, hops, ports, groups))
                codes[d] = coded
            else:
                codes[d] = _coded(_forwarding_action(s, d, hops, ports, groups))
        rules: dict[str, Rule] = {}
        for _, address, host in attached:
            coded = (host.port, _output(host.port)) if host.switch == s else codes[host.switch]
            if coded is None:
                continue
            rule = known.get((address, coded[0]))
            if rule is None:
                rule = known[(address, coded[0])] = _rule(address, coded[1], priority)
            rules[address] = rule
        if rules:
            table[s] = SwitchTable(rules, dict(sorted(groups.items())))
    return table


def _coded(action: Action | None) -> tuple[int, Action] | None:
    if action is None:
        return None
    if isinstance(action, OutputAction):
        return (action.port, action)
    return (-1 - action.group_id, action)


@functools.lru_cache(maxsize=1 << 16)
def _address_key(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


@functools.lru_cache(maxsize=1 << 12)
def _output(port: int) -> OutputAction:
    return OutputAction(port)


@functools.lru_cache(maxsize=1 << 18)
def _rule(address: str, action: Action, priority: int) -> Rule:
    """Interned rules: a rule that does not change between steps is the same
    object, so comparing tables is mostly identity checks."""
    return Rule(address, action, priority)


def _forwarding_action(s, d, hops, ports, groups) -> Action | None:
    if not hops:
        return None
    if len(hops) == 1 and hops[0][1] == 1.0:  # single path: the common case
        v = hops[0][0]
        port = ports.get((s, v))
        if port is None:
            raise RuleError(f"route on switch {s} to {d}: no port known on switch {s} toward neighbour {v}")
        _check_port(port, f"port of switch {s} toward {v}")
        return _output(port)
    total = 0.0
    bucket_ports = []
    for v, weight in hops:
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
            raise RuleError(f"route on switch {s} to {d}: weight of next hop {v} must be > 0, got {weight!r}")
        total += weight
        port = ports.get((s, v))
        if port is None:
            raise RuleError(f"route on switch {s} to {d}: no port known on switch {s} toward neighbour {v}")
        _check_port(port, f"port of switch {s} toward {v}")
        bucket_ports.append(port)
    if abs(total - 1.0) > 1e-6:
        raise RuleError(f"route on switch {s} to {d}: next-hop weights sum to {total}, not 1")
    if len(set(bucket_ports)) != len(bucket_ports):
        raise RuleError(f"route on switch {s} to {d}: two next hops share one port")
    weights = bucket_weights(tuple(w for _, w in hops))
    buckets = tuple(sorted((p, w) for p, w in zip(bucket_ports, weights) if w > 0))
    if len(buckets) == 1:
        return _output(buckets[0][0])
    if not _is_int(d) or not 0 <= d <= OFPG_MAX:
        raise RuleError(f"destination switch id {d!r} cannot be a group id (0..{OFPG_MAX:#x})")
    groups[d] = SelectGroup(d, buckets)
    return _group_action(d)


@functools.lru_cache(maxsize=1 << 16)
def _group_action(group_id: int) -> GroupAction:
    return GroupAction(group_id)
