"""The ``testbed`` command line (also ``python -m testbed``).

Sub-commands live in a registry (:data:`COMMANDS`); each is (help, add_arguments, run)
where ``run(args) -> int``. Errors derived from :class:`~testbed.errors.TestbedError`
(and the packages' own ValueError subclasses for bad input) become one line on stderr
and their exit status; there is never a traceback for a problem the user can fix.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Callable

from testbed.errors import EnvironmentProblem, InputError, TestbedError

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _json_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as one JSON object on stdout")


def _doctor_args(p: argparse.ArgumentParser) -> None:
    _json_flag(p, "the facts and choices")


def _doctor(args: argparse.Namespace) -> int:
    from testbed.system import machine
    caps = machine.probe()
    lines = machine.doctor_lines(caps)
    problems = machine.can_run(caps)
    if args.json:
        print(json.dumps({"can_run": not problems, "problems": problems,
                          "backend": machine.choose_backend(caps) if not problems else None,
                          "ovs_datapath": machine.choose_datapath(caps),
                          "checks": [{"ok": ok, "text": text} for ok, text in lines]}, indent=2))
        return 0 if not problems else 1
    for ok, text in lines:
        print(("ok    " if ok else "FAIL  ") + text)
    print("the testbed can run" if not problems else f"the testbed cannot run: {problems[0]}")
    return 0 if not problems else 1


def _clean_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="clean even while a run holds the lock")


def _clean(args: argparse.Namespace) -> int:
    import os
    from testbed.system.clean import clean
    from testbed.errors import EnvironmentProblem
    if os.geteuid() != 0:
        raise EnvironmentProblem("testbed clean needs root (it removes namespaces and OVS bridges): use sudo")
    rep = clean(force=args.force)
    if rep.total() == 0:
        print("clean: nothing to remove")
    for what in ("processes", "bridges", "netns", "interfaces"):
        items = getattr(rep, what)
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            print(f"clean: removed {what}: {shown}")
    return 0


def _slice_args(p: argparse.ArgumentParser) -> None:
    from testbed.slice import add_arguments
    add_arguments(p)


def _slice(args: argparse.Namespace) -> int:
    from testbed.slice import run
    return run(args)


DEFAULT_SPEC = Path(__file__).resolve().parents[1] / "experiments" / "default.toml"


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=None, help="results root (default: results/)")


def _demo(args: argparse.Namespace) -> int:
    from testbed.experiment import run_experiment
    from testbed.spec import load_spec
    run_experiment(load_spec(DEFAULT_SPEC), results_root=args.results)
    return 0


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", type=Path, help="experiment spec (TOML), e.g. experiments/default.toml")
    p.add_argument("--results", type=Path, default=None, help="results root (default: the spec's output_dir)")
    p.add_argument("--cli", action="store_true",
                   help="open an interactive shell into each algorithm's network while it replays")
    _json_flag(p, "the run folder and its summary when done (progress goes to stderr)")


def _run(args: argparse.Namespace) -> int:
    from testbed.experiment import run_experiment
    from testbed.spec import load_spec
    log = _logger(args, to_stderr=args.json)
    run_dir = run_experiment(load_spec(args.spec), results_root=args.results, cli=args.cli, log=log)
    if args.json:
        summary = json.loads((run_dir / "summary.json").read_text())
        print(json.dumps({"run_dir": str(run_dir), "summary": summary}, indent=2))
    return 0


def _logger(args: argparse.Namespace, to_stderr: bool = False) -> Callable[[str], None]:
    """The run's progress lines: all with -v, only the last (``run: done``) with -q."""
    stream = sys.stderr if to_stderr else sys.stdout

    def log(line: str, level: int = 0) -> None:
        if args.verbosity >= level and (args.verbosity >= 0 or line.startswith("run: done")):
            print(line, file=stream, flush=True)
    return log


def _topo_args(p: argparse.ArgumentParser) -> None:
    from topologies import cli as topo_cli
    topo_cli.add_arguments(p)


def _topo(args: argparse.Namespace) -> int:
    from topologies import cli as topo_cli
    return topo_cli.run(args)


def _report_args(p: argparse.ArgumentParser) -> None:
    from testbed.report import add_report_arguments
    add_report_arguments(p)


def _report(args: argparse.Namespace) -> int:
    from testbed.report import report_command
    return report_command(args)


def _compare_args(p: argparse.ArgumentParser) -> None:
    from testbed.report.compare import add_compare_arguments
    add_compare_arguments(p)


def _compare(args: argparse.Namespace) -> int:
    from testbed.report.compare import compare_command
    return compare_command(args)


def _check_args(p: argparse.ArgumentParser) -> None:
    from testbed.spec import add_check_arguments
    add_check_arguments(p)


def _check(args: argparse.Namespace) -> int:
    from testbed.spec import check_command
    return check_command(args)


COMMANDS: dict[str, Command] = {
    "doctor": ("probe this machine: what the testbed will use, what is missing", _doctor_args, _doctor),
    "clean": ("remove everything the testbed created (after a crash, too)", _clean_args, _clean),
    "demo": ("run the default experiment (experiments/default.toml) and its report", _demo_args, _demo),
    "slice": ("the end-to-end slice: 3 satellites in a chain, ping + iperf3", _slice_args, _slice),
    "topo": ("generate an orbital link schedule, summarise it, draw it", _topo_args, _topo),
    "check": ("validate experiment specs offline and summarise them", _check_args, _check),
    "run": ("run every algorithm of an experiment spec on the identical scenario", _run_args, _run),
    "report": ("comparison report and plots of a run, from its result files only", _report_args, _report),
    "compare": ("one report across runs (two commits, two parameter values), same statistics",
                _compare_args, _compare),
}


def _unavailable(name: str, error: ImportError) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise EnvironmentProblem(f"'{name}' is not available: {error} (run 'make setup')")
    return run


def build_parser() -> argparse.ArgumentParser:
    from testbed import __version__
    parser = argparse.ArgumentParser(prog="testbed", description="Laser-mesh routing testbed for compute satellites")
    parser.add_argument("--version", action="version", version=f"testbed {__version__}")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=0,
                       help="print only problems and the result")
    level.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1,
                       help="print more detail (per-trial timings, fidelity read-backs)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (help_text, add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            add_args(p)
        except ImportError as e:   # one broken sub-command must not take the others down
            run = _unavailable(name, e)
        p.set_defaults(_run=run)
    return parser


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Each package's bad-input error, imported lazily (a missing package is not fatal)."""
    types: list[type[BaseException]] = [InputError]
    for mod, name in (("topologies", "TopologyError"), ("controllers", "RoutingError"),
                      ("testbed.workload", "WorkloadError")):
        try:
            types.append(getattr(__import__(mod, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


def _stdout_closed() -> bool:
    """True if standard output's reader has gone (``| head``: the pipe's write end polls as
    an error); then stdout is pointed at /dev/null so that the interpreter's last flush does
    not complain. False for a BrokenPipeError of some other pipe or socket."""
    import select
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        closed = any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False
    if closed:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return closed


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # SIGTERM behaves like Ctrl-C: every `finally` runs and the network is torn down.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # SIGPIPE keeps Python's default (ignored: a write to a closed pipe or socket raises
    # BrokenPipeError). Its system default would end a run at once, without tear-down, the
    # moment any socket's peer went away; `testbed check x | head` ends quietly below instead.
    args = build_parser().parse_args(argv)
    try:
        return args._run(args)
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        return 0
    except TestbedError as e:
        print(f"testbed {args.command}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        from testbed.system.clean import inventory
        left = inventory().total() if os.geteuid() == 0 else 0
        print(f"testbed {args.command}: interrupted; "
              + (f"{left} objects the testbed made are still there: run 'testbed clean'" if left
                 else "nothing the testbed made is left"), file=sys.stderr)
        return 130
    except _user_error_types() as e:
        print(f"testbed {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
