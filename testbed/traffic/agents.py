"""GPU-job replay agents inside the emulated network: one ``python -m testbed.agent`` per rank.

Each rank runs on the compute host it is placed on, listening on that host's address; results
are collected with :func:`testbed.workload.summarise`. A failed agent (verification error,
bad plan, lost peers, a signal) fails the run loudly with the agent's own message. A rank
that timed out fails it too, unless the group was made with ``unfinished_ok``: then the
timeout (and its peers' exits for the connection it closed) is a measurement (the network or its power kept the job from finishing in
``timeout_s``), its completed operations are results and :meth:`AgentGroup.unfinished`
says what was left.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from testbed.errors import RunFailed
from testbed.system.tracking import Spawned
from testbed.workload import read_results, save_plan, summarise
from testbed.workload.summary import run_records, unfinished_codes

AGENT_PORT = 7000   # first workload's agents listen here; the k-th (from 0) on AGENT_PORT + k
AGENT_EXIT = {2: "bad plan or peers", 3: "a transfer failed verification (bytes lost or corrupted)",
              4: "timed out", 5: "could not connect to its peers"}


class AgentGroup:
    """Replay agents for one plan, rank r on host ``hosts[r]``."""

    def __init__(self, emu, plan, hosts: Sequence[str], workdir: Path, timeout_s: float,
                 start_at_unix: float | None = None, port: int = AGENT_PORT,
                 clocks: dict[str, dict] | None = None, dilation: float = 1.0,
                 unfinished_ok: bool = False):
        """``port``: TCP port every rank listens on; groups sharing hosts need different ones.
        ``clocks``: host name -> the accelerator clock profile of that host (``{"t0_unix",
        "times_s", "fraction"}``, see ``python -m testbed.agent --clock``), from a power model.
        ``dilation``: time dilation D (compute phases last D times longer; :meth:`summary` is
        in emulated seconds); ``timeout_s`` is wall time."""
        if len(hosts) != plan.n_ranks:
            raise RunFailed(f"{plan.n_ranks} ranks but {len(hosts)} hosts to place them on")
        workdir.mkdir(parents=True, exist_ok=True)
        self.emu = emu
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
        self.unfinished_ok = unfinished_ok
        self.dilation = dilation
        for r, h in enumerate(specs):
            argv = [sys.executable, "-m", "testbed.agent", "--plan", str(self.plan_path), "--rank", str(r),
                    "--listen", peers[str(r)], "--peers", str(workdir / "peers.json"), "--out", str(self.outs[r]),
                    "--timeout-s", f"{timeout_s:g}"]
            if start_at_unix is not None:
                argv += ["--start-at", f"{start_at_unix:.6f}"]
            if dilation != 1.0:
                argv += ["--dilation", f"{dilation!r}"]
            if clocks and hosts[r] in clocks:
                clock_path = workdir / f"rank{r}.clock.json"
                clock_path.write_text(json.dumps(clocks[hosts[r]]))
                argv += ["--clock", str(clock_path)]
            err = open(workdir / f"rank{r}.stderr", "w")
            self.procs.append(Spawned(argv, role=f"agent{r}", netns=h.netns, stdout=subprocess.DEVNULL, stderr=err,
                                      label=f"agent rank {r} of workload {workdir.name} on {hosts[r]}",
                                      hint=lambda r=r: self._last_words(r)))
            err.close()

    def _last_words(self, rank: int) -> str:
        code = self.procs[rank].poll()
        err = (self.workdir / f"rank{rank}.stderr").read_text(errors="replace").strip().splitlines()
        what = AGENT_EXIT.get(code, "") if code and code > 0 else ""
        return "; ".join(x for x in (what, err[-1] if err else "") if x)

    def failed(self) -> str | None:
        """A message if an agent has exited with an error, else None. The rank that failed first
        in cause is named: one killed by a signal, else one that found bad data or a bad plan,
        before ranks that only lost their peers (could not connect, timed out)."""
        order = {3: 1, 2: 2, 5: 3, 4: 4}       # exit status -> rank in blame (signals: 0)
        codes = [p.poll() for p in self.procs]
        if self.unfinished_ok and unfinished_codes(codes):
            return None                         # timed out: a result (see unfinished())
        bad = [(0 if code < 0 else order.get(code, 2), r, code) for r, code in enumerate(codes)
               if code not in (None, 0)]
        if not bad:
            return None
        _, r, code = min(bad)
        how = f"killed by signal {-code}" if code < 0 else AGENT_EXIT.get(code, f"exit {code}")
        err = (self.workdir / f"rank{r}.stderr").read_text(errors="replace").strip().splitlines()
        return f"agent rank {r} on {self.hosts[r]} failed ({how}): {err[-1] if err and code > 0 else 'no message'}"

    def done(self) -> bool:
        return all(p.poll() is not None for p in self.procs)

    def wait(self, timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s + 30)
        while not self.done():
            if hasattr(self.emu, "check_alive"):
                try:
                    self.emu.check_alive(sessions=False)   # a dead shard or agent, named, at once
                except BaseException:
                    self.stop()
                    raise
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
        starts = [r["start_time_s"] for out in self.outs if out.exists()
                  for r in read_results(out) if r["record"] == "run" and r.get("start_time_s") is not None]
        return max(0.0, max(starts) - start_at_unix) if starts else None

    def unfinished(self) -> list[dict]:
        """Ranks that timed out (only with ``unfinished_ok``): rank, host, steps done of total,
        and the agent's own words on what it was waiting for."""
        return [{"rank": r["rank"], "host": self.hosts[r["rank"]], "steps_done": r["steps_done"],
                 "steps_total": r["steps_total"], "error": r["error"]}
                for r in run_records(self.outs) if r["status"] != "ok"]

    def summary(self, rate_bps=None, latency_s=None):
        """The agents' tables in emulated seconds (``rate_bps``, ``latency_s``: emulated units)."""
        return summarise(self.outs, self.plan, rate_bps=rate_bps, latency_s=latency_s, dilation=self.dilation,
                         allow_unfinished=self.unfinished_ok)
