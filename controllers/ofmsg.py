"""OpenFlow 1.3 messages for the routing rules (the role Faucet's ``valve_of.py`` plays).

Pure functions: each takes a datapath ``dp`` (anything with ``ofproto`` and
``ofproto_parser``, e.g. an os-ken ``Datapath`` or a stub carrying
:mod:`os_ken.ofproto.ofproto_v1_3` and its parser) and returns message objects; nothing
here sends, waits or keeps state, and nothing imports os-ken (the constants and
classes come from ``dp``). :mod:`controllers.app` sends what these return; the tests'
fake flow table applies the very same objects.

Rule translation (see :mod:`controllers.rules` for the model): a :class:`Rule` becomes
a flow entry ``eth_type=IPv4, ipv4_dst=<host>`` at the rule's priority, instructions
``apply-actions [output:port]`` or ``[group:id]``; a :class:`SelectGroup` becomes a
select group whose buckets each output to one port and watch that port (OVS skips a
bucket whose port is down: fast local failover).

Replies are unpacked here too (:func:`rule_counts`, :func:`port_counts`), so the
session sees plain tuples, never OpenFlow objects.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from .diff import Op, SwitchDiff
from .rules import GroupAction, OutputAction, Rule, SelectGroup

__all__ = [
    "ETH_TYPE_IPV4",
    "HAIRPIN_PRIORITY_OFFSET",
    "PortCount",
    "RuleCount",
    "barrier",
    "clear_switch",
    "flow_mod",
    "flow_stats_request",
    "group_mod",
    "hairpin_add",
    "hairpin_delete",
    "neighbour_port",
    "more_follows",
    "port_counts",
    "port_down",
    "port_stats_request",
    "rule_counts",
    "switch_messages",
]

ETH_TYPE_IPV4 = 0x0800
#: A hairpin companion sits this much above the rule it accompanies.
HAIRPIN_PRIORITY_OFFSET = 1


def clear_switch(dp: Any) -> list:
    """Delete every flow (all tables) and every group: a clean start for a switch."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return [
        parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                          out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=parser.OFPMatch()),
        parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, ofp.OFPGT_ALL, ofp.OFPG_ALL, []),
    ]


def barrier(dp: Any) -> Any:
    """A barrier request (the caller sets its xid to match the reply)."""
    return dp.ofproto_parser.OFPBarrierRequest(dp)


def port_stats_request(dp: Any) -> Any:
    """Counters of every port."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPPortStatsRequest(dp, 0, ofp.OFPP_ANY)


def flow_stats_request(dp: Any) -> Any:
    """Counters of every flow entry in every table."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0, parser.OFPMatch())


def _ipv4_match(parser: Any, ipv4_dst: str, in_port: int | None = None) -> Any:
    if in_port is None:
        return parser.OFPMatch(eth_type=ETH_TYPE_IPV4, ipv4_dst=ipv4_dst)
    return parser.OFPMatch(in_port=in_port, eth_type=ETH_TYPE_IPV4, ipv4_dst=ipv4_dst)


def _actions(parser: Any, rule: Rule) -> list:
    if isinstance(rule.action, OutputAction):
        return [parser.OFPActionOutput(rule.action.port)]
    if isinstance(rule.action, GroupAction):
        return [parser.OFPActionGroup(rule.action.group_id)]
    raise TypeError(f"unknown action {rule.action!r}")


def flow_mod(dp: Any, op: Op, rule: Rule) -> Any:
    """The flow mod for one rule change: add, strict modify or strict delete."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    match = _ipv4_match(parser, rule.ipv4_dst)
    if op is Op.FLOW_DELETE:
        return parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE_STRICT, priority=rule.priority, match=match,
                                 out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)
    commands = {Op.FLOW_ADD: ofp.OFPFC_ADD, Op.FLOW_MODIFY: ofp.OFPFC_MODIFY_STRICT}
    if op not in commands:
        raise ValueError(f"flow_mod: {op} is not a flow operation")
    inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, _actions(parser, rule))]
    return parser.OFPFlowMod(dp, command=commands[op], priority=rule.priority, match=match, instructions=inst)


def group_mod(dp: Any, op: Op, group: SelectGroup) -> Any:
    """The group mod for one select-group change (a delete carries no buckets)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    commands = {Op.GROUP_ADD: ofp.OFPGC_ADD, Op.GROUP_MODIFY: ofp.OFPGC_MODIFY, Op.GROUP_DELETE: ofp.OFPGC_DELETE}
    if op not in commands:
        raise ValueError(f"group_mod: {op} is not a group operation")
    buckets = [] if op is Op.GROUP_DELETE else [
        parser.OFPBucket(weight=weight, watch_port=port, watch_group=ofp.OFPG_ANY,
                         actions=[parser.OFPActionOutput(port)])
        for port, weight in group.buckets]
    return parser.OFPGroupMod(dp, commands[op], ofp.OFPGT_SELECT, group.group_id, buckets)


def hairpin_add(dp: Any, rule: Rule, port: int) -> Any:
    """The companion of ``rule`` (which outputs to ``port``): in_port=port -> IN_PORT.

    OpenFlow drops a packet whose output port is the port it came in on. While a route
    change reaches the switches one by one, a packet can arrive from the very neighbour
    this switch now forwards to (that neighbour still had the old route); this rule, one
    priority higher, sends it back, where the new route takes it on. Loop-free routes
    never use it in steady state. Direct updates only: with consistent updates
    (:mod:`controllers.consistent`) a packet meets one generation's loop-free routes end
    to end, so no packet can arrive from its next hop and none are installed
    (benchmarks/bench_updates.py counts the packets they turn back in direct mode).
    """
    ofp, parser = dp.ofproto, dp.ofproto_parser
    inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(ofp.OFPP_IN_PORT)])]
    return parser.OFPFlowMod(dp, command=ofp.OFPFC_ADD, priority=rule.priority + HAIRPIN_PRIORITY_OFFSET,
                             match=_ipv4_match(parser, rule.ipv4_dst, port), instructions=inst)


def hairpin_delete(dp: Any, rule: Rule, port: int) -> Any:
    """Strict delete of the companion :func:`hairpin_add` made for ``rule`` and ``port``."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE_STRICT, priority=rule.priority + HAIRPIN_PRIORITY_OFFSET,
                             match=_ipv4_match(parser, rule.ipv4_dst, port),
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)


def neighbour_port(rule: Rule | None, local_addresses: Collection[str]) -> int | None:
    """The output port of a single-path rule toward a neighbour switch, else None.

    ``local_addresses``: hosts attached to this switch (their rules deliver locally and
    get no companion).
    """
    if rule is None or not isinstance(rule.action, OutputAction) or rule.ipv4_dst in local_addresses:
        return None
    return rule.action.port


def switch_messages(dp: Any, change: SwitchDiff, before: Mapping[str, Rule],
                    local_addresses: Collection[str]) -> list:
    """Every flow mod and group mod for one switch's change, in a safe order.

    Parameters
    ----------
    change : SwitchDiff
        From :func:`controllers.diff.diff_rules`; sent in
        :meth:`~controllers.diff.SwitchDiff.operations` order.
    before : mapping str -> Rule
        The switch's rules before the change (``SwitchTable.rules``), to find the
        hairpin companion a modify or delete must remove.
    local_addresses : collection of str
        Addresses of the hosts on this switch.

    Each single-path rule toward a neighbour carries its hairpin companion
    (:func:`hairpin_add`): removed before the rule changes, added after.
    """
    msgs = []
    for op, item in change.operations():
        if op not in (Op.FLOW_ADD, Op.FLOW_MODIFY, Op.FLOW_DELETE):
            msgs.append(group_mod(dp, op, item))
            continue
        old_rule = before.get(item.ipv4_dst)
        old_port = neighbour_port(old_rule, local_addresses) if op is not Op.FLOW_ADD else None
        if old_port is not None:
            msgs.append(hairpin_delete(dp, old_rule, old_port))
        msgs.append(flow_mod(dp, op, item))
        new_port = neighbour_port(item, local_addresses) if op is not Op.FLOW_DELETE else None
        if new_port is not None:
            msgs.append(hairpin_add(dp, item, new_port))
    return msgs


# -- replies ----------------------------------------------------------------------------


class RuleCount(NamedTuple):
    """Byte counter of one unicast flow entry (exactly one output port).

    ``out_port`` is the port the traffic leaves by: the output port, or ``in_port`` for
    a hairpin companion (output IN_PORT). ``in_port`` is None for route rules.
    """

    ipv4_dst: str | None
    in_port: int | None
    priority: int
    out_port: int
    byte_count: int


class PortCount(NamedTuple):
    """Transmit byte counter of one port."""

    port_no: int
    tx_bytes: int


def rule_counts(dp: Any, body: Iterable[Any]) -> Iterator[RuleCount]:
    """Unicast entries of a flow stats reply body (entries pointing at a group are skipped)."""
    ofp = dp.ofproto
    for st in body:
        ports = [a.port for inst in st.instructions for a in getattr(inst, "actions", []) if hasattr(a, "port")]
        if len(ports) != 1:
            continue
        in_port = st.match.get("in_port")
        out_port = in_port if ports[0] == ofp.OFPP_IN_PORT else ports[0]
        yield RuleCount(st.match.get("ipv4_dst"), in_port, st.priority, out_port, st.byte_count)


def port_counts(body: Iterable[Any]) -> list[PortCount]:
    """Port stats reply body -> (port, tx bytes)."""
    return [PortCount(st.port_no, st.tx_bytes) for st in body]


def port_down(dp: Any, desc: Any) -> bool:
    """True if a port description (from a port status message) says the port is down:
    no link, or administratively down."""
    ofp = dp.ofproto
    return bool(desc.state & ofp.OFPPS_LINK_DOWN) or bool(desc.config & ofp.OFPPC_PORT_DOWN)


def more_follows(dp: Any, msg: Any) -> bool:
    """True if a multipart reply says more parts follow."""
    return bool(msg.flags & dp.ofproto.OFPMPF_REPLY_MORE)
