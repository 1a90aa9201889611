"""The os-ken application: the only module that imports os-ken.

It is a shim (Faucet's pattern): events are unpacked and handed to
:class:`~controllers.session.ControllerSession`; the desired flow table it returns is
diffed (:func:`~controllers.rules.diff_rules`) against what each switch has, and only the
difference is sent as OpenFlow 1.3 flow and group mods, confirmed by a barrier. Inputs:
switch connect/disconnect, port status (a port going down takes its link out at once),
port statistics (polled from the switches traffic can cross, see
:meth:`~controllers.session.ControllerSession.carrying_switches`; utilisation per directed
link, for ``load_aware`` and for the results), rule statistics (for algorithms that use
utilisation: each link's load by destination), and the testbed's link-state feed
(:mod:`controllers.feed`).

Run as a process (the testbed does this)::

    python -m controllers.app --of-port 6653 --feed-port 6700 --algorithm min_delay --params '{}'

Both ports are bound to 127.0.0.1 only. A handler exception stops the controller with
a traceback in its log (never a silent half-working controller); the testbed notices
the exit and stops the run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

# os-ken's default hub ("native", since os-ken 3) runs three OS threads per switch
# connection: 3,363 switches made 10,600 threads that kept two cores in the kernel
# and left the listen queue full (switches timed out connecting). The eventlet hub runs
# them as green threads in one. Read when os_ken.lib.hub is first imported: set it first.
os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")

from os_ken import cfg  # noqa: E402
from os_ken.base import app_manager  # noqa: E402
from os_ken.controller import ofp_event  # noqa: E402
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls  # noqa: E402
from os_ken.lib import hub  # noqa: E402
from os_ken.ofproto import ofproto_v1_3  # noqa: E402

from . import feed  # noqa: E402
from .algorithms import make_router  # noqa: E402
from .rules import GroupAction, Op, OutputAction, SwitchTable, diff_rules  # noqa: E402
from .session import ControllerSession  # noqa: E402

LOG = logging.getLogger("lmtb.controller")
BARRIER_TIMEOUT_S = 5.0
UTILISATION_EPSILON = 0.01   # utilisation changes smaller than this are not news
OPTIONS: dict = {}   # filled by main() before os-ken instantiates the app


class RoutingApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = ControllerSession(make_router(OPTIONS["algorithm"], OPTIONS["params"]))
        self.datapaths = {}         # node -> datapath
        self.installed = {}         # node -> SwitchTable on that switch
        self.pending_barriers = {}  # (node, xid) -> hub.Event
        self.port_bytes = {}        # (node, port) -> (t, tx_bytes)
        self.rule_bytes = {}        # (node, ipv4_dst, in_port, priority) -> (t, byte_count)
        self.rule_load = {}         # node -> {rule key -> (next switch, destination switch, utilisation)}
        self.load_rerouted_at = -float("inf")   # monotonic time of the last load-driven re-route
        self.push_lock = hub.BoundedSemaphore(1)   # one diff-and-send at a time
        self.poll_interval_s = OPTIONS["poll_interval_s"]
        self.stats_log = open(OPTIONS["stats_log"], "a") if OPTIONS.get("stats_log") else None
        self.logged_paths = {}      # (src switch, dst switch) -> path last logged
        self.threads.append(hub.spawn(self._serve_feed))
        if self.poll_interval_s > 0:
            self.threads.append(hub.spawn(self._poll_ports))

    # ---------------------------------------------------------------- feed
    def _serve_feed(self):
        server = hub.StreamServer((feed.LISTEN_HOST, OPTIONS["feed_port"]), self._feed_connection)
        LOG.info("feed listening on %s:%d", feed.LISTEN_HOST, OPTIONS["feed_port"])
        server.serve_forever()

    def _feed_connection(self, sock, addr):
        reader = sock.makefile("rb")
        for line in reader:
            msg = feed.decode(line)
            handler = self.FEED_HANDLERS.get(msg["type"])
            if handler is None:
                reply = {"type": "error", "message": f"unknown feed message type {msg['type']!r}"}
            else:
                try:
                    reply = handler(self, msg)
                except Exception as e:  # noqa: BLE001 - reported to the testbed, which stops the run
                    LOG.exception("feed message %s failed", msg["type"])
                    reply = {"type": "error", "message": f"{type(e).__name__}: {e}"}
            sock.sendall(feed.encode(reply))
        LOG.info("feed connection closed")

    def _on_topology(self, msg):
        self.session.on_topology(msg)
        LOG.info("topology: %d switches, %d hosts", len(self.session.switches), len(self.session.hosts))
        return {"type": "topology_ok"}

    def _on_state(self, msg):
        stats = self.session.on_state(msg)
        sent = self._push()
        missing = [n for n in self.session.switches if n not in self.datapaths]
        reply = {"type": "applied", "step": self.session.step, "compute_s": stats.compute_s,
                 "flow_mods": sent["flow_mods"], "group_mods": sent["group_mods"],
                 "barrier_timeout": sent["barrier_timeout"], "missing_switches": missing,
                 "rules_per_switch": {str(n): len(t.rules) for n, t in self.installed.items()}}
        self._log_stats({"event": "step", "t_s": self.session.t_s,
                         **{k: v for k, v in reply.items() if k != "type"}})
        self._log_paths("step")
        return reply

    def _on_status(self, msg):
        return {"type": "status", "connected": sorted(self.datapaths),
                "installed": all(self.installed.get(n) == self.session.table.get(n, SwitchTable())
                                 for n in self.session.switches)}

    FEED_HANDLERS = {"topology": _on_topology, "state": _on_state, "status": _on_status}

    def _log_paths(self, event):
        """Logs host-to-host switch paths that changed since the last log line."""
        paths = self.session.host_paths()
        changed = {f"{a}-{b}": "-".join(map(str, p)) for (a, b), p in paths.items()
                   if self.logged_paths.get((a, b)) != p}
        gone = [f"{a}-{b}" for (a, b) in self.logged_paths if (a, b) not in paths]
        if changed or gone:
            self._log_stats({"event": "paths", "cause": event, "t_s": self.session.t_s,
                             "step": self.session.step, "paths": changed, "unreachable": gone})
        self.logged_paths = paths

    def _log_stats(self, record):
        if self.stats_log:
            self.stats_log.write(json.dumps({"t_wall": time.time(), **record}) + "\n")
            self.stats_log.flush()

    # ---------------------------------------------------------------- pushing rules
    def _push(self, nodes=None):
        """Sends the difference between desired and installed rules; waits for barriers.

        Never call this from an os-ken event handler directly: barrier replies arrive
        through the same event loop, so waiting there would deadlock (use
        :meth:`_push_soon`).
        """
        with self.push_lock:
            return self._push_locked(nodes)

    def _push_soon(self, nodes=None, log=None):
        """Recompute-free push in its own green thread (safe from event handlers)."""
        def work():
            sent = self._push(nodes)
            if log is not None:
                self._log_stats({**log, **sent})
        hub.spawn(work)

    def _push_locked(self, nodes):
        nodes = sorted(self.datapaths) if nodes is None else nodes
        old = {n: self.installed[n] for n in nodes if self.installed.get(n)}
        new = {n: self.session.table[n] for n in nodes if self.session.table.get(n)}
        diff = diff_rules(old, new)
        waits = []
        for node, sdiff in diff.switches.items():
            dp = self.datapaths.get(node)
            if dp is None:
                continue
            before = self.installed.get(node, SwitchTable()).rules
            for op, item in sdiff.operations():
                for msg in self._messages_with_hairpin(dp, node, op, item, before.get(getattr(item, "ipv4_dst", None))):
                    dp.send_msg(msg)
            waits.append(self._barrier(node, dp))
            self.installed[node] = self.session.table.get(node, SwitchTable())
        timeout = False
        for ev in waits:
            if not ev.wait(timeout=BARRIER_TIMEOUT_S):
                timeout = True
        return {"flow_mods": diff.flow_mods, "group_mods": diff.group_mods, "barrier_timeout": timeout}

    def _barrier(self, node, dp):
        req = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.set_xid(req)
        ev = hub.Event()
        self.pending_barriers[(node, req.xid)] = ev
        dp.send_msg(req)
        return ev

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        node = self.session.dpid_to_node.get(ev.msg.datapath.id)
        waiter = self.pending_barriers.pop((node, ev.msg.xid), None)
        if waiter is not None:
            waiter.set()

    def _neighbour_port(self, node, rule):
        """The output port of a single-path rule toward a neighbour switch, else None."""
        if rule is None or not isinstance(rule.action, OutputAction):
            return None
        host = self.session.hosts.get(rule.ipv4_dst)
        if host is not None and host.switch == node:
            return None                      # local delivery to the host
        return rule.action.port

    def _messages_with_hairpin(self, dp, node, op, item, old_rule):
        """The flow mod for ``item`` plus its hairpin companion.

        OpenFlow drops a packet whose output port is the port it came in on. While a
        route change reaches the switches one by one, a packet can arrive from the very
        neighbour this switch now forwards to (that neighbour still had the old route);
        a companion rule one priority higher (in_port = next hop, same destination ->
        output IN_PORT) sends it back, where the new route takes it on. Loop-free
        routes never use it in steady state. Single-path rules only.
        """
        if op not in (Op.FLOW_ADD, Op.FLOW_MODIFY, Op.FLOW_DELETE):
            return [self._message(dp, op, item)]
        ofp, parser = dp.ofproto, dp.ofproto_parser
        msgs = []
        old_port = self._neighbour_port(node, old_rule) if op != Op.FLOW_ADD else None
        if old_port is not None:
            match = parser.OFPMatch(in_port=old_port, eth_type=0x0800, ipv4_dst=item.ipv4_dst)
            msgs.append(parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE_STRICT, priority=old_rule.priority + 1,
                                          match=match, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))
        msgs.append(self._message(dp, op, item))
        new_port = self._neighbour_port(node, item) if op != Op.FLOW_DELETE else None
        if new_port is not None:
            match = parser.OFPMatch(in_port=new_port, eth_type=0x0800, ipv4_dst=item.ipv4_dst)
            inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(ofp.OFPP_IN_PORT)])]
            msgs.append(parser.OFPFlowMod(dp, command=ofp.OFPFC_ADD, priority=item.priority + 1, match=match,
                                          instructions=inst))
        return msgs

    @staticmethod
    def _message(dp, op, item):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        if op in (Op.GROUP_ADD, Op.GROUP_MODIFY, Op.GROUP_DELETE):
            command = {Op.GROUP_ADD: ofp.OFPGC_ADD, Op.GROUP_MODIFY: ofp.OFPGC_MODIFY,
                       Op.GROUP_DELETE: ofp.OFPGC_DELETE}[op]
            buckets = [] if op == Op.GROUP_DELETE else [
                # watch_port: OVS skips a bucket whose port is down (fast local failover)
                parser.OFPBucket(weight=w, watch_port=port, watch_group=ofp.OFPG_ANY,
                                 actions=[parser.OFPActionOutput(port)])
                for port, w in item.buckets]
            return parser.OFPGroupMod(dp, command, ofp.OFPGT_SELECT, item.group_id, buckets)
        match = parser.OFPMatch(eth_type=0x0800, ipv4_dst=item.ipv4_dst)
        if op == Op.FLOW_DELETE:
            return parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE_STRICT, priority=item.priority, match=match,
                                     out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)
        if isinstance(item.action, OutputAction):
            actions = [parser.OFPActionOutput(item.action.port)]
        elif isinstance(item.action, GroupAction):
            actions = [parser.OFPActionGroup(item.action.group_id)]
        else:
            raise TypeError(f"unknown action {item.action!r}")
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        command = ofp.OFPFC_ADD if op == Op.FLOW_ADD else ofp.OFPFC_MODIFY_STRICT
        return parser.OFPFlowMod(dp, command=command, priority=item.priority, match=match, instructions=inst)

    # ---------------------------------------------------------------- switch events
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_features(self, ev):
        dp = ev.msg.datapath
        node = self.session.dpid_to_node.get(dp.id, dp.id - 1)
        ofp, parser = dp.ofproto, dp.ofproto_parser
        # Start from a clean table: whatever an earlier controller left is gone.
        dp.send_msg(parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                      out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=parser.OFPMatch()))
        dp.send_msg(parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, ofp.OFPGT_ALL, ofp.OFPG_ALL, []))
        self.datapaths[node] = dp
        self.installed[node] = SwitchTable()
        LOG.info("switch %d (dpid %d) connected", node, dp.id)
        if self.session.has_topology and self.session.step >= 0:
            self._push_soon([node])

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _switch_gone(self, ev):
        dp = ev.datapath
        node = self.session.dpid_to_node.get(dp.id, (dp.id or 0) - 1)
        if self.datapaths.get(node) is dp:
            del self.datapaths[node]
            self.installed.pop(node, None)
            LOG.warning("switch %d disconnected", node)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        msg = ev.msg
        ofp = msg.datapath.ofproto
        down = bool(msg.desc.state & ofp.OFPPS_LINK_DOWN) or bool(msg.desc.config & ofp.OFPPC_PORT_DOWN)
        node = self.session.dpid_to_node.get(msg.datapath.id)
        if down and node is not None and self.session.has_topology and self.session.on_port_down(node, msg.desc.port_no):
            stats = self.session.recompute()
            self._push_soon(log={"event": "port_down", "node": node, "port": msg.desc.port_no,
                                 "compute_s": stats.compute_s})
            self._log_paths("port_down")

    # ---------------------------------------------------------------- port statistics
    def _poll_ports(self):
        # Only switches traffic can cross (and those still showing load from before a
        # re-route): polling all of a 3,363-switch shell every 0.5 s cost more than the
        # two cores this machine has, and the controller lost OpenFlow sessions.
        while True:
            hub.sleep(self.poll_interval_s)
            busy = {a for (a, _b), u in self.session.utilisation.items() if u > UTILISATION_EPSILON}
            per_destination = self.session.router.algorithm.uses_utilisation
            for node in sorted(self.session.carrying | busy):
                dp = self.datapaths.get(node)
                if dp is None:
                    continue
                ofp, parser = dp.ofproto, dp.ofproto_parser
                if per_destination:   # rule counters first: their reply is in before the port reply
                    dp.send_msg(parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                                           0, 0, parser.OFPMatch()))
                dp.send_msg(parser.OFPPortStatsRequest(dp, 0, ofp.OFPP_ANY))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev):
        """Per-destination load of each link out of a switch, from its rules' byte counters.

        Rules match one destination host; a rule's output port (or, for a hairpin rule,
        its in_port) names the link. Result: ``session.own_utilisation[(node, nbr)][dst
        switch]`` as a fraction of the link's capacity.
        """
        node = self.session.dpid_to_node.get(ev.msg.datapath.id)
        if node is None or not self.session.has_topology:
            return
        now = time.monotonic()
        ofp = ev.msg.datapath.ofproto
        seen = set()
        loads = self.rule_load.setdefault(node, {})
        for st in ev.msg.body:
            host = self.session.hosts.get(st.match.get("ipv4_dst"))
            ports = [a.port for inst in st.instructions for a in getattr(inst, "actions", [])
                     if hasattr(a, "port")]
            if host is None or len(ports) != 1:
                continue                      # not a unicast route rule (e.g. a select group)
            port = st.match.get("in_port") if ports[0] == ofp.OFPP_IN_PORT else ports[0]
            edge = self.session.port_to_edge.get((node, port))
            key = (node, st.match.get("ipv4_dst"), st.match.get("in_port"), st.priority)
            seen.add(key)
            prev = self.rule_bytes.get(key)
            self.rule_bytes[key] = (now, st.byte_count)
            if edge is None or prev is None or not 0 < now - prev[0] <= 3 * self.poll_interval_s:
                loads.pop(key, None)
                continue
            nbr = edge[1] if edge[0] == node else edge[0]
            cap = self.session.links.get(edge, {}).get("capacity_bps")
            if cap:
                rate = max(0.0, (st.byte_count - prev[1]) * 8 / (now - prev[0]) / cap)
                loads[key] = (nbr, host.switch, rate)
        if not ev.msg.flags & ofp.OFPMPF_REPLY_MORE:     # the whole table: rules gone since are gone
            for key in [k for k in loads if k not in seen]:
                del loads[key]
        # Every link out of this switch is now measured, loaded or not: an empty share map
        # means "no rule sent anything here", not "unknown" (rule counters lag port
        # counters by up to a revalidation interval, ~0.5 s in OVS, so a window can be empty).
        own = {k: v for k, v in self.session.own_utilisation.items() if k[0] != node}
        own.update({(node, nbr): {} for nbr in self.session.neighbours.get(node, ())})
        for nbr, dst, rate in loads.values():
            if rate > 0:
                shares = own.setdefault((node, nbr), {})
                shares[dst] = shares.get(dst, 0.0) + rate
        self.session.own_utilisation = own

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev):
        node = self.session.dpid_to_node.get(ev.msg.datapath.id)
        if node is None or not self.session.has_topology:
            return
        now = time.monotonic()
        util = dict(self.session.utilisation)
        changed = False
        for st in ev.msg.body:
            key = (node, st.port_no)
            edge = self.session.port_to_edge.get(key)
            prev = self.port_bytes.get(key)
            self.port_bytes[key] = (now, st.tx_bytes)
            # A counter last read long ago (switch not polled meanwhile) is only a new baseline.
            if edge is None or prev is None or not 0 < now - prev[0] <= 3 * self.poll_interval_s:
                continue
            nbr = edge[1] if edge[0] == node else edge[0]
            cap = self.session.links.get(edge, {}).get("capacity_bps")
            if not cap:
                continue
            u = max(0.0, (st.tx_bytes - prev[1]) * 8 / (now - prev[0]) / cap)
            changed |= abs(util.get((node, nbr), 0.0) - u) > UTILISATION_EPSILON
            util[(node, nbr)] = u
        if changed:
            self.session.on_utilisation(util)
            self._log_stats({"event": "utilisation", "node": node,
                             "links": {f"{a}-{b}": round(u, 4) for (a, b), u in util.items() if a == node},
                             "by_destination": {f"{a}-{b}": {str(d): round(x, 4) for d, x in shares.items()}
                                                for (a, b), shares in self.session.own_utilisation.items()
                                                if a == node}})
            # Counters read across a load-driven re-route mix the old paths with the new ones
            # (a rule's bytes all count for its new next hop): wait until a whole poll
            # interval has passed on the new routes before acting on load again.
            settled = now - self.load_rerouted_at > 2 * self.poll_interval_s
            if self.session.step >= 0 and self.session.router.algorithm.uses_utilisation and settled:
                before = self.session.routes
                self.session.recompute()
                if self.session.routes != before:
                    self.load_rerouted_at = now
                    self._push_soon()
                    self._log_paths("utilisation")


def main(argv=None) -> int:
    hub.patch(thread=False)    # eventlet: sockets, select and sleep yield to other green threads
    ap = argparse.ArgumentParser(prog="python -m controllers.app")
    ap.add_argument("--of-port", type=int, required=True)
    ap.add_argument("--feed-port", type=int, required=True)
    ap.add_argument("--algorithm", required=True)
    ap.add_argument("--params", default="{}", help="JSON object of algorithm parameters")
    ap.add_argument("--poll-interval-s", type=float, default=0.5, help="port statistics poll period (0: off)")
    ap.add_argument("--stats-log", default=None, help="JSON-lines file for per-step statistics")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stdout)
    try:
        make_router(args.algorithm, json.loads(args.params))   # fail before listening
    except ValueError as e:
        print(f"controller: {e}", file=sys.stderr)
        return 2
    OPTIONS.update(algorithm=args.algorithm, params=json.loads(args.params), feed_port=args.feed_port,
                   poll_interval_s=args.poll_interval_s, stats_log=args.stats_log)
    cfg.CONF(args=[], project="os_ken")
    cfg.CONF.set_override("ofp_listen_host", "127.0.0.1")
    cfg.CONF.set_override("ofp_tcp_listen_port", args.of_port)
    app_manager.AppManager.run_apps([__name__])
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")
    sys.exit(main())
