"""Consistent (two-phase) route updates: every packet is forwarded by one routing generation.

The default update mode (``direct``) modifies each switch's rules in place, switch by
switch; a packet in flight during a change can meet old rules at one switch and new ones
at the next (a "mix"), and that is why direct mode needs the hairpin companion rules of
:mod:`controllers.ofmsg`. In ``consistent`` mode (Reitblatt et al.'s per-packet
consistency, two-phase commit) the rules of a routing *generation* carry a version tag:

Tag
    The IPv4 DSCP field (6 bits). Tag ``1 + g mod 63`` for generation ``g``; DSCP 0 is
    "not stamped". The ingress switch stamps a host's packets, internal rules match
    ``ip_dscp=tag, ipv4_dst=host``, the egress switch resets DSCP to 0 before delivering.
    Hosts' own DSCP values are therefore not carried end to end in this mode (no traffic
    source of the testbed sets one). DSCP rather than a VLAN tag: the delay-line backend
    relays frames through AF_PACKET sockets, where the kernel moves a VLAN tag out of the
    frame into metadata; an IP header field survives every backend unchanged.

Tables (per switch)
    Table 0: ``in_port=<host port>, IPv4`` at :data:`STAMP_PRIORITY` -> set DSCP to the
    current tag, go to table 1; everything else (priority 0) -> table 1.
    Table 1: local delivery ``ipv4_dst=<local host>`` at :data:`EGRESS_PRIORITY` -> DSCP 0,
    output to the host port (generation-independent, installed once per connection);
    generation ``g``'s route rules ``ip_dscp=tag, ipv4_dst`` at ``DEFAULT_PRIORITY + tag``
    with cookie ``tag`` (the priority only keeps rule counters of two live generations
    apart; matches of different tags never overlap); its select groups have group id
    ``tag << GROUP_TAG_SHIFT | destination switch``.

Order of one update (:meth:`ConsistentUpdates.push`)
    1. install generation g+1's route rules on every switch that has any, barrier on all;
    2. flip the ingress stamps to g+1's tag on every switch with hosts, barrier on all;
    3. after the drain time of generation g (its longest path delay over the next-hop DAG,
       with the links' current delays, plus :data:`DRAIN_MARGIN_S` for queues), delete its
       rules (one flow delete by cookie per switch) and then its groups.

A packet stamped g only ever matches g's rules, and g's rules stay until every packet
stamped g has left, so none sees a mix. Within a generation routes are loop-free (every
algorithm routes through :mod:`controllers.algorithms.spt`), so no packet arrives from
the neighbour it is to be sent to: the hairpin companions are not installed in this mode.

A new generation is made only when the routing rules change; steps whose routes are
unchanged send nothing. Pure planning and message building; sending, barriers and timers
are the caller's (:mod:`controllers.app` passes them in).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .ofmsg import ETH_TYPE_IPV4
from .rules import DEFAULT_PRIORITY, FlowTable, GroupAction, OutputAction, Rule, SelectGroup, SwitchTable

__all__ = [
    "DRAIN_MARGIN_S",
    "EGRESS_PRIORITY",
    "GROUP_TAG_SHIFT",
    "N_TAGS",
    "ROUTE_TABLE",
    "STAMP_PRIORITY",
    "ConsistentUpdates",
    "Generation",
    "drain_s",
    "routing_table",
    "tag_of",
]

#: Number of version tags (DSCP 1..63); a tag is reused 63 generations later.
N_TAGS = 63
#: Table of the route rules; table 0 stamps.
ROUTE_TABLE = 1
STAMP_PRIORITY = 100
EGRESS_PRIORITY = DEFAULT_PRIORITY + 100
#: Group id of generation tag t toward destination switch d: ``t << 20 | d`` (d < 2**20).
GROUP_TAG_SHIFT = 20
#: Added to a generation's longest path delay before its rules go, s: queueing in the
#: link backend (a full 20 Mbit/s delay-line queue is tens of ms) and the controller's timer.
DRAIN_MARGIN_S = 0.5


def tag_of(generation: int) -> int:
    """The DSCP value (1..63) stamped on packets of ``generation`` (0, 1, 2, ...)."""
    return 1 + generation % N_TAGS


def routing_table(table: FlowTable, local_addresses: Mapping[int, Collection[str]]) -> FlowTable:
    """``table`` without the local-delivery rules (those are the egress rules, per connection)."""
    out: FlowTable = {}
    for node, t in table.items():
        local = local_addresses.get(node, ())
        rules = {ip: r for ip, r in t.rules.items() if ip not in local}
        if rules or t.groups:
            out[node] = SwitchTable(rules, t.groups)
    return out


def drain_s(routes: Mapping[int, Mapping[int, tuple]], delay_s: Mapping[tuple[int, int], float]) -> float:
    """Longest forwarding delay under ``routes``, s: the maximum over destinations and start
    switches of the delay of the longest path in the next-hop DAG (every bucket of a
    multipath route counts). ``delay_s``: canonical ``(min, max)`` link -> one-way delay [s];
    a link missing from it counts 0. Routes are loop-free; a cycle raises ValueError."""
    longest = 0.0
    dests = {d for by_dest in routes.values() for d in by_dest}
    for d in dests:
        memo: dict[int, float] = {d: 0.0}
        for start in routes:
            stack, on_path = [(start, iter(routes.get(start, {}).get(d, ())))], {start}
            if start in memo:
                continue
            while stack:
                node, hops = stack[-1]
                for v, _w in hops:
                    if v in on_path:
                        raise ValueError(f"routes toward {d} loop through switch {v}")
                    if v not in memo:
                        on_path.add(v)
                        stack.append((v, iter(routes.get(v, {}).get(d, ()))))
                        break
                else:
                    stack.pop()
                    on_path.discard(node)
                    memo[node] = max((delay_s.get((min(node, v), max(node, v)), 0.0) + memo[v]
                                      for v, _w in routes.get(node, {}).get(d, ())), default=0.0)
            longest = max(longest, memo[start])
    return longest


# -- messages ----------------------------------------------------------------------------

def _group_id(tag: int, destination: int) -> int:
    if not 0 <= destination < 1 << GROUP_TAG_SHIFT:
        raise ValueError(f"destination switch {destination} too large for a versioned group id")
    return tag << GROUP_TAG_SHIFT | destination


def _route_actions(parser: Any, rule: Rule, tag: int) -> list:
    if isinstance(rule.action, OutputAction):
        return [parser.OFPActionOutput(rule.action.port)]
    if isinstance(rule.action, GroupAction):
        return [parser.OFPActionGroup(_group_id(tag, rule.action.group_id))]
    raise TypeError(f"unknown action {rule.action!r}")


def base_messages(dp: Any, local_hosts: Iterable[tuple[str, int]]) -> list:
    """A fresh switch's generation-independent rules: table 0's miss -> table 1, and per
    local host ``(ipv4, port)`` its egress rule (DSCP 0, output)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    msgs = [parser.OFPFlowMod(dp, table_id=0, command=ofp.OFPFC_ADD, priority=0, match=parser.OFPMatch(),
                              instructions=[parser.OFPInstructionGotoTable(ROUTE_TABLE)])]
    for ip, port in local_hosts:
        actions = [parser.OFPActionSetField(ip_dscp=0), parser.OFPActionOutput(port)]
        msgs.append(parser.OFPFlowMod(
            dp, table_id=ROUTE_TABLE, command=ofp.OFPFC_ADD, priority=EGRESS_PRIORITY,
            match=parser.OFPMatch(eth_type=ETH_TYPE_IPV4, ipv4_dst=ip),
            instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]))
    return msgs


def install_messages(dp: Any, tag: int, table: SwitchTable) -> list:
    """Group adds, then flow adds, of one generation's route rules on one switch."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    msgs = [parser.OFPGroupMod(dp, ofp.OFPGC_ADD, ofp.OFPGT_SELECT, _group_id(tag, g.group_id), [
        parser.OFPBucket(weight=w, watch_port=p, watch_group=ofp.OFPG_ANY, actions=[parser.OFPActionOutput(p)])
        for p, w in g.buckets]) for g in table.groups.values()]
    for rule in table.rules.values():
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, _route_actions(parser, rule, tag))]
        msgs.append(parser.OFPFlowMod(
            dp, table_id=ROUTE_TABLE, command=ofp.OFPFC_ADD, cookie=tag, priority=rule.priority + tag,
            match=parser.OFPMatch(eth_type=ETH_TYPE_IPV4, ip_dscp=tag, ipv4_dst=rule.ipv4_dst),
            instructions=inst))
    return msgs


def stamp_messages(dp: Any, tag: int, host_ports: Iterable[int]) -> list:
    """Ingress stamps: packets from each host port get DSCP ``tag`` (an add replaces the
    previous stamp rule of the same match in one step)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return [parser.OFPFlowMod(
        dp, table_id=0, command=ofp.OFPFC_ADD, priority=STAMP_PRIORITY,
        match=parser.OFPMatch(in_port=port, eth_type=ETH_TYPE_IPV4),
        instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionSetField(ip_dscp=tag)]),
                      parser.OFPInstructionGotoTable(ROUTE_TABLE)]) for port in sorted(host_ports)]


def retire_messages(dp: Any, tag: int, groups: Iterable[SelectGroup]) -> list:
    """Delete one generation's route rules (by cookie) and then its groups."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    msgs = [parser.OFPFlowMod(dp, table_id=ROUTE_TABLE, command=ofp.OFPFC_DELETE, cookie=tag,
                              cookie_mask=0xFFFFFFFFFFFFFFFF, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                              match=parser.OFPMatch())]
    msgs += [parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, ofp.OFPGT_SELECT, _group_id(tag, g.group_id), [])
             for g in groups]
    return msgs


# -- runtime state ---------------------------------------------------------------------

@dataclass
class Generation:
    """One routing generation: its number, tag, route rules and routes (for its drain time)."""

    number: int
    tag: int
    table: FlowTable
    routes: Mapping[int, Mapping[int, tuple]]


@dataclass
class ConsistentUpdates:
    """What the switches hold in consistent mode (mutable runtime state of the app).

    ``ready``: switches with their base rules; ``live[tag]``: generations not yet retired;
    ``log``: callable taking one step-log record (dict with ``event``).
    """

    log: Callable[[dict], None] = lambda record: None
    current: Generation | None = None
    ready: set[int] = field(default_factory=set)
    live: dict[int, Generation] = field(default_factory=dict)

    def forget(self, node: int) -> None:
        """``node`` (re)connected with empty tables."""
        self.ready.discard(node)

    def push(self, session, dps: Mapping[int, Any], nodes: Iterable[int], send: Callable[[Any, list], None],
             barrier: Callable[[Iterable[int]], bool], later: Callable[[float, Callable[[], None]], None]) -> dict:
        """Brings switches ``nodes`` up to date and, if the routes changed, makes a new
        generation on every connected switch (``dps``: node -> datapath). ``send(dp, msgs)``,
        ``barrier(nodes) -> timed out``, ``later(delay_s, fn)`` runs ``fn`` after a delay
        (holding the caller's push lock). Returns flow_mods, group_mods, barrier_timeout."""
        sent = {"flow_mods": 0, "group_mods": 0, "barrier_timeout": False}

        def emit(node, msgs):
            groups = sum(1 for m in msgs if type(m).__name__ == "OFPGroupMod")
            sent["group_mods"] += groups
            sent["flow_mods"] += len(msgs) - groups
            send(dps[node], msgs)

        local = session.local_addresses
        ports = {n: [session.hosts[ip].port for ip in sorted(ips)] for n, ips in local.items()}
        fresh = [n for n in nodes if n in dps and n not in self.ready]
        for n in fresh:
            msgs = base_messages(dps[n], [(ip, session.hosts[ip].port) for ip in sorted(local.get(n, ()))])
            if self.current is not None:
                if self.current.table.get(n):
                    msgs += install_messages(dps[n], self.current.tag, self.current.table[n])
                if ports.get(n):
                    msgs += stamp_messages(dps[n], self.current.tag, ports[n])
            emit(n, msgs)
            self.ready.add(n)
        if fresh:
            sent["barrier_timeout"] |= barrier(fresh)
        table = routing_table(session.table, local)
        if self.current is None or table != self.current.table:
            number = 0 if self.current is None else self.current.number + 1
            gen = Generation(number, tag_of(number), table, session.routes or {})
            stale = self.live.pop(gen.tag, None)
            if stale is not None:        # 63 generations inside one drain time: retire it now
                self._retire(stale, dps, emit)
            targets = sorted(n for n in dps if n in self.ready and table.get(n))
            for n in targets:
                emit(n, install_messages(dps[n], gen.tag, table[n]))
            sent["barrier_timeout"] |= barrier(targets)          # phase 1 confirmed everywhere
            ingress = sorted(n for n in dps if n in self.ready and ports.get(n))
            for n in ingress:
                emit(n, stamp_messages(dps[n], gen.tag, ports[n]))
            sent["barrier_timeout"] |= barrier(ingress)          # phase 2: packets now stamped g+1
            old, self.current = self.current, gen
            self.live[gen.tag] = gen
            if old is not None:
                delays = {edge: float(rec["delay_s"]) for edge, rec in session.links.items()}
                wait_s = drain_s(old.routes, delays) + DRAIN_MARGIN_S
                self.log({"event": "generation", "generation": gen.number, "tag": gen.tag,
                          "retires": old.number, "drain_s": wait_s})
                later(wait_s, lambda: self._retire_if_live(old, dps, send))
        for n in dps:          # every ready switch holds the current generation
            if n in self.ready:
                session.mark_installed(n)
        return sent

    def _retire_if_live(self, gen: Generation, dps: Mapping[int, Any], send) -> None:
        if self.live.get(gen.tag) is gen:
            del self.live[gen.tag]
            self._retire(gen, dps, lambda node, msgs: send(dps[node], msgs))

    def _retire(self, gen: Generation, dps: Mapping[int, Any], emit) -> None:
        for n in sorted(dps):
            if gen.table.get(n) and n in self.ready:
                emit(n, retire_messages(dps[n], gen.tag, gen.table[n].groups.values()))

