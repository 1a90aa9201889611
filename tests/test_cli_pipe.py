"""`testbed CMD | head`: the reader going away ends the command quietly, without a
traceback, and without SIGPIPE's system default (which would end a run with no tear-down)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_closed_stdout_ends_the_command_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "check", "experiments/default.toml"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()                 # the reader is gone before the first line is written
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_the_cli_keeps_pythons_sigpipe_handling():
    """SIGPIPE stays ignored in the testbed process, so a socket whose peer has gone raises
    BrokenPipeError where it is written instead of killing a run mid-way."""
    code = ("import signal, testbed.cli as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().splitlines()[-1] == "True", r.stdout + r.stderr
