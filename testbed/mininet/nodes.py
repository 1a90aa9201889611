"""Mininet node classes for a network the testbed has already built.

Mininet's ``Node`` starts a shell per node when it is constructed (``mnexec -cdn bash``,
which also makes a new network namespace). Here the namespaces, bridges and links exist
already, so:

- :class:`TestbedHost` is a ``mininet.node.Host`` whose shell runs inside the testbed's
  namespace of that host (``mnexec -cd ip netns exec lmtb-h<n> bash``), and whose
  ``popen``/``pexec`` enter it with ``ip netns exec`` (no shell needed);
- :class:`TestbedSwitch` is a ``mininet.node.Switch`` for one OVS bridge of the run; its
  ``dpctl`` runs ``ovs-ofctl -O OpenFlow13`` against the private Open vSwitch daemon that
  holds the bridge (``OVS_RUNDIR=/run/lmtb/ovs/<k>``); its shell, if ever used
  (``lms3 ovs-vsctl show``), runs in the root namespace with that daemon's environment.

Both start their shell on first use, never at construction: building the Mininet view
of a 1,584-satellite run starts no process at all. Every shell is recorded as a testbed
process (``testbed clean`` ends it after a crash) and ended by :meth:`terminate`.
"""

from __future__ import annotations

import os
import signal
import subprocess

from mininet.node import Host, Node, Switch

from testbed.system.tracking import forget_process, record_process

#: Mininet opens its node shells with these ``mnexec`` options: (c)lose descriptors,
#: (d)etach from the terminal, new (n)etwork namespace.
_MNEXEC_SHELL = ["mnexec", "-cdn"]


def _kill_group(pgid: int) -> None:
    """SIGKILL to a shell's process group (``mnexec -d`` made the shell its leader): what a
    user left running in it (``h1 iperf -s &``) ends with it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _ShellOnFirstUse:
    """Mixin: the Mininet shell of a node starts the first time something needs it."""

    _shell_allowed = False
    #: Mininet checks its tools per class with `which` (a process each); the view checks
    #: them once itself (testbed.mininet.net.require_tools) and starts nothing at construction.
    isSetup = True

    def __init__(self, *args, **kwargs):
        self._popened: list[subprocess.Popen] = []
        super().__init__(*args, **kwargs)

    def startShell(self, mnopts=None):  # noqa: N802 - Mininet's name
        if not self._shell_allowed:     # Node.__init__ asks for it: not yet
            return
        super().startShell(mnopts)
        record_process(self.shell.pid, f"mininet-shell:{self.name}", list(self.shell.args))

    def _ensure_shell(self) -> None:
        if self.shell is None:
            self._shell_allowed = True
            self.startShell()

    def cmd(self, *args, **kwargs):
        self._ensure_shell()
        return super().cmd(*args, **kwargs)

    def sendCmd(self, *args, **kwargs):  # noqa: N802
        self._ensure_shell()
        return super().sendCmd(*args, **kwargs)

    def write(self, data):
        self._ensure_shell()
        return super().write(data)

    def read(self, size=1024):
        self._ensure_shell()
        return super().read(size)

    def readline(self):
        self._ensure_shell()
        return super().readline()

    def waitReadable(self, timeoutms=None):  # noqa: N802
        self._ensure_shell()
        return super().waitReadable(timeoutms)

    def popen(self, *args, **kwargs):
        proc = super().popen(*args, **kwargs)
        self._popened = [p for p in self._popened if p.poll() is None] + [proc]
        return proc

    def terminate(self):
        """Ends the shell, whatever runs in its process group, and processes from ``popen``."""
        pid = self.shell.pid if self.shell is not None else None
        super().terminate()
        if pid is not None:
            _kill_group(pid)
            forget_process(pid)
        for proc in self._popened:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self._popened = []

    @property
    def shell_started(self) -> bool:
        return self.shell is not None


class TestbedHost(_ShellOnFirstUse, Host):
    """A compute satellite's or ground station's host: Mininet's Host in the testbed's namespace.

    ``spec`` is the plan's :class:`~testbed.net.plan.HostSpec` (``netns``, ``ip``, ``mac``,
    ``kind``, ``node_id``).
    """

    def __init__(self, name, spec=None, **params):
        self.spec = spec
        self.netns = spec.netns
        super().__init__(name, inNamespace=True, **params)

    def _popen(self, cmd, **params):
        if list(cmd[:2]) == _MNEXEC_SHELL:   # the node's shell: into our namespace, not a new one
            cmd = ["mnexec", "-cd", "ip", "netns", "exec", self.netns, *cmd[2:]]
        return super()._popen(cmd, **params)

    def popen(self, *args, **kwargs):
        kwargs.setdefault("mncmd", ["ip", "netns", "exec", self.netns])
        return super().popen(*args, **kwargs)

    def config(self, **_params):
        """Nothing to configure: the testbed set address, MAC and ARP entries at bring-up."""
        return {}


class TestbedSwitch(_ShellOnFirstUse, Switch):
    """One OVS bridge of the run (``lms<node id>``). No process of its own.

    ``spec`` is the plan's :class:`~testbed.net.plan.SwitchSpec`; ``ovs`` a callable giving
    the :class:`~testbed.net.ovs.OvsDaemon` that holds the bridge (looked up when used, so
    the view can be built before or after the daemons); ``connected_ids`` a callable giving
    the node ids the controller has an OpenFlow session with.
    """

    def __init__(self, name, spec=None, ovs=None, connected_ids=None, **params):
        self.spec = spec
        self._ovs = ovs
        self._connected_ids = connected_ids
        # Switch.__init__ would add a loopback Intf and configure it (a shell per switch):
        # only Node's part is wanted, then Switch's attributes.
        params.pop("listenPort", None)
        self._popened = []
        Node.__init__(self, name, inNamespace=False, **params)
        self.dpid = f"{spec.dpid:016x}"
        self.opts = ""
        self.listenPort = None
        self.controlIntf = None

    @property
    def env(self) -> dict | None:
        """Environment reaching the Open vSwitch daemon of this bridge (None: the machine's)."""
        return self._ovs().env if self._ovs else None

    def _popen(self, cmd, **params):
        params.setdefault("env", self.env)
        return super()._popen(cmd, **params)

    def popen(self, *args, **kwargs):
        kwargs.setdefault("mncmd", [])
        kwargs.setdefault("env", self.env)
        return super().popen(*args, **kwargs)

    def dpctl(self, *args):
        """``ovs-ofctl -O OpenFlow13 CMD lms<n> ARGS`` on the daemon holding this bridge."""
        if not args:
            raise ValueError("dpctl needs an ovs-ofctl command, e.g. dump-flows")
        r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", args[0], self.name, *args[1:]],
                           capture_output=True, text=True, env=self.env)
        return r.stdout + r.stderr

    def connected(self):
        """True while the controller has an OpenFlow session with this switch."""
        if self._connected_ids is None:
            return True
        return self.spec.node_id in self._connected_ids()

    def start(self, controllers):
        """The testbed started the bridge and its controller connection at bring-up."""

    def stop(self, deleteIntfs=False):  # noqa: N803
        """The testbed tears the bridge down (with the whole network): nothing to do here."""
