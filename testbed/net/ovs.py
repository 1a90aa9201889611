"""The Open vSwitch daemons a run's switches live in.

Two kinds behind one small interface (``vsctl``/``vsctl_argv``, ``env``, ``datapath_type``,
``vswitchd_pids``, ``delete_bridges``, ``start``/``stop``):

- :class:`PrivateOvs` — with the userspace (``netdev``) datapath, the run starts its own
  ``ovsdb-server`` + ``ovs-vswitchd`` pairs, each with its own database, sockets and
  log under ``STATE_DIR/ovs/<k>/``, and puts a share of the switches in each (a *shard*).
  The machine's own Open vSwitch is not touched. Why:

  * forwarding: one ovs-vswitchd thread polls every port it has on each wake-up, so a
    hop costs more the more ports share a daemon; shards split that cost and use both
    cores;
  * tear-down: every port of the userspace datapath is an AF_PACKET socket whose close
    waits for an RCU grace period (~13 ms here), so removing 528 bridges from one daemon
    took 104 s. Killing all shards at once lets their closes share grace periods, and
    the devices go first in one batched deletion (:func:`delete_marked_links`).

- :class:`SystemOvs` — the kernel (``system``) datapath where the openvswitch module
  exists: kernel datapaths are one per network namespace, so a second daemon beside the
  machine's would collide with it; the run's bridges go into the machine's daemon,
  marked with ``external_ids:lmtb-run`` and deleted by name at the end.

``ovs-vsctl``, ``ovs-ofctl`` and ``ovs-appctl`` reach a private shard through its
environment (``OVS_RUNDIR``), e.g. ``OVS_RUNDIR=/run/lmtb/ovs/0 ovs-ofctl dump-flows lms3``.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Sequence

from testbed.errors import EnvironmentProblem
from testbed.system.tracking import STATE_DIR, Spawned

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
#: OVS's userspace datapath (dpif-netdev) registered under the name ``dummy`` by
#: ``ovs-vswitchd --enable-dummy``: the same forwarding code as ``netdev``, but a bridge's own
#: (local) port is not a kernel tap. With ``netdev`` every daemon makes a tap named
#: ``ovs-netdev``, so two daemons on one machine collide, and each bridge adds a tap.
DATAPATH_TYPE = "dummy"
#: Measured (benchmarks/bench_bringup.py, tests/test_emulation_clock.py): on a 6x6 shell the
#: zero-delay RTT over 7 links was 8.4 ms with 38 switches in one daemon, 3.5 ms in three and
#: 2.1 ms in five; 528 switches in 32 daemons took longer to build (18 s) than in 16 (7 s).
SWITCHES_PER_SHARD = 16
MAX_SHARDS = 16


_QUIET = ("--no-chdir", "-vconsole:off", "-vsyslog:off")
#: ``Open_vSwitch other_config`` of a private shard, set before its ovs-vswitchd starts
#: (benchmarks/bench_idle.py measures each; BENCHMARKS.md has the figures):
#:
#: * ``stats-update-interval``: interface statistics go to the database once an hour, not
#:   every 5 s (OVS's minimum and default). Nothing reads them there (the controller reads
#:   port counters over OpenFlow); writing them made each daemon read every port's counters
#:   through netlink and send its database a transaction every 5 s.
#: * ``max-revalidator``: the revalidator threads' period (OVS default 500 ms). Each pass
#:   wakes the main thread, which then walks every bridge of the daemon; at 3,360 switches a
#:   5 s period cut the idle daemons' CPU by about 40 %. A rule change still revalidates at
#:   once (OVS revalidates on every flow-table change), but rule (flow) counters are brought
#:   up to date only at each pass, so the 5 s period is used only when the algorithm does not
#:   read them (see :func:`other_config`). Port counters are not affected.
IDLE_OTHER_CONFIG = {"stats-update-interval": "3600000", "max-revalidator": "5000"}
COUNTING_OTHER_CONFIG = {**IDLE_OTHER_CONFIG, "max-revalidator": "500"}


def other_config(rule_counters: bool) -> dict[str, str]:
    """A private shard's ``other_config``: rule counters fresh within 0.5 s if they are read."""
    return dict(COUNTING_OTHER_CONFIG if rule_counters else IDLE_OTHER_CONFIG)
#: The machine's daemon's run directory, as the daemon itself names it: it accepts a ``unix:``
#: controller only under this path *as written* ("/var/run/..." is refused by a daemon started
#: with OVS_RUNDIR=/run/openvswitch, as in the UML guest, though both are the same folder).
SYSTEM_RUNDIR = Path(os.environ.get("OVS_RUNDIR", "/var/run/openvswitch"))
#: Symlinks to a run's controller socket in a daemon's run directory start with this.
CONTROLLER_LINK_PREFIX = "lmtb-controller-"


def ovs_root() -> Path:
    return STATE_DIR / "ovs"


def shard_count(n_switches: int) -> int:
    """Private daemons for ``n_switches``: one per SWITCHES_PER_SHARD, at most MAX_SHARDS."""
    return max(1, min(MAX_SHARDS, math.ceil(n_switches / SWITCHES_PER_SHARD)))


def _check(r: subprocess.CompletedProcess, what: str) -> str:
    if r.returncode != 0:
        raise EnvironmentProblem(f"{what} failed: {(r.stderr or '').strip() or f'exit status {r.returncode}'}")
    return r.stdout


class OvsDaemon:
    """Where ovs-vsctl and friends find one Open vSwitch (the base: the machine's own)."""

    name = "system"
    env: dict[str, str] | None = None    # None: the caller's environment

    def datapath_type(self, datapath: str) -> str:
        """The ``datapath_type`` bridges get in this daemon for the probed ``datapath``."""
        return datapath

    def vsctl_argv(self, args: Sequence[str], timeout_s: int = 120) -> list[str]:
        return ["ovs-vsctl", f"--timeout={timeout_s}", *args]

    def vsctl(self, args: Sequence[str], timeout_s: int = 120) -> str:
        r = subprocess.run(self.vsctl_argv(args, timeout_s), capture_output=True, text=True, env=self.env)
        return _check(r, "ovs-vsctl")

    def delete_bridges(self, names: Sequence[str], chunk: int = 200) -> None:
        """``del-br`` in transactions of ``chunk`` bridges; missing ones are fine."""
        for i in range(0, len(names), chunk):
            args: list[str] = []
            for br in names[i:i + chunk]:
                args += ["--", "--if-exists", "del-br", br]
            subprocess.run(self.vsctl_argv(args[1:]), capture_output=True, env=self.env)

    def vswitchd_pids(self) -> list[int]:
        try:
            return [int(Path("/var/run/openvswitch/ovs-vswitchd.pid").read_text())]
        except (OSError, ValueError):
            return []

    rundir = SYSTEM_RUNDIR

    def controller_target(self, target: str) -> str:
        """The target this daemon's bridges are given for the controller at ``target``.

        ovs-vswitchd connects to ``unix:`` controllers only inside its own run directory
        ("possibility for remote exploit" otherwise), and the controller's socket lives in a
        root-only folder elsewhere: a symlink in the run directory points at it (named
        ``lmtb-controller-*.sock``, removed by :meth:`stop` and by ``testbed clean``)."""
        if not target.startswith("unix:"):
            return target
        link = Path(self.rundir) / f"{CONTROLLER_LINK_PREFIX}{os.getpid()}.sock"
        link.unlink(missing_ok=True)
        link.symlink_to(target[len("unix:"):])
        self._links = getattr(self, "_links", []) + [link]
        return f"unix:{link}"

    def controller_folder_link(self, folder: Path) -> Path:
        """A link in this daemon's run directory to ``folder`` (a relay's per-switch sockets,
        :mod:`testbed.control.relay`): ``unix:<link>/<socket>`` passes the run-directory rule.
        Named like the socket links (``lmtb-controller-<pid>-relay.sock``), so :meth:`stop` and
        ``testbed clean`` remove it too."""
        link = Path(self.rundir) / f"{CONTROLLER_LINK_PREFIX}{os.getpid()}-relay.sock"
        if not (link.is_symlink() and Path(os.readlink(link)) == Path(folder)):
            link.unlink(missing_ok=True)
            link.symlink_to(folder, target_is_directory=True)
            self._links = getattr(self, "_links", []) + [link]
        return link

    def remove_controller_links(self) -> None:
        for link in getattr(self, "_links", []):
            link.unlink(missing_ok=True)
        self._links = []


class SystemOvs(OvsDaemon):
    """The machine's Open vSwitch (kernel datapath). Nothing to start or stop."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.remove_controller_links()


class PrivateOvs(OvsDaemon):
    """An ovsdb-server + ovs-vswitchd pair owned by this run, in ``STATE_DIR/ovs/<index>``."""

    def __init__(self, index: int, log_dir: Path | None = None, rule_counters: bool = True):
        self.index = index
        self.other_config = other_config(rule_counters)
        self.name = f"shard{index}"
        self.rundir = ovs_root() / str(index)
        self.log_dir = log_dir
        self.env = dict(os.environ, OVS_RUNDIR=str(self.rundir), OVS_DBDIR=str(self.rundir),
                        OVS_LOGDIR=str(self.rundir))
        self.db = self.rundir / "conf.db"
        self.sock = self.rundir / "db.sock"
        self._procs: list[Spawned] = []

    def _log(self, daemon: str) -> str:
        d = self.log_dir if self.log_dir is not None else self.rundir
        return str(d / f"{daemon}-{self.index}.log")

    def start(self) -> None:
        self.start_db()
        self.start_switch()

    def start_db(self) -> None:
        """Creates the database and starts ovsdb-server (returns without waiting for it)."""
        shutil.rmtree(self.rundir, ignore_errors=True)
        self.rundir.mkdir(parents=True)
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        _check(subprocess.run(["ovsdb-tool", "create", str(self.db), str(SCHEMA)], capture_output=True,
                              text=True), "ovsdb-tool create")
        self._procs.append(Spawned(
            ["ovsdb-server", str(self.db), f"--remote=punix:{self.sock}",
             f"--pidfile={self.rundir / 'ovsdb-server.pid'}", f"--log-file={self._log('ovsdb-server')}", *_QUIET],
            role="ovsdb-server", env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))

    def start_switch(self) -> None:
        """Waits for the database, initialises it and starts ovs-vswitchd."""
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            if self._procs[0].poll() is not None or time.monotonic() > deadline:
                raise EnvironmentProblem(f"ovsdb-server for OVS shard {self.index} did not start "
                                         f"(see {self._log('ovsdb-server')})")
            time.sleep(0.01)
        self.vsctl(["--no-wait", "init", "--", "set", "Open_vSwitch", ".",
                    *(f"other_config:{k}={v}" for k, v in self.other_config.items())], timeout_s=10)
        self._procs.append(Spawned(
            ["ovs-vswitchd", "--enable-dummy", f"unix:{self.sock}", f"--pidfile={self.rundir / 'ovs-vswitchd.pid'}",
             f"--log-file={self._log('ovs-vswitchd')}", *_QUIET],
            role="ovs-vswitchd", env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))

    def datapath_type(self, datapath: str) -> str:
        return DATAPATH_TYPE

    def vswitchd_pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.role == "ovs-vswitchd" and p.poll() is None]

    def describe(self, switches: str) -> None:
        """Names the shard's processes by what they carry (``switches``: "lms16-lms31"), for faults."""
        for p in self._procs:
            p.label = (f"OVS shard {self.index} (switches {switches})" if p.role == "ovs-vswitchd"
                       else f"OVS database of shard {self.index} (switches {switches})")

    def kill(self) -> None:
        """SIGKILL, no graceful exit: a graceful one closes its ports one grace period at a time."""
        for p in self._procs:
            p.stopping = True
            if p.poll() is None:
                p.popen.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        self.kill()
        for p in self._procs:
            p.stop()
        self._procs = []
        shutil.rmtree(self.rundir, ignore_errors=True)


def start_private(n_shards: int, log_dir: Path | None = None, rule_counters: bool = True) -> list[PrivateOvs]:
    """Starts ``n_shards`` private daemons; on failure stops the ones already started.
    ``rule_counters``: whether anything reads rule (flow) counters (see :func:`other_config`)."""
    shards: list[PrivateOvs] = []
    try:
        for k in range(n_shards):          # all databases first: they start while we go on
            shards.append(PrivateOvs(k, log_dir, rule_counters))
            shards[-1].start_db()
        for shard in shards:
            shard.start_switch()
    except BaseException:
        stop_all(shards)
        raise
    return shards


def stop_all(daemons: Sequence[OvsDaemon]) -> None:
    """Stops every daemon; private ones are all killed first so their exits overlap."""
    for d in daemons:
        if isinstance(d, PrivateOvs):
            d.kill()
    for d in daemons:
        d.stop()


def run_parallel(daemons: Sequence[OvsDaemon], args_per_daemon: Sequence[Sequence[str]],
                 timeout_s: int = 300) -> None:
    """One ovs-vsctl transaction per daemon, all at once; raises if any failed."""
    procs = [subprocess.Popen(d.vsctl_argv(args, timeout_s), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=d.env)
             for d, args in zip(daemons, args_per_daemon) if args]
    errors = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            errors.append(err.strip() or f"exit status {p.returncode}")
    if errors:
        raise EnvironmentProblem(f"ovs-vsctl failed: {errors[0]}")
