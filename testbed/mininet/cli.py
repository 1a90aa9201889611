"""Mininet's CLI on a running emulation (``testbed run SPEC --cli``, ``testbed slice --cli``).

:class:`TestbedCLI` is ``mininet.cli.CLI`` on a :class:`~testbed.mininet.net.TestbedMininet`:
every stock command works (``nodes``, ``net``, ``links``, ``dump``, ``pingall``,
``pingpair``, ``iperf`` (iperf2, Debian package ``iperf``), ``<host> <command>``, ``py``,
``dpctl``, ``link a b up|down``, ...). The schedule keeps replaying in the background.
Added here:

    time                  orbital time, the step in force and the replay's speed
    time <command>        Mininet's own: how long the command took
    delay a b             one-way delay now: of the link a-b (switches, or a host and its
                          switch), or along the installed path between two hosts
    path h1 h2            the switch path the controller installed and its geometric RTT
                          (twice the one-way delays in force along it), beside the
                          least-delay path over the links that are up

Node names may contain '-' (the plan's host names do). SIGTERM ends the CLI (and the
run's tear-down follows); Ctrl-C interrupts the running command, as in Mininet.
"""

from __future__ import annotations

import signal
import sys
import threading

import networkx as nx
from mininet.cli import CLI
from mininet.log import error, output

from controllers import steplog
from testbed.mininet.nodes import TestbedHost, TestbedSwitch


class _Terminated(BaseException):
    """SIGTERM inside the CLI (Mininet's loop swallows KeyboardInterrupt)."""


class TestbedCLI(CLI):
    __test__ = False    # not a pytest test class, despite its name
    identchars = CLI.identchars + "-"

    def __init__(self, mininet, stdin=sys.stdin, script=None, **kwargs):
        self._banner(mininet)
        super().__init__(mininet, stdin=stdin, script=script, **kwargs)

    @staticmethod
    def _banner(net) -> None:
        links = len(net.link_by_id)
        replay = net.replay
        when = (f"the schedule keeps replaying ({replay.clock.speedup:g} orbital s per wall s)"
                if replay is not None else "a static network (no schedule)")
        output(f"*** testbed network: {len(net.hosts)} hosts, {len(net.switches)} switches, "
               f"{links} laser/ground links; {when}\n"
               "*** 'help' lists commands; the testbed adds 'time', 'delay a b', 'path h1 h2'\n")

    _terminated = False

    def run(self):
        if threading.current_thread() is not threading.main_thread():
            return super().run()

        def terminated(signum, frame):
            # Raised where the signal lands; should that be inside a log handler (which
            # swallows errors), postcmd raises it again after the command.
            self._terminated = True
            raise _Terminated

        old = signal.signal(signal.SIGTERM, terminated)
        try:
            super().run()
            if self._terminated:
                raise _Terminated
        except _Terminated:
            raise KeyboardInterrupt from None
        finally:
            signal.signal(signal.SIGTERM, old)

    def postcmd(self, stop, line):
        if self._terminated:
            raise _Terminated
        return super().postcmd(stop, line)

    def precmd(self, line):
        replay = self.mn.replay
        if replay is not None and replay.error is not None:
            error(f"*** the replay stopped: {replay.error}\n")
        return super().precmd(line)

    # ------------------------------------------------------------ testbed commands
    def do_time(self, line):
        """Orbital time now (no argument), or how long a command took: time <command>"""
        if line.strip():
            return super().do_time(line)
        replay = self.mn.replay
        if replay is None:
            output("*** static network: no schedule, no orbital time\n")
            return None
        tl = replay.clock.timeline
        k = replay.applied_step()
        state = "replaying" if replay.running else "replay finished"
        output(f"*** orbital t = {replay.orbital_time_s():.1f} s (step {k} of {tl.n_steps - 1} in force, "
               f"t_s {float(tl.times_s[k]):g}); {state} at {replay.clock.speedup:g}x\n")
        return None

    def _nodes(self, line: str, usage: str):
        args = line.split()
        if len(args) != 2:
            error(f"usage: {usage}\n")
            return None
        missing = [a for a in args if a not in self.mn]
        if missing:
            error(f"node '{missing[0]}' not in network\n")
            return None
        return [self.mn[a] for a in args]

    def do_delay(self, line):
        """One-way delay now: delay <node> <node> (a link's, or along the installed host path)"""
        nodes = self._nodes(line, "delay a b (two switches or a host and its switch: the link; two hosts: the path)")
        if nodes is None:
            return
        a, b = nodes
        if isinstance(a, TestbedSwitch) and isinstance(b, TestbedSwitch):
            link = self.mn.link_by_pair.get((a.spec.node_id, b.spec.node_id))
            if link is None:
                error(f"no link between {a} and {b}\n")
                return
            output(f"{link}: {link.delay_s * 1e3:.3f} ms one-way, {'up' if link.up else 'DOWN'}\n")
        elif isinstance(a, TestbedHost) and isinstance(b, TestbedHost):
            path = self.mn.installed_path(a.name, b.name)
            if not path:
                output(f"*** no installed path from {a} to {b}\n")
                return
            d_s = self.mn.path_delay_s(path)
            output(f"{a} -> {b}: " + (f"{d_s * 1e3:.3f} ms one-way" if d_s is not None else "a link is down")
                   + f" along {steplog.path_text(path)}\n")
        else:
            host, sw = (a, b) if isinstance(a, TestbedHost) else (b, a)
            if host.spec.switch != sw.spec.node_id:
                error(f"{host} hangs off {self.mn.switch_of[host.spec.switch]}, not {sw}\n")
                return
            output(f"{host}-{sw}: 0.000 ms one-way (the host veth is not delayed)\n")

    def do_path(self, line):
        """The installed path between two hosts and its geometric RTT: path h1 h2"""
        nodes = self._nodes(line, "path h1 h2")
        if nodes is None:
            return
        a, b = nodes
        if not (isinstance(a, TestbedHost) and isinstance(b, TestbedHost)):
            error("path takes two hosts\n")
            return
        path = self.mn.installed_path(a.name, b.name)
        if not path:
            output(f"*** {a} -> {b}: the controller has no path installed\n")
            return
        hops = " ".join(self.mn.switch_of[n].name for n in path)
        d_s = self.mn.path_delay_s(path)
        rtt = f"{2 * d_s * 1e3:.3f} ms" if d_s is not None else "none (a link on it is down now)"
        best = self._least_delay_s(path[0], path[-1])
        best_txt = f"{2 * best * 1e3:.3f} ms" if best is not None else "unreachable"
        installed = self.mn.installed
        output(f"{a} -> {b}: {hops} ({len(path) - 1} links, installed at step {installed.step}); "
               f"geometric RTT {rtt}; least-delay RTT now {best_txt}\n")

    def _least_delay_s(self, src: int, dst: int) -> float | None:
        g = nx.Graph()
        for link in self.mn.link_by_id.values():
            if link.up:
                a, b = link.intf1.node.spec.node_id, link.intf2.node.spec.node_id
                g.add_edge(a, b, delay_s=link.delay_s)
        try:
            return nx.dijkstra_path_length(g, src, dst, weight="delay_s")
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            return None
