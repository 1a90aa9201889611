"""One emulated network with its controller: build, run traffic, tear down.

``with Emulation(plan, "min_delay", log_dir=...) as emu:`` probes the machine, picks the
link backend and OVS datapath, starts the controller, builds the network, sends the
controller the topology and the initial link state, and waits until every switch is
connected and has its rules. On exit (normal, exception, Ctrl-C or SIGTERM) everything
is torn down. Helpers run real tools inside the host namespaces.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import probe
from .clock import Clock, LinkTimeline
from .controller import Controller
from .errors import RunFailed
from .feedmsg import state_message_from_plan, topology_message
from .links import BACKENDS
from .network import Network
from .plan import HostSpec, NetworkPlan
from .tracking import RunLock, Spawned, interrupts_held, run_tracked, spawn_mark, stop_spawned_after


@dataclass(frozen=True)
class PingResult:
    rtts_s: tuple[float, ...]        # replies in order received
    seqs: tuple[int, ...]            # icmp_seq of each reply
    sent: int
    received: int
    recv_unix_s: tuple[float, ...] = ()   # reply receive times (with ping -D), else empty

    def sent_unix_s(self) -> tuple[float, ...]:
        """Send time of each answered request (receive time minus RTT), needs ping -D."""
        return tuple(r - t for r, t in zip(self.recv_unix_s, self.rtts_s))

    @property
    def loss(self) -> float:
        return 1 - self.received / self.sent if self.sent else 0.0


def parse_ping(text: str) -> PingResult:
    """Reads iputils ping output (with -n)."""
    rows = re.findall(r"^(?:\[(\d+\.\d+)\] )?\d+ bytes from .*icmp_seq=(\d+) ttl=\d+ time=([0-9.]+) ms",
                      text, flags=re.M)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
    if not m:
        raise RunFailed(f"could not read ping output: {text.strip()[-200:]!r}")
    stamps = tuple(float(ts) for ts, _, _ in rows) if rows and all(ts for ts, _, _ in rows) else ()
    return PingResult(tuple(float(t) / 1e3 for _, _, t in rows), tuple(int(s) for _, s, _ in rows),
                      int(m.group(1)), int(m.group(2)), stamps)


class Emulation:
    def __init__(self, plan: NetworkPlan, algorithm: str = "min_hop", params: dict | None = None, *,
                 log_dir: Path, backend: str = "auto", run_id: str = "run", of_port: int | None = None,
                 caps: probe.Capabilities | None = None, lock: bool = True, poll_interval_s: float = 0.5):
        self.caps = probe.require_runnable(caps)
        self._lock = RunLock() if lock else None   # one network on this machine at a time
        self.backend_name = probe.choose_backend(self.caps, backend)
        self.datapath = probe.choose_datapath(self.caps)
        self.plan = plan
        self.controller = Controller(algorithm, params or {}, log_dir / "controller.log", of_port=of_port,
                                     stats_log=log_dir / "controller-steps.jsonl", poll_interval_s=poll_interval_s)
        self.backend = BACKENDS[self.backend_name](self.caps)
        self.network = Network(plan, self.backend, self.datapath, self.controller.of_port, run_id,
                               log_dir=log_dir)
        self.initial_reply: dict = {}
        self._traffic_mark: int | None = None   # processes started after this are traffic

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Emulation":
        if self._lock is not None:
            self._lock.acquire()
        try:
            self.controller.start()
            self.network.build()
            self._traffic_mark = spawn_mark()
            self.controller.request(topology_message(self.plan))
            self.wait_connected()
            # The first state computes and installs every switch's rules (3,363 switches x 22
            # rules took longer than the feed's usual 30 s on 2 cores): its timeout grows with size.
            self.initial_reply = self.controller.request(state_message_from_plan(self.plan, 0, 0.0),
                                                         timeout_s=self._default_timeout_s())
            self.wait_installed()
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
                self.network.teardown()
            finally:
                self.controller.stop()
                if self._lock is not None:
                    self._lock.release()

    def check_alive(self) -> None:
        self.controller.check_alive()
        self.backend.check_alive()

    def _default_timeout_s(self) -> float:
        """Bring-up waits: 20 s plus 50 ms per switch (188 s for 3,363 switches)."""
        return 20.0 + 0.05 * len(self.plan.switches)

    def _wait_status(self, done, what: str, timeout_s: float | None) -> None:
        """Polls the controller's status until ``done(status)``; the default timeout grows with size."""
        n = len(self.plan.switches)
        timeout_s = timeout_s if timeout_s is not None else self._default_timeout_s()
        deadline = time.monotonic() + timeout_s
        while True:
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
    def clock(self, timeline: LinkTimeline, speedup: float = 1.0, future_steps: int = 0,
              delay_threshold_s: float = 10e-6) -> Clock:
        return Clock(self.plan, timeline, self.backend.set_delays, self.network.set_links_up,
                     controller_request=self.controller.request, speedup=speedup,
                     delay_threshold_s=delay_threshold_s, future_steps=future_steps,
                     check_alive=self.check_alive)

    # ------------------------------------------------------------------ traffic
    def host(self, name: str) -> HostSpec:
        return self.plan.host_by_name(name)

    def ping(self, src: str, dst: str, count: int = 10, interval_s: float = 0.2, timeout_s: float = 2.0) -> PingResult:
        s, d = self.host(src), self.host(dst)
        r = run_tracked(["ping", "-n", "-c", str(count), "-i", f"{interval_s:g}", "-W", f"{timeout_s:g}", d.ip],
                        "ping", netns=s.netns, timeout_s=count * interval_s + timeout_s + 10)
        return parse_ping(r.stdout)

    def start_ping(self, src: str, dst: str, count: int, interval_s: float = 0.01,
                   deadline_s: float | None = None) -> Spawned:
        """A ping running in the background (collect with :meth:`finish_ping`).

        ``deadline_s`` bounds it in time too (ping -w): ping sends more slowly than
        ``interval_s`` asks when replies take about as long as the interval."""
        s, d = self.host(src), self.host(dst)
        bound = ["-w", str(max(1, math.ceil(deadline_s)))] if deadline_s else []
        return Spawned(["ping", "-n", "-D", "-c", str(count), "-i", f"{interval_s:g}", "-W", "1", *bound, d.ip],
                       role="ping", netns=s.netns, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def finish_ping(proc: Spawned, timeout_s: float = 120.0) -> PingResult:
        out, _ = proc.popen.communicate(timeout=timeout_s)
        proc.stop()
        return parse_ping(out)

    def iperf3(self, src: str, dst: str, duration_s: float = 5.0, omit_s: float = 1.0, port: int = 5201,
               rate_bps: float | None = None) -> dict:
        """A real iperf3 TCP test from ``src`` to ``dst`` (at most ``rate_bps`` if given); iperf3's JSON."""
        s, d = self.host(src), self.host(dst)
        server = Spawned(["iperf3", "-s", "-1", "-B", d.ip, "-p", str(port)], role="iperf3-server",
                         netns=d.netns, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                r = subprocess.run(["ip", "netns", "exec", d.netns, "ss", "-ltnH", f"src {d.ip}:{port}"],
                                   capture_output=True, text=True)
                if r.stdout.strip():
                    break
                time.sleep(0.05)
            argv = ["iperf3", "-c", d.ip, "-p", str(port), "-t", f"{duration_s:g}", "-O", f"{omit_s:g}", "-J"]
            if rate_bps is not None:
                argv += ["-b", f"{int(rate_bps)}"]
            r = run_tracked(argv, "iperf3-client", netns=s.netns, timeout_s=duration_s + omit_s + 30)
            try:
                out = json.loads(r.stdout)
            except ValueError:
                raise RunFailed(f"iperf3 produced no result: {r.stderr.strip() or r.stdout.strip()[-200:]}") from None
            if "error" in out:
                raise RunFailed(f"iperf3 {src}->{dst}: {out['error']}")
            return out
        finally:
            server.stop()
