"""The controller's step log (``controller-steps.jsonl``): one JSON object per line.

Written by the controller (:mod:`controllers.app`), read by the testbed's result tables
(:mod:`testbed.results.tables`); this module is the one definition of the format. Every
record has ``t_wall`` (Unix seconds when it was written) and ``event``:

- ``step``: a link-state step was applied: ``t_s`` (orbital), ``step``, ``compute_s``,
  ``decided_unix`` (when the routes were computed), ``install_s`` (from then until the
  last barrier reply, as the controller saw it), ``flow_mods``, ``group_mods``,
  ``barrier_timeout``, ``missing_switches``, ``rules_per_switch``;
- ``paths``: host-to-host switch paths that changed: ``cause``, ``t_s``, ``step``,
  ``paths`` ({"<src switch>-<dst switch>": "n0-n1-...-nk"}), ``unreachable`` (keys of
  pairs that lost their path);
- ``utilisation``: port-counter rates of one switch: ``node``, ``links``
  ({"<node>-<neighbour>": fraction of capacity}), ``by_destination``;
- ``generation`` (consistent updates only, :mod:`controllers.consistent`): a new routing
  generation is in force: ``generation``, ``tag`` (its DSCP value), ``retires`` (the
  generation whose rules go after ``drain_s`` seconds);
- ``port_down`` and others: free-form, ignored by readers that do not know them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Iterator

FILE_NAME = "controller-steps.jsonl"   # in the folder of the run's controller log


def pair_key(a: int, b: int) -> str:
    return f"{a}-{b}"


def parse_pair_key(key: str) -> tuple[int, int]:
    a, b = key.split("-")
    return int(a), int(b)


def path_text(path) -> str:
    """A switch path (node ids) as the log writes it."""
    return "-".join(map(str, path))


def path_hops(text: str) -> int:
    """Links on a logged path ("3-4-5" has 2); -1 for an empty path (unreachable)."""
    return text.count("-") if text else -1


def write_record(stream: IO[str], event: str, **fields) -> None:
    """Appends one record (``t_wall`` now) and flushes."""
    stream.write(json.dumps({"t_wall": time.time(), "event": event, **fields}) + "\n")
    stream.flush()


def read_records(path: Path, until_wall: float = float("inf")) -> Iterator[dict]:
    """Records written before ``until_wall`` (Unix s), in order; nothing if the file is missing."""
    if not Path(path).exists():
        return
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if rec["t_wall"] < until_wall:
                yield rec
