"""The command line's scriptable surface: --version, -q before or after the command,
``check --json`` as data, and the public Python API's names (issue 14)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import testbed

REPO = Path(__file__).resolve().parents[1]
GOOD = "examples/widest.toml"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_version_is_the_packages():
    r = cli("--version")
    declared = re.search(r'(?m)^version\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert r.returncode == 0 and r.stdout.strip() == f"testbed {testbed.__version__}", r.stdout + r.stderr
    assert testbed.__version__ in (declared, "0+unknown")


def test_quiet_before_or_after_the_command_prints_nothing_for_a_valid_spec():
    loud = cli("check", GOOD)
    assert loud.returncode == 0 and loud.stdout.startswith(f"{GOOD}: ok"), loud.stderr
    for args in (("-q", "check", GOOD), ("check", "-q", GOOD)):
        r = cli(*args)
        assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (args, r.stdout, r.stderr)


def test_check_json_is_one_object_with_a_verdict_per_spec(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((REPO / GOOD).read_text().replace("[experiment]", "[experiment]\nspeedup = -1", 1))
    r = cli("check", "--json", GOOD, str(bad))
    assert r.returncode == 2, r.stdout + r.stderr
    verdicts = json.loads(r.stdout)
    assert verdicts[GOOD]["ok"] is True and verdicts[GOOD]["problems"] == [] and verdicts[GOOD]["summary"]
    assert verdicts[str(bad)]["ok"] is False and any("speedup" in p for p in verdicts[str(bad)]["problems"])


def test_every_public_name_resolves():
    assert isinstance(testbed.__version__, str)
    for name in testbed.__all__:
        if name != "__version__":
            assert callable(getattr(testbed, name)), name
