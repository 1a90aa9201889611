"""A Mininet-style interactive shell into a running emulation (``testbed run --cli``).

Mininet's own ``CLI`` needs Mininet node objects; the testbed builds its network without
them (see testbed/network.py), so this is a small shell with the same habits:

    nodes                 hosts and switches
    links                 every link with its current state and one-way delay
    <host> <command>      run a command inside that host's namespace (e.g. ``c0 ping -c 3 c9``;
                          host names in the command are replaced by their addresses)
    pingall               one ping between every ordered pair of hosts
    dpctl <switch>        the OpenFlow rules of a switch (ovs-ofctl dump-flows)
    sh <command>          a command in the root namespace
    exit / Ctrl-D         leave the shell; the run goes on to its end

The clock keeps replaying the schedule in the background while the shell is open.
"""

from __future__ import annotations

import cmd
import shlex
import subprocess

from .emulation import Emulation


class EmulationShell(cmd.Cmd):
    intro = "testbed shell: 'help' lists commands; the schedule keeps replaying; 'exit' to leave"
    prompt = "testbed> "

    def __init__(self, emu: Emulation, link_state=None):
        super().__init__()
        self.emu = emu
        self.hosts = {h.name: h for h in emu.plan.hosts}
        self.link_state = link_state or (lambda: {})

    def _expand(self, words: list[str]) -> list[str]:
        return [self.hosts[w].ip if w in self.hosts else w for w in words]

    def default(self, line: str) -> None:
        words = shlex.split(line)
        if not words:
            return
        host = self.hosts.get(words[0])
        if host is None:
            print(f"*** unknown command or host: {words[0]} (try 'nodes' or 'help')")
            return
        if len(words) == 1:
            print(f"{host.name}: {host.ip} ({host.kind}) on switch lms{host.switch}, netns {host.netns}")
            return
        subprocess.run(["ip", "netns", "exec", host.netns, *self._expand(words[1:])])

    def do_nodes(self, _line: str) -> None:
        """hosts and switches"""
        print("hosts:", " ".join(f"{n}({h.ip})" for n, h in self.hosts.items()))
        print("switches:", " ".join(s.bridge for s in self.emu.plan.switches))

    def do_links(self, _line: str) -> None:
        """every link: ends, kind, state, one-way delay"""
        state = self.link_state()
        for lk in self.emu.plan.links:
            up, delay_s = state.get(lk.link_id, (lk.up, lk.delay_s))
            print(f"lms{lk.a}:{lk.port_a} <-> lms{lk.b}:{lk.port_b}  {lk.kind}  {'up' if up else 'DOWN'}  "
                  f"{delay_s * 1e3:.3f} ms  {lk.rate_bps / 1e6:g} Mbit/s")

    def do_pingall(self, _line: str) -> None:
        """one ping between every ordered pair of hosts"""
        lost = total = 0
        for a in self.hosts:
            row = []
            for b in self.hosts:
                if a == b:
                    continue
                r = self.emu.ping(a, b, count=1, timeout_s=2.0)
                total += 1
                lost += r.sent - r.received
                row.append(b if r.received else "X")
            print(f"{a} -> {' '.join(row)}")
        print(f"*** {lost}/{total} lost")

    def do_dpctl(self, line: str) -> None:
        """dpctl SWITCH: OpenFlow rules of a switch (e.g. dpctl lms3)"""
        name = line.strip() or "lms0"
        node = {sw.bridge: sw.node_id for sw in self.emu.plan.switches}.get(name)
        if node is None:
            print(f"no switch {name!r} (switches are lms<node id>, e.g. lms0)")
            return
        daemon = self.emu.network.ovs_for(node)   # the run's own OVS daemon holding it
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", name], env=daemon.env)

    def do_sh(self, line: str) -> None:
        """sh COMMAND: run a command in the root namespace"""
        subprocess.run(line, shell=True)

    def do_exit(self, _line: str) -> bool:
        """leave the shell (the run continues)"""
        return True

    do_quit = do_exit

    def do_EOF(self, _line: str) -> bool:
        print()
        return True

    def emptyline(self) -> None:
        pass
