"""Command line of the replay agent (see ``--help``); exit codes in ``runner``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from testbed.workload import WorkloadError, load_rank_plan
from testbed.system.files import atomic_write
from testbed.workload.jsonl import parse_json_strict

from testbed.agent.replay import EXIT_CONFIG, Agent, AgentError, ClockProfile, parse_address


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m testbed.agent",
        description="Replay one rank of a GPU-job plan over TCP, verifying every byte.",
        epilog="Exit codes: 0 ok; 2 bad arguments, plan or peers, or a peer with another plan; "
               "3 a transfer failed verification; 4 --timeout-s elapsed; 5 connection failure.",
    )
    p.add_argument("--plan", required=True, type=Path, help="plan file (JSON Lines) written by testbed.workload.save_plan")
    p.add_argument("--rank", required=True, type=int, help="the rank this agent replays")
    p.add_argument("--listen", required=True, help="IP:PORT to listen on (this address only)")
    p.add_argument("--peers", required=True, type=Path, help='JSON object {"rank": "ip:port", ...}')
    p.add_argument("--out", required=True, type=Path, help="results file (JSON Lines)")
    p.add_argument("--timeout-s", type=float, default=600.0, help="give up after this many seconds (default 600)")
    p.add_argument("--connect-timeout-s", type=float, default=None,
                   help="deadline for connecting to all peers (default: --timeout-s)")
    p.add_argument("--start-at", type=float, default=None,
                   help="wall-clock time (time.time()) at which to start replaying, after connecting")
    p.add_argument("--clock", type=Path, default=None,
                   help='JSON {"t0_unix": s, "times_s": [...], "fraction": [...]}: the accelerator clock '
                        "fraction over wall time (compute phases stretch by it)")
    p.add_argument("--dilation", type=float, default=1.0,
                   help="time dilation D >= 1: every compute phase lasts D times its planned seconds "
                        "(wall seconds per emulated second; default 1)")
    return p


def _load_peers(path: Path) -> dict[int, tuple[str, int]]:
    try:
        data = parse_json_strict(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AgentError(EXIT_CONFIG, f"{path}: cannot read the peers file: {exc}") from exc
    if not isinstance(data, dict):
        raise AgentError(EXIT_CONFIG, f'{path}: must be a JSON object {{"rank": "ip:port"}}')
    peers = {}
    for key, value in data.items():
        if not key.isdigit() or not isinstance(value, str):
            raise AgentError(EXIT_CONFIG, f'{path}: entry {key!r}: {value!r} must be "rank": "ip:port"')
        try:
            peers[int(key)] = parse_address(value)
        except ValueError as exc:
            raise AgentError(EXIT_CONFIG, f"{path}: rank {key}: {exc}") from exc
    return peers


def _load_clock(path: Path) -> ClockProfile:
    try:
        data = parse_json_strict(path.read_text(encoding="utf-8"))
        times, fraction = tuple(map(float, data["times_s"])), tuple(map(float, data["fraction"]))
        t0 = float(data["t0_unix"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise AgentError(EXIT_CONFIG, f"{path}: cannot read the clock profile: {exc}") from exc
    if not times or len(times) != len(fraction) or any(not 0 <= f <= 1 for f in fraction) \
            or any(b <= a for a, b in zip(times, times[1:])):
        raise AgentError(EXIT_CONFIG, f"{path}: times_s must increase, one fraction in [0, 1] per time")
    return ClockProfile(t0, times, fraction)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rank = args.rank
    try:
        if args.timeout_s <= 0:
            raise AgentError(EXIT_CONFIG, "--timeout-s must be > 0")
        if not args.dilation >= 1.0 or args.dilation == float("inf"):
            raise AgentError(EXIT_CONFIG, f"--dilation must be a finite number >= 1, got {args.dilation:g}")
        if not args.out.parent.is_dir():
            raise AgentError(EXIT_CONFIG, f"--out: directory {args.out.parent} does not exist")
        try:
            header, rank_plan, plan_sha256 = load_rank_plan(args.plan, rank)
        except WorkloadError as exc:
            raise AgentError(EXIT_CONFIG, f"--rank {rank}: {exc}") from exc
        try:
            listen = parse_address(args.listen)
        except ValueError as exc:
            raise AgentError(EXIT_CONFIG, f"--listen: {exc}") from exc
        agent = Agent(rank_plan, header["n_ranks"], header["seed"], plan_sha256, listen,
                      _load_peers(args.peers), args.timeout_s, args.connect_timeout_s or args.timeout_s,
                      args.start_at, clock=_load_clock(args.clock) if args.clock else None,
                      dilation=args.dilation)
    except AgentError as exc:
        print(f"testbed.agent rank {rank}: error: {exc}", file=sys.stderr)
        return exc.code
    code, records = agent.run()
    atomic_write(args.out, "".join(json.dumps(r, allow_nan=False) + "\n" for r in records))
    if code:
        print(f"testbed.agent rank {rank}: FAILED (exit {code}): {agent.failure}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
