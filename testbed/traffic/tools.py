"""Real tools run inside host namespaces: ping (for the shell and the slice) and iperf3.

Measurements of RTT in experiments use :mod:`testbed.traffic.probes`; ping prints three
significant digits (whole milliseconds above 100 ms) and stays for interactive use.
Every function takes :class:`~testbed.net.plan.HostSpec` ends and runs tracked processes.
"""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import time
from dataclasses import dataclass

from testbed.errors import RunFailed
from testbed.net.plan import HostSpec
from testbed.system.tracking import Spawned, run_tracked


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



#: ping exits 1 when replies were missing (loss is a measurement, not a fault), 2 on errors.
PING_OK_EXIT = frozenset({0, 1})


def ping(s: HostSpec, d: HostSpec, count: int = 10, interval_s: float = 0.2, timeout_s: float = 2.0) -> PingResult:
    r = run_tracked(["ping", "-n", "-c", str(count), "-i", f"{interval_s:g}", "-W", f"{timeout_s:g}", d.ip],
                    "ping", netns=s.netns, timeout_s=count * interval_s + timeout_s + 10,
                    label=f"ping {s.name}->{d.name}", ok_exit=PING_OK_EXIT)
    return parse_ping(r.stdout)


def start_ping(s: HostSpec, d: HostSpec, count: int, interval_s: float = 0.01,
               deadline_s: float | None = None) -> Spawned:
    """A ping running in the background (collect with :func:`finish_ping`).

    ``deadline_s`` bounds it in time too (ping -w): ping sends more slowly than
    ``interval_s`` asks when replies take about as long as the interval."""
    bound = ["-w", str(max(1, math.ceil(deadline_s)))] if deadline_s else []
    return Spawned(["ping", "-n", "-D", "-c", str(count), "-i", f"{interval_s:g}", "-W", "1", *bound, d.ip],
                   role="ping", netns=s.netns, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                   label=f"probe ping {s.name}->{d.name}", ok_exit=PING_OK_EXIT)


def finish_ping(proc: Spawned, timeout_s: float = 120.0) -> PingResult:
    out, _ = proc.popen.communicate(timeout=timeout_s)
    proc.stop()
    return parse_ping(out)


def wait_listening(netns: str, ip: str, port: int, timeout_s: float = 5.0) -> None:
    """Until a TCP socket listens on ``ip:port`` inside ``netns`` (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = subprocess.run(["ip", "netns", "exec", netns, "ss", "-ltnH", f"src {ip}:{port}"],
                           capture_output=True, text=True)
        if r.stdout.strip():
            return
        time.sleep(0.05)


def iperf3(s: HostSpec, d: HostSpec, duration_s: float = 5.0, omit_s: float = 1.0, port: int = 5201,
           rate_bps: float | None = None) -> dict:
    """A real iperf3 TCP test from ``s`` to ``d`` (at most ``rate_bps`` if given); iperf3's JSON."""
    server = Spawned(["iperf3", "-s", "-1", "-B", d.ip, "-p", str(port)], role="iperf3-server",
                     netns=d.netns, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     label=f"iperf3 server on {d.name} (flow {s.name}->{d.name}, port {port})")
    try:
        wait_listening(d.netns, d.ip, port)
        argv = ["iperf3", "-c", d.ip, "-p", str(port), "-t", f"{duration_s:g}", "-O", f"{omit_s:g}", "-J"]
        if rate_bps is not None:
            argv += ["-b", f"{int(rate_bps)}"]
        client = f"iperf3 client on {s.name} (flow {s.name}->{d.name}, port {port})"
        r = run_tracked(argv, "iperf3-client", netns=s.netns, timeout_s=duration_s + omit_s + 30, label=client)
        try:
            out = json.loads(r.stdout)
        except ValueError:
            how = f"signal {-r.returncode}" if r.returncode < 0 else f"status {r.returncode}"
            said = (r.stderr.strip() or r.stdout.strip()[-200:] or "nothing").splitlines()[-1]
            raise RunFailed(f"{client} exited ({how}) without a result (it said: {said})") from None
        if "error" in out:
            dead = server.fault()
            raise RunFailed(dead if dead else f"iperf3 {s.name}->{d.name}: {out['error']}")
        return out
    finally:
        if server.fault() is None:      # a dead server stays listed: the liveness check names it
            server.stop()


@dataclass(frozen=True)
class FlowResult:
    """What one iperf3 flow did, whether or not the network let it finish.

    ``completed``: iperf3 ran its whole duration and exchanged its results with the server;
    ``report``: iperf3's JSON (partial when the client had to be interrupted, None when it
    printed nothing); ``error``: iperf3's or the testbed's reason when not completed.
    """

    src: str
    dst: str
    completed: bool
    report: dict | None
    error: str | None


def iperf3_flow(s: HostSpec, d: HostSpec, duration_s: float, port: int, rate_bps: float | None = None,
                interval_s: float = 0.5, grace_s: float = 10.0) -> FlowResult:
    """An iperf3 TCP flow that outlives path outages: never raises for what the network did.

    A flow whose path is cut can stall past its duration (TCP backs off; the final results
    exchange waits): after ``duration_s + grace_s`` the client is interrupted (SIGINT, on
    which iperf3 prints the JSON of what it did so far) and the flow is recorded as not
    completed. Intervals of ``interval_s`` (iperf3's minimum is 0.1 s) set the resolution
    of the stall measurement."""
    # An outage makes iperf3 exit with status 1 (no connection, peer gone): a measurement, not a
    # fault; a signal still is one (the run's liveness check names it).
    flow = f"flow {s.name}->{d.name}, port {port}"
    server = Spawned(["iperf3", "-s", "-1", "-B", d.ip, "-p", str(port)], role="iperf3-server",
                     netns=d.netns, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     label=f"iperf3 server on {d.name} ({flow})", ok_exit=frozenset({0, 1}))
    try:
        wait_listening(d.netns, d.ip, port)
        argv = ["iperf3", "-c", d.ip, "-p", str(port), "-t", f"{duration_s:g}", "-i", f"{interval_s:g}",
                "--connect-timeout", "3000", "-J"]
        if rate_bps is not None:
            argv += ["-b", f"{int(rate_bps)}"]
        client = Spawned(argv, role="iperf3-client", netns=s.netns, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, label=f"iperf3 client on {s.name} ({flow})",
                         ok_exit=frozenset({0, 1}))
        interrupted = False
        try:
            out, err = client.popen.communicate(timeout=duration_s + grace_s)
        except subprocess.TimeoutExpired:
            interrupted = True
            client.stopping = True          # the interrupt is ours, not a fault
            client.popen.send_signal(signal.SIGINT)
            try:
                out, err = client.popen.communicate(timeout=5.0)
            except subprocess.TimeoutExpired:
                client.stop()
                out, err = "", ""
        finally:
            if client.fault() is None:    # killed by a signal: stays listed, the liveness check names it
                client.stop()
        try:
            report = json.loads(out) if out.strip() else None
        except ValueError:
            report = None
        error = (report or {}).get("error") or (None if report else (err.strip() or "iperf3 printed no result"))
        if interrupted:
            error = f"did not finish within {duration_s + grace_s:g} s (interrupted): {error or 'stalled'}"
        return FlowResult(s.name, d.name, report is not None and error is None, report, error)
    finally:
        if server.fault() is None:      # a dead server stays listed: the liveness check names it
            server.stop()
