"""An in-memory network of OpenFlow 1.3 switches, for tests without switches (a test double).

The idea is Faucet's ``clib/fakeoftable.py``: apply the messages the controller would
send, with the switch's semantics, then trace a packet hop by hop and assert where it
ends up. The messages are the real ones: :func:`controllers.ofmsg.switch_messages`
builds os-ken ``OFPFlowMod``/``OFPGroupMod`` objects for :data:`STUB_DATAPATH` (which
carries only os-ken's OpenFlow 1.3 ``ofproto`` and ``ofproto_parser``); each is
serialized to its wire bytes and decoded back (os-ken's ``OFPFlowMod`` parser; group
mods by their OpenFlow 1.3 layout with os-ken's bucket parser) before it is applied. So
the translation rules -> OpenFlow is tested here, hairpin companions included, without
root or Open vSwitch.

OpenFlow 1.3 behaviours modelled, because the controller's ordering depends on them:

* a flow add replaces an entry with the same match and priority;
* a strict flow modify of a missing entry does nothing (no implicit add);
* a flow pointing at a missing group is refused (``OFPBAC_BAD_OUT_GROUP``);
* adding an existing group or modifying a missing one is refused
  (``OFPGMFC_GROUP_EXISTS`` / ``OFPGMFC_UNKNOWN_GROUP``);
* deleting a group also deletes every flow that points at it;
* the highest-priority matching entry wins; output to the port a packet came in on is
  dropped unless it is ``OFPP_IN_PORT``.

:class:`FakeOFNetwork` is mutable runtime state (the tables), kept apart from the
immutable plans it applies.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import networkx as nx
from os_ken.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser

from controllers import ofmsg
from controllers.diff import RuleDiff, diff_rules
from controllers.errors import RoutingError
from controllers.rules import FlowTable, GroupAction, HostAttachment, OutputAction, Rule, SelectGroup, SwitchTable

__all__ = ["STUB_DATAPATH", "FakeOFError", "FakeOFNetwork", "Trace"]

OFP = ofproto_v1_3
#: What :mod:`controllers.ofmsg` needs of a datapath, and nothing else.
STUB_DATAPATH = SimpleNamespace(ofproto=ofproto_v1_3, ofproto_parser=ofproto_v1_3_parser)


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
        ``"unwired port"``, ``"wrong host"``, ``"output to in_port"``.
    looped : tuple of paths
        Branches that came back to a switch on a port they had already entered it by
        (same packet, same entry: a forwarding loop); the repeated switch is the last
        element. A hairpin bounce (back to the previous switch, which then forwards
        elsewhere) is not a loop.
    """

    delivered: tuple[tuple[int, ...], ...]
    dropped: tuple[tuple[tuple[int, ...], str], ...]
    looped: tuple[tuple[int, ...], ...]

    @property
    def ok(self) -> bool:
        """Every branch delivered, none dropped or looping."""
        return bool(self.delivered) and not self.dropped and not self.looped


@dataclass(frozen=True)
class _Flow:
    priority: int
    match: tuple[tuple[str, object], ...]   # sorted OXM fields
    actions: tuple[tuple[str, int], ...]    # ("output", port) or ("group", id)


def _decode(msg):
    """Serialize an os-ken message and decode its wire bytes back (what a switch receives)."""
    msg.serialize()
    buf = bytes(msg.buf)
    decoded = _DECODED.get(buf)
    if decoded is None:
        decoded = _DECODED[buf] = _decode_bytes(buf)
    return decoded


#: wire bytes -> decoded message (the same bytes decode the same: parse each once)
_DECODED: dict[bytes, SimpleNamespace] = {}


def _decode_bytes(buf: bytes):
    version, msg_type, msg_len, xid = ofproto_parser.header(buf)
    if version != OFP.OFP_VERSION or msg_len != len(buf):
        raise FakeOFError(f"bad OpenFlow header: version {version:#x}, length {msg_len} of {len(buf)} bytes")
    if msg_type == OFP.OFPT_GROUP_MOD:
        command, group_type, group_id = struct.unpack_from(OFP.OFP_GROUP_MOD_PACK_STR, buf, OFP.OFP_HEADER_SIZE)
        buckets, offset = [], OFP.OFP_GROUP_MOD_SIZE
        while offset < msg_len:
            bucket = ofproto_v1_3_parser.OFPBucket.parser(buf, offset)
            buckets.append(bucket)
            offset += bucket.len
        return SimpleNamespace(msg_type=msg_type, command=command, type=group_type, group_id=group_id,
                               buckets=buckets)
    if msg_type == OFP.OFPT_FLOW_MOD:
        fm = ofproto_parser.msg(STUB_DATAPATH, version, msg_type, msg_len, xid, buf)
        return SimpleNamespace(msg_type=msg_type, command=fm.command, table_id=fm.table_id, priority=fm.priority,
                               match=tuple(sorted(fm.match.items())), out_port=fm.out_port,
                               out_group=fm.out_group, instructions=fm.instructions)
    return SimpleNamespace(msg_type=msg_type)


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
        self._host_ports: dict[int, dict[str, int]] = {}   # switch -> host address -> port
        self._local: dict[int, set[str]] = {}
        self._toward = dict(ports)
        for (switch, neighbour), port in ports.items():
            self._connect(switch, port, ("switch", neighbour))
        for address, host in hosts.items():
            self._connect(host.switch, host.port, ("host", address))
            self._host_ports.setdefault(host.switch, {})[address] = host.port
            self._local.setdefault(host.switch, set()).add(address)
        self._flows: dict[int, dict[tuple, _Flow]] = {}
        self._groups: dict[int, dict[int, tuple[tuple[int, int], ...]]] = {}   # id -> ((port, weight), ...)
        self.messages = 0  # flow mods + group mods applied so far
        self._index: dict[int, dict[str | None, list[_Flow]]] | None = None   # for lookups, rebuilt after changes

    def _connect(self, switch: int, port: int, end: tuple[str, object]) -> None:
        if (switch, port) in self._wire:
            raise RoutingError(f"port {port} of switch {switch} is wired twice")
        self._wire[(switch, port)] = end

    # -- applying changes -----------------------------------------------------

    def apply(self, diff: RuleDiff) -> None:
        """Send each switch's change as the controller does (:func:`controllers.ofmsg.switch_messages`)."""
        current = self.table()
        for switch, change in diff.switches.items():
            before = current.get(switch, SwitchTable()).rules
            for msg in ofmsg.switch_messages(STUB_DATAPATH, change, before, self._local.get(switch, ())):
                self.send(switch, msg)

    def install(self, table: FlowTable) -> RuleDiff:
        """Bring the tables to ``table`` by a diff from the current state."""
        diff = diff_rules(self.table(), table)
        self.apply(diff)
        return diff

    def send(self, switch: int, msg) -> None:
        """Apply one OpenFlow message (an os-ken message object) to ``switch``."""
        wire = _decode(msg)
        self._index = None
        flows = self._flows.setdefault(switch, {})
        groups = self._groups.setdefault(switch, {})
        if wire.msg_type == OFP.OFPT_FLOW_MOD:
            self.messages += 1
            self._flow_mod(switch, flows, groups, wire)
        elif wire.msg_type == OFP.OFPT_GROUP_MOD:
            self.messages += 1
            self._group_mod(switch, flows, groups, wire)
        elif wire.msg_type != OFP.OFPT_BARRIER_REQUEST:
            raise FakeOFError(f"switch {switch}: unexpected message type {wire.msg_type}")

    def _flow_mod(self, switch, flows, groups, fm) -> None:
        match = fm.match
        key = (fm.priority, match)
        if fm.command in (OFP.OFPFC_ADD, OFP.OFPFC_MODIFY_STRICT):
            if fm.table_id != 0:
                raise FakeOFError(f"switch {switch}: flow mod for table {fm.table_id}")
            actions = []
            for inst in fm.instructions:
                if inst.type != OFP.OFPIT_APPLY_ACTIONS:
                    raise FakeOFError(f"switch {switch}: unsupported instruction type {inst.type}")
                for action in inst.actions:
                    if action.type == OFP.OFPAT_OUTPUT:
                        actions.append(("output", action.port))
                    elif action.type == OFP.OFPAT_GROUP:
                        if action.group_id not in groups:
                            raise FakeOFError(f"OFPBAC_BAD_OUT_GROUP: switch {switch}, group {action.group_id} "
                                              f"for {dict(match).get('ipv4_dst')}")
                        actions.append(("group", action.group_id))
                    else:
                        raise FakeOFError(f"switch {switch}: unsupported action type {action.type}")
            if fm.command == OFP.OFPFC_ADD or key in flows:
                flows[key] = _Flow(fm.priority, match, tuple(actions))
        elif fm.command == OFP.OFPFC_DELETE_STRICT:
            if (fm.out_port, fm.out_group) != (OFP.OFPP_ANY, OFP.OFPG_ANY):
                raise FakeOFError(f"switch {switch}: strict delete filtered by out_port/out_group")
            flows.pop(key, None)
        elif fm.command == OFP.OFPFC_DELETE:
            if fm.table_id not in (0, OFP.OFPTT_ALL) or (fm.out_port, fm.out_group) != (OFP.OFPP_ANY, OFP.OFPG_ANY):
                raise FakeOFError(f"switch {switch}: unsupported delete (table {fm.table_id})")
            wanted = set(match)
            for k in [k for k, f in flows.items() if wanted <= set(f.match)]:
                del flows[k]
        else:
            raise FakeOFError(f"switch {switch}: unsupported flow mod command {fm.command}")

    def _group_mod(self, switch, flows, groups, gm) -> None:
        if gm.command == OFP.OFPGC_DELETE:
            gone = set(groups) if gm.group_id == OFP.OFPG_ALL else {gm.group_id} & set(groups)
            for gid in gone:
                del groups[gid]
            for k in [k for k, f in flows.items() if any(a == ("group", g) for a in f.actions for g in gone)]:
                del flows[k]
            return
        if gm.type != OFP.OFPGT_SELECT:
            raise FakeOFError(f"switch {switch}: group {gm.group_id} of type {gm.type}, not select")
        buckets = []
        for bucket in gm.buckets:
            ports = [a.port for a in bucket.actions if a.type == OFP.OFPAT_OUTPUT]
            if len(ports) != 1 or len(bucket.actions) != 1 or bucket.watch_port != ports[0]:
                raise FakeOFError(f"switch {switch}: group {gm.group_id}: a bucket must output to the one "
                                  f"port it watches, got {bucket}")
            buckets.append((ports[0], bucket.weight))
        if gm.command == OFP.OFPGC_ADD:
            if gm.group_id in groups:
                raise FakeOFError(f"OFPGMFC_GROUP_EXISTS: switch {switch}, group {gm.group_id}")
        elif gm.command == OFP.OFPGC_MODIFY:
            if gm.group_id not in groups:
                raise FakeOFError(f"OFPGMFC_UNKNOWN_GROUP: switch {switch}, group {gm.group_id}")
        else:
            raise FakeOFError(f"switch {switch}: unsupported group mod command {gm.command}")
        groups[gm.group_id] = tuple(buckets)

    # -- reading back ---------------------------------------------------------

    def table(self) -> FlowTable:
        """The route rules and groups now on the switches, as a :data:`FlowTable`
        (empty switches omitted; hairpin companions are in :meth:`hairpins`)."""
        result: FlowTable = {}
        for switch in sorted(set(self._flows) | set(self._groups)):
            rules = {}
            for flow in self._flows.get(switch, {}).values():
                fields = dict(flow.match)
                if "in_port" in fields:
                    continue
                if set(fields) != {"eth_type", "ipv4_dst"} or fields["eth_type"] != ofmsg.ETH_TYPE_IPV4:
                    raise FakeOFError(f"switch {switch}: unexpected flow match {fields}")
                ((kind, value),) = flow.actions
                action = OutputAction(value) if kind == "output" else GroupAction(value)
                rules[fields["ipv4_dst"]] = Rule(fields["ipv4_dst"], action, flow.priority)
            groups = {gid: SelectGroup(gid, tuple(sorted(b))) for gid, b in self._groups.get(switch, {}).items()}
            table = SwitchTable(
                dict(sorted(rules.items(), key=lambda item: ipaddress.IPv4Address(item[0]))),
                dict(sorted(groups.items())),
            )
            if table:
                result[switch] = table
        return result

    def hairpins(self) -> dict[int, dict[tuple[str, int], int]]:
        """Hairpin entries (match in_port, output IN_PORT): switch -> (ipv4_dst, in_port) -> priority."""
        result: dict[int, dict[tuple[str, int], int]] = {}
        for switch, flows in sorted(self._flows.items()):
            for flow in flows.values():
                fields = dict(flow.match)
                if "in_port" in fields:
                    if flow.actions != (("output", OFP.OFPP_IN_PORT),):
                        raise FakeOFError(f"switch {switch}: in_port entry that is not a hairpin: {flow}")
                    result.setdefault(switch, {})[(fields["ipv4_dst"], fields["in_port"])] = flow.priority
        return result

    # -- tracing --------------------------------------------------------------

    def _lookup(self, switch: int, in_port: int | None, ipv4_dst: str) -> _Flow | None:
        """The highest-priority entry matching an IPv4 packet to ``ipv4_dst`` from ``in_port``."""
        if self._index is None:
            self._index = {}
            for s, flows in self._flows.items():
                by_dst = self._index[s] = {}
                for flow in sorted(flows.values(), key=lambda f: -f.priority):
                    by_dst.setdefault(dict(flow.match).get("ipv4_dst"), []).append(flow)
        by_dst = self._index.get(switch, {})
        best = None
        for flow in by_dst.get(ipv4_dst, []) + by_dst.get(None, []):
            fields = dict(flow.match)
            if fields.get("eth_type", ofmsg.ETH_TYPE_IPV4) != ofmsg.ETH_TYPE_IPV4:
                continue
            if "in_port" in fields and fields["in_port"] != in_port:
                continue
            if best is None or flow.priority > best.priority:
                best = flow
        return best

    def trace(
        self, switch: int, ipv4_dst: str, *, from_switch: int | None = None, links: nx.Graph | None = None,
        max_branches: int = 100_000,
    ) -> Trace:
        """Follow a packet for ``ipv4_dst`` entering ``switch``.

        Parameters
        ----------
        switch : int
            Where the packet enters: from the port of a host on that switch other than
            the destination (as if sent by it), or from no port if there is none.
        ipv4_dst : str
            Destination address.
        from_switch : int, optional
            The packet arrives from this neighbour instead (on the port toward it).
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
        # (switch path, (switch, in_port) entries so far)
        if from_switch is None:   # from a host there other than the destination (none: no port)
            first = next((p for a, p in sorted(self._host_ports.get(switch, {}).items()) if a != ipv4_dst), None)
        else:
            first = self._toward[(switch, from_switch)]
        stack: list[tuple[tuple[int, ...], tuple[tuple[int, int | None], ...]]] = [((switch,), ((switch, first),))]
        branches = 0
        while stack:
            path, entries = stack.pop()
            here, in_port = entries[-1]
            flow = self._lookup(here, in_port, ipv4_dst)
            if flow is None:
                dropped.append((path, "no rule"))
                continue
            ports = []
            for kind, value in flow.actions:
                if kind == "output":
                    ports.append(in_port if value == OFP.OFPP_IN_PORT else value)
                else:
                    ports.extend(port for port, weight in self._groups.get(here, {}).get(value, ()) if weight > 0)
            if not ports:
                dropped.append((path, "no rule"))
                continue
            for port in reversed(ports):
                branches += 1
                if branches > max_branches:
                    raise RoutingError(f"trace from {switch} to {ipv4_dst}: more than {max_branches} branches")
                if port == in_port and (("output", OFP.OFPP_IN_PORT) not in flow.actions):
                    dropped.append((path, "output to in_port"))
                    continue
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
                    entry = (nxt, self._toward.get((nxt, here)))
                    if links is not None and not links.has_edge(here, nxt):
                        dropped.append((path, "link down"))
                    elif entry in entries:
                        looped.append(path + (nxt,))
                    else:
                        stack.append((path + (nxt,), entries + (entry,)))
        return Trace(tuple(delivered), tuple(dropped), tuple(looped))
