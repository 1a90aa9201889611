"""An in-memory network of OpenFlow 1.3 tables, for tests without switches.

The idea is Faucet's ``clib/fakeoftable.py``: apply the changes the
controller would send, with the switch's semantics, then trace a packet hop
by hop and assert where it ends up.  Here the changes are
:class:`~controllers.rules.RuleDiff` operations and the packet is "IPv4 to
``ipv4_dst``", which is all the routing rules match on.

OpenFlow 1.3 behaviours modelled, because the diff's ordering depends on them:

* a flow add replaces an entry with the same match and priority;
* a strict flow modify of a missing entry does nothing (no implicit add);
* a flow pointing at a missing group is refused (``OFPBAC_BAD_OUT_GROUP``);
* adding an existing group or modifying a missing one is refused
  (``OFPGMFC_GROUP_EXISTS`` / ``OFPGMFC_UNKNOWN_GROUP``);
* deleting a group also deletes every flow that points at it.

:class:`FakeOFNetwork` is mutable runtime state (the tables), kept apart from
the immutable plans it applies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from .errors import RoutingError
from .rules import (
    FlowTable,
    GroupAction,
    HostAttachment,
    Op,
    OutputAction,
    Rule,
    RuleDiff,
    SelectGroup,
    SwitchTable,
    diff_rules,
)

__all__ = ["FakeOFError", "FakeOFNetwork", "Trace"]


class FakeOFError(RoutingError):
    """A message the fake switch refuses, as a real one would (error name given)."""


@dataclass(frozen=True)
class Trace:
    """Fate of one packet, over every branch of every select group.

    Attributes
    ----------
    delivered : tuple of paths
        Switch sequences that ended at the destination host's port.
    dropped : tuple of (path, reason)
        Branches that ended without delivery: ``"no rule"``, ``"link down"``,
        ``"unwired port"``, ``"wrong host"``.
    looped : tuple of paths
        Branches that came back to a switch already on the path (the
        repeated switch is the last element).
    """

    delivered: tuple[tuple[int, ...], ...]
    dropped: tuple[tuple[tuple[int, ...], str], ...]
    looped: tuple[tuple[int, ...], ...]

    @property
    def ok(self) -> bool:
        """Every branch delivered, none dropped or looping."""
        return bool(self.delivered) and not self.dropped and not self.looped


class FakeOFNetwork:
    """Switch tables wired together by ``ports`` and ``hosts``.

    Parameters
    ----------
    ports : mapping (int, int) -> int
        ``(switch, neighbour)`` -> port on ``switch`` toward ``neighbour``
        (both directions of each link must be given).
    hosts : mapping str -> HostAttachment
        Host IPv4 address -> attachment.
    """

    def __init__(self, ports: Mapping[tuple[int, int], int], hosts: Mapping[str, HostAttachment]):
        self._wire: dict[tuple[int, int], tuple[str, object]] = {}
        for (switch, neighbour), port in ports.items():
            self._connect(switch, port, ("switch", neighbour))
        for address, host in hosts.items():
            self._connect(host.switch, host.port, ("host", address))
        self._flows: dict[int, dict[str, Rule]] = {}
        self._groups: dict[int, dict[int, SelectGroup]] = {}
        self.messages = 0  # flow mods + group mods applied so far

    def _connect(self, switch: int, port: int, end: tuple[str, object]) -> None:
        if (switch, port) in self._wire:
            raise RoutingError(f"port {port} of switch {switch} is wired twice")
        self._wire[(switch, port)] = end

    # -- applying changes -----------------------------------------------------

    def apply(self, diff: RuleDiff) -> None:
        """Apply ``diff`` in :meth:`RuleDiff.operations` order."""
        for switch, op, item in diff.operations():
            self.send(switch, op, item)

    def install(self, table: FlowTable) -> RuleDiff:
        """Bring the tables to ``table`` by a diff from the current state."""
        diff = diff_rules(self.table(), table)
        self.apply(diff)
        return diff

    def send(self, switch: int, op: Op, item: Rule | SelectGroup) -> None:
        """Apply one flow mod or group mod to ``switch``."""
        flows = self._flows.setdefault(switch, {})
        groups = self._groups.setdefault(switch, {})
        self.messages += 1
        if op in (Op.FLOW_ADD, Op.FLOW_MODIFY):
            action = item.action
            if isinstance(action, GroupAction) and action.group_id not in groups:
                raise FakeOFError(f"OFPBAC_BAD_OUT_GROUP: switch {switch}, group {action.group_id} for {item.ipv4_dst}")
            current = flows.get(item.ipv4_dst)
            if op is Op.FLOW_ADD or (current is not None and current.priority == item.priority):
                flows[item.ipv4_dst] = item
        elif op is Op.FLOW_DELETE:
            current = flows.get(item.ipv4_dst)
            if current is not None and current.priority == item.priority:
                del flows[item.ipv4_dst]
        elif op is Op.GROUP_ADD:
            if item.group_id in groups:
                raise FakeOFError(f"OFPGMFC_GROUP_EXISTS: switch {switch}, group {item.group_id}")
            groups[item.group_id] = item
        elif op is Op.GROUP_MODIFY:
            if item.group_id not in groups:
                raise FakeOFError(f"OFPGMFC_UNKNOWN_GROUP: switch {switch}, group {item.group_id}")
            groups[item.group_id] = item
        elif op is Op.GROUP_DELETE:
            groups.pop(item.group_id, None)
            for address in [a for a, r in flows.items() if r.action == GroupAction(item.group_id)]:
                del flows[address]
        else:  # pragma: no cover - Op is closed
            raise FakeOFError(f"unknown operation {op!r}")

    def table(self) -> FlowTable:
        """Current contents, as a :data:`FlowTable` (empty switches omitted)."""
        result: FlowTable = {}
        for switch in sorted(set(self._flows) | set(self._groups)):
            rules = self._flows.get(switch, {})
            groups = self._groups.get(switch, {})
            table = SwitchTable(
                dict(sorted(rules.items(), key=lambda item: ipaddress.IPv4Address(item[0]))),
                dict(sorted(groups.items())),
            )
            if table:
                result[switch] = table
        return result

    # -- tracing --------------------------------------------------------------

    def trace(
        self, switch: int, ipv4_dst: str, *, links: nx.Graph | None = None, max_branches: int = 100_000
    ) -> Trace:
        """Follow a packet for ``ipv4_dst`` entering ``switch``.

        Parameters
        ----------
        switch : int
            Where the packet enters (as if sent by a host on that switch).
        ipv4_dst : str
            Destination address.
        links : networkx.Graph, optional
            Physical link state to forward over; a hop over a link that is
            not an edge of it is dropped as ``"link down"``.  Default: every
            wired link works.
        max_branches : int
            Guard against exponential fan-out through many select groups.
        """
        delivered: list[tuple[int, ...]] = []
        dropped: list[tuple[tuple[int, ...], str]] = []
        looped: list[tuple[int, ...]] = []
        stack: list[tuple[int, ...]] = [(switch,)]
        branches = 0
        while stack:
            path = stack.pop()
            here = path[-1]
            rule = self._flows.get(here, {}).get(ipv4_dst)
            if rule is None:
                dropped.append((path, "no rule"))
                continue
            if isinstance(rule.action, OutputAction):
                ports = [rule.action.port]
            else:
                group = self._groups.get(here, {}).get(rule.action.group_id)
                ports = [port for port, weight in group.buckets if weight > 0] if group else []
                if not ports:
                    dropped.append((path, "no rule"))
                    continue
            for port in reversed(ports):
                branches += 1
                if branches > max_branches:
                    raise RoutingError(f"trace from {switch} to {ipv4_dst}: more than {max_branches} branches")
                end = self._wire.get((here, port))
                if end is None:
                    dropped.append((path, "unwired port"))
                elif end[0] == "host":
                    if end[1] == ipv4_dst:
                        delivered.append(path)
                    else:
                        dropped.append((path, "wrong host"))
                else:
                    nxt = end[1]
                    if links is not None and not links.has_edge(here, nxt):
                        dropped.append((path, "link down"))
                    elif nxt in path:
                        looped.append(path + (nxt,))
                    else:
                        stack.append(path + (nxt,))
        return Trace(tuple(delivered), tuple(dropped), tuple(looped))
