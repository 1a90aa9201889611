"""The os-ken application: the only module that imports os-ken.

It is a shim (Faucet's pattern): event handlers unpack OpenFlow events and feed
messages and hand them to :class:`~controllers.session.ControllerSession`, which keeps
the network view, the desired flow table, what each switch has and the counter
arithmetic; what it asks to send is built by :mod:`controllers.ofmsg` (flow and group
mods with their hairpin companions, confirmed by a barrier; statistics requests) and
sent here; with ``--updates consistent`` route changes go through
:class:`~controllers.consistent.ConsistentUpdates` instead (two-phase, no hairpins). Inputs: switch connect/disconnect, port status (a port going down takes its
link out at once), port statistics (polled from the switches traffic can cross, see
:meth:`~controllers.session.ControllerSession.poll_targets`; utilisation per directed
link, for ``load_aware`` and for the results), rule statistics (for algorithms that use
utilisation: each link's load by destination), and the testbed's link-state feed
(:mod:`controllers.feed`).

Run as a process (the testbed does this)::

    python -m controllers.app --of-socket DIR/of.sock --feed-socket DIR/feed.sock --algorithm min_delay

Both channels are Unix sockets in a directory only root may enter (the testbed makes it:
testbed/control/process.py), so only the run's own parties can connect; ``--of-port`` and
``--feed-port`` (127.0.0.1 TCP, open to every local user) remain for manual use. os-ken's event loop only logs an exception
raised by a handler and goes on, which would leave a half-working controller; so every
handler and green thread here is wrapped (:func:`stop_on_error`): an exception is
logged with its traceback and ends the process with status
:data:`EXIT_HANDLER_FAILED`, which the testbed's watcher sees. A feed message that
fails is answered with an ``error`` reply instead (the testbed then stops the run).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import socket
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
from os_ken.ofproto import ofproto_common, ofproto_v1_3  # noqa: E402

from . import feed, ofmsg  # noqa: E402
from . import steplog  # noqa: E402
from .algorithms import make_router  # noqa: E402
from .consistent import ConsistentUpdates  # noqa: E402
from .session import ControllerSession  # noqa: E402

LOG = logging.getLogger("lmtb.controller")
BARRIER_TIMEOUT_S = 5.0
#: Exit status after a handler raised (EX_SOFTWARE of sysexits.h).
EXIT_HANDLER_FAILED = 70
OPTIONS: dict = {}   # filled by main() before os-ken instantiates the app


def stop_on_error(handler):
    """Wraps an event handler or green-thread body so that an exception stops the process.

    The traceback goes to the log, then a last line naming the handler (the testbed
    quotes the last log line), then the process exits with :data:`EXIT_HANDLER_FAILED`
    through ``app.exit`` (``os._exit``: no green thread can keep a half-working
    controller alive). ``hub.TaskExit`` (a normal stop) is not an ``Exception`` and
    passes.
    """
    @functools.wraps(handler)
    def wrapped(self, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any failure stops the controller
            LOG.exception("handler %s raised", handler.__name__)
            self.failed = f"{handler.__name__}: {type(e).__name__}: {e}"
            LOG.critical("controller stopped: handler %s", self.failed)
            for h in logging.getLogger().handlers + LOG.handlers:
                h.flush()
            if self.stats_log:
                self.stats_log.flush()
            self.exit(EXIT_HANDLER_FAILED)
    return wrapped


class RoutingApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    exit = staticmethod(os._exit)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.poll_interval_s = OPTIONS["poll_interval_s"]
        self.session = ControllerSession(make_router(OPTIONS["algorithm"], OPTIONS["params"]),
                                         poll_interval_s=self.poll_interval_s)
        self.failed = None          # "handler: error" once a handler raised
        self.datapaths = {}         # node -> datapath
        self.pending_barriers = {}  # (node, xid) -> hub.Event
        self.out_of_reach = frozenset()   # switch nodes the last state named out of reach
        self.push_lock = hub.BoundedSemaphore(1)   # one diff-and-send at a time
        self.stats_log = open(OPTIONS["stats_log"], "a") if OPTIONS.get("stats_log") else None
        # updates = "consistent": two-phase, version-tagged generations (controllers/consistent.py)
        self.consistent = (ConsistentUpdates(log=self._log_stats)
                           if OPTIONS.get("updates", "direct") == "consistent" else None)
        self.threads.append(hub.spawn(self._serve_feed))
        if self.poll_interval_s > 0:
            self.threads.append(hub.spawn(self._poll_ports))

    # ---------------------------------------------------------------- feed
    @stop_on_error
    def _serve_feed(self):
        # os-ken's StreamServer listens on a Unix socket when the "host" is a path in an existing folder.
        where = (OPTIONS["feed_socket"], None) if OPTIONS.get("feed_socket") else (feed.LISTEN_HOST, OPTIONS["feed_port"])
        server = hub.StreamServer(where, self._feed_connection)
        LOG.info("feed listening on %s", where[0] if where[1] is None else f"{where[0]}:{where[1]}")
        server.serve_forever()

    @stop_on_error
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
        # Switches the clock says are out of a distant controller's reach this step: their
        # messages (barriers too) wait in the control relay until a path returns, so
        # waiting for their replies would only hold the step for BARRIER_TIMEOUT_S.
        self.out_of_reach = frozenset(int(n) for n in msg.get("out_of_reach", ()))
        decided_unix, t0 = time.time(), time.monotonic()
        sent = self._push()
        install_s = time.monotonic() - t0     # decision -> last barrier reply (or the timeout)
        missing = [n for n in self.session.switches if n not in self.datapaths]
        reply = {"type": "applied", "step": self.session.step, "compute_s": stats.compute_s,
                 "decided_unix": decided_unix, "install_s": install_s,
                 "flow_mods": sent["flow_mods"], "group_mods": sent["group_mods"],
                 "barrier_timeout": sent["barrier_timeout"], "missing_switches": missing,
                 "rules_per_switch": self.session.rules_per_switch()}
        self._log_stats({"event": "step", "t_s": self.session.t_s,
                         **{k: v for k, v in reply.items() if k != "type"}})
        self._log_paths("step")
        return reply

    def _on_status(self, msg):
        return {"type": "status", "connected": sorted(self.datapaths), "installed": self.session.all_installed()}

    FEED_HANDLERS = {"topology": _on_topology, "state": _on_state, "status": _on_status}

    def _log_paths(self, cause):
        record = self.session.paths_record(cause)
        if record is not None:
            self._log_stats(record)

    def _log_stats(self, record):
        """One record of the step log (format: :mod:`controllers.steplog`)."""
        if self.stats_log:
            record = dict(record)
            steplog.write_record(self.stats_log, record.pop("event"), **record)

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
        hub.spawn(self._push_and_log, nodes, log)

    @stop_on_error
    def _push_and_log(self, nodes, log):
        sent = self._push(nodes)
        if log is not None:
            self._log_stats({**log, **sent})

    def _push_locked(self, nodes):
        nodes = sorted(self.datapaths) if nodes is None else nodes
        if self.consistent is not None:
            return self.consistent.push(self.session, self.datapaths, nodes, self._send, self._barrier_all,
                                        self._later)
        diff = self.session.changes(nodes)
        waits = []
        for node, change in diff.switches.items():
            dp = self.datapaths.get(node)
            if dp is None:
                continue
            before = self.session.installed.get(node)
            for msg in ofmsg.switch_messages(dp, change, before.rules if before else {},
                                             self.session.local_addresses.get(node, ())):
                dp.send_msg(msg)
            waits.append(self._barrier(node, dp))
            self.session.mark_installed(node)
        timeout = not self._wait_all(waits)
        return {"flow_mods": diff.flow_mods, "group_mods": diff.group_mods, "barrier_timeout": timeout}

    @staticmethod
    def _wait_all(waits) -> bool:
        """Waits for every barrier reply within one BARRIER_TIMEOUT_S in all (not one each:
        switches out of a distant controller's reach answer late, and N of them must not hold
        a step N x 5 s); True if all arrived."""
        deadline = time.monotonic() + BARRIER_TIMEOUT_S
        arrived = True
        for ev in waits:
            arrived = ev.wait(timeout=max(0.0, deadline - time.monotonic())) and arrived
        return arrived

    @staticmethod
    def _send(dp, msgs):
        for msg in msgs:
            dp.send_msg(msg)

    def _barrier_all(self, nodes):
        """A barrier to each of ``nodes`` (connected ones); True if any reply timed out."""
        waits = [self._barrier(n, self.datapaths[n]) for n in nodes if n in self.datapaths]
        return not self._wait_all(waits)

    def _later(self, delay_s, fn):
        hub.spawn(self._run_later, delay_s, fn)

    @stop_on_error
    def _run_later(self, delay_s, fn):
        hub.sleep(delay_s)
        with self.push_lock:
            fn()

    def _barrier(self, node, dp):
        """Sends a barrier; returns the event its reply sets (already set for a switch out of
        reach: its reply comes whenever the relay can deliver, and nobody waits for it)."""
        req = ofmsg.barrier(dp)
        dp.set_xid(req)
        ev = hub.Event()
        if node in self.out_of_reach:
            ev.set()
        else:
            self.pending_barriers[(node, req.xid)] = ev
        dp.send_msg(req)
        return ev

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    @stop_on_error
    def _barrier_reply(self, ev):
        node = self.session.dpid_to_node.get(ev.msg.datapath.id)
        waiter = self.pending_barriers.pop((node, ev.msg.xid), None)
        if waiter is not None:
            waiter.set()

    # ---------------------------------------------------------------- switch events
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    @stop_on_error
    def _switch_features(self, ev):
        dp = ev.msg.datapath
        node = self.session.dpid_to_node.get(dp.id, dp.id - 1)
        for msg in ofmsg.clear_switch(dp):   # whatever an earlier controller left is gone
            dp.send_msg(msg)
        self.datapaths[node] = dp
        if self.consistent is not None:
            self.consistent.forget(node)
        LOG.info("switch %d (dpid %d) connected", node, dp.id)
        if self.session.on_switch_connected(node):
            self._push_soon([node])

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    @stop_on_error
    def _switch_gone(self, ev):
        dp = ev.datapath
        node = self.session.dpid_to_node.get(dp.id, (dp.id or 0) - 1)
        if self.datapaths.get(node) is dp:
            del self.datapaths[node]
            self.session.on_switch_gone(node)
            LOG.warning("switch %d disconnected", node)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    @stop_on_error
    def _port_status(self, ev):
        msg = ev.msg
        node = self.session.dpid_to_node.get(msg.datapath.id)
        stats = self.session.on_port_status(node, msg.desc.port_no, ofmsg.port_down(msg.datapath, msg.desc))
        if stats is not None:
            self._push_soon(log={"event": "port_down", "node": node, "port": msg.desc.port_no,
                                 "compute_s": stats.compute_s})
            self._log_paths("port_down")

    # ---------------------------------------------------------------- port statistics
    @stop_on_error
    def _poll_ports(self):
        # Only switches traffic can cross (and those still showing load from before a
        # re-route): polling all of a 3,363-switch shell every 0.5 s cost more than the
        # two cores this machine has, and the controller lost OpenFlow sessions.
        while True:
            hub.sleep(self.poll_interval_s)
            per_destination = self.session.router.algorithm.uses_utilisation
            for node in self.session.poll_targets():
                dp = self.datapaths.get(node)
                if dp is None:
                    continue
                if per_destination:   # rule counters first: their reply is in before the port reply
                    dp.send_msg(ofmsg.flow_stats_request(dp))
                dp.send_msg(ofmsg.port_stats_request(dp))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    @stop_on_error
    def _flow_stats(self, ev):
        """Per-destination load of each link out of a switch, from its rules' byte counters."""
        dp = ev.msg.datapath
        self.session.on_rule_counts(self.session.dpid_to_node.get(dp.id), ofmsg.rule_counts(dp, ev.msg.body),
                                    complete=not ofmsg.more_follows(dp, ev.msg), now_s=time.monotonic())

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    @stop_on_error
    def _port_stats(self, ev):
        node = self.session.dpid_to_node.get(ev.msg.datapath.id)
        update = self.session.on_port_counts(node, ofmsg.port_counts(ev.msg.body), now_s=time.monotonic())
        if update.changed:
            self._log_stats(self.session.utilisation_record(node))
        if update.rerouted:
            self._push_soon()
            self._log_paths("utilisation")


class _NoTcpOptions:
    """A switch's Unix-socket connection as os-ken's Datapath expects a TCP one: it sets
    TCP_NODELAY on every connection, an option a Unix socket does not have (EOPNOTSUPP)."""

    def __init__(self, sock):
        self._sock = sock

    def setsockopt(self, level, *args):
        if level != socket.IPPROTO_TCP:
            self._sock.setsockopt(level, *args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _listen_openflow_on_unix_socket(path: str) -> None:
    """OpenFlow on the Unix socket ``path``: os-ken's StreamServer binds AF_UNIX when the listen
    "host" is a path in an existing folder (the port is then unused); its connections are
    handed to Datapath through :class:`_NoTcpOptions`."""
    from os_ken.controller import controller as ofp_controller
    cfg.CONF.set_override("ofp_listen_host", path)
    cfg.CONF.set_override("ofp_tcp_listen_port", ofproto_common.OFP_TCP_PORT)
    factory = ofp_controller.datapath_connection_factory
    ofp_controller.datapath_connection_factory = lambda sock, address: factory(_NoTcpOptions(sock), address)


def main(argv=None) -> int:
    hub.patch(thread=False)    # eventlet: sockets, select and sleep yield to other green threads
    ap = argparse.ArgumentParser(prog="python -m controllers.app")
    of = ap.add_mutually_exclusive_group(required=True)
    of.add_argument("--of-socket", help="OpenFlow on this Unix socket (its folder must exist)")
    of.add_argument("--of-port", type=int, help="OpenFlow on this TCP port of 127.0.0.1")
    fd = ap.add_mutually_exclusive_group(required=True)
    fd.add_argument("--feed-socket", help="the testbed's feed on this Unix socket")
    fd.add_argument("--feed-port", type=int, help="the testbed's feed on this TCP port of 127.0.0.1")
    ap.add_argument("--algorithm", required=True)
    ap.add_argument("--params", default="{}", help="JSON object of algorithm parameters")
    ap.add_argument("--poll-interval-s", type=float, default=0.5, help="port statistics poll period (0: off)")
    ap.add_argument("--stats-log", default=None, help="JSON-lines file for per-step statistics")
    ap.add_argument("--updates", choices=("direct", "consistent"), default="direct",
                    help="direct: rules changed in place (default); consistent: two-phase, version-tagged")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stdout)
    try:
        make_router(args.algorithm, json.loads(args.params))   # fail before listening
    except ValueError as e:
        print(f"controller: {e}", file=sys.stderr)
        return 2
    OPTIONS.update(algorithm=args.algorithm, params=json.loads(args.params), feed_port=args.feed_port,
                   feed_socket=args.feed_socket, poll_interval_s=args.poll_interval_s, stats_log=args.stats_log,
                   updates=args.updates)
    cfg.CONF(args=[], project="os_ken")
    if args.of_socket:
        _listen_openflow_on_unix_socket(args.of_socket)
    else:
        cfg.CONF.set_override("ofp_listen_host", "127.0.0.1")
        cfg.CONF.set_override("ofp_tcp_listen_port", args.of_port)
    app_manager.AppManager.run_apps([__name__])
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")
    sys.exit(main())
