"""Link-shaping backends: rate and propagation delay per laser/ground link.

Both backends create, for each link of the plan, the two switch-side interfaces
``if_a`` (on switch a) and ``if_b`` (on switch b), shape each direction at the link's
``rate_bps`` and delay it by its current one-way delay, and change delays in place:

- ``netem``: a veth pair per link with a netem qdisc (delay + rate) on each end.
  Needs sch_netem (most distribution kernels). Delay changes are ``tc qdisc change``
  lines written to one long-lived ``tc -batch`` process (never delete and re-add; no
  process start per step: a ``tc`` start reads every interface, ~47 ms at 6,336 here).
- ``delayline``: a tap pair per link owned by one ``lmtb-delayline`` process (C), which
  holds each frame for the link's delay and keeps order per direction; rate by a tbf
  qdisc on each tap (the sending switch's port queue). Delay changes are lines on the
  delay line's stdin, acknowledged once applied. Used where the kernel has no netem.

Pick one with :data:`BACKENDS` (a registry) via :func:`testbed.system.machine.choose_backend`.
"""

from __future__ import annotations

import re
import subprocess
import time
from abc import ABC, abstractmethod
from typing import Sequence

from testbed.errors import EnvironmentProblem, RunFailed
from testbed.net.plan import LinkSpec
from testbed.system.liveness import process_fault
from testbed.system.tracking import IFALIAS, LINK_GROUP, Spawned

MTU_FRAME_BYTES = 1514
QUEUE_S = 0.05        # a port queue holds at most this much time at the link rate


def tbf_params(rate_bps: float, dilation: float = 1.0) -> tuple[int, int]:
    """(burst_bytes, limit_bytes) for a tbf at ``rate_bps`` (the shaped, wall-clock rate).

    Burst: 1 ms at the rate but at least two full frames (smaller bursts starve at high
    rates, larger ones make the shaped rate bursty). Limit: ``QUEUE_S`` of queue at the
    rate, at least 16 frames, so TCP can fill the pipe without unbounded bufferbloat.
    Both are times of the emulated world: under time dilation D (rate = emulated rate / D)
    they last D times longer on the wall clock, so a queue holds the same bytes at any D
    (with wall-clock times it held 1/D of them, and TCP lost packets at D = 4 that it did
    not lose at D = 1).
    """
    burst = max(2 * MTU_FRAME_BYTES, int(rate_bps / 8 * 0.001 * dilation))
    limit = max(16 * MTU_FRAME_BYTES, int(rate_bps / 8 * QUEUE_S * dilation)) + burst
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


_TC_UNIT_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_netem_delays(tc_output: str) -> dict[str, float]:
    """``tc qdisc show`` text -> {interface: netem delay in seconds} (netem qdiscs only)."""
    out = {}
    for line in tc_output.splitlines():
        m = re.match(r"qdisc netem \S+ dev (\S+) .*?\bdelay ([0-9.]+)(s|ms|us|ns)\b", line)
        if m:
            out[m.group(1)] = float(m.group(2)) * _TC_UNIT_S[m.group(3)]
    return out


class LinkBackend(ABC):
    """Creates, shapes and delays the plan's links. The public methods record what the
    testbed asked for (the intent); :meth:`fidelity` compares it with what the data path
    reports it holds, so no fidelity claim is ever taken on trust."""

    name: str

    def __init__(self) -> None:
        self.intended_delay_s: dict[int, tuple[float, float]] = {}   # link_id -> (a->b, b->a)
        #: the emulation's time dilation: the links it is given run at the emulated rate / D,
        #: and their queues are sized in emulated time (:func:`tbf_params`)
        self.time_dilation = 1.0

    def create(self, links: Sequence[LinkSpec]) -> None:
        """Creates and shapes ``if_a``/``if_b`` for every link (in the root namespace)."""
        self.intended_delay_s.update({lk.link_id: (lk.delay_s, lk.delay_s) for lk in links})
        self._create(links)

    def set_delays(self, changes: Sequence[tuple[int, float, float]]) -> float:
        """Applies (link_id, delay_ab_s, delay_ba_s) changes; returns seconds taken."""
        self.intended_delay_s.update({lid: (dab, dba) for lid, dab, dba in changes})
        return self._set_delays(changes)

    @abstractmethod
    def _create(self, links: Sequence[LinkSpec]) -> None: ...

    @abstractmethod
    def _set_delays(self, changes: Sequence[tuple[int, float, float]]) -> float: ...

    @abstractmethod
    def read_delays(self) -> dict[int, tuple[float, float]]:
        """The one-way delays the data path holds now, link_id -> (a->b, b->a) s, read back from
        it (links it has no delay for are missing)."""

    def fidelity(self) -> dict:
        """``delay_emulated``: every link's delays, read back from the data path, match the
        intent within ``max(1 us, 0.5 %)`` (tc prints about 3 significant digits); the
        evidence (counts of links missing or mismatched) goes with it. Call while the links exist."""
        held = self.read_delays()
        missing = [lid for lid in self.intended_delay_s if lid not in held]
        wrong = [lid for lid, want in self.intended_delay_s.items() if lid in held
                 and any(abs(h - w) > max(1e-6, 0.005 * w) for h, w in zip(held[lid], want))]
        return {"delay_evidence": f"{self.name}: delays read back from the data path vs the schedule's",
                "links": len(self.intended_delay_s), "links_without_delay": len(missing),
                "links_delay_mismatch": len(wrong),
                "delay_emulated": bool(self.intended_delay_s) and not missing and not wrong}

    def check_alive(self) -> None:
        """Raises :class:`RunFailed` if a process the backend depends on has died."""

    @abstractmethod
    def close(self) -> None:
        """Removes what ``create`` made. Safe to call twice."""


class DelayLineBackend(LinkBackend):
    name = "delayline"

    def __init__(self, binary: str):
        super().__init__()
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
            self._raise_if_dead()
            raise RunFailed(f"{self.proc.label}: its control pipe broke") from None

    def _expect(self, prefix: str, timeout_s: float = 30.0) -> str:
        assert self.proc is not None
        line = self.proc.popen.stdout.readline()
        if not line.startswith(prefix):
            if not line:           # end of file: it exited (or is exiting)
                self._raise_if_dead(wait_s=1.0)
            raise RunFailed(f"{self.proc.label} answered {line.strip()!r} instead of {prefix!r}")
        return line

    def _raise_if_dead(self, wait_s: float = 0.0) -> None:
        try:
            self.proc.popen.wait(wait_s)
        except subprocess.TimeoutExpired:
            return
        fault = process_fault([self.proc])
        if fault is not None:
            raise fault

    def _create(self, links: Sequence[LinkSpec]) -> None:
        self.proc = Spawned([self.binary], role="delayline", stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1 << 16,
                            label=f"the delay line (delays and rates of all {len(links)} links)")
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
                burst, limit = tbf_params(lk.rate_bps, self.time_dilation)
                tc_lines.append(f"qdisc replace dev {ifname} root tbf rate {int(lk.rate_bps)}bit "
                                f"burst {burst} limit {limit}")
        run_batch("ip", ip_lines)
        run_batch("tc", tc_lines)

    def _set_delays(self, changes: Sequence[tuple[int, float, float]]) -> float:
        t0 = time.perf_counter()
        self._seq += 1
        body = "".join(f"set {self._pair_of[lid]} {round(dab * 1e9)} {round(dba * 1e9)}\n"
                       for lid, dab, dba in changes)
        self._send(body + f"sync {self._seq}\n")
        self._expect(f"ok {self._seq}")
        return time.perf_counter() - t0

    def stats(self) -> dict[str, int]:
        """The delay line's counters; ``held_ns``/``configured_ns`` are sums over released frames
        of the time each frame was held and of the one-way delay configured when it arrived."""
        self._send("stats\n")
        parts = self._expect("stats").split()
        keys = ("frames_in", "frames_out", "bytes_out", "drops", "queued", "max_queued", "held_ns", "configured_ns")
        return dict(zip(keys, map(int, parts[1:])))

    def read_delays(self) -> dict[int, tuple[float, float]]:
        self._send("delays\n")
        ns = list(map(int, self._expect("delays").split()[1:]))
        return {lid: (ns[2 * i] / 1e9, ns[2 * i + 1] / 1e9) for lid, i in self._pair_of.items()}

    def fidelity(self) -> dict:
        """As :meth:`LinkBackend.fidelity`, and the frames that crossed were held at least 90 %
        of the delay in force when each arrived (the delay line's own count; order is kept per
        direction, so a frame may wait longer, never less)."""
        out = super().fidelity()
        st = self.stats()
        out["frames_delayed"] = st["frames_out"]
        if st["frames_out"]:
            out.update(held_mean_ms=st["held_ns"] / st["frames_out"] / 1e6,
                       configured_mean_ms=st["configured_ns"] / st["frames_out"] / 1e6)
            out["delay_emulated"] = out["delay_emulated"] and st["held_ns"] >= 0.9 * st["configured_ns"]
        return out

    def check_alive(self) -> None:
        if self.proc is not None:
            fault = process_fault([self.proc])
            if fault is not None:
                raise fault

    def close(self) -> None:
        if self.proc is None:
            return
        self.proc.stopping = True
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


class BatchTool:
    """One long-lived ``tc -force -batch -`` (or ``ip``) process: commands in, completion
    acknowledged, so a step costs no process start (a ``tc`` start reads every interface).

    ``run(lines)`` writes the lines and then a ``show`` of a device that cannot exist; the
    tool answers that one with an error naming ``"<marker>"``, so every line read before it
    is an error of one of ``lines`` (a successful change prints nothing).
    """

    #: tool -> the marker command (``{m}``: the marker device name)
    MARKERS = {"tc": "qdisc show dev {m}", "ip": "link show dev {m}"}

    def __init__(self, tool: str = "tc") -> None:
        self.tool = tool
        self.proc = Spawned(["stdbuf", "-oL", tool, "-force", "-batch", "-"], role=f"{tool}-batch",
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
        self._seq = 0

    def run(self, lines: Sequence[str]) -> None:
        self._seq += 1
        marker = f"lmsync{self._seq % 10 ** 8}"
        try:
            self.proc.popen.stdin.write("".join(f"{ln}\n" for ln in lines)
                                        + self.MARKERS[self.tool].format(m=marker) + "\n")
            self.proc.popen.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise RunFailed(f"the {self.tool} batch process died (broken pipe)") from None
        errors = []
        while True:
            line = self.proc.popen.stdout.readline()
            if not line:
                raise RunFailed(f"the {self.tool} batch process exited (status {self.proc.poll()})"
                                + (f": {errors[0]}" if errors else ""))
            if f'"{marker}"' in line:
                self.proc.popen.stdout.readline()      # its "Command failed -:N"
                break
            errors.append(line.strip())
        if errors:
            raise EnvironmentProblem(f"{self.tool} -batch failed: {errors[0]}")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RunFailed(f"the {self.tool} batch process exited (status {self.proc.popen.returncode})")

    def close(self) -> None:
        try:
            self.proc.popen.stdin.close()
            self.proc.popen.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.proc.stop()


class NetemBackend(LinkBackend):
    """netem on both ends of a veth pair (runs where the kernel has sch_netem; the UML
    test lane, scripts/uml.sh, gives it one on machines whose kernel has none)."""

    name = "netem"

    def __init__(self) -> None:
        super().__init__()
        self._links: dict[int, LinkSpec] = {}
        self._created: list[str] = []
        self._tc: BatchTool | None = None

    def _netem(self, ifname: str, delay_s: float, rate_bps: float, verb: str) -> str:
        _, limit = tbf_params(rate_bps, self.time_dilation)
        packets = max(1000, limit // MTU_FRAME_BYTES)
        return (f"qdisc {verb} dev {ifname} root netem delay {delay_s * 1e6:.0f}us "
                f"rate {int(rate_bps)}bit limit {packets}")

    def _create(self, links: Sequence[LinkSpec]) -> None:
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
        self._tc = BatchTool("tc")

    def _set_delays(self, changes: Sequence[tuple[int, float, float]]) -> float:
        t0 = time.perf_counter()
        lines = []
        for lid, dab, dba in changes:
            lk = self._links[lid]
            lines += [self._netem(lk.if_a, dab, lk.rate_bps, "change"),
                      self._netem(lk.if_b, dba, lk.rate_bps, "change")]
        if lines:
            assert self._tc is not None, "set_delays before create"
            self._tc.run(lines)
        return time.perf_counter() - t0

    def read_delays(self) -> dict[int, tuple[float, float]]:
        """netem's delay on ``if_a`` delays frames a->b (egress), on ``if_b`` frames b->a."""
        shown = parse_netem_delays(subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout)
        return {lid: (shown[lk.if_a], shown[lk.if_b]) for lid, lk in self._links.items()
                if lk.if_a in shown and lk.if_b in shown}

    def check_alive(self) -> None:
        if self._tc is not None:
            self._tc.check_alive()

    def close(self) -> None:
        if self._tc is not None:
            self._tc.close()
            self._tc = None
        if self._created:
            subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"link del {i}\n" for i in self._created),
                           capture_output=True, text=True)
            self._created = []


#: backend name -> factory taking the probe's Capabilities
BACKENDS = {
    "delayline": lambda caps: DelayLineBackend(caps.delayline_binary),
    "netem": lambda caps: NetemBackend(),
}
