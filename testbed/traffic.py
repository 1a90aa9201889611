"""Traffic inside the emulated network: GPU-job replay agents, probes, background flows.

Every process runs inside a host's namespace, is tracked (see :mod:`testbed.tracking`)
and is ended when the run ends. Results are read back as tables:

- :class:`AgentGroup`: one ``python -m testbed.agent`` per rank, on the compute host the
  rank is placed on, listening on that host's address; collected with
  :func:`testbed.workload.summarise`. A failed agent (verification error, timeout) fails
  the run loudly with the agent's own message.
- :class:`ProbeMesh`: ``ping -D`` between host pairs at ``rate_hz`` -> rows of
  (t_unix at send, src, dst, seq, rtt_s, NaN if lost).
- :class:`BackgroundFlows`: iperf3 TCP flows at given (scaled) rates, started at their
  start time -> per-second throughput rows.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .emulation import Emulation, parse_ping
from .errors import RunFailed, TestbedError
from .tracking import Spawned

AGENT_PORT = 7000   # first workload's agents listen here; the k-th (from 0) on AGENT_PORT + k
AGENT_EXIT = {2: "bad plan or peers", 3: "a transfer failed verification (bytes lost or corrupted)",
              4: "timed out", 5: "could not connect to its peers"}


class AgentGroup:
    """Replay agents for one plan, rank r on host ``hosts[r]``."""

    def __init__(self, emu: Emulation, plan, hosts: Sequence[str], workdir: Path, timeout_s: float,
                 start_at_unix: float | None = None, port: int = AGENT_PORT):
        """``port``: TCP port every rank listens on; groups sharing hosts need different ones."""
        from testbed.workload import save_plan
        if len(hosts) != plan.n_ranks:
            raise RunFailed(f"{plan.n_ranks} ranks but {len(hosts)} hosts to place them on")
        workdir.mkdir(parents=True, exist_ok=True)
        self.plan = plan
        self.hosts = list(hosts)
        self.workdir = workdir
        self.plan_path = workdir / "plan.json"
        save_plan(plan, self.plan_path)
        specs = [emu.host(h) for h in hosts]
        peers = {str(r): f"{h.ip}:{port}" for r, h in enumerate(specs)}
        (workdir / "peers.json").write_text(json.dumps(peers))
        self.outs = [workdir / f"rank{r}.jsonl" for r in range(plan.n_ranks)]
        self.procs: list[Spawned] = []
        self.timeout_s = timeout_s
        for r, h in enumerate(specs):
            argv = [sys.executable, "-m", "testbed.agent", "--plan", str(self.plan_path), "--rank", str(r),
                    "--listen", peers[str(r)], "--peers", str(workdir / "peers.json"), "--out", str(self.outs[r]),
                    "--timeout-s", f"{timeout_s:g}"]
            if start_at_unix is not None:
                argv += ["--start-at", f"{start_at_unix:.6f}"]
            err = open(workdir / f"rank{r}.stderr", "w")
            self.procs.append(Spawned(argv, role=f"agent{r}", netns=h.netns, stdout=subprocess.DEVNULL, stderr=err))
            err.close()

    def failed(self) -> str | None:
        """A message if an agent has exited with an error, else None."""
        for r, p in enumerate(self.procs):
            code = p.poll()
            if code not in (None, 0):
                err = (self.workdir / f"rank{r}.stderr").read_text(errors="replace").strip().splitlines()
                return (f"agent rank {r} failed ({AGENT_EXIT.get(code, f'exit {code}')}): "
                        f"{err[-1] if err else 'no message'}")
        return None

    def done(self) -> bool:
        return all(p.poll() is not None for p in self.procs)

    def wait(self, timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s + 30)
        while not self.done():
            msg = self.failed()
            if msg:
                self.stop()
                raise RunFailed(msg)
            if time.monotonic() > deadline:
                self.stop()
                raise RunFailed(f"agents did not finish within {timeout_s:.0f} s (see {self.workdir})")
            time.sleep(0.1)
        msg = self.failed()
        if msg:
            raise RunFailed(msg)

    def stop(self) -> None:
        for p in self.procs:
            p.stop(grace_s=1.0)

    def start_late_s(self, start_at_unix: float) -> float | None:
        """Seconds the last rank began after ``start_at_unix`` (0 if on time; None if none began)."""
        from .workload.summary import read_results
        starts = [r["start_time_s"] for out in self.outs if out.exists()
                  for r in read_results(out) if r["record"] == "run" and r.get("start_time_s") is not None]
        return max(0.0, max(starts) - start_at_unix) if starts else None

    def summary(self, rate_bps=None, latency_s=None):
        from testbed.workload import summarise
        return summarise(self.outs, self.plan, rate_bps=rate_bps, latency_s=latency_s)


@dataclass
class _Probe:
    src: str
    dst: str
    proc: Spawned


class ProbeMesh:
    """``ping -D -i 1/rate_hz`` from src to dst for each pair, for ``duration_s``."""

    def __init__(self, emu: Emulation, pairs: Sequence[tuple[str, str]], rate_hz: float, duration_s: float):
        self.probes = []
        count = max(1, int(duration_s * rate_hz))
        for src, dst in pairs:
            self.probes.append(_Probe(src, dst, emu.start_ping(src, dst, count=count, interval_s=1.0 / rate_hz,
                                                               deadline_s=duration_s + 1.0)))

    def collect(self, timeout_s: float = 60.0) -> pd.DataFrame:
        """Rows: t_unix (send), src, dst, seq, rtt_s (NaN for requests with no reply)."""
        rows = []
        for p in self.probes:
            try:
                out, _ = p.proc.popen.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                p.proc.popen.send_signal(signal.SIGINT)   # ping prints its statistics on SIGINT
                out, _ = p.proc.popen.communicate(timeout=10)
            p.proc.stop()
            res = parse_ping(out)
            sent = res.sent_unix_s()
            got = dict(zip(res.seqs, zip(sent, res.rtts_s)))
            # Lost requests: ping numbers them 1..sent; their send time is interpolated.
            t_first = sent[0] - (res.seqs[0] - 1) * self._interval(res) if sent else np.nan
            for seq in range(1, res.sent + 1):
                if seq in got:
                    t, rtt = got[seq]
                else:
                    t, rtt = t_first + (seq - 1) * self._interval(res), np.nan
                rows.append((t, p.src, p.dst, seq, rtt))
        return pd.DataFrame(rows, columns=["t_unix", "src", "dst", "seq", "rtt_s"])

    @staticmethod
    def _interval(res) -> float:
        sent = res.sent_unix_s()
        if len(sent) < 2:
            return 0.0
        return float(np.median(np.diff(sent) / np.maximum(np.diff(res.seqs), 1)))

    def stop(self) -> None:
        for p in self.probes:
            p.proc.stop()


class BackgroundFlows:
    """iperf3 TCP flows (src, dst, rate_bps, start_s, duration_s), started on time by timers."""

    def __init__(self, emu: Emulation, flows: Sequence[tuple[str, str, float, float, float]], t0_unix: float):
        self.emu = emu
        self.results: list[tuple[str, str, dict | Exception]] = []
        self._lock = threading.Lock()
        self._threads = []
        for i, (src, dst, rate_bps, start_s, duration_s) in enumerate(flows):
            th = threading.Timer(max(0.0, t0_unix + start_s - time.time()), self._run,
                                 args=(i, src, dst, rate_bps, duration_s))
            th.daemon = True
            th.start()
            self._threads.append(th)

    def _run(self, i, src, dst, rate_bps, duration_s) -> None:
        try:
            out: dict | Exception = self.emu.iperf3(src, dst, duration_s, omit_s=0, port=5201 + i, rate_bps=rate_bps)
        except TestbedError as e:
            out = e
        with self._lock:
            self.results.append((src, dst, out))

    def collect(self, timeout_s: float = 60.0) -> pd.DataFrame:
        """Rows: t_unix (interval end), src, dst, bps."""
        for th in self._threads:
            th.join(timeout_s)
        rows = []
        for src, dst, out in self.results:
            if isinstance(out, Exception) or "error" in out:
                raise RunFailed(f"background flow {src}->{dst} failed: {out if isinstance(out, Exception) else out['error']}")
            t0 = out["start"]["timestamp"]["timesecs"]
            for iv in out["intervals"]:
                sm = iv["sum"]
                rows.append((t0 + sm["end"], src, dst, sm["bits_per_second"]))
        return pd.DataFrame(rows, columns=["t_unix", "src", "dst", "bps"])

    def stop(self) -> None:
        for th in self._threads:
            th.cancel()
