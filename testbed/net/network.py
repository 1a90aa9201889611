"""Builds a :class:`~testbed.net.plan.NetworkPlan` into a real network, fast, and tears it down.

Bring-up avoids the per-object subprocesses that make Mininet's start superlinear:
one ``ip -batch`` for namespaces and veths, one per host namespace for addresses and
static ARP, one ``tc -batch`` for shaping, and large ``ovs-vsctl`` transactions for all
bridges, ports (with fixed ``ofport_request``) and controller targets, one per Open vSwitch
daemon, run in parallel (see :mod:`testbed.net.ovs` for the private, sharded daemons of the
userspace datapath). Every object is marked (see :mod:`testbed.system.tracking`) so ``testbed
clean`` can remove it after a crash. Tear-down deletes all our interfaces in one batched
unregistration, then kills the private daemons. Use it as a context manager: tear-down
always runs.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

from tqdm import tqdm

from testbed.links.backends import BatchTool, LinkBackend, delete_marked_links, disable_ipv6, mark_lines, run_batch
from testbed.net.ovs import OvsDaemon, SystemOvs, run_parallel, shard_count, start_private, stop_all
from testbed.net.plan import HOST_NET, NetworkPlan
from testbed.system import netns as netns_records
from testbed.system.liveness import switch_ranges
from testbed.system.tracking import OVS_EXTERNAL_ID

OFFLOADS_OFF = ("tx", "off", "tso", "off", "gso", "off", "gro", "off")
OVS_CHUNK = 200   # bridges per ovs-vsctl transaction
#: OVS drops a controller that has not answered an echo within this time (default 5 s).
#: With thousands of switches the controller's first installs take longer than that, and
#: 3,363 switches were seen connecting and timing out in a loop; the testbed watches the
#: controller process itself, so a long probe loses nothing.
INACTIVITY_PROBE_MS = 60_000


def bridge_commands(plan: NetworkPlan, datapath: str, controller: str | Mapping[int, str], run_id: str,
                    switch_ids: Iterable[int]) -> list[str]:
    """ovs-vsctl arguments (joined by '--') that create the given switches with their ports.
    ``controller``: one target for all, or one per switch node (a control relay's sockets)."""
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
                 "--", f"--id=@c{sw.node_id}", "create", "Controller",
                 f'target="{controller if isinstance(controller, str) else controller[sw.node_id]}"',
                 f"inactivity_probe={INACTIVITY_PROBE_MS}"]
        for ifname, port in sorted(ports[sw.node_id], key=lambda p: p[1]):
            args += ["--", "add-port", br, ifname, "--", "set", "interface", ifname, f"ofport_request={port}"]
            if ifname in link_ifs:
                args += ["--", "set", "port", ifname, "qos=@noop"]
    return args


class Network:
    """A built network. ``with Network(...) as net:`` builds on entry, tears down on exit."""

    def __init__(self, plan: NetworkPlan, backend: LinkBackend, datapath: str,
                 controller: str, run_id: str, log_dir: Path | None = None,
                 switch_sockets: Callable[[int], Path] | None = None, rule_counters: bool = True):
        """``controller``: the OpenFlow target every switch connects to (``unix:PATH``);
        ``switch_sockets``: instead, each switch's own socket (node -> path, all in one folder:
        a control relay, :mod:`testbed.control.relay`).
        ``rule_counters``: whether the controller reads rule (flow) counters; if not, private
        daemons bring them up to date less often and idle cheaper (:func:`testbed.net.ovs.other_config`)."""
        self.rule_counters = rule_counters
        self.plan = plan
        self.backend = backend
        self.datapath = datapath
        self.controller = controller
        self.switch_sockets = switch_sockets
        self.run_id = run_id
        self.log_dir = log_dir
        self.timings_s: dict[str, float] = {}
        self.daemons: list[OvsDaemon] = []
        #: switch node id -> index into ``daemons``
        self.daemon_of: dict[int, int] = {}
        self._built_bridges: list[str] = []
        self._netns: list[str] = []
        self._ip: BatchTool | None = None     # live link-state changes (started by build)
        self._netns_claim: netns_records.Claim | None = None

    def ovs_for(self, node_id: int) -> OvsDaemon:
        """The Open vSwitch daemon holding the switch of ``node_id``."""
        return self.daemons[self.daemon_of[node_id]]

    # ------------------------------------------------------------ build
    def build(self) -> "Network":
        """Links, hosts, link states, OVS daemons, switches, in that order (``timings_s`` per
        stage); a progress bar on a terminal, since large networks take minutes."""
        stages = (("links", lambda: self.backend.create(self.plan.links)), ("hosts", self._build_hosts),
                  ("link_state", self._set_initial_link_state), ("ovs_daemons", self._start_daemons),
                  ("switches", self._build_switches))
        with tqdm(total=len(stages), desc=f"network ({len(self.plan.switches)} switches)", unit="stage",
                  leave=False, disable=not os.isatty(2)) as bar:
            for name, stage in stages:
                bar.set_postfix_str(name)
                t = time.perf_counter()
                stage()
                self.timings_s[name] = time.perf_counter() - t
                bar.update(1)
        # Started now, not at the first change: its start must not delay a scheduled step.
        self._ip = BatchTool("ip")
        return self

    def _set_initial_link_state(self) -> None:
        """Before the switches exist: no daemon has to react to 2 x links state changes."""
        up, down = [], []
        for lk in self.plan.links:
            (up if lk.up else down).extend((lk.if_a, lk.if_b))
        run_batch("ip", [f"link set dev {i} up" for i in up] + [f"link set dev {i} down" for i in down])

    def _build_switches(self) -> None:
        bridge = {sw.node_id: sw.bridge for sw in self.plan.switches}
        per_daemon: list[list[int]] = [[] for _ in self.daemons]
        for sw in self.plan.switches:
            per_daemon[self.daemon_of[sw.node_id]].append(sw.node_id)
        for i in range(0, max(map(len, per_daemon)), OVS_CHUNK):
            chunks = [ids[i:i + OVS_CHUNK] for ids in per_daemon]
            self._built_bridges += [bridge[n] for c in chunks for n in c]
            run_parallel(self.daemons, [bridge_commands(self.plan, d.datapath_type(self.datapath),
                                                        self._controller_targets(d, c),
                                                        self.run_id, c)[1:] if c else []
                                        for d, c in zip(self.daemons, chunks)])

    def _controller_targets(self, d: OvsDaemon, node_ids: list[int]) -> str | dict[int, str]:
        if self.switch_sockets is None or not node_ids:
            return d.controller_target(self.controller)
        link = d.controller_folder_link(self.switch_sockets(node_ids[0]).parent)
        return {n: f"unix:{link / self.switch_sockets(n).name}" for n in node_ids}

    def _start_daemons(self) -> None:
        """Private sharded daemons for the userspace datapath, the machine's for the kernel one."""
        ids = [sw.node_id for sw in self.plan.switches]
        if self.datapath == "netdev":
            self.daemons = start_private(shard_count(len(ids)), self.log_dir, self.rule_counters)
        else:
            self.daemons = [SystemOvs()]
        k = len(self.daemons)
        # Contiguous blocks of node ids: neighbours in a plane mostly share a daemon.
        self.daemon_of = {n: i * k // len(ids) for i, n in enumerate(ids)}
        for i, d in enumerate(self.daemons):
            if hasattr(d, "describe"):
                d.describe(switch_ranges(self.switches_of(i)))

    def switches_of(self, daemon_index: int) -> list[str]:
        """Bridge names of the switches held by ``daemons[daemon_index]``, in node order."""
        return [sw.bridge for sw in self.plan.switches if self.daemon_of.get(sw.node_id) == daemon_index]

    def daemon_name(self, node_id: int) -> str:
        """"OVS shard k" (a private daemon) or "the machine's Open vSwitch", for messages."""
        d = self.ovs_for(node_id)
        return f"OVS shard {d.index}" if hasattr(d, "index") else "the machine's Open vSwitch"

    def _build_hosts(self) -> None:
        # Recorded before they exist (and checked to be free), so a crash in between still
        # leaves a record 'testbed clean' can act on, and a namespace it did not make survives.
        self._netns_claim = netns_records.claim([h.netns for h in self.plan.hosts])
        root = []
        for h in self.plan.hosts:
            self._netns.append(h.netns)
            tmp = f"lmi{h.node_id}"
            root += [f"netns add {h.netns}",
                     f"link add {h.sw_ifname} type veth peer name {tmp}",
                     *mark_lines([h.sw_ifname]),
                     f"link set dev {tmp} netns {h.netns}",
                     f"link set dev {h.sw_ifname} up"]
        try:
            run_batch("ip", root)
        finally:
            self._netns_claim.confirm()
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
        if lines:
            # One long-lived ip process: no process start per step (~26 ms each in the UML guest).
            assert self._ip is not None, "set_links_up before build"
            self._ip.run(lines)

    # ------------------------------------------------------------ tear-down
    def teardown(self) -> None:
        t = time.perf_counter()
        self.timings_s["teardown_stages"] = stages = {}
        if self._ip is not None:
            self._ip.close()
            self._ip = None
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
        if self._netns_claim is not None and not self._netns_claim.owned():
            self._netns_claim.forget()
            self._netns_claim = None
        self.timings_s["teardown"] = time.perf_counter() - t

    def __enter__(self) -> "Network":
        try:
            return self.build()
        except BaseException:
            self.teardown()
            raise

    def __exit__(self, *exc) -> None:
        self.teardown()
