"""Starts, watches and stops the os-ken controller process for a run.

The controller's two channels are Unix sockets in a directory only root may enter
(``STATE_DIR/ctl/<pid>-<n>/``, mode 0700): ``of.sock`` for OpenFlow (every switch's
controller target is ``unix:.../of.sock``) and ``feed.sock`` for the link-state feed
(see :mod:`controllers.feed`). No TCP port is opened, so no other local user can reach
either: connecting needs search permission on the directory (``EACCES`` otherwise), and
the run's own parties (the testbed, ovs-vswitchd) run as root. The directory is made
fresh per controller and removed when it stops (and by ``testbed clean``).

If the controller dies, :meth:`Controller.check_alive` raises, so a run never goes on
silently black-holing traffic.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import signal
import threading
from pathlib import Path

from controllers.feed import FeedClient, FeedError

from testbed.errors import EnvironmentProblem, RunFailed
from testbed.system import tracking
from testbed.system.liveness import process_fault
from testbed.system.tracking import Spawned

#: Longest path a Unix socket address holds (sun_path, with its terminating NUL).
SUN_PATH_MAX = 107
#: How long a live controller may take to open its feed socket, s. On the host it takes
#: about 1 s (mostly importing os-ken); in the User-Mode Linux lane, with the host's pure
#: tests sharing its 2 cores, one controller had not written a line after 20 s (CI, stop 21).
#: The wait ends at once if the process exits, so a long bound costs nothing on failure.
FEED_CONNECT_TIMEOUT_S = 120.0
_counter = itertools.count()


def channel_root() -> Path:
    return tracking.STATE_DIR / "ctl"


def make_channel_dir() -> Path:
    """A new, empty, root-only (0700) directory for one controller's sockets."""
    root = channel_root()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    d = root / f"{os.getpid()}-{next(_counter)}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)          # whatever the umask
    longest = d / "feed.sock"
    if len(str(longest).encode()) > SUN_PATH_MAX:
        shutil.rmtree(d, ignore_errors=True)
        raise EnvironmentProblem(f"the controller's socket path {longest} is longer than {SUN_PATH_MAX} bytes: "
                                 f"set LMTB_STATE_DIR to a shorter directory")
    return d


class Controller:
    def __init__(self, algorithm: str, params: dict, log_path: Path,
                 stats_log: Path | None = None, poll_interval_s: float = 0.5, n_switches: int | None = None,
                 updates: str = "direct"):
        self.algorithm = algorithm
        self.updates = updates      # "direct" or "consistent" (controllers/consistent.py)
        self.stats_log = stats_log
        self.poll_interval_s = poll_interval_s
        self.params = params
        self.log_path = log_path
        self.n_switches = n_switches
        self.channel_dir: Path | None = None
        self.proc: Spawned | None = None
        self.feed: FeedClient | None = None
        #: stopped (SIGSTOP) for a scheduled controller outage: see :meth:`set_paused`
        self.paused = False
        #: the feed carries one request at a time; the clock's thread and a user's (the
        #: Mininet view asking for the connected switches) take turns
        self._feed_lock = threading.Lock()

    @property
    def of_socket(self) -> Path:
        assert self.channel_dir is not None, "the controller is not started"
        return self.channel_dir / "of.sock"

    @property
    def feed_socket(self) -> Path:
        assert self.channel_dir is not None, "the controller is not started"
        return self.channel_dir / "feed.sock"

    @property
    def openflow_target(self) -> str:
        """What switches are given as their controller (Open vSwitch's ``unix:`` target)."""
        return f"unix:{self.of_socket}"

    def start(self) -> "Controller":
        self.channel_dir = make_channel_dir()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        argv = [sys.executable, "-m", "controllers.app", "--of-socket", str(self.of_socket),
                "--feed-socket", str(self.feed_socket), "--algorithm", self.algorithm,
                "--params", json.dumps(self.params), "--poll-interval-s", str(self.poll_interval_s)]
        if self.stats_log:
            argv += ["--stats-log", str(self.stats_log)]
        if self.updates != "direct":
            argv += ["--updates", self.updates]
        carried = f"{self.n_switches} switches" if self.n_switches is not None else "the switches"
        self.proc = Spawned(argv, role="controller", stdout=self._log, stderr=self._log,
                            label=f"the controller ({self.algorithm}, routing {carried})",
                            hint=lambda: f"last log line: {self.last_log_line()} ({self.log_path})")
        try:
            self.feed = FeedClient(str(self.feed_socket), connect_timeout_s=FEED_CONNECT_TIMEOUT_S,
                                   alive=lambda: self.proc.poll() is None)
        except FeedError as e:
            self.stop()
            raise RunFailed(f"{e}; controller log: {self.log_path}: {self.last_log_line()}") from None
        return self

    def last_log_line(self) -> str:
        try:
            lines = [l for l in self.log_path.read_text(errors="replace").splitlines() if l.strip()]
            return lines[-1] if lines else "(empty)"
        except OSError:
            return "(no log)"

    def check_alive(self) -> None:
        if self.proc is not None:
            fault = process_fault([self.proc])
            if fault is not None:
                raise fault

    def set_paused(self, paused: bool) -> None:
        """Stops (SIGSTOP) or continues (SIGCONT) the controller process: a scheduled controller
        outage, in which it reads nothing, neither feed nor OpenFlow. Its sockets stay open, so
        what the switches send meanwhile waits in them."""
        if self.proc is None or self.proc.poll() is not None or paused == self.paused:
            return
        os.kill(self.proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)
        self.paused = paused

    def request(self, msg: dict, timeout_s: float = 30.0) -> dict:
        if self.paused:
            raise RunFailed(f"the controller cannot answer {msg.get('type', 'a request')!r}: it is stopped "
                            "for a scheduled controller outage")
        self.check_alive()
        with self._feed_lock:
            try:
                return self.feed.request(msg, timeout_s)
            except FeedError as e:
                try:    # the feed closes a moment before the exit is visible
                    self.proc.popen.wait(1.0)
                except Exception:  # noqa: BLE001 - still running: the feed error is the news
                    pass
                self.check_alive()
                raise RunFailed(f"{e} ({self.log_path})") from None

    def stop(self) -> None:
        self.set_paused(False)          # a stopped process would not see its SIGTERM
        if self.feed is not None:
            self.feed.close()
            self.feed = None
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
        if self.channel_dir is not None:
            shutil.rmtree(self.channel_dir, ignore_errors=True)
            self.channel_dir = None
