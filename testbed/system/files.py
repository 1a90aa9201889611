"""Atomic file writes: a reader never sees half a file.

Everything the testbed writes for a reader (result tables, manifests, plots, plans, the
process records of :mod:`testbed.system.tracking`) goes through :func:`atomic_path`: the
content goes to a hidden temporary name beside the target, which is renamed over it only
once complete; on failure the temporary file is removed.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write; renamed to ``path`` when the block ends without error."""
    target = Path(path)
    temp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield temp
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Writes ``data`` (text as UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as temp:
        temp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)
