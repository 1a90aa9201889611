"""Reading TOML tables strictly while collecting every problem instead of stopping at the first.

A :class:`Problems` list gathers one line per problem, each naming the key path
(``time.duration_s: must be > 0, got -5``). A :class:`Table` reads one TOML table:
it reports unknown keys when made, and its typed getters record a problem and
return :data:`BAD` for a wrong value, so callers can skip checks that depend on it
instead of piling up follow-on errors.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

#: Returned by a getter whose value was wrong (the problem is already recorded).
BAD: Any = type("Bad", (), {"__repr__": lambda self: "BAD", "__bool__": lambda self: False})()

#: Names that become folder names or host selectors: letters, digits, ``_ . -``.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
NAME_RULE = "use letters, digits, '_', '.' and '-' (starting with a letter or digit)"


def ok(value: Any) -> bool:
    """True unless ``value`` is :data:`BAD`."""
    return value is not BAD


def type_name(value: Any) -> str:
    """The TOML name of a value's type, for messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, (datetime, date, time)):
        return "date-time"
    return type(value).__name__


def show(value: Any) -> str:
    """A short rendering of a value for messages: ``'abc' (string)``, ``-5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    text = repr(value) if isinstance(value, str) else type_name(value)
    return f"{text} ({type_name(value)})" if isinstance(value, str) else text


def join(path: str, key: str | int) -> str:
    """Key path of ``key`` inside ``path``: ``a.b``, ``a[3]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Problems:
    """Problems found so far, in the order found: each a key path and one line naming it."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    @property
    def lines(self) -> list[str]:
        return [line for _, line in self.items]

    @property
    def paths(self) -> list[str]:
        """The key path of each problem (``""`` for the whole file)."""
        return [path for path, _ in self.items]

    def add(self, path: str, message: str) -> None:
        self.items.append((path, f"{path}: {message}" if path else message))

    def unknown_key(self, path: str, key: str, known: Sequence[str]) -> None:
        where = join(path, key)
        close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        if close:
            self.items.append((where, f"unknown key '{where}'; did you mean '{join(path, close[0])}'?"))
        else:
            self.items.append((where, f"unknown key '{where}'; known keys here: {', '.join(known) or 'none'}"))

    def sort_from(self, start: int, key) -> None:
        """Stable-sort the problems from index ``start`` on by ``key(path)``."""
        self.items[start:] = sorted(self.items[start:], key=lambda item: key(item[0]))

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


def as_table(value: Any, path: str, problems: Problems) -> dict | Any:
    """``value`` if it is a table, else record a problem and return BAD."""
    if isinstance(value, Mapping):
        return dict(value)
    problems.add(path, f"must be a table, got {show(value)}")
    return BAD


class Table:
    """One TOML table read strictly; unknown keys are reported on construction.

    Parameters
    ----------
    data : mapping
        The table as parsed.
    path : str
        Its key path (``"time"``, ``"algorithms[1]"``; ``""`` for the top level).
    problems : Problems
        Where problems go.
    known : sequence of str
        The keys allowed here.
    """

    def __init__(self, data: Mapping, path: str, problems: Problems, known: Sequence[str]) -> None:
        self.data = dict(data)
        self.path = path
        self.problems = problems
        for key in self.data:
            if key not in known:
                problems.unknown_key(path, key, known)

    def where(self, key: str) -> str:
        return join(self.path, key)

    def has(self, key: str) -> bool:
        return key in self.data

    def bad(self, key: str, message: str) -> Any:
        self.problems.add(self.where(key), message)
        return BAD

    def missing(self, key: str, what: str = "") -> Any:
        return self.bad(key, "missing required key" + (f" ({what})" if what else ""))

    # -- typed getters: the value, the default when absent, or BAD ------------

    def number(self, key: str, default: Any = None, *, required: bool = False, integer: bool = False,
               gt: float | None = None, ge: float | None = None, lt: float | None = None,
               le: float | None = None) -> Any:
        """A number (``integer`` = whole numbers only; booleans are never numbers)."""
        if key not in self.data:
            return self.missing(key) if required else default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return self.bad(key, f"must be {'an integer' if integer else 'a number'}, got {show(value)}")
        if integer and not isinstance(value, int):
            return self.bad(key, f"must be an integer, got {show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            return self.bad(key, f"must be finite, got {show(value)}")
        for bound, test, text in ((gt, lambda v, b: v > b, ">"), (ge, lambda v, b: v >= b, ">="),
                                  (lt, lambda v, b: v < b, "<"), (le, lambda v, b: v <= b, "<=")):
            if bound is not None and not test(value, bound):
                return self.bad(key, f"must be {text} {bound:g}, got {show(value)}")
        return value if integer else float(value)

    def string(self, key: str, default: Any = None, *, required: bool = False,
               choices: Iterable[str] | None = None, name_rule: bool = False) -> Any:
        """A non-empty string, optionally one of ``choices`` or matching :data:`NAME_RE`."""
        if key not in self.data:
            return self.missing(key) if required else default
        value = self.data[key]
        if not isinstance(value, str):
            return self.bad(key, f"must be a string, got {show(value)}")
        if not value.strip():
            return self.bad(key, "must not be empty")
        if choices is not None:
            choices = list(choices)
            if value not in choices:
                return self.bad(key, f"unknown value {value!r}; known: {', '.join(choices)}")
        if name_rule and not NAME_RE.match(value):
            return self.bad(key, f"{value!r} is not a valid name: {NAME_RULE}")
        return value

    def boolean(self, key: str, default: Any = None) -> Any:
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            return self.bad(key, f"must be true or false, got {show(value)}")
        return value

    def table(self, key: str, default: Any = None) -> Any:
        """A sub-table as a plain dict (``default`` when absent)."""
        if key not in self.data:
            return default
        return as_table(self.data[key], self.where(key), self.problems)

    def array(self, key: str, default: Any = None) -> Any:
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, list):
            return self.bad(key, f"must be an array, got {show(value)}")
        return value

    def tables(self, key: str) -> list[tuple[str, dict]]:
        """An array of tables as ``[(path, table), ...]``; bad items are reported and skipped."""
        items = self.array(key, [])
        if not ok(items):
            return []
        out = []
        for i, item in enumerate(items):
            where = join(self.where(key), i)
            table = as_table(item, where, self.problems)
            if ok(table):
                out.append((where, table))
        return out
