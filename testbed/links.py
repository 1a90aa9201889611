"""Link-shaping backends: rate and propagation delay per laser/ground link.

Both backends create, for each link of the plan, the two switch-side interfaces
``if_a`` (on switch a) and ``if_b`` (on switch b), shape each direction at the link's
``rate_bps`` and delay it by its current one-way delay, and change delays in place:

- ``netem``: a veth pair per link with a netem qdisc (delay + rate) on each end.
  Needs sch_netem (most distribution kernels). Delay changes are ``tc qdisc change``
  in one ``tc -batch`` per step (never delete and re-add).
- ``delayline``: a tap pair per link owned by one ``lmtb-delayline`` process (C), which
  holds each frame for the link's delay and keeps order per direction; rate by a tbf
  qdisc on each tap (the sending switch's port queue). Delay changes are lines on the
  delay line's stdin, acknowledged once applied. Used where the kernel has no netem.

Pick one with :data:`BACKENDS` (a registry) via :func:`testbed.probe.choose_backend`.
"""

from __future__ import annotations

import subprocess
import time
from abc import ABC, abstractmethod
from typing import Sequence

from .errors import EnvironmentProblem, RunFailed
from .plan import LinkSpec
from .tracking import IFALIAS, LINK_GROUP, Spawned

MTU_FRAME_BYTES = 1514
QUEUE_S = 0.05        # a port queue holds at most this much time at the link rate


def tbf_params(rate_bps: float) -> tuple[int, int]:
    """(burst_bytes, limit_bytes) for a tbf at ``rate_bps``.

    Burst: 1 ms at the rate but at least two full frames (smaller bursts starve at high
    rates, larger ones make the shaped rate bursty). Limit: ``QUEUE_S`` of queue at the
    rate, at least 16 frames, so TCP can fill the pipe without unbounded bufferbloat.
    """
    burst = max(2 * MTU_FRAME_BYTES, int(rate_bps / 8 * 0.001))
    limit = max(16 * MTU_FRAME_BYTES, int(rate_bps / 8 * QUEUE_S)) + burst
    return burst, limit


def disable_ipv6(ifnames: Sequence[str]) -> None:
    """Turns IPv6 off on interfaces we created (root namespace).

    Switch ports need no addresses; with IPv6 on, every admin up/down of a port runs
    address configuration, and with thousands of ports that made one link state change
    cost ~17 ms instead of ~0.15 ms (measured, benchmarks/bench_apply.py).
    """
    for name in ifnames:
        try:
            with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
                f.write("1")
        except FileNotFoundError:   # kernel without IPv6
            return


def mark_lines(ifnames: Sequence[str]) -> list[str]:
    """``ip -batch`` lines giving interfaces our marks: alias ``lmtb`` and group LINK_GROUP."""
    return [f"link set dev {name} alias {IFALIAS} group {LINK_GROUP}" for name in ifnames]


def group_members(ip_output: str) -> tuple[list[str], list[str]]:
    """(ours, foreign) interface names in ``ip -o link show group G`` output, by alias."""
    ours, foreign = [], []
    for line in ip_output.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name = parts[1].rstrip(":").split("@")[0]
        (ours if line.rstrip().endswith(f"alias {IFALIAS}") else foreign).append(name)
    return ours, foreign


def delete_marked_links() -> list[str]:
    """Deletes every root-namespace interface we marked, in one batched unregistration.

    One ``ip link del`` per interface costs one RCU grace period each (~20 ms here: 8 s
    for the 400 taps of a 100-satellite run); ``ip link delete group`` unregisters them
    all at once (0.1 s). If something not ours sits in our group, ours go by name instead.
    Returns the names deleted.
    """
    out = subprocess.run(["ip", "-o", "link", "show", "group", str(LINK_GROUP)],
                         capture_output=True, text=True).stdout
    ours, foreign = group_members(out)
    if not ours:
        return []
    if foreign:
        subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"link del {n}\n" for n in ours),
                       capture_output=True, text=True)
    else:
        subprocess.run(["ip", "link", "delete", "group", str(LINK_GROUP)], capture_output=True)
    return ours


def run_batch(tool: str, lines: Sequence[str], netns: str | None = None) -> None:
    """Runs ``ip -batch -`` or ``tc -batch -`` once for many commands; raises on failure."""
    if not lines:
        return
    argv = [tool] + (["-n", netns] if netns else []) + ["-batch", "-"]
    r = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True)
    if r.returncode != 0:
        raise EnvironmentProblem(f"{' '.join(argv)} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")


class LinkBackend(ABC):
    name: str
    emulates_delay = True

    @abstractmethod
    def create(self, links: Sequence[LinkSpec]) -> None:
        """Creates and shapes ``if_a``/``if_b`` for every link (in the root namespace)."""

    @abstractmethod
    def set_delays(self, changes: Sequence[tuple[int, float, float]]) -> float:
        """Applies (link_id, delay_ab_s, delay_ba_s) changes; returns seconds taken."""

    def check_alive(self) -> None:
        """Raises :class:`RunFailed` if a process the backend depends on has died."""

    @abstractmethod
    def close(self) -> None:
        """Removes what ``create`` made. Safe to call twice."""


class DelayLineBackend(LinkBackend):
    name = "delayline"

    def __init__(self, binary: str):
        self.binary = binary
        self.proc: Spawned | None = None
        self._seq = 0
        self._links: dict[int, LinkSpec] = {}

    def _send(self, text: str) -> None:
        assert self.proc is not None
        try:
            self.proc.popen.stdin.write(text)
            self.proc.popen.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise RunFailed("the delay line process died (broken control pipe)") from None

    def _expect(self, prefix: str, timeout_s: float = 30.0) -> str:
        assert self.proc is not None
        line = self.proc.popen.stdout.readline()
        if not line.startswith(prefix):
            self.proc.popen.poll()
            raise RunFailed(f"delay line answered {line.strip()!r} instead of {prefix!r} "
                            f"(exit status {self.proc.popen.returncode})")
        return line

    def create(self, links: Sequence[LinkSpec]) -> None:
        self.proc = Spawned([self.binary], role="delayline", stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1 << 16)
        cmds = []
        for i, lk in enumerate(links):
            self._links[lk.link_id] = lk
            cmds.append(f"tap {lk.if_a}\ntap {lk.if_b}\n")
            cmds.append(f"pair {2 * i} {2 * i + 1} {round(lk.delay_s * 1e9)} {round(lk.delay_s * 1e9)}\n")
        self._pair_of = {lk.link_id: i for i, lk in enumerate(links)}
        self._send("".join(cmds) + "go\n")
        self._expect("ready")
        disable_ipv6([i for lk in links for i in (lk.if_a, lk.if_b)])
        ip_lines, tc_lines = mark_lines([i for lk in links for i in (lk.if_a, lk.if_b)]), []
        for lk in links:
            for ifname in (lk.if_a, lk.if_b):
                burst, limit = tbf_params(lk.rate_bps)
                tc_lines.append(f"qdisc replace dev {ifname} root tbf rate {int(lk.rate_bps)}bit "
                                f"burst {burst} limit {limit}")
        run_batch("ip", ip_lines)
        run_batch("tc", tc_lines)

    def set_delays(self, changes: Sequence[tuple[int, float, float]]) -> float:
        t0 = time.perf_counter()
        self._seq += 1
        body = "".join(f"set {self._pair_of[lid]} {round(dab * 1e9)} {round(dba * 1e9)}\n"
                       for lid, dab, dba in changes)
        self._send(body + f"sync {self._seq}\n")
        self._expect(f"ok {self._seq}")
        return time.perf_counter() - t0

    def stats(self) -> dict[str, int]:
        self._send("stats\n")
        parts = self._expect("stats").split()
        keys = ("frames_in", "frames_out", "bytes_out", "drops", "queued", "max_queued")
        return dict(zip(keys, map(int, parts[1:])))

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RunFailed(f"the delay line process exited (status {self.proc.popen.returncode})")

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.popen.stdin.close()   # end of stdin: the delay line exits, taps vanish
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.proc.stop()
        self.proc = None


class NetemBackend(LinkBackend):
    """netem on both ends of a veth pair. Not testable on kernels without sch_netem."""

    name = "netem"

    def __init__(self) -> None:
        self._links: dict[int, LinkSpec] = {}
        self._created: list[str] = []

    @staticmethod
    def _netem(ifname: str, delay_s: float, rate_bps: float, verb: str) -> str:
        _, limit = tbf_params(rate_bps)
        packets = max(1000, limit // MTU_FRAME_BYTES)
        return (f"qdisc {verb} dev {ifname} root netem delay {delay_s * 1e6:.0f}us "
                f"rate {int(rate_bps)}bit limit {packets}")

    def create(self, links: Sequence[LinkSpec]) -> None:
        ip_lines, tc_lines = [], []
        for lk in links:
            self._links[lk.link_id] = lk
            ip_lines += [f"link add {lk.if_a} type veth peer name {lk.if_b}", *mark_lines([lk.if_a, lk.if_b])]
            self._created.append(lk.if_a)
            tc_lines += [self._netem(lk.if_a, lk.delay_s, lk.rate_bps, "add"),
                         self._netem(lk.if_b, lk.delay_s, lk.rate_bps, "add")]
        run_batch("ip", ip_lines)
        disable_ipv6([i for lk in links for i in (lk.if_a, lk.if_b)])
        run_batch("tc", tc_lines)

    def set_delays(self, changes: Sequence[tuple[int, float, float]]) -> float:
        t0 = time.perf_counter()
        lines = []
        for lid, dab, dba in changes:
            lk = self._links[lid]
            lines += [self._netem(lk.if_a, dab, lk.rate_bps, "change"),
                      self._netem(lk.if_b, dba, lk.rate_bps, "change")]
        run_batch("tc", lines)
        return time.perf_counter() - t0

    def close(self) -> None:
        if self._created:
            subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"link del {i}\n" for i in self._created),
                           capture_output=True, text=True)
            self._created = []


#: backend name -> factory taking the probe's Capabilities
BACKENDS = {
    "delayline": lambda caps: DelayLineBackend(caps.delayline_binary),
    "netem": lambda caps: NetemBackend(),
}
