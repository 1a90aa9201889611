"""Builds a :class:`~testbed.plan.NetworkPlan` into a real network, fast, and tears it down.

Bring-up avoids the per-object subprocesses that make Mininet's start superlinear:
one ``ip -batch`` for namespaces and veths, one per host namespace for addresses and
static ARP, one ``tc -batch`` for shaping, and large ``ovs-vsctl`` transactions for all
bridges, ports (with fixed ``ofport_request``) and controller targets, one per Open vSwitch
daemon, run in parallel (see :mod:`testbed.ovs` for the private, sharded daemons of the
userspace datapath). Every object is marked (see :mod:`testbed.tracking`) so ``testbed
clean`` can remove it after a crash. Tear-down deletes all our interfaces in one batched
unregistration, then kills the private daemons. Use it as a context manager: tear-down
always runs.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Iterable

from .errors import EnvironmentProblem
from .links import LinkBackend, delete_marked_links, disable_ipv6, mark_lines, run_batch
from .ovs import OvsDaemon, SystemOvs, run_parallel, shard_count, start_private, stop_all
from .plan import HOST_NET, NetworkPlan
from .tracking import OVS_EXTERNAL_ID

OFFLOADS_OFF = ("tx", "off", "tso", "off", "gso", "off", "gro", "off")
OVS_CHUNK = 200   # bridges per ovs-vsctl transaction
#: OVS drops a controller that has not answered an echo within this time (default 5 s).
#: With thousands of switches the controller's first installs take longer than that, and
#: 3,363 switches were seen connecting and timing out in a loop; the testbed watches the
#: controller process itself, so a long probe loses nothing.
INACTIVITY_PROBE_MS = 60_000


def bridge_commands(plan: NetworkPlan, datapath: str, controller: str, run_id: str,
                    switch_ids: Iterable[int]) -> list[str]:
    """ovs-vsctl arguments (joined by '--') that create the given switches with their ports."""
    wanted = set(switch_ids)
    ports: dict[int, list[tuple[str, int]]] = {s: [] for s in wanted}
    for h in plan.hosts:
        if h.switch in wanted:
            ports[h.switch].append((h.sw_ifname, h.port))
    for lk in plan.links:
        if lk.a in wanted:
            ports[lk.a].append((lk.if_a, lk.port_a))
        if lk.b in wanted:
            ports[lk.b].append((lk.if_b, lk.port_b))
    # linux-noop: OVS must not manage the qdiscs of link ports (by default it replaces
    # any root qdisc, including our tbf/netem, with its own default).
    args: list[str] = ["--", "--id=@noop", "create", "qos", "type=linux-noop"]
    link_ifs = {i for lk in plan.links for i in (lk.if_a, lk.if_b)}
    for sw in plan.switches:
        if sw.node_id not in wanted:
            continue
        br = sw.bridge
        args += ["--", "add-br", br,
                 "--", "set", "bridge", br, f"datapath_type={datapath}", "protocols=OpenFlow13",
                 "fail_mode=secure", f"other-config:datapath-id={sw.dpid:016x}",
                 "other-config:disable-in-band=true", f"external-ids:{OVS_EXTERNAL_ID}={run_id}",
                 f"controller=@c{sw.node_id}",
                 "--", f"--id=@c{sw.node_id}", "create", "Controller", f'target="{controller}"',
                 f"inactivity_probe={INACTIVITY_PROBE_MS}"]
        for ifname, port in sorted(ports[sw.node_id], key=lambda p: p[1]):
            args += ["--", "add-port", br, ifname, "--", "set", "interface", ifname, f"ofport_request={port}"]
            if ifname in link_ifs:
                args += ["--", "set", "port", ifname, "qos=@noop"]
    return args


class Network:
    """A built network. ``with Network(...) as net:`` builds on entry, tears down on exit."""

    def __init__(self, plan: NetworkPlan, backend: LinkBackend, datapath: str,
                 controller_port: int, run_id: str, log_dir: Path | None = None):
        self.plan = plan
        self.backend = backend
        self.datapath = datapath
        self.controller = f"tcp:127.0.0.1:{controller_port}"
        self.run_id = run_id
        self.log_dir = log_dir
        self.timings_s: dict[str, float] = {}
        self.daemons: list[OvsDaemon] = []
        #: switch node id -> index into ``daemons``
        self.daemon_of: dict[int, int] = {}
        self._built_bridges: list[str] = []
        self._netns: list[str] = []

    def ovs_for(self, node_id: int) -> OvsDaemon:
        """The Open vSwitch daemon holding the switch of ``node_id``."""
        return self.daemons[self.daemon_of[node_id]]

    # ------------------------------------------------------------ build
    def build(self) -> "Network":
        t = time.perf_counter()
        self.backend.create(self.plan.links)
        self.timings_s["links"] = time.perf_counter() - t

        t = time.perf_counter()
        self._build_hosts()
        self.timings_s["hosts"] = time.perf_counter() - t

        # Before the switches exist: no daemon has to react to 2 x links state changes.
        t = time.perf_counter()
        up, down = [], []
        for lk in self.plan.links:
            (up if lk.up else down).extend((lk.if_a, lk.if_b))
        run_batch("ip", [f"link set dev {i} up" for i in up] + [f"link set dev {i} down" for i in down])
        self.timings_s["link_state"] = time.perf_counter() - t

        t = time.perf_counter()
        self._start_daemons()
        self.timings_s["ovs_daemons"] = time.perf_counter() - t

        t = time.perf_counter()
        bridge = {sw.node_id: sw.bridge for sw in self.plan.switches}
        per_daemon: list[list[int]] = [[] for _ in self.daemons]
        for sw in self.plan.switches:
            per_daemon[self.daemon_of[sw.node_id]].append(sw.node_id)
        for i in range(0, max(map(len, per_daemon)), OVS_CHUNK):
            chunks = [ids[i:i + OVS_CHUNK] for ids in per_daemon]
            self._built_bridges += [bridge[n] for c in chunks for n in c]
            run_parallel(self.daemons, [bridge_commands(self.plan, d.datapath_type(self.datapath), self.controller,
                                                        self.run_id, c)[1:] if c else []
                                        for d, c in zip(self.daemons, chunks)])
        self.timings_s["switches"] = time.perf_counter() - t
        return self

    def _start_daemons(self) -> None:
        """Private sharded daemons for the userspace datapath, the machine's for the kernel one."""
        ids = [sw.node_id for sw in self.plan.switches]
        if self.datapath == "netdev":
            self.daemons = start_private(shard_count(len(ids)), self.log_dir)
        else:
            self.daemons = [SystemOvs()]
        k = len(self.daemons)
        # Contiguous blocks of node ids: neighbours in a plane mostly share a daemon.
        self.daemon_of = {n: i * k // len(ids) for i, n in enumerate(ids)}

    def _build_hosts(self) -> None:
        root = []
        for h in self.plan.hosts:
            self._netns.append(h.netns)
            tmp = f"lmi{h.node_id}"
            root += [f"netns add {h.netns}",
                     f"link add {h.sw_ifname} type veth peer name {tmp}",
                     *mark_lines([h.sw_ifname]),
                     f"link set dev {tmp} netns {h.netns}",
                     f"link set dev {h.sw_ifname} up"]
        run_batch("ip", root)
        disable_ipv6([h.sw_ifname for h in self.plan.hosts])
        for h in self.plan.hosts:
            lines = [f"link set dev lmi{h.node_id} name eth0",
                     f"link set dev eth0 address {h.mac}",
                     f"addr add {h.ip}/{HOST_NET.prefixlen} dev eth0",
                     "link set dev lo up", "link set dev eth0 up"]
            lines += [f"neigh replace {o.ip} lladdr {o.mac} dev eth0 nud permanent"
                      for o in self.plan.hosts if o.node_id != h.node_id]
            run_batch("ip", lines, netns=h.netns)
        if self.datapath == "netdev":
            # Userspace OVS forwards veth super-frames and partial checksums as they are;
            # TCP stalls unless offloads are off on both ends (see FINDINGS).
            for h in self.plan.hosts:
                self._ethtool(h.sw_ifname)
                self._ethtool("eth0", netns=h.netns)

    @staticmethod
    def _ethtool(ifname: str, netns: str | None = None) -> None:
        argv = (["ip", "netns", "exec", netns] if netns else []) + ["ethtool", "-K", ifname, *OFFLOADS_OFF]
        subprocess.run(argv, capture_output=True)

    # ------------------------------------------------------------ live changes
    def set_links_up(self, link_ids_up: Iterable[int], link_ids_down: Iterable[int]) -> None:
        """Administrative state of links: both ends up or down, in one netlink batch."""
        by_id = {lk.link_id: lk for lk in self.plan.links}
        lines = []
        for lid in link_ids_down:
            lk = by_id[lid]
            lines += [f"link set dev {lk.if_a} down", f"link set dev {lk.if_b} down"]
        for lid in link_ids_up:
            lk = by_id[lid]
            lines += [f"link set dev {lk.if_a} up", f"link set dev {lk.if_b} up"]
        run_batch("ip", lines)

    # ------------------------------------------------------------ tear-down
    def teardown(self) -> None:
        t = time.perf_counter()
        self.timings_s["teardown_stages"] = stages = {}
        # All our interfaces at once (taps, root ends of host veths, private bridges' own
        # devices): one batched unregistration instead of one grace period each.
        delete_marked_links()
        stages["interfaces"] = time.perf_counter() - t
        for d in self.daemons:
            if isinstance(d, SystemOvs):
                d.delete_bridges(self._built_bridges, OVS_CHUNK)
        self._built_bridges = []
        stop_all(self.daemons)      # private ones: killed together, their sockets close in parallel
        self.daemons = []
        stages["switches"] = time.perf_counter() - t - stages["interfaces"]
        self.backend.close()
        stages["links"] = time.perf_counter() - t - sum(stages.values())
        if self._netns:
            # Delete the root-side veth ends first: a namespace can outlive its name while
            # the kernel still holds a reference, and its veth pair with it.
            lines = [f"link del {h.sw_ifname}" for h in self.plan.hosts]
            lines += [f"netns del {n}" for n in self._netns]
            subprocess.run(["ip", "-force", "-batch", "-"], capture_output=True, text=True,
                           input="\n".join(lines) + "\n")
            self._netns = []
        self.timings_s["teardown"] = time.perf_counter() - t

    def __enter__(self) -> "Network":
        try:
            return self.build()
        except BaseException:
            self.teardown()
            raise

    def __exit__(self, *exc) -> None:
        self.teardown()
