"""One emulated network with its controller: build, run traffic, tear down.

``with Emulation(plan, "min_delay", log_dir=...) as emu:`` probes the machine, picks the
link backend and OVS datapath, starts the controller, builds the network, sends the
controller the topology and the initial link state, and waits until every switch is
connected and has its rules. On exit (normal, exception, Ctrl-C or SIGTERM) everything
is torn down. Helpers run real tools inside the host namespaces.

With ``time_dilation=D`` the data path is built ``D`` times slower (testbed/net/dilation.py):
link delays x D and rates / D, the clock's steps D times further apart in wall time, the
controller's port-counter polls D times rarer and its capacities those of the data path
(so utilisation fractions stay right), its delays the emulated ones (routing weights).
The helpers (``ping``, ``iperf3``) report what they measured on the wall clock.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from controllers import steplog
from controllers.algorithms import resolve_algorithm
from testbed.system import machine
from testbed.net.clock import Clock, LinkTimeline
from testbed.control.process import Controller
from testbed.errors import RunFailed
from testbed.control.messages import state_message_from_plan, topology_message
from testbed.links.backends import BACKENDS, run_batch
from testbed.net import dilation
from testbed.net.network import Network
from testbed.net.plan import HOST_NET, HostSpec, NetworkPlan
from testbed.system.clean import CleanReport, remove_dead_leftovers
from testbed.system.liveness import process_fault, session_fault
from testbed.system.tracking import LIVE, RunLock, Spawned, interrupts_held, spawn_mark, stop_spawned_after
from testbed.traffic import tools
from testbed.traffic.tools import PingResult

if TYPE_CHECKING:     # imported where used: scipy and asyncio cost every testbed process
    from testbed.control.placement import ControlDelays
    from testbed.control.relay import ControlRelay


#: After a lost OpenFlow session, how long to wait for a dying daemon to become reapable.
SESSION_CAUSE_WAIT_S = 5.0


class Emulation:
    """One network with its controller. With a ``timeline``, :attr:`clock` replays it and its
    step 0 (with the future an algorithm reads) is the controller's first state; without, the
    plan's own delays and states are (a static network for tests and the slice)."""

    def __init__(self, plan: NetworkPlan, algorithm: str = "min_hop", params: dict | None = None, *,
                 log_dir: Path, backend: str = "auto", run_id: str = "run",
                 caps: machine.Capabilities | None = None, lock: bool = True, poll_interval_s: float = 0.5,
                 timeline: LinkTimeline | None = None, speedup: float = 1.0, future_steps: int = 0,
                 delay_threshold_s: float = 10e-6, controller_outages=(), updates: str = "direct",
                 time_dilation: float = 1.0, control_node=None):
        """``speedup``: orbital seconds per emulated second; ``time_dilation``: wall seconds per
        emulated second (>= 1). ``plan`` and ``timeline`` are in emulated units.
        ``control_node``: the switch node the controller sits at (``[controller] location``;
        a tuple of nodes: it reaches each switch through the nearest of them); None: local, no
        control delay. Otherwise OpenFlow passes a :class:`ControlRelay` that holds it for the
        step's one-way delay from that node to each switch (x D on the wall clock)."""
        self.time_dilation = D = dilation.check(time_dilation)
        self.caps = machine.require_runnable(caps)
        self._lock = RunLock() if lock else None   # one network on this machine at a time
        self.backend_name = machine.choose_backend(self.caps, backend)
        self.datapath = machine.choose_datapath(self.caps)
        self.plan = plan
        # The controller reads rule counters only for algorithms that route on utilisation.
        self._reads_rule_counters = resolve_algorithm(algorithm).uses_utilisation
        self.data_plan = dilation.data_path_plan(plan, D)                 # what the links are built with
        self._feed_plan = dilation.data_path_plan(plan, D, delays=False)  # the controller's capacities
        self.controller = Controller(algorithm, params or {}, log_dir / "controller.log",
                                     stats_log=log_dir / steplog.FILE_NAME,
                                     poll_interval_s=dilation.wall_s(poll_interval_s, D),
                                     n_switches=len(plan.switches), updates=updates)
        self.backend = BACKENDS[self.backend_name](self.caps)
        self.backend.time_dilation = D          # queues sized in emulated time
        self.log_dir = log_dir
        self.run_id = run_id
        self.network: Network | None = None      # made once the controller's socket exists
        self._watch_sessions = False             # from the first installed state on
        #: orbital seconds per wall second (the clock's and the results' time base)
        self.wall_speedup = dilation.wall_speedup(speedup, D)
        self.clock: Clock | None = None if timeline is None else Clock(
            self._feed_plan, timeline, self._set_delays, self._set_links_up,
            controller_request=self.controller.request, speedup=self.wall_speedup,
            delay_threshold_s=delay_threshold_s,
            future_steps=future_steps, check_alive=self.check_alive, controller_outages=tuple(controller_outages),
            pause_controller=self._pause_controller)
        self.control_delays: ControlDelays | None = None
        self.relay: ControlRelay | None = None
        #: switches that were out of the controller's reach at some step: OVS may have given up
        #: on their session (its inactivity probe) and be reconnecting; not a fault
        self._out_of_reach: set[int] = set()
        if control_node is not None:
            from testbed.control.placement import ControlDelays   # only with a distant controller
            tl = timeline or LinkTimeline(np.zeros(1), np.array([[lk.delay_s for lk in plan.links]]),
                                          np.array([[lk.up for lk in plan.links]], dtype=bool))
            self.control_delays = ControlDelays.from_links(
                control_node, [sw.node_id for sw in plan.switches], [lk.a for lk in plan.links],
                [lk.b for lk in plan.links], tl.delay_s, tl.up)
            if self.clock is not None:
                self.clock.control_step = self._control_step
        self.initial_reply: dict = {}
        self._traffic_mark: int | None = None   # processes started after this are traffic

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Emulation":
        if self._lock is not None:
            self._lock.acquire()
        try:
            left = remove_dead_leftovers()
            if left.total():
                print(f"testbed: removed what a dead run had left: {_count(left)}", file=sys.stderr, flush=True)
            self.controller.start()
            sockets = None
            if self.control_delays is not None:
                from testbed.control.relay import ControlRelay
                self.relay = ControlRelay(self.controller.of_socket, self.controller.channel_dir / "relay",
                                          self.control_delays.switch_ids)
                self.relay.set_delays(self._wall_control_delays(0))
                self.relay.start()
                sockets = self.relay.socket_path
            self.network = Network(self.data_plan, self.backend, self.datapath, self.controller.openflow_target,
                                   self.run_id, log_dir=self.log_dir, switch_sockets=sockets,
                                   rule_counters=self._reads_rule_counters)
            self.network.build()
            if self.time_dilation != 1.0:
                self._dilate_tcp_rto_min()
            self._traffic_mark = spawn_mark()
            self.controller.request(topology_message(self.plan))
            self.wait_connected()
            # The first state computes and installs every switch's rules (3,363 switches x 22
            # rules took longer than the feed's usual 30 s on 2 cores): its timeout grows with size.
            first = self.clock.initial_state() if self.clock else state_message_from_plan(self._feed_plan, 0, 0.0)
            self.initial_reply = self.controller.request(first, timeout_s=self._default_timeout_s())
            self.wait_installed()
            self._watch_sessions = True
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stops traffic, tears the network down, stops the controller; Ctrl-C waits for it."""
        with interrupts_held():
            try:
                if self._traffic_mark is not None:
                    # Pings, agents, iperf3 still running (an error or Ctrl-C mid-run): stop them first.
                    stop_spawned_after(self._traffic_mark)
                    self._traffic_mark = None
                self._watch_sessions = False
                if self.network is not None:
                    self.network.teardown()
                else:
                    self.backend.close()
            finally:
                if self.relay is not None:
                    self.relay.stop()
                    self.relay = None
                self.controller.stop()
                if self._lock is not None:
                    self._lock.release()

    def _dilate_tcp_rto_min(self) -> None:
        """TCP's minimum RTO x D on every host's one route (a locked ``rto_min`` metric):
        the one kernel TCP timer that can be dilated per namespace (testbed/net/dilation.py)."""
        rto_ms = dilation.tcp_rto_min_s(self.time_dilation) * 1e3
        for h in self.plan.hosts:
            run_batch("ip", [f"route replace {HOST_NET} dev eth0 proto kernel scope link src {h.ip} "
                             f"rto_min {rto_ms:.0f}ms"], netns=h.netns)      # ip locks it

    def _set_delays(self, changes) -> float:
        """The clock's delay changes (emulated s) onto the data path (wall s)."""
        return self.backend.set_delays(dilation.wall_delays(changes, self.time_dilation))

    def _control_step(self, k: int) -> list[int]:
        """Gives the relay step k's control delays; returns the switches out of reach."""
        delays = self._wall_control_delays(k)
        self.relay.set_delays(delays)
        gone = sorted(n for n, d in delays.items() if d == float("inf"))
        self._out_of_reach |= set(gone)
        return gone

    def _wall_control_delays(self, k: int) -> dict[int, float]:
        """Step k's one-way control delays per switch on the wall clock (emulated s x D)."""
        return {n: d * self.time_dilation for n, d in self.control_delays.at(k).items()}

    def _set_links_up(self, up, down) -> None:
        self.network.set_links_up(up, down)

    def _pause_controller(self, paused: bool) -> None:
        """A scheduled controller outage begins (True) or ends (False): the controller process is
        stopped, so it reads neither the feed nor the switches' OpenFlow messages (a port going
        down included); the switches keep their rules (``fail_mode=secure``) and, for outages
        shorter than the inactivity probe, their sessions. At the end, the switches' queued
        messages reach it, and any switch that dropped its session is waited for."""
        self.controller.set_paused(paused)
        if not paused and self._watch_sessions:
            self.wait_connected()

    def check_alive(self, sessions: bool = True) -> None:
        """Raises :class:`~testbed.system.liveness.ComponentFault` naming the first component that
        died: any process the testbed started and has not stopped (OVS shards, delay line,
        controller, agents, iperf3, probes; one ``waitpid`` each), then, once the rules were
        first installed and if ``sessions``, any switch the controller no longer has an OpenFlow
        session with (one ``status`` request on the feed)."""
        fault = process_fault(list(LIVE.values()))
        if fault is not None:
            raise fault
        self.backend.check_alive()
        if self.relay is not None:
            self.relay.check_alive()
        if sessions and self._watch_sessions and not self.controller.paused:   # paused: it cannot answer
            st = self.controller.request({"type": "status"})
            connected = sorted(set(st["connected"]) | self._out_of_reach)
            if len(connected) == len(self.plan.switches):
                return
            net = self.network
            fault = session_fault(connected, {sw.node_id: sw.bridge for sw in self.plan.switches},
                                  {n: net.daemon_name(n) for n in net.daemon_of})
            if fault is not None:
                # A killed ovs-vswitchd drops its sessions at once but can only be reaped once it
                # has closed its ports (an RCU grace period each, ~13 ms): name it if that is why.
                deadline = time.monotonic() + SESSION_CAUSE_WAIT_S
                while time.monotonic() < deadline:
                    cause = process_fault(list(LIVE.values()))
                    if cause is not None:
                        raise cause
                    time.sleep(0.05)
                raise fault

    def _default_timeout_s(self) -> float:
        """Bring-up waits: 20 s plus 50 ms per switch (188 s for 3,363 switches)."""
        return 20.0 + 0.05 * len(self.plan.switches)

    def _wait_status(self, done, what: str, timeout_s: float | None) -> None:
        """Polls the controller's status until ``done(status)``; the default timeout grows with size."""
        n = len(self.plan.switches)
        timeout_s = timeout_s if timeout_s is not None else self._default_timeout_s()
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive(sessions=False)      # a shard that died during bring-up, named
            st = self.controller.request({"type": "status"})
            if done(st):
                return
            if time.monotonic() > deadline:
                raise RunFailed(f"the controller did not {what} within {timeout_s:.0f} s "
                                f"({len(st['connected'])}/{n} switches connected)")
            time.sleep(0.05)

    def wait_connected(self, timeout_s: float | None = None) -> None:
        """Until every switch has an OpenFlow session with the controller (as the controller sees it:
        OVS writes its own connection status to its database only every few seconds)."""
        n = len(self.plan.switches)
        self._wait_status(lambda st: len(st["connected"]) == n, "see every switch connect", timeout_s)

    def wait_installed(self, timeout_s: float | None = None) -> None:
        """Until the controller reports every switch connected with its rules installed."""
        n = len(self.plan.switches)
        self._wait_status(lambda st: st["installed"] and len(st["connected"]) == n,
                          "install rules on every switch", timeout_s)

    # ------------------------------------------------------------------ live changes
    def fidelity(self) -> dict:
        """What the link backend did to the traffic so far, read back from the data path; hold
        times (``held_mean_ms``, ``configured_mean_ms``) in emulated ms."""
        out = {"backend": self.backend_name, "ovs_datapath": self.datapath, **self.backend.fidelity(),
               "time_dilation": self.time_dilation}
        for key in ("held_mean_ms", "configured_mean_ms"):
            if key in out:
                out[key] = dilation.emulated_s(out[key], self.time_dilation)
        return out

    # ------------------------------------------------------------------ traffic
    def host(self, name: str) -> HostSpec:
        return self.plan.host_by_name(name)

    def ping(self, src: str, dst: str, count: int = 10, interval_s: float = 0.2, timeout_s: float = 2.0) -> PingResult:
        return tools.ping(self.host(src), self.host(dst), count, interval_s, timeout_s)

    def start_ping(self, src: str, dst: str, count: int, interval_s: float = 0.01,
                   deadline_s: float | None = None) -> Spawned:
        return tools.start_ping(self.host(src), self.host(dst), count, interval_s, deadline_s)

    finish_ping = staticmethod(tools.finish_ping)

    def iperf3(self, src: str, dst: str, duration_s: float = 5.0, omit_s: float = 1.0, port: int = 5201,
               rate_bps: float | None = None) -> dict:
        """A real iperf3 TCP test from ``src`` to ``dst`` (see :func:`testbed.traffic.tools.iperf3`)."""
        return tools.iperf3(self.host(src), self.host(dst), duration_s, omit_s, port, rate_bps)


def _count(rep: CleanReport) -> str:
    parts = [(len(rep.processes), "process", "processes"), (len(rep.netns), "namespace", "namespaces"),
             (len(rep.interfaces), "interface", "interfaces"), (len(rep.bridges), "bridge", "bridges")]
    return ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in parts if n)
