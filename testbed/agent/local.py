"""Run every rank of a plan as agent subprocesses on one host (loopback).

Used by the tests and the benchmark; the emulation runs agents inside the hosts'
network namespaces instead. Ports are found dynamically.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from testbed.workload import Plan, save_plan


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class LocalRun:
    exit_codes: tuple[int, ...]
    results: tuple[Path, ...]
    stderr: tuple[str, ...]
    wall_s: float

    @property
    def ok(self) -> bool:
        return all(code == 0 for code in self.exit_codes)


def write_inputs(plan: Plan, workdir: Path, host: str = "127.0.0.1") -> tuple[Path, Path, list[str]]:
    """Write plan.jsonl and peers.json into ``workdir``; returns the paths and listen addresses."""
    workdir.mkdir(parents=True, exist_ok=True)
    plan_path, peers_path = workdir / "plan.jsonl", workdir / "peers.json"
    save_plan(plan, plan_path)
    addresses = [f"{host}:{port}" for port in free_ports(plan.n_ranks, host)]
    peers_path.write_text(json.dumps({str(r): a for r, a in enumerate(addresses)}))
    return plan_path, peers_path, addresses


def agent_command(plan_path: Path, rank: int, listen: str, peers_path: Path, out: Path,
                  timeout_s: float, extra: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "testbed.agent", "--plan", str(plan_path), "--rank", str(rank),
            "--listen", listen, "--peers", str(peers_path), "--out", str(out),
            "--timeout-s", str(timeout_s), *extra]


def run_local(plan: Plan, workdir: str | Path, timeout_s: float = 60.0, host: str = "127.0.0.1",
              extra_args: Sequence[str] = ()) -> LocalRun:
    """Start one agent per rank, wait for all, return exit codes and result paths."""
    workdir = Path(workdir)
    plan_path, peers_path, addresses = write_inputs(plan, workdir, host)
    outs = [workdir / f"rank{r}.jsonl" for r in range(plan.n_ranks)]
    start = time.monotonic()
    procs = [
        subprocess.Popen(agent_command(plan_path, r, addresses[r], peers_path, outs[r], timeout_s, extra_args),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for r in range(plan.n_ranks)
    ]
    stderr = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=timeout_s + 30)
            stderr.append(err)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return LocalRun(tuple(p.returncode for p in procs), tuple(outs), tuple(stderr), time.monotonic() - start)
