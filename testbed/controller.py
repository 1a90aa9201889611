"""Starts, watches and stops the os-ken controller process for a run.

The controller listens on 127.0.0.1 only: OpenFlow on ``of_port`` (switches connect to
it) and the link-state feed on ``feed_port`` (see :mod:`controllers.feed`). Ports are
chosen free at start unless given; a given port already in use is an environment error.
If the controller dies, :meth:`Controller.check_alive` raises, so a run never goes on
silently black-holing traffic.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from controllers.feed import LISTEN_HOST, FeedClient, FeedError

from .errors import EnvironmentProblem, RunFailed
from .tracking import Spawned


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LISTEN_HOST, 0))
        return s.getsockname()[1]


def check_port_free(port: int, what: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LISTEN_HOST, port))
        except OSError:
            raise EnvironmentProblem(
                f"{what} port {LISTEN_HOST}:{port} is already in use: stop what holds it "
                f"(see 'ss -ltnp sport = :{port}') or pick another port") from None


class Controller:
    def __init__(self, algorithm: str, params: dict, log_path: Path,
                 of_port: int | None = None, feed_port: int | None = None,
                 stats_log: Path | None = None, poll_interval_s: float = 0.5):
        self.algorithm = algorithm
        self.stats_log = stats_log
        self.poll_interval_s = poll_interval_s
        self.params = params
        self.log_path = log_path
        for port, what in ((of_port, "OpenFlow"), (feed_port, "controller feed")):
            if port is not None:
                check_port_free(port, what)
        self.of_port = of_port or free_port()
        self.feed_port = feed_port or free_port()
        self.proc: Spawned | None = None
        self.feed: FeedClient | None = None

    def start(self) -> "Controller":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        argv = [sys.executable, "-m", "controllers.app", "--of-port", str(self.of_port),
                "--feed-port", str(self.feed_port), "--algorithm", self.algorithm,
                "--params", json.dumps(self.params), "--poll-interval-s", str(self.poll_interval_s)]
        if self.stats_log:
            argv += ["--stats-log", str(self.stats_log)]
        self.proc = Spawned(argv, role="controller", stdout=self._log, stderr=self._log)
        try:
            self.feed = FeedClient(self.feed_port, alive=lambda: self.proc.poll() is None)
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
        if self.proc is not None and self.proc.poll() is not None:
            raise RunFailed(f"the controller exited (status {self.proc.popen.returncode}); "
                            f"last log line: {self.last_log_line()} ({self.log_path})")

    def request(self, msg: dict, timeout_s: float = 30.0) -> dict:
        self.check_alive()
        try:
            return self.feed.request(msg, timeout_s)
        except FeedError as e:
            self.check_alive()
            raise RunFailed(f"{e} ({self.log_path})") from None

    def stop(self) -> None:
        if self.feed is not None:
            self.feed.close()
            self.feed = None
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
