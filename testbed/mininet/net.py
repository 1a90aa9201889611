"""A running emulation presented as a ``mininet.net.Mininet``.

The testbed builds its network with its own batched code (testbed/net/network.py:
7.4 s for 528 satellites where Mininet's start path took 336 s); :class:`TestbedMininet`
then describes that network with Mininet's objects, without starting anything:

- ``net.hosts``: a :class:`~testbed.mininet.nodes.TestbedHost` per compute satellite and
  ground station, named as in the plan, living in the testbed's namespace;
- ``net.switches``: a :class:`~testbed.mininet.nodes.TestbedSwitch` per OVS bridge
  (``lms<node id>``), ``dpctl`` reaching the private daemon that holds it;
- ``net.links``: a :class:`~testbed.mininet.links.TestbedLink` per laser or ground link
  and per host veth, reporting ``up``, ``delay_s`` and ``rate_bps`` as the clock has
  applied them (the schedule stays the authority).

Mininet code runs unchanged on it (``net.pingAll()``, ``net.iperf()``, ``net['h0'].cmd()``).
``net.start()`` and ``net.build()`` are not needed (the network is up) and ``net.stop()``
only ends what Mininet started (node shells, ``popen`` processes): the
:class:`~testbed.emulation.Emulation` owns the tear-down. Mininet's ``init`` (raising
machine-wide limits and sysctls) is not run: the testbed changes nothing outside its run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import numpy as np
from mininet.log import error, output
from mininet import util as mininet_util
from mininet.net import Mininet

from testbed.errors import EnvironmentProblem
from testbed.mininet.links import TestbedIntf, TestbedLink
from testbed.mininet.nodes import TestbedHost, TestbedSwitch
from testbed.mininet.replay import ClockThread, InstalledPaths
from testbed.control.messages import link_records, state_message
from testbed.net.georef import tcp_payload_rate_bps
from testbed.net.plan import HOST_NET

SNAPSHOT_S = 0.05     # link state read from the clock at most this often (a `links` of 3,168)
#: what Mininet's node shells and commands use (Debian packages mininet, net-tools, iperf, telnet)
TOOLS = ("mnexec", "ifconfig", "iperf", "telnet")


def require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise EnvironmentProblem(f"the Mininet view needs {', '.join(missing)} (run 'make setup')")


class TestbedMininet(Mininet):
    """The Mininet view of ``emu`` (an entered :class:`~testbed.emulation.Emulation`).

    ``replay`` is the :class:`~testbed.mininet.replay.ClockThread` replaying its schedule,
    or None for a static network (the slice, a network without timeline).
    """

    __test__ = False    # not a pytest test class, despite its name

    def __init__(self, emu, replay: ClockThread | None = None):
        require_tools()
        Mininet.inited = True     # skip Mininet.init(): no machine-wide limits or sysctls
        if not hasattr(mininet_util.numCores, "ncores"):   # Mininet would grep /proc/cpuinfo
            mininet_util.numCores.ncores = os.cpu_count()
        super().__init__(topo=None, switch=TestbedSwitch, host=TestbedHost, controller=None,
                         link=TestbedLink, intf=TestbedIntf, build=False, ipBase=str(HOST_NET))
        self.emu = emu
        self.plan = emu.plan
        self.replay = replay
        self._manual: dict[int, tuple[bool, int | None]] = {}   # link id -> (up, until step)
        self._snapshot: tuple[float, np.ndarray, np.ndarray] | None = None
        self._status: tuple[float, set[int]] = (0.0, set())
        self._status_lock = threading.Lock()
        log_dir = getattr(emu.controller, "stats_log", None) if getattr(emu, "controller", None) else None
        self.installed = InstalledPaths(log_dir) if log_dir else None
        self._describe()
        self.built = True

    # ------------------------------------------------------------ the Mininet objects
    def _describe(self) -> None:
        net = self.emu.network
        by_node: dict[int, TestbedSwitch] = {}
        for sw in self.plan.switches:
            node = TestbedSwitch(sw.bridge, spec=sw, connected_ids=self.connected_ids,
                                 ovs=(lambda n=sw.node_id: net.ovs_for(n)) if net is not None else None)
            by_node[sw.node_id] = node
            self.switches.append(node)
            self.nameToNode[node.name] = node
        for h in self.plan.hosts:
            host = TestbedHost(h.name, spec=h)
            self.hosts.append(host)
            self.nameToNode[host.name] = host
            eth0 = TestbedIntf("eth0", node=host, port=0, mac=h.mac, ip=(h.ip, HOST_NET.prefixlen))
            port = TestbedIntf(h.sw_ifname, node=by_node[h.switch], port=h.port)
            self.links.append(TestbedLink(eth0, port))
        self.link_by_id: dict[int, TestbedLink] = {}
        self.link_by_pair: dict[tuple[int, int], TestbedLink] = {}
        for lk in self.plan.links:
            ia = TestbedIntf(lk.if_a, node=by_node[lk.a], port=lk.port_a)
            ib = TestbedIntf(lk.if_b, node=by_node[lk.b], port=lk.port_b)
            link = TestbedLink(ia, ib, state=self, link_id=lk.link_id, kind=lk.kind, rate_bps=lk.rate_bps)
            self.links.append(link)
            self.link_by_id[lk.link_id] = link
            self.link_by_pair[(lk.a, lk.b)] = self.link_by_pair[(lk.b, lk.a)] = link
        self.switch_of = by_node

    # ------------------------------------------------------------ link state (LinkState)
    def _applied(self) -> tuple[np.ndarray, np.ndarray]:
        now = time.monotonic()
        snap = self._snapshot
        if snap is None or now - snap[0] > SNAPSHOT_S:
            state = self.replay.clock.applied() if self.replay is not None else None
            if state is None:
                state = (np.array([lk.delay_s for lk in self.plan.links]), np.array([lk.up for lk in self.plan.links]))
            snap = self._snapshot = (now, *state)
        return snap[1], snap[2]

    def _manual_active(self, link_id: int) -> bool:
        if link_id not in self._manual:
            return False
        _up, until = self._manual[link_id]
        if until is not None and self.replay is not None and self.replay.applied_step() >= until:
            del self._manual[link_id]       # the clock has re-applied the schedule since
            return False
        return True

    def link_up(self, link_id: int) -> bool:
        if self.replay is None and self._manual_active(link_id):
            return self._manual[link_id][0]
        return bool(self._applied()[1][link_id])

    def link_delay_s(self, link_id: int) -> float:
        return float(self._applied()[0][link_id])

    def manual_note(self, link_id: int) -> str:
        if not self._manual_active(link_id):
            return ""
        until = self._manual[link_id][1]
        return "set by hand" + (f", until step {until}" if until is not None else "")

    # ------------------------------------------------------------ controller
    def connected_ids(self) -> set[int]:
        """Node ids of the switches the controller has a session with (cached 0.5 s)."""
        with self._status_lock:
            t, ids = self._status
            if time.monotonic() - t > 0.5:
                ids = set(self.emu.controller.request({"type": "status"})["connected"])
                self._status = (time.monotonic(), ids)
            return ids

    # ------------------------------------------------------------ Mininet overrides
    def start(self):
        """The testbed brought the network up already."""

    def build(self):
        """The testbed built the network already."""

    def configLinkStatus(self, src, dst, status):  # noqa: N802 - Mininet's name
        """``link a b up|down``. A laser or ground link: both ends, and the controller is told at
        once; the clock re-applies the schedule to the link at its next step (the schedule
        stays the authority). A host's veth: as Mininet does it (the schedule never has it)."""
        a, b = self.nameToNode.get(src), self.nameToNode.get(dst)
        if not (isinstance(a, TestbedSwitch) and isinstance(b, TestbedSwitch)):
            super().configLinkStatus(src, dst, status)
            if a is not None and b is not None:
                output(f"*** {src}-{dst} is a host link: the schedule never changes it, it stays {status}\n")
            return
        link = self.link_by_pair.get((a.spec.node_id, b.spec.node_id))
        if link is None:
            error(f"src and dst not connected: {src} {dst}\n")
            return
        up = status == "up"
        self.emu.network.set_links_up([link.link_id] if up else [], [] if up else [link.link_id])
        until = None
        if self.replay is not None:
            self.replay.clock.set_elsewhere([link.link_id], up)
            k, tl = self.replay.applied_step(), self.replay.clock.timeline
            until = k + 1 if self.replay.running and k + 1 < tl.n_steps else None
        self._manual[link.link_id] = (up, until)
        self._snapshot = None
        self._tell_controller()
        if self.replay is None:
            output(f"*** {src}-{dst} {status}: a static network, it stays {status} until changed again\n")
        elif until is None:
            output(f"*** {src}-{dst} {status} by hand; the replay has no further step, so it stays {status}\n")
        else:
            tl = self.replay.clock.timeline
            scheduled = "up" if tl.up[until, link.link_id] else "down"
            output(f"*** {src}-{dst} {status} by hand; the schedule stays the authority and sets it "
                   f"{scheduled} again at its next change (step {until}, t = {float(tl.times_s[until]):g} s "
                   "orbital)\n")

    def _tell_controller(self) -> None:
        """The link state in force now (schedule plus manual changes) to the controller."""
        delay_s, up = self._applied()
        if self.replay is None:
            up = up.copy()
            for lid, (manual_up, _until) in self._manual.items():
                up[lid] = manual_up
        delay_s = np.where(np.isfinite(delay_s) & (delay_s > 0), delay_s, 1.0)
        k = self.replay.applied_step() if self.replay is not None else 0
        t_s = float(self.replay.clock.timeline.times_s[k]) if self.replay is not None else 0.0
        records = link_records(self.plan, {i: float(d) for i, d in enumerate(delay_s)},
                               {i: bool(u) for i, u in enumerate(up)})
        self.emu.controller.request(state_message(k, t_s, records))

    def iperf(self, hosts=None, l4Type="TCP", udpBw="10M", fmt=None, seconds=5, port=5001):  # noqa: N803
        """Mininet's ``iperf`` (iperf2, same arguments, output and result), without its telnet probe.

        Mininet 2.3.0 waits for two reports from the server, one for its telnet probe of the
        port; iperf 2.1.8 (Debian 12) reports nothing for a connection that sends nothing,
        so Mininet's own method waits forever. Here the server (``iperf -s -P 1``: it exits
        after one client) is known to listen from ``ss`` in its namespace.
        Returns ``[server rate, client rate]`` as iperf prints them (``[udpBw, ...]`` for UDP).
        """
        client, server = hosts or [self.hosts[0], self.hosts[-1]]
        output(f"*** Iperf: testing {l4Type} bandwidth between {client} and {server} \n")
        if l4Type not in ("TCP", "UDP"):
            raise ValueError(f"l4Type: TCP or UDP, got {l4Type!r}")
        args = ["iperf", "-p", str(port)] + (["-u"] if l4Type == "UDP" else []) + (["-f", fmt] if fmt else [])
        srv = server.popen(args + ["-s", "-P", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            ss = ["ss", "-Hln" + ("u" if l4Type == "UDP" else "t"), f"sport = :{port}"]
            deadline = time.monotonic() + 10
            while not server.pexec(ss)[0].strip():
                if srv.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"iperf server on {server} did not listen on port {port}")
                time.sleep(0.05)
            cliout = client.pexec(args + ["-t", str(int(seconds)), "-c", server.IP()]
                                  + (["-b", udpBw] if l4Type == "UDP" else []))[0]
            servout = srv.communicate(timeout=seconds + 15)[0]
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
        result = [self._parseIperf(servout), self._parseIperf(cliout)]
        if l4Type == "UDP":
            result.insert(0, udpBw)
        output(f"*** Results: {result}\n")
        rate = self.path_rate_bps(client.name, server.name)
        if rate is not None:
            output(f"*** shaped at {rate / 1e6:g} Mbit/s per link on the path: TCP payload at most "
                   f"{tcp_payload_rate_bps(rate) / 1e6:.3f} Mbit/s\n")
        return result

    def path_rate_bps(self, src: str, dst: str) -> float | None:
        """Slowest shaped rate on the installed path between two hosts, bit/s (None: no path)."""
        path = self.installed_path(src, dst)
        if not path or len(path) < 2:
            return None
        rates = [self.link_by_pair[(a, b)].rate_bps for a, b in zip(path, path[1:]) if (a, b) in self.link_by_pair]
        return min(rates) if rates else None

    def stop(self):
        """Ends the node shells and ``popen`` processes Mininet started; nothing else."""
        for node in self.hosts + self.switches:
            node.terminate()

    # ------------------------------------------------------------ testbed additions
    def host_node_id(self, name: str) -> int:
        node = self.nameToNode[name]
        return node.spec.switch if isinstance(node, TestbedHost) else node.spec.node_id

    def path_delay_s(self, path) -> float | None:
        """One-way delay along a switch path (node ids) with the delays in force; None if a link is down."""
        total = 0.0
        for a, b in zip(path, path[1:]):
            link = self.link_by_pair.get((a, b))
            if link is None or not link.up:
                return None
            total += link.delay_s
        return total

    def installed_path(self, src: str, dst: str) -> tuple[int, ...] | None:
        """The switch path the controller installed from host ``src`` to host ``dst``."""
        if self.installed is None:
            return None
        return self.installed.between(self.host_node_id(src), self.host_node_id(dst))

    def orbital_time_s(self) -> float | None:
        return self.replay.orbital_time_s() if self.replay is not None else None
