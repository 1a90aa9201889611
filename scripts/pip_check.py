"""``pip check`` for the project's virtual environment, run by scripts/setup.sh.

The venv is made with ``--system-site-packages`` (for Debian's mininet), so pip also
sees the distribution's own Python packages, whose dependencies Debian manages and
sometimes splits differently (e.g. ``python3-gi`` declares ``pycairo``, shipped as the
separate package ``python3-cairo``). A problem of a distribution installed in this venv
fails (exit 1); one of a distribution under the system's site-packages is listed as
the operating system's and does not. Usage: ``.venv/bin/python scripts/pip_check.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

_LINE = re.compile(r"^(?P<name>\S+) (?P<version>\S+) (?:requires|has requirement) ")


def _in_this_env(name: str) -> bool:
    """True when distribution ``name`` is installed under this interpreter's prefix."""
    try:
        where = Path(metadata.distribution(name).locate_file("")).resolve()
    except metadata.PackageNotFoundError:
        return True  # unknown: treat as ours, so it is not hidden
    return Path(sys.prefix).resolve() in (where, *where.parents)


def main() -> int:
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    if result.returncode == 0:
        return 0
    ours, system = [], []
    for line in result.stdout.splitlines():
        match = _LINE.match(line)
        if not line.strip():
            continue
        (ours if match is None or _in_this_env(match["name"]) else system).append(line)
    for line in system:
        print(f"pip check: operating system package, not ours: {line}")
    for line in ours:
        print(f"pip check: {line}", file=sys.stderr)
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main())
